//! Turns that stop for the user and the invocations that answer them (issue 26: approval requests in
//! `tests/approvals.rs`, tools' questions in `tests/questions.rs`), through each face that can ask: the
//! `/process` messages and what the stream ends with, an A2A task in one context, AG-UI runs in a thread.

use serde_json::{Value, json};

use crate::common::{Function, parse_sse};

/// A `/process` request asking `text` as `user`, in `session` when named.
pub fn ask(text: &str, session: Option<&str>, user: &str) -> Value {
    let mut body = json!({"input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "user_id": user});
    if let Some(session) = session {
        body["session_id"] = json!(session);
    }
    body
}

/// A `/process` request whose one message is an answer of type `kind` (`mcp_approval_response`,
/// `mcp_elicitation_response`) holding `data`, as an AgentScope client sends it.
pub fn answer(kind: &str, session: &str, user: &str, data: Value) -> Value {
    json!({"input": [{"role": "user", "type": kind, "content": [{"type": "data", "data": data}]}],
        "session_id": session, "user_id": user})
}

/// The final `response` object of a `/process` stream.
pub fn last(events: &[Value]) -> &Value {
    events.iter().rev().find(|e| e["object"] == "response").expect("a response object")
}

/// The completed assistant texts of a `/process` stream, one a line.
pub fn answer_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["object"] == "message" && e["type"] == "message" && e["status"] == "completed")
        .filter_map(|e| e["content"][0]["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The error code of a `/process` stream that ended failed.
pub fn failure_code(events: &[Value]) -> String {
    let response = last(events);
    assert_eq!(response["status"], "failed", "{response}");
    response["error"]["code"].as_str().unwrap().to_owned()
}

/// A2A 0.3 over raw JSON-RPC `message/send`, as user `u1` in one context.
pub struct A2aContext<'a> {
    pub f: &'a Function,
    pub context: &'a str,
}

impl A2aContext<'_> {
    /// Sends a message of `parts` (in `task` when named) and returns the JSON-RPC answer.
    pub async fn send(&self, parts: Value, task: Option<&str>) -> Value {
        let mut message = json!({"kind": "message", "role": "user", "messageId": format!("m{}", parts.to_string().len()),
            "contextId": self.context, "parts": parts, "metadata": {"user_id": "u1"}});
        if let Some(task) = task {
            message["taskId"] = json!(task);
        }
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}});
        Function::client().post(self.f.url("/a2a")).json(&body).send().await.unwrap().json::<Value>().await.unwrap()
    }
}

/// An AG-UI run as user `u1` in `thread`: its events, the answer having been 200.
pub async fn ag_ui_run(f: &Function, thread: &str, run_id: &str, messages: Value, resume: Value) -> Vec<Value> {
    let body = json!({"threadId": thread, "runId": run_id, "messages": messages, "resume": resume,
        "forwardedProps": {"user_id": "u1"}});
    let answer = Function::client().post(f.url("/ag-ui")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    parse_sse(&answer.text().await.unwrap())
}

/// The first interrupt of a run that finished with the `interrupt` outcome.
pub fn interrupt_of(events: &[Value]) -> Value {
    let finished = events.last().unwrap();
    assert_eq!(
        (finished["type"].as_str(), finished["outcome"]["type"].as_str()),
        (Some("RUN_FINISHED"), Some("interrupt")),
        "{events:#?}"
    );
    finished["outcome"]["interrupts"][0].clone()
}

/// The text a run streamed.
pub fn ag_ui_text(events: &[Value]) -> String {
    events.iter().filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT").map(|e| e["delta"].as_str().unwrap()).collect()
}
