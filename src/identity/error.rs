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
}

impl IdentityError {
    pub fn is_credentials_missing(&self) -> bool {
        matches!(self, IdentityError::Credentials(_))
    }

    pub fn is_deadline(&self) -> bool {
        matches!(self, IdentityError::Deadline | IdentityError::Upstream(AcsError::Deadline { .. }))
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
