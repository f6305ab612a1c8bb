//! The fault matrix: for each upstream (Agent Identity, MCP, DashScope), each of connection refused,
//! timeout, 5xx, 429 with and without a retry hint, 401/403, malformed body, stream cut mid-way and very
//! slow drip — over real sockets against the whole function. Every case ends with the documented final
//! event (docs/faults.md is this file as a table), within the deadline (a hang guard, not a timing
//! assertion), with the stand-in seeing its connection dropped, `/pre-stop` finding nothing in flight, and
//! the same function serving a normal turn right after.

mod common;
mod kit;

use std::time::Duration;

use common::Function;
use devstack::agent_identity::Fault as IdentityFault;
use devstack::mcp_server::Fault as McpFault;
use kit::{Reply, closed_port_url, completed, failed, process, process_with_deadline, request};
use serde_json::json;

/// How long a stand-in may take to notice the function let go of a request.
const LET_GO: Duration = Duration::from_secs(5);

/// After a fault: nothing in flight, and a normal tool turn on the same function completes.
async fn still_serves(f: &Function, user: &str) {
    kit::assert_drained(f).await;
    let reply = process(f, &[], &request(user, "Tell me the time in UTC")).await;
    assert_eq!(reply.ending(), completed(), "follow-up turn: {}", reply.text);
}

fn identity_attempts(f: &Function) -> usize {
    f.stack.identity.requests().len()
}

fn model_attempts(f: &Function) -> usize {
    f.stack.dashscope.request_count()
}

