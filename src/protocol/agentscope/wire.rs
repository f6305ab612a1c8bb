//! The protocol's objects as they go on the wire. Strict clients depend on key order, and serde_json
//! (without `preserve_order`) sorts `Value` maps, so every object is a struct whose field order is the
//! spec's key order, or a hand-written `Serialize` that writes the keys in that order. Every key is always
//! present (null when unset).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::llm::Usage;

/// `status` of responses, messages and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    InProgress,
    Completed,
    Failed,
    Incomplete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Incomplete => "incomplete",
        }
    }
}

/// `error` of a failed or incomplete response: `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorObject {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Our own structs only hold strings, numbers and options, so serialization cannot fail; should it ever,
/// a client still gets valid JSON naming the problem instead of a panic.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!(r#"{{"error":{{"code":"internal","message":"serialization failed: {e}"}}}}"#))
}

/// The `response` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseObject {
    pub(crate) sequence_number: u64,
    pub(crate) object: &'static str,
    pub status: Status,
    pub error: Option<ErrorObject>,
    pub(crate) id: String,
    pub created_at: u64,
    pub(crate) completed_at: Option<u64>,
    pub output: Option<Vec<MessageObject>>,
    pub usage: Option<Usage>,
    pub(crate) session_id: Option<String>,
}

impl ResponseObject {
    /// Compact JSON, as an SSE event or the non-streaming body carries it.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// `type` of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Message,
    Reasoning,
    PluginCall,
    PluginCallOutput,
    /// A call waiting for the user's approval (the runtime's `MessageType.MCP_APPROVAL_REQUEST`).
    McpApprovalRequest,
    /// A keep-alive on a quiet stream (the runtime's `MessageType.HEARTBEAT`): no content, not part of
    /// the response's output.
    Heartbeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    Assistant,
    Tool,
}

/// The `message` object. `error`, `message`, `usage` and `metadata` are always null in what we send, and
/// `code` is null but on a failed tool call's output (`tool_error`); they are here because every event
/// carries every key of its object type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageObject {
    pub(crate) sequence_number: u64,
    pub(crate) object: &'static str,
    pub status: Status,
    pub(crate) error: Option<ErrorObject>,
    pub id: String,
    #[serde(rename = "type")]
    pub(crate) kind: MessageKind,
    pub(crate) role: MessageRole,
    /// Null while in progress; the completed content items once completed.
    pub(crate) content: Option<Vec<ContentObject>>,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) usage: Option<Usage>,
    pub(crate) metadata: Option<Value>,
}

/// The `content` object: text (`…, msg_id, text`) or data (`…, msg_id, data`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContentObject {
    /// Null for a content item that never travelled as an event of its own (a tool result's).
    pub(crate) sequence_number: Option<u64>,
    pub(crate) status: Status,
    pub(crate) index: u32,
    pub(crate) delta: bool,
    pub msg_id: String,
    pub(crate) body: ContentBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContentBody {
    Text(String),
    Data(ToolData),
}

/// `data` of a content item: a call or a call's output, keys in this order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolData {
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
    Output {
        call_id: String,
        name: String,
        output: String,
    },
    /// A call waiting for the user's approval: the runtime's `McpApprovalRequest` (its `id` is what the
    /// answer, an `mcp_approval_response` message, names).
    ApprovalRequest {
        id: String,
        arguments: String,
        name: String,
        server_label: String,
    },
    /// An OAuth2 consent the user must give (`TurnEvent::AuthorizationRequired`): a client acts on
    /// `{"type":"oauth2_authorization","provider":…,"url":…}` (opens the URL) instead of parsing the text.
    Authorization {
        #[serde(rename = "type")]
        kind: &'static str,
        provider: String,
        url: String,
    },
}

impl Serialize for ContentObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("sequence_number", &self.sequence_number)?;
        map.serialize_entry("object", "content")?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("error", &None::<ErrorObject>)?;
        match &self.body {
            ContentBody::Text(_) => map.serialize_entry("type", "text")?,
            ContentBody::Data(_) => map.serialize_entry("type", "data")?,
        }
        map.serialize_entry("index", &self.index)?;
        map.serialize_entry("delta", &self.delta)?;
        map.serialize_entry("msg_id", &self.msg_id)?;
        match &self.body {
            ContentBody::Text(text) => map.serialize_entry("text", text)?,
            ContentBody::Data(data) => map.serialize_entry("data", data)?,
        }
        map.end()
    }
}

/// One event of the stream: a response, message or content object.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamObject {
    Response(ResponseObject),
    Message(MessageObject),
    Content(ContentObject),
}

impl Serialize for StreamObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StreamObject::Response(r) => r.serialize(s),
            StreamObject::Message(m) => m.serialize(s),
            StreamObject::Content(c) => c.serialize(s),
        }
    }
}

impl StreamObject {
    /// Compact JSON of the event.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The SSE frame: `data: <compact JSON>\n\n` (no `event:`/`id:` lines). Serialized straight into the
    /// frame: one buffer per event, sized for a typical one, instead of a JSON string copied into a second.
    pub fn sse_frame(&self) -> String {
        let mut frame = Vec::with_capacity(512);
        frame.extend_from_slice(b"data: ");
        if serde_json::to_writer(&mut frame, self).is_err() {
            frame.truncate(b"data: ".len());
            frame.extend_from_slice(self.to_json().as_bytes());
        }
        frame.extend_from_slice(b"\n\n");
        // serde_json writes UTF-8 only; the lossy path is never taken.
        String::from_utf8(frame).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    pub fn sequence_number(&self) -> Option<u64> {
        match self {
            StreamObject::Response(r) => Some(r.sequence_number),
            StreamObject::Message(m) => Some(m.sequence_number),
            StreamObject::Content(c) => c.sequence_number,
        }
    }

    /// `object`: `response`, `message` or `content`.
    pub fn object(&self) -> &'static str {
        match self {
            StreamObject::Response(_) => "response",
            StreamObject::Message(_) => "message",
            StreamObject::Content(_) => "content",
        }
    }

    /// `type`: none for a response, the message type, or `text`/`data` for content.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            StreamObject::Response(_) => None,
            StreamObject::Message(m) => Some(match m.kind {
                MessageKind::Message => "message",
                MessageKind::Reasoning => "reasoning",
                MessageKind::PluginCall => "plugin_call",
                MessageKind::PluginCallOutput => "plugin_call_output",
                MessageKind::McpApprovalRequest => "mcp_approval_request",
                MessageKind::Heartbeat => "heartbeat",
            }),
            StreamObject::Content(c) => Some(match c.body {
                ContentBody::Text(_) => "text",
                ContentBody::Data(_) => "data",
            }),
        }
    }

    pub fn status(&self) -> Status {
        match self {
            StreamObject::Response(r) => r.status,
            StreamObject::Message(m) => m.status,
            StreamObject::Content(c) => c.status,
        }
    }
}
