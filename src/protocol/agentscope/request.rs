//! `AgentRequest`: the body of `POST /process`, read by the protocol reader into typed structs so that every
//! rejection names the field (`input[2].content[0].text: expected a string`) — it becomes a 400
//! `invalid_request` message.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::llm::{Sampling, StopSequences};
use crate::pipeline::{Ask, ResponseThread, UserClaim};
use crate::protocol::reader::{self, Expect, Loose, Obj};
use crate::protocol::{RequestError, field};

/// More messages than this in `input` is refused: a conversation that long is a client bug or an attack,
/// and the model could not take it anyway.
pub const MAX_INPUT_MESSAGES: usize = 1000;
/// Content items per message.
pub const MAX_CONTENT_ITEMS: usize = 256;
/// JSON nesting depth of the whole body: the reader's bound, the same on every face.
pub use crate::protocol::reader::MAX_DEPTH;

/// A parsed, validated `AgentRequest`. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRequest {
    /// Never empty.
    pub input: Vec<InputMessage>,
    /// As sent (may be empty); see [`AgentRequest::session_id`].
    pub session_id: Option<String>,
    /// As sent (may be empty); see [`AgentRequest::user_id`]. The seed falls back to `session_id`; the app
    /// decides whether to.
    pub(crate) user_id: Option<String>,
    /// Defaults to true.
    pub stream: bool,
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// A single string is normalised to a one-element list.
    pub stop: Option<Vec<String>>,
    pub seed: Option<u64>,
    /// OpenAI-style tool definitions, kept as sent (each an object).
    pub tools: Option<Vec<Value>>,
    pub id: Option<String>,
}

/// One message of `input`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMessage {
    /// The message's `id` when sent: session memory stores a message once per id.
    pub id: Option<String>,
    /// `None` when absent or null (treated as `user` for plain messages).
    pub role: Option<Role>,
    pub kind: MessageType,
    pub content: Vec<ContentItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
}

/// The message `type`. AgentScope has more types than the ones we map (mcp_*, component_*, heartbeat …);
/// those parse as `Other` and are left out of the model conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageType {
    Message,
    FunctionCall,
    FunctionCallOutput,
    PluginCall,
    PluginCallOutput,
    Reasoning,
    Other(String),
}

/// One content item of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentItem {
    Text(String),
    Image {
        url: Option<String>,
    },
    /// For calls `{call_id,name,arguments}`, for outputs `{call_id,name?,output}`; kept raw and read leniently.
    Data(Map<String, Value>),
    Audio,
    File {
        name: Option<String>,
    },
    Refusal(String),
    /// An item `type` we do not know, kept by name for a short note.
    Other(String),
}

impl AgentRequest {
    /// Parses and validates a request body.
    pub fn from_slice(body: &[u8]) -> Result<AgentRequest, RequestError> {
        AgentRequest::from_wire(reader::read::<Wire>(body)?)
    }

    /// Validates an already parsed body (used for requests found inside event envelopes).
    pub fn from_value(value: &Value) -> Result<AgentRequest, RequestError> {
        reader::check_depth(value)?;
        AgentRequest::from_wire(reader::typed::<Obj<Wire>>(value)?.0)
    }

    fn from_wire(wire: Wire) -> Result<AgentRequest, RequestError> {
        let input = wire.input.ok_or_else(|| field("input", "required"))?;
        if input.is_empty() {
            return Err(field("input", "must hold at least one message"));
        }
        let request = AgentRequest {
            input: input.into_iter().map(|m| m.0.into_message()).collect(),
            session_id: wire.session_id,
            user_id: wire.user_id,
            stream: wire.stream.unwrap_or(true),
            model: wire.model,
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_tokens,
            stop: wire.stop.map(|stop| match stop {
                StopSequences::One(one) => vec![one],
                StopSequences::Many(many) => many,
            }),
            seed: wire.seed,
            tools: wire.tools.map(|tools| tools.into_iter().map(|t| Value::Object(t.0)).collect()),
            id: wire.id,
        };
        // `[{}]`, only reasoning, only unanswered calls …: the model would get the system prompt alone, after
        // a token exchange and an MCP session were spent on it. Cheaper and clearer to refuse it here.
        let approval = request.approval_input()?;
        if approval.answers.is_empty() && request.to_chat_messages().is_empty() {
            return Err(field("input", "holds no message the model can read (text, or a call with its output)"));
        }
        Ok(request)
    }

