//! A local Agent Identity data endpoint that really verifies ACS3 signatures, mints recognisable WATs
//! (`wat-<subject>-<n>`), answers errors in the real JSON shape, injects faults on demand and records
//! every request. Used by tests and by `make dev`.

mod acs3;
mod oauth2;
mod verify;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use acs3::form_decode;
pub use oauth2::CONSENT_PATH;
use verify::Rejection;
pub use verify::{KnownKey, Verifier};

/// What the stand-in knows and enforces.
#[derive(Debug, Clone)]
pub struct StandInOptions {
    pub keys: Vec<KnownKey>,
    /// When set, other `WorkloadIdentityName`s are refused as not found.
    pub workload_identity_name: Option<String>,
    pub max_skew: Duration,
    /// Minted WATs are `<token_prefix><subject>-<n>` (tests use a sentinel prefix to find leaks).
    pub token_prefix: String,
    /// The API-key credential providers of the vault: name → the key `GetResourceAPIKey` hands out.
    pub api_keys: BTreeMap<String, String>,
    /// The OAuth2 credential providers (`GetResourceOAuth2Token`, consent page, `CompleteResourceTokenAuth`).
    pub oauth2_providers: BTreeSet<String>,
    /// The `ExpiresIn` of the access tokens it hands out (seconds).
    pub oauth2_expires_in: u64,
    /// Every answer waits this long first, faults too (zero: none): a network delay, as the benchmark's
    /// delay mode injects (`bench --delay-ms`). Counted in the recorded `elapsed`.
    pub delay: Duration,
}

impl StandInOptions {
    pub const AK_ID: &'static str = "LTAI5tDevstackKeyId";
    pub const AK_SECRET: &'static str = "devstack-access-key-secret";
    pub const STS_ID: &'static str = "STS.DevstackRoleKeyId";
    pub const STS_SECRET: &'static str = "devstack-sts-secret";
    pub const STS_TOKEN: &'static str = "devstack-sts-security-token";
    /// The OAuth2 credential provider the stand-in has by default.
    pub const OAUTH2_PROVIDER: &'static str = "calendar";
}

impl Default for StandInOptions {
    /// One long-term AccessKey and one STS triple (the constants above); any workload name accepted.
    fn default() -> Self {
        StandInOptions {
            keys: vec![
                KnownKey {
                    access_key_id: Self::AK_ID.into(),
                    access_key_secret: Self::AK_SECRET.into(),
                    security_token: None,
                },
                KnownKey {
                    access_key_id: Self::STS_ID.into(),
                    access_key_secret: Self::STS_SECRET.into(),
                    security_token: Some(Self::STS_TOKEN.into()),
                },
            ],
            workload_identity_name: None,
            max_skew: Duration::from_secs(15 * 60),
            token_prefix: "wat-".into(),
            api_keys: BTreeMap::from([("dashscope".to_owned(), "sk-dashscope-devstack".to_owned())]),
            oauth2_providers: BTreeSet::from([Self::OAUTH2_PROVIDER.to_owned()]),
            oauth2_expires_in: 3600,
            delay: Duration::ZERO,
        }
    }
}

/// A failure to answer the next request with (instead of verifying and serving it).
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 `Throttling.User`, with `x-acs-retry-after: <ms>` when given.
    Throttling { retry_after_ms: Option<u64> },
    /// 500 `InternalError`.
    ServerError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 400 `SignatureDoesNotMatch`, echoing a string-to-sign like the real service.
    SignatureDoesNotMatch,
    /// 400 `InvalidSecurityToken.Expired`.
    SecurityTokenExpired,
    /// Any other error answer.
    Error { status: u16, code: String, message: String },
    /// Accept the request and never answer (not even the status line).
    Hang,
    /// 200 and a JSON body one byte per [`DRIP_INTERVAL`], never finishing.
    Drip,
    /// 200 and half a JSON body, then the connection breaks.
    Cut,
    /// 200 with a complete body that is not JSON.
    Malformed,
}

/// The pace of [`Fault::Drip`].
pub const DRIP_INTERVAL: Duration = Duration::from_millis(100);

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub action: String,
    /// Form body and query parameters, decoded.
    pub params: BTreeMap<String, String>,
    /// The AccessKey id from `Authorization` (None for anonymous calls).
    pub access_key_id: Option<String>,
    pub security_token_sent: bool,
    pub status: u16,
    /// The error Code answered, if any.
    pub code: Option<String>,
    /// From arrival until the answer was ready (the benchmark subtracts it from its wall time).
    pub elapsed: Duration,
}

