//! A `tools/call` result: the MCP content as the server sent it (each wire face renders it its own way)
//! and the text the model reads.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

/// The outcome of one tool call. `is_error: true` is a tool-level failure the model should see, not an `Err`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// For the model: text blocks joined by newlines; `structuredContent` as JSON when no text block carries
    /// it; images, audio and blobs summarised as `[image image/png, 1234 bytes]`.
    pub text: String,
    /// The MCP content blocks, as the server sent them.
    pub content: Vec<ContentBlock>,
    pub is_error: bool,
}

impl ToolOutput {
    /// A tool answer that reports a failure to the model (bad arguments, unknown tool, a timeout…),
    /// shaped like a server's `isError` result: one text block.
    pub(crate) fn error(message: &str) -> ToolOutput {
        let text = format!("Error: {message}");
        ToolOutput { content: vec![ContentBlock::text(text.clone())], text, is_error: true }
    }
}

impl From<CallToolResult> for ToolOutput {
    fn from(result: CallToolResult) -> Self {
        let mut parts: Vec<String> = Vec::with_capacity(result.content.len() + 1);
        let mut has_text = false;
        for block in &result.content {
            match block {
                ContentBlock::Text(text) => {
                    has_text = true;
                    parts.push(text.text.clone());
                }
                ContentBlock::Image(image) => parts.push(binary_summary("image", &image.mime_type, &image.data)),
                ContentBlock::Audio(audio) => parts.push(binary_summary("audio", &audio.mime_type, &audio.data)),
                ContentBlock::Resource(embedded) => match &embedded.resource {
                    ResourceContents::TextResourceContents { text, .. } => {
                        has_text = true;
                        parts.push(text.clone());
                    }
                    ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => parts.push(format!(
                        "[resource {uri} {}, {} bytes]",
                        mime_type.as_deref().unwrap_or("application/octet-stream"),
                        base64_decoded_len(blob)
                    )),
                    _ => parts.push("[resource]".to_owned()),
                },
                ContentBlock::ResourceLink(link) => parts.push(format!(
                    "[resource_link {} {}{}]",
                    link.uri,
                    link.name,
                    link.mime_type.as_deref().map(|m| format!(", {m}")).unwrap_or_default()
                )),
                other => parts.push(format!("[{} content]", block_type(other))),
            }
        }
        // Servers are asked to mirror structuredContent in a text block; adding it again would double the tokens.
        if !has_text && let Some(structured) = &result.structured_content {
            parts.push(structured.to_string());
        }
        ToolOutput { text: parts.join("\n"), content: result.content, is_error: result.is_error.unwrap_or(false) }
    }
}

/// The wire `type` of a block kind this code does not know yet.
fn block_type(block: &ContentBlock) -> String {
    serde_json::to_value(block)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn binary_summary(kind: &str, mime: &str, base64_data: &str) -> String {
    format!("[{kind} {mime}, {} bytes]", base64_decoded_len(base64_data))
}

fn base64_decoded_len(data: &str) -> usize {
    let trimmed = data.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: serde_json::Value) -> CallToolResult {
        serde_json::from_value(value).expect("valid CallToolResult")
    }

    #[test]
    fn text_blocks_join_and_the_content_is_kept_as_sent() {
        let out = ToolOutput::from(result(json!({"content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}
        ]})));
        assert_eq!(out.text, "a\nb");
        assert!(!out.is_error);
        assert_eq!(
            serde_json::to_value(&out.content).unwrap(),
            json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
        );
    }

    #[test]
    fn structured_content_only_without_text_and_binaries_summarised() {
        let out = ToolOutput::from(result(json!({
            "content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}],
            "structuredContent": {"t": 1},
            "isError": true
        })));
        assert_eq!(out.text, "[image image/png, 3 bytes]\n{\"t\":1}");
        assert!(out.is_error);

        let out = ToolOutput::from(result(json!({
            "content": [{"type": "text", "text": "{\"t\":1}"}],
            "structuredContent": {"t": 1}
        })));
        assert_eq!(out.text, "{\"t\":1}");
    }
}
