//! How a turn fails once its stream has started: the failure codes of DESIGN.md ("Errors") and the one
//! table from upstream errors to those codes. Every face renders a [`Failure`] in its own shape (the
//! AgentScope `error:{code,message}`, an OpenAI `response.failed`, an A2A failed task…); none of them
//! classifies upstream errors itself.

use std::fmt;

use tokio::time::Instant;

use crate::identity::IdentityError;
use crate::llm::LlmError;
use crate::mcp::McpError;
use crate::sessions::SessionError;

/// A failure after the stream started. `message` names the cause and the upstream's request id/code
/// where one exists, never a secret (the upstream error types scrub their text before it gets here).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: FailureCode,
    pub message: String,
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
    /// Someone with the right to stop the turn did (A2A `tasks/cancel`).
    Cancelled,
    Internal,
    /// The session store could not load or save the conversation (`sessions/`).
    SessionError,
    /// An MCP server needs the user's OAuth2 token and the user did not authorize the provider within
    /// `OAUTH2_POLL_LIMIT` polls (or before the turn's deadline). Start the turn again to get a new link.
    ConsentTimeout,
}

impl Failure {
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }

    /// The model call failed.
    pub(crate) fn model(error: &LlmError) -> Failure {
        let code = match error {
            LlmError::Unauthorized(_) => FailureCode::ModelUnauthorized,
            LlmError::Throttled(_) | LlmError::Quota(_) => FailureCode::ModelThrottled,
            LlmError::BadRequest(_) => FailureCode::ModelBadRequest,
            LlmError::ContentFiltered(_) => FailureCode::ContentFiltered,
            LlmError::DeadlineExceeded => FailureCode::DeadlineExceeded,
            LlmError::Server(_)
            | LlmError::MidStream(_)
            | LlmError::Truncated { .. }
            | LlmError::Malformed { .. }
            | LlmError::Transport { .. } => FailureCode::ModelError,
            // The key source's own error decides: a vault that refused is an identity failure.
            LlmError::Key(source) => match source.downcast_ref::<IdentityError>() {
                Some(identity) => identity_code(identity),
                None => FailureCode::Internal,
            },
        };
        Failure::new(code, error.to_string())
    }

    /// The tools failed in a way the model cannot act on. `deadline` tells a timeout caused by the
    /// function's own deadline (the server may be fine, time ran out) from a slow server.
    pub fn tools(error: &McpError, deadline: Instant) -> Failure {
        let code = match error {
            McpError::Unauthorized { .. } | McpError::Forbidden { .. } => FailureCode::ToolUnauthorized,
            McpError::Timeout { .. } if Instant::now() >= deadline => FailureCode::DeadlineExceeded,
            // The token source's own error decides: a refresh that failed is an identity failure.
            McpError::Token(source) => match source.downcast_ref::<IdentityError>() {
                Some(identity) => identity_code(identity),
                None => FailureCode::IdentityError,
            },
            _ => FailureCode::ToolError,
        };
        Failure::new(code, error.to_string())
    }

    /// The session store failed before the turn (nothing was sent to the model).
    pub(crate) fn session(error: &SessionError) -> Failure {
        Failure::new(FailureCode::SessionError, error.to_string())
    }

    /// The turn's answer was given but could not be stored: the caller must know the session lacks it.
    pub(crate) fn session_not_saved(error: &SessionError) -> Failure {
        Failure::new(FailureCode::SessionError, format!("the answer was not saved to the session: {error}"))
    }

    /// Agent Identity refused or failed a token asked for directly (not through the tools).
    pub(crate) fn identity(error: &IdentityError) -> Failure {
        Failure::new(identity_code(error), error.to_string())
    }

    /// The instance is shutting down before the turn could finish.
    pub(crate) fn shutting_down() -> Failure {
        Failure::new(
            FailureCode::DeadlineExceeded,
            "the function instance is shutting down; the turn was stopped before it finished",
        )
    }

    /// The turn was cancelled on request before it finished.
    pub(crate) fn cancelled() -> Failure {
        Failure::new(FailureCode::Cancelled, "the task was cancelled before the turn finished")
    }
}

fn identity_code(error: &IdentityError) -> FailureCode {
    if error.is_consent_timeout() {
        FailureCode::ConsentTimeout
    } else if error.is_credentials_missing() {
        FailureCode::CredentialsMissing
    } else if error.is_deadline() {
        FailureCode::DeadlineExceeded
    } else {
        FailureCode::IdentityError
    }
}

impl FailureCode {
    pub(crate) fn as_str(self) -> &'static str {
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
            FailureCode::Cancelled => "cancelled",
            FailureCode::Internal => "internal",
            FailureCode::SessionError => "session_error",
            FailureCode::ConsentTimeout => "consent_timeout",
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
