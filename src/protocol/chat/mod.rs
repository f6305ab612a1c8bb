//! OpenAI Chat Completions on `POST /compatible-mode/v1/chat/completions`: the agent as a model, for the chat
//! UIs and tools that speak only Chat Completions. Pure logic: no I/O.
//!
//! - parse: [`CompletionsRequest::from_slice`]; its `turn` (an `OpenAiTurn`) becomes the pipeline's ask.
//! - render: [`CompletionsStream`] (`chat.completion.chunk` SSE, `data: [DONE]`) and [`CompletionsAnswer`] (one
//!   `chat.completion`).

mod render;
mod request;

pub(crate) use render::{CompletionsAnswer, CompletionsStream};
pub(crate) use request::CompletionsRequest;
