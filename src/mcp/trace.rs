//! The MCP client spans (`{mcp.method.name} [{target}]`, kind client), in the MCP semantic conventions'
//! terms: method, protocol version, session id, server address; a failure's `error.type` is the class of
//! [`McpError`]. Nothing without telemetry.

use opentelemetry::KeyValue;
use rmcp::model::ProtocolVersion;

use super::error::McpError;
use crate::telemetry::{self, Span, SpanKind, names};

/// A client span for one MCP request to the server at `url` (the URL as sent: only its host and port are
/// recorded, never its query, which may hold a key).
pub(super) fn client_span(
    method: &'static str,
    target: Option<&str>,
    url: &str,
    version: &ProtocolVersion,
    session_id: Option<&str>,
) -> Span {
    if !telemetry::active() {
        return Span::none();
    }
    let name = match target {
        Some(target) => format!("{method} {target}"),
        None => method.to_owned(),
    };
    Span::start(name, SpanKind::Client, || {
        let mut attributes = vec![
            KeyValue::new(names::MCP_METHOD_NAME, method),
            KeyValue::new(names::MCP_PROTOCOL_VERSION, version.to_string()),
        ];
        if method == "tools/call" {
            attributes.push(KeyValue::new(names::OPERATION_NAME, "execute_tool"));
            if let Some(tool) = target {
                attributes.push(KeyValue::new(names::TOOL_NAME, tool.to_owned()));
            }
        }
        if let Some(session) = session_id {
            attributes.push(KeyValue::new(names::MCP_SESSION_ID, session.to_owned()));
        }
        if let Ok(url) = reqwest::Url::parse(url) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new(names::SERVER_ADDRESS, host.to_owned()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new(names::SERVER_PORT, i64::from(port)));
            }
        }
        attributes
    })
}

/// Ends `span` with how its request went.
pub(super) fn end<T>(span: &Span, result: &Result<T, McpError>) {
    if let Err(error) = result {
        span.fail(error_type(error), &error.to_string());
    }
    span.end();
}

fn error_type(error: &McpError) -> &'static str {
    match error {
        McpError::Unauthorized { .. } => "unauthorized",
        McpError::Forbidden { .. } => "forbidden",
        McpError::Timeout { .. } => "timeout",
        McpError::UnknownTool { .. } => "unknown_tool",
        McpError::InvalidArguments { .. } => "invalid_arguments",
        McpError::Protocol { .. } => "protocol",
        McpError::HttpStatus { .. } => "http_status",
        McpError::Transport { .. } => "transport",
        McpError::InvalidBearer => "invalid_bearer",
        McpError::HttpClient { .. } => "http_client",
        McpError::Token(_) => "token",
    }
}
