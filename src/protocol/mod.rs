//! The AgentScope runtime wire format (`POST /process`, agentscope-runtime 1.0; see
//! `spec/process-protocol.md`): the request, the event stream, the final response, and the envelopes of
//! event invocations. Pure logic: no I/O.
//!
//! - [`AgentRequest::from_slice`] parses and validates a body; [`AgentRequest::to_chat_messages`] maps the
//!   conversation in `input` to model messages.
//! - [`ResponseBuilder`] turns `AgentEvent`s into [`Event`]s (each one SSE frame via [`Event::sse_frame`])
//!   and keeps the final [`ResponseObject`] (the non-streaming body).
//! - [`trigger::request_from_event`] turns an event invocation's body into an `AgentRequest`.
//! - [`error_body`] is the JSON of an error answered before any stream starts.

mod builder;
mod history;
mod request;
pub mod trigger;
mod wire;

pub use builder::{ResponseBuilder, aggregate};
pub use request::{
    AgentRequest, ContentItem, InputMessage, MAX_CONTENT_ITEMS, MAX_DEPTH, MAX_INPUT_MESSAGES, MessageType, Role,
};
pub use wire::{
    ContentBody, ContentObject, ErrorObject, Event, MessageKind, MessageObject, MessageRole, ResponseObject, Status,
    ToolData, error_body,
};

/// A body that is not an acceptable `AgentRequest`. `Display` names the field and why, never a value from
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

impl RequestError {
    /// The error code of the 400 answer.
    pub const CODE: &'static str = "invalid_request";

    /// `{"error":{"code":"invalid_request","message":…}}`.
    pub fn to_error_body(&self) -> String {
        error_body(Self::CODE, &self.to_string())
    }
}
