//! The tool client: MCP over streamable HTTP (rmcp), with a [`TokenSource`]'s bearer (the caller's
//! WorkloadAccessToken). Transport ([`http`]) apart from protocol ([`session`]); the turn uses [`Tools`],
//! which asks the source for a token and reports a 401 to it, refreshing once.
//!
//! Both protocol lifecycles ([`revision`]): the 2025 handshake (`initialize`, `notifications/initialized`)
//! and 2026-07-28's stateless requests after `server/discover`. A user's connection to each server, with
//! its tool list and (2025) its `Mcp-Session-Id`, is kept between turns in a bounded [`pool`]: a user's
//! first turn costs what it always did (four requests for one tool call on a 2025 server), a warm one only
//! its `tools/call`s. See [`http`] for the two requests rmcp would otherwise add.
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
mod live;
mod names;
mod output;
mod pool;
mod revision;
mod server;
mod session;
mod token;
mod tools;
mod trace;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::McpError;
pub use output::ToolOutput;
pub use pool::{PoolLimits, UserKey};
pub use revision::{McpProtocol, SUPPORTED as SUPPORTED_REVISIONS};
pub use rmcp::model::ContentBlock as Content;
pub use session::{Listing, ToolDef, ToolSession};
pub use token::{TokenError, TokenSource};
pub use tools::Tools;

use crate::secret::Secret;
use crate::upstream::Endpoint;
pub use server::OAuth2Grant;
use server::ServerUrl;

/// What the tool client needs, as config.rs parses it (straight into this type, no copy in between). `Debug`
/// shows the servers redacted: their URLs may carry keys in query strings.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Streamable-HTTP endpoints (`AI_GATEWAY_MCP_SERVER`, split on commas). Empty: no tools.
    pub servers: Vec<Endpoint>,
    /// Bound on one `tools/call` (`AGENT_TOOL_TIMEOUT_SECS`); the turn deadline bounds it too.
    pub tool_timeout: Duration,
    /// Send `DELETE` with the session id at close. Off by default: it would be a fifth request per one-tool
    /// turn, and servers expire idle sessions on their own; stateless servers never get one either way.
    pub delete_session_on_close: bool,
    /// Per server (same index as `servers`; shorter means the rest send the WAT): the OAuth2 token to send
    /// instead of the WorkloadAccessToken (`AI_GATEWAY_MCP_OAUTH2`).
    pub grants: Vec<Option<OAuth2Grant>>,
    /// `AI_GATEWAY_MCP_PROTOCOL`: `auto`, or one revision for every server.
    pub protocol: McpProtocol,
    /// What is kept between turns per (server, user), and how much of it.
    pub pool: PoolLimits,
}

impl McpSettings {
    pub fn new(servers: Vec<Endpoint>, tool_timeout: Duration) -> Self {
        McpSettings {
            servers,
            tool_timeout,
            delete_session_on_close: false,
            grants: Vec::new(),
            protocol: McpProtocol::Auto,
            pool: PoolLimits::default(),
        }
    }
}

/// Built once at start; cheap to share. Holds the one reqwest client all MCP connections use, what the
/// instance learned of each server's revision, and the users' kept connections.
#[derive(Clone)]
pub struct McpClient {
    servers: Arc<[ServerUrl]>,
    http: reqwest::Client,
    tool_timeout: Duration,
    delete_session_on_close: bool,
    protocol: McpProtocol,
    knowledge: Arc<revision::Knowledge>,
    pool: Arc<pool::Pool>,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("servers", &self.servers)
            .field("protocol", &self.protocol)
            .field("pool", &self.pool.limits())
            .finish_non_exhaustive()
    }
}

impl McpSettings {
    /// Each server's label, in server order (what the Responses face shows as `server_label`, and what a
    /// request's `mcp` tool names a server by).
    pub(crate) fn labels(&self) -> Vec<String> {
        names::server_labels(self.servers.iter().map(Endpoint::url))
    }
}

impl McpClient {
    pub fn new(settings: McpSettings) -> Result<Self, McpError> {
        let labels = names::server_labels(settings.servers.iter().map(Endpoint::url));
        let servers: Vec<ServerUrl> = settings
            .servers
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(index, (endpoint, label))| ServerUrl {
                url: Arc::from(endpoint.as_str()),
                shown: endpoint.redacted(),
                label,
                grant: settings.grants.get(index).cloned().flatten(),
            })
            .collect();
        let http = crate::upstream::client_builder()
            .build()
            .map_err(|e| McpError::HttpClient { detail: e.without_url().to_string() })?;
        Ok(McpClient {
            knowledge: Arc::new(revision::Knowledge::new(servers.len())),
            servers: servers.into(),
            http,
            tool_timeout: settings.tool_timeout,
            delete_session_on_close: settings.delete_session_on_close,
            protocol: settings.protocol,
            pool: Arc::new(pool::Pool::new(settings.pool)),
        })
    }

    /// Whether any server is configured (no servers: sessions are empty and cost nothing).
    pub fn has_servers(&self) -> bool {
        !self.servers.is_empty()
    }

    /// What each server takes as its bearer, in server order (`None`: the WorkloadAccessToken).
    pub fn grants(&self) -> Vec<Option<OAuth2Grant>> {
        self.servers.iter().map(|server| server.grant.clone()).collect()
    }

    /// Opens one connection per server, concurrently, and lists their tools, for nobody in particular: the
    /// connections are new and end at [`ToolSession::close`]. Fails as a whole when any server fails (the
    /// first error wins and the other handshakes are cancelled), so a 401 surfaces for the caller's single
    /// token refresh. Everything is bounded by `deadline`.
    pub async fn open(&self, bearer: &Secret, deadline: tokio::time::Instant) -> Result<ToolSession, McpError> {
        let bearers = vec![bearer.clone(); self.servers.len()];
        session::open(self, &bearers, None, deadline).await
    }

    /// [`McpClient::open`] for `user`: each server's kept connection for that user when there is one (a
    /// warm turn sends no request here), and whatever is opened is kept for the user's next turn.
    pub async fn open_for(
        &self,
        user: &UserKey,
        bearer: &Secret,
        deadline: tokio::time::Instant,
    ) -> Result<ToolSession, McpError> {
        let bearers = vec![bearer.clone(); self.servers.len()];
        session::open(self, &bearers, Some(user), deadline).await
    }

    /// [`McpClient::open`] with each server's own bearer (`bearers[i]` for server `i`), kept for `user`.
    pub(crate) async fn open_each(
        &self,
        bearers: &[Secret],
        user: Option<&UserKey>,
        deadline: tokio::time::Instant,
    ) -> Result<ToolSession, McpError> {
        session::open(self, bearers, user, deadline).await
    }

    /// Connections kept and the bytes they are counted for (the pool's budget).
    pub fn kept(&self) -> (usize, usize) {
        self.pool.usage()
    }

    /// The indexes of the servers an error names (a 401 is reported to those servers' token sources).
    pub(crate) fn servers_named(&self, shown: &str) -> Vec<usize> {
        (0..self.servers.len()).filter(|&i| self.servers[i].shown == shown).collect()
    }
}
