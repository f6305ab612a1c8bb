//! A scripted DashScope (compatible mode) on a loopback port, speaking the real SSE chunk shape.
//!
//! `POST /compatible-mode/v1/chat/completions` with `Authorization: Bearer <key>`. What it answers depends
//! on the last user message (see `script.rs`):
//! - tools offered and no tool result yet: calls `getutctime {}`; "say hello to X" → `helloworld
//!   {"name":"X"}`; time and hello → both, in parallel; "rendezvous" → `rendezvous {}` twice in parallel;
//!   "broken tool" → `broken {}`; "sleep N seconds" → `sleep {"seconds":N}`; "loop forever" → calls `getutctime` even after results; "no tools" → answers.
//!   Offered names are matched by suffix (MCP clients may prefix them).
//! - after tool results: "The tool said: <content>" for each result;
//! - otherwise a short answer echoing the question; with `enable_thinking:true`, reasoning chunks first.
//! - faults in the text: `[fault:429]`, `[fault:429-once]`, `[fault:500]`, `[fault:500-once]`, `[fault:503]`,
//!   `[fault:401]`, `[fault:404]`, `[fault:quota]`, `[fault:filter]`, `[fault:midstream-error]`,
//!   `[fault:midstream-filter]`, `[fault:cut]` (connection broken), `[fault:eof]` (clean end without
//!   finish/[DONE]), `[fault:slow]` (a pause before every chunk), `[fault:malformed]`, `[fault:403]`,
//!   `[fault:429-retry-after]` (429 with `Retry-After: 30`), `[fault:429-retry-after-1-once]` (429 with
//!   `Retry-After: 1` the first time), `[fault:hang]` (never answers, not even the
//!   status line), `[fault:drip]` (a few words, then one `.` chunk per `slow_interval`, forever).
//!
//! It records every request and counts responses the client abandoned mid-stream (proof of cancellation).

mod script;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use self::script::{Reply, Step};

/// The chat-completions path; the base URL is everything before `/chat/completions`.
pub const CHAT_PATH: &str = "/compatible-mode/v1/chat/completions";

#[derive(Debug, Clone)]
pub struct StandInOptions {
    /// The only key accepted as `Authorization: Bearer <key>`.
    pub api_key: String,
    /// `127.0.0.1:0` for tests; a fixed port for `make dev`.
    pub bind: SocketAddr,
    /// Pause before each chunk under `[fault:slow]`.
    pub slow_interval: Duration,
    /// Pause before every chunk of every stream (zero: none). The FC-sized benchmark sets a few ms so that
    /// concurrent streams overlap the way a real model's token pace makes them overlap.
    pub chunk_delay: Duration,
    /// Every answer waits this long first, errors too (zero: none): a network delay, as the benchmark's
    /// delay mode injects (`bench --delay-ms`).
    pub delay: Duration,
}

impl Default for StandInOptions {
    fn default() -> Self {
        StandInOptions {
            api_key: "sk-devstack".into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            slow_interval: Duration::from_millis(200),
            chunk_delay: Duration::ZERO,
            delay: Duration::ZERO,
        }
    }
}

impl StandInOptions {
    pub fn with_key(api_key: impl Into<String>) -> Self {
        StandInOptions { api_key: api_key.into(), ..StandInOptions::default() }
    }
}

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The JSON body (`Value::Null` if it did not parse).
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
    /// When the request reached the handler (the benchmark lays turns out on a timeline with it).
    pub arrived: Instant,
    /// From arrival until the response body ended or was abandoned; `None` while still streaming.
    pub elapsed: Option<Duration>,
    /// The client went away before the stream's last chunk.
    pub cancelled: bool,
    /// The W3C `traceparent` header the request carried.
    pub traceparent: Option<String>,
}

