//! The body of `POST /compatible-mode/v1/responses` (`response_create_params`), read by the protocol reader
//! into typed structs so every refusal names the field (`input[2].content[0].text: expected a string`).
//!
//! Decisions (the issue and the seed are silent):
//! - `developer` messages are system messages (the seed drops them); `instructions` is one more system
//!   message before the input.
//! - `reasoning` and `mcp_list_tools` items are dropped; a replayed `mcp_call` with its `output` is a tool
//!   call and its result, like a `function_call` with its `function_call_output`.
//! - `previous_response_id` continues the session the response was issued in (its id names it, see
//!   `response_id`; the store's response index says whether this user was issued it). It cannot be used
//!   with `conversation`, as in the API. A request naming neither gets a session of its own unless
//!   `store: false` (OpenAI keeps every response by default), so any response can be continued.
//!   `item_reference` is still refused.
//! - Client `tools` are read for one thing: an `mcp` tool's `require_approval`, for the function's server
//!   of that `server_label` (the function connects only to its own servers; `server_url`, `headers` and
//!   `allowed_tools` are not read). `tool_choice`, `reasoning`, `text` are ignored.
//! - The user is `user_id`, else `safety_identifier`, else `user` (no fallback to the conversation).

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::response_id;
use crate::agent::RequireApproval;
use crate::llm::{ChatMessage, Sampling, ToolCall};
use crate::pipeline::{ApprovalAnswer, ApprovalInput, ResentRequest, ResponseThread};
use crate::protocol::agentscope::{HistoryItem, MAX_CONTENT_ITEMS, MAX_INPUT_MESSAGES, assemble_history};
use crate::protocol::openai::OpenAiTurn;
use crate::protocol::reader::{self, Expect, Loose, Obj, Part, PartRule, TextOrList};
use crate::protocol::{RequestError, field};

/// `metadata` bounds of the API: 16 pairs, keys ≤ 64 characters, values ≤ 512.
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;
/// `tools` entries read (OpenAI allows 128 tools a request).
const MAX_TOOLS: usize = 128;
/// Tool names one `require_approval` filter may list.
const MAX_TOOL_NAMES: usize = 128;

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
    /// `background: true`: the turn is queued and collected later (docs/background.md).
    pub(crate) background: bool,
    /// The id the Response carries: one naming its session when the response is kept (`store`), so
    /// `previous_response_id` can continue it; `None`: a fresh id no one can continue.
    pub(crate) response_id: Option<String>,
    pub(crate) previous_response_id: Option<String>,
}

