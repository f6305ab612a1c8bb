//! `AgentRequest`: the body of `POST /process`, parsed and validated by hand so that every rejection names
//! the field (`input[2].content[0].text: expected a string`) — it becomes a 400 `invalid_request` message.

use serde_json::{Map, Value};

use crate::llm::{Sampling, Stop};
use crate::pipeline::{Ask, UserClaim};
use crate::protocol::{RequestError, field, opt_number};

/// More messages than this in `input` is refused: a conversation that long is a client bug or an attack,
/// and the model could not take it anyway.
pub const MAX_INPUT_MESSAGES: usize = 1000;
/// Content items per message.
pub const MAX_CONTENT_ITEMS: usize = 256;
/// JSON nesting depth of the whole body (tool arguments and schemas included). serde_json itself stops
/// at 128, which keeps the parser off the stack limit; this tighter bound is ours.
pub const MAX_DEPTH: usize = 64;

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
        let text = std::str::from_utf8(body).map_err(|e| RequestError::NotUtf8 { at: e.valid_up_to() })?;
        let value: Value = serde_json::from_str(text).map_err(|e| RequestError::NotJson(e.to_string()))?;
        AgentRequest::from_value(&value)
    }

    /// Validates an already parsed body (used for requests found inside event envelopes).
    pub fn from_value(value: &Value) -> Result<AgentRequest, RequestError> {
        if depth(value) > MAX_DEPTH {
            return Err(RequestError::TooDeep { max: MAX_DEPTH });
        }
        let obj = value.as_object().ok_or_else(|| field("body", "expected a JSON object"))?;
        let input = parse_input(obj.get("input"))?;
        let request = AgentRequest {
            input,
            session_id: opt_string(obj, "session_id")?,
            user_id: opt_string(obj, "user_id")?,
            stream: match obj.get("stream") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(field("stream", "expected true or false")),
            },
            model: opt_string(obj, "model")?,
            temperature: opt_number(obj, "temperature", |t| t >= 0.0, "must be a number ≥ 0")?,
            top_p: opt_number(obj, "top_p", |p| p > 0.0 && p <= 1.0, "must be a number in (0, 1]")?,
            max_tokens: match obj.get("max_tokens") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .filter(|n| *n >= 1)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| field("max_tokens", "expected a positive integer"))?,
                ),
            },
            stop: parse_stop(obj.get("stop"))?,
            seed: match obj.get("seed") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| field("seed", "expected a non-negative integer"))?),
            },
            tools: match obj.get("tools") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => {
                    for (i, t) in items.iter().enumerate() {
                        if !t.is_object() {
                            return Err(field(format!("tools[{i}]"), "expected an object"));
                        }
                    }
                    Some(items.clone())
                }
                Some(_) => return Err(field("tools", "expected a list of tool objects")),
            },
            id: opt_string(obj, "id")?,
        };
        // `[{}]`, only reasoning, only unanswered calls …: the model would get the system prompt alone, after
        // a token exchange and an MCP session were spent on it. Cheaper and clearer to refuse it here.
        if request.to_chat_messages().is_empty() {
            return Err(field("input", "holds no message the model can read (text, or a call with its output)"));
        }
        Ok(request)
    }

    /// A request holding one user text message — what an event invocation becomes.
    pub(crate) fn from_text(text: impl Into<String>, session_id: Option<String>) -> AgentRequest {
        AgentRequest {
            input: vec![InputMessage {
                id: None,
                role: Some(Role::User),
                kind: MessageType::Message,
                content: vec![ContentItem::Text(text.into())],
            }],
            session_id,
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
                stop: self.stop.clone().map(Stop::Many),
            },
            user,
            session_id: self.session_id().map(str::to_owned),
            records: self.to_records(),
        }
    }
}

/// Depth of nested arrays/objects, iteratively (a recursive walk is what the bound is there to avoid).
pub(crate) fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        if d > MAX_DEPTH {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, RequestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field(key, "expected a string")),
    }
}

