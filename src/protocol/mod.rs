//! The wire faces. Each is a parser (a request → the pipeline's [`crate::pipeline::Ask`]) and renderers
//! (the turn's events → its clients' bytes, implementing [`crate::pipeline::Renderer`]); none runs a
//! turn itself.
//!
//! - [`agentscope`]: `POST /process` (the AgentScope runtime protocol) and the answer to an event.
//! - [`a2a`]: `POST /a2a` (A2A 0.3 and 1.0 over JSON-RPC) and the agent card.
//! - [`agui`]: `POST /ag-ui` (AG-UI events over SSE).
//! - [`triggers`]: whatever an FC trigger delivers to `/invoke`, as an AgentScope request.
//! - [`responses`], [`chat`]: the OpenAI faces (Responses API, Chat Completions); `openai` is what they share.

pub(crate) mod a2a;
pub mod agentscope;
pub(crate) mod agui;
pub(crate) mod chat;
pub(crate) mod openai;
pub(crate) mod reader;
pub(crate) mod responses;
pub mod triggers;

use crate::rejection::Rejection;

/// A body that is not an acceptable request. `Display` names the field and why, never a value from
/// the body; it is the `message` of a 400 `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("body: not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("body: not valid JSON ({0})")]
    NotJson(String),
    #[error("body: nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
}

impl From<RequestError> for Rejection {
    fn from(error: RequestError) -> Rejection {
        Rejection::invalid_request(error.to_string())
    }
}

/// A refusal of one body field: `{field}: {reason}`. Shared by every face's parser, so they word it alike.
pub(crate) fn field(name: impl Into<String>, reason: impl Into<String>) -> RequestError {
    RequestError::Field { field: name.into(), reason: reason.into() }
}
