//! No secret ever reaches a log line or a response: the real binary, logging at TRACE, runs against a
//! stand-in stack whose AccessKey secret, STS token, WATs and DashScope key are sentinel strings, and
//! callers send a sentinel JWT. Representative flows — tool turns, a JWT user, FC credential headers, event
//! invocations, `stream:false`, every fault class of every upstream, errors before the stream — and then
//! not one sentinel may appear in anything the process wrote or answered.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use base64::Engine as _;
use devstack::agent_identity::Fault as IdentityFault;
use devstack::mcp_server::Fault as McpFault;
use devstack::{Stack, StackOptions, StackSecrets};
use kit::binary::Binary;
use kit::{HANG_GUARD, SHORT_DEADLINE, request};
use serde_json::{Value, json};

const AK_ID: &str = "STS.SentinelKeyId";
const AK_SECRET: &str = "SENTINEL-AK-SECRET-6b1f0e";
const STS_TOKEN: &str = "SENTINEL-STS-TOKEN-93ad27";
const WAT_PREFIX: &str = "SENTINEL-WAT-";
const DASHSCOPE_KEY: &str = "SENTINEL-DASHSCOPE-KEY-5c8e41";
const JWT_SIGNATURE: &str = "SENTINEL-JWT-SIGNATURE-d40f9a";
/// `OAUTH2_STATE_KEY` (the OAuth2 tokens and session URIs the stand-in issues carry `WAT_PREFIX`).
const STATE_KEY: &str = "SENTINEL-OAUTH2-STATE-KEY-4f19b2-0123456789";
/// The vault's DashScope key after a rotation (the first one is `DASHSCOPE_KEY`).
const ROTATED_KEY: &str = "SENTINEL-ROTATED-KEY-77a0c3";

/// A JWT the Agent Identity stand-in accepts (it reads claims; the signature is the sentinel).
fn jwt(sub: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let claims = b64(json!({"sub": sub, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.{JWT_SIGNATURE}")
}

/// Everything the callers got back.
#[derive(Default)]
struct Transcript {
    answers: Vec<String>,
}

struct Caller<'a> {
    function: &'a Binary,
    client: reqwest::Client,
}

impl Caller<'_> {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: String) -> String {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.function.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let exchange = async {
            let response = request.send().await.expect("the function answers");
            let mut text = format!("HTTP {}\n", response.status());
            for (name, value) in response.headers() {
                text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
            }
            text.push_str(&response.text().await.expect("the body arrives whole"));
            text
        };
        tokio::time::timeout(HANG_GUARD, exchange).await.unwrap_or_else(|_| panic!("{path} hung"))
    }

    async fn process(&self, headers: &[(&str, &str)], body: &Value) -> String {
        self.send("POST", "/process", headers, body.to_string()).await
    }

    async fn invoke(&self, payload: String) -> String {
        let headers = [("x-fc-control-path", "/invoke"), ("x-fc-request-id", "secrets-invoke")];
        self.send("POST", "/invoke", &headers, payload).await
    }
}

