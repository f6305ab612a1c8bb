//! OpenTelemetry export, end to end: the real binary against the stand-ins, exporting over OTLP/HTTP to a
//! real receiver (`tests/clients/otlp_receiver.py`) that decodes the protobuf with the official
//! `opentelemetry-proto` package. The span tree of a tool turn on every face, a failed turn, an event; the
//! caller's `traceparent` as the root's parent and in the requests to DashScope and MCP; metrics; a
//! collector that is down or slow; and no secret in any exported byte.

mod common;
mod kit;

use std::process::Stdio;
use std::time::Duration;

use devstack::Stack;
use kit::binary::Binary;
use kit::venv::{clients_dir, venv};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The test's own trace: the root span of each turn must be this span's child.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{PARENT_SPAN}-01")
}

/// The Python receiver, a child process on a free port.
struct Receiver {
    _child: tokio::process::Child,
    port: u16,
}

impl Receiver {
    async fn start(delay_secs: Option<f64>) -> Receiver {
        let python = tokio::task::spawn_blocking(|| venv("otlp")).await.unwrap();
        let mut command = tokio::process::Command::new(python);
        command.arg(clients_dir().join("otlp_receiver.py"));
        if let Some(delay) = delay_secs {
            command.args(["--delay", &delay.to_string()]);
        }
        let mut child =
            command.stdout(Stdio::piped()).stdin(Stdio::null()).kill_on_drop(true).spawn().expect("python starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("a first line");
        let port = first.strip_prefix("listening ").expect("listening <port>").parse().unwrap();
        Receiver { _child: child, port }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.endpoint())).await.expect("the receiver answers")
    }

    async fn spans(&self) -> Vec<Value> {
        self.get("/spans").await.json().await.unwrap()
    }

    /// The spans of one trace.
    async fn trace(&self, trace_id: &str) -> Trace {
        Trace(self.spans().await.into_iter().filter(|s| s["trace_id"] == trace_id).collect())
    }

    async fn metrics(&self) -> Vec<Value> {
        let batches: Vec<Vec<Value>> = self.get("/metrics").await.json().await.unwrap();
        batches.into_iter().flatten().collect()
    }

    async fn raw(&self) -> Vec<u8> {
        self.get("/raw").await.bytes().await.unwrap().to_vec()
    }
}

struct Trace(Vec<Value>);

impl Trace {
    fn named(&self, prefix: &str) -> Vec<&Value> {
        self.0.iter().filter(|s| s["name"].as_str().unwrap().starts_with(prefix)).collect()
    }

    fn one(&self, prefix: &str) -> &Value {
        let found = self.named(prefix);
        assert_eq!(found.len(), 1, "one span {prefix:?} in {}", self.names());
        found[0]
    }

    fn children_of<'a>(&'a self, parent: &Value) -> Vec<&'a Value> {
        self.0.iter().filter(|s| s["parent_span_id"] == parent["span_id"]).collect()
    }

    fn names(&self) -> String {
        self.0.iter().map(|s| s["name"].as_str().unwrap()).collect::<Vec<_>>().join(", ")
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

async fn function(stack: &Stack, receiver_endpoint: &str, extra: &[(&str, &str)]) -> Binary {
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver_endpoint),
        ("OTEL_SERVICE_NAME", "agent-under-test"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-arms-token=SENTINEL-OTLP-HEADER-91c2"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
        ("FC_REGION", "cn-hangzhou"),
        ("FC_INSTANCE_ID", "c-instance-1"),
        ("AGENT_NAME", "Probe"),
    ];
    env.extend_from_slice(extra);
    Binary::start(stack, &env).await
}

async fn post(binary: &Binary, path: &str, trace_id: &str, headers: &[(&str, &str)], body: Value) -> String {
    let mut request = reqwest::Client::new()
        .post(binary.url(path))
        .header("content-type", "application/json")
        .header("traceparent", traceparent(trace_id))
        .header("tracestate", "probe=1")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let send = async { request.send().await.expect("the function answers").text().await.expect("a body") };
    tokio::time::timeout(kit::HANG_GUARD, send).await.expect("the turn ends")
}

