//! The body of `POST /compatible-mode/v1/responses` (`response_create_params`), validated by hand so every
//! refusal names the field (`input[2].content[0].text: expected a string`).
//!
//! Decisions (the issue and the seed are silent):
//! - `developer` messages are system messages (the seed drops them); `instructions` is one more system
//!   message before the input.
//! - `reasoning` and `mcp_list_tools` items are dropped; a replayed `mcp_call` with its `output` is a tool
//!   call and its result, like a `function_call` with its `function_call_output`.
//! - `previous_response_id` and `item_reference` name stored responses a stateless function does not have:
//!   refused with a 400 that says to use `conversation` (the session) instead.
//! - Client `tools`, `tool_choice`, `store`, `reasoning`, `text` are ignored: the agent's tools are its MCP
//!   servers, and it runs them itself.
//! - The user is `user_id`, else `safety_identifier`, else `user` (no fallback to the conversation).

use serde_json::{Map, Value};

use crate::llm::{ChatMessage, Sampling, ToolCall};
use crate::protocol::RequestError;
use crate::protocol::agentscope::{HistoryItem, MAX_CONTENT_ITEMS, MAX_INPUT_MESSAGES, assemble_history};
use crate::protocol::field;
use crate::protocol::openai::{OpenAiTurn, opt_bool, opt_positive, opt_string, parse_object, temperature, top_p};

/// `metadata` bounds of the API: 16 pairs, keys ≤ 64 characters, values ≤ 512.
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

/// A parsed, validated Responses request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResponsesRequest {
    /// Its session is the `conversation`.
    pub(crate) turn: OpenAiTurn,
    /// `stream` absent is false, as in the API.
    pub(crate) stream: bool,
    /// Echoed on the Response objects.
    pub(crate) echo: Echo,
}

/// What the Response objects repeat from the request.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Echo {
    pub(crate) instructions: Option<String>,
    pub(crate) metadata: Map<String, Value>,
    /// `conversation` (string or `{id}`), else `session_id`.
    pub(crate) conversation: Option<String>,
    pub(crate) temperature: Option<f64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) max_output_tokens: Option<u32>,
}

impl ResponsesRequest {
    pub(crate) fn from_slice(body: &[u8]) -> Result<ResponsesRequest, RequestError> {
        let obj = parse_object(body)?;
        if obj.get("previous_response_id").is_some_and(|v| !v.is_null()) {
            return Err(field(
                "previous_response_id",
                "not supported: responses are not stored; send the conversation in `input`, or name it with `conversation`",
            ));
        }
        let instructions = opt_string(&obj, "instructions")?;
        let mut items = Vec::new();
        if let Some(text) = &instructions {
            items.push(HistoryItem::Message(ChatMessage::System { content: text.clone() }));
        }
        items.extend(input_items(obj.get("input"))?);
        let messages = assemble_history(&items);
        if !messages.iter().any(|m| !matches!(m, ChatMessage::System { .. })) {
            return Err(field("input", "holds no message the model can read (text, or a call with its output)"));
        }
        let sampling = Sampling {
            temperature: temperature(&obj)?,
            top_p: top_p(&obj)?,
            max_tokens: opt_positive(&obj, "max_output_tokens")?,
            ..Sampling::default()
        };
        let echo = Echo {
            instructions,
            metadata: metadata(obj.get("metadata"))?,
            conversation: conversation(&obj)?,
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            max_output_tokens: sampling.max_tokens,
        };
        let user_keys = ["user_id", "safety_identifier", "user"];
        let turn = OpenAiTurn::read(&obj, messages, sampling, echo.conversation.clone(), &user_keys)?;
        Ok(ResponsesRequest { turn, stream: opt_bool(&obj, "stream")?.unwrap_or(false), echo })
    }
}

fn conversation(obj: &Map<String, Value>) -> Result<Option<String>, RequestError> {
    let named = match obj.get("conversation") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Object(c)) => match c.get("id") {
            Some(Value::String(id)) => Some(id.clone()),
            _ => return Err(field("conversation.id", "expected a string")),
        },
        Some(_) => return Err(field("conversation", "expected a string or {\"id\": …}")),
    };
    match named.filter(|id| !id.trim().is_empty()) {
        Some(id) => Ok(Some(id)),
        None => opt_string(obj, "session_id"),
    }
}