struct Shared {
    /// Replaced by [`DashScopeStandIn::set_api_key`] (a key rotation).
    api_key: Mutex<String>,
    slow_interval: Duration,
    chunk_delay: Duration,
    delay: Duration,
    requests: Mutex<Vec<RecordedRequest>>,
    seen: Mutex<HashSet<u64>>,
    cancelled: watch::Sender<usize>,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        // A panicking test thread must not hide the records from the others.
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running stand-in. Dropping it (or [`DashScopeStandIn::shutdown`]) stops accepting connections.
pub struct DashScopeStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DashScopeStandIn {
    pub async fn start(options: StandInOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            api_key: Mutex::new(options.api_key),
            slow_interval: options.slow_interval,
            chunk_delay: options.chunk_delay,
            delay: options.delay,
            requests: Mutex::new(Vec::new()),
            seen: Mutex::new(HashSet::new()),
            cancelled: watch::Sender::new(0),
        });
        let app = Router::new().route(CHAT_PATH, post(chat)).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(super::no_delay(listener), app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "dashscope stand-in stopped");
            }
        });
        Ok(DashScopeStandIn { addr, shared, stop: Some(stop), task: Some(task) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on only `key` is accepted (the key was rotated; the old one answers 401).
    pub fn set_api_key(&self, key: impl Into<String>) {
        *self.shared.api_key.lock().unwrap_or_else(|p| p.into_inner()) = key.into();
    }

    /// `http://127.0.0.1:PORT/compatible-mode/v1`, to use as `DASHSCOPE_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/compatible-mode/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests().len()
    }

    /// How many streams the client abandoned before their last chunk.
    pub fn cancelled(&self) -> usize {
        *self.shared.cancelled.borrow()
    }

    /// Waits until at least `count` streams were abandoned; `false` if that did not happen `within`.
    pub async fn wait_cancelled(&self, count: usize, within: Duration) -> bool {
        let mut rx = self.shared.cancelled.subscribe();
        tokio::time::timeout(within, rx.wait_for(|n| *n >= count)).await.is_ok_and(|r| r.is_ok())
    }

    /// Stops accepting and waits for in-flight responses to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DashScopeStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let index = {
        let mut requests = shared.requests();
        let body = parsed.clone().unwrap_or(Value::Null);
        let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
        requests.push(RecordedRequest {
            body,
            status: 0,
            arrived: started,
            elapsed: None,
            cancelled: false,
            traceparent,
        });
        requests.len() - 1
    };
    let request_id = format!("standin-{:08}", index + 1);
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let reply = decide(&shared, &headers, parsed.as_ref(), &request_id);
    let status = match &reply {
        Reply::Error { status, .. } => *status,
        Reply::Stream(_) => 200,
        Reply::Hang => 0,
    };
    shared.requests()[index].status = status;
    match reply {
        Reply::Error { status, code, message, retry_after } => {
            shared.requests()[index].elapsed = Some(started.elapsed());
            let body = json!({"error": {"message": message, "type": code, "param": null, "code": code},
                "request_id": request_id});
            let mut response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-request-id", &request_id);
            if let Some(seconds) = retry_after {
                response = response.header(header::RETRY_AFTER, seconds);
            }
            response.body(Body::from(body.to_string())).unwrap_or_default()
        }
        Reply::Hang => {
            // Dropped (and counted as cancelled) when the client gives up on the connection.
            let _guard = StreamGuard { shared: shared.clone(), index, started, finished: false };
            std::future::pending::<Response>().await
        }
        Reply::Stream(steps) => {
            let guard = StreamGuard { shared: shared.clone(), index, started, finished: false };
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream;charset=UTF-8")
                .header(header::CACHE_CONTROL, "no-cache")
                .header("x-request-id", &request_id)
                .body(Body::from_stream(sse_body(steps, guard)))
                .unwrap_or_default()
        }
    }
}

fn decide(shared: &Shared, headers: &HeaderMap, body: Option<&Value>, request_id: &str) -> Reply {
    let expected = format!("Bearer {}", shared.api_key.lock().unwrap_or_else(|p| p.into_inner()));
    let authorized = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !authorized {
        return Reply::Error {
            status: 401,
            code: "invalid_api_key",
            message: "Incorrect API key provided. ",
            retry_after: None,
        };
    }
    let Some(body) = body else {
        return Reply::Error {
            status: 400,
            code: "invalid_parameter_error",
            message: "The body is not valid JSON.",
            retry_after: None,
        };
    };
    if body["stream"] != true {
        // The real service also answers non-streaming calls; this one only streams, so a client bug shows.
        return Reply::Error {
            status: 400,
            code: "invalid_parameter_error",
            message: "The stand-in only supports stream=true.",
            retry_after: None,
        };
    }
    let mut hasher = DefaultHasher::new();
    body["messages"].to_string().hash(&mut hasher);
    let first_time = {
        let mut seen = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded for long `make dev` sessions; a forgotten conversation just fails "once" again.
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(hasher.finish())
    };
    script::plan(body, request_id, first_time, shared.slow_interval, shared.chunk_delay)
}

/// Records how the response ended when the body is dropped: by finishing, or by the client leaving.
struct StreamGuard {
    shared: Arc<Shared>,
    index: usize,
    started: Instant,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let cancelled = !self.finished;
        if let Some(record) = self.shared.requests().get_mut(self.index) {
            record.elapsed = Some(self.started.elapsed());
            record.cancelled = cancelled;
        }
        if cancelled {
            self.shared.cancelled.send_modify(|n| *n += 1);
        }
    }
}

fn sse_body(
    steps: Vec<Step>,
    guard: StreamGuard,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let state = (std::collections::VecDeque::from(steps), guard);
    futures_util::stream::unfold(state, |(mut steps, mut guard)| async move {
        loop {
            let step = steps.pop_front()?;
            // Marked before the last item goes out: a client that stops reading right after `[DONE]` has
            // not abandoned anything.
            if steps.is_empty() {
                guard.finished = true;
            }
            match step {
                Step::Pause(pause) => tokio::time::sleep(pause).await,
                Step::Data(data) => {
                    return Some((Ok(Bytes::from(format!("data: {data}\n\n"))), (steps, guard)));
                }
                Step::DripForever(data, every) => {
                    guard.finished = false;
                    tokio::time::sleep(every).await;
                    let line = Bytes::from(format!("data: {data}\n\n"));
                    steps.push_front(Step::DripForever(data, every));
                    return Some((Ok(line), (steps, guard)));
                }
                Step::Abort => {
                    // An error item makes hyper drop the connection at once, unflushed chunks included; a
                    // pending poll first lets the text already produced reach the client, as in a real cut.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    guard.finished = true;
                    let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted cut");
                    return Some((Err(err), (steps, guard)));
                }
            }
        }
    })
}