/// A tool turn on `/process` under the caller's trace: the tree, the attributes, and the trace context in
/// what DashScope and the MCP server received.
#[tokio::test]
async fn a_tool_turn_is_one_trace_under_the_callers_span() {
    let receiver = Receiver::start(None).await;
    let stack = Stack::start().await.unwrap();
    let binary = function(&stack, &receiver.endpoint(), &[]).await;
    let body = post(&binary, "/process", TRACE_ID, &[], kit::request("u-trace", "Tell me the time")).await;
    assert!(body.contains("\"completed\""), "{body}");

    let trace = receiver.trace(TRACE_ID).await;
    let root = trace.one("invoke_agent");
    assert_eq!(root["name"], "invoke_agent Probe");
    assert_eq!(root["parent_span_id"], PARENT_SPAN, "the caller's span is the root's parent");
    for (key, expected) in [
        ("gen_ai.operation.name", json!("invoke_agent")),
        ("gen_ai.agent.name", json!("Probe")),
        ("gen_ai.conversation.id", json!("s-u-trace")),
        ("gen_ai.session.id", json!("s-u-trace")),
        ("gen_ai.user.id", json!("u-trace")),
        ("gen_ai.span.kind", json!("AGENT")),
        ("fc_agent.face", json!("process")),
        ("fc_agent.outcome", json!("completed")),
    ] {
        assert_eq!(attr(root, key), &expected, "{key} in {root}");
    }
    assert_eq!(root["resource"]["service.name"], "agent-under-test");
    assert_eq!(root["resource"]["cloud.region"], "cn-hangzhou");
    assert_eq!(root["resource"]["faas.instance"], "c-instance-1");

    // Two model calls (the tool call, then the answer), whose usage the root sums.
    let chats = trace.named("chat ");
    assert_eq!(chats.len(), 2, "{}", trace.names());
    let mut input_tokens = 0;
    for chat in &chats {
        assert_eq!(chat["parent_span_id"], root["span_id"]);
        assert_eq!(chat["kind"], "client");
        assert_eq!(attr(chat, "gen_ai.operation.name"), "chat");
        assert_eq!(attr(chat, "gen_ai.span.kind"), "LLM");
        assert_eq!(attr(chat, "gen_ai.request.model"), "qwen-max");
        assert_eq!(attr(chat, "gen_ai.request.stream"), true);
        assert!(attr(chat, "gen_ai.response.id").as_str().is_some_and(|id| !id.is_empty()), "{chat}");
        assert!(attr(chat, "gen_ai.response.model").is_string(), "{chat}");
        assert!(attr(chat, "gen_ai.response.finish_reasons").is_array(), "{chat}");
        assert!(attr(chat, "gen_ai.response.time_to_first_chunk").is_number(), "{chat}");
        input_tokens += attr(chat, "gen_ai.usage.input_tokens").as_i64().expect("input tokens");
    }
    assert_eq!(attr(root, "gen_ai.usage.input_tokens").as_i64(), Some(input_tokens));
    assert!(chats.iter().any(|c| attr(c, "gen_ai.response.finish_reasons") == &json!(["tool_calls"])));

    // The tool call and the MCP request under it.
    let tool = trace.one("execute_tool");
    assert_eq!(tool["parent_span_id"], root["span_id"]);
    assert_eq!(attr(tool, "gen_ai.tool.name"), "getutctime");
    assert_eq!(attr(tool, "gen_ai.span.kind"), "TOOL");
    assert!(attr(tool, "gen_ai.tool.call.id").is_string());
    assert!(attr(tool, "gen_ai.tool.call.arguments").is_null(), "no content without the opt-in");
    let mcp_call = trace.one("tools/call");
    assert_eq!(mcp_call["parent_span_id"], tool["span_id"]);
    assert_eq!(mcp_call["kind"], "client");
    assert_eq!(attr(mcp_call, "mcp.method.name"), "tools/call");
    assert_eq!(attr(mcp_call, "server.address"), "127.0.0.1");
    assert!(attr(mcp_call, "mcp.protocol.version").is_string());
    assert!(attr(mcp_call, "mcp.session.id").is_string(), "the 2025 handshake gave a session: {mcp_call}");

    // Tools opened under the root: the WAT (a miss, so Agent Identity was called), the handshake, the list.
    let opening = trace.one("open_tools");
    assert_eq!(opening["parent_span_id"], root["span_id"]);
    let wat = trace.one("workload_access_token");
    assert_eq!(attr(wat, "fc_agent.cache.hit"), false);
    let action = trace.one("GetWorkloadAccessTokenForUserId");
    assert_eq!(action["parent_span_id"], wat["span_id"]);
    assert_eq!(attr(action, "rpc.method"), "GetWorkloadAccessTokenForUserId");
    let list = trace.one("tools/list");
    assert!(trace.children_of(opening).iter().any(|s| s["span_id"] == list["span_id"]), "{}", trace.names());
    // The session store: loaded before the turn, appended after it.
    for operation in ["session_store load", "session_store append"] {
        let span = trace.one(operation);
        assert_eq!(span["parent_span_id"], root["span_id"]);
        assert_eq!(attr(span, "db.system.name"), "memory");
    }

    // The trace context reached DashScope (every call, from its chat span) and the MCP server (header and
    // `params._meta`, the same span: the tools/call span).
    let chat_ids: Vec<&str> = chats.iter().map(|c| c["span_id"].as_str().unwrap()).collect();
    let requests = stack.dashscope.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let sent = request.traceparent.as_deref().expect("DashScope got a traceparent");
        assert!(sent.contains(TRACE_ID), "{sent}");
        assert!(chat_ids.iter().any(|id| sent.contains(id)), "{sent} names a chat span");
    }
    let calls = stack.mcp.headers_of("tools/call");
    assert_eq!(calls.len(), 1);
    let expected = format!("00-{TRACE_ID}-{}-01", mcp_call["span_id"].as_str().unwrap());
    assert_eq!(calls[0].traceparent.as_deref(), Some(expected.as_str()));
    assert_eq!(calls[0].meta_traceparent.as_deref(), Some(expected.as_str()));
    let listed = stack.mcp.headers_of("tools/list");
    assert!(listed[0].traceparent.as_deref().is_some_and(|t| t.contains(TRACE_ID)), "{listed:?}");

    // Metrics: token usage per type, the operation's duration, the turn by face and outcome.
    let metrics = receiver.metrics().await;
    let metric = |name: &str| metrics.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{name}"));
    let usage = metric("gen_ai.client.token.usage");
    assert_eq!((usage["kind"].as_str(), usage["unit"].as_str()), (Some("histogram"), Some("{token}")));
    let types: Vec<&str> = usage["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["attributes"]["gen_ai.token.type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"input") && types.contains(&"output"), "{usage}");
    let duration = metric("gen_ai.client.operation.duration");
    assert_eq!(duration["unit"], "s");
    assert_eq!(duration["points"][0]["attributes"]["gen_ai.operation.name"], "chat");
    let turns = metric("fc_agent.turns");
    assert_eq!(turns["points"][0]["attributes"]["fc_agent.face"], "process");
    assert_eq!(turns["points"][0]["attributes"]["fc_agent.outcome"], "completed");
}

