//! What can go wrong talking to an MCP server, classified from rmcp's errors.

use std::error::Error as StdError;

use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError, StreamableHttpError};

use crate::error_chain::ErrorChain;
use crate::secret::{Secret, redact};

/// Every variant names the server by its URL without userinfo, query or fragment
/// ([`crate::secret::redact_url`]); none carries the bearer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// HTTP 401: the bearer was missing, expired or not accepted. Refresh the token and retry once.
    #[error("MCP server {server} rejected the bearer token (HTTP 401)")]
    Unauthorized { server: String },
    /// HTTP 403: the token is valid but the caller may not use this server.
    #[error("MCP server {server} refused access (HTTP 403)")]
    Forbidden { server: String },
    #[error("MCP server {server}: {operation} timed out")]
    Timeout { server: String, operation: &'static str },
    #[error("no MCP server offers a tool named {name:?}")]
    UnknownTool { name: String },
    #[error("MCP tool {name:?}: arguments must be a JSON object")]
    InvalidArguments { name: String },
    /// A JSON-RPC error answer (e.g. -32602 for an unknown tool or bad arguments).
    #[error("MCP server {server}: JSON-RPC error {code}: {message}")]
    Protocol { server: String, code: i32, message: String },
    /// An HTTP failure other than 401/403 (429, 5xx).
    #[error("MCP server {server}: HTTP {status}")]
    HttpStatus { server: String, status: u16 },
    #[error("MCP server {server}: {detail}")]
    Transport { server: String, detail: String },
    #[error("the bearer token is not a valid HTTP header value")]
    InvalidBearer,
    #[error("building the MCP HTTP client: {detail}")]
    HttpClient { detail: String },
    /// The token source could not give a bearer (e.g. Agent Identity failed during a refresh).
    #[error("{0}")]
    Token(super::token::TokenError),
}

impl McpError {
    /// True for HTTP 401: the caller should get a fresh token and open a new session once.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, McpError::Unauthorized { .. })
    }

    /// The (redacted) server a 401 came from.
    pub(crate) fn unauthorized_server(&self) -> Option<&str> {
        match self {
            McpError::Unauthorized { server } => Some(server),
            _ => None,
        }
    }

    /// True for 401 and 403: both map to the turn failure `tool_unauthorized`.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, McpError::Unauthorized { .. } | McpError::Forbidden { .. })
    }
}

/// What an error is about, so classification can name the server and scrub what must not leak.
pub(crate) struct ErrorScope<'a> {
    /// The redacted URL.
    pub(crate) server: &'a str,
    /// The URL as sent, query and all.
    pub(crate) raw_url: &'a str,
    pub(crate) bearer: &'a Secret,
}

impl ErrorScope<'_> {
    /// Text that came from an upstream or a library, with the unredacted URL shown redacted, then through the
    /// one redaction rule (the bearer masked, the length bounded).
    fn scrub(&self, text: &str) -> String {
        if self.raw_url != self.server && !self.raw_url.is_empty() && text.contains(self.raw_url) {
            redact(&text.replace(self.raw_url, self.server), &[self.bearer])
        } else {
            redact(text, &[self.bearer])
        }
    }

    fn server(&self) -> String {
        self.server.to_owned()
    }

    pub(crate) fn timeout(&self, operation: &'static str) -> McpError {
        McpError::Timeout { server: self.server(), operation }
    }

    pub(crate) fn classify_init(&self, error: ClientInitializeError) -> McpError {
        match error {
            ClientInitializeError::JsonRpcError(data) => self.protocol(data.code.0, &data.message),
            ClientInitializeError::TransportError { error, .. } => self.classify_transport(&error),
            ClientInitializeError::LegacyFallbackFailed { fallback, .. } => self.classify_init(*fallback),
            other => self.transport_detail(&other),
        }
    }

    pub(crate) fn classify_service(&self, error: ServiceError) -> McpError {
        match error {
            ServiceError::McpError(data) => self.protocol(data.code.0, &data.message),
            ServiceError::TransportSend(error) => self.classify_transport(&error),
            ServiceError::Timeout { .. } => self.timeout("request"),
            other => self.transport_detail(&other),
        }
    }

    pub(crate) fn protocol(&self, code: i32, message: &str) -> McpError {
        McpError::Protocol { server: self.server(), code, message: self.scrub(message) }
    }

    fn transport_detail(&self, error: &(dyn StdError + 'static)) -> McpError {
        McpError::Transport { server: self.server(), detail: self.scrub(&ErrorChain(error).to_string()) }
    }

    /// Walks the source chain for the streamable-HTTP error rmcp wraps inside its dynamic transport error.
    fn classify_transport(&self, error: &(dyn StdError + 'static)) -> McpError {
        let mut current: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(err) = current {
            if err.is::<AuthRequiredError>() {
                return McpError::Unauthorized { server: self.server() };
            }
            if err.is::<InsufficientScopeError>() {
                return McpError::Forbidden { server: self.server() };
            }
            if let Some(http) = err.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
                return self.classify_http(http);
            }
            current = err.source();
        }
        self.transport_detail(error)
    }

    fn classify_http(&self, error: &StreamableHttpError<reqwest::Error>) -> McpError {
        match error {
            StreamableHttpError::AuthRequired(_) => McpError::Unauthorized { server: self.server() },
            StreamableHttpError::InsufficientScope(_) => McpError::Forbidden { server: self.server() },
            StreamableHttpError::HttpStatus(status) => {
                McpError::HttpStatus { server: self.server(), status: status.status }
            }
            // A 401/403 without a WWW-Authenticate challenge (Higress answers in plain text) only survives in
            // rmcp's message, which is "HTTP {status}: {body}"; the body is never copied into our error.
            StreamableHttpError::UnexpectedServerResponse(message) => match http_status_prefix(message) {
                Some(401) => McpError::Unauthorized { server: self.server() },
                Some(403) => McpError::Forbidden { server: self.server() },
                Some(status) => McpError::HttpStatus { server: self.server(), status },
                None => self.transport_detail(error),
            },
            StreamableHttpError::Client(inner) => match inner.status().map(|s| s.as_u16()) {
                Some(401) => McpError::Unauthorized { server: self.server() },
                Some(403) => McpError::Forbidden { server: self.server() },
                Some(status) => McpError::HttpStatus { server: self.server(), status },
                None => self.transport_detail(error),
            },
            _ => self.transport_detail(error),
        }
    }
}

fn http_status_prefix(message: &str) -> Option<u16> {
    let rest = message.strip_prefix("HTTP ")?;
    let digits = rest.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_bearer_and_raw_url() {
        let bearer = Secret::new("tok-SENTINEL");
        let raw = "http://h/mcp?key=K";
        let scope = ErrorScope { server: "http://h/mcp", raw_url: raw, bearer: &bearer };
        let err = McpError::Transport {
            server: "x".into(),
            detail: scope.scrub("failed for http://h/mcp?key=K with Bearer tok-SENTINEL"),
        };
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("tok-SENTINEL") && !shown.contains("key=K"), "{shown}");
    }

    #[test]
    fn status_prefix_parses_rmcp_messages() {
        assert_eq!(http_status_prefix("HTTP 401 Unauthorized: nope"), Some(401));
        assert_eq!(http_status_prefix("HTTP 403 Forbidden: "), Some(403));
        assert_eq!(http_status_prefix("expect json"), None);
    }
}
