//! One live connection to one MCP server for one user: rmcp's running client, the bearer it sends, and the
//! tool list it last got. It outlives the turn that opened it ([`super::pool`]): a warm turn of the same
//! user lists nothing and (on 2025 revisions) keeps the server's `Mcp-Session-Id`, so its only MCP request
//! is the `tools/call` itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, ElicitationCapability,
    FormElicitationCapability, Implementation, ProtocolVersion, Tool, UrlElicitationCapability,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientCacheConfig, ClientHandler, ServiceExt};
use tokio::time::{Instant, timeout_at};

use super::error::{ErrorScope, McpError};
use super::http::{BearerCell, SessionHttp, SessionOwner, TraceCell};
use super::output::ToolOutput;
use super::revision::Learned;
use super::server::ServerUrl;
use crate::secret::Secret;
use crate::telemetry::Span;

/// A tool list is never reused longer than this, whatever a server's `ttlMs` says (rmcp's own cap).
const MAX_LIST_TTL: Duration = rmcp::MAX_CLIENT_CACHE_TTL;

/// What a live connection costs besides its tool list, for the pool's byte budget: rmcp's worker task and
/// channels, the transport's buffers and the session id. Measured, not guessed: the resident memory of
/// 256 pooled users over none is ~86 KiB each (BENCHMARKS.md, "The MCP boundary"), so the default
/// `AI_GATEWAY_MCP_CACHE_BYTES` (4 MiB) keeps about 45 users warm and the pool stays inside its budget
/// next to the session store. The tool list is counted exactly on top.
pub(super) const LIVE_OVERHEAD_BYTES: usize = 88 * 1024;

/// The client side of the connection as rmcp sees it: our name and capabilities, and the one notification
/// a tool client acts on. Questions are never answered here: a 2026-07-28 `input_required` result comes
/// back to the caller ([`Live::call`] sends one round at a time, `super::question`), and a 2025 connection
/// does not declare `elicitation`, so a server does not send `elicitation/create` in the middle of a call
/// (if one does anyway, rmcp's default handler declines it).
#[derive(Clone)]
pub(super) struct Notices {
    config: ClientConfig,
    /// Set by `notifications/tools/list_changed`: the next turn lists again.
    stale: Arc<AtomicBool>,
}

impl ClientHandler for Notices {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.stale.store(true, Ordering::Release);
    }
}