impl ResponsesRequest {
    /// `servers`: the function's MCP server labels, which a request's `mcp` tools must name.
    pub(crate) fn from_slice(body: &[u8], servers: &[String]) -> Result<ResponsesRequest, RequestError> {
        let wire = reader::read::<Wire>(body)?;
        let mut items = Vec::new();
        let requested = requested_approvals(wire.tools.unwrap_or_default(), servers)?;
        let mut approval = ApprovalInput { can_ask: true, requested, ..ApprovalInput::default() };
        if let Some(text) = &wire.instructions {
            items.push(HistoryItem::Message(ChatMessage::System { content: text.clone() }));
        }
        match wire.input {
            None => return Err(field("input", "required: a string or a list of items")),
            Some(TextOrList::Text(text)) if text.trim().is_empty() => return Err(field("input", "is empty")),
            Some(TextOrList::Text(text)) => items.push(HistoryItem::Message(ChatMessage::User { content: text })),
            Some(TextOrList::List(list)) => {
                for (i, item) in list.into_iter().enumerate() {
                    let at = format!("input[{i}]");
                    match item.0.kind.as_ref().and_then(Loose::as_str) {
                        Some("mcp_approval_response") => approval.answers.push(item.0.answer(&at)?),
                        Some("mcp_approval_request") => approval.resent.push(item.0.resent(&at)?),
                        _ => items.extend(item.0.into_items(&at)?),
                    }
                }
            }
        }
        let messages = assemble_history(&items);
        // An answer to an approval request is enough input: the turn goes on from the approved call.
        if approval.answers.is_empty() && !messages.iter().any(|m| !matches!(m, ChatMessage::System { .. })) {
            return Err(field("input", "holds no message the model can read (text, or a call with its output)"));
        }
        let sampling = Sampling {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_output_tokens,
            ..Sampling::default()
        };
        let conversation = match wire.conversation {
            Some(Conversation(id)) if !id.trim().is_empty() => Some(id),
            _ => wire.session_id,
        };
        let keep = wire.store != Some(false);
        let (session_id, thread) = match (&conversation, wire.previous_response_id) {
            (Some(_), Some(_)) => {
                return Err(field("previous_response_id", "cannot be used together with conversation"));
            }
            (Some(session), None) => (Some(session.clone()), ResponseThread::default()),
            // An id not of ours names no session: refused before the turn as not found.
            (None, Some(previous)) => {
                let thread = ResponseThread { continues: Some(previous.clone()), ..ResponseThread::default() };
                (response_id::session_of(&previous), thread)
            }
            // An answer needs the session its request was asked in: a new one holds none (refused as before).
            (None, None) if keep && approval.answers.is_empty() => {
                let thread = ResponseThread { implicit_session: true, ..ResponseThread::default() };
                (Some(response_id::new_session_id()), thread)
            }
            (None, None) => (None, ResponseThread::default()),
        };
        let thread =
            ResponseThread { issues: session_id.as_deref().filter(|_| keep).map(response_id::issue), ..thread };
        let echo = Echo {
            instructions: wire.instructions,
            metadata: wire.metadata.unwrap_or_default(),
            conversation,
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            max_output_tokens: sampling.max_tokens,
            background: wire.background.unwrap_or(false),
            response_id: thread.issues.clone(),
            previous_response_id: thread.continues.clone(),
        };
        let user = wire.user_id.or(wire.safety_identifier).or(wire.user);
        let turn = OpenAiTurn { messages, model: wire.model, sampling, session_id, user, approval, thread };
        Ok(ResponsesRequest { turn, stream: wire.stream.unwrap_or(false), echo })
    }
}

/// The body as sent. Unknown fields (`tool_choice`, `reasoning`, `text`, …) are ignored.
#[derive(Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "reader::opt_string")]
    previous_response_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_bool")]
    store: Option<bool>,
    #[serde(default, deserialize_with = "tools")]
    tools: Option<Vec<Obj<Tool>>>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    instructions: Option<String>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default, deserialize_with = "input")]
    input: Option<TextOrList<Obj<Item>>>,
    #[serde(default, deserialize_with = "reader::temperature_openai")]
    temperature: Option<f64>,
    #[serde(default, deserialize_with = "reader::top_p")]
    top_p: Option<f64>,
    #[serde(default, deserialize_with = "reader::opt_positive")]
    max_output_tokens: Option<u32>,
    #[serde(default, deserialize_with = "metadata")]
    metadata: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "conversation")]
    conversation: Option<Conversation>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    session_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    safety_identifier: Option<String>,
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

/// One entry of `tools`: only an `mcp` tool's label and `require_approval` are read.
#[derive(Deserialize)]
struct Tool {
    #[serde(rename = "type", default)]
    kind: Loose,
    #[serde(default)]
    server_label: Loose,
    #[serde(default)]
    require_approval: Option<Value>,
}

impl Expect for Tool {
    const EXPECTING: &'static str = "expected a tool object";
}

fn tools<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Obj<Tool>>>, D::Error> {
    reader::seq_at_most(d, MAX_TOOLS, "tools", "expected a list of tools")
}

