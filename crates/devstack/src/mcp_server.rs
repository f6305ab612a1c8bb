//! The MCP server stand-in: a real rmcp streamable-HTTP server behind a bearer check, like an AI Gateway
//! MCP endpoint, with tools `getutctime`, `helloworld {name}`, `broken` (always `isError`) and `rendezvous`
//! (answers "met" only when a second `rendezvous` call is in flight at the same time, so tests can prove
//! concurrency without clocks) and `sleep {seconds}` (a tool that works silently, for keep-alives). It counts every HTTP request and every response the client abandoned.
//! [`McpStandIn::inject`] queues a [`Fault`] for the next request of a given JSON-RPC method.
//!
//! It speaks the 2025 revisions (`initialize`, sessions), 2026-07-28 (`server/discover`, stateless, client
//! context in `_meta`) or both ([`Revisions`]); denies chosen tools with 403 as an AI Gateway policy does
//! ([`StandInOptions::deny_tools`], [`McpStandIn::deny_tool`]); and has hooks for the client's recovery
//! paths: [`McpStandIn::drop_sessions`] (404 on an old session), [`McpStandIn::change_tools`] (a new tool
//! and `notifications/tools/list_changed`) and [`StandInOptions::delay`] (a gateway in another zone).
//!
//! ```ignore
//! let mcp = McpStandIn::start(StandInOptions::accepting("dev-token")).await?;
//! // ... point the client at mcp.url() ...
//! assert_eq!(mcp.methods(), ["initialize", "notifications/initialized", "tools/list", "tools/call"]);
//! ```

mod gate;
mod notice;
mod revision;
#[cfg(test)]
mod tests;
mod tools;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::middleware::from_fn_with_state;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::{SessionManager, local::LocalSessionManager};
use tokio::sync::oneshot;

use gate::{Gate, Stats, guard};
use notice::Notices;
use tools::{Rendezvous, StandInTools};

pub use revision::Revisions;
/// Who may cache a 2026-07-28 list result (`cacheScope`: `"public"` or `"private"`).
pub use rmcp::model::CacheScope;
pub use tools::LATE_TOOL;

/// One answered request: its JSON-RPC method (or HTTP method), when it reached the stand-in and how long it
/// took to the end of its response body. The benchmark lays a turn out on a timeline with these.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub arrived: Instant,
    pub elapsed: Duration,
}

