//! Function Compute 3.0's asynchronous invocation, standing in for FC so that a background turn runs end to
//! end without the cloud: `POST /2023-03-30/functions/{name}/invocations` with
//! `x-fc-invocation-type: Async`, ACS3-verified with the Agent Identity stand-in's verifier (the same
//! known keys), answered `202` with an `x-fc-request-id`; the event is queued and delivered to the
//! function's `POST /invoke` with the headers FC sets (`x-fc-control-path: /invoke`, the request id, the
//! function role's STS credentials, the function's name, region and account, `x-fc-retry-count`), retried
//! as FC retries an async invocation that failed (`x-fc-status: 404` on the answer, any 5xx, or no
//! answer): up to `max_retries` more times with a doubling pause, never past `max_event_age`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, oneshot};

use super::agent_identity::{KnownKey, Verifier};

/// FC's own default retries of an async invocation that failed.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// FC's async event limit.
const MAX_EVENT_BYTES: usize = 128 * 1024;

/// How the stand-in is set up.
#[derive(Debug, Clone)]
pub struct FcAsyncOptions {
    /// The keys whose signatures it accepts (the function role's STS triple).
    pub keys: Vec<KnownKey>,
    /// The function it serves (others are `FunctionNotFound`).
    pub function_name: String,
    pub region: String,
    pub account_id: String,
    /// The role credentials sent with every delivery, as FC sends the function role's.
    pub role: Option<KnownKey>,
    /// `maxAsyncRetryAttempts`.
    pub max_retries: u32,
    /// The pause before the first retry (doubled each time); FC's is seconds, tests want it short.
    pub retry_pause: Duration,
    /// `maxAsyncEventAgeInSeconds`: an event older than this is dropped, not delivered.
    pub max_event_age: Duration,
}

impl FcAsyncOptions {
    pub fn new(function_name: &str, keys: Vec<KnownKey>) -> FcAsyncOptions {
        FcAsyncOptions {
            role: keys.first().cloned(),
            keys,
            function_name: function_name.to_owned(),
            region: "cn-devstack".to_owned(),
            account_id: "1234567890".to_owned(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_pause: Duration::from_millis(200),
            max_event_age: Duration::from_secs(3600),
        }
    }
}

/// What happened to one queued event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub request_id: String,
    pub event: Vec<u8>,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// `Some(true)`: a delivery succeeded; `Some(false)`: given up; `None`: still trying.
    pub succeeded: Option<bool>,
}

#[derive(Default)]
struct Inner {
    /// Where the function listens (`http://127.0.0.1:PORT`); events wait until it is known.
    target: Option<String>,
    deliveries: Vec<Delivery>,
    /// Requests refused, as `(status, code)`.
    refused: Vec<(u16, String)>,
    nonces: HashSet<String>,
}

struct Shared {
    options: FcAsyncOptions,
    inner: Mutex<Inner>,
    changed: Notify,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FcAsyncStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FcAsyncStandIn {
    pub async fn bind(options: FcAsyncOptions, addr: SocketAddr) -> std::io::Result<FcAsyncStandIn> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let http = crate::client_builder().build().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared { options, inner: Mutex::new(Inner::default()), changed: Notify::new(), http });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(super::no_delay(listener), router).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "FC async stand-in stopped");
            }
        });
        Ok(FcAsyncStandIn { addr, shared, shutdown: Some(tx) })
    }

    /// What `BACKGROUND_FC_ENDPOINT` should be.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn function_name(&self) -> &str {
        &self.shared.options.function_name
    }

    /// Where events are delivered: the function's base URL (FC picks any instance; a test picks one).
    pub fn deliver_to(&self, url: &str) {
        self.shared.lock().target = Some(url.trim_end_matches('/').to_owned());
        self.shared.changed.notify_waiters();
    }

    /// Every event queued so far and what became of it.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Requests refused so far, as `(status, code)`.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.shared.lock().refused.clone()
    }
}