#[derive(Default)]
struct Inner {
    keys: Vec<KnownKey>,
    /// The vault's API-key providers (rotated with [`AgentIdentityStandIn::set_api_key`]).
    api_keys: BTreeMap<String, String>,
    requests: Vec<RecordedRequest>,
    faults: VecDeque<Fault>,
    nonces: HashSet<String>,
    /// WAT → subject it was minted for.
    issued: HashMap<String, String>,
    counter: u64,
    oauth2: oauth2::Vault,
}

struct Shared {
    options: StandInOptions,
    inner: Mutex<Inner>,
    /// Responses the client gave up on before their end (hung or dripping answers).
    abandoned: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct AgentIdentityStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl AgentIdentityStandIn {
    /// Binds 127.0.0.1:0 and serves until dropped or [`shutdown`](Self::shutdown).
    pub async fn start(options: StandInOptions) -> std::io::Result<Self> {
        Self::bind(options, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`start`](Self::start) on a chosen address (`make dev` uses a fixed port).
    pub async fn bind(options: StandInOptions, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Inner { keys: options.keys.clone(), api_keys: options.api_keys.clone(), ..Inner::default() };
        let shared = Arc::new(Shared { options, inner: Mutex::new(inner), abandoned: Default::default() });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(super::no_delay(listener), router).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "agent identity stand-in stopped");
            }
        });
        Ok(AgentIdentityStandIn { addr, shared, shutdown: Some(tx), task: Some(task) })
    }

    /// `http://127.0.0.1:PORT` — what `AGENT_IDENTITY_DATA_ENDPOINT` should be.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Puts `key` in the vault under `provider` (a new provider, or a rotation of its key).
    pub fn set_api_key(&self, provider: &str, key: &str) {
        self.shared.lock().api_keys.insert(provider.to_owned(), key.to_owned());
    }

    /// How many requests of `action` arrived so far.
    pub fn count(&self, action: &str) -> usize {
        self.shared.lock().requests.iter().filter(|r| r.action == action).count()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Responses to [`Fault::Hang`]/[`Fault::Drip`] the client abandoned (proof it let go of them).
    pub fn abandoned(&self) -> usize {
        self.shared.abandoned.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until at least `count` responses were abandoned; `false` if that did not happen `within`.
    pub async fn wait_abandoned(&self, count: usize, within: Duration) -> bool {
        let waited = tokio::time::timeout(within, async {
            while self.abandoned() < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        waited.await.is_ok()
    }

    /// Answer the next request with `fault` (faults queue up: one per request, in order).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Whether `token` is a WAT this stand-in minted (the MCP stand-in accepts bearers with it).
    pub fn issued(&self, token: &str) -> bool {
        self.shared.lock().issued.contains_key(token)
    }

    /// A check the MCP stand-in can own: accepts exactly the WATs this stand-in minted and has not revoked.
    pub fn token_checker(&self) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |token| shared.lock().issued.contains_key(token)
    }

    /// Forget a minted WAT, so the MCP stand-in refuses it from now on (as a gateway does with an
    /// expired token); the function must fetch a new one.
    pub fn revoke(&self, token: &str) -> bool {
        self.shared.lock().issued.remove(token).is_some()
    }

    /// Every WAT minted so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.keys().cloned().collect()
    }

    /// The subject (`user id`, JWT `sub`, or `agent`) a WAT was minted for.
    pub fn subject_of(&self, token: &str) -> Option<String> {
        self.shared.lock().issued.get(token).cloned()
    }

    /// A check the OAuth2-protected MCP stand-in can own: accepts exactly the access tokens this stand-in
    /// handed out for `provider` and has not revoked.
    pub fn oauth2_token_checker(&self, provider: &str) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let (shared, provider) = (self.shared.clone(), provider.to_owned());
        move |token| shared.lock().oauth2.accepts(&provider, token)
    }

    /// Every OAuth2 access token handed out so far.
    pub fn oauth2_tokens(&self) -> Vec<String> {
        self.shared.lock().oauth2.tokens()
    }

    /// The user an OAuth2 access token was handed out for.
    pub fn oauth2_user_of(&self, token: &str) -> Option<String> {
        self.shared.lock().oauth2.user_of(token)
    }

    /// The provider expired `token` and the vault refreshed it: the MCP stand-in refuses the old one, and
    /// `GetResourceOAuth2Token` hands out the returned new one with no consent asked again.
    pub fn expire_oauth2(&self, token: &str) -> Option<String> {
        let mut inner = self.shared.lock();
        let Inner { oauth2, counter, .. } = &mut *inner;
        oauth2.expire(&self.shared.options, counter, token)
    }

    /// The session URIs `CompleteResourceTokenAuth` completed, in order.
    pub fn oauth2_completions(&self) -> Vec<String> {
        self.shared.lock().oauth2.completions.clone()
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AgentIdentityStandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Open keep-alive connections would hold graceful shutdown open; a dropped stand-in stops now.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Answer {
    status: u16,
    body: Value,
    retry_after_ms: Option<u64>,
    /// Set for the faults that are about the connection rather than an error body.
    transport: Option<TransportFault>,
}

#[derive(Debug, Clone, Copy)]
enum TransportFault {
    Hang,
    Drip,
    Cut,
    Malformed,
}

fn error_answer(host: &str, request_id: &str, status: u16, code: &str, message: &str) -> Answer {
    let body = json!({
        "RequestId": request_id,
        "HostId": host,
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=AgentIdentityData"),
    });
    Answer { status, body, retry_after_ms: None, transport: None }
}

const SIGNATURE_ECHO: &str = "The request signature does not conform to Aliyun standards. \
                              server string to sign is:ACS3-HMAC-SHA256\n0000";

fn fault_answer(fault: Fault, host: &str, request_id: &str) -> Answer {
    let fixed = |status, code: &str, message: &str| error_answer(host, request_id, status, code, message);
    match fault {
        Fault::Throttling { retry_after_ms } => {
            Answer { retry_after_ms, ..fixed(429, "Throttling.User", "Request was denied due to user flow control.") }
        }
        Fault::ServerError => fixed(500, "InternalError", "The request processing has failed."),
        Fault::ServiceUnavailable => fixed(503, "ServiceUnavailable", "The service is temporarily unavailable."),
        Fault::SignatureDoesNotMatch => fixed(400, "SignatureDoesNotMatch", SIGNATURE_ECHO),
        Fault::SecurityTokenExpired => {
            fixed(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
        }
        Fault::Error { status, code, message } => fixed(status, &code, &message),
        Fault::Hang => transport(TransportFault::Hang, 0),
        Fault::Drip => transport(TransportFault::Drip, 200),
        Fault::Cut => transport(TransportFault::Cut, 200),
        Fault::Malformed => transport(TransportFault::Malformed, 200),
    }
}

fn transport(fault: TransportFault, status: u16) -> Answer {
    Answer { status, body: Value::Null, retry_after_ms: None, transport: Some(fault) }
}

/// Counts the response as abandoned when dropped before its end.
struct Abandon {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.abandoned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

async fn transport_answer(shared: Arc<Shared>, fault: TransportFault, request_id: &str) -> Response {
    let mut guard = Abandon { shared, finished: false };
    let json = |body: Body| {
        ([("content-type", "application/json;charset=utf-8"), ("x-acs-request-id", request_id)], body).into_response()
    };
    match fault {
        TransportFault::Hang => std::future::pending().await,
        TransportFault::Malformed => {
            guard.finished = true;
            json(Body::from("<html><body>Bad Gateway</body></html>"))
        }
        TransportFault::Cut => {
            guard.finished = true;
            let parts: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"RequestId\":\"cut\",\"WorkloadAcc")),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted cut")),
            ];
            json(Body::from_stream(futures_util::stream::iter(parts)))
        }
        TransportFault::Drip => {
            let drip = futures_util::stream::unfold(guard, |guard| async move {
                tokio::time::sleep(DRIP_INTERVAL).await;
                Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), guard))
            });
            json(Body::from_stream(drip))
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or_default();
    if parts.uri.path() == CONSENT_PATH {
        return oauth2::consent_page(&mut shared.lock(), query);
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let headers = &parts.headers;
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let request_id = uuid::Uuid::new_v4().to_string().to_uppercase();

    let mut params: BTreeMap<String, String> = form_decode(query).into_iter().collect();
    params.extend(form_decode(&String::from_utf8_lossy(&body)));
    let action = headers
        .get("x-acs-action")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("Action").cloned())
        .unwrap_or_default();
    let waited = std::time::Instant::now();
    if !shared.options.delay.is_zero() {
        tokio::time::sleep(shared.options.delay).await;
    }
    let waited = waited.elapsed();
    let answer = record_and_answer(&shared, &parts, &body, params, action, &host, &request_id, waited);
    if let Some(fault) = answer.transport {
        return transport_answer(shared, fault, &request_id).await;
    }
    let mut response = (
        http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json;charset=utf-8"), ("x-acs-request-id", request_id.as_str())],
        Body::from(answer.body.to_string()),
    )
        .into_response();
    if let Some(ms) = answer.retry_after_ms {
        response.headers_mut().insert("x-acs-retry-after", http::HeaderValue::from(ms));
    }
    response
}

