//! A2A over JSON-RPC 2.0 (`POST /a2a`), for A2A 0.3 and 1.0 clients on the same endpoint, and the agent
//! card. docs/faces.md ("A2A") has the wire facts.
//!
//! - [`request`]: the JSON-RPC envelope, which protocol version the caller speaks, and a message's
//!   params → a [`crate::pipeline::Ask`].
//! - [`wire`]: the objects (Task, Message, status and artifact updates, errors) in each version's shapes.
//! - [`tasks`]: the tasks this instance ran or is running (bounded, with a TTL), each able to cancel its turn.
//! - [`render`]: the renderers: `message/stream` (SSE, as the tokens arrive) and `message/send` (one Task).
//! - [`card`]: the agent card, one document both client lines read.

mod card;
mod render;
mod request;
mod tasks;
mod wire;

pub(crate) use card::{CardSettings, agent_card};
pub(crate) use render::{A2aAnswer, A2aStream};
pub(crate) use request::{Method, RpcRequest, SendParams, TaskIdParams};
pub(crate) use tasks::{CancelError, Kept, TASK_TTL, Tasks, kept_name};
pub(crate) use wire::{RpcError, Version, rpc_result};