/// The failure message names the cause; checked loosely so wording can evolve.
fn message(reply: &Reply) -> String {
    reply.last_event()["error"]["message"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------- Agent Identity

#[tokio::test]
async fn identity_connection_refused_fails_with_identity_error() {
    let url = closed_port_url().await;
    let f = Function::start(&[("AGENT_IDENTITY_DATA_ENDPOINT", &url)]).await;
    let reply = process(&f, &[], &request("u-refused", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("identity_error"), "{}", reply.text);
    assert_eq!(model_attempts(&f), 0, "no model call without tools");
    kit::assert_drained(&f).await;
}

#[tokio::test]
async fn identity_timeout_ends_at_the_deadline_and_lets_go() {
    let f = Function::start(&[]).await;
    f.stack.identity.inject(IdentityFault::Hang);
    let reply = process_with_deadline(&f, &request("u-hang", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("deadline_exceeded"), "{}", reply.text);
    assert!(f.stack.identity.wait_abandoned(1, LET_GO).await, "the hung request was not dropped");
    still_serves(&f, "u-after-hang").await;
}

#[tokio::test]
async fn identity_slow_drip_ends_at_the_deadline_and_lets_go() {
    let f = Function::start(&[]).await;
    f.stack.identity.inject(IdentityFault::Drip);
    let reply = process_with_deadline(&f, &request("u-drip", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("deadline_exceeded"), "{}", reply.text);
    assert!(f.stack.identity.wait_abandoned(1, LET_GO).await, "the dripping response was not dropped");
    still_serves(&f, "u-after-drip").await;
}

#[tokio::test]
async fn identity_server_errors_are_retried_then_fail_with_identity_error() {
    let f = Function::start(&[]).await;
    for _ in 0..4 {
        f.stack.identity.inject(IdentityFault::ServerError);
    }
    let reply = process(&f, &[], &request("u-500", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("identity_error"), "{}", reply.text);
    assert!(message(&reply).contains("InternalError"), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 4, "four attempts in all");
    still_serves(&f, "u-after-500").await;
}

#[tokio::test]
async fn identity_one_unavailable_answer_is_retried_and_the_turn_completes() {
    let f = Function::start(&[]).await;
    f.stack.identity.inject(IdentityFault::ServiceUnavailable);
    let reply = process(&f, &[], &request("u-503", "Tell me the time")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 2);
}

#[tokio::test]
async fn identity_throttling_without_a_hint_is_retried_then_fails() {
    let f = Function::start(&[]).await;
    for _ in 0..4 {
        f.stack.identity.inject(IdentityFault::Throttling { retry_after_ms: None });
    }
    let reply = process(&f, &[], &request("u-429", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("identity_error"), "{}", reply.text);
    assert!(message(&reply).contains("Throttling.User"), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 4);
    still_serves(&f, "u-after-429").await;
}

#[tokio::test]
async fn identity_throttling_with_a_short_hint_waits_and_completes() {
    let f = Function::start(&[]).await;
    f.stack.identity.inject(IdentityFault::Throttling { retry_after_ms: Some(50) });
    let reply = process(&f, &[], &request("u-429-hint", "Tell me the time")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 2);
}

#[tokio::test]
async fn identity_throttling_with_a_hint_past_the_deadline_fails_at_once() {
    let f = Function::start(&[]).await;
    // An hour: waiting it out would outlive the function timeout, so the turn gives up instead of sleeping.
    f.stack.identity.inject(IdentityFault::Throttling { retry_after_ms: Some(3_600_000) });
    let reply = process_with_deadline(&f, &request("u-429-long", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("identity_error"), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 1, "no retry that cannot finish in time");
    still_serves(&f, "u-after-429-long").await;
}

#[tokio::test]
async fn identity_refusals_401_and_403_fail_without_retry() {
    let f = Function::start(&[]).await;
    for (status, code) in [(401, "InvalidAccessKeyId.Inactive"), (403, "Forbidden.RAM")] {
        let before = identity_attempts(&f);
        let fault = IdentityFault::Error { status, code: code.into(), message: "refused".into() };
        f.stack.identity.inject(fault);
        let reply = process(&f, &[], &request(&format!("u-{status}"), "Tell me the time")).await;
        assert_eq!(reply.ending(), failed("identity_error"), "{status}: {}", reply.text);
        assert!(message(&reply).contains(code), "{}", reply.text);
        assert_eq!(identity_attempts(&f) - before, 1, "{status} is not retried");
    }
    still_serves(&f, "u-after-refusals").await;
}

#[tokio::test]
async fn identity_malformed_and_cut_bodies_fail_with_identity_error() {
    let f = Function::start(&[]).await;
    for (name, fault) in [("malformed", IdentityFault::Malformed), ("cut", IdentityFault::Cut)] {
        let before = identity_attempts(&f);
        f.stack.identity.inject(fault);
        let reply = process(&f, &[], &request(&format!("u-{name}"), "Tell me the time")).await;
        assert_eq!(reply.ending(), failed("identity_error"), "{name}: {}", reply.text);
        assert_eq!(identity_attempts(&f) - before, 1, "{name} is not retried");
    }
    assert_eq!(model_attempts(&f), 0);
    still_serves(&f, "u-after-bad-bodies").await;
}

// ---------------------------------------------------------------- MCP

#[tokio::test]
async fn mcp_connection_refused_fails_with_tool_error() {
    let url = format!("{}/mcp", closed_port_url().await);
    let f = Function::start(&[("AI_GATEWAY_MCP_SERVER", &url)]).await;
    let reply = process(&f, &[], &request("u-mcp-refused", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("tool_error"), "{}", reply.text);
    assert_eq!(model_attempts(&f), 0, "the model is not called without the user's tools");
    kit::assert_drained(&f).await;
}

#[tokio::test]
async fn mcp_timeout_while_opening_ends_at_the_deadline_and_lets_go() {
    let f = Function::start(&[]).await;
    f.stack.mcp.inject("initialize", McpFault::Hang);
    let reply = process_with_deadline(&f, &request("u-mcp-hang", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("deadline_exceeded"), "{}", reply.text);
    wait_mcp_cancelled(&f, 1).await;
    still_serves(&f, "u-after-mcp-hang").await;
}

#[tokio::test]
async fn mcp_slow_drip_on_a_tool_call_ends_at_the_deadline_and_lets_go() {
    let f = Function::start(&[]).await;
    f.stack.mcp.inject("tools/call", McpFault::Drip);
    let reply = process_with_deadline(&f, &request("u-mcp-drip", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("deadline_exceeded"), "{}", reply.text);
    wait_mcp_cancelled(&f, 1).await;
    still_serves(&f, "u-after-mcp-drip").await;
}

#[tokio::test]
async fn mcp_tool_call_past_the_tool_timeout_is_reported_to_the_model() {
    let f = Function::start(&[("AGENT_TOOL_TIMEOUT_SECS", "1")]).await;
    f.stack.mcp.inject("tools/call", McpFault::Hang);
    let reply = process(&f, &[], &request("u-tool-timeout", "Tell me the time")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    let last = reply.last_event();
    let output = last["output"][1]["content"][0]["data"]["output"].as_str().unwrap_or_default();
    assert!(output.contains("timed out"), "the model saw the timeout: {last}");
    wait_mcp_cancelled(&f, 1).await;
    still_serves(&f, "u-after-tool-timeout").await;
}

#[tokio::test]
async fn mcp_server_errors_and_throttling_fail_with_tool_error_without_retry() {
    let f = Function::start(&[]).await;
    let cases = [
        ("initialize", 500, None),
        ("initialize", 503, None),
        ("initialize", 429, None),
        ("initialize", 429, Some(1)),
        ("tools/call", 502, None),
        ("tools/call", 429, Some(30)),
    ];
    for (method, status, retry_after) in cases {
        let before = f.stack.mcp.method_count(method);
        f.stack.mcp.inject(method, McpFault::Status { status, retry_after });
        let user = format!("u-mcp-{status}-{}", method.replace('/', "-"));
        let reply = process(&f, &[], &request(&user, "Tell me the time")).await;
        let case = format!("{method} {status} retry-after {retry_after:?}");
        assert_eq!(reply.ending(), failed("tool_error"), "{case}: {}", reply.text);
        assert!(message(&reply).contains(&status.to_string()), "{case}: {}", reply.text);
        assert_eq!(f.stack.mcp.method_count(method) - before, 1, "{case}: not retried");
    }
    still_serves(&f, "u-after-mcp-5xx").await;
}

#[tokio::test]
async fn mcp_one_401_gets_a_fresh_token_and_the_turn_completes() {
    let f = Function::start(&[]).await;
    f.stack.mcp.inject("initialize", McpFault::Status { status: 401, retry_after: None });
    let reply = process(&f, &[], &request("u-mcp-401-once", "Tell me the time")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 2, "the refused WAT was replaced once");
}

#[tokio::test]
async fn mcp_401_twice_or_403_on_the_listing_fails_with_tool_unauthorized() {
    let f = Function::start(&[]).await;
    for _ in 0..2 {
        f.stack.mcp.inject("initialize", McpFault::Status { status: 401, retry_after: None });
    }
    let reply = process(&f, &[], &request("u-mcp-401", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("tool_unauthorized"), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 2, "one refresh, then give up");

    f.stack.mcp.inject("tools/list", McpFault::Status { status: 403, retry_after: None });
    let reply = process(&f, &[], &request("u-mcp-403", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("tool_unauthorized"), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 3, "403 is not worth a new token");
    still_serves(&f, "u-after-mcp-auth").await;
}

#[tokio::test]
async fn mcp_403_on_a_tool_call_is_told_to_the_model_and_the_turn_completes() {
    let f = Function::start(&[]).await;
    f.stack.mcp.inject("tools/call", McpFault::Status { status: 403, retry_after: None });
    let before = f.stack.dashscope.request_count();
    let reply = process(&f, &[], &request("u-mcp-403-call", "Tell me the time")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(identity_attempts(&f), 1, "403 is not worth a new token");
    // The model's second request carries the refusal as the tool's result.
    let requests = f.stack.dashscope.requests();
    assert_eq!(requests.len() - before, 2, "{}", reply.text);
    let messages = requests.last().unwrap().body["messages"].as_array().unwrap().clone();
    let tool = messages.iter().find(|m| m["role"] == "tool").expect("a tool message");
    let content = tool["content"].as_str().unwrap();
    assert!(content.contains("denied this tool for this user (HTTP 403)"), "{content}");
    // The stream shows the call as an error output.
    assert!(reply.text.contains("denied this tool"), "{}", reply.text);
}

#[tokio::test]
async fn mcp_malformed_and_cut_answers_fail_with_tool_error() {
    let f = Function::start(&[]).await;
    for (method, name, fault) in
        [("tools/list", "malformed", McpFault::Malformed), ("tools/call", "cut", McpFault::Cut)]
    {
        let reply = process(&f, &[], &request(&format!("u-mcp-{name}"), "Tell me the time")).await;
        assert_eq!(reply.ending(), completed(), "warm-up before {name}: {}", reply.text);
        f.stack.mcp.inject(method, fault);
        let reply = process(&f, &[], &request(&format!("u-mcp-{name}-2"), "Tell me the time")).await;
        assert_eq!(reply.ending(), failed("tool_error"), "{name}: {}", reply.text);
    }
    still_serves(&f, "u-after-mcp-bodies").await;
}

async fn wait_mcp_cancelled(f: &Function, count: usize) {
    let waited = tokio::time::timeout(LET_GO, async {
        while f.stack.mcp.cancelled_count() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(waited.await.is_ok(), "the MCP stand-in never saw the request dropped");
}

// ---------------------------------------------------------------- DashScope

#[tokio::test]
async fn model_connection_refused_fails_with_model_error() {
    let base = format!("{}/compatible-mode/v1", closed_port_url().await);
    let f = Function::start(&[("DASHSCOPE_BASE_URL", &base)]).await;
    let reply = process(&f, &[], &request("u-model-refused", "Tell me the time")).await;
    assert_eq!(reply.ending(), failed("model_error"), "{}", reply.text);
    assert!(message(&reply).contains("unreachable"), "{}", reply.text);
    kit::assert_drained(&f).await;
}

#[tokio::test]
async fn model_timeout_and_slow_drip_end_at_the_deadline_and_let_go() {
    let f = Function::start(&[]).await;
    for (n, fault) in ["hang", "drip"].into_iter().enumerate() {
        let reply =
            process_with_deadline(&f, &request("u-model-slow", &format!("Tell me a story [fault:{fault}]"))).await;
        assert_eq!(reply.ending(), failed("deadline_exceeded"), "{fault}: {}", reply.text);
        assert!(f.stack.dashscope.wait_cancelled(n + 1, LET_GO).await, "{fault}: the model call was not dropped");
        if fault == "drip" {
            let text = reply.last_event()["output"][0]["content"][0]["text"].as_str().unwrap_or_default().to_owned();
            assert!(text.starts_with("A very slow answer"), "what streamed before the deadline stays: {text:?}");
        }
    }
    still_serves(&f, "u-after-model-slow").await;
}

#[tokio::test]
async fn model_server_errors_are_retried_twice_then_fail_with_model_error() {
    let f = Function::start(&[]).await;
    for fault in ["500", "503"] {
        let before = model_attempts(&f);
        let reply = process(&f, &[], &request("u-model-5xx", &format!("Tell me the time [fault:{fault}]"))).await;
        assert_eq!(reply.ending(), failed("model_error"), "{fault}: {}", reply.text);
        assert_eq!(model_attempts(&f) - before, 3, "{fault}: one call and two retries");
    }
    let before = model_attempts(&f);
    let reply = process(&f, &[], &request("u-model-5xx", "Tell me a joke [fault:500-once] no tools")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(model_attempts(&f) - before, 2);
    still_serves(&f, "u-after-model-5xx").await;
}

#[tokio::test]
async fn model_throttling_is_retried_twice_then_fails() {
    let f = Function::start(&[]).await;
    let before = model_attempts(&f);
    let reply = process(&f, &[], &request("u-model-429", "Tell me the time [fault:429]")).await;
    assert_eq!(reply.ending(), failed("model_throttled"), "{}", reply.text);
    assert_eq!(model_attempts(&f) - before, 3, "one call and two retries");
    let before = model_attempts(&f);
    let reply = process(&f, &[], &request("u-model-429", "Tell me the time [fault:quota]")).await;
    assert_eq!(reply.ending(), failed("model_throttled"), "{}", reply.text);
    assert_eq!(model_attempts(&f) - before, 1, "an exhausted quota is not retried");
    let before = model_attempts(&f);
    let reply = process(&f, &[], &request("u-model-429", "Tell me a joke [fault:429-once] no tools")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    assert_eq!(model_attempts(&f) - before, 2);
    still_serves(&f, "u-after-model-429").await;
}

#[tokio::test]
async fn model_retry_after_is_waited_out_when_short_and_refused_when_long() {
    let f = Function::start(&[]).await;
    // `Retry-After: 1`: the retry comes no sooner than the hint (our own first backoff is 100–300 ms).
    let before = model_attempts(&f);
    let reply =
        process(&f, &[], &request("u-model-hint", "Tell me a joke [fault:429-retry-after-1-once] no tools")).await;
    assert_eq!(reply.ending(), completed(), "{}", reply.text);
    let arrivals: Vec<_> = f.stack.dashscope.requests()[before..].iter().map(|r| r.arrived).collect();
    assert_eq!(arrivals.len(), 2, "one 429, one retry");
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_secs(1),
        "retried before the hint: {:?}",
        arrivals[1] - arrivals[0]
    );
    // `Retry-After: 30` is more than a turn waits (10 s): it fails at once and says why.
    let before = model_attempts(&f);
    let reply = process(&f, &[], &request("u-model-hint", "Tell me the time [fault:429-retry-after]")).await;
    assert_eq!(reply.ending(), failed("model_throttled"), "{}", reply.text);
    assert!(message(&reply).contains("retry after 30 s"), "{}", reply.text);
    assert_eq!(model_attempts(&f) - before, 1, "no retry the service asked not to make that soon");
    still_serves(&f, "u-after-model-hint").await;
}

#[tokio::test]
async fn model_refusals_401_and_403_fail_with_model_unauthorized_without_retry() {
    let f = Function::start(&[]).await;
    for fault in ["401", "403"] {
        let before = model_attempts(&f);
        let reply = process(&f, &[], &request("u-model-auth", &format!("Tell me the time [fault:{fault}]"))).await;
        assert_eq!(reply.ending(), failed("model_unauthorized"), "{fault}: {}", reply.text);
        assert_eq!(model_attempts(&f) - before, 1, "{fault}: not retried");
    }
    still_serves(&f, "u-after-model-auth").await;
}

#[tokio::test]
async fn model_malformed_and_cut_streams_fail_with_model_error_after_the_partial_text() {
    let f = Function::start(&[]).await;
    for (fault, partial) in [("malformed", "Hmm"), ("cut", "Partial answer"), ("eof", "Partial answer")] {
        let before = model_attempts(&f);
        let reply = process(&f, &[], &request("u-model-bad", &format!("Tell me the time [fault:{fault}]"))).await;
        assert_eq!(reply.ending(), failed("model_error"), "{fault}: {}", reply.text);
        assert!(reply.text.contains(partial), "{fault}: the partial text streamed first: {}", reply.text);
        assert_eq!(model_attempts(&f) - before, 1, "{fault}: nothing is retried once streaming began");
    }
    still_serves(&f, "u-after-model-bad").await;
}

// ---------------------------------------------------------------- the other answer shapes

#[tokio::test]
async fn faults_reach_event_invocations_and_single_json_answers_with_the_same_codes() {
    let f = Function::start(&[]).await;
    let cases = [
        ("Tell me the time [fault:401]", "model_unauthorized"),
        ("Tell me the time [fault:cut]", "model_error"),
        ("Tell me the time", "identity_error"),
    ];
    let refuse_next_token = || {
        let fault = IdentityFault::Error { status: 403, code: "Forbidden.RAM".into(), message: "denied".into() };
        f.stack.identity.inject(fault);
    };
    for (n, (text, code)) in cases.into_iter().enumerate() {
        let identity_fault = code == "identity_error";
        if identity_fault {
            refuse_next_token();
        }
        let mut body = request(&format!("u-shape-{n}"), text);
        let event = kit::invoke(&f, &body).await;
        assert_eq!((event.status, event.header("x-fc-status")), (404, Some("404")), "{text}: {}", event.text);
        assert_eq!(event.json()["error"]["code"], code, "{text}: {}", event.text);

        if identity_fault {
            refuse_next_token();
        }
        body["stream"] = json!(false);
        body["user_id"] = json!(format!("u-shape-json-{n}"));
        let single = process(&f, &[], &body).await;
        assert_eq!(single.status, 200, "{}", single.text);
        assert_eq!(kit::ending(&single.json()), failed(code), "{text}: {}", single.text);
    }
    still_serves(&f, "u-after-shapes").await;
}