/// The `mcp` tools' approval rules by server label. A label that names none of the function's servers is
/// refused (a rule the function would silently not apply could leave a call unapproved that the client
/// meant to approve).
fn requested_approvals(
    tools: Vec<Obj<Tool>>,
    servers: &[String],
) -> Result<Vec<(String, RequireApproval)>, RequestError> {
    let mut out = Vec::new();
    for (i, Obj(tool)) in tools.into_iter().enumerate() {
        if tool.kind.as_str() != Some("mcp") {
            continue;
        }
        let label =
            tool.server_label.non_blank().ok_or_else(|| field(format!("tools[{i}].server_label"), "required"))?;
        if !servers.iter().any(|server| server == label) {
            let known = if servers.is_empty() { "none".to_owned() } else { servers.join(", ") };
            return Err(field(
                format!("tools[{i}].server_label"),
                format!(
                    "names none of this function's MCP servers (its servers: {known}); an mcp tool can only set require_approval for one of them"
                ),
            ));
        }
        let rule = require_approval(&format!("tools[{i}].require_approval"), tool.require_approval)?;
        out.push((label.to_owned(), rule));
    }
    Ok(out)
}

/// OpenAI's `McpRequireApproval`: `"always"`, `"never"`, or `{always?: {tool_names}, never?: {tool_names}}`;
/// absent is `"always"`, OpenAI's default.
fn require_approval(at: &str, value: Option<Value>) -> Result<RequireApproval, RequestError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(RequireApproval::Always),
        Some(Value::String(word)) if word == "always" => return Ok(RequireApproval::Always),
        Some(Value::String(word)) if word == "never" => return Ok(RequireApproval::Never),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(field(at, "expected always, never or {\"always\"|\"never\": {\"tool_names\": […]}}")),
    };
    let mut lists = [Vec::new(), Vec::new()];
    for (key, filter) in object {
        let slot = match key.as_str() {
            "always" => 0,
            "never" => 1,
            _ => return Err(field(format!("{at}.{key}"), "not a filter (expected always or never)")),
        };
        lists[slot] = tool_names(&format!("{at}.{key}"), filter)?;
    }
    let [always, never] = lists;
    Ok(RequireApproval::Filter { always, never })
}

/// A filter `{tool_names: [..]}`. `read_only` is refused: the function does not read tools' annotations,
/// and guessing could run a call the user wanted to approve.
fn tool_names(at: &str, filter: Value) -> Result<Vec<String>, RequestError> {
    let object = match filter {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        _ => return Err(field(at, "expected {\"tool_names\": […]}")),
    };
    let mut names = Vec::new();
    for (key, value) in object {
        match (key.as_str(), value) {
            ("tool_names", Value::Array(list)) if list.len() <= MAX_TOOL_NAMES => {
                for (j, name) in list.into_iter().enumerate() {
                    match name {
                        Value::String(name) => names.push(name),
                        _ => return Err(field(format!("{at}.tool_names[{j}]"), "expected a string")),
                    }
                }
            }
            ("tool_names", Value::Null) => {}
            ("tool_names", _) => {
                return Err(field(
                    format!("{at}.tool_names"),
                    format!("expected a list of at most {MAX_TOOL_NAMES} names"),
                ));
            }
            ("read_only", _) => {
                return Err(field(format!("{at}.read_only"), "not supported: name the tools in tool_names"));
            }
            _ => return Err(field(format!("{at}.{key}"), "unknown (expected tool_names)")),
        }
    }
    Ok(names)
}

/// `input`: a string (one user message) or a list of items.
fn input<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TextOrList<Obj<Item>>>, D::Error> {
    reader::text_or_list(d, MAX_INPUT_MESSAGES, "items", "expected a string or a list of items")
}

/// `conversation`: an id, or `{id}`.
struct Conversation(String);

#[derive(Deserialize)]
struct ConversationObject {
    #[serde(deserialize_with = "reader::string")]
    id: String,
}

impl Expect for ConversationObject {
    const EXPECTING: &'static str = "expected a string or {\"id\": …}";
}

fn conversation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Conversation>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Conversation>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("expected a string or {\"id\": …}")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(Conversation(s.to_owned())))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let object = ConversationObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(Conversation(object.id)))
        }
    }
    d.deserialize_any(V)
}

