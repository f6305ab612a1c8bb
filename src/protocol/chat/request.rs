//! The body of `POST /compatible-mode/v1/chat/completions`: `messages` in, the agent as the model.
//!
//! Decisions: `developer` is `system`; an assistant message's `tool_calls` with the `tool` messages that
//! answer them are replayed (unanswered calls are left out, as in `/process`); `max_completion_tokens` wins
//! over `max_tokens`; client `tools` are ignored (the agent's tools are its MCP servers). The user is a
//! top-level `user_id`, else `user`; the conversation a top-level `session_id` (extra_body in the SDK).

use serde::Deserialize;
use serde::de::Deserializer;

use crate::llm::{ChatMessage, Sampling, StopSequences, ToolCall};
use crate::pipeline::{ApprovalInput, ResponseThread};
use crate::protocol::agentscope::{HistoryItem, MAX_CONTENT_ITEMS, MAX_INPUT_MESSAGES, assemble_history};
use crate::protocol::openai::OpenAiTurn;
use crate::protocol::reader::{self, Expect, Obj, Part, PartRule, TextOrList};
use crate::protocol::{RequestError, field};

/// A parsed, validated Chat Completions request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompletionsRequest {
    pub(crate) turn: OpenAiTurn,
    pub(crate) stream: bool,
    /// `stream_options.include_usage`: a last chunk with `usage` and no choices.
    pub(crate) include_usage: bool,
}

impl CompletionsRequest {
    pub(crate) fn from_slice(body: &[u8]) -> Result<CompletionsRequest, RequestError> {
        let wire = reader::read::<Wire>(body)?;
        let Some(wire_messages) = wire.messages else {
            return Err(field("messages", "required: a list of messages"));
        };
        let mut items = Vec::with_capacity(wire_messages.len());
        for (i, message) in wire_messages.into_iter().enumerate() {
            items.extend(message.0.into_items(&format!("messages[{i}]"))?);
        }
        let messages = assemble_history(&items);
        if !messages.iter().any(|m| !matches!(m, ChatMessage::System { .. })) {
            return Err(field("messages", "holds no message the model can read (text, or a call with its output)"));
        }
        let sampling = Sampling {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            seed: wire.seed,
            stop: wire.stop,
        };
        Ok(CompletionsRequest {
            turn: OpenAiTurn {
                messages,
                model: wire.model,
                sampling,
                session_id: wire.session_id,
                user: wire.user_id.or(wire.user),
                // Chat Completions has no way to show an approval request: such calls are declined.
                approval: ApprovalInput::default(),
                thread: ResponseThread::default(),
            },
            stream: wire.stream.unwrap_or(false),
            include_usage: wire.stream_options.and_then(|o| o.0.include_usage).unwrap_or(false),
        })
    }
}

/// The body as sent. Unknown fields (client `tools`, `tool_choice`, `n`, …) are ignored.
#[derive(Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "messages")]
    messages: Option<Vec<Obj<WireMessage>>>,
    #[serde(default)]
    stream_options: Option<Obj<StreamOptions>>,
    #[serde(default, deserialize_with = "reader::opt_positive")]
    max_completion_tokens: Option<u32>,
    #[serde(default, deserialize_with = "reader::opt_positive")]
    max_tokens: Option<u32>,
    #[serde(default, deserialize_with = "reader::temperature_openai")]
    temperature: Option<f64>,
    #[serde(default, deserialize_with = "reader::top_p")]
    top_p: Option<f64>,
    #[serde(default, deserialize_with = "reader::opt_u64")]
    seed: Option<u64>,
    #[serde(default, deserialize_with = "reader::stop")]
    stop: Option<StopSequences>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    session_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    user: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_bool")]
    stream: Option<bool>,
}

impl Expect for Wire {
    const EXPECTING: &'static str = "expected a JSON object";
}

fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Obj<WireMessage>>>, D::Error> {
    reader::seq_at_most(d, MAX_INPUT_MESSAGES, "messages", "expected a list of messages")
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default, deserialize_with = "reader::opt_bool")]
    include_usage: Option<bool>,
}

