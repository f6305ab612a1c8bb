//! How a turn fails once its stream has started: the failure codes (docs/design.md, "Errors") and the one
//! table from upstream errors to those codes. Every face renders a [`Failure`] in its own shape (the
//! AgentScope `error:{code,message}`, an OpenAI `response.failed`, an A2A failed task…); none of them
//! classifies upstream errors itself.

use std::fmt;

use http::StatusCode;
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
    /// Whose fault it is, as far as an HTTP status goes ([`Failure::http_status`]).
    pub(crate) fault: Fault,
}

/// Whose fault a failure is: with the code, it decides the HTTP status of a request answered with it.
/// Only a request answered before (or instead of) a turn is ever the caller's fault; a turn's own failures
/// are [`Fault::Upstream`] (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Fault {
    /// An upstream failed, was slow or throttled: the status follows the code (429, 502, 503, 504…).
    #[default]
    Upstream,
    /// The function itself: data it wrote and cannot read back (500).
    Function,
    /// The upstream refused the caller's own credential (a bearer JWT Agent Identity did not accept): 401.
    Credential,
    /// The caller may not do this here (a session for a user the function cannot verify): 403.
    Permission,
    /// The upstream refused what the request carried (a consent's session URI already completed, or
    /// another user's): 400.
    Request,
}

/// The failure codes every face reports (docs/design.md, "Errors").
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
    /// Another turn of the same session is running (one turn per session at a time); nothing was run.
    SessionBusy,
    /// An answer to an approval request that waits for no answer in this session: unknown, answered
    /// already, asked of another user, expired, or sent back with other arguments. Nothing was run.
    ApprovalInvalid,
}

impl Failure {
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), fault: Fault::Upstream }
    }

    /// The same failure, `fault`'s to answer for.
    pub(crate) fn with_fault(self, fault: Fault) -> Failure {
        Failure { fault, ..self }
    }

    /// The HTTP status of an answer that is this failure (the one table): a turn answered whole that
    /// failed (Chat Completions' `stream:false`), a session read or the OAuth2 callback whose upstream call
    /// failed. Clients branch on it (OpenAI's SDK raises `RateLimitError` on 429, `PermissionDeniedError`
    /// on 403…). A streamed turn has answered 200 long before; an event invocation answers every failure
    /// with 500, the one status FC records as an `InvocationError` and retries.
    pub(crate) fn http_status(&self) -> StatusCode {
        match self.fault {
            Fault::Function => return StatusCode::INTERNAL_SERVER_ERROR,
            Fault::Credential => return StatusCode::UNAUTHORIZED,
            Fault::Permission => return StatusCode::FORBIDDEN,
            Fault::Request => return StatusCode::BAD_REQUEST,
            Fault::Upstream => {}
        }
        match self.code {
            FailureCode::ModelThrottled => StatusCode::TOO_MANY_REQUESTS,
            FailureCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            // The user did not grant the tool's OAuth2 access in time: not an upstream fault, a permission
            // not (yet) given. Consent given later is kept by the vault, so asking again succeeds.
            FailureCode::ConsentTimeout => StatusCode::FORBIDDEN,
            FailureCode::Internal | FailureCode::CredentialsMissing => StatusCode::INTERNAL_SERVER_ERROR,
            FailureCode::SessionError => StatusCode::SERVICE_UNAVAILABLE,
            FailureCode::SessionBusy => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Agent Identity's answer about something the request itself carried (the caller's JWT, a consent's
    /// session URI): a refusal (a 4xx) is `fault`; anything else is an upstream failure as
    /// [`Failure::identity`] classifies it.
    pub(crate) fn identity_refusing(error: &IdentityError, fault: Fault) -> Failure {
        let failure = Failure::identity(error);
        match error {
            IdentityError::Upstream(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                failure.with_fault(fault)
            }
            _ => failure,
        }
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
    /// A store that answers data it cannot read (`Corrupt`) is the function's fault, not an outage.
    pub(crate) fn session(error: &SessionError) -> Failure {
        let failure = Failure::new(FailureCode::SessionError, error.to_string());
        match error {
            SessionError::Corrupt { .. } => failure.with_fault(Fault::Function),
            _ => failure,
        }
    }

    /// The session is running another turn (its lease is held) and stayed so for `waited`.
    pub(crate) fn session_busy(session: &str, waited: std::time::Duration) -> Failure {
        let how = match waited.is_zero() {
            true => String::new(),
            false => format!(" (waited {} s, SESSION_BUSY_WAIT_SECS)", waited.as_secs()),
        };
        Failure::new(
            FailureCode::SessionBusy,
            format!("session {session:?} is running another turn{how}; send this one again when it has finished"),
        )
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
            FailureCode::SessionBusy => "session_busy",
            FailureCode::ConsentTimeout => "consent_timeout",
            FailureCode::ApprovalInvalid => "approval_invalid",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_follows_the_code_unless_the_fault_is_the_caller_s() {
        let status = |code, fault| Failure::new(code, "m").with_fault(fault).http_status().as_u16();
        assert_eq!(status(FailureCode::ModelThrottled, Fault::Upstream), 429);
        assert_eq!(status(FailureCode::DeadlineExceeded, Fault::Upstream), 504);
        assert_eq!(status(FailureCode::ConsentTimeout, Fault::Upstream), 403);
        assert_eq!(status(FailureCode::CredentialsMissing, Fault::Upstream), 500);
        assert_eq!(status(FailureCode::SessionError, Fault::Upstream), 503);
        assert_eq!(status(FailureCode::ModelError, Fault::Upstream), 502);
        assert_eq!(status(FailureCode::IdentityError, Fault::Credential), 401);
        assert_eq!(status(FailureCode::SessionError, Fault::Permission), 403);
        assert_eq!(status(FailureCode::IdentityError, Fault::Request), 400);
        assert_eq!(status(FailureCode::SessionError, Fault::Function), 500);
        assert_eq!(status(FailureCode::SessionBusy, Fault::Upstream), 409);
    }

    #[test]
    fn only_a_refusal_is_the_request_s_fault() {
        let deadline = Failure::identity_refusing(&IdentityError::Deadline, Fault::Credential);
        assert_eq!((deadline.code, deadline.http_status().as_u16()), (FailureCode::DeadlineExceeded, 504));
        let corrupt = Failure::session(&SessionError::Corrupt { session: "s".into(), reason: "x".into() });
        assert_eq!(corrupt.http_status().as_u16(), 500);
    }
}