/// `metadata`: at most 16 pairs of strings, as the API bounds them.
fn metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Map<String, Value>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("expected an object of string values")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            if map.size_hint().unwrap_or(0) > MAX_METADATA_PAIRS {
                return Err(serde::de::Error::custom(format!("at most {MAX_METADATA_PAIRS} pairs")));
            }
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if key.chars().count() > MAX_METADATA_KEY || out.len() == MAX_METADATA_PAIRS {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    return Err(serde::de::Error::custom(if out.len() == MAX_METADATA_PAIRS {
                        format!("at most {MAX_METADATA_PAIRS} pairs")
                    } else {
                        format!("keys are at most {MAX_METADATA_KEY} characters")
                    }));
                }
                let MetadataValue(value) = map.next_value()?;
                out.insert(key, Value::String(value));
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

struct MetadataValue(String);

impl<'de> Deserialize<'de> for MetadataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match reader::opt_text(d) {
            Ok(Some(value)) if value.chars().count() <= MAX_METADATA_VALUE => Ok(MetadataValue(value)),
            _ => Err(serde::de::Error::custom(format!("expected a string of ≤ {MAX_METADATA_VALUE} characters"))),
        }
    }
}

/// One input item; which fields it must have depends on its `type`, so they are read leniently and
/// checked by type (the refusal names the field).
#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type", default)]
    kind: Option<Loose>,
    #[serde(default)]
    role: Option<Loose>,
    #[serde(default, deserialize_with = "content")]
    content: Option<Content>,
    #[serde(default)]
    call_id: Loose,
    #[serde(default)]
    name: Loose,
    #[serde(default)]
    arguments: Loose,
    #[serde(default)]
    id: Loose,
    #[serde(default, deserialize_with = "content")]
    output: Option<Content>,
    #[serde(default)]
    approval_request_id: Loose,
    #[serde(default, deserialize_with = "reader::opt_bool")]
    approve: Option<bool>,
    #[serde(default)]
    reason: Loose,
}

impl Expect for Item {
    const EXPECTING: &'static str = "expected an object";
}

/// A message's `content` or a call output's `output`: a string or content parts.
enum Content {
    Text(String),
    Parts(Vec<Part>),
    /// Another type: refused by the item type that needs it.
    Other,
}

fn content<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Content>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Content>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("expected a string or a list of content parts")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(Content::Text(s.to_owned())))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Some(Content::Other))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Some(Content::Other))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Some(Content::Other))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Some(Content::Other))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(Some(Content::Other))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let parts = reader::seq_at_most(
                serde::de::value::SeqAccessDeserializer::new(seq),
                MAX_CONTENT_ITEMS,
                "parts",
                "expected a string or a list of content parts",
            )?;
            Ok(parts.map(Content::Parts))
        }
    }
    d.deserialize_any(V)
}

const ITEM_TYPES: &str = "expected an item type (message, function_call, function_call_output, mcp_call, reasoning, \
                          mcp_approval_request, mcp_approval_response)";

impl Item {
    fn into_items(self, at: &str) -> Result<Vec<HistoryItem>, RequestError> {
        let kind = match self.kind.as_ref().map(|k| k.as_str()) {
            None | Some(None) if self.role.is_some() => "message",
            Some(Some(kind)) => kind,
            _ => return Err(field(format!("{at}.type"), ITEM_TYPES)),
        };
        let text = |key: &str, value: &Loose| -> Result<String, RequestError> {
            value.as_str().map(str::to_owned).ok_or_else(|| field(format!("{at}.{key}"), "expected a string"))
        };
        Ok(match kind {
            "message" => self.message(at)?.map(HistoryItem::Message).into_iter().collect(),
            "function_call" => vec![HistoryItem::Call(call(
                text("call_id", &self.call_id)?,
                text("name", &self.name)?,
                text("arguments", &self.arguments)?,
            ))],
            "function_call_output" => {
                let call_id = text("call_id", &self.call_id)?;
                vec![HistoryItem::Output { call_id, content: content_text(&format!("{at}.output"), self.output)? }]
            }
            "mcp_call" => {
                let id = text("id", &self.id)?;
                let call = call(id.clone(), text("name", &self.name)?, text("arguments", &self.arguments)?);
                match self.output {
                    Some(Content::Text(output)) => {
                        vec![HistoryItem::Call(call), HistoryItem::Output { call_id: id, content: output }]
                    }
                    _ => Vec::new(), // a call without its result cannot be replayed to the model
                }
            }
            "reasoning" | "mcp_list_tools" => Vec::new(),
            "item_reference" => {
                return Err(field(
                    at,
                    "item_reference is not supported: responses are not stored; send the item itself",
                ));
            }
            _ => return Err(field(format!("{at}.type"), ITEM_TYPES)),
        })
    }