/// Verifies and serves the request (or takes the next fault), and records it.
#[allow(clippy::too_many_arguments)]
fn record_and_answer(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
    params: BTreeMap<String, String>,
    action: String,
    host: &str,
    request_id: &str,
    waited: Duration,
) -> Answer {
    // What the bench subtracts as "time spent in the stand-in": the injected delay (`waited`),
    // verification, serving and recording.
    let started = std::time::Instant::now();
    let query = parts.uri.query().unwrap_or_default();
    let headers = &parts.headers;
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let access_key_id = authorization.and_then(acs3::parse_authorization).map(|a| a.access_key_id.to_owned());
    let mut inner = shared.lock();
    let answer = if let Some(fault) = inner.faults.pop_front() {
        fault_answer(fault, host, request_id)
    } else if action == "AssumeRoleForWorkloadIdentity" && authorization.is_none() {
        serve_action(&shared.options, &mut inner, &action, &params, host, request_id)
    } else {
        let Inner { keys, nonces, .. } = &mut *inner;
        let verifier = Verifier { keys, max_skew: shared.options.max_skew };
        let method = parts.method.as_str();
        let verified =
            verifier.verify(method, parts.uri.path(), query, headers, body, |nonce| !nonces.insert(nonce.to_owned()));
        match verified {
            Ok(_) => serve_action(&shared.options, &mut inner, &action, &params, host, request_id),
            Err(Rejection { status, code, message }) => error_answer(host, request_id, status, code, &message),
        }
    };
    inner.requests.push(RecordedRequest {
        action,
        params,
        access_key_id,
        security_token_sent: headers.contains_key("x-acs-security-token"),
        status: answer.status,
        code: answer.body.get("Code").and_then(Value::as_str).map(str::to_owned),
        elapsed: waited + started.elapsed(),
    });
    drop(inner);
    answer
}

