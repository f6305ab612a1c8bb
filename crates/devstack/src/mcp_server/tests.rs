//! The stand-in over real sockets with raw JSON-RPC posts, so that what is asserted is the wire: both
//! revisions, the policy 403, the recorded headers and the recovery hooks.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "wat-test-token";
const LEGACY: &str = "2025-06-18";
const MODERN: &str = "2026-07-28";
const READ_LIMIT: Duration = Duration::from_secs(10);

async fn start(options: StandInOptions) -> McpStandIn {
    McpStandIn::start(options).await.expect("stand-in starts")
}

fn options(revisions: Revisions) -> StandInOptions {
    StandInOptions { revisions, ..StandInOptions::accepting(TOKEN) }
}

struct Reply {
    status: StatusCode,
    session: Option<String>,
    www_authenticate: bool,
    content_type: String,
    body: String,
}

impl Reply {
    /// The JSON-RPC messages of the body: one JSON document, or the `data:` of each SSE event.
    fn messages(&self) -> Vec<Value> {
        if !self.content_type.starts_with("text/event-stream") {
            return serde_json::from_str(&self.body).into_iter().collect();
        }
        let data = self.body.lines().filter_map(|line| line.strip_prefix("data:")).map(str::trim);
        data.filter(|d| !d.is_empty()).map(|d| serde_json::from_str(d).expect("SSE data is JSON")).collect()
    }

    /// The message answering request `id`.
    fn answer(&self, id: u64) -> Value {
        let messages = self.messages();
        let found = messages.iter().find(|m| m["id"] == id);
        found.cloned().unwrap_or_else(|| panic!("no answer to {id} in {} {:?}", self.status, self.body))
    }

    fn result(&self, id: u64) -> Value {
        let answer = self.answer(id);
        assert!(answer.get("error").is_none(), "{answer}");
        answer["result"].clone()
    }
}

/// One POST with the headers a client of either revision sends, and the whole reply.
async fn post(url: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let client = crate::client_builder().build().expect("client");
    let mut request = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(READ_LIMIT, request.send()).await.expect("answered in time").expect("sent");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, session, www_authenticate) =
        (response.status(), header("mcp-session-id"), header("www-authenticate").is_some());
    let content_type = header("content-type").unwrap_or_default();
    let body = tokio::time::timeout(READ_LIMIT, response.text()).await.expect("body in time").expect("body");
    Reply { status, session, www_authenticate, content_type, body }
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A 2026-07-28 request: the client context in `_meta`, and the standard headers.
async fn modern(url: &str, id: u64, method: &str, mut params: Value) -> Reply {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "devstack-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let name = params.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(name) = name.as_deref() {
        headers.push(("mcp-name", name));
    }
    post(url, request(id, method, params), &headers).await
}

