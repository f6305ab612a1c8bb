//! A2A over JSON-RPC 2.0 (`POST /a2a`), for A2A 0.3 and 1.0 clients on the same endpoint, and the agent
//! card. docs/faces.md ("A2A") has the wire facts.
//!
//! - [`request`]: the JSON-RPC envelope, which protocol version the caller speaks, and a message's
//!   params → a [`crate::pipeline::Ask`].
//! - [`wire`]: the objects (Task, Message, status and artifact updates, errors) in each version's shapes.
//! - [`tasks`]: the tasks this instance ran or is running (bounded, with a TTL), each able to cancel its turn.
//! - [`steps`]: a task's stream as version-neutral steps (what a background task journals).
//! - [`render`]: the renderers: `message/stream` (SSE, as the tokens arrive), `message/send` (one Task) and
//!   a background task's (its steps journaled, for `tasks/resubscribe` / `SubscribeToTask`).
//! - [`card`]: the agent card, one document both client lines read.

mod card;
mod render;
mod request;
mod steps;
mod tasks;
mod wire;

pub(crate) use card::{CardSettings, agent_card};
pub(crate) use render::{A2aAnswer, A2aRecorded, A2aStream};
pub(crate) use request::{Method, RpcRequest, SendParams, TaskIdParams, pinned_body};
pub(crate) use steps::Step;
pub(crate) use tasks::{CancelError, Kept, TASK_TTL, Tasks, kept_name};
pub(crate) use wire::{Ids, RpcError, TaskState, Version, rpc_result, task_result};
