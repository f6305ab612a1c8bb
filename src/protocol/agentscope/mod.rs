//! The AgentScope runtime wire format (`POST /process`, agentscope-runtime 1.0; see
//! `spec/process-protocol.md`). Pure logic: no I/O.
//!
//! - parse: [`AgentRequest::from_slice`] validates a body; [`AgentRequest::to_chat_messages`] maps the
//!   conversation in `input` to model messages; [`AgentRequest::to_ask`] hands it to the pipeline.
//! - render: [`ResponseBuilder`] turns turn events into the protocol's [`StreamObject`]s (each one SSE
//!   frame via [`StreamObject::sse_frame`]) and keeps the final [`ResponseObject`]; the renderers
//!   [`AgentScopeStream`], [`AgentScopeAnswer`] and [`EventAnswer`] send them.
//! - `pyjson`: a tool's MCP content as the runtime's `output` string (`json.dumps` style).

mod builder;
mod history;
mod pyjson;
mod render;
mod request;
mod wire;

pub(crate) use crate::llm::conversation::{Piece as HistoryItem, assemble as assemble_history};
pub use builder::ResponseBuilder;
pub use render::{AgentScopeAnswer, AgentScopeStream, EventAnswer};
pub use request::{
    AgentRequest, ContentItem, InputMessage, MAX_CONTENT_ITEMS, MAX_DEPTH, MAX_INPUT_MESSAGES, MessageType, Role,
};
pub use wire::{
    ContentBody, ContentObject, ErrorObject, MessageKind, MessageObject, MessageRole, ResponseObject, Status,
    StreamObject, ToolData,
};
