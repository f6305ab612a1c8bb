//! The gateway in front of the rmcp service: the bearer check, the per-tool policy (403), the injected delay
//! and faults, a 2025 server's refusal of `server/discover`, and the request accounting tests assert on.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};

use super::notice::Notices;
use super::{DRIP_INTERVAL, Fault, RequestHeaders, Revisions, Served, SessionMode, TokenCheck};

const MAX_BODY_BYTES: usize = 1 << 20;
const SESSION_HEADER: &str = "mcp-session-id";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

#[derive(Default)]
pub(super) struct Stats {
    inner: Mutex<StatsInner>,
    pub(super) cancelled: AtomicUsize,
}

#[derive(Default)]
pub(super) struct StatsInner {
    pub(super) methods: Vec<String>,
    pub(super) sessions: HashMap<String, usize>,
    pub(super) protocol_versions: Vec<String>,
    /// Per answered request, in completion order.
    pub(super) served: Vec<Served>,
    /// The bearer of every request, in arrival order (`""` when none was sent).
    pub(super) bearers: Vec<String>,
    /// The JSON-RPC method (as in `methods`) and MCP headers of every request, in arrival order.
    pub(super) headers: Vec<(String, RequestHeaders)>,
}

impl Stats {
    pub(super) fn lock(&self) -> MutexGuard<'_, StatsInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count_session(&self, session: &str) {
        *self.lock().sessions.entry(session.to_owned()).or_default() += 1;
    }

    fn record_served(&self, method: &str, started: Instant) {
        let served = Served { method: method.to_owned(), arrived: started, elapsed: started.elapsed() };
        self.lock().served.push(served);
    }

    fn count_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

pub(super) struct Gate {
    pub(super) stats: Arc<Stats>,
    pub(super) token_check: TokenCheck,
    pub(super) forbidden_marker: Option<String>,
    /// Injected faults, each for the next request of its JSON-RPC method.
    pub(super) faults: Arc<Mutex<Vec<(String, Fault)>>>,
    /// Tools whose `tools/call` the policy denies (403), by the name the client calls.
    pub(super) denied: Arc<Mutex<HashSet<String>>>,
    pub(super) delay: Option<Duration>,
    pub(super) revisions: Revisions,
    pub(super) sessions: SessionMode,
    pub(super) notices: Arc<Notices>,
}