    /// `mcp_approval_response`: `approval_request_id` and `approve` required, `reason` optional.
    fn answer(&self, at: &str) -> Result<ApprovalAnswer, RequestError> {
        let request_id = self.approval_request_id.non_blank().ok_or_else(|| {
            field(format!("{at}.approval_request_id"), "required: the id of the mcp_approval_request answered")
        })?;
        let approve = self.approve.ok_or_else(|| field(format!("{at}.approve"), "required: true or false"))?;
        Ok(ApprovalAnswer {
            request_id: request_id.to_owned(),
            approve,
            reason: self.reason.non_blank().map(str::to_owned),
        })
    }

    /// `mcp_approval_request` sent back with the conversation: its arguments must be the ones asked about.
    fn resent(&self, at: &str) -> Result<ResentRequest, RequestError> {
        let request_id = self.id.non_blank().ok_or_else(|| field(format!("{at}.id"), "required"))?;
        let arguments = self.arguments.as_str().ok_or_else(|| field(format!("{at}.arguments"), "expected a string"))?;
        Ok(ResentRequest { request_id: request_id.to_owned(), arguments: arguments.to_owned() })
    }

    fn message(self, at: &str) -> Result<Option<ChatMessage>, RequestError> {
        let content = content_text(&format!("{at}.content"), self.content)?;
        if content.is_empty() {
            return Ok(None);
        }
        Ok(Some(match self.role.as_ref().and_then(Loose::as_str) {
            Some("user") => ChatMessage::User { content },
            Some("assistant") => ChatMessage::Assistant { content: Some(content), tool_calls: Vec::new() },
            Some("system" | "developer") => ChatMessage::System { content },
            _ => return Err(field(format!("{at}.role"), "expected user, assistant, system or developer")),
        }))
    }
}

fn call(call_id: String, name: String, arguments: String) -> ToolCall {
    let arguments = if arguments.trim().is_empty() { "{}".to_owned() } else { arguments };
    ToolCall::new(call_id, name, arguments)
}

/// A string, or content parts: text parts joined by newlines; images, files and audio as a short note.
fn content_text(at: &str, content: Option<Content>) -> Result<String, RequestError> {
    match content {
        Some(Content::Text(text)) => Ok(text),
        Some(Content::Parts(parts)) => reader::parts_text(at, &parts, part_rule),
        _ => Err(field(at, "expected a string or a list of content parts")),
    }
}

