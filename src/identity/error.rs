//! Why no WorkloadAccessToken came back. The app maps [`IdentityError::is_credentials_missing`] to
//! `credentials_missing`, [`IdentityError::is_deadline`] to `deadline_exceeded`, the rest to `identity_error`.

use crate::acs::{AcsError, CredentialsError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    /// There were no credentials (or their source failed) to sign the call with.
    #[error("no credentials to call Agent Identity: {0}")]
    Credentials(#[from] CredentialsError),
    /// Agent Identity refused or failed the call (carries HTTP status, Code, RequestId).
    #[error("Agent Identity: {0}")]
    Upstream(#[from] AcsError),
    /// A 2xx answer without the field we asked for.
    #[error("Agent Identity {action} answered without {field} (request id {})", .request_id.as_deref().unwrap_or("-"))]
    MissingField { action: &'static str, field: &'static str, request_id: Option<String> },
    /// The deadline passed before credentials or a token were available.
    #[error("Agent Identity: deadline exceeded")]
    Deadline,
    /// The user did not authorize the OAuth2 provider in time (the poll limit or the turn's deadline).
    #[error(
        "the user did not authorize {provider} in time: no token after {polls} poll(s) over {waited_secs} s ({why}){}",
        .last_error.as_deref().map(|e| format!("; last poll error: {e}")).unwrap_or_default()
    )]
    ConsentTimeout { provider: String, polls: u32, waited_secs: u64, why: &'static str, last_error: Option<String> },
    /// The OAuth2 consent's state could not be made.
    #[error("OAuth2 state: {0}")]
    State(String),
    /// An OAuth2 token is asked for a turn without an end user (USER_FEDERATION needs one).
    #[error("the MCP server needs the user's {provider} token, and this invocation names no user")]
    NoUser { provider: String },
}

impl IdentityError {
    pub fn is_credentials_missing(&self) -> bool {
        matches!(self, IdentityError::Credentials(_))
    }

    pub fn is_deadline(&self) -> bool {
        matches!(self, IdentityError::Deadline | IdentityError::Upstream(AcsError::Deadline { .. }))
    }

    pub fn is_consent_timeout(&self) -> bool {
        matches!(self, IdentityError::ConsentTimeout { .. })
    }

    /// The upstream `Code` (e.g. `Forbidden.RAM`), when Agent Identity sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            IdentityError::Upstream(e) => e.code(),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            IdentityError::Upstream(e) => e.request_id(),
            IdentityError::MissingField { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}