impl Expect for StreamOptions {
    const EXPECTING: &'static str = "expected an object";
}

#[derive(Clone, Copy)]
enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, deserialize_with = "role")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "content")]
    content: Option<TextOrList<Part>>,
    #[serde(default, deserialize_with = "tool_calls")]
    tool_calls: Option<Vec<Obj<WireCall>>>,
    #[serde(default, deserialize_with = "reader::opt_text")]
    tool_call_id: Option<String>,
}

impl Expect for WireMessage {
    const EXPECTING: &'static str = "expected an object";
}

const ROLES: &str = "expected system, developer, user, assistant or tool";

fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
    let words = [
        ("system", Role::System),
        ("developer", Role::System),
        ("user", Role::User),
        ("assistant", Role::Assistant),
        ("tool", Role::Tool),
    ];
    reader::one_of(d, &words, ROLES)
}

impl WireMessage {
    fn into_items(self, at: &str) -> Result<Vec<HistoryItem>, RequestError> {
        let content = match self.content {
            None => String::new(),
            Some(TextOrList::Text(text)) => text,
            Some(TextOrList::List(parts)) => reader::parts_text(&format!("{at}.content"), &parts, part_rule)?,
        };
        Ok(match self.role {
            Some(Role::System) => text_item(content, |content| ChatMessage::System { content }),
            Some(Role::User) => text_item(content, |content| ChatMessage::User { content }),
            Some(Role::Assistant) => {
                let mut items = text_item(content, |content| ChatMessage::Assistant {
                    content: Some(content),
                    tool_calls: Vec::new(),
                });
                let calls = self.tool_calls.unwrap_or_default();
                items.extend(calls.into_iter().map(|call| HistoryItem::Call(call.0.into_call())));
                items
            }
            Some(Role::Tool) => match self.tool_call_id {
                Some(call_id) => vec![HistoryItem::Output { call_id, content }],
                None => return Err(field(format!("{at}.tool_call_id"), "expected a string")),
            },
            None => return Err(field(format!("{at}.role"), ROLES)),
        })
    }
}

/// Chat Completions' content part types; a refusal part's text is the refusal.
fn part_rule(part: &Part) -> PartRule {
    match part.type_.as_str() {
        Some("text") => PartRule::Text,
        Some("refusal") => PartRule::Refusal,
        Some("image_url") => PartRule::Note("[image]"),
        Some("input_audio") => PartRule::Note("[audio]"),
        Some("file") => PartRule::Note("[file]"),
        _ => PartRule::Refuse("expected text, image_url, input_audio, file or refusal"),
    }
}

/// `content`: a string, null, or parts (`text` parts joined by newlines, others as a short note).
fn content<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TextOrList<Part>>, D::Error> {
    reader::text_or_list(d, MAX_CONTENT_ITEMS, "parts", "expected a string or a list of content parts")
}

fn tool_calls<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Obj<WireCall>>>, D::Error> {
    reader::seq_at_most(d, usize::MAX, "calls", "expected a list")
}

#[derive(Deserialize)]
struct WireCall {
    #[serde(deserialize_with = "reader::string")]
    id: String,
    function: Obj<WireFunction>,
}

impl Expect for WireCall {
    const EXPECTING: &'static str = "expected an object";
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(deserialize_with = "reader::string")]
    name: String,
    #[serde(default, deserialize_with = "reader::opt_text")]
    arguments: Option<String>,
}

impl Expect for WireFunction {
    const EXPECTING: &'static str = "expected an object";
}

impl WireCall {
    fn into_call(self) -> ToolCall {
        let arguments = self.function.0.arguments.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| "{}".to_owned());
        ToolCall::new(self.id, self.function.0.name, arguments)
    }
}

fn text_item(content: String, make: impl FnOnce(String) -> ChatMessage) -> Vec<HistoryItem> {
    if content.is_empty() { Vec::new() } else { vec![HistoryItem::Message(make(content))] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(body: Value) -> Result<CompletionsRequest, RequestError> {
        CompletionsRequest::from_slice(body.to_string().as_bytes())
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
        assert_eq!(request.turn.sampling.stop, Some(StopSequences::One("END".into())));
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