impl Drop for FcAsyncStandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn error(status: u16, code: &str, message: &str, request_id: &str) -> Response {
    let body = serde_json::json!({ "Code": code, "Message": message, "RequestId": request_id });
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    (status, [("content-type", "application/json"), ("x-fc-request-id", request_id)], body.to_string()).into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = uuid::Uuid::new_v4().to_string();
    let refuse = |status: u16, code: &str, message: &str| {
        shared.lock().refused.push((status, code.to_owned()));
        error(status, code, message, &request_id)
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_EVENT_BYTES + 1).await else {
        return refuse(413, "PayloadTooLarge", "the async event is larger than 128 KB");
    };
    if body.len() > MAX_EVENT_BYTES {
        return refuse(413, "PayloadTooLarge", "the async event is larger than 128 KB");
    }
    let path = parts.uri.path();
    let Some(function) = path.strip_prefix("/2023-03-30/functions/").and_then(|rest| rest.strip_suffix("/invocations"))
    else {
        return refuse(404, "PathNotSupported", "only InvokeFunction is served here");
    };
    if parts.method != http::Method::POST {
        return refuse(405, "MethodNotAllowed", "InvokeFunction is a POST");
    }
    let verifier = Verifier { keys: &shared.options.keys, max_skew: Duration::from_secs(15 * 60) };
    let query = parts.uri.query().unwrap_or_default();
    let verified = verifier
        .verify("POST", path, query, &parts.headers, &body, |nonce| !shared.lock().nonces.insert(nonce.to_owned()));
    if let Err(rejection) = verified {
        return refuse(rejection.status, rejection.code, &rejection.message);
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if header("x-acs-action") != "InvokeFunction" || header("x-acs-version") != "2023-03-30" {
        return refuse(400, "InvalidAction", "x-acs-action must be InvokeFunction, x-acs-version 2023-03-30");
    }
    if function != shared.options.function_name {
        return refuse(404, "FunctionNotFound", &format!("function {function} does not exist"));
    }
    if !header("x-fc-invocation-type").eq_ignore_ascii_case("async") {
        return refuse(400, "InvalidArgument", "this stand-in serves only x-fc-invocation-type: Async");
    }
    let delivery = Delivery { request_id: request_id.clone(), event: body.to_vec(), attempts: 0, succeeded: None };
    let index = {
        let mut inner = shared.lock();
        inner.deliveries.push(delivery);
        inner.deliveries.len() - 1
    };
    tokio::spawn(deliver(shared.clone(), index));
    (http::StatusCode::ACCEPTED, [("x-fc-request-id", request_id.as_str())], Body::empty()).into_response()
}

/// Delivers one queued event as FC does, retrying failures.
async fn deliver(shared: Arc<Shared>, index: usize) {
    let queued = tokio::time::Instant::now();
    let options = &shared.options;
    let mut pause = options.retry_pause;
    for attempt in 0..=options.max_retries {
        let target = loop {
            let waiting = shared.changed.notified();
            if let Some(target) = shared.lock().target.clone() {
                break target;
            }
            waiting.await;
        };
        if queued.elapsed() > options.max_event_age {
            break;
        }
        let (request_id, event) = {
            let mut inner = shared.lock();
            let delivery = &mut inner.deliveries[index];
            delivery.attempts += 1;
            (delivery.request_id.clone(), delivery.event.clone())
        };
        let mut request = shared
            .http
            .post(format!("{target}/invoke"))
            .header("content-type", "application/octet-stream")
            .header("x-fc-control-path", "/invoke")
            .header("x-fc-request-id", &request_id)
            .header("x-fc-function-name", &options.function_name)
            .header("x-fc-region", &options.region)
            .header("x-fc-account-id", &options.account_id)
            .header("x-fc-qualifier", "LATEST")
            .header("x-fc-retry-count", attempt.to_string())
            .body(event);
        if let Some(role) = &options.role {
            request = request
                .header("x-fc-access-key-id", &role.access_key_id)
                .header("x-fc-access-key-secret", &role.access_key_secret)
                .header("x-fc-security-token", role.security_token.as_deref().unwrap_or_default());
        }
        let succeeded = match request.send().await {
            Ok(response) => {
                let failed_mark = response.headers().get("x-fc-status").is_some_and(|v| v.as_bytes() == b"404");
                let status = response.status();
                // The body is the invocation's result; FC keeps it, the stand-in only reads it to the end.
                let _ = response.bytes().await;
                !failed_mark && !status.is_server_error()
            }
            Err(_) => false,
        };
        if succeeded {
            shared.lock().deliveries[index].succeeded = Some(true);
            return;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    shared.lock().deliveries[index].succeeded = Some(false);
}
