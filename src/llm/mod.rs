//! The DashScope chat client and the conversation types it speaks.

mod types;

pub use types::{ChatMessage, FunctionCall, ToolCall, ToolSpec, Usage};