fn metadata(value: Option<&Value>) -> Result<Map<String, Value>, RequestError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(field("metadata", "expected an object of string values")),
    };
    if map.len() > MAX_METADATA_PAIRS {
        return Err(field("metadata", format!("at most {MAX_METADATA_PAIRS} pairs")));
    }
    for (key, value) in map {
        if key.chars().count() > MAX_METADATA_KEY {
            return Err(field("metadata", format!("keys are at most {MAX_METADATA_KEY} characters")));
        }
        match value.as_str() {
            Some(v) if v.chars().count() <= MAX_METADATA_VALUE => {}
            _ => {
                return Err(field(
                    format!("metadata.{key}"),
                    format!("expected a string of ≤ {MAX_METADATA_VALUE} characters"),
                ));
            }
        }
    }
    Ok(map.clone())
}

fn input_items(input: Option<&Value>) -> Result<Vec<HistoryItem>, RequestError> {
    match input {
        None | Some(Value::Null) => Err(field("input", "required: a string or a list of items")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(field("input", "is empty")),
        Some(Value::String(text)) => Ok(vec![HistoryItem::Message(ChatMessage::User { content: text.clone() })]),
        Some(Value::Array(items)) if items.len() > MAX_INPUT_MESSAGES => {
            Err(field("input", format!("at most {MAX_INPUT_MESSAGES} items")))
        }
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.extend(input_item(&format!("input[{i}]"), item)?);
            }
            Ok(out)
        }
        Some(_) => Err(field("input", "expected a string or a list of items")),
    }
}

fn input_item(at: &str, value: &Value) -> Result<Vec<HistoryItem>, RequestError> {
    let item = value.as_object().ok_or_else(|| field(at, "expected an object"))?;
    let kind = match item.get("type") {
        None | Some(Value::Null) if item.contains_key("role") => "message",
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Err(field(format!("{at}.type"), "expected an item type (message, function_call, …)")),
    };
    let text = |key: &str| -> Result<String, RequestError> {
        match item.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(field(format!("{at}.{key}"), "expected a string")),
        }
    };
    Ok(match kind {
        "message" => message(at, item)?.map(HistoryItem::Message).into_iter().collect(),
        "function_call" => vec![HistoryItem::Call(call(text("call_id")?, text("name")?, text("arguments")?))],
        "function_call_output" => {
            vec![HistoryItem::Output { call_id: text("call_id")?, content: output_text(at, item.get("output"))? }]
        }
        "mcp_call" => {
            let id = text("id")?;
            let call = call(id.clone(), text("name")?, text("arguments")?);
            match item.get("output") {
                Some(Value::String(output)) => {
                    vec![HistoryItem::Call(call), HistoryItem::Output { call_id: id, content: output.clone() }]
                }
                _ => Vec::new(), // a call without its result cannot be replayed to the model
            }
        }
        "reasoning" | "mcp_list_tools" => Vec::new(),
        "item_reference" => {
            return Err(field(at, "item_reference is not supported: responses are not stored; send the item itself"));
        }
        other => return Err(field(format!("{at}.type"), format!("unsupported input item type {other:?}"))),
    })
}

fn call(call_id: String, name: String, arguments: String) -> ToolCall {
    let arguments = if arguments.trim().is_empty() { "{}".to_owned() } else { arguments };
    ToolCall::new(call_id, name, arguments)
}

fn message(at: &str, item: &Map<String, Value>) -> Result<Option<ChatMessage>, RequestError> {
    let content = match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts_text(&format!("{at}.content"), parts)?,
        _ => return Err(field(format!("{at}.content"), "expected a string or a list of content parts")),
    };
    if content.is_empty() {
        return Ok(None);
    }
    Ok(Some(match item.get("role").and_then(Value::as_str) {
        Some("user") => ChatMessage::User { content },
        Some("assistant") => ChatMessage::Assistant { content: Some(content), tool_calls: Vec::new() },
        Some("system" | "developer") => ChatMessage::System { content },
        _ => return Err(field(format!("{at}.role"), "expected user, assistant, system or developer")),
    }))
}

/// A function_call_output's `output`: a string, or content parts.
fn output_text(at: &str, output: Option<&Value>) -> Result<String, RequestError> {
    match output {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => parts_text(&format!("{at}.output"), parts),
        _ => Err(field(format!("{at}.output"), "expected a string or a list of content parts")),
    }
}