fn parse_stop(value: Option<&Value>) -> Result<Option<Vec<String>>, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| field(format!("stop[{i}]"), "expected a string")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(field("stop", "expected a string or a list of strings")),
    }
}

fn parse_input(value: Option<&Value>) -> Result<Vec<InputMessage>, RequestError> {
    let items = match value {
        None | Some(Value::Null) => return Err(field("input", "required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(field("input", "expected a list of messages")),
    };
    if items.is_empty() {
        return Err(field("input", "must hold at least one message"));
    }
    if items.len() > MAX_INPUT_MESSAGES {
        return Err(field("input", format!("more than {MAX_INPUT_MESSAGES} messages")));
    }
    items.iter().enumerate().map(|(i, m)| parse_message(i, m)).collect()
}

fn parse_message(i: usize, value: &Value) -> Result<InputMessage, RequestError> {
    let at = |key: &str| format!("input[{i}].{key}");
    let obj = value.as_object().ok_or_else(|| field(format!("input[{i}]"), "expected a message object"))?;
    let role = match obj.get("role") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            "tool" => Role::Tool,
            _ => {
                return Err(field(at("role"), "expected one of user, assistant, system, tool"));
            }
        }),
        Some(_) => return Err(field(at("role"), "expected a string")),
    };
    let kind = match obj.get("type") {
        None | Some(Value::Null) => MessageType::Message,
        Some(Value::String(s)) => match s.as_str() {
            "message" => MessageType::Message,
            "function_call" => MessageType::FunctionCall,
            "function_call_output" => MessageType::FunctionCallOutput,
            "plugin_call" => MessageType::PluginCall,
            "plugin_call_output" => MessageType::PluginCallOutput,
            "reasoning" => MessageType::Reasoning,
            other => MessageType::Other(other.to_owned()),
        },
        Some(_) => return Err(field(at("type"), "expected a string")),
    };
    let content = match obj.get("content") {
        None | Some(Value::Null) => Vec::new(),
        // Not in the schema, but what OpenAI-style clients send; accepting it costs nothing.
        Some(Value::String(s)) => vec![ContentItem::Text(s.clone())],
        Some(Value::Array(items)) => {
            if items.len() > MAX_CONTENT_ITEMS {
                return Err(field(at("content"), format!("more than {MAX_CONTENT_ITEMS} items")));
            }
            items
                .iter()
                .enumerate()
                .map(|(j, c)| parse_content(&at(&format!("content[{j}]")), c))
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(field(at("content"), "expected a list of content items")),
    };
    // Lenient: ids were ignored before session memory, so a client's non-string id is not a reason to refuse.
    let id = obj.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned);
    Ok(InputMessage { id, role, kind, content })
}

fn parse_content(at: &str, value: &Value) -> Result<ContentItem, RequestError> {
    let obj = value.as_object().ok_or_else(|| field(at, "expected a content object"))?;
    let sub = |key: &str| format!("{at}.{key}");
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        None | Some(Value::Null) => return Err(field(sub("type"), "required")),
        Some(_) => return Err(field(sub("type"), "expected a string")),
    };
    Ok(match kind {
        "text" => ContentItem::Text(
            opt_string(obj, "text").map_err(|_| field(sub("text"), "expected a string"))?.unwrap_or_default(),
        ),
        "refusal" => ContentItem::Refusal(
            opt_string(obj, "refusal").map_err(|_| field(sub("refusal"), "expected a string"))?.unwrap_or_default(),
        ),
        "image" => ContentItem::Image {
            url: opt_string(obj, "image_url").map_err(|_| field(sub("image_url"), "expected a string"))?,
        },
        "data" => ContentItem::Data(match obj.get("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(field(sub("data"), "expected an object")),
        }),
        "audio" => ContentItem::Audio,
        "file" => ContentItem::File {
            name: ["filename", "file_url", "file_id"]
                .iter()
                .find_map(|k| obj.get(*k).and_then(Value::as_str))
                .map(str::to_owned),
        },
        other => ContentItem::Other(other.to_owned()),
    })
}
