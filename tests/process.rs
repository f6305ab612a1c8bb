//! POST /process end to end over real sockets against the stand-ins.

mod common;

use common::{Function, user_request};

#[tokio::test]
async fn tool_turn_streams_and_completes_with_the_tool_output() {
    let f = Function::start(&[]).await;
    let events = f.process(&user_request("Tell me the time in UTC")).await;
    let last = events.last().unwrap();
    assert_eq!(last["object"], "response");
    assert_eq!(last["status"], "completed", "{last}");
    let output = last["output"].as_array().unwrap();
    let types: Vec<&str> = output.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["plugin_call", "plugin_call_output", "message"], "{last}");
    let tool_output = output[1]["content"][0]["data"]["output"].as_str().unwrap();
    let answer = output[2]["content"][0]["text"].as_str().unwrap();
    let tool_text: serde_json::Value = serde_json::from_str(tool_output).unwrap();
    assert!(answer.contains(tool_text[0]["text"].as_str().unwrap()), "answer {answer:?} lacks {tool_output}");
    // The stand-in's WAT for u1 was used.
    let actions: Vec<String> = f.stack.identity.requests().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["GetWorkloadAccessTokenForUserId"]);
}