/// The MCP headers of one request, as the client sent them (2026-07-28 requires the first three on every
/// request but `initialize`; `Mcp-Name` only on calls naming a tool, prompt or resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    /// `Mcp-Method`.
    pub mcp_method: Option<String>,
    /// `Mcp-Name`, as sent (Base64-wrapped values are not decoded).
    pub mcp_name: Option<String>,
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` of the body.
    pub meta_protocol_version: Option<String>,
    /// `Mcp-Session-Id`.
    pub session: Option<String>,
    /// The W3C `traceparent` header.
    pub traceparent: Option<String>,
    /// `params._meta.traceparent` of the body (the MCP conventions' place for the trace context).
    pub meta_traceparent: Option<String>,
}

/// A failure to answer one request with instead of serving it (see [`McpStandIn::inject`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This HTTP status with a short plain-text body; `retry_after` is sent as `Retry-After` (seconds).
    /// 401 carries `WWW-Authenticate: Bearer` like the real gateway.
    Status { status: u16, retry_after: Option<u64> },
    /// Accept the request and never answer (not even the status line).
    Hang,
    /// 200 `text/event-stream` that sends one SSE comment line per [`DRIP_INTERVAL`] and never an event.
    Drip,
    /// 200 `text/event-stream` with half an event, then the connection breaks.
    Cut,
    /// 200 `application/json` with a body that is not JSON.
    Malformed,
}

/// The pace of [`Fault::Drip`].
pub const DRIP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Decides whether a bearer token is accepted (the dev stack plugs in the Agent Identity stand-in's tokens).
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// `Mcp-Session-Id` sessions, SSE replies (rmcp's default).
    #[default]
    Stateful,
    /// No sessions; each reply is one JSON body.
    StatelessJson,
}

#[derive(Clone)]
pub struct StandInOptions {
    /// `127.0.0.1:0` unless `make dev` wants a fixed port.
    pub bind: SocketAddr,
    pub sessions: SessionMode,
    /// Negotiate at most protocol revision 2025-03-26 (the oldest streamable-HTTP revision).
    pub only_2025_03_26: bool,
    /// Prepended to every tool name, e.g. `"my.tools/"` to serve names the model API refuses.
    pub tool_prefix: String,
    pub token_check: TokenCheck,
    /// A token containing this marker gets 403 (plain text, no challenge), as a gateway policy denial.
    pub forbidden_marker: Option<String>,
    /// Also list a tool `phantom` that is not served: calling it is a JSON-RPC error (-32602).
    pub phantom_tool: bool,
    /// Split `tools/list` into pages of this many tools, linked by `nextCursor`.
    pub page_size: Option<usize>,
    /// The revisions it answers (Legacy, as before there were two, unless set).
    pub revisions: Revisions,
    /// `ttlMs` of a 2026-07-28 `tools/list` result (rmcp sends 0 when unset).
    pub list_ttl_ms: Option<u64>,
    /// `cacheScope` of a 2026-07-28 `tools/list` result (rmcp sends `private` when unset).
    pub cache_scope: Option<CacheScope>,
    /// Tools whose `tools/call` gets 403 (plain text, no challenge), by the name the client calls (prefix
    /// included), as an AI Gateway policy denying one tool to this user. The others are served.
    pub deny_tools: HashSet<String>,
    /// Every answer waits this long first (rejections and faults too): a gateway in another zone.
    pub delay: Option<Duration>,
}

impl StandInOptions {
    pub fn new(token_check: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        StandInOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            sessions: SessionMode::default(),
            only_2025_03_26: false,
            tool_prefix: String::new(),
            token_check: Arc::new(token_check),
            forbidden_marker: None,
            phantom_tool: false,
            page_size: None,
            revisions: Revisions::default(),
            list_ttl_ms: None,
            cache_scope: None,
            deny_tools: HashSet::new(),
            delay: None,
        }
    }

    /// Accepts exactly `token`.
    pub fn accepting(token: impl Into<String>) -> Self {
        let token = token.into();
        Self::new(move |candidate| candidate == token)
    }
}

impl fmt::Debug for StandInOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandInOptions")
            .field("bind", &self.bind)
            .field("sessions", &self.sessions)
            .field("only_2025_03_26", &self.only_2025_03_26)
            .field("tool_prefix", &self.tool_prefix)
            .field("phantom_tool", &self.phantom_tool)
            .field("page_size", &self.page_size)
            .field("revisions", &self.revisions)
            .field("list_ttl_ms", &self.list_ttl_ms)
            .field("cache_scope", &self.cache_scope)
            .field("deny_tools", &self.deny_tools)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// A running stand-in. Dropping it (or [`McpStandIn::shutdown`]) ends its sessions and stops listening.
pub struct McpStandIn {
    url: String,
    faults: Arc<std::sync::Mutex<Vec<(String, Fault)>>>,
    denied: Arc<std::sync::Mutex<HashSet<String>>>,
    sessions: Arc<LocalSessionManager>,
    notices: Arc<Notices>,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    end_sessions: Box<dyn Fn() + Send + Sync>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl McpStandIn {
    pub async fn start(options: StandInOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let rendezvous = Arc::new(Rendezvous::default());
        let notices = Arc::new(Notices::default());

        let config = options.revisions.config(options.sessions);
        let cancel_token = config.cancellation_token.clone();
        let tools = StandInTools::new(rendezvous, notices.clone(), &options);
        // Kept, so that `drop_sessions` can end rmcp's sessions behind the client's back.
        let sessions = Arc::new(LocalSessionManager::default());
        let service: StreamableHttpService<StandInTools, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(tools.clone()), sessions.clone(), config);

        let gate = Arc::new(Gate {
            stats: stats.clone(),
            token_check: options.token_check,
            forbidden_marker: options.forbidden_marker,
            faults: Default::default(),
            denied: Arc::new(std::sync::Mutex::new(options.deny_tools)),
            delay: options.delay.filter(|delay| !delay.is_zero()),
            revisions: options.revisions,
            sessions: options.sessions,
            notices: notices.clone(),
        });
        let faults = gate.faults.clone();
        let denied = gate.denied.clone();
        let app = axum::Router::new().nest_service("/mcp", service).layer(from_fn_with_state(gate, guard));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(super::no_delay(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(McpStandIn {
            url: format!("http://{addr}/mcp"),
            faults,
            denied,
            sessions,
            notices,
            stats,
            stop: Some(stop),
            end_sessions: Box::new(move || cancel_token.cancel()),
            server: Some(server),
        })
    }

    /// The streamable-HTTP endpoint, `http://127.0.0.1:<port>/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answer the next request whose JSON-RPC method is `method` (`"initialize"`, `"tools/list"`,
    /// `"tools/call"`, …) with `fault`, after the bearer check. Faults queue up per method, in order.
    pub fn inject(&self, method: &str, fault: Fault) {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).push((method.to_owned(), fault));
    }

    /// From now on a `tools/call` of `tool` (the name the client calls) gets 403, as a policy set would.
    pub fn deny_tool(&self, tool: &str) {
        self.denied.lock().unwrap_or_else(|p| p.into_inner()).insert(tool.to_owned());
    }

    /// Lifts [`McpStandIn::deny_tool`] (or [`StandInOptions::deny_tools`]) for `tool`.
    pub fn allow_tool(&self, tool: &str) {
        self.denied.lock().unwrap_or_else(|p| p.into_inner()).remove(tool);
    }

    /// Ends every `Mcp-Session-Id` session, as a restarted or rebalanced server forgets them: the next
    /// request on one gets 404 and the client must `initialize` again. Returns how many there were.
    pub async fn drop_sessions(&self) -> usize {
        let ids: Vec<_> = self.sessions.sessions.read().await.keys().cloned().collect();
        for id in &ids {
            // Only fails for a session that already ended on its own, which is what was wanted.
            let _ = self.sessions.close_session(id).await;
        }
        ids.len()
    }

    /// The tool list changes: [`LATE_TOOL`] (with the prefix) is listed and served from now on. Every 2025
    /// client (each session, and sessionless clients together) finds `notifications/tools/list_changed`
    /// at the head of its next response but a `tools/list` one; 2026-07-28 clients get it on a
    /// `subscriptions/listen` stream, or see the change when their `ttlMs` runs out.
    pub fn change_tools(&self) {
        self.notices.change();
    }

    /// HTTP requests received (rejected ones included).
    pub fn request_count(&self) -> usize {
        self.stats.lock().methods.len()
    }

    /// Each request in arrival order: the JSON-RPC method of a POST (`"initialize"`, `"tools/call"`, …,
    /// `"response"` for a reply to the server), or the HTTP method of a `GET`/`DELETE`.
    pub fn methods(&self) -> Vec<String> {
        self.stats.lock().methods.clone()
    }

    /// The bearer token of each request, in arrival order (what the server was sent, accepted or not).
    pub fn bearers(&self) -> Vec<String> {
        self.stats.lock().bearers.clone()
    }

    pub fn method_count(&self, method: &str) -> usize {
        self.stats.lock().methods.iter().filter(|m| *m == method).count()
    }

    /// Requests per `Mcp-Session-Id` (the `initialize` that created a session counts for it; `""` collects
    /// stateless and rejected requests).
    pub fn session_request_counts(&self) -> HashMap<String, usize> {
        self.stats.lock().sessions.clone()
    }

    /// The `MCP-Protocol-Version` header of each request that carried one (all but `initialize`).
    pub fn protocol_versions(&self) -> Vec<String> {
        self.stats.lock().protocol_versions.clone()
    }

    /// The MCP headers of each request whose JSON-RPC method (as in [`McpStandIn::methods`]) is `method`,
    /// in arrival order.
    pub fn headers_of(&self, method: &str) -> Vec<RequestHeaders> {
        let stats = self.stats.lock();
        stats.headers.iter().filter(|(m, _)| m == method).map(|(_, headers)| headers.clone()).collect()
    }

    /// How long each answered request took, from arrival to the end of its response body, in completion
    /// order (requests still streaming are not in it yet). The benchmark subtracts these from its wall time.
    pub fn elapsed(&self) -> Vec<Duration> {
        self.stats.lock().served.iter().map(|served| served.elapsed).collect()
    }

    /// Each answered request with its JSON-RPC method, arrival and duration, in completion order.
    pub fn served(&self) -> Vec<Served> {
        self.stats.lock().served.clone()
    }

    /// Requests whose response the client abandoned (connection closed before the response ended).
    pub fn cancelled_count(&self) -> usize {
        self.stats.cancelled.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        let mut inner = self.stats.lock();
        inner.methods.clear();
        inner.sessions.clear();
        inner.protocol_versions.clear();
        inner.headers.clear();
        inner.served.clear();
        self.stats.cancelled.store(0, Ordering::SeqCst);
    }

    /// Ends all sessions and waits until the listener has stopped.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        (self.end_sessions)();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for McpStandIn {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl fmt::Debug for McpStandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpStandIn").field("url", &self.url).finish_non_exhaustive()
    }
}
