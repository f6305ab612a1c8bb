//! Event invocations (`POST /invoke`, `x-fc-control-path: /invoke`) end to end over real sockets: real
//! trigger payloads, timer events, who the user is, and how a failed turn is reported to FC.

mod common;

use common::{Answer, Function, identity_calls, params};
use serde_json::{Value, json};

const EVENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fc3/events");
const INSTRUCTION: &str = "EVENT-INSTRUCTION-SENTINEL: summarise this event.";

/// The final response of a successful event invocation, after checking how FC is told it succeeded.
fn completed(answer: &Answer, request_id: &str) -> Value {
    assert_eq!(answer.status, 200, "{request_id}: {}", answer.text);
    assert_eq!(answer.header("x-fc-status"), Some("200"), "{request_id}");
    assert_eq!(answer.header("content-type"), Some("application/json"), "{request_id}");
    let body = answer.json();
    assert_eq!(body["object"], "response", "{request_id}: {body}");
    assert_eq!(body["status"], "completed", "{request_id}: {body}");
    assert_eq!(body["error"], Value::Null, "{request_id}: {body}");
    assert!(body["output"].as_array().is_some_and(|o| !o.is_empty()), "{request_id}: {body}");
    body
}

/// The text of the last user message in the `index`th model request.
fn user_message_sent(f: &Function, index: usize) -> String {
    let requests = f.stack.dashscope.requests();
    let messages = requests[index].body["messages"].as_array().unwrap().clone();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    match &user["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        other => panic!("unexpected content {other}"),
    }
}

fn timer(payload: &str) -> String {
    json!({"triggerTime": "2025-01-01T00:00:00Z", "triggerName": "every-hour", "payload": payload}).to_string()
}

#[tokio::test]
async fn every_real_trigger_payload_runs_a_turn_with_the_instruction() {
    let f = Function::start(&[("AGENT_EVENT_INSTRUCTION", INSTRUCTION)]).await;
    let mut files: Vec<_> = std::fs::read_dir(EVENTS_DIR).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10, "the fc3 event samples are missing: {files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let request_id = format!("req-{name}");
        let model_calls_before = f.stack.dashscope.request_count();
        let answer = f.invoke(&request_id, std::fs::read(&file).unwrap()).await;
        let body = completed(&answer, &request_id);
        assert_eq!(body["session_id"], request_id.as_str(), "the session is the FC request id");
        let sent = user_message_sent(&f, model_calls_before);
        assert!(sent.starts_with(INSTRUCTION), "{name}: the instruction did not lead the message: {sent:?}");
        assert!(!sent.contains("ACS3-HMAC-SHA256"), "{name}: a trigger's Authorization reached the model");
    }
    // Nobody is named in these events: the agent's own token, fetched once and reused.
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessToken".into(), params(&[]))]);
}

#[tokio::test]
async fn timer_payload_as_text_is_the_message() {
    let f = Function::start(&[("AGENT_EVENT_INSTRUCTION", INSTRUCTION)]).await;
    let answer = f.invoke("req-timer-text", timer("What time is it in UTC?")).await;
    let body = completed(&answer, "req-timer-text");
    assert_eq!(body["session_id"], "req-timer-text");
    let types: Vec<&str> = body["output"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["plugin_call", "plugin_call_output", "message"], "{body}");
    assert_eq!(user_message_sent(&f, 0), "What time is it in UTC?");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessToken".into(), params(&[]))]);
}

#[tokio::test]
async fn timer_payload_as_an_agent_request_acts_for_its_user() {
    let f = Function::start(&[]).await;
    let request = json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": "Tell me the time in UTC"}]}], "user_id": "u9"});
    let answer = f.invoke("req-timer-request", timer(&request.to_string())).await;
    let body = completed(&answer, "req-timer-request");
    assert_eq!(body["session_id"], "req-timer-request");
    assert_eq!(user_message_sent(&f, 0), "Tell me the time in UTC");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "u9")]))]);
}

#[tokio::test]
async fn an_agent_request_body_answers_json_even_when_it_asks_to_stream() {
    let f = Function::start(&[]).await;
    let request = json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": "Tell me the time in UTC"}]}], "user_id": "u7", "stream": true});
    let answer = f.invoke("req-direct", request.to_string()).await;
    let body = completed(&answer, "req-direct");
    assert_eq!(body["session_id"], "req-direct");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "u7")]))]);

    // Without a user the agent acts as itself.
    let request = json!({"input": [{"role": "user", "type": "message",
        "content": [{"type": "text", "text": "Tell me the time in UTC"}]}], "session_id": "kept"});
    let body = completed(&f.invoke("req-agent", request.to_string()).await, "req-agent");
    assert_eq!(body["session_id"], "kept", "a session the request names is kept");
    assert_eq!(identity_calls(&f)[1..], [("GetWorkloadAccessToken".into(), params(&[]))]);
}

#[tokio::test]
async fn a_failed_turn_is_reported_to_fc_as_a_failed_invocation() {
    let f = Function::start(&[]).await;
    let answer = f.invoke("req-fault", timer("Tell me the time [fault:500]")).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(answer.header("x-fc-status"), Some("404"));
    assert_eq!(answer.error_code(), "model_error");
    let body = answer.json();
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["error"], "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn an_invalid_agent_request_is_a_failed_invocation() {
    let f = Function::start(&[]).await;
    let answer = f.invoke("req-invalid", r#"{"input":[]}"#).await;
    assert_eq!((answer.status, answer.header("x-fc-status")), (404, Some("404")), "{}", answer.text);
    assert_eq!(answer.error_code(), "invalid_request");
    assert_eq!(f.stack.dashscope.request_count(), 0);
}

#[tokio::test]
async fn an_event_over_max_request_bytes_is_refused() {
    let f = Function::start(&[("MAX_REQUEST_BYTES", "4096")]).await;
    let answer = f.invoke("req-big", timer(&"x".repeat(8192))).await;
    assert_eq!((answer.status, answer.header("x-fc-status")), (404, Some("404")), "{}", answer.text);
    assert_eq!(answer.error_code(), "payload_too_large");
    assert_eq!(f.stack.dashscope.request_count(), 0);
}
