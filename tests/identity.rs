//! acs + identity against the SDK-made vectors and the devstack Agent Identity stand-in (real sockets).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use devstack::agent_identity::{AgentIdentityStandIn, Fault, KnownKey, StandInOptions};
use fc_identity_agent::acs::signer::{self, RpcHeaders, SigningInput};
use fc_identity_agent::acs::{
    AcsError, ChainProvider, Credentials, CredentialsError, CredentialsProvider, CredentialsUriProvider, RetryPolicy,
    RpcClient, StaticProvider, anonymous_query,
};
use fc_identity_agent::identity::{
    IdentityClient, IdentityError, IdentitySettings, Subject, UserSource, WorkloadTokens,
};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use serde_json::Value;
use tokio::time::Instant;

// ---------- vectors ----------

fn vector(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/vectors/acs3/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("vector json")
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} missing"))
}

fn params_of(v: &Value) -> Vec<(String, String)> {
    let obj = v.pointer("/input/params").and_then(Value::as_object).expect("params");
    obj.iter().map(|(k, val)| (k.clone(), val.as_str().map(str::to_owned).unwrap_or_else(|| val.to_string()))).collect()
}

fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

const SIGNED_VECTORS: [&str; 7] = [
    "01_userid_basic_ak",
    "02_userid_basic_sts",
    "03_userid_special_chars_sts",
    "04_userid_special_chars_ak",
    "05_get_resource_apikey_sts",
    "06_get_workload_access_token_for_jwt_sts",
    "07_get_workload_access_token_ak",
];