/// Every other face: a root `invoke_agent` under the caller's span, with the face, and the tool call.
#[tokio::test]
async fn every_face_has_its_root_span() {
    let receiver = Receiver::start(None).await;
    let stack = Stack::start().await.unwrap();
    let binary = function(&stack, &receiver.endpoint(), &[]).await;
    let faces: [(&str, &str, Value); 4] = [
        (
            "responses",
            "/compatible-mode/v1/responses",
            json!({"input": "Tell me the time", "stream": true, "user": "u-responses"}),
        ),
        (
            "chat_completions",
            "/compatible-mode/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Tell me the time"}], "stream": true, "user": "u-chat"}),
        ),
        (
            "ag-ui",
            "/ag-ui",
            json!({
                "threadId": "t-trace", "runId": "r1", "state": {}, "tools": [], "context": [],
                "forwardedProps": {"user_id": "u-agui"},
                "messages": [{"id": "m1", "role": "user", "content": "Tell me the time"}],
            }),
        ),
        (
            "a2a",
            "/a2a",
            json!({
                "jsonrpc": "2.0", "id": 1, "method": "message/send",
                "params": {"message": {"kind": "message", "messageId": "m1", "role": "user",
                                        "parts": [{"kind": "text", "text": "Tell me the time"}],
                                        "metadata": {"user_id": "u-a2a"}}},
            }),
        ),
    ];
    for (index, (face, path, body)) in faces.into_iter().enumerate() {
        let trace_id = format!("{:032x}", 0xface_0000 + index);
        post(&binary, path, &trace_id, &[], body).await;
        let trace = receiver.trace(&trace_id).await;
        let root = trace.one("invoke_agent");
        assert_eq!(root["parent_span_id"], PARENT_SPAN, "{face}");
        assert_eq!(attr(root, "fc_agent.face"), face);
        assert_eq!(attr(root, "fc_agent.outcome"), "completed", "{face}: {root}");
        let tool = trace.one("execute_tool");
        assert_eq!(tool["parent_span_id"], root["span_id"], "{face}");
        assert_eq!(trace.children_of(tool).len(), 1, "{face}: the MCP span under the tool's");
    }
}

