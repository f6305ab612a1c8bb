//! The OpenAI Responses API on `POST /compatible-mode/v1/responses` (`spec/responses-api.md`), so
//! `OpenAI(base_url=".../compatible-mode/v1").responses` talks to the agent. Pure logic: no I/O.
//!
//! - parse: [`ResponsesRequest::from_slice`] validates a body; its `turn` (an `OpenAiTurn`) becomes the
//!   pipeline's ask.
//! - render: a builder turns turn events into the official event sequence and keeps the final Response;
//!   [`ResponsesStream`] sends the events as SSE, [`ResponsesAnswer`] the final Response as one body.

mod builder;
mod render;
mod request;
mod response_id;
mod wire;

pub(crate) use render::{ResponsesAnswer, ResponsesStream, queued_response};
pub(crate) use request::{Echo, ResponsesRequest};