#[test]
fn signing_minimal_reproduces_every_vector_byte_for_byte() {
    for name in SIGNED_VECTORS {
        let v = vector(name);
        let params = params_of(&v);
        let body = signer::form_body(&refs(&params));
        assert_eq!(body, s(&v, "/request/body"), "{name}: body");
        let body_sha256 = signer::hex_sha256(body.as_bytes());
        assert_eq!(body_sha256, s(&v, "/request/body_sha256"), "{name}: body sha256");

        let headers = RpcHeaders {
            host: s(&v, "/input/endpoint"),
            action: s(&v, "/input/action"),
            version: s(&v, "/input/version"),
            date: s(&v, "/input/date"),
            nonce: s(&v, "/input/nonce"),
            body_sha256: &body_sha256,
            security_token: v.pointer("/input/security_token").and_then(Value::as_str),
        }
        .to_vec();
        let sent: BTreeMap<&str, &str> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let expected: BTreeMap<&str, &str> = v["signing_minimal"]["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        assert_eq!(sent, expected, "{name}: headers");

        let input = SigningInput {
            method: "POST",
            path: "/",
            canonical_query: "",
            headers: &headers,
            body_sha256: &body_sha256,
        };
        let sig = signer::sign(&input, s(&v, "/input/access_key_id"), s(&v, "/input/access_key_secret"));
        let m = &v["signing_minimal"];
        assert_eq!(sig.canonical_headers, s(m, "/canonical_headers"), "{name}");
        assert_eq!(sig.signed_headers, s(m, "/signed_headers"), "{name}");
        assert_eq!(sig.canonical_request, s(m, "/canonical_request"), "{name}");
        assert_eq!(sig.string_to_sign, s(m, "/string_to_sign"), "{name}");
        assert_eq!(sig.signature, s(m, "/signature"), "{name}");
        assert_eq!(sig.authorization, s(m, "/authorization"), "{name}");
    }
}

#[test]
fn signing_sdk_exact_reproduces_every_vector_given_the_sdk_headers() {
    for name in SIGNED_VECTORS.iter().copied().chain(["00_public_doc_example"]) {
        let v = vector(name);
        let headers: Vec<(&str, &str)> = v["request"]["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let query: Vec<(String, String)> = v["request"]["query"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let canonical_query = signer::canonical_query(&refs(&query));
        let body_sha256 = signer::hex_sha256(s(&v, "/request/body").as_bytes());
        let e = &v["signing_sdk_exact"];
        assert_eq!(canonical_query, s(e, "/canonical_query_string"), "{name}");
        assert_eq!(body_sha256, s(e, "/hashed_payload"), "{name}");
        let input = SigningInput {
            method: s(&v, "/request/method"),
            path: s(&v, "/request/path"),
            canonical_query: &canonical_query,
            headers: &headers,
            body_sha256: &body_sha256,
        };
        let sig = signer::sign(&input, s(&v, "/input/access_key_id"), s(&v, "/input/access_key_secret"));
        assert_eq!(sig.canonical_request, s(e, "/canonical_request"), "{name}");
        assert_eq!(sig.string_to_sign, s(e, "/string_to_sign"), "{name}");
        assert_eq!(sig.signature, s(e, "/signature"), "{name}");
        assert_eq!(sig.authorization, s(e, "/authorization"), "{name}");
    }
    let doc = vector("00_public_doc_example");
    assert_eq!(
        s(&doc, "/expected_signature_from_docs"),
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    );
}

#[test]
fn anonymous_assume_role_request_matches_vector_08() {
    let v = vector("08_assume_role_for_workload_identity_anonymous");
    let query =
        anonymous_query(s(&v, "/input/action"), s(&v, "/input/version"), s(&v, "/input/date"), s(&v, "/input/nonce"));
    let ours: BTreeMap<&str, &str> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let theirs: BTreeMap<&str, &str> =
        v["request"]["query"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    assert_eq!(ours, theirs);
    assert_eq!(signer::form_body(&refs(&params_of(&v))), s(&v, "/request/body"));
}

// ---------- stand-in helpers ----------

fn endpoint(url: &str) -> Endpoint {
    Endpoint::parse(url).expect("a valid endpoint")
}

fn http() -> reqwest::Client {
    fc_identity_agent::upstream::client_builder().build().expect("client")
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) }
}

async fn stand_in() -> AgentIdentityStandIn {
    AgentIdentityStandIn::start(StandInOptions::default()).await.expect("stand-in")
}

fn client(stand_in: &AgentIdentityStandIn) -> IdentityClient {
    let rpc = RpcClient::new(&endpoint(&stand_in.url()), "2025-11-27", http()).with_retry(fast_retry());
    IdentityClient::from_rpc(rpc)
}

fn settings(url: String, preset: Option<Secret>) -> IdentitySettings {
    IdentitySettings {
        endpoint: endpoint(&url),
        workload_identity_name: "fc-agent".into(),
        token_ttl: Duration::from_secs(300),
        preset_token: preset,
        user_source: UserSource::Auto,
    }
}

fn jwt(claims: &str) -> Secret {
    let e = |t: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
    Secret::new(format!("{}.{}.{}", e(r#"{"alg":"RS256"}"#), e(claims), e("sig")))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

// ---------- signed calls over real sockets ----------

#[tokio::test]
async fn stand_in_accepts_our_signatures_with_ak_and_sts_and_token_header_only_with_sts() {
    let si = stand_in().await;
    let c = client(&si);
    let ak = common::stand_in_access_key();
    let sts = common::stand_in_sts();
    let a =
        c.get_workload_access_token_for_user_id("fc-agent", "张三 o'Brien+a*b~c/d=e&f%g 😀", &ak, far()).await.unwrap();
    let b = c.get_workload_access_token_for_user_id("fc-agent", "u1", &sts, far()).await.unwrap();
    let agent = c.get_workload_access_token("fc-agent", &sts, far()).await.unwrap();
    let for_jwt = c
        .get_workload_access_token_for_jwt("fc-agent", &jwt(r#"{"sub":"alice","iss":"idp"}"#), &ak, far())
        .await
        .unwrap();
    assert!(si.issued(a.expose()) && si.issued(b.expose()) && si.issued(agent.expose()));
    assert_eq!(si.subject_of(a.expose()).as_deref(), Some("张三 o'Brien+a*b~c/d=e&f%g 😀"));
    assert_eq!(for_jwt.expose(), "wat-alice-4");
    assert!(!si.issued("wat-forged-1"));

    let reqs = si.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.status == 200), "{reqs:?}");
    assert_eq!(reqs[0].params["UserId"], "张三 o'Brien+a*b~c/d=e&f%g 😀");
    assert_eq!((reqs[0].access_key_id.as_deref(), reqs[0].security_token_sent), (Some(StandInOptions::AK_ID), false));
    assert_eq!((reqs[1].access_key_id.as_deref(), reqs[1].security_token_sent), (Some(StandInOptions::STS_ID), true));
    assert_eq!(reqs[2].action, "GetWorkloadAccessToken");
    assert!(!reqs[3].security_token_sent);
}

#[tokio::test]
async fn stand_in_rejects_wrong_secret_wrong_token_unknown_key() {
    let si = stand_in().await;
    let c = client(&si);
    let cases = [
        (Credentials::access_key(StandInOptions::AK_ID, "wrong"), "SignatureDoesNotMatch"),
        (
            Credentials::sts(StandInOptions::STS_ID, StandInOptions::STS_SECRET, "other"),
            "InvalidSecurityToken.MismatchWithAccessKey",
        ),
        (Credentials::access_key(StandInOptions::STS_ID, StandInOptions::STS_SECRET), "MissingSecurityToken"),
        (Credentials::access_key("LTAI-unknown", "x"), "InvalidAccessKeyId.NotFound"),
    ];
    for (creds, code) in cases {
        let err = c.get_workload_access_token("fc-agent", &creds, far()).await.unwrap_err();
        assert_eq!(err.code(), Some(code), "{err}");
        assert!(!err.is_credentials_missing());
        assert!(err.request_id().is_some());
    }
    assert_eq!(si.requests().len(), 4, "none of these may be retried");
}

/// Sends one hand-signed request (fixed date and nonce) so the stand-in's replay and skew checks show.
async fn raw_signed(si: &AgentIdentityStandIn, date: &str, nonce: &str) -> Value {
    let host = si.url().trim_start_matches("http://").to_owned();
    let body = "WorkloadIdentityName=fc-agent";
    let sha = signer::hex_sha256(body.as_bytes());
    let headers = RpcHeaders {
        host: &host,
        action: "GetWorkloadAccessToken",
        version: "2025-11-27",
        date,
        nonce,
        body_sha256: &sha,
        security_token: None,
    }
    .to_vec();
    let input = SigningInput { method: "POST", path: "/", canonical_query: "", headers: &headers, body_sha256: &sha };
    let sig = signer::sign(&input, StandInOptions::AK_ID, StandInOptions::AK_SECRET);
    let mut req = http().post(si.url()).body(body).header("authorization", sig.authorization);
    for (k, v) in &headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn stand_in_rejects_replayed_nonce_and_stale_date() {
    let si = stand_in().await;
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    assert!(raw_signed(&si, &now, "nonce-1").await.get("WorkloadAccessToken").is_some());
    assert_eq!(raw_signed(&si, &now, "nonce-1").await["Code"], "SignatureNonceUsed");
    let stale = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(16 * 60)).to_string();
    let err = raw_signed(&si, &stale, "nonce-2").await;
    assert_eq!(err["Code"], "InvalidTimeStamp.Expired");
    for key in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(err.get(key).is_some(), "error shape lacks {key}");
    }
}

#[tokio::test]
async fn api_key_hosting_flow_assume_role_then_signed_with_the_new_credentials() {
    let si = stand_in().await;
    let c = client(&si);
    let wat = c.get_workload_access_token("fc-agent", &common::stand_in_sts(), far()).await.unwrap();
    let role = c.assume_role_for_workload_identity(&wat, "fc-agent-session", 900, None, far()).await.unwrap();
    assert!(role.access_key_id.starts_with("STS.") && role.security_token.is_some() && role.expiration.is_some());
    let key = c.get_resource_api_key("dashscope", &wat, None, &role, far()).await.unwrap();
    assert_eq!(key.expose(), "sk-dashscope-devstack");

    let reqs = si.requests();
    let assume = &reqs[1];
    assert_eq!(assume.access_key_id, None, "AssumeRoleForWorkloadIdentity must be unsigned");
    for (k, v) in [("Action", "AssumeRoleForWorkloadIdentity"), ("Format", "json"), ("Version", "2025-11-27")] {
        assert_eq!(assume.params[k], v);
    }
    assert!(assume.params.contains_key("Timestamp") && assume.params.contains_key("SignatureNonce"));
    assert_eq!(assume.params["DurationSeconds"], "900");
    assert_eq!(assume.params["WorkloadAccessToken"], wat.expose());
    assert_eq!(reqs[2].access_key_id.as_deref(), Some(role.access_key_id.as_str()));

    let bad = c.get_resource_api_key("dashscope", &Secret::new("wat-forged"), None, &role, far()).await.unwrap_err();
    assert_eq!(bad.code(), Some("InvalidWorkloadAccessToken"));
}

// ---------- retries and deadline ----------

#[tokio::test]
async fn retries_throttling_5xx_and_service_unavailable_only() {
    let si = stand_in().await;
    let c = client(&si);
    let creds = common::stand_in_sts();
    si.inject(Fault::Throttling { retry_after_ms: Some(1) });
    si.inject(Fault::Throttling { retry_after_ms: None });
    si.inject(Fault::ServerError);
    c.get_workload_access_token("fc-agent", &creds, far()).await.expect("succeeds on the 4th try");
    assert_eq!(si.requests().len(), 4);

    si.inject(Fault::ServiceUnavailable);
    c.get_workload_access_token("fc-agent", &creds, far()).await.expect("retried");
    assert_eq!(si.requests().len(), 6);

    for fault in [Fault::SignatureDoesNotMatch, Fault::SecurityTokenExpired] {
        let before = si.requests().len();
        si.inject(fault);
        let err = c.get_workload_access_token("fc-agent", &creds, far()).await.unwrap_err();
        assert!(matches!(err.code(), Some("SignatureDoesNotMatch" | "InvalidSecurityToken.Expired")));
        assert_eq!(si.requests().len(), before + 1, "{err} must not be retried");
    }

    for _ in 0..4 {
        si.inject(Fault::ServerError);
    }
    let before = si.requests().len();
    let err = c.get_workload_access_token("fc-agent", &creds, far()).await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError"));
    assert_eq!(si.requests().len(), before + 4, "gives up after max_attempts");
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_returns_the_error_instead_of_sleeping() {
    let si = stand_in().await;
    let c = client(&si);
    si.inject(Fault::Throttling { retry_after_ms: Some(3_600_000) });
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = c.get_workload_access_token("fc-agent", &common::stand_in_sts(), deadline).await.unwrap_err();
    assert_eq!(err.code(), Some("Throttling.User"));
    assert_eq!(si.requests().len(), 1);
}

#[tokio::test]
async fn a_silent_upstream_ends_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            conns.push(conn); // accept, never answer
        }
    });
    let rpc = RpcClient::new(&endpoint(&format!("http://{addr}")), "2025-11-27", http());
    let c = IdentityClient::from_rpc(rpc);
    let deadline = Instant::now() + Duration::from_millis(200);
    let err = c.get_workload_access_token("fc-agent", &common::stand_in_sts(), deadline).await.unwrap_err();
    assert!(err.is_deadline(), "{err}");
    assert!(matches!(err, IdentityError::Upstream(AcsError::Deadline { attempts: 1, .. })));
    held.abort();
}

#[tokio::test]
async fn a_connection_that_cannot_be_made_is_retried() {
    // A port with nobody listening yet: the first attempts are refused, then a server appears on it. The
    // socket is bound from the start (listening later) so no parallel test can be given the port meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let listener = socket.listen(16).unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
        let body = r#"{"RequestId":"r-1","WorkloadAccessToken":"wat-after-retry"}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tokio::io::AsyncWriteExt::write_all(&mut conn, format!("{head}{body}").as_bytes()).await.unwrap();
    });
    let retry =
        RetryPolicy { max_attempts: 6, base_delay: Duration::from_millis(40), max_delay: Duration::from_millis(40) };
    let rpc = RpcClient::new(&endpoint(&format!("http://{addr}")), "2025-11-27", http()).with_retry(retry);
    let deadline = Instant::now() + Duration::from_secs(5);
    let value = rpc
        .call("GetWorkloadAccessToken", &[], &common::stand_in_sts(), deadline)
        .await
        .expect("retried until the server was up");
    assert_eq!(value["WorkloadAccessToken"], "wat-after-retry");
    server.await.unwrap();
}