pub(super) async fn guard(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let rpc = Rpc::parse(&parts.method, &bytes);
    let label = rpc.label.clone();
    let request_session = session_id(&parts.headers);
    gate.record(&parts.headers, &rpc, request_session.clone());
    let client = request_session.clone().unwrap_or_default();
    let count_session = || gate.stats.count_session(&client);

    if let Some(delay) = gate.delay {
        // Armed while waiting: a client that gives up during the delay abandoned this request.
        let mut waiting = PendingGuard { stats: gate.stats.clone(), armed: true, started, label: label.clone() };
        tokio::time::sleep(delay).await;
        waiting.armed = false;
    }

    if let Some(rejection) = gate.reject(&parts.headers).or_else(|| gate.deny(&rpc)) {
        count_session();
        gate.stats.record_served(&label, started);
        return rejection;
    }

    if let Some(fault) = gate.take_fault(&label) {
        count_session();
        return fault_response(fault, &gate.stats, label).await;
    }

    if gate.revisions == Revisions::Legacy && label == "server/discover" {
        count_session();
        gate.stats.record_served(&label, started);
        return Revisions::refuse_discover(gate.sessions, !client.is_empty(), rpc.id.as_ref());
    }

    // 2026-07-28 requests are told of tool changes on `subscriptions/listen` only (notice.rs).
    let notice = if rpc.is_request && !rpc.is_2026() { gate.notices.due(&client) } else { None };
    let mut pending = PendingGuard { stats: gate.stats.clone(), armed: true, started, label: label.clone() };
    let mut response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    pending.armed = false;

    let session = request_session.or_else(|| session_id(response.headers()));
    let session = session.unwrap_or_default();
    gate.stats.count_session(&session);
    if label == "initialize" || label == "tools/list" {
        // A new session lists the tools as they are now; a listing is the news itself.
        gate.notices.told(&session, gate.notices.generation());
    } else if let Some(generation) = notice {
        response = match Notices::prepend(response).await {
            Ok(told) => {
                gate.notices.told(&session, generation);
                told
            }
            Err(untold) => untold,
        };
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(TrackedBody {
            inner: body,
            stats: gate.stats.clone(),
            finished: false,
            started: Some(started),
            label,
        }),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

impl Gate {
    fn record(&self, headers: &HeaderMap, rpc: &Rpc, session: Option<String>) {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let recorded = RequestHeaders {
            mcp_method: text("mcp-method"),
            mcp_name: text("mcp-name"),
            protocol_version: text("mcp-protocol-version"),
            meta_protocol_version: rpc.meta_protocol_version.clone(),
            session,
            traceparent: text("traceparent"),
            meta_traceparent: rpc.meta_traceparent.clone(),
        };
        let mut stats = self.stats.lock();
        stats.methods.push(rpc.label.clone());
        stats.bearers.push(bearer(headers).unwrap_or_default().to_owned());
        if let Some(version) = &recorded.protocol_version {
            stats.protocol_versions.push(version.clone());
        }
        stats.headers.push((rpc.label.clone(), recorded));
    }

    /// The gateway's policy denial of one tool: 403, plain text, and no challenge (the token is fine).
    fn deny(&self, rpc: &Rpc) -> Option<Response> {
        let tool = rpc.tool.as_deref().filter(|_| rpc.label == "tools/call")?;
        if !self.denied.lock().unwrap_or_else(|p| p.into_inner()).contains(tool) {
            return None;
        }
        Some((StatusCode::FORBIDDEN, format!("access to tool {tool} is denied by policy")).into_response())
    }

    fn take_fault(&self, label: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let at = faults.iter().position(|(method, _)| method == label)?;
        Some(faults.remove(at).1)
    }

    fn reject(&self, headers: &HeaderMap) -> Option<Response> {
        let token = bearer(headers);
        let unauthorized = || {
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "invalid or missing bearer token")
                .into_response()
        };
        let Some(token) = token else {
            return Some(unauthorized());
        };
        if self.forbidden_marker.as_deref().is_some_and(|marker| token.contains(marker)) {
            return Some((StatusCode::FORBIDDEN, "access to this MCP server is denied").into_response());
        }
        if !(self.token_check)(token) {
            return Some(unauthorized());
        }
        None
    }
}

async fn fault_response(fault: Fault, stats: &Arc<Stats>, label: String) -> Response {
    let tracked = |body: Body| {
        let label = label.clone();
        Body::new(TrackedBody { inner: body, stats: stats.clone(), finished: false, started: None, label })
    };
    let sse = |body: Body| {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(tracked(body))
            .unwrap_or_default()
    };
    match fault {
        Fault::Status { status, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, "injected fault").into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            }
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            response
        }
        Fault::Hang => {
            let _pending = PendingGuard { stats: stats.clone(), armed: true, started: Instant::now(), label };
            std::future::pending().await
        }
        Fault::Drip => {
            let drip = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(DRIP_INTERVAL).await;
                Some((Ok::<_, std::io::Error>(Bytes::from_static(b": drip\n\n")), ()))
            });
            sse(Body::from_stream(drip))
        }
        Fault::Cut => {
            let parts: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":")),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted cut")),
            ];
            sse(Body::from_stream(futures_util::stream::iter(parts)))
        }
        Fault::Malformed => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("<html><body>Bad Gateway</body></html>"))
            .unwrap_or_default(),
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// What the gate reads from a request body.
#[derive(Default)]
struct Rpc {
    /// The JSON-RPC method of a POST (`"response"` for a reply to the server, `"batch"`, `"invalid"`), or
    /// the HTTP method of a `GET`/`DELETE`.
    label: String,
    /// A request (with an `id`), not a notification or a reply.
    is_request: bool,
    id: Option<serde_json::Value>,
    /// `params.name` (the tool of a `tools/call`).
    tool: Option<String>,
    meta_protocol_version: Option<String>,
    meta_traceparent: Option<String>,
}

impl Rpc {
    fn parse(method: &Method, body: &[u8]) -> Rpc {
        if method != Method::POST {
            return Rpc { label: method.as_str().to_owned(), ..Rpc::default() };
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Rpc { label: "invalid".to_owned(), ..Rpc::default() };
        };
        let label = if let Some(rpc_method) = value.get("method").and_then(|m| m.as_str()) {
            rpc_method.to_owned()
        } else if value.get("result").is_some() || value.get("error").is_some() {
            "response".to_owned()
        } else if value.is_array() {
            "batch".to_owned()
        } else {
            "invalid".to_owned()
        };
        let params = value.get("params");
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        Rpc {
            is_request: value.get("method").is_some() && value.get("id").is_some(),
            id: value.get("id").cloned(),
            tool: text(params.and_then(|p| p.get("name"))),
            meta_protocol_version: text(params.and_then(|p| p.get("_meta")).and_then(|m| m.get(META_PROTOCOL_VERSION))),
            meta_traceparent: text(params.and_then(|p| p.get("_meta")).and_then(|m| m.get("traceparent"))),
            label,
        }
    }

    fn is_2026(&self) -> bool {
        self.meta_protocol_version.as_deref().is_some_and(|v| v >= "2026-07-28")
    }
}

/// Counts a cancellation when the handler future is dropped before it produced a response.
struct PendingGuard {
    stats: Arc<Stats>,
    armed: bool,
    started: Instant,
    label: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.armed {
            self.stats.count_cancelled();
            self.stats.record_served(&self.label, self.started);
        }
    }
}

/// Counts a cancellation when a response body (e.g. an SSE stream) is dropped before its end.
struct TrackedBody {
    inner: Body,
    stats: Arc<Stats>,
    finished: bool,
    /// Taken when the elapsed time is recorded (at the end of the body, or at drop if it never ended).
    started: Option<Instant>,
    label: String,
}

impl TrackedBody {
    fn record_served(&mut self) {
        if let Some(started) = self.started.take() {
            self.stats.record_served(&self.label, started);
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.finished = true;
            self.record_served();
        } else if self.inner.is_end_stream() {
            self.record_served();
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
        self.record_served();
    }
}