/// `initialize` and `notifications/initialized` at 2025-06-18; the session, if the server made one.
async fn initialize(url: &str) -> Option<String> {
    let params = json!({"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}});
    let reply = post(url, request(1, "initialize", params), &[]).await;
    assert_eq!(reply.result(1)["protocolVersion"], LEGACY, "{}", reply.body);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let session = reply.session.clone();
    let acknowledged = post(url, initialized, &legacy_headers(session.as_deref())).await;
    assert_eq!(acknowledged.status, StatusCode::ACCEPTED);
    session
}

fn legacy_headers(session: Option<&str>) -> Vec<(&'static str, &str)> {
    let mut headers = vec![("mcp-protocol-version", LEGACY)];
    headers.extend(session.map(|session| ("mcp-session-id", session)));
    headers
}

async fn legacy(url: &str, session: Option<&str>, id: u64, method: &str, params: Value) -> Reply {
    post(url, request(id, method, params), &legacy_headers(session)).await
}

fn names(list: &Value) -> Vec<String> {
    let tools = list["tools"].as_array().expect("tools");
    let mut names: Vec<String> = tools.iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect();
    names.sort_unstable();
    names
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn hello(name: &str) -> Value {
    json!({"name": "helloworld", "arguments": {"name": name}})
}

#[tokio::test]
async fn modern_discovers_lists_with_cache_hints_and_calls_with_the_standard_headers() {
    let server = start(StandInOptions {
        list_ttl_ms: Some(60_000),
        cache_scope: Some(CacheScope::Public),
        ..options(Revisions::Modern)
    })
    .await;
    let url = server.url();

    let discovered = modern(url, 1, "server/discover", json!({})).await;
    let info = discovered.result(1);
    assert_eq!(info["supportedVersions"], json!([MODERN]));
    assert_eq!(info["capabilities"]["tools"]["listChanged"], true, "{info}");
    assert!(info["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].is_string(), "{info}");

    let listed = modern(url, 2, "tools/list", json!({})).await;
    let list = listed.result(2);
    assert_eq!((list["ttlMs"].clone(), list["cacheScope"].clone()), (json!(60_000), json!("public")));
    assert_eq!(names(&list), ["broken", "getutctime", "helloworld", "rendezvous", "sleep"]);

    let called = modern(url, 3, "tools/call", hello("Ada")).await;
    assert_eq!(text(&called.result(3)), "Hello, Ada!");
    assert!([&discovered, &listed, &called].iter().all(|reply| reply.session.is_none()), "stateless");

    assert_eq!(server.methods(), ["server/discover", "tools/list", "tools/call"]);
    let call = &server.headers_of("tools/call")[0];
    assert_eq!(call.mcp_method.as_deref(), Some("tools/call"));
    assert_eq!(call.mcp_name.as_deref(), Some("helloworld"));
    assert_eq!(call.protocol_version.as_deref(), Some(MODERN));
    assert_eq!(call.meta_protocol_version.as_deref(), Some(MODERN));
    assert_eq!(call.session, None);
    assert_eq!(server.headers_of("tools/list")[0].mcp_name, None);

    // rmcp holds a 2026 request to its headers: a call without `Mcp-Name` is refused before the tool runs.
    let mut params = hello("Ada");
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let headers = [("mcp-protocol-version", MODERN), ("mcp-method", "tools/call")];
    let unnamed = post(url, request(4, "tools/call", params), &headers).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.body);
}

#[tokio::test]
async fn modern_without_hints_gets_rmcp_s_defaults_and_refuses_initialize() {
    let server = start(options(Revisions::Modern)).await;
    let list = modern(server.url(), 1, "tools/list", json!({})).await.result(1);
    assert_eq!((list["ttlMs"].clone(), list["cacheScope"].clone()), (json!(0), json!("private")));

    let params = json!({"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}});
    let refused = post(server.url(), request(2, "initialize", params), &[]).await;
    assert_eq!(refused.session, None);
    let answer = refused.answer(2);
    assert!(answer["error"]["code"].is_i64(), "initialize must be a JSON-RPC error: {answer}");
    assert!(answer.get("result").is_none());
}

#[tokio::test]
async fn legacy_refuses_discover_as_a_2025_server_does() {
    let stateful = start(options(Revisions::Legacy)).await;
    let refused = modern(stateful.url(), 1, "server/discover", json!({})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    // Nor does it answer a 2026 request that skips discovery.
    let listed = modern(stateful.url(), 2, "tools/list", json!({})).await;
    assert_eq!(listed.status, StatusCode::BAD_REQUEST, "{}", listed.body);
    assert_eq!(stateful.methods(), ["server/discover", "tools/list"]);

    let sessionless =
        start(StandInOptions { sessions: SessionMode::StatelessJson, ..options(Revisions::Legacy) }).await;
    let refused = modern(sessionless.url(), 3, "server/discover", json!({})).await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_eq!(refused.answer(3)["error"]["code"], -32601, "{}", refused.body);

    // And it still speaks 2025 as before; within a session, discovery is just an unknown method.
    let session = initialize(stateful.url()).await;
    assert!(session.is_some());
    let in_session = legacy(stateful.url(), session.as_deref(), 5, "server/discover", json!({})).await;
    assert_eq!(in_session.answer(5)["error"]["code"], -32601, "{}", in_session.body);
    let list = legacy(stateful.url(), session.as_deref(), 4, "tools/list", json!({})).await.result(4);
    assert!(list.get("ttlMs").is_none(), "no cache hints before 2026: {list}");
}

#[tokio::test]
async fn both_answers_whichever_revision_the_client_speaks() {
    let server = start(StandInOptions { list_ttl_ms: Some(5_000), ..options(Revisions::Both) }).await;
    let url = server.url();

    let session = initialize(url).await;
    assert!(session.is_some(), "2025 clients get a session");
    let called = legacy(url, session.as_deref(), 2, "tools/call", hello("Bea")).await;
    assert_eq!(text(&called.result(2)), "Hello, Bea!");

    let info = modern(url, 3, "server/discover", json!({})).await.result(3);
    let versions = info["supportedVersions"].as_array().cloned().unwrap_or_default();
    assert!(versions.contains(&json!(MODERN)) && versions.contains(&json!(LEGACY)), "{info}");
    let listed = modern(url, 4, "tools/list", json!({})).await;
    assert_eq!(listed.session, None);
    assert_eq!(listed.result(4)["ttlMs"], 5_000);
    assert_eq!(text(&modern(url, 5, "tools/call", hello("Cy")).await.result(5)), "Hello, Cy!");

    let versions: Vec<_> = server.headers_of("tools/call").into_iter().map(|h| h.protocol_version).collect();
    assert_eq!(versions, [Some(LEGACY.to_owned()), Some(MODERN.to_owned())]);
}

#[tokio::test]
async fn a_denied_tool_gets_403_and_the_others_are_served() {
    let server =
        start(StandInOptions { deny_tools: ["helloworld".to_owned()].into(), ..options(Revisions::Both) }).await;
    let url = server.url();
    let session = initialize(url).await;

    let denied = legacy(url, session.as_deref(), 2, "tools/call", hello("Ada")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(!denied.www_authenticate, "a policy denial is not an authentication challenge");
    assert!(denied.content_type.starts_with("text/plain"), "{}", denied.content_type);
    let time = json!({"name": "getutctime", "arguments": {}});
    assert_eq!(legacy(url, session.as_deref(), 3, "tools/call", time.clone()).await.status, StatusCode::OK);
    // The same on 2026, where the policy sees the same tool name.
    assert_eq!(modern(url, 4, "tools/call", hello("Ada")).await.status, StatusCode::FORBIDDEN);

    server.deny_tool("getutctime");
    server.allow_tool("helloworld");
    assert_eq!(legacy(url, session.as_deref(), 5, "tools/call", time).await.status, StatusCode::FORBIDDEN);
    let allowed = legacy(url, session.as_deref(), 6, "tools/call", hello("Ada")).await;
    assert_eq!(text(&allowed.result(6)), "Hello, Ada!");
    assert_eq!(server.method_count("tools/call"), 5, "denied calls are counted too");
}

#[tokio::test]
async fn dropped_sessions_answer_404_until_the_client_initializes_again() {
    let server = start(options(Revisions::Legacy)).await;
    let url = server.url();
    let session = initialize(url).await;
    assert_eq!(legacy(url, session.as_deref(), 2, "tools/list", json!({})).await.status, StatusCode::OK);

    assert_eq!(server.drop_sessions().await, 1);
    let gone = legacy(url, session.as_deref(), 3, "tools/list", json!({})).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);

    let renewed = initialize(url).await;
    assert_ne!(renewed, session);
    assert_eq!(legacy(url, renewed.as_deref(), 4, "tools/list", json!({})).await.status, StatusCode::OK);
    assert_eq!(server.method_count("initialize"), 2);
}

fn list_changed(reply: &Reply) -> usize {
    reply.messages().iter().filter(|m| m["method"] == "notifications/tools/list_changed").count()
}

#[tokio::test]
async fn changed_tools_are_announced_on_the_next_response_of_a_session() {
    let server = start(options(Revisions::Legacy)).await;
    let url = server.url();
    let session = initialize(url).await;
    let list = legacy(url, session.as_deref(), 2, "tools/list", json!({})).await.result(2);
    assert!(!names(&list).contains(&LATE_TOOL.to_owned()));
    let late = json!({"name": LATE_TOOL, "arguments": {"name": "Ada"}});
    assert!(legacy(url, session.as_deref(), 3, "tools/call", late.clone()).await.answer(3).get("error").is_some());

    server.change_tools();
    let called = legacy(url, session.as_deref(), 4, "tools/call", hello("Ada")).await;
    let messages = called.messages();
    assert_eq!(messages.first().map(|m| m["method"].clone()), Some(json!("notifications/tools/list_changed")));
    assert_eq!(text(&called.result(4)), "Hello, Ada!");
    // Once per change.
    assert_eq!(list_changed(&legacy(url, session.as_deref(), 5, "tools/call", hello("Bo")).await), 0);

    let list = legacy(url, session.as_deref(), 6, "tools/list", json!({})).await.result(6);
    assert!(names(&list).contains(&LATE_TOOL.to_owned()), "{list}");
    let called = legacy(url, session.as_deref(), 7, "tools/call", late).await;
    assert_eq!(text(&called.result(7)), "Goodbye, Ada!");
}

#[tokio::test]
async fn a_sessionless_json_reply_becomes_a_stream_to_carry_the_change() {
    let server = start(StandInOptions { sessions: SessionMode::StatelessJson, ..options(Revisions::Legacy) }).await;
    let url = server.url();
    initialize(url).await;
    server.change_tools();
    let called = legacy(url, None, 2, "tools/call", hello("Ada")).await;
    assert!(called.content_type.starts_with("text/event-stream"), "{}", called.content_type);
    assert_eq!(list_changed(&called), 1);
    assert_eq!(text(&called.result(2)), "Hello, Ada!");
    let again = legacy(url, None, 3, "tools/call", hello("Ada")).await;
    assert!(again.content_type.starts_with("application/json"));
}

#[tokio::test]
async fn a_2026_listen_stream_is_told_of_the_change() {
    let server = start(options(Revisions::Modern)).await;
    let client = crate::client_builder().build().expect("client");
    let params = json!({
        "notifications": {"toolsListChanged": true},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    });
    let mut stream = client
        .post(server.url())
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "subscriptions/listen")
        .body(request(1, "subscriptions/listen", params).to_string())
        .send()
        .await
        .expect("listen");
    assert_eq!(stream.status(), StatusCode::OK);

    let mut seen = String::new();
    let mut changed = false;
    let read = async {
        while let Some(chunk) = stream.chunk().await.expect("stream") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/subscriptions/acknowledged") && !changed {
                server.change_tools();
                changed = true;
            }
            if seen.contains("notifications/tools/list_changed") {
                return;
            }
        }
    };
    tokio::time::timeout(READ_LIMIT, read).await.unwrap_or_else(|_| panic!("no list_changed in {seen:?}"));
}

#[tokio::test]
async fn the_delay_holds_every_answer_rejections_included() {
    let delay = Duration::from_millis(150);
    let server = start(StandInOptions { delay: Some(delay), ..options(Revisions::Modern) }).await;
    let began = Instant::now();
    assert_eq!(modern(server.url(), 1, "tools/list", json!({})).await.status, StatusCode::OK);
    assert!(began.elapsed() >= delay, "{:?}", began.elapsed());

    let client = crate::client_builder().build().expect("client");
    let began = Instant::now();
    let refused = client.post(server.url()).bearer_auth("wrong").body("{}").send().await.expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(began.elapsed() >= delay, "{:?}", began.elapsed());
    assert!(server.elapsed().iter().all(|elapsed| *elapsed >= delay), "{:?}", server.elapsed());
}
