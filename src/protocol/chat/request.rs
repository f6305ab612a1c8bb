//! The body of `POST /compatible-mode/v1/chat/completions`: `messages` in, the agent as the model.
//!
//! Decisions: `developer` is `system`; an assistant message's `tool_calls` with the `tool` messages that
//! answer them are replayed (unanswered calls are left out, as in `/process`); `max_completion_tokens` wins
//! over `max_tokens`; client `tools` are ignored (the agent's tools are its MCP servers). The user is a
//! top-level `user_id`, else `user`; the conversation a top-level `session_id` (extra_body in the SDK).

use serde_json::{Map, Value};

use crate::llm::{ChatMessage, Sampling, Stop, ToolCall};
use crate::protocol::RequestError;
use crate::protocol::agentscope::{HistoryItem, MAX_CONTENT_ITEMS, MAX_INPUT_MESSAGES, assemble_history};
use crate::protocol::field;
use crate::protocol::openai::{OpenAiTurn, opt_bool, opt_positive, opt_string, parse_object, temperature, top_p};

/// A parsed, validated Chat Completions request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatRequest {
    pub(crate) turn: OpenAiTurn,
    pub(crate) stream: bool,
    /// `stream_options.include_usage`: a last chunk with `usage` and no choices.
    pub(crate) include_usage: bool,
}

impl ChatRequest {
    pub(crate) fn from_slice(body: &[u8]) -> Result<ChatRequest, RequestError> {
        let obj = parse_object(body)?;
        let items = match obj.get("messages") {
            Some(Value::Array(messages)) if messages.len() > MAX_INPUT_MESSAGES => {
                return Err(field("messages", format!("at most {MAX_INPUT_MESSAGES} messages")));
            }
            Some(Value::Array(messages)) => {
                let mut items = Vec::with_capacity(messages.len());
                for (i, message) in messages.iter().enumerate() {
                    items.extend(message_items(&format!("messages[{i}]"), message)?);
                }
                items
            }
            _ => return Err(field("messages", "required: a list of messages")),
        };
        let messages = assemble_history(&items);
        if !messages.iter().any(|m| !matches!(m, ChatMessage::System { .. })) {
            return Err(field("messages", "holds no message the model can read (text, or a call with its output)"));
        }
        let include_usage = match obj.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(options)) => opt_bool(options, "include_usage")
                .map_err(|_| field("stream_options.include_usage", "expected true or false"))?
                .unwrap_or(false),
            Some(_) => return Err(field("stream_options", "expected an object")),
        };
        let max_tokens = match opt_positive(&obj, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_positive(&obj, "max_tokens")?,
        };
        let sampling = Sampling {
            temperature: temperature(&obj)?,
            top_p: top_p(&obj)?,
            max_tokens,
            seed: match obj.get("seed") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| field("seed", "expected a non-negative integer"))?),
            },
            stop: stop(obj.get("stop"))?,
        };
        let session_id = opt_string(&obj, "session_id")?;
        Ok(ChatRequest {
            turn: OpenAiTurn::read(&obj, messages, sampling, session_id, &["user_id", "user"])?,
            stream: opt_bool(&obj, "stream")?.unwrap_or(false),
            include_usage,
        })
    }
}

fn stop(value: Option<&Value>) -> Result<Option<Stop>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Stop::One(s.clone()))),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| field(format!("stop[{i}]"), "expected a string")))
            .collect::<Result<Vec<_>, _>>()
            .map(|stops| Some(Stop::Many(stops))),
        Some(_) => Err(field("stop", "expected a string or a list of strings")),
    }
}

fn message_items(at: &str, value: &Value) -> Result<Vec<HistoryItem>, RequestError> {
    let message = value.as_object().ok_or_else(|| field(at, "expected an object"))?;
    let content = content_text(at, message)?;
    let role = message.get("role").and_then(Value::as_str);
    Ok(match role {
        Some("system" | "developer") => text_item(content, |content| ChatMessage::System { content }),
        Some("user") => text_item(content, |content| ChatMessage::User { content }),
        Some("assistant") => {
            let mut items =
                text_item(content, |content| ChatMessage::Assistant { content: Some(content), tool_calls: Vec::new() });
            items.extend(tool_calls(at, message)?.into_iter().map(HistoryItem::Call));
            items
        }
        Some("tool") => match message.get("tool_call_id") {
            Some(Value::String(call_id)) => vec![HistoryItem::Output { call_id: call_id.clone(), content }],
            _ => return Err(field(format!("{at}.tool_call_id"), "expected a string")),
        },
        _ => return Err(field(format!("{at}.role"), "expected system, developer, user, assistant or tool")),
    })
}

