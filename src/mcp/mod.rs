//! The tool client: MCP over streamable HTTP (rmcp), with a [`TokenSource`]'s bearer (the caller's
//! WorkloadAccessToken). Transport ([`http`]) apart from protocol ([`session`]); the turn uses [`Tools`],
//! which asks the source for a token and reports a 401 to it, refreshing once.
//!
//! One [`ToolSession`] per turn and server set: `initialize`, `notifications/initialized`, `tools/list`
//! (following cursors), then every `tools/call` of the turn on that session — four HTTP requests for a
//! one-tool turn, counted at the server. See [`http`] for the two requests rmcp would otherwise add.
//!
//! ```ignore
//! let client = McpClient::new(settings)?;                       // once per process
//! let tools = Tools::open(client.clone(), source, deadline).await?;  // a 401 → source.refused, once more
//! for tool in tools.definitions().await { /* ToolDef → llm::ToolSpec */ }
//! let out = tools.call("helloworld", json!({"name": "Ada"})).await?;  // out.is_error: the tool failed
//! tools.close().await;
//! ```

mod error;
mod http;
mod names;
mod output;
mod session;
mod token;
mod tools;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::{McpError, redact_url};
pub use output::ToolOutput;
pub use rmcp::model::ContentBlock as Content;
pub use session::{ToolDef, ToolSession};
pub use token::{TokenError, TokenSource};
pub use tools::Tools;

use crate::secret::Secret;

/// What the tool client needs from the configuration.
#[derive(Clone)]
pub struct McpSettings {
    /// Streamable-HTTP endpoints (`AI_GATEWAY_MCP_SERVER`, already split). Empty: no tools.
    pub servers: Vec<String>,
    /// Bound on one `tools/call` (`AGENT_TOOL_TIMEOUT_SECS`); the turn deadline bounds it too.
    pub tool_timeout: Duration,
    /// Send `DELETE` with the session id at close. Off by default: it would be a fifth request per one-tool
    /// turn, and servers expire idle sessions on their own; stateless servers never get one either way.
    pub delete_session_on_close: bool,
}

impl McpSettings {
    pub fn new(servers: Vec<String>, tool_timeout: Duration) -> Self {
        McpSettings { servers, tool_timeout, delete_session_on_close: false }
    }
}

/// Server URLs may carry keys in their query strings: Debug shows them redacted.
impl fmt::Debug for McpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpSettings")
            .field("servers", &self.servers.iter().map(|s| redact_url(s)).collect::<Vec<_>>())
            .field("tool_timeout", &self.tool_timeout)
            .field("delete_session_on_close", &self.delete_session_on_close)
            .finish()
    }
}

/// A configured MCP server: the URL we send to, and the redacted form every error and log line uses.
#[derive(Clone)]
pub(crate) struct ServerUrl {
    pub url: Arc<str>,
    pub shown: String,
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Built once at start; cheap to share. Holds the one reqwest client all MCP sessions use.
#[derive(Debug, Clone)]
pub struct McpClient {
    servers: Arc<[ServerUrl]>,
    http: reqwest::Client,
    tool_timeout: Duration,
    delete_session_on_close: bool,
}

impl McpClient {
    pub fn new(settings: McpSettings) -> Result<Self, McpError> {
        let servers = settings
            .servers
            .iter()
            .map(|raw| {
                let raw = raw.trim();
                let shown = redact_url(raw);
                match reqwest::Url::parse(raw) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(ServerUrl { url: Arc::from(raw), shown }),
                    _ => Err(McpError::InvalidServerUrl { server: shown }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = crate::upstream::client_builder()
            .build()
            .map_err(|e| McpError::HttpClient { detail: e.without_url().to_string() })?;
        Ok(McpClient {
            servers: servers.into(),
            http,
            tool_timeout: settings.tool_timeout,
            delete_session_on_close: settings.delete_session_on_close,
        })
    }

    /// Whether any server is configured (no servers: sessions are empty and cost nothing).
    pub fn has_servers(&self) -> bool {
        !self.servers.is_empty()
    }

    /// Opens one session per server, concurrently, and lists their tools. Fails as a whole when any server
    /// fails (the first error wins and the other handshakes are cancelled), so a 401 surfaces for the
    /// caller's single token refresh. Everything is bounded by `deadline`.
    pub async fn open(&self, bearer: &Secret, deadline: tokio::time::Instant) -> Result<ToolSession, McpError> {
        session::open(self, bearer, deadline).await
    }
}
