//! The DashScope chat client (OpenAI-compatible mode, always streaming) and the conversation types it speaks.
//!
//! ```ignore
//! let client = LlmClient::new(settings)?;
//! let mut stream = client.stream(&ChatRequest::new(messages), deadline).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         StreamItem::TextDelta(t) => { /* … */ }
//!         StreamItem::Done(step) => { /* step.tool_calls, step.usage */ }
//!         _ => {}
//!     }
//! }
//! ```

mod accumulate;
mod client;
pub(crate) mod conversation;
mod error;
mod key;
mod sse;
mod stream;
mod types;

pub use client::{ChatRequest, LlmClient, LlmSettings, Sampling, StopSequences};
pub use error::{LlmError, UpstreamError};
pub use key::KeyError;
pub(crate) use key::KeySource;
pub use stream::ChatStream;
#[doc(hidden)]
pub use stream::decode_body;
pub use types::{ChatMessage, FinishReason, FunctionCall, Schema, StepResult, StreamItem, ToolCall, ToolSpec, Usage};
