//! Typed DashScope failures (spec: "Errors before the stream" and "Stream").
//!
//! Every upstream message passes through [`UpstreamError::from_body`], which redacts the API key out of it
//! ([`redact`], which also bounds its length), so no `Display`/`Debug` of an [`LlmError`] can carry the key
//! even if the upstream echoed it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::error_chain::ErrorChain;
use crate::secret::{Secret, redact};

/// What the upstream told us about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// HTTP status; 200 for an error object that arrived inside a stream.
    pub status: u16,
    /// DashScope's `error.code` (e.g. `Throttling`, `invalid_api_key`), when it sent one.
    pub code: Option<String>,
    pub(crate) message: String,
    /// `request_id` from the body, else from a request-id response header.
    pub request_id: Option<String>,
    /// The response's `Retry-After`, when it was a number of seconds (an HTTP date is not read).
    pub(crate) retry_after: Option<Duration>,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request_id {id})")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " (retry after {} s)", wait.as_secs())?;
        }
        Ok(())
    }
}

/// The one error type of the chat client. The agent maps variants to failure codes; only
/// [`LlmError::is_retryable`] ones were retried, and only before the stream produced anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// 401/403: bad key, key of another region, or model not entitled.
    #[error("model unauthorized: {0}")]
    Unauthorized(UpstreamError),
    /// 429 rate limiting (`Throttling`, `limit_requests`, …); retried with backoff.
    #[error("model throttled: {0}")]
    Throttled(UpstreamError),
    /// 429 `insufficient_quota` or 400 `Arrearage`: retrying cannot help.
    #[error("model quota exhausted: {0}")]
    Quota(UpstreamError),
    /// 400 `invalid_parameter_error`, 404 unknown model, and any other 4xx.
    #[error("model rejected the request: {0}")]
    BadRequest(UpstreamError),
    /// `data_inspection_failed`: content moderation, before the stream (400) or inside it (200).
    #[error("content filtered by the model service: {0}")]
    ContentFiltered(UpstreamError),
    /// 5xx (`internal_error`, `ModelServingError`, …); retried with backoff.
    #[error("model service error: {0}")]
    Server(UpstreamError),
    /// An error object (`data: {"error":…}`) arrived after HTTP 200.
    #[error("model stream failed: {0}")]
    MidStream(UpstreamError),
    /// The stream ended (or the connection broke) before `finish_reason` / `[DONE]`.
    #[error("model stream ended early{}: {detail}", RequestIdSuffix(request_id))]
    Truncated { detail: String, request_id: Option<String> },
    /// A chunk that is not the JSON we expect.
    #[error("malformed model stream{}: {detail}", RequestIdSuffix(request_id))]
    Malformed { detail: String, request_id: Option<String> },
    /// The request could not be sent or its response not read (connect, TLS, reset).
    #[error("model service unreachable: {detail}")]
    Transport { detail: String },
    /// The turn's deadline passed while waiting for the model.
    #[error("deadline exceeded waiting for the model")]
    DeadlineExceeded,
    /// The key source could not give a key (e.g. the Agent Identity vault refused).
    #[error("no DashScope API key: {0}")]
    Key(super::key::KeyError),
}

struct RequestIdSuffix<'a>(&'a Option<String>);

impl fmt::Display for RequestIdSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, " (request_id {id})"),
            None => Ok(()),
        }
    }
}

impl LlmError {
    /// Rate limiting and server errors: worth another attempt while nothing has been streamed yet.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, LlmError::Throttled(_) | LlmError::Server(_))
    }

    /// What the upstream reported, for the variants that carry it.
    pub fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            LlmError::Unauthorized(e)
            | LlmError::Throttled(e)
            | LlmError::Quota(e)
            | LlmError::BadRequest(e)
            | LlmError::ContentFiltered(e)
            | LlmError::Server(e)
            | LlmError::MidStream(e) => Some(e),
            _ => None,
        }
    }

    /// Maps a non-success HTTP response to its variant (the spec's table).
    pub(crate) fn from_status(err: UpstreamError) -> LlmError {
        let code = err.code.as_deref().unwrap_or("");
        match err.status {
            401 | 403 => LlmError::Unauthorized(err),
            429 if code == "insufficient_quota" => LlmError::Quota(err),
            429 => LlmError::Throttled(err),
            _ if code == "data_inspection_failed" => LlmError::ContentFiltered(err),
            _ if code == "Arrearage" => LlmError::Quota(err),
            500..=599 => LlmError::Server(err),
            _ => LlmError::BadRequest(err),
        }
    }

    /// Maps an error object that arrived inside a 200 stream. Moderation of the output is the one case the
    /// caller must tell apart (it is the user's content, not a service fault).
    pub(crate) fn mid_stream(err: UpstreamError) -> LlmError {
        if err.code.as_deref() == Some("data_inspection_failed") {
            LlmError::ContentFiltered(err)
        } else {
            LlmError::MidStream(err)
        }
    }

    /// `reqwest::Error`'s own Display hides the useful part (e.g. "connection refused") in its sources. Its
    /// chain never holds a request header, so there is no secret to redact; the length bound still applies.
    pub(crate) fn transport(err: &reqwest::Error) -> LlmError {
        LlmError::Transport { detail: redact(&ErrorChain(err).to_string(), &[]) }
    }
}

