//! The MCP gateway boundary through the function's own faces: a returning user's tool turn costs one MCP
//! request, a turn without a tool none, and a tool the gateway's policy denies is a failed call the model
//! explains while the turn completes, on every face that shows tool calls.

mod common;

use common::Function;
use serde_json::{Value, json};

fn process_body(user: &str, text: &str) -> Value {
    json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "session_id": format!("s-{user}"),
        "user_id": user,
    })
}

fn status_of_last(events: &[Value]) -> &str {
    events.last().and_then(|e| e["status"].as_str()).unwrap_or_default()
}

#[tokio::test]
async fn a_returning_users_tool_turn_sends_one_mcp_request_and_a_plain_turn_none() {
    let f = Function::start(&[]).await;
    let mcp = &f.stack.mcp;

    let events = f.process(&process_body("u-warm", "Tell me the time")).await;
    assert_eq!(status_of_last(&events), "completed");
    assert_eq!(mcp.methods(), ["initialize", "notifications/initialized", "tools/list", "tools/call"]);

    let mark = mcp.request_count();
    let events = f.process(&process_body("u-warm", "Tell me the time again")).await;
    assert_eq!(status_of_last(&events), "completed");
    assert_eq!(mcp.methods()[mark..], ["tools/call"]);

    let mark = mcp.request_count();
    let events = f.process(&process_body("u-warm", "Just say hi, no tools")).await;
    assert_eq!(status_of_last(&events), "completed");
    assert_eq!(mcp.methods()[mark..], [] as [&str; 0]);

    // Another user is never served from the first one's connection.
    let mark = mcp.request_count();
    f.process(&process_body("u-other", "Tell me the time")).await;
    assert_eq!(mcp.methods()[mark..], ["initialize", "notifications/initialized", "tools/list", "tools/call"]);
}

#[tokio::test]
async fn a_denied_tool_is_a_failed_call_on_every_face_and_the_turn_completes() {
    let f = Function::start(&[]).await;
    f.stack.mcp.deny_tool("getutctime");
    let denied = "denied this tool for this user (HTTP 403)";

    // /process: the plugin_call_output carries the refusal; the response completes.
    let events = f.process(&process_body("u-denied", "Tell me the time")).await;
    assert_eq!(status_of_last(&events), "completed", "{events:?}");
    let output = events
        .iter()
        .find(|e| e["type"] == "plugin_call_output" && e["status"] == "completed")
        .expect("a plugin_call_output message");
    assert!(output.to_string().contains(denied), "{output}");
    assert_eq!(output["code"], "tool_error", "a failed call is marked as one: {output}");

    // Responses: the mcp_call item fails with the refusal, the response completes.
    let body = json!({"input": "Tell me the time", "stream": true, "user": "u-denied"});
    let answer = f
        .send("POST", "/compatible-mode/v1/responses", &[("content-type", "application/json")], body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("response.mcp_call.failed"), "{}", answer.text);
    assert!(answer.text.contains(denied), "{}", answer.text);
    assert!(answer.text.contains("response.completed"), "{}", answer.text);

    // AG-UI: the tool result says so, the run finishes.
    let body = json!({
        "threadId": "t-denied", "runId": "r1", "state": {}, "tools": [], "context": [],
        "forwardedProps": {"user_id": "u-denied"},
        "messages": [{"id": "m1", "role": "user", "content": "Tell me the time"}],
    });
    let answer = f.send("POST", "/ag-ui", &[("content-type", "application/json")], body.to_string()).await;
    assert!(answer.text.contains("TOOL_CALL_RESULT") && answer.text.contains(denied), "{}", answer.text);
    assert!(answer.text.contains("RUN_FINISHED"), "{}", answer.text);

    // A2A: the finished task carries the refusal and is completed.
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "message/send",
        "params": {"message": {"kind": "message", "messageId": "m1", "role": "user",
                                "parts": [{"kind": "text", "text": "Tell me the time"}],
                                "metadata": {"user_id": "u-denied"}}},
    });
    let answer = f.send("POST", "/a2a", &[("content-type", "application/json")], body.to_string()).await;
    assert!(answer.text.contains(denied), "{}", answer.text);
    assert_eq!(answer.json()["result"]["status"]["state"], "completed", "{}", answer.text);

    // The denial never cost a new token, and the other tools still work for the same user.
    f.stack.mcp.allow_tool("getutctime");
    let events = f.process(&process_body("u-denied", "Tell me the time")).await;
    assert!(!events.iter().any(|e| e.to_string().contains(denied)));
}