fn serve_action(
    options: &StandInOptions,
    inner: &mut Inner,
    action: &str,
    params: &BTreeMap<String, String>,
    host: &str,
    request_id: &str,
) -> Answer {
    let missing = |name: &str| {
        error_answer(
            host,
            request_id,
            400,
            &format!("MissingParameter.{name}"),
            &format!("{name} is mandatory for this action."),
        )
    };
    let ok = |body: Value| Answer { status: 200, body, retry_after_ms: None, transport: None };
    let workload = params.get("WorkloadIdentityName");
    let arn = |name: &str| format!("acs:agentidentity:cn-beijing:1234567890:workloadidentity/{name}");
    if matches!(action, "GetWorkloadAccessTokenForUserId" | "GetWorkloadAccessTokenForJWT" | "GetWorkloadAccessToken") {
        let Some(workload) = workload.filter(|w| !w.is_empty()) else {
            return missing("WorkloadIdentityName");
        };
        if options.workload_identity_name.as_ref().is_some_and(|known| known != workload) {
            return error_answer(
                host,
                request_id,
                404,
                "EntityNotExist.WorkloadIdentity",
                "The workload identity does not exist.",
            );
        }
    }
    let workload = workload.cloned().unwrap_or_default();
    match action {
        "GetWorkloadAccessTokenForUserId" => {
            let Some(user_id) = params.get("UserId").filter(|u| !u.is_empty()) else {
                return missing("UserId");
            };
            let token = mint(inner, &options.token_prefix, user_id);
            ok(json!({
                "RequestId": request_id,
                "WorkloadAccessToken": token,
                "WorkloadIdentityArn": arn(&workload),
                "UserContext": { "UserId": user_id },
            }))
        }
        "GetWorkloadAccessTokenForJWT" => {
            let Some(jwt) = params.get("UserToken").filter(|t| !t.is_empty()) else {
                return missing("UserToken");
            };
            let Some(claims) = jwt_claims(jwt) else {
                return error_answer(
                    host,
                    request_id,
                    400,
                    "InvalidParameter.UserToken",
                    "The UserToken is not a valid JWT.",
                );
            };
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            if claims.get("exp").and_then(Value::as_f64).is_some_and(|exp| exp <= now) {
                return error_answer(host, request_id, 400, "InvalidParameter.UserToken", "The UserToken is expired.");
            }
            let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("anonymous").to_owned();
            let token = mint(inner, &options.token_prefix, &subject);
            ok(json!({
                "RequestId": request_id,
                "WorkloadAccessToken": token,
                "WorkloadIdentityArn": arn(&workload),
                "UserContext": { "UserId": subject },
                "Issuer": claims.get("iss").cloned().unwrap_or(Value::Null),
                "Subject": subject,
                "Audiences": audiences(&claims),
                "JTI": claims.get("jti").cloned().unwrap_or(Value::Null),
                "JwtClaims": claims.to_string(),
            }))
        }
        "GetWorkloadAccessToken" => {
            let token = mint(inner, &options.token_prefix, "agent");
            ok(json!({ "RequestId": request_id, "WorkloadAccessToken": token, "WorkloadIdentityArn": arn(&workload) }))
        }
        "GetResourceAPIKey" => {
            let Some(provider) = params.get("ResourceCredentialProviderName") else {
                return missing("ResourceCredentialProviderName");
            };
            match params.get("WorkloadAccessToken") {
                Some(wat) if inner.issued.contains_key(wat) => match inner.api_keys.get(provider) {
                    Some(key) => ok(json!({ "RequestId": request_id, "APIKey": key })),
                    None => error_answer(
                        host,
                        request_id,
                        404,
                        "EntityNotExists.APIKeyCredentialProvider",
                        &format!("The API key credential provider {provider} does not exist."),
                    ),
                },
                _ => error_answer(
                    host,
                    request_id,
                    403,
                    "InvalidWorkloadAccessToken",
                    "The workload access token is invalid.",
                ),
            }
        }
        "GetResourceOAuth2Token" => oauth2::get_token(options, inner, params, host, request_id),
        "CompleteResourceTokenAuth" => oauth2::complete(inner, params, host, request_id),
        "AssumeRoleForWorkloadIdentity" => match params.get("WorkloadAccessToken") {
            Some(wat) if inner.issued.contains_key(wat) => {
                inner.counter += 1;
                let n = inner.counter;
                // The issued secret and token carry the token prefix too, so a sentinel prefix covers them.
                let prefix = &options.token_prefix;
                let key = KnownKey {
                    access_key_id: format!("STS.WorkloadRole{n}"),
                    access_key_secret: format!("{prefix}role-secret-{n}"),
                    security_token: Some(format!("{prefix}role-token-{n}")),
                };
                let duration = params.get("DurationSeconds").and_then(|d| d.parse::<u64>().ok()).unwrap_or(3600);
                let expiration = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(duration));
                let body = json!({
                    "RequestId": request_id,
                    "Credentials": {
                        "AccessKeyId": key.access_key_id,
                        "AccessKeySecret": key.access_key_secret,
                        "SecurityToken": key.security_token,
                        "Expiration": expiration.to_string(),
                    },
                });
                inner.keys.push(key);
                ok(body)
            }
            _ => error_answer(
                host,
                request_id,
                403,
                "InvalidWorkloadAccessToken",
                "The workload access token is invalid.",
            ),
        },
        _ => error_answer(
            host,
            request_id,
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ),
    }
}

fn mint(inner: &mut Inner, prefix: &str, subject: &str) -> String {
    inner.counter += 1;
    let token = format!("{prefix}{subject}-{}", inner.counter);
    inner.issued.insert(token.clone(), subject.to_owned());
    token
}

fn jwt_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
}

/// `aud` may be a string or an array; the API always answers an array.
fn audiences(claims: &Value) -> Value {
    match claims.get("aud") {
        Some(Value::Array(list)) => Value::Array(list.clone()),
        Some(one) => json!([one]),
        None => json!([]),
    }
}