/// Text parts joined by newlines; images, files and audio as a short note the model can read.
fn parts_text(at: &str, parts: &[Value]) -> Result<String, RequestError> {
    if parts.len() > MAX_CONTENT_ITEMS {
        return Err(field(at, format!("at most {MAX_CONTENT_ITEMS} parts")));
    }
    let mut texts = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let kind =
            part.get("type").and_then(Value::as_str).ok_or_else(|| field(format!("{at}.type"), "expected a string"))?;
        let text = match kind {
            "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| field(format!("{at}.text"), "expected a string"))?,
            "refusal" => part.get("refusal").and_then(Value::as_str).unwrap_or_default(),
            "input_image" => "[image]",
            "input_file" => "[file]",
            "input_audio" => "[audio]",
            other => return Err(field(format!("{at}.type"), format!("unsupported content part type {other:?}"))),
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
    use crate::pipeline::UserClaim;
    use serde_json::json;

    fn parse(body: Value) -> Result<ResponsesRequest, RequestError> {
        ResponsesRequest::from_slice(body.to_string().as_bytes())
    }

    fn refusal(body: Value) -> String {
        parse(body).expect_err("refused").to_string()
    }

    #[test]
    fn a_string_input_is_one_user_message_after_the_instructions() {
        let request = parse(json!({"input": "hi", "instructions": "be terse", "model": "qwen-plus"})).unwrap();
        assert_eq!(
            request.turn.messages,
            [ChatMessage::System { content: "be terse".into() }, ChatMessage::User { content: "hi".into() }]
        );
        assert!(!request.stream, "stream absent is false");
        assert_eq!(request.turn.model.as_deref(), Some("qwen-plus"));
    }

    #[test]
    fn items_replay_calls_with_their_outputs_in_order() {
        let request = parse(json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "time?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "getutctime", "arguments": ""},
            {"type": "function_call_output", "call_id": "c1", "output": "12:00"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is noon", "annotations": []}]},
            {"type": "mcp_call", "id": "mcp_1", "server_label": "mcp", "name": "hello", "arguments": "{}", "output": "hi"},
            {"role": "developer", "content": "answer in French"},
            {"role": "user", "content": "and now?"}
        ]}))
        .unwrap();
        assert_eq!(
            request.turn.messages,
            [
                ChatMessage::User { content: "time?".into() },
                ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("c1", "getutctime", "{}")] },
                ChatMessage::Tool { tool_call_id: "c1".into(), content: "12:00".into() },
                ChatMessage::Assistant {
                    content: Some("It is noon".into()),
                    tool_calls: vec![ToolCall::new("mcp_1", "hello", "{}")]
                },
                ChatMessage::Tool { tool_call_id: "mcp_1".into(), content: "hi".into() },
                ChatMessage::System { content: "answer in French".into() },
                ChatMessage::User { content: "and now?".into() },
            ]
        );
    }

    #[test]
    fn who_and_which_conversation_come_from_the_body() {
        let request = parse(
            json!({"input": "x", "user": "u-old", "safety_identifier": "u-safe", "conversation": {"id": "conv_1"}}),
        )
        .unwrap();
        assert_eq!(request.turn.named_user(), Some("u-safe"));
        assert_eq!(request.echo.conversation.as_deref(), Some("conv_1"));
        let request = parse(json!({"input": "x", "user_id": "u1", "user": "u2", "session_id": "s1"})).unwrap();
        assert_eq!((request.turn.named_user(), request.echo.conversation.as_deref()), (Some("u1"), Some("s1")));
        let ask = request.turn.into_ask(UserClaim::UserId("u1".into()));
        assert_eq!(ask.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn sampling_and_metadata_are_validated() {
        let request = parse(
            json!({"input": "x", "temperature": 0.5, "top_p": 0.9, "max_output_tokens": 100, "metadata": {"k": "v"}}),
        )
        .unwrap();
        assert_eq!((request.turn.sampling.temperature, request.turn.sampling.max_tokens), (Some(0.5), Some(100)));
        assert_eq!(request.echo.metadata["k"], "v");
        assert!(refusal(json!({"input": "x", "temperature": 3})).starts_with("temperature:"));
        assert!(refusal(json!({"input": "x", "max_output_tokens": 0})).starts_with("max_output_tokens:"));
        assert!(refusal(json!({"input": "x", "metadata": {"k": 1}})).starts_with("metadata.k:"));
    }

    #[test]
    fn bad_input_is_refused_naming_the_field() {
        assert!(refusal(json!({})).starts_with("input: required"));
        assert!(refusal(json!({"input": " "})).starts_with("input: is empty"));
        assert!(
            refusal(json!({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}))
                .starts_with("input[0].content[0].text:")
        );
        assert!(refusal(json!({"input": [{"type": "web_search_call"}]})).starts_with("input[0].type:"));
        assert!(refusal(json!({"input": [{"type": "reasoning", "summary": []}]})).starts_with("input:"));
        assert!(refusal(json!({"input": "x", "previous_response_id": "resp_1"})).starts_with("previous_response_id:"));
        assert!(refusal(json!({"input": "x", "stream": "yes"})).starts_with("stream:"));
        assert!(ResponsesRequest::from_slice(b"[1").err().unwrap().to_string().starts_with("body:"));
    }
}
