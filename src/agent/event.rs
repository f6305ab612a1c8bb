//! What one agent turn reports, in order, to whoever renders it (the `protocol` event builder).

use crate::llm::Usage;

/// One step of a running turn. A turn emits any number of these and ends with exactly one `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// A fragment of the model's reasoning (`reasoning_content`).
    ReasoningDelta(String),
    /// A fragment of the model's answer text.
    TextDelta(String),
    /// The model began a tool call. `call_id` is unique within the turn.
    ToolCallStarted { call_id: String, name: String },
    /// A fragment of that call's JSON arguments.
    ToolCallArgumentsDelta { call_id: String, delta: String },
    /// The call's arguments are complete (the concatenation of every delta, or `{}` when there were none).
    ToolCallCompleted { call_id: String, name: String, arguments: String },
    /// The tool answered. `output` is the JSON text of the MCP content list, e.g.
    /// `[{"type": "text", "text": "…"}]` — what the AgentScope protocol carries.
    ToolResult { call_id: String, name: String, output: String },
    /// Token usage of one model call; consumers sum them.
    Usage(Usage),
    /// The last event of every turn.
    Finished(TurnEnd),
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    Completed,
    /// A bound was hit (`max_iterations`); what was produced so far stands.
    Incomplete(TurnError),
    Failed(TurnError),
}

/// A failure after the stream started: rendered as `error:{code,message}` of the final response.
/// `message` names the cause and the upstream's request id/code where one exists, never a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnError {
    pub code: FailureCode,
    pub message: String,
}

impl TurnError {
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        TurnError { code, message: message.into() }
    }
}

/// The failure codes of DESIGN.md ("Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    IdentityError,
    CredentialsMissing,
    ToolUnauthorized,
    ToolError,
    ModelUnauthorized,
    ModelThrottled,
    ModelBadRequest,
    ContentFiltered,
    ModelError,
    DeadlineExceeded,
    MaxIterations,
    Internal,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::IdentityError => "identity_error",
            FailureCode::CredentialsMissing => "credentials_missing",
            FailureCode::ToolUnauthorized => "tool_unauthorized",
            FailureCode::ToolError => "tool_error",
            FailureCode::ModelUnauthorized => "model_unauthorized",
            FailureCode::ModelThrottled => "model_throttled",
            FailureCode::ModelBadRequest => "model_bad_request",
            FailureCode::ContentFiltered => "content_filtered",
            FailureCode::ModelError => "model_error",
            FailureCode::DeadlineExceeded => "deadline_exceeded",
            FailureCode::MaxIterations => "max_iterations",
            FailureCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
