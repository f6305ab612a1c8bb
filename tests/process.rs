//! POST /process end to end over real sockets against the stand-ins: turns, conversation memory, identity
//! sources, errors before and after the stream starts, cancellation, credentials.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::json_order::shape;
use common::{Answer, Function, identity_calls, params, user_request};
use devstack::Stack;
use devstack::agent_identity::StandInOptions as Keys;
use devstack::mcp_server::{McpStandIn, StandInOptions as McpOptions};
use serde_json::{Value, json};

const NO_MCP: (&str, &str) = ("AI_GATEWAY_MCP_SERVER", "");
const NO_ENV_CREDENTIALS: [(&str, &str); 3] = [
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
    ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
    ("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
];

/// The final event, after checking the stream is well formed: an SSE answer whose events number 0..n.
fn final_response(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("text/event-stream; charset=utf-8"));
    let events = answer.events();
    let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>(), "{}", answer.text);
    let last = events.last().unwrap().clone();
    assert_eq!(last["object"], "response", "{last}");
    let terminal = events.iter().filter(|e| e["object"] == "response" && e["status"] != "in_progress");
    assert_eq!(terminal.count(), 2, "exactly `created` and one end: {}", answer.text);
    last
}

/// `(status, error code)` of the final response.
fn ending(last: &Value) -> (String, Option<String>) {
    (last["status"].as_str().unwrap().to_owned(), last["error"]["code"].as_str().map(str::to_owned))
}

fn output_types(last: &Value) -> Vec<String> {
    last["output"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap().to_owned()).collect()
}

/// A JWT the Agent Identity stand-in reads (it checks claims, not the signature).
fn jwt(sub: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let claims = b64(json!({"sub": sub, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn tool_turn_streams_and_completes_with_the_tool_output() {
    let f = Function::start(&[]).await;
    let answer = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    assert_eq!(answer.header("cache-control"), Some("no-cache"));
    let last = final_response(&answer);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(last["session_id"], "s1");
    assert_eq!(output_types(&last), ["plugin_call", "plugin_call_output", "message"], "{last}");
    let output = last["output"].as_array().unwrap();
    let tool_output = output[1]["content"][0]["data"]["output"].as_str().unwrap();
    let answer_text = output[2]["content"][0]["text"].as_str().unwrap();
    let tool_text: Value = serde_json::from_str(tool_output).unwrap();
    assert!(answer_text.contains(tool_text[0]["text"].as_str().unwrap()), "{answer_text:?} lacks {tool_output}");
    let usage = &last["usage"];
    assert!(usage["total_tokens"].as_u64().unwrap() > 0, "{usage}");
    // The stand-in's WAT for u1 was used, and the model was offered the MCP tools.
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "u1")]))]);
    let first_model_call = &f.stack.dashscope.requests()[0].body;
    assert!(first_model_call["tools"].as_array().is_some_and(|t| !t.is_empty()), "{first_model_call}");
}