/// What the client declares. `elicitation` (form and URL mode) only on 2026-07-28: there a question is a
/// result the turn can end with and the next invocation answer (the retry carries `requestState`); on a
/// 2025 revision it is a server request inside the open `tools/call`, which would have to be answered
/// before the invocation ends — the user is not there to answer it, so the capability is not claimed.
fn client_config(version: ProtocolVersion) -> ClientConfig {
    let mut capabilities = ClientCapabilities::default();
    if !version.has_initialize() {
        capabilities.elicitation = Some(
            ElicitationCapability::new()
                .with_form(FormElicitationCapability::default())
                .with_url(UrlElicitationCapability::new()),
        );
    }
    ClientConfig::new(capabilities, Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")))
        .with_protocol_version(version)
}

/// One `tools/call` round's answer.
pub(super) enum Round {
    Output(ToolOutput),
    InputRequired(rmcp::model::InputRequiredResult),
}

/// The tool list as last listed, and until when it may be offered without listing again.
struct Listed {
    tools: Arc<[Tool]>,
    expires: Instant,
}

pub(super) struct Live {
    service: RunningService<RoleClient, Notices>,
    bearer: BearerCell,
    /// The trace context of requests without their own, and the session id the server gave.
    trace: TraceCell,
    stale: Arc<AtomicBool>,
    listed: Mutex<Option<Listed>>,
    /// The revision the connection speaks (negotiated or discovered).
    pub(super) version: ProtocolVersion,
    /// Dropped with the connection: whatever rmcp's worker still has in flight is abandoned.
    _owner: SessionOwner,
}

/// How a new connection starts.
pub(super) enum Start {
    /// `initialize` + `notifications/initialized`, offering this revision.
    Handshake(ProtocolVersion),
    /// `server/discover`, accepting only this revision.
    Discover(ProtocolVersion),
    /// No request: the server is known to be stateless and what it discovered is known.
    Known(Arc<rmcp::model::ServerPeerInfo>),
}

impl Live {
    /// Opens a connection (the requests of `start`, none for `Known`), bounded by `deadline`.
    pub(super) async fn open(
        http: &reqwest::Client,
        delete_session_on_close: bool,
        server: &ServerUrl,
        authorization: http::HeaderValue,
        bearer: &Secret,
        start: Start,
        deadline: Instant,
    ) -> Result<Live, McpError> {
        let scope = ErrorScope { server: &server.shown, raw_url: &server.url, bearer };
        let cell = BearerCell::new(authorization);
        let trace = TraceCell::default();
        // Dropped on any early return (failure, deadline): the handshake's requests end with it.
        let (http, owner) = SessionHttp::new(http.clone(), delete_session_on_close, cell.clone(), trace.clone());
        let stale = Arc::new(AtomicBool::new(false));
        let config = StreamableHttpClientTransportConfig::with_uri(server.url.clone()).reinit_on_expired_session(true);
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let version = match &start {
            Start::Handshake(version) | Start::Discover(version) => version.clone(),
            Start::Known(info) => info.protocol_version.clone(),
        };
        let method = match &start {
            Start::Handshake(_) => Some("initialize"),
            Start::Discover(_) => Some("server/discover"),
            Start::Known(_) => None,
        };
        let span = match method {
            Some(method) => super::trace::client_span(method, None, &server.url, &version, None),
            None => Span::none(),
        };
        trace.follow_span(&span);
        let notices = Notices { config: client_config(version), stale: stale.clone() };
        let service = match start {
            Start::Handshake(_) => {
                timeout_at(deadline, notices.serve(transport)).await.map_err(|_| scope.timeout("initialize"))?
            }
            Start::Discover(version) => {
                let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![version] };
                timeout_at(deadline, notices.serve_with_lifecycle(transport, lifecycle))
                    .await
                    .map_err(|_| scope.timeout("server/discover"))?
            }
            Start::Known(info) => Ok(rmcp::service::serve_directly(notices, transport, Some((*info).clone()))),
        }
        .map_err(|e| scope.classify_init(e));
        super::trace::end(&span, &service);
        let service = service?;
        // Our own cache decides when to list again (ttlMs, list_changed, the configured time); rmcp's would
        // also serve a stale list when a re-list fails, which would hide a 401.
        service.peer().set_response_cache_config(ClientCacheConfig::disabled()).await;
        let version = service.peer().peer_info().map(|info| info.protocol_version.clone()).unwrap_or_default();
        Ok(Live { service, bearer: cell, trace, stale, listed: Mutex::new(None), version, _owner: owner })
    }

    /// What to remember about the server after this connection opened.
    pub(super) fn learned(&self) -> Learned {
        match self.service.peer().peer_info() {
            Some(info) if !info.protocol_version.has_initialize() => Learned::Stateless(info),
            _ => Learned::Handshake,
        }
    }

    /// This turn's bearer for every request from now on (same user: the pool keys connections by user).
    pub(super) fn use_bearer(&self, authorization: http::HeaderValue) {
        self.bearer.set(authorization);
    }

    /// The tools, listed only when there is no fresh list: none yet, expired, or the server said it changed.
    /// Returns the list and, when it was listed now, its size in bytes (for the pool's budget).
    pub(super) async fn tools(
        &self,
        scope: &ErrorScope<'_>,
        default_ttl: Duration,
        deadline: Instant,
    ) -> Result<(Arc<[Tool]>, Option<usize>), McpError> {
        if !self.stale.load(Ordering::Acquire) {
            let listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(listed) = listed.as_ref().filter(|listed| Instant::now() < listed.expires) {
                return Ok((listed.tools.clone(), None));
            }
        }
        // Cleared before listing, so a change announced while the list is in flight marks it stale again.
        self.stale.store(false, Ordering::Release);
        let span = super::trace::client_span(
            "tools/list",
            None,
            scope.raw_url,
            &self.version,
            self.trace.session_id().as_deref(),
        );
        self.trace.follow_span(&span);
        let merged = timeout_at(deadline, self.service.peer().list_all_tools_with_cache_hint())
            .await
            .map_err(|_| scope.timeout("tools/list"))
            .and_then(|listed| listed.map_err(|e| scope.classify_service(e)));
        super::trace::end(&span, &merged);
        let merged = merged?;
        // 2026-07-28 servers say how long a list stays good; older ones never do: the configured time.
        let ttl = match merged.ttl_ms {
            Some(ms) if !self.version.has_initialize() => Duration::from_millis(ms),
            _ => default_ttl,
        }
        .min(MAX_LIST_TTL);
        let bytes = serde_json::to_vec(&merged.items).map_or(0, |json| json.len());
        let tools: Arc<[Tool]> = merged.items.into();
        let expires = Instant::now().checked_add(ttl).unwrap_or_else(Instant::now);
        *self.listed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Listed { tools: tools.clone(), expires });
        Ok((tools, Some(bytes)))
    }

    /// One `tools/call` round: the result, or a 2026-07-28 `input_required` result for the caller to
    /// answer (and retry with) itself.
    pub(super) async fn call(
        &self,
        params: CallToolRequestParams,
        scope: &ErrorScope<'_>,
        deadline: Instant,
    ) -> Result<Round, McpError> {
        match timeout_at(deadline, self.service.call_tool_once(params)).await {
            Err(_elapsed) => Err(scope.timeout("tools/call")),
            Ok(Err(error)) => Err(scope.classify_service(error)),
            Ok(Ok(CallToolResponse::Complete(result))) => Ok(Round::Output(result.into())),
            Ok(Ok(CallToolResponse::InputRequired(result))) => Ok(Round::InputRequired(result)),
            // A task (SEP-2663) is only answered to a client that declared the tasks extension; we do not.
            Ok(Ok(_)) => {
                Err(scope
                    .protocol(-32603, "the server answered tools/call with a task, which this client did not ask for"))
            }
        }
    }

    /// The MCP session id the server assigned (none on a stateless 2026-07-28 connection).
    pub(super) fn session_id(&self) -> Option<Arc<str>> {
        self.trace.session_id()
    }

    /// Whether the connection can serve another turn (its worker has not stopped).
    pub(super) fn is_open(&self) -> bool {
        !self.service.is_closed() && !self.service.peer().is_transport_closed()
    }

    /// Stops the worker and waits for it (and the optional `DELETE`), bounded.
    pub(super) async fn close(self, limit: Duration) {
        let Live { mut service, _owner, .. } = self;
        let _ = service.close_with_timeout(limit).await;
    }
}

/// The `Authorization` header for a bearer, marked sensitive (rmcp's transport config derives `Debug`).
pub(super) fn authorization(bearer: &Secret) -> Result<http::HeaderValue, McpError> {
    let mut value =
        http::HeaderValue::from_str(&format!("Bearer {}", bearer.expose())).map_err(|_| McpError::InvalidBearer)?;
    value.set_sensitive(true);
    Ok(value)
}