/// Both error shapes DashScope uses: compatible mode nests `error`, the native API puts `code`/`message` at
/// the top level.
#[derive(Deserialize, Default)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub(crate) error: Option<ErrorObject>,
    #[serde(default)]
    pub(crate) code: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) request_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ErrorObject {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    /// Usually a string; tolerated as any JSON value.
    #[serde(default)]
    pub(crate) code: Option<serde_json::Value>,
}

impl UpstreamError {
    /// Builds the error from a response body (JSON or not). `api_key` is scrubbed from the message.
    pub(crate) fn from_body(status: u16, body: &[u8], header_request_id: Option<String>, api_key: &Secret) -> Self {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(envelope) => Self::from_envelope(status, envelope, header_request_id, api_key),
            Err(_) => UpstreamError {
                status,
                code: None,
                message: redact(&String::from_utf8_lossy(body), &[api_key]),
                request_id: header_request_id,
                retry_after: None,
            },
        }
    }

    pub(crate) fn from_envelope(
        status: u16,
        envelope: ErrorEnvelope,
        header_request_id: Option<String>,
        api_key: &Secret,
    ) -> Self {
        let object = envelope.error.unwrap_or_default();
        let code = object.code.or(envelope.code).and_then(code_text).or(object.kind);
        let message = object.message.or(envelope.message).unwrap_or_default();
        UpstreamError {
            status,
            code: code.map(|c| redact(&c, &[api_key])),
            message: redact(&message, &[api_key]),
            request_id: envelope.request_id.filter(|id| !id.is_empty()).or(header_request_id),
            retry_after: None,
        }
    }
}

fn code_text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new("sk-sentinel-key")
    }

    #[test]
    fn parses_compatible_mode_error_and_scrubs_the_key() {
        let body = br#"{"error":{"message":"Incorrect API key sk-sentinel-key","type":"invalid_request_error","param":null,"code":"invalid_api_key"},"request_id":"r-1"}"#;
        let err = LlmError::from_status(UpstreamError::from_body(401, body, Some("h-1".into()), &key()));
        let LlmError::Unauthorized(up) = &err else { panic!("{err:?}") };
        assert_eq!(up.code.as_deref(), Some("invalid_api_key"));
        assert_eq!(up.request_id.as_deref(), Some("r-1"));
        assert!(!format!("{err} {err:?}").contains("sk-sentinel-key"));
    }

    #[test]
    fn parses_native_error_shape_and_non_json() {
        let native = br#"{"code":"Arrearage","message":"Access denied, account in arrears","request_id":"r-2"}"#;
        assert!(matches!(
            LlmError::from_status(UpstreamError::from_body(400, native, None, &key())),
            LlmError::Quota(_)
        ));
        let html = UpstreamError::from_body(502, b"<html>bad gateway</html>", Some("h-3".into()), &key());
        assert_eq!(html.request_id.as_deref(), Some("h-3"));
        assert!(LlmError::from_status(html).is_retryable());
    }

    #[test]
    fn classifies_the_spec_table() {
        let up = |status, code: &str| UpstreamError {
            status,
            code: Some(code.into()),
            message: String::new(),
            request_id: None,
            retry_after: None,
        };
        assert!(matches!(LlmError::from_status(up(403, "Model.AccessDenied")), LlmError::Unauthorized(_)));
        assert!(matches!(LlmError::from_status(up(429, "Throttling")), LlmError::Throttled(_)));
        assert!(matches!(LlmError::from_status(up(429, "insufficient_quota")), LlmError::Quota(_)));
        assert!(matches!(LlmError::from_status(up(400, "invalid_parameter_error")), LlmError::BadRequest(_)));
        assert!(matches!(LlmError::from_status(up(404, "model_not_found")), LlmError::BadRequest(_)));
        assert!(matches!(LlmError::from_status(up(400, "data_inspection_failed")), LlmError::ContentFiltered(_)));
        assert!(matches!(LlmError::from_status(up(503, "ModelUnavailable")), LlmError::Server(_)));
        assert!(!LlmError::from_status(up(429, "insufficient_quota")).is_retryable());
    }
}