fn text_item(content: String, make: impl FnOnce(String) -> ChatMessage) -> Vec<HistoryItem> {
    if content.is_empty() { Vec::new() } else { vec![HistoryItem::Message(make(content))] }
}

fn tool_calls(at: &str, message: &Map<String, Value>) -> Result<Vec<ToolCall>, RequestError> {
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(field(format!("{at}.tool_calls"), "expected a list")),
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let at = format!("{at}.tool_calls[{i}]");
            let text = |value: &Value, name: &str| {
                value.as_str().map(str::to_owned).ok_or_else(|| field(format!("{at}.{name}"), "expected a string"))
            };
            let id = text(&call["id"], "id")?;
            let name = text(&call["function"]["name"], "function.name")?;
            let arguments = match &call["function"]["arguments"] {
                Value::Null => "{}".to_owned(),
                other => text(other, "function.arguments")?,
            };
            Ok(ToolCall::new(id, name, if arguments.trim().is_empty() { "{}".to_owned() } else { arguments }))
        })
        .collect()
}

/// `content`: a string, null, or parts (`text` parts joined by newlines, others as a short note).
fn content_text(at: &str, message: &Map<String, Value>) -> Result<String, RequestError> {
    let parts = match message.get("content") {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(parts)) if parts.len() > MAX_CONTENT_ITEMS => {
            return Err(field(format!("{at}.content"), format!("at most {MAX_CONTENT_ITEMS} parts")));
        }
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(field(format!("{at}.content"), "expected a string or a list of content parts")),
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        let text = match part.get("type").and_then(Value::as_str) {
            Some("text") => part["text"].as_str().ok_or_else(|| field(format!("{at}.text"), "expected a string"))?,
            Some("refusal") => part["refusal"].as_str().unwrap_or_default(),
            Some("image_url") => "[image]",
            Some("input_audio") => "[audio]",
            Some("file") => "[file]",
            _ => return Err(field(format!("{at}.type"), "expected text, image_url, input_audio, file or refusal")),
        };
        if !text.is_empty() {
            texts.push(text);
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<ChatRequest, RequestError> {
        ChatRequest::from_slice(body.to_string().as_bytes())
    }

    #[test]
    fn messages_with_answered_tool_calls_become_the_conversation() {
        let request = parse(json!({"model": "qwen-plus", "stream": true, "stream_options": {"include_usage": true},
            "max_tokens": 50, "max_completion_tokens": 60, "stop": "END", "user": "u1", "session_id": "s1",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "time?"}, {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "getutctime", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "unanswered", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
                {"role": "user", "content": "thanks"}
            ]}))
        .unwrap();
        assert_eq!(
            request.turn.messages,
            [
                ChatMessage::System { content: "be brief".into() },
                ChatMessage::User { content: "time?\n[image]".into() },
                ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("c1", "getutctime", "{}")] },
                ChatMessage::Tool { tool_call_id: "c1".into(), content: "12:00".into() },
                ChatMessage::User { content: "thanks".into() },
            ]
        );
        assert!(request.stream && request.include_usage);
        assert_eq!(request.turn.sampling.max_tokens, Some(60));
        assert_eq!(request.turn.sampling.stop, Some(Stop::One("END".into())));
        assert_eq!((request.turn.named_user(), request.turn.session_id.as_deref()), (Some("u1"), Some("s1")));
    }

    #[test]
    fn bad_messages_are_refused_naming_the_field() {
        let refusal = |body: Value| parse(body).err().unwrap().to_string();
        assert!(refusal(json!({})).starts_with("messages: required"));
        assert!(refusal(json!({"messages": [{"role": "robot", "content": "x"}]})).starts_with("messages[0].role:"));
        assert!(
            refusal(json!({"messages": [{"role": "tool", "content": "x"}]})).starts_with("messages[0].tool_call_id:")
        );
        assert!(refusal(json!({"messages": [{"role": "system", "content": "x"}]})).starts_with("messages: holds no"));
        assert!(refusal(json!({"messages": [{"role": "user", "content": "x"}], "top_p": 0})).starts_with("top_p:"));
    }
}