    /// A request holding one user text message — what an event invocation becomes.
    pub(crate) fn from_text(text: impl Into<String>) -> AgentRequest {
        AgentRequest {
            input: vec![InputMessage {
                id: None,
                role: Some(Role::User),
                kind: MessageType::Message,
                content: vec![ContentItem::Text(text.into())],
            }],
            session_id: None,
            user_id: None,
            stream: false,
            model: None,
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: None,
            seed: None,
            tools: None,
            id: None,
        }
    }

    /// `session_id` when sent and non-empty.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|s| !s.is_empty())
    }

    /// `user_id` when sent and non-empty (no fallback to `session_id` here).
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref().filter(|s| !s.is_empty())
    }

    /// The user an HTTP caller names in the body: `user_id`, falling back to `session_id` as the Python
    /// sample does.
    pub(crate) fn named_user(&self) -> Option<&str> {
        self.user_id().or(self.session_id())
    }

    /// What the pipeline is asked: the conversation, the model and sampling, and who the caller is.
    pub(crate) fn to_ask(&self, user: UserClaim) -> Ask {
        Ask {
            messages: self.to_chat_messages(),
            model: self.model.clone(),
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_tokens,
                seed: self.seed,
                stop: self.stop.clone().map(StopSequences::Many),
            },
            user,
            session_id: self.session_id().map(str::to_owned),
            records: self.to_records(),
            // Checked when the body was read; a request built in code carries no approval messages.
            approval: self.approval_input().unwrap_or_default(),
            thread: ResponseThread::default(),
        }
    }
}

/// The body as sent: every field typed, every rule from [`reader`]. Unknown fields are ignored.
#[derive(Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "input")]
    input: Option<Vec<Obj<WireMessage>>>,
    /// Kept as sent, `""` included: the sample echoes the request's `session_id` in every response object.
    #[serde(default, deserialize_with = "reader::opt_text")]
    session_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_text")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_bool")]
    stream: Option<bool>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "reader::temperature_any")]
    temperature: Option<f64>,
    #[serde(default, deserialize_with = "reader::top_p")]
    top_p: Option<f64>,
    #[serde(default, deserialize_with = "reader::opt_positive")]
    max_tokens: Option<u32>,
    #[serde(default, deserialize_with = "reader::stop")]
    stop: Option<StopSequences>,
    #[serde(default, deserialize_with = "reader::opt_u64")]
    seed: Option<u64>,
    #[serde(default, deserialize_with = "tools")]
    tools: Option<Vec<Tool>>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    id: Option<String>,
}

impl Expect for Wire {
    const EXPECTING: &'static str = "expected a JSON object";
}

fn input<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Obj<WireMessage>>>, D::Error> {
    reader::seq_at_most(d, MAX_INPUT_MESSAGES, "messages", "expected a list of messages")
}

fn tools<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Tool>>, D::Error> {
    reader::seq_at_most(d, usize::MAX, "tools", "expected a list of tool objects")
}

/// One tool definition: any object.
struct Tool(Map<String, Value>);

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match reader::opt_object(d)? {
            Some(map) => Ok(Tool(map)),
            None => Err(serde::de::Error::custom("expected an object")),
        }
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, deserialize_with = "role")]
    role: Option<Role>,
    #[serde(rename = "type", default, deserialize_with = "message_type")]
    kind: Option<MessageType>,
    #[serde(default, deserialize_with = "content")]
    content: Option<Vec<ContentItem>>,
    /// Lenient: ids were ignored before session memory, so a client's non-string id is not a reason to refuse.
    #[serde(default)]
    id: Loose,
}