/// The Responses API's content part types.
fn part_rule(part: &Part) -> PartRule {
    match part.type_.as_str() {
        Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text") => PartRule::Text,
        Some("refusal") => PartRule::Refusal,
        Some("input_image") => PartRule::Note("[image]"),
        Some("input_file") => PartRule::Note("[file]"),
        Some("input_audio") => PartRule::Note("[audio]"),
        _ => PartRule::Refuse("expected input_text, output_text, refusal, input_image, input_file or input_audio"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::UserClaim;
    use serde_json::json;

    fn parse(body: Value) -> Result<ResponsesRequest, RequestError> {
        ResponsesRequest::from_slice(body.to_string().as_bytes(), &["mcp".to_owned()])
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
        let both = json!({"input": "x", "previous_response_id": "resp_1", "conversation": "c"});
        assert!(refusal(both).starts_with("previous_response_id: cannot be used together with conversation"));
        assert!(refusal(json!({"input": "x", "stream": "yes"})).starts_with("stream:"));
        assert!(ResponsesRequest::from_slice(b"[1", &[]).err().unwrap().to_string().starts_with("body:"));
    }

    #[test]
    fn a_kept_response_names_its_session_and_a_previous_one_continues_it() {
        // A conversation: the response id names it.
        let named = parse(json!({"input": "hi", "conversation": "c1"})).unwrap();
        assert_eq!(named.turn.session_id.as_deref(), Some("c1"));
        let issued = named.turn.thread.issues.clone().unwrap();
        assert_eq!(response_id::session_of(&issued).as_deref(), Some("c1"));
        assert_eq!(named.echo.response_id.as_deref(), Some(issued.as_str()));
        assert!(!named.turn.thread.implicit_session && named.turn.thread.continues.is_none());
        // previous_response_id: the session its id names, and a new id in the same session.
        let next = parse(json!({"input": "more", "previous_response_id": issued})).unwrap();
        assert_eq!(next.turn.session_id.as_deref(), Some("c1"));
        assert_eq!(next.turn.thread.continues.as_deref(), Some(issued.as_str()));
        assert_eq!(next.echo.previous_response_id.as_deref(), Some(issued.as_str()));
        assert_ne!(next.turn.thread.issues.as_deref(), Some(issued.as_str()));
        assert_eq!(next.echo.conversation, None, "the request named no conversation");
        // Neither: a session of its own, so this response can be continued too.
        let fresh = parse(json!({"input": "hi"})).unwrap();
        assert!(fresh.turn.thread.implicit_session && fresh.turn.session_id.is_some());
        // store: false keeps nothing: no session made up, an id no one can continue.
        let unkept = parse(json!({"input": "hi", "store": false})).unwrap();
        assert_eq!((unkept.turn.session_id, unkept.turn.thread), (None, ResponseThread::default()));
        // An id not of ours names no session (refused before the turn, as not found).
        let made_up = parse(json!({"input": "hi", "previous_response_id": "resp_1"})).unwrap();
        assert_eq!((made_up.turn.session_id, made_up.turn.thread.issues), (None, None));
        // An answer without a session: no session is made up for it (it is refused as before).
        let answer = json!({"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": true});
        assert_eq!(parse(json!({"input": [answer]})).unwrap().turn.session_id, None);
    }

    #[test]
    fn an_mcp_tools_require_approval_is_read_as_openai_documents_it() {
        let rules = |require: Value| {
            let body = json!({"input": "hi", "tools": [{"type": "function", "name": "f"},
                {"type": "mcp", "server_label": "mcp", "server_url": "https://elsewhere", "require_approval": require}]});
            parse(body).map(|r| r.turn.approval.requested)
        };
        let only = |rule| Ok(vec![("mcp".to_owned(), rule)]);
        assert_eq!(rules(json!("always")), only(RequireApproval::Always));
        assert_eq!(rules(json!("never")), only(RequireApproval::Never));
        assert_eq!(rules(Value::Null), only(RequireApproval::Always), "OpenAI's default");
        assert_eq!(
            rules(json!({"never": {"tool_names": ["getutctime"]}, "always": {"tool_names": ["helloworld"]}})),
            only(RequireApproval::Filter { always: vec!["helloworld".into()], never: vec!["getutctime".into()] })
        );
        let refused = |require: Value| rules(require).unwrap_err().to_string();
        assert!(refused(json!("sometimes")).starts_with("tools[1].require_approval: expected always, never"));
        assert!(
            refused(json!({"never": {"read_only": true}})).starts_with("tools[1].require_approval.never.read_only:")
        );
        assert!(
            refused(json!({"never": {"tool_names": [1]}}))
                .starts_with("tools[1].require_approval.never.tool_names[0]:")
        );
        assert!(refused(json!({"maybe": {}})).starts_with("tools[1].require_approval.maybe:"));
        let elsewhere = json!({"input": "hi", "tools": [{"type": "mcp", "server_label": "bank"}]});
        let refusal = refusal(elsewhere);
        assert!(
            refusal.starts_with("tools[0].server_label: names none of this function's MCP servers (its servers: mcp)"),
            "{refusal}"
        );
        assert!(!refusal.contains("bank"), "the value is not echoed");
        assert_eq!(parse(json!({"input": "hi", "tools": [{"type": "function"}]})).unwrap().turn.approval.requested, []);
    }
}