async fn sentinel_stack() -> Stack {
    Stack::start_with(StackOptions {
        secrets: StackSecrets {
            dashscope_key: DASHSCOPE_KEY.into(),
            sts_access_key_id: AK_ID.into(),
            sts_access_key_secret: AK_SECRET.into(),
            sts_security_token: STS_TOKEN.into(),
            wat_prefix: WAT_PREFIX.into(),
            oauth2_state_key: STATE_KEY.into(),
        },
        ..StackOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sentinel_secret_appears_in_any_log_line_or_response() {
    let stack = sentinel_stack().await;
    let function = Binary::start(&stack, &[("RUST_LOG", "trace")]).await;
    let caller = Caller { function: &function, client: fc_identity_agent::upstream::client_builder().build().unwrap() };
    let mut seen = Transcript::default();
    let fc_role =
        [("x-fc-access-key-id", AK_ID), ("x-fc-access-key-secret", AK_SECRET), ("x-fc-security-token", STS_TOKEN)];
    let deadline = [("x-fc-function-timeout", SHORT_DEADLINE)];

    // Turns that work: body user, JWT user, FC credential headers, stream:false, events.
    let tool_turn = caller.process(&[], &request("alice", "Tell me the time and say hello to Alice")).await;
    assert!(tool_turn.contains(r#""status":"completed""#), "{tool_turn}");
    seen.answers.push(tool_turn);
    let bearer = format!("Bearer {}", jwt("jwt-user"));
    let jwt_turn = caller.process(&[("authorization", &bearer)], &request("ignored", "Tell me the time")).await;
    assert!(jwt_turn.contains(r#""status":"completed""#), "{jwt_turn}");
    seen.answers.push(jwt_turn);
    seen.answers.push(caller.process(&fc_role, &request("bob", "Tell me the time")).await);
    let mut single = request("carol", "Tell me the time");
    single["stream"] = json!(false);
    seen.answers.push(caller.process(&[], &single).await);
    seen.answers.push(caller.invoke(request("dave", "Tell me the time").to_string()).await);
    let timer = json!({"triggerTime": "2024-01-01T00:00:00Z", "triggerName": "every-hour", "payload": "tick"});
    seen.answers.push(caller.invoke(timer.to_string()).await);
    let oss =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fc3/events/oss.json")).unwrap();
    seen.answers.push(caller.invoke(oss).await);

    // Errors before the stream.
    seen.answers.push(caller.send("POST", "/process", &[("authorization", &bearer)], "{not json".into()).await);
    let mut pick = request("erin", "hi");
    pick["model"] = json!("qwen-turbo");
    seen.answers.push(caller.process(&[("authorization", &bearer)], &pick).await);
    seen.answers.push(caller.send("GET", "/process", &fc_role, String::new()).await);
    seen.answers.push(caller.send("GET", "/nowhere", &[("authorization", &bearer)], String::new()).await);
    seen.answers.push(caller.invoke("not an event".into()).await);

    // Agent Identity faults (each on a fresh user, so the token cache does not hide them).
    let identity_faults = [
        vec![IdentityFault::SignatureDoesNotMatch],
        vec![IdentityFault::SecurityTokenExpired],
        vec![IdentityFault::Error { status: 403, code: "Forbidden.RAM".into(), message: "denied".into() }],
        vec![IdentityFault::Throttling { retry_after_ms: Some(3_600_000) }],
        vec![IdentityFault::ServerError, IdentityFault::Malformed],
        vec![IdentityFault::Cut],
    ];
    for (n, faults) in identity_faults.into_iter().enumerate() {
        for fault in faults {
            stack.identity.inject(fault);
        }
        seen.answers.push(caller.process(&fc_role, &request(&format!("identity-fault-{n}"), "Tell me the time")).await);
    }
    let jwt_fault =
        IdentityFault::Error { status: 400, code: "InvalidParameter.UserToken".into(), message: "bad".into() };
    stack.identity.inject(jwt_fault);
    let other_jwt = format!("Bearer {}", jwt("jwt-user-2"));
    seen.answers.push(caller.process(&[("authorization", &other_jwt)], &request("x", "Tell me the time")).await);

    // MCP faults.
    let unauthorized = || McpFault::Status { status: 401, retry_after: None };
    let mcp_faults = [
        ("initialize", vec![unauthorized(), unauthorized()]),
        ("tools/call", vec![unauthorized(), unauthorized()]),
        ("tools/call", vec![McpFault::Status { status: 403, retry_after: None }]),
        ("initialize", vec![McpFault::Status { status: 429, retry_after: Some(1) }]),
        ("tools/list", vec![McpFault::Status { status: 500, retry_after: None }]),
        ("tools/list", vec![McpFault::Malformed]),
        ("tools/call", vec![McpFault::Cut]),
    ];
    for (n, (method, faults)) in mcp_faults.into_iter().enumerate() {
        for fault in faults {
            stack.mcp.inject(method, fault);
        }
        seen.answers.push(caller.process(&[], &request(&format!("mcp-fault-{n}"), "Tell me the time")).await);
    }

    // DashScope faults.
    for fault in ["401", "403", "429", "quota", "500", "filter", "malformed", "cut", "eof", "midstream-error"] {
        seen.answers.push(caller.process(&[], &request("frank", &format!("Tell me the time [fault:{fault}]"))).await);
    }

    // The deadline while each upstream hangs or drips, all at once.
    stack.identity.inject(IdentityFault::Hang);
    stack.mcp.inject("tools/call", McpFault::Drip);
    let slow = futures_util::future::join_all([
        caller.process(&deadline, &request("slow-identity", "Tell me the time")),
        caller.process(&deadline, &request("slow-mcp", "Tell me the time")),
        caller.process(&deadline, &request("slow-model", "Tell me a story [fault:hang]")),
        caller.process(&deadline, &request("slow-model", "Tell me a story [fault:drip]")),
    ])
    .await;
    seen.answers.extend(slow);

    // A background turn of a JWT user: its claim kept with the queued turn, FC's async stand-in signed with the
    // sentinel role and delivering with it, the turn collected and its journal followed.
    stack.fc.deliver_to(&function.url(""));
    let background_jwt = format!("Bearer {}", jwt("jwt-user-background"));
    let queued = caller
        .send(
            "POST",
            "/compatible-mode/v1/responses",
            &[("authorization", &background_jwt)],
            json!({"input": "Tell me the time", "background": true}).to_string(),
        )
        .await;
    let id_at = queued.find("\"id\":\"resp_").expect("queued") + 6;
    let id = queued[id_at..id_at + 37].to_owned();
    seen.answers.push(queued);
    let state = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let state = caller.send("GET", &format!("/compatible-mode/v1/responses/{id}"), &[], String::new()).await;
            if state.contains(r#""status":"completed""#) {
                return state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the background turn completes");
    seen.answers.push(state);
    let path = format!("/compatible-mode/v1/responses/{id}?stream=true");
    seen.answers.push(caller.send("GET", &path, &[], String::new()).await);

    // An A2A background task of a JWT user (a non-blocking send): its claim kept with the queued turn, its
    // steps resubscribed to and the task read back.
    let a2a_jwt = format!("Bearer {}", jwt("jwt-user-a2a-background"));
    let send = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {
        "message": {"kind": "message", "role": "user", "messageId": "m-bg", "parts": [{"kind": "text", "text": "Tell me the time"}]},
        "configuration": {"blocking": false}}});
    let submitted = caller.send("POST", "/a2a", &[("authorization", &a2a_jwt)], send.to_string()).await;
    let task_at = submitted.find("\"id\":\"a2a_").expect("submitted") + 6;
    let task = submitted[task_at..task_at + 36].to_owned();
    seen.answers.push(submitted);
    // Followed while it runs (or refused as over, should it have ended first), then read until completed.
    let resubscribe = json!({"jsonrpc": "2.0", "id": 2, "method": "tasks/resubscribe", "params": {"id": task}});
    seen.answers.push(caller.send("POST", "/a2a", &[], resubscribe.to_string()).await);
    let get = json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": task}}).to_string();
    let got = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let got = caller.send("POST", "/a2a", &[], get.clone()).await;
            if got.contains(r#""state":"completed""#) {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the A2A background task completes");
    seen.answers.push(got);

    function.terminate();
    let (status, logs) = function.wait().await;
    assert!(status.success(), "{status}");

    // The sentinels were really in use: the stand-ins saw them, and the logs are the TRACE firehose.
    assert!(stack.identity.requests().iter().any(|r| r.access_key_id.as_deref() == Some(AK_ID)));
    assert!(stack.identity.issued_tokens().iter().all(|t| t.starts_with(WAT_PREFIX)));
    assert!(stack.identity.issued_tokens().len() > 10);
    assert!(logs.lines().count() > 100, "too few log lines to mean anything: {logs}");
    assert!(logs.contains(r#""level":"TRACE""#), "not logging at TRACE");

    let mut sentinels = vec![AK_SECRET, STS_TOKEN, WAT_PREFIX, DASHSCOPE_KEY, JWT_SIGNATURE];
    let jwts = [jwt("jwt-user"), jwt("jwt-user-2"), jwt("jwt-user-background"), jwt("jwt-user-a2a-background")];
    sentinels.extend(jwts.iter().map(String::as_str));
    let mut leaks = Vec::new();
    for sentinel in &sentinels {
        leaks.extend(logs.lines().filter(|l| l.contains(sentinel)).map(|l| format!("log: {l}")));
        leaks.extend(seen.answers.iter().filter(|a| a.contains(sentinel)).map(|a| format!("answer: {a}")));
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

const REDIS_PASSWORD: &str = "SENTINEL-REDIS-PASSWORD-71c2e8";

/// A session store URL with a password: a `rediss://` one nobody answers, and a `redis://` one a real
/// `redis-server` refuses (wrong password). The password is in no log line and no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_store_password_appears_in_no_log_line_or_response() {
    let redis = redis_server::RedisServer::start_with(&["--requirepass", "the-right-one"], Some("the-right-one")).await;
    let closed = kit::closed_port_url().await.replace("http://", "");
    let urls = [
        format!("rediss://default:{REDIS_PASSWORD}@{closed}/0"),
        format!("redis://default:{REDIS_PASSWORD}@127.0.0.1:{}/0", redis.port),
    ];
    for url in urls {
        let stack = sentinel_stack().await;
        let function = Binary::start(
            &stack,
            &[("RUST_LOG", "trace"), ("SESSION_STORE", &url), ("SESSION_STORE_TIMEOUT_MS", "1000")],
        )
        .await;
        let caller =
            Caller { function: &function, client: fc_identity_agent::upstream::client_builder().build().unwrap() };
        let turn = caller.process(&[], &request("alice", "Tell me the time")).await;
        assert!(turn.contains(r#""code":"session_error""#), "{turn}");
        let read = caller.send("GET", "/sessions/s-alice?user_id=alice", &[], String::new()).await;
        assert!(read.starts_with("HTTP 503"), "{read}");
        function.terminate();
        let (status, logs) = function.wait().await;
        assert!(status.success(), "{status}");
        assert!(logs.contains("session"), "the failure is logged: {logs}");
        for text in [&turn, &read, &logs] {
            let leaks: Vec<&str> = text.lines().filter(|l| l.contains(REDIS_PASSWORD)).collect();
            assert!(leaks.is_empty(), "{url}: the store password leaked:\n{}", leaks.join("\n"));
        }
    }
}

/// The model key from the vault: the key (before and after a rotation), the role's STS credentials that
/// AssumeRoleForWorkloadIdentity issued (they carry the WAT sentinel prefix) and the WATs exchanged for
/// them appear in no log line or answer — through a working turn, a rotation (DashScope 401), a key
/// DashScope refuses, vault faults and an unknown provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_vault_secret_appears_in_any_log_line_or_response() {
    let stack = sentinel_stack().await;
    let vault = [
        ("RUST_LOG", "trace"),
        ("DASHSCOPE_API_KEY", ""),
        ("DASHSCOPE_API_KEY_PROVIDER", devstack::DASHSCOPE_KEY_PROVIDER),
    ];
    let function = Binary::start(&stack, &vault).await;
    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    let caller = Caller { function: &function, client: client.clone() };
    let mut answers = Vec::new();

    let first = caller.process(&[], &request("alice", "Tell me the time")).await;
    assert!(first.contains(r#""status":"completed""#), "{first}");
    answers.push(first);
    stack.rotate_dashscope_key(ROTATED_KEY);
    let rotated = caller.process(&[], &request("alice", "Tell me the time")).await;
    assert!(rotated.contains(r#""status":"completed""#), "{rotated}");
    answers.push(rotated);
    // The vault now holds a key DashScope refuses (the old one).
    stack.identity.set_api_key(devstack::DASHSCOPE_KEY_PROVIDER, DASHSCOPE_KEY);
    stack.dashscope.set_api_key(ROTATED_KEY);
    let refused = caller.process(&[], &request("bob", "Tell me the time [fault:401]")).await;
    answers.push(refused);
    // alice's WAT and role are cached, so the refetch after the 401 meets each fault in the vault calls
    // themselves: GetResourceAPIKey, then (the role dropped after that error) AssumeRoleForWorkloadIdentity.
    for fault in [IdentityFault::SignatureDoesNotMatch, IdentityFault::SecurityTokenExpired, IdentityFault::Cut] {
        stack.identity.inject(fault);
        answers.push(caller.process(&[], &request("alice", "hi")).await);
    }
    function.terminate();
    let (status, logs) = function.wait().await;
    assert!(status.success(), "{status}");

    let other =
        Binary::start(&stack, &[("DASHSCOPE_API_KEY", ""), ("DASHSCOPE_API_KEY_PROVIDER", "no-such-provider")]).await;
    let caller = Caller { function: &other, client: client.clone() };
    let unknown = caller.process(&[], &request("carol", "hi")).await;
    assert!(unknown.contains("EntityNotExists.APIKeyCredentialProvider"), "{unknown}");
    answers.push(unknown);
    other.terminate();
    let (_, other_logs) = other.wait().await;

    // The vault was really used: keys were fetched with role credentials it issued.
    let fetched = stack.identity.requests().into_iter().filter(|r| r.action == "GetResourceAPIKey").count();
    assert!(fetched >= 3, "{fetched}");
    assert!(logs.contains(r#""level":"TRACE""#), "not logging at TRACE");
    let mut leaks = Vec::new();
    for sentinel in [AK_SECRET, STS_TOKEN, WAT_PREFIX, DASHSCOPE_KEY, ROTATED_KEY] {
        for line in logs.lines().chain(other_logs.lines()).filter(|l| l.contains(sentinel)) {
            leaks.push(format!("log: {line}"));
        }
        leaks.extend(answers.iter().filter(|a| a.contains(sentinel)).map(|a| format!("answer: {a}")));
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

/// A streamed turn whose consent the test gives: reads the stream up to the authorization URL, clicks
/// Allow on the stand-in's page (the browser follows the redirect to the function's callback), replays and
/// forges the callback, then reads the stream to its end. Everything the function answered is returned.
async fn consented_turn(caller: &Caller<'_>, user: &str) -> Vec<String> {
    let mut answers = Vec::new();
    let mut response = caller
        .client
        .post(caller.function.url("/process"))
        .json(&request(user, "Tell me the time"))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let url = loop {
        let chunk = tokio::time::timeout(HANG_GUARD, response.chunk()).await.expect("the stream moves").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream carries the authorization URL")));
        if let Some(at) = text.find(r#""type":"oauth2_authorization""#) {
            let frame = &text[..text[at..].find("\n\n").map_or(text.len(), |end| at + end)];
            let data = frame.rsplit("data: ").next().unwrap();
            if let Ok(event) = serde_json::from_str::<Value>(data) {
                break event["data"]["url"].as_str().unwrap().to_owned();
            }
        }
    };
    let no_redirects = fc_identity_agent::upstream::client_builder().redirect(reqwest::redirect::Policy::none());
    let location = no_redirects.build().unwrap().get(format!("{url}&decision=allow")).send().await.unwrap();
    let callback = location.headers()["location"].to_str().unwrap().to_owned();
    let path =
        callback.split_once("127.0.0.1").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| format!("/{p}"));
    let path = path.expect("the return URL is the function's");
    // Forged (the state's signature cut), then genuine, then replayed.
    let forged = path.rsplit_once('.').map(|(head, _)| format!("{head}.AAAA")).unwrap();
    answers.push(caller.send("GET", &forged, &[("accept", "text/html")], String::new()).await);
    answers.push(caller.send("GET", &path, &[("accept", "text/html")], String::new()).await);
    answers.push(caller.send("GET", &path, &[], String::new()).await);
    while let Some(chunk) = tokio::time::timeout(HANG_GUARD, response.chunk()).await.expect("the stream ends").unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(r#""status":"completed""#), "{text}");
    answers.push(text);
    answers
}

/// OAuth2 tokens from the vault: the access tokens and session URIs the stand-in issues (they carry the
/// WAT sentinel prefix), the state key, the role's credentials — through a consent, a forged and a
/// replayed callback, a cached token, a token the MCP server refuses, polls that fail, and a consent that
/// never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_oauth2_secret_appears_in_any_log_line_or_response() {
    let stack = sentinel_stack().await;
    let mut env: Vec<(&str, String)> = stack.oauth2_env();
    env.extend([("RUST_LOG", "trace".to_owned()), ("OAUTH2_POLL_INTERVAL_MS", "25".to_owned())]);
    let with_limit = |limit: &'static str| {
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("OAUTH2_POLL_LIMIT", limit));
        env
    };
    let function = Binary::start(&stack, &with_limit("400")).await;
    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    let caller = Caller { function: &function, client: client.clone() };
    let mut answers = consented_turn(&caller, "alice").await;
    let cached = caller.process(&[], &request("alice", "Tell me the time")).await;
    assert!(cached.contains(r#""status":"completed""#) && !cached.contains("oauth2_authorization"), "{cached}");
    answers.push(cached);
    for token in stack.identity.oauth2_tokens() {
        stack.identity.expire_oauth2(&token);
    }
    let refused = caller.process(&[], &request("alice", "Tell me the time")).await;
    assert!(refused.contains(r#""status":"completed""#), "{refused}");
    answers.push(refused);
    function.terminate();
    let (status, logs) = function.wait().await;
    assert!(status.success(), "{status}");

    // Polls that fail, then run out: the failure message carries the last poll's error.
    let impatient = Binary::start(&stack, &with_limit("3")).await;
    let caller = Caller { function: &impatient, client: client.clone() };
    let faults = [IdentityFault::SignatureDoesNotMatch, IdentityFault::SecurityTokenExpired, IdentityFault::Cut];
    let bob = request("bob", "Tell me the time");
    let waiting = caller.process(&[], &bob);
    let answered =
        || stack.identity.requests().iter().filter(|r| r.action == "GetResourceOAuth2Token" && r.status == 200).count();
    let before = answered();
    let inject = async {
        // Bob's first GetResourceOAuth2Token has answered with the URL; his polls meet the faults.
        while answered() == before {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for fault in faults {
            stack.identity.inject(fault);
        }
    };
    let (timed_out, ()) = tokio::join!(waiting, inject);
    assert!(timed_out.contains("consent_timeout") && timed_out.contains("last poll error"), "{timed_out}");
    answers.push(timed_out);
    impatient.terminate();
    let (_, other_logs) = impatient.wait().await;

    let completed = stack.identity.oauth2_completions();
    assert_eq!(completed.len(), 1, "one genuine callback");
    assert!(
        completed[0].contains(WAT_PREFIX) && stack.identity.oauth2_tokens().iter().all(|t| t.starts_with(WAT_PREFIX))
    );
    assert!(logs.contains(r#""level":"TRACE""#), "not logging at TRACE");
    let mut leaks = Vec::new();
    for sentinel in [AK_SECRET, STS_TOKEN, WAT_PREFIX, DASHSCOPE_KEY, STATE_KEY] {
        for line in logs.lines().chain(other_logs.lines()).filter(|l| l.contains(sentinel)) {
            leaks.push(format!("log: {line}"));
        }
        leaks.extend(answers.iter().filter(|a| a.contains(sentinel)).map(|a| format!("answer: {a}")));
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}
