//! What an RPC call can fail with. Display names the cause, the upstream code and request id; never a
//! secret, never the server's echoed string-to-sign.

use std::time::Duration;

use crate::secret::{Secret, redact};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AcsError {
    /// The endpoint answered with an error body (or a non-JSON error status).
    #[error("{action} failed: HTTP {status} {code}{}{}", request_id_suffix(.request_id), message_suffix(.message))]
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        /// How long the server asked us to wait (`x-acs-retry-after`, milliseconds).
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connect, TLS, reset, body read). `unsent`: the connection could
    /// not be made (DNS, refused), so the server cannot have seen the request.
    #[error("{action} failed: transport error: {detail}")]
    Transport { action: String, detail: String, unsent: bool },
    /// A 2xx answer that is not a JSON object.
    #[error("{action} failed: HTTP {status} with a body that is not a JSON object")]
    InvalidResponse { action: String, status: u16 },
    /// The caller's deadline passed before an answer (after `attempts` tries).
    #[error("{action} failed: deadline exceeded after {attempts} attempt(s)")]
    Deadline { action: String, attempts: u32 },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default()
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

impl AcsError {
    /// The upstream error `Code`, when the server sent one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            AcsError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        match self {
            AcsError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            AcsError::Api { status, .. } | AcsError::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Throttling, 5xx, `ServiceUnavailable` and a connection that could not be made (a DNS or network
    /// blip, often on an instance's first call) are worth another try; nothing else is (a bad signature or
    /// a refused user will not get better by repeating it, and a request cut mid-answer may have been served).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            AcsError::Api { status, code, .. } => {
                code.starts_with("Throttling") || code == "ServiceUnavailable" || *status >= 500
            }
            AcsError::Transport { unsent, .. } => *unsent,
            _ => false,
        }
    }
}

/// Makes an upstream `Message` safe to keep: the signature errors echo the server's string-to-sign (which
/// names our security token's hash and more), so they are dropped; everything else goes through the one
/// redaction rule ([`redact`]: known secrets masked, cut short).
pub(crate) fn sanitize_message(code: &str, message: &str, secrets: &[&Secret]) -> String {
    if matches!(code, "SignatureDoesNotMatch" | "IncompleteSignature") {
        return "(server message omitted: it echoes the string to sign)".to_owned();
    }
    redact(message, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, status: u16) -> AcsError {
        AcsError::Api {
            action: "A".into(),
            status,
            code: code.into(),
            message: String::new(),
            request_id: Some("rid".into()),
            retry_after: None,
        }
    }

    #[test]
    fn retry_classification() {
        assert!(api("Throttling.User", 400).is_retryable());
        assert!(api("Throttling", 429).is_retryable());
        assert!(api("ServiceUnavailable", 503).is_retryable());
        assert!(api("InternalError", 500).is_retryable());
        assert!(!api("SignatureDoesNotMatch", 400).is_retryable());
        assert!(!api("InvalidSecurityToken.Expired", 400).is_retryable());
        assert!(!api("Forbidden.RAM", 403).is_retryable());
    }

    #[test]
    fn display_names_code_and_request_id() {
        assert_eq!(api("Forbidden.RAM", 403).to_string(), "A failed: HTTP 403 Forbidden.RAM (request id rid)");
    }

    #[test]
    fn messages_are_sanitized() {
        let echoed = "The request signature does not conform. server string to sign is:ACS3-HMAC-SHA256\nabc";
        assert!(!sanitize_message("SignatureDoesNotMatch", echoed, &[]).contains("ACS3"));
        let token = Secret::new("tok-123456");
        assert_eq!(sanitize_message("X", "token tok-123456 bad", &[&token]), "token *** bad");
        let long = sanitize_message("X", &"a".repeat(5000), &[]);
        assert_eq!(long.chars().count(), crate::secret::MAX_UPSTREAM_TEXT_CHARS + 1);
    }
}