impl Expect for WireMessage {
    const EXPECTING: &'static str = "expected a message object";
}

impl WireMessage {
    fn into_message(self) -> InputMessage {
        InputMessage {
            id: self.id.0.filter(|id| !id.is_empty()),
            role: self.role,
            kind: self.kind.unwrap_or(MessageType::Message),
            content: self.content.unwrap_or_default(),
        }
    }
}

fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Role>, D::Error> {
    let words = [("user", Role::User), ("assistant", Role::Assistant), ("system", Role::System), ("tool", Role::Tool)];
    reader::one_of(d, &words, "expected one of user, assistant, system, tool")
}

fn message_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MessageType>, D::Error> {
    Ok(reader::opt_text(d)?.map(|kind| match kind.as_str() {
        "message" => MessageType::Message,
        "function_call" => MessageType::FunctionCall,
        "function_call_output" => MessageType::FunctionCallOutput,
        "plugin_call" => MessageType::PluginCall,
        "plugin_call_output" => MessageType::PluginCallOutput,
        "reasoning" => MessageType::Reasoning,
        _ => MessageType::Other(kind),
    }))
}

/// A list of content items, or a string (not in the schema, but what OpenAI-style clients send;
/// accepting it costs nothing).
fn content<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ContentItem>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<ContentItem>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("expected a list of content items")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![ContentItem::Text(s.to_owned())]))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let items: Option<Vec<Obj<WireContent>>> = reader::seq_at_most(
                serde::de::value::SeqAccessDeserializer::new(seq),
                MAX_CONTENT_ITEMS,
                "items",
                "expected a list of content items",
            )?;
            Ok(items.map(|items| items.into_iter().map(|c| c.0.into_item()).collect()))
        }
    }
    d.deserialize_any(V)
}

#[derive(Deserialize)]
struct WireContent {
    #[serde(rename = "type", deserialize_with = "reader::string")]
    kind: String,
    #[serde(default, deserialize_with = "reader::opt_text")]
    text: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_text")]
    refusal: Option<String>,
    #[serde(default, deserialize_with = "reader::opt_string")]
    image_url: Option<String>,
    /// An object on `data` parts; a string (base64 or a URL) on `audio` parts, which are not read.
    #[serde(default)]
    data: WireData,
    #[serde(default)]
    filename: Loose,
    #[serde(default)]
    file_url: Loose,
    #[serde(default)]
    file_id: Loose,
}

/// A part's `data`: an object on a `data` part, a string (base64 or a URL) on an `audio` part — which is
/// described to the model, not read, so its string is skipped. Anything else is refused.
#[derive(Default)]
enum WireData {
    Object(Map<String, Value>),
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for WireData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(map) => Ok(WireData::Object(map)),
            Value::String(_) | Value::Null => Ok(WireData::Other),
            _ => Err(serde::de::Error::custom("expected an object")),
        }
    }
}

impl Expect for WireContent {
    const EXPECTING: &'static str = "expected a content object";
}

impl WireContent {
    fn into_item(self) -> ContentItem {
        match self.kind.as_str() {
            "text" => ContentItem::Text(self.text.unwrap_or_default()),
            "refusal" => ContentItem::Refusal(self.refusal.unwrap_or_default()),
            "image" => ContentItem::Image { url: self.image_url },
            "data" => ContentItem::Data(match self.data {
                WireData::Object(map) => map,
                WireData::Other => Map::new(),
            }),
            "audio" => ContentItem::Audio,
            "file" => ContentItem::File { name: self.filename.0.or(self.file_url.0).or(self.file_id.0) },
            _ => ContentItem::Other(self.kind),
        }
    }
}