/// A throttled model fails the turn: `error.type` is our failure code on the root and the chat span; an
/// event invocation has its root too (face `event`), and the opt-in records message contents.
#[tokio::test]
async fn a_failed_turn_and_an_event_invocation() {
    let receiver = Receiver::start(None).await;
    let stack = Stack::start().await.unwrap();
    let capture = [("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")];
    let binary = function(&stack, &receiver.endpoint(), &capture).await;

    let failing = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let body = json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": "Hi [fault:429]"}]}],
        "user_id": "u-throttled",
    });
    let answer = post(&binary, "/process", failing, &[("x-fc-function-timeout", "5")], body).await;
    assert!(answer.contains("model_throttled"), "{answer}");
    let trace = receiver.trace(failing).await;
    let root = trace.one("invoke_agent");
    assert_eq!(attr(root, "error.type"), "model_throttled");
    assert_eq!(attr(root, "fc_agent.outcome"), "failed");
    assert_eq!(root["status"]["code"], 2, "status ERROR: {root}");
    let chat = trace.one("chat ");
    assert_eq!(attr(chat, "error.type"), "model_throttled");
    assert_eq!(chat["parent_span_id"], root["span_id"]);

    let event = "cccccccccccccccccccccccccccccccc";
    let headers = [("x-fc-control-path", "/invoke"), ("x-fc-request-id", "req-event-1")];
    let payload = json!({"input": [{"role": "user", "type": "message",
                                     "content": [{"type": "text", "text": "Tell me the time"}]}],
                         "user_id": "u-event"});
    post(&binary, "/invoke", event, &headers, payload).await;
    let trace = receiver.trace(event).await;
    let root = trace.one("invoke_agent");
    assert_eq!(attr(root, "fc_agent.face"), "events");
    assert_eq!(attr(root, "faas.invocation_id"), "req-event-1");
    assert_eq!(root["parent_span_id"], PARENT_SPAN);
    let tool = trace.one("execute_tool");
    assert_eq!(attr(tool, "gen_ai.tool.call.arguments"), "{}");
    assert!(attr(tool, "gen_ai.tool.call.result").as_str().is_some_and(|r| r.contains("2026")), "{tool}");
    let chats = trace.named("chat ");
    assert!(chats.iter().all(|c| attr(c, "gen_ai.input.messages").as_str().is_some_and(|m| m.contains("time"))));
}

/// A collector that refuses connections, and one slower than the flush budget: the turns answer as
/// always, and the spans that could not be delivered are counted in the log.
#[tokio::test]
async fn a_collector_down_or_slow_never_fails_a_turn() {
    let down = kit::closed_port_url().await;
    let slow = Receiver::start(Some(3.0)).await;
    for endpoint in [down, slow.endpoint()] {
        let stack = Stack::start().await.unwrap();
        let binary = function(&stack, &endpoint, &[]).await;
        for user in ["u-a", "u-b"] {
            let body = post(&binary, "/process", TRACE_ID, &[], kit::request(user, "Tell me the time")).await;
            assert!(body.contains("\"completed\""), "{endpoint}: {body}");
        }
        binary.terminate();
        let (_, log) = binary.wait().await;
        assert!(log.contains("spans not exported"), "{endpoint}: {log}");
        assert!(log.contains("dropped_total"), "{endpoint}: {log}");
    }
}