#[tokio::test]
async fn a_connection_refused_for_good_fails_after_the_retries() {
    // Bound, never listening: refused, and the port cannot go to a parallel test's server.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let rpc = RpcClient::new(&endpoint(&format!("http://{addr}")), "2025-11-27", http()).with_retry(fast_retry());
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = rpc.call("GetWorkloadAccessToken", &[], &common::stand_in_sts(), deadline).await;
    assert!(matches!(err, Err(AcsError::Transport { unsent: true, .. })), "{err:?}");
    drop(socket);
}

// ---------- WorkloadTokens ----------

#[tokio::test]
async fn concurrent_misses_for_one_user_make_one_upstream_call() {
    let si = stand_in().await;
    let tokens = Arc::new(WorkloadTokens::new(settings(si.url(), None), http()));
    let creds: Arc<dyn CredentialsProvider> = Arc::new(StaticProvider::invocation(Some(common::stand_in_sts())));
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (tokens, creds, barrier) = (tokens.clone(), creds.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            tokens.token(&Subject::UserId("bob".into()), creds.as_ref(), far()).await.unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(si.requests().len(), 1);
    assert!(got.iter().all(|t| t.expose() == "wat-bob-1"));
}

#[tokio::test]
async fn subjects_are_cached_separately_and_invalidate_forces_exactly_one_refresh() {
    let si = stand_in().await;
    let tokens = Arc::new(WorkloadTokens::new(settings(si.url(), None), http()));
    let creds = StaticProvider::invocation(Some(common::stand_in_sts()));
    let alice_jwt = Subject::Jwt(jwt(&format!(r#"{{"sub":"alice","exp":{}}}"#, unix_now() + 3600)));
    let bob = Subject::UserId("bob".into());
    let first = tokens.token(&bob, &creds, far()).await.unwrap();
    assert_eq!(tokens.token(&bob, &creds, far()).await.unwrap(), first);
    assert_eq!(tokens.token(&alice_jwt, &creds, far()).await.unwrap().expose(), "wat-alice-2");
    assert_eq!(tokens.token(&Subject::Agent, &creds, far()).await.unwrap().expose(), "wat-agent-3");
    assert_eq!(si.requests().len(), 3);
    assert_eq!(si.requests()[1].action, "GetWorkloadAccessTokenForJWT");

    // Ten requests saw `first` refused downstream at once: one refresh between them.
    let creds: Arc<dyn CredentialsProvider> = Arc::new(creds);
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (tokens, creds, barrier, first, bob) =
            (tokens.clone(), creds.clone(), barrier.clone(), first.clone(), bob.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            tokens.invalidate_token(&bob, &first);
            tokens.token(&bob, creds.as_ref(), far()).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().expose(), "wat-bob-4");
    }
    assert_eq!(si.requests().len(), 4);

    tokens.invalidate(&bob);
    assert_eq!(tokens.token(&bob, creds.as_ref(), far()).await.unwrap().expose(), "wat-bob-5");
    assert_eq!(tokens.token(&bob, creds.as_ref(), far()).await.unwrap().expose(), "wat-bob-5");
    assert_eq!(si.requests().len(), 5);
}

#[tokio::test]
async fn preset_token_means_no_upstream_call_and_no_credentials_needed() {
    let si = stand_in().await;
    let tokens = WorkloadTokens::new(settings(si.url(), Some(Secret::new("preset-wat"))), http());
    let nothing = StaticProvider::invocation(None);
    let t = tokens.token(&Subject::UserId("u".into()), &nothing, far()).await.unwrap();
    assert_eq!(t.expose(), "preset-wat");
    assert!(si.requests().is_empty());
}

#[tokio::test]
async fn no_credentials_anywhere_is_credentials_missing_naming_the_sources() {
    let si = stand_in().await;
    let tokens = WorkloadTokens::new(settings(si.url(), None), http());
    let chain = ChainProvider::new(vec![
        Arc::new(StaticProvider::invocation(None)),
        Arc::new(StaticProvider::environment(None)),
        Arc::new(CredentialsUriProvider::new(None, http())),
    ]);
    let err = tokens.token(&Subject::Agent, &chain, far()).await.unwrap_err();
    assert!(err.is_credentials_missing());
    assert!(matches!(&err, IdentityError::Credentials(CredentialsError::Missing { tried }) if tried.len() == 3));
    assert!(err.to_string().contains("fc-invocation-headers, environment, credentials-uri"), "{err}");
    assert!(si.requests().is_empty());
}

// ---------- credentials URI ----------

async fn credentials_uri_server(expires_in: Duration) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/creds",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let exp = humantime::format_rfc3339_seconds(SystemTime::now() + expires_in).to_string();
                axum::Json(serde_json::json!({
                    "Code": "Success",
                    "AccessKeyId": format!("STS.uri{n}"),
                    "AccessKeySecret": "uri-secret",
                    "SecurityToken": "uri-token",
                    "Expiration": exp,
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/creds", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, hits)
}

#[tokio::test]
async fn credentials_uri_is_cached_single_flight_and_refreshed_15_minutes_before_expiry() {
    let (url, hits) = credentials_uri_server(Duration::from_secs(3600)).await;
    let provider = Arc::new(CredentialsUriProvider::new(Some(endpoint(&url)), http()));
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (p, b) = (provider.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            p.provide().await.unwrap()
        }));
    }
    for t in tasks {
        let c = t.await.unwrap();
        assert_eq!(c.access_key_id, "STS.uri1");
        assert_eq!(c.security_token.as_ref().map(Secret::expose), Some("uri-token"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Expiring in 10 minutes is already inside the 15-minute refresh window: every call refreshes.
    let (url, hits) = credentials_uri_server(Duration::from_secs(600)).await;
    let provider = CredentialsUriProvider::new(Some(endpoint(&url)), http());
    assert_eq!(provider.provide().await.unwrap().access_key_id, "STS.uri1");
    assert_eq!(provider.provide().await.unwrap().access_key_id, "STS.uri2");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn chain_order_is_invocation_then_env_then_uri() {
    let (url, hits) = credentials_uri_server(Duration::from_secs(3600)).await;
    let env = |id: Option<&'static str>| {
        Arc::new(StaticProvider::environment(id.map(|id| Credentials::access_key(id, "env-secret"))))
    };
    let uri = Arc::new(CredentialsUriProvider::new(Some(endpoint(&url)), http()));
    let hdr = Some(Credentials::sts("STS.header", "s", "t"));
    let chain = |hdr: Option<Credentials>, id| {
        ChainProvider::new(vec![Arc::new(StaticProvider::invocation(hdr)), env(id), uri.clone()])
    };
    assert_eq!(chain(hdr, Some("LTAI.env")).provide().await.unwrap().access_key_id, "STS.header");
    assert_eq!(chain(None, Some("LTAI.env")).provide().await.unwrap().access_key_id, "LTAI.env");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(chain(None, None).provide().await.unwrap().access_key_id, "STS.uri1");
}

// ---------- no secret in logs or errors ----------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A process-wide subscriber: a thread-scoped one misses events when other tests run concurrently
/// (tracing caches callsite interest globally), and every test's logs are worth scanning anyway.
fn global_capture() -> Captured {
    static CAPTURE: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || sink.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
            captured
        })
        .clone()
}

#[tokio::test]
async fn sentinel_secrets_never_reach_logs_or_error_strings() {
    const SECRET: &str = "SENTINEL-AK-SECRET-7f3a";
    const TOKEN: &str = "SENTINEL-STS-TOKEN-91c2";
    const JWT_SUB: &str = "SENTINEL-JWT-SUBJECT-5d1e";
    let captured = global_capture();

    let options = StandInOptions {
        keys: vec![KnownKey {
            access_key_id: "STS.sentinel".into(),
            access_key_secret: SECRET.into(),
            security_token: Some(TOKEN.into()),
        }],
        ..StandInOptions::default()
    };
    let si = AgentIdentityStandIn::start(options).await.unwrap();
    let good = Credentials::sts("STS.sentinel", SECRET, TOKEN);
    let wrong_secret = Credentials::sts("STS.sentinel", "SENTINEL-WRONG-SECRET-0b7e", TOKEN);
    let user_jwt = jwt(&format!(r#"{{"sub":"{JWT_SUB}","exp":{}}}"#, unix_now() + 3600));
    let c = client(&si);
    let tokens = WorkloadTokens::new(settings(si.url(), None), http());

    let mut shown = Vec::new();
    let wat = tokens
        .token(&Subject::Jwt(user_jwt.clone()), &StaticProvider::invocation(Some(good.clone())), far())
        .await
        .unwrap();
    shown.push(format!("{wat:?} {wat} {good:?} {good}"));
    si.inject(Fault::Throttling { retry_after_ms: Some(1) });
    c.get_workload_access_token_for_jwt("fc-agent", &user_jwt, &good, far()).await.unwrap();
    let errors = [
        c.get_workload_access_token_for_jwt("fc-agent", &user_jwt, &wrong_secret, far()).await.unwrap_err(),
        c.get_resource_api_key("p", &Secret::new("SENTINEL-WAT-forged"), None, &good, far()).await.unwrap_err(),
        c.get_workload_access_token(
            "fc-agent",
            &Credentials::sts("STS.sentinel", SECRET, "SENTINEL-WRONG-TOKEN"),
            far(),
        )
        .await
        .unwrap_err(),
    ];
    assert_eq!(errors[0].code(), Some("SignatureDoesNotMatch"));
    for e in &errors {
        shown.push(format!("{e} {e:?}"));
    }
    drop(si);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("Alibaba Cloud call failed"), "the capture must see our log lines:\n{logs}");
    let everything = format!("{logs}\n{}", shown.join("\n"));
    for sentinel in [
        SECRET,
        TOKEN,
        JWT_SUB,
        user_jwt.expose(),
        wat.expose(),
        "SENTINEL-WRONG",
        "SENTINEL-WAT",
        "server string to sign",
    ] {
        assert!(!everything.contains(sentinel), "{sentinel:?} leaked into:\n{everything}");
    }
}
