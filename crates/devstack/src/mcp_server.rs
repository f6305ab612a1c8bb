//! The MCP server stand-in: a real rmcp streamable-HTTP server behind a bearer check, like an AI Gateway
//! MCP endpoint, with tools `getutctime`, `helloworld {name}`, `broken` (always `isError`) and `rendezvous`
//! (answers "met" only when a second `rendezvous` call is in flight at the same time, so tests can prove
//! concurrency without clocks). It counts every HTTP request and every response the client abandoned.
//! [`McpStandIn::inject`] queues a [`Fault`] for the next request of a given JSON-RPC method.
//!
//! ```ignore
//! let mcp = McpStandIn::start(StandInOptions::accepting("dev-token")).await?;
//! // ... point the client at mcp.url() ...
//! assert_eq!(mcp.methods(), ["initialize", "notifications/initialized", "tools/list", "tools/call"]);
//! ```

mod gate;
mod tools;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::middleware::from_fn_with_state;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::sync::oneshot;

use gate::{Gate, Stats, guard};
use tools::{Rendezvous, StandInTools};

/// One answered request: its JSON-RPC method (or HTTP method), when it reached the stand-in and how long it
/// took to the end of its response body. The benchmark lays a turn out on a timeline with these.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub arrived: Instant,
    pub elapsed: Duration,
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
            .finish_non_exhaustive()
    }
}

/// A running stand-in. Dropping it (or [`McpStandIn::shutdown`]) ends its sessions and stops listening.
pub struct McpStandIn {
    url: String,
    faults: Arc<std::sync::Mutex<Vec<(String, Fault)>>>,
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

        let mut config = StreamableHttpServerConfig::default();
        if options.sessions == SessionMode::StatelessJson {
            config = config.with_legacy_session_mode(false).with_json_response(true).with_sse_keep_alive(None);
        }
        let cancel_token = config.cancellation_token.clone();
        let tools = StandInTools::new(rendezvous, &options);
        let service: StreamableHttpService<StandInTools, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(tools.clone()), Default::default(), config);

        let gate = Arc::new(Gate {
            stats: stats.clone(),
            token_check: options.token_check,
            forbidden_marker: options.forbidden_marker,
            faults: Default::default(),
        });
        let faults = gate.faults.clone();
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