#[tokio::test]
async fn plain_turn_without_mcp_calls_no_agent_identity() {
    let f = Function::start(&[NO_MCP]).await;
    let last = final_response(&f.post_process(&[], &user_request("Tell me a joke")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(output_types(&last), ["message"]);
    assert!(last["output"][0]["content"][0]["text"].as_str().unwrap().contains("Tell me a joke"));
    assert_eq!(identity_calls(&f), [], "no tools, so no token is needed");
    assert_eq!(f.stack.mcp.request_count(), 0);
    let model_call = &f.stack.dashscope.requests()[0].body;
    assert!(model_call["tools"].as_array().is_none_or(Vec::is_empty), "{model_call}");
}

#[tokio::test]
async fn earlier_turns_in_input_reach_the_model_without_reasoning() {
    let f = Function::start(&[("DASHSCOPE_ENABLE_THINKING", "true")]).await;
    let first = final_response(&f.post_process(&[], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&first), ("completed".into(), None), "{first}");
    let types = output_types(&first);
    assert_eq!(types.iter().filter(|t| *t == "reasoning").count(), 2, "{types:?}");
    let earlier_calls = f.stack.dashscope.request_count();

    let output = first["output"].as_array().unwrap();
    let call = &output.iter().find(|m| m["type"] == "plugin_call").unwrap()["content"][0]["data"];
    let result = &output.iter().find(|m| m["type"] == "plugin_call_output").unwrap()["content"][0]["data"];
    let answer = output.iter().find(|m| m["type"] == "message").unwrap()["content"][0]["text"].clone();
    let mut input = user_request("Tell me the time in UTC")["input"].as_array().unwrap().clone();
    input.extend(output.iter().cloned());
    input.push(
        json!({"role": "user", "type": "message", "content": [{"type": "text", "text": "Now no tools, thanks"}]}),
    );
    let second = final_response(&f.post_process(&[], &json!({"input": input, "user_id": "u1"})).await);
    assert_eq!(ending(&second), ("completed".into(), None), "{second}");

    let requests = f.stack.dashscope.requests();
    let messages = requests[earlier_calls].body["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant", "user"], "{messages:?}");
    assert_eq!(text_of(&messages[1]["content"]), "Tell me the time in UTC");
    let tool_calls = messages[2]["tool_calls"].as_array().unwrap();
    assert_eq!(tool_calls.len(), 1, "{messages:?}");
    assert_eq!(tool_calls[0]["id"], call["call_id"]);
    assert_eq!(tool_calls[0]["function"]["name"], call["name"]);
    assert_eq!(tool_calls[0]["function"]["arguments"], call["arguments"]);
    assert_eq!(messages[3]["tool_call_id"], call["call_id"]);
    assert_eq!(text_of(&messages[3]["content"]), result["output"].as_str().unwrap());
    assert_eq!(text_of(&messages[4]["content"]), answer.as_str().unwrap());
    assert_eq!(text_of(&messages[5]["content"]), "Now no tools, thanks");
    let sent = serde_json::to_string(&messages).unwrap();
    assert!(!sent.contains("step by step"), "reasoning must be dropped: {sent}");
}

#[tokio::test]
async fn stream_false_answers_the_final_response_as_one_json_body() {
    let f = Function::start(&[]).await;
    let streamed = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    let streamed_last = streamed.text.trim_end().rsplit("\n\n").next().unwrap().strip_prefix("data: ").unwrap();
    let mut request = user_request("Tell me the time in UTC");
    request["stream"] = json!(false);
    let single = f.post_process(&[], &request).await;
    assert_eq!(single.status, 200, "{}", single.text);
    assert_eq!(single.header("content-type"), Some("application/json"));
    let body = single.json();
    assert_eq!(ending(&body), ("completed".into(), None), "{body}");
    assert_eq!(output_types(&body), ["plugin_call", "plugin_call_output", "message"]);
    assert_eq!(shape(&single.text), shape(streamed_last));
    assert_eq!(body["sequence_number"], serde_json::from_str::<Value>(streamed_last).unwrap()["sequence_number"]);
}

#[tokio::test]
async fn auto_source_uses_the_bearer_jwt() {
    let f = Function::start(&[]).await;
    let token = jwt("alice");
    let bearer = format!("Bearer {token}");
    let last =
        final_response(&f.post_process(&[("authorization", &bearer)], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForJWT".into(), params(&[("UserToken", &token)]))]);
    let minted = f.stack.identity.issued_tokens();
    assert_eq!(minted.iter().map(|t| f.stack.identity.subject_of(t).unwrap()).collect::<Vec<_>>(), ["alice"]);
}

#[tokio::test]
async fn auto_source_without_a_bearer_uses_user_id_then_session_id() {
    let f = Function::start(&[]).await;
    let last = final_response(&f.post_process(&[], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    let mut session_only = user_request("Tell me the time in UTC");
    session_only.as_object_mut().unwrap().remove("user_id");
    session_only["session_id"] = json!("s-only");
    let last = final_response(&f.post_process(&[], &session_only).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(
        identity_calls(&f),
        [
            ("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "u1")])),
            ("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "s-only")])),
        ]
    );
}

#[tokio::test]
async fn jwt_source_refuses_a_request_without_a_bearer_before_any_stream() {
    let f = Function::start(&[("AGENT_IDENTITY_USER_SOURCE", "jwt")]).await;
    let refused = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.error_code(), "unauthenticated");
    assert_eq!(identity_calls(&f), []);
    assert_eq!(f.stack.dashscope.request_count(), 0);

    let token = jwt("bob");
    let bearer = format!("Bearer {token}");
    let last =
        final_response(&f.post_process(&[("authorization", &bearer)], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForJWT".into(), params(&[("UserToken", &token)]))]);
}

#[tokio::test]
async fn body_source_ignores_the_bearer() {
    let f = Function::start(&[("AGENT_IDENTITY_USER_SOURCE", "body")]).await;
    let bearer = format!("Bearer {}", jwt("mallory"));
    let last =
        final_response(&f.post_process(&[("authorization", &bearer)], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "u1")]))]);
}

#[tokio::test]
async fn header_source_reads_the_named_header() {
    let f = Function::start(&[("AGENT_IDENTITY_USER_SOURCE", "header:x-user-id")]).await;
    let last =
        final_response(&f.post_process(&[("x-user-id", "carol")], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(identity_calls(&f), [("GetWorkloadAccessTokenForUserId".into(), params(&[("UserId", "carol")]))]);
    let refused = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.error_code(), "unauthenticated");
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_upstream_call() {
    let f =
        Function::start(&[("MAX_REQUEST_BYTES", "2048"), ("DASHSCOPE_ALLOWED_MODELS", "qwen-plus,qwen-turbo")]).await;
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        ("POST", "/process", "{not json".into(), 400, "invalid_request", "JSON"),
        ("POST", "/process", r#"{"session_id":"s1","user_id":"u1"}"#.into(), 400, "invalid_request", "input"),
        ("POST", "/process", r#"{"input":[],"user_id":"u1"}"#.into(), 400, "invalid_request", "input"),
        ("POST", "/process", r#"{"input":"hi","user_id":"u1"}"#.into(), 400, "invalid_request", "input"),
        (
            "POST",
            "/process",
            user_request(&"x".repeat(4096)).to_string(),
            413,
            "payload_too_large",
            "MAX_REQUEST_BYTES",
        ),
        ("GET", "/process", String::new(), 405, "method_not_allowed", "POST"),
        ("POST", "/no-such-path", user_request("hi").to_string(), 404, "not_found", "/no-such-path"),
    ];
    let mut wrong_model = user_request("hi");
    wrong_model["model"] = json!("qwen-max-latest");
    let mut cases = cases;
    cases.push(("POST", "/process", wrong_model.to_string(), 400, "invalid_request", "model"));
    for (method, path, body, status, code, names) in cases {
        let answer = f.send(method, path, &[], body).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text);
        assert_eq!(answer.error_code(), code, "{method} {path}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(names), "{method} {path}: {message:?} should name {names:?}");
        if status == 405 {
            assert_eq!(answer.header("allow"), Some("POST"));
        }
    }
    assert_eq!(identity_calls(&f), []);
    assert_eq!(f.stack.dashscope.request_count(), 0);
    assert_eq!(f.stack.mcp.request_count(), 0);
}

#[tokio::test]
async fn a_model_is_refused_unless_allowed() {
    let f = Function::start(&[]).await;
    let mut request = user_request("hi");
    request["model"] = json!("qwen-plus");
    let refused = f.post_process(&[], &request).await;
    assert_eq!((refused.status, refused.error_code()), (400, "invalid_request".into()), "{}", refused.text);
    assert_eq!(f.stack.dashscope.request_count(), 0);
}

#[tokio::test]
async fn an_allowed_model_and_sampling_fields_pass_through() {
    let f = Function::start(&[NO_MCP, ("DASHSCOPE_ALLOWED_MODELS", "qwen-plus, qwen-turbo")]).await;
    let mut request = user_request("hi");
    request["model"] = json!("qwen-plus");
    request["temperature"] = json!(0.25);
    request["max_tokens"] = json!(64);
    let last = final_response(&f.post_process(&[], &request).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    let sent = &f.stack.dashscope.requests()[0].body;
    assert_eq!(
        (&sent["model"], &sent["temperature"], &sent["max_tokens"]),
        (&json!("qwen-plus"), &json!(0.25), &json!(64))
    );
    let default = final_response(&f.post_process(&[], &user_request("hi again")).await);
    assert_eq!(ending(&default).0, "completed");
    assert_eq!(f.stack.dashscope.requests()[1].body["model"], "qwen-max", "DASHSCOPE_MODEL's default otherwise");
}

#[tokio::test]
async fn model_throttling_and_server_errors_fail_the_turn() {
    let f = Function::start(&[]).await;
    let faults = [
        ("[fault:429]", "model_throttled"),
        ("[fault:500]", "model_error"),
        ("[fault:401]", "model_unauthorized"),
        ("[fault:filter]", "content_filtered"),
        ("[fault:midstream-error]", "model_error"),
    ];
    for (fault, code) in faults {
        let answer = f.post_process(&[], &user_request(&format!("Tell me the time {fault}"))).await;
        let last = final_response(&answer);
        assert_eq!(ending(&last), ("failed".into(), Some(code.into())), "{fault}: {last}");
        let message = last["error"]["message"].as_str().unwrap();
        assert!(message.contains("(request_id standin-"), "{fault}: the upstream request id is named: {message:?}");
        assert!(!answer.text.contains(r#""object":"response","status":"completed""#), "{fault}: never completed");
    }
}

#[tokio::test]
async fn an_mcp_server_refusing_the_token_fails_with_tool_unauthorized() {
    let mut stack = Stack::start().await.unwrap();
    stack.mcp = McpStandIn::start(McpOptions::new(|_| false)).await.unwrap();
    let f = Function::with_stack(stack, &[]).await;
    let last = final_response(&f.post_process(&[], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("failed".into(), Some("tool_unauthorized".into())), "{last}");
    // The refused token is dropped and a fresh one fetched once, before giving up.
    let fetch = ("GetWorkloadAccessTokenForUserId".to_owned(), params(&[("UserId", "u1")]));
    assert_eq!(identity_calls(&f), [fetch.clone(), fetch]);
    let message = last["error"]["message"].as_str().unwrap();
    for token in f.stack.identity.issued_tokens() {
        assert!(!message.contains(&token), "the WAT leaked into {message:?}");
    }
}

#[tokio::test]
async fn the_function_timeout_ends_the_turn_with_deadline_exceeded() {
    let f = Function::start(&[]).await;
    let timeout = [("x-fc-function-timeout", "1")];
    let streaming = user_request("Tell me the time in UTC [fault:slow]");
    let mut single = streaming.clone();
    single["stream"] = json!(false);
    // Another session: one turn per session at a time.
    single["session_id"] = json!("s2");
    let (streamed, single) = tokio::join!(f.post_process(&timeout, &streaming), f.post_process(&timeout, &single));
    let last = final_response(&streamed);
    assert_eq!(ending(&last), ("failed".into(), Some("deadline_exceeded".into())), "{last}");
    assert_eq!(single.status, 200, "{}", single.text);
    assert_eq!(ending(&single.json()), ("failed".into(), Some("deadline_exceeded".into())), "{}", single.text);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_cancels_the_model_call() {
    let f = Function::start(&[NO_MCP]).await;
    let mut response = Function::client()
        .post(f.url("/process"))
        .body(user_request("Tell me a long story [fault:slow]").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The first message event exists only once the model has started answering.
    let mut seen = String::new();
    while !seen.contains(r#""object":"message""#) {
        let chunk = response.chunk().await.unwrap().expect("stream ended before the model answered");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    assert!(f.stack.dashscope.wait_cancelled(1, Duration::from_secs(10)).await, "the model stream was not abandoned");
    assert!(f.stack.dashscope.requests()[0].cancelled);
}

#[tokio::test]
async fn any_content_type_or_none_is_accepted() {
    let f = Function::start(&[NO_MCP]).await;
    for content_type in [None, Some("text/plain"), Some("application/json")] {
        let headers: Vec<(&str, &str)> = content_type.map(|c| ("content-type", c)).into_iter().collect();
        let last = final_response(&f.post_process(&headers, &user_request("hi")).await);
        assert_eq!(ending(&last), ("completed".into(), None), "{content_type:?}: {last}");
    }
}

#[tokio::test]
async fn no_credentials_anywhere_fails_with_credentials_missing() {
    let f = Function::start(&NO_ENV_CREDENTIALS).await;
    let last = final_response(&f.post_process(&[], &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("failed".into(), Some("credentials_missing".into())), "{last}");
    assert_eq!(identity_calls(&f), []);
    assert_eq!(f.stack.dashscope.request_count(), 0);
}

#[tokio::test]
async fn fc_credential_headers_take_precedence_over_the_environment() {
    let f = Function::start(&[]).await;
    let headers = [("x-fc-access-key-id", Keys::AK_ID), ("x-fc-access-key-secret", Keys::AK_SECRET)];
    let last = final_response(&f.post_process(&headers, &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    let signed: Vec<_> =
        f.stack.identity.requests().into_iter().map(|r| (r.access_key_id, r.security_token_sent)).collect();
    assert_eq!(signed, [(Some(Keys::AK_ID.to_owned()), false)]);

    // And FC's headers alone are enough.
    let g = Function::start(&NO_ENV_CREDENTIALS).await;
    let headers = [
        ("x-fc-access-key-id", Keys::STS_ID),
        ("x-fc-access-key-secret", Keys::STS_SECRET),
        ("x-fc-security-token", Keys::STS_TOKEN),
    ];
    let last = final_response(&g.post_process(&headers, &user_request("Tell me the time in UTC")).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    let signed: Vec<_> =
        g.stack.identity.requests().into_iter().map(|r| (r.access_key_id, r.security_token_sent)).collect();
    assert_eq!(signed, [(Some(Keys::STS_ID.to_owned()), true)]);
}

#[tokio::test]
async fn a_client_that_leaves_a_non_streaming_request_cancels_the_model_call() {
    let f = Function::start(&[NO_MCP]).await;
    let mut request = user_request("Tell me a long story [fault:slow]");
    request["stream"] = json!(false);
    let url = f.url("/process");
    let pending = tokio::spawn(async move { Function::client().post(url).body(request.to_string()).send().await });
    while f.stack.dashscope.request_count() == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pending.abort();
    assert!(f.stack.dashscope.wait_cancelled(1, Duration::from_secs(10)).await, "the model stream was not abandoned");
}

#[tokio::test]
async fn the_iteration_bound_ends_the_turn_incomplete() {
    let f = Function::start(&[("AGENT_MAX_ITERS", "2")]).await;
    let last = final_response(&f.post_process(&[], &user_request("What time is it? loop forever")).await);
    assert_eq!(ending(&last), ("incomplete".into(), Some("max_iterations".into())), "{last}");
    assert_eq!(f.stack.dashscope.request_count(), 2);
    assert_eq!(output_types(&last), ["plugin_call", "plugin_call_output", "plugin_call", "plugin_call_output"]);
}

#[tokio::test]
async fn a_jwt_agent_identity_refuses_fails_with_identity_error_without_echoing_it() {
    let f = Function::start(&[]).await;
    let token = "not-a-jwt-SENTINEL";
    let bearer = format!("Bearer {token}");
    let answer = f.post_process(&[("authorization", &bearer)], &user_request("Tell me the time in UTC")).await;
    let last = final_response(&answer);
    assert_eq!(ending(&last), ("failed".into(), Some("identity_error".into())), "{last}");
    let message = last["error"]["message"].as_str().unwrap();
    assert!(message.contains("InvalidParameter.UserToken"), "the upstream code is named: {message:?}");
    assert!(!answer.text.contains("SENTINEL"), "the JWT leaked: {}", answer.text);
    assert_eq!(f.stack.dashscope.request_count(), 0);
}

#[tokio::test]
async fn no_secret_reaches_the_stream() {
    let f = Function::start(&[]).await;
    let answer = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    assert_eq!(ending(&final_response(&answer)).0, "completed");
    let mut secrets = vec![devstack::DASHSCOPE_KEY.to_owned(), Keys::STS_SECRET.to_owned(), Keys::STS_TOKEN.to_owned()];
    secrets.extend(f.stack.identity.issued_tokens());
    assert_eq!(secrets.len(), 4, "one WAT was minted");
    for secret in secrets {
        assert!(!answer.text.contains(&secret), "a secret reached the client");
    }
}

#[tokio::test]
async fn an_anonymous_caller_needs_no_user_id_when_no_tools_are_configured() {
    let anonymous = json!({"input": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
    let f = Function::start(&[NO_MCP]).await;
    let last = final_response(&f.post_process(&[], &anonymous).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
    assert_eq!(last["session_id"], Value::Null);
    assert_eq!(identity_calls(&f), []);

    // With tools a user is needed for the token: refused before any stream, naming the field.
    let g = Function::start(&[]).await;
    let refused = g.post_process(&[], &anonymous).await;
    assert_eq!((refused.status, refused.error_code()), (400, "invalid_request".into()), "{}", refused.text);
    assert!(refused.text.contains("user_id"), "{}", refused.text);
}

#[tokio::test]
async fn health_index_and_a_trailing_slash() {
    let f = Function::start(&[NO_MCP, ("AGENT_NAME", "Jarvis")]).await;
    let health = f.send("GET", "/health", &[], "").await;
    assert_eq!((health.status, health.json()), (200, json!({"status": "healthy", "runner": "ready"})));
    let index = f.send("GET", "/", &[], "").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.json()["endpoints"]["process"], "POST /process");
    assert_eq!(index.json()["agent"], "Jarvis", "the index names the agent (AGENT_NAME)");
    let wrong = f.send("POST", "/health", &[], "").await;
    assert_eq!(
        (wrong.status, wrong.error_code(), wrong.header("allow")),
        (405, "method_not_allowed".into(), Some("GET"))
    );
    let last = final_response(&f.send("POST", "/process/", &[], user_request("hi").to_string()).await);
    assert_eq!(ending(&last), ("completed".into(), None), "{last}");
}