/// No secret of the stack — the model key, the AccessKey secret, the STS token, a WAT, the end user's
/// JWT, the collector's own header value — in any byte the function exported, content capture on.
#[tokio::test]
async fn no_secret_in_the_exported_bytes() {
    let receiver = Receiver::start(None).await;
    let secrets = devstack::StackSecrets {
        sts_access_key_secret: "SENTINEL-AK-SECRET-77e1".into(),
        sts_security_token: "SENTINEL-STS-TOKEN-3b9a".into(),
        dashscope_key: "SENTINEL-DASHSCOPE-KEY-c4d2".into(),
        wat_prefix: "SENTINEL-WAT-".into(),
        ..devstack::StackSecrets::default()
    };
    let stack =
        Stack::start_with(devstack::StackOptions { secrets, ..devstack::StackOptions::default() }).await.unwrap();
    let capture = [
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces-token=SENTINEL-OTLP-TRACES-HEADER-5e1a"),
    ];
    let binary = function(&stack, &receiver.endpoint(), &capture).await;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LWp3dCIsImV4cCI6NDEwMjQ0NDgwMH0.SENTINEL-JWT-SIGNATURE-0f3e";
    let bearer = format!("Bearer {jwt}");
    post(&binary, "/process", TRACE_ID, &[("authorization", &bearer)], kit::request("u-jwt", "Tell me the time")).await;
    post(&binary, "/process", TRACE_ID, &[], kit::request("u-secret", "Hi [fault:401]")).await;
    binary.terminate();
    let (_, log) = binary.wait().await;
    let raw = receiver.raw().await;
    assert!(raw.windows(b"invoke_agent".len()).any(|w| w == b"invoke_agent"), "spans were exported");
    let exported = String::from_utf8_lossy(&raw);
    for sentinel in
        ["SENTINEL-AK-SECRET", "SENTINEL-STS-TOKEN", "SENTINEL-DASHSCOPE-KEY", "SENTINEL-WAT-", "SENTINEL-JWT"]
    {
        assert!(!exported.contains(sentinel), "{sentinel} was exported");
        assert!(!log.contains(sentinel), "{sentinel} was logged");
    }
    // The collector's header went to the collector (that is its purpose) and nowhere else.
    assert!(exported.contains("SENTINEL-OTLP-HEADER-91c2"), "the configured header was sent");
    assert!(exported.contains("SENTINEL-OTLP-TRACES-HEADER-5e1a"), "the traces' own header was sent");
    assert!(!log.contains("SENTINEL-OTLP-HEADER"), "the collector's header was logged");
    assert!(!log.contains("SENTINEL-OTLP-TRACES-HEADER"), "the traces' own header was logged");
}

/// Without any OTEL_* variable there is no exporter: nothing reaches a receiver, nothing is sent upstream.
#[tokio::test]
async fn without_configuration_nothing_is_exported_or_propagated() {
    let receiver = Receiver::start(None).await;
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[]).await;
    post(&binary, "/process", TRACE_ID, &[], kit::request("u-off", "Tell me the time")).await;
    binary.terminate();
    let (_, log) = binary.wait().await;
    assert!(!log.contains("OpenTelemetry export on"), "{log}");
    assert!(receiver.spans().await.is_empty());
    assert!(stack.dashscope.requests().iter().all(|r| r.traceparent.is_none()));
    assert!(stack.mcp.headers_of("tools/call").iter().all(|h| h.traceparent.is_none() && h.meta_traceparent.is_none()));
}

/// Every attribute and metric name in `src/telemetry/names.rs` that claims to be a convention's (all but
/// ARMS' three and our `fc_agent.*`) is spelled as the official `opentelemetry-semantic-conventions`
/// package spells it; so are the resource attributes config.rs derives from FC's environment.
#[tokio::test]
async fn the_names_are_the_conventions_own() {
    let python = tokio::task::spawn_blocking(|| venv("otlp")).await.unwrap();
    let source = include_str!("../src/telemetry/names.rs");
    let arms = ["gen_ai.span.kind", "gen_ai.session.id", "gen_ai.user.id"];
    let mut names: Vec<&str> = source
        .lines()
        .filter(|line| line.starts_with("pub(crate) const"))
        .filter_map(|line| line.split('"').nth(1))
        .filter(|name| name.contains('.') && !name.starts_with("fc_agent.") && !arms.contains(name))
        .collect();
    assert!(names.len() > 30, "{names:?}");
    names.extend(["faas.name", "cloud.region", "cloud.account.id", "faas.instance", "faas.max_memory"]);
    names.extend(["cloud.provider", "cloud.platform", "service.name", "service.version"]);
    let output = tokio::process::Command::new(python)
        .arg(clients_dir().join("semconv_names.py"))
        .args(&names)
        .output()
        .await
        .expect("python runs");
    assert!(output.status.success(), "{}", kit::venv::text(&output));
}
