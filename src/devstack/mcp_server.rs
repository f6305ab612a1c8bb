//! The MCP server stand-in: a real rmcp streamable-HTTP server behind a bearer check, like an AI Gateway
//! MCP endpoint, with tools `getutctime`, `helloworld {name}`, `broken` (always `isError`) and `rendezvous`
//! (answers "met" only when a second `rendezvous` call is in flight at the same time, so tests can prove
//! concurrency without clocks). It counts every HTTP request and every response the client abandoned.
//!
//! ```ignore
//! let mcp = McpStandIn::start(StandInOptions::accepting("dev-token")).await?;
//! // ... point the client at mcp.url() ...
//! assert_eq!(mcp.methods(), ["initialize", "notifications/initialized", "tools/list", "tools/call"]);
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams, ProtocolVersion, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::oneshot;

/// Decides whether a bearer token is accepted (the dev stack plugs in the Agent Identity stand-in's tokens).
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

const MAX_BODY_BYTES: usize = 1 << 20;
const RENDEZVOUS_WAIT: Duration = Duration::from_secs(5);
const SESSION_HEADER: &str = "mcp-session-id";

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
            config = config
                .with_legacy_session_mode(false)
                .with_json_response(true)
                .with_sse_keep_alive(None);
        }
        let cancel_token = config.cancellation_token.clone();
        let tools = StandInTools::new(rendezvous, &options);
        let service: StreamableHttpService<StandInTools, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(tools.clone()), Default::default(), config);

        let gate = Arc::new(Gate {
            stats: stats.clone(),
            token_check: options.token_check,
            forbidden_marker: options.forbidden_marker,
        });
        let app = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(from_fn_with_state(gate, guard));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(McpStandIn {
            url: format!("http://{addr}/mcp"),
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

    /// HTTP requests received (rejected ones included).
    pub fn request_count(&self) -> usize {
        self.stats.lock().methods.len()
    }

    /// Each request in arrival order: the JSON-RPC method of a POST (`"initialize"`, `"tools/call"`, …,
    /// `"response"` for a reply to the server), or the HTTP method of a `GET`/`DELETE`.
    pub fn methods(&self) -> Vec<String> {
        self.stats.lock().methods.clone()
    }

    pub fn method_count(&self, method: &str) -> usize {
        self.stats
            .lock()
            .methods
            .iter()
            .filter(|m| *m == method)
            .count()
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

    /// Requests whose response the client abandoned (connection closed before the response ended).
    pub fn cancelled_count(&self) -> usize {
        self.stats.cancelled.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        let mut inner = self.stats.lock();
        inner.methods.clear();
        inner.sessions.clear();
        inner.protocol_versions.clear();
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
        f.debug_struct("McpStandIn")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

// ---- request accounting and the bearer gate ----

#[derive(Default)]
struct Stats {
    inner: Mutex<StatsInner>,
    cancelled: AtomicUsize,
}

#[derive(Default)]
struct StatsInner {
    methods: Vec<String>,
    sessions: HashMap<String, usize>,
    protocol_versions: Vec<String>,
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, StatsInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count_session(&self, session: &str) {
        *self.lock().sessions.entry(session.to_owned()).or_default() += 1;
    }

    fn count_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

struct Gate {
    stats: Arc<Stats>,
    token_check: TokenCheck,
    forbidden_marker: Option<String>,
}

async fn guard(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    {
        let mut stats = gate.stats.lock();
        stats.methods.push(request_label(&parts.method, &bytes));
        let version = parts.headers.get("mcp-protocol-version");
        if let Some(version) = version.and_then(|v| v.to_str().ok()) {
            stats.protocol_versions.push(version.to_owned());
        }
    }
    let request_session = session_id(&parts.headers);

    if let Some(rejection) = gate.reject(&parts.headers) {
        gate.stats
            .count_session(request_session.as_deref().unwrap_or_default());
        return rejection;
    }

    let mut pending = PendingGuard {
        stats: gate.stats.clone(),
        armed: true,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    pending.armed = false;

    let session = request_session.or_else(|| session_id(response.headers()));
    gate.stats
        .count_session(session.as_deref().unwrap_or_default());
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(TrackedBody {
            inner: body,
            stats: gate.stats.clone(),
            finished: false,
        }),
    )
}

impl Gate {
    fn reject(&self, headers: &HeaderMap) -> Option<Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let unauthorized = || {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "invalid or missing bearer token",
            )
                .into_response()
        };
        let Some(token) = token else {
            return Some(unauthorized());
        };
        if self
            .forbidden_marker
            .as_deref()
            .is_some_and(|marker| token.contains(marker))
        {
            return Some(
                (StatusCode::FORBIDDEN, "access to this MCP server is denied").into_response(),
            );
        }
        if !(self.token_check)(token) {
            return Some(unauthorized());
        }
        None
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn request_label(method: &Method, body: &[u8]) -> String {
    if method != Method::POST {
        return method.as_str().to_owned();
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "invalid".to_owned();
    };
    if let Some(rpc_method) = value.get("method").and_then(|m| m.as_str()) {
        rpc_method.to_owned()
    } else if value.get("result").is_some() || value.get("error").is_some() {
        "response".to_owned()
    } else if value.is_array() {
        "batch".to_owned()
    } else {
        "invalid".to_owned()
    }
}

/// Counts a cancellation when the handler future is dropped before it produced a response.
struct PendingGuard {
    stats: Arc<Stats>,
    armed: bool,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.armed {
            self.stats.count_cancelled();
        }
    }
}

/// Counts a cancellation when a response body (e.g. an SSE stream) is dropped before its end.
struct TrackedBody {
    inner: Body,
    stats: Arc<Stats>,
    finished: bool,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if !self.finished && !self.inner.is_end_stream() {
            self.stats.count_cancelled();
        }
    }
}

// ---- the tools ----

/// Pairs two concurrent `rendezvous` calls.
#[derive(Default)]
struct Rendezvous {
    waiting: Mutex<Option<oneshot::Sender<()>>>,
}

impl Rendezvous {
    async fn meet(&self) -> bool {
        let arrived = {
            let mut slot = self
                .waiting
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // A sender whose caller gave up fails to send; then this call waits in its place.
            if let Some(partner) = slot.take()
                && partner.send(()).is_ok()
            {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            *slot = Some(tx);
            rx
        };
        matches!(
            tokio::time::timeout(RENDEZVOUS_WAIT, arrived).await,
            Ok(Ok(()))
        )
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct HelloArgs {
    /// Who to greet.
    name: String,
}

#[derive(Clone)]
struct StandInTools {
    tool_router: ToolRouter<Self>,
    rendezvous: Arc<Rendezvous>,
    only_2025_03_26: bool,
    phantom_tool: bool,
    page_size: Option<usize>,
}

impl StandInTools {
    fn new(rendezvous: Arc<Rendezvous>, options: &StandInOptions) -> Self {
        let prefix = options.tool_prefix.as_str();
        let mut tool_router = Self::tool_router();
        if !prefix.is_empty() {
            let mut renamed = ToolRouter::new();
            for mut route in tool_router {
                route.attr.name = Cow::Owned(format!("{prefix}{}", route.attr.name));
                renamed.add_route(route);
            }
            tool_router = renamed;
        }
        StandInTools {
            tool_router,
            rendezvous,
            only_2025_03_26: options.only_2025_03_26,
            phantom_tool: options.phantom_tool,
            page_size: options.page_size,
        }
    }

    fn listed_tools(&self) -> Vec<Tool> {
        let mut tools = self.tool_router.list_all();
        if self.phantom_tool {
            let schema = serde_json::json!({"type": "object"});
            let schema = schema.as_object().cloned().unwrap_or_default();
            tools.push(Tool::new(
                "phantom",
                "Listed but not served.",
                Arc::new(schema),
            ));
        }
        tools
    }
}

#[tool_router]
impl StandInTools {
    #[tool(description = "Returns the current UTC time in RFC 3339 format.")]
    fn getutctime(&self) -> String {
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
    }

    #[tool(description = "Greets someone by name.")]
    fn helloworld(&self, Parameters(HelloArgs { name }): Parameters<HelloArgs>) -> String {
        format!("Hello, {name}!")
    }

    #[tool(description = "Always fails: returns a result with isError set.")]
    fn broken(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text("the broken tool always fails")])
    }

    #[tool(
        description = "Answers \"met\" once a second concurrent rendezvous call arrives (waits up to 5 s)."
    )]
    async fn rendezvous(&self) -> CallToolResult {
        if self.rendezvous.meet().await {
            CallToolResult::success(vec![ContentBlock::text("met")])
        } else {
            CallToolResult::error(vec![ContentBlock::text("no concurrent call")])
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for StandInTools {
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.listed_tools();
        let Some(page_size) = self.page_size.filter(|&n| n > 0) else {
            return Ok(ListToolsResult::with_all_items(tools));
        };
        let start = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| ErrorData::invalid_params("bad cursor", None))?,
            None => 0,
        };
        let end = (start + page_size).min(tools.len());
        let mut page =
            ListToolsResult::with_all_items(tools.get(start..end).unwrap_or_default().to_vec());
        page.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(page)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.only_2025_03_26 {
            Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_03_26))
        } else {
            Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }
}
