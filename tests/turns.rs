//! Turns that outlive a request's certainty (issue 28), over real sockets: one turn per session at a
//! time (in process and across instances through a real `redis-server`, a killed instance's lease
//! expiring), keep-alives on a quiet stream, and stopping a turn from whichever instance is asked — the
//! AgentScope `/stop` and A2A `tasks/cancel`, with `tasks/get` answered by an instance that did not run
//! the task. The slow part of every turn is the MCP stand-in's `sleep` tool.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::{Function, parse_sse};
use devstack::Stack;
use kit::binary::Binary;
use kit::{HANG_GUARD, completed, failed, process, send};
use redis_server::RedisServer;
use serde_json::{Value, json};

fn turn(user: &str, session: &str, text: &str) -> Value {
    json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "session_id": session,
        "user_id": user,
    })
}

/// An SSE stream read event by event (`data:` frames as JSON; comment lines counted).
struct Stream {
    response: reqwest::Response,
    buffer: String,
    comments: usize,
}

impl Stream {
    async fn open(url: String, body: &Value, headers: &[(&str, &str)]) -> Stream {
        let mut request = Function::client().post(url).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "the stream opens");
        Stream { response, buffer: String::new(), comments: 0 }
    }

    /// The next `data:` event, or `None` at the stream's end.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let frame = frame.trim_end();
                if frame.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE frame: {frame:?}"));
                return Some(serde_json::from_str(data).unwrap());
            }
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk()).await.expect("the stream hung");
            match chunk.unwrap() {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }

    /// Reads until `found` holds for an event, returning it.
    async fn until(&mut self, found: impl Fn(&Value) -> bool) -> Value {
        while let Some(event) = self.next().await {
            if found(&event) {
                return event;
            }
        }
        panic!("the stream ended before the event looked for");
    }

    /// Every event left.
    async fn rest(&mut self) -> Vec<Value> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

/// The `/process` turn's tool call has started: the slow tool is working.
fn tool_called(event: &Value) -> bool {
    event["object"] == "message" && event["type"] == "plugin_call" && event["status"] == "completed"
}

fn last_response(events: &[Value]) -> Value {
    events.iter().rev().find(|e| e["object"] == "response").cloned().expect("a final response")
}

/// A second request for a busy session is refused at once, in each face's shape; another session runs.
#[tokio::test]
async fn memory_a_busy_session_refuses_a_second_turn_and_other_sessions_do_not_wait() {
    let f = Function::start(&[]).await;
    let mut slow = Stream::open(f.url("/process"), &turn("u", "s", "sleep 2 seconds"), &[]).await;
    slow.until(tool_called).await;

    let refused = f.post_process(&[], &turn("u", "s", "hello")).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (409, "session_busy"), "{}", refused.text);
    let openai = json!({"model": "qwen-max", "input": "hello", "stream": true, "conversation": "s", "user": "u"});
    let openai = f.send("POST", "/compatible-mode/v1/responses", &[], openai.to_string()).await;
    assert_eq!(openai.status, 409, "{}", openai.text);
    assert_eq!(openai.json()["error"]["code"], "session_busy", "OpenAI's error shape: {}", openai.text);
    assert!(openai.json()["error"]["type"].is_string(), "OpenAI's error shape: {}", openai.text);
    let agui = json!({"threadId": "s", "runId": "r1", "state": {}, "tools": [], "context": [],
        "forwardedProps": {"user_id": "u"}, "messages": [{"id": "m1", "role": "user", "content": "hello"}]});
    let agui = f.send("POST", "/ag-ui", &[], agui.to_string()).await;
    assert_eq!(agui.status, 409, "{}", agui.text);
    assert!(agui.text.contains("session_busy"), "{}", agui.text);
    // Another user's session of the same id, and another session of the same user: neither waits.
    assert_eq!(process(&f, &[], &turn("v", "s", "hello")).await.ending(), completed());
    assert_eq!(process(&f, &[], &turn("u", "t", "hello")).await.ending(), completed());

    let events = slow.rest().await;
    assert_eq!(last_response(&events)["status"], "completed");
    // Given back at the end: the session takes a turn again.
    assert_eq!(process(&f, &[], &turn("u", "s", "hello again")).await.ending(), completed());
}

/// A2A: a task in a context that is busy is refused with a JSON-RPC error naming `session_busy`.
#[tokio::test]
async fn memory_a_busy_a2a_context_is_refused_in_json_rpc() {
    let f = Function::start(&[]).await;
    let mut slow = Stream::open(f.url("/process"), &turn("ctx-1", "ctx-1", "sleep 2 seconds"), &[]).await;
    slow.until(tool_called).await;
    let send = json!({"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m1", "role": "user", "contextId": "ctx-1",
        "parts": [{"kind": "text", "text": "hello"}]}}});
    let answer = f.send("POST", "/a2a", &[], send.to_string()).await;
    let body = answer.json();
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["error"]["data"]["code"], "session_busy", "{body}");
    slow.rest().await;
}

fn redis_env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![("SESSION_STORE", redis.url())]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

/// Two instances on one Redis: the second refuses a turn of the session the first runs; a third,
/// configured to wait, runs it once the first is done.
#[tokio::test]
async fn redis_one_turn_per_session_across_instances_refused_or_waited_for() {
    let redis = RedisServer::start().await;
    let env = redis_env(&redis);
    let a = Function::start(&env_refs(&env)).await;
    let b = Function::with_stack(Stack::start().await.unwrap(), &env_refs(&env)).await;
    let mut waiting_env = env.clone();
    waiting_env.push(("SESSION_BUSY_WAIT_SECS", "30".into()));
    let c = Function::with_stack(Stack::start().await.unwrap(), &env_refs(&waiting_env)).await;

    let mut slow = Stream::open(a.url("/process"), &turn("u", "s", "sleep 2 seconds"), &[]).await;
    slow.until(tool_called).await;
    let lease = redis.get("session_lease:u:s").await.expect("the lease is in the store");
    assert!(lease.starts_with("turn_"), "{lease}");

    let refused = b.post_process(&[], &turn("u", "s", "hello")).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (409, "session_busy"), "{}", refused.text);
    assert_eq!(process(&b, &[], &turn("u", "other", "hello")).await.ending(), completed(), "another session runs");

    let waited = process(&c, &[], &turn("u", "s", "hello after you")).await;
    assert_eq!(waited.ending(), completed(), "{}", waited.text);
    let first = slow.rest().await;
    assert_eq!(last_response(&first)["status"], "completed");
    // The waiting turn ran after the first one ended: its model call carried the first turn.
    let requests = c.stack.dashscope.requests();
    let sent = requests.last().unwrap().body["messages"].to_string();
    assert!(sent.contains("sleep 2 seconds") && sent.contains("slept"), "{sent}");
    assert_eq!(redis.get("session_lease:u:s").await, None, "released at the end");
}

/// An instance killed mid-turn cannot give its lease back: the session is busy until the lease's TTL
/// runs out, then another instance takes it.
#[tokio::test]
async fn redis_a_killed_instance_s_lease_expires() {
    let redis = RedisServer::start().await;
    let stack = Stack::start().await.unwrap();
    let url = redis.url();
    let short = [("SESSION_STORE", url.as_str()), ("SESSION_LEASE_TTL_SECS", "1")];
    let doomed = Binary::start(&stack, &short).await;
    let mut slow = Stream::open(doomed.url("/process"), &turn("u", "s", "sleep 20 seconds"), &[]).await;
    slow.until(tool_called).await;
    assert!(redis.get("session_lease:u:s").await.is_some());
    let status = std::process::Command::new("kill").args(["-KILL", &doomed.pid().to_string()]).status().unwrap();
    assert!(status.success());

    let other = Function::with_stack(Stack::start().await.unwrap(), &[("SESSION_STORE", &url)]).await;
    // Liveness wait for the expiry, not a timing assertion: refused while the dead turn's lease lives.
    let mut refusals = 0;
    let answer = loop {
        let answer = other.post_process(&[], &turn("u", "s", "hello")).await;
        if answer.status != 409 {
            break answer;
        }
        refusals += 1;
        assert!(refusals < 200, "the dead instance's lease never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(kit::ending(&last_response(&answer.events())), completed());
}

/// A tool working for more than three keep-alive intervals: `/process` carries AgentScope `heartbeat`
/// messages (sequence numbers stay contiguous, the output holds none), the OpenAI faces SSE comments.
#[tokio::test]
async fn a_quiet_stream_carries_keep_alives() {
    let f = Function::start(&[("STREAM_HEARTBEAT_SECS", "1")]).await;
    let reply = process(&f, &[], &turn("u", "h", "sleep 3.5 seconds")).await;
    assert_eq!(reply.ending(), completed(), "contiguous sequence numbers, one ending");
    let events = parse_sse(&reply.text);
    let beats: Vec<&Value> = events.iter().filter(|e| e["type"] == "heartbeat").collect();
    assert!(beats.len() >= 3, "{} heartbeats in {}", beats.len(), reply.text);
    for beat in &beats {
        assert_eq!((beat["object"].as_str(), beat["status"].as_str()), (Some("message"), Some("completed")));
        let keys: Vec<&str> = beat.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 12, "every key of a message: {beat}");
    }
    let output = last_response(&events)["output"].to_string();
    assert!(!output.contains("heartbeat"), "{output}");

    let body = json!({"model": "qwen-max", "input": "sleep 3.5 seconds", "stream": true, "user": "u"});
    let answer = f.send("POST", "/compatible-mode/v1/responses", &[], body.to_string()).await;
    assert!(answer.text.matches(": keep-alive\n\n").count() >= 3, "{}", answer.text);

    // Off with 0: a quiet stream stays quiet.
    let off = Function::start(&[("STREAM_HEARTBEAT_SECS", "0")]).await;
    let reply = process(&off, &[], &turn("u", "h", "sleep 1.5 seconds")).await;
    assert!(!reply.text.contains("heartbeat"), "{}", reply.text);
}

/// The AgentScope interrupt: `POST /stop` on another instance stops the turn running in the session;
/// it ends `cancelled`, and the session keeps what was said before the stop.
#[tokio::test]
async fn redis_stop_from_another_instance_cancels_the_turn_and_keeps_what_was_said() {
    let redis = RedisServer::start().await;
    let env = redis_env(&redis);
    let a = Function::start(&env_refs(&env)).await;
    let b = Function::with_stack(Stack::start().await.unwrap(), &env_refs(&env)).await;
    let mut slow = Stream::open(a.url("/process"), &turn("u", "s", "sleep 20 seconds"), &[]).await;
    slow.until(tool_called).await;

    let stopped =
        b.send("POST", "/stop", &[], json!({"session_id": "s", "user_id": "u", "input": []}).to_string()).await;
    assert_eq!(stopped.status, 200, "{}", stopped.text);
    assert_eq!(stopped.json()["stopped"], true, "{}", stopped.text);
    let events = slow.rest().await;
    assert_eq!(kit::ending(&last_response(&events)), failed("cancelled"));

    let session = send(&b, "GET", "/sessions/s?user_id=u", &[], Vec::new()).await.json();
    let kinds: Vec<&str> =
        session["messages"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message", "plugin_call"], "the question and the call made before the stop: {session}");
    assert_eq!(redis.get("session_lease:u:s").await, None, "the lease went back");
    // Nothing runs there now.
    let again = b.send("POST", "/stop", &[], json!({"session_id": "s", "user_id": "u"}).to_string()).await;
    assert_eq!(again.json()["stopped"], false, "{}", again.text);
}

fn a2a_stream(context: &str, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": "s1", "method": "message/stream", "params": {"message": {
        "kind": "message", "messageId": format!("m-{context}"), "role": "user", "contextId": context,
        "parts": [{"kind": "text", "text": text}]}}})
}

fn a2a_call(method: &str, task: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": {"id": task}}).to_string()
}

/// A2A on two instances: `tasks/get` and `tasks/cancel` reach a task another instance runs.
#[tokio::test]
async fn redis_a2a_tasks_answer_and_cancel_on_any_instance() {
    let redis = RedisServer::start().await;
    let env = redis_env(&redis);
    let a = Function::start(&env_refs(&env)).await;
    let b = Function::with_stack(Stack::start().await.unwrap(), &env_refs(&env)).await;
    let mut stream = Stream::open(a.url("/a2a"), &a2a_stream("ctx-a", "sleep 20 seconds"), &[]).await;
    let first = stream.next().await.unwrap();
    let task_id = first["result"]["id"].as_str().or(first["result"]["taskId"].as_str()).unwrap().to_owned();
    stream
        .until(|e| e["result"]["status"]["message"]["parts"][0]["text"].as_str().is_some_and(|t| t.contains("sleep")))
        .await;

    let got = b.send("POST", "/a2a", &[], a2a_call("tasks/get", &task_id)).await.json();
    assert_eq!(got["result"]["id"], task_id.as_str(), "{got}");
    assert_eq!(got["result"]["status"]["state"], "working", "{got}");
    let v1 = json!({"jsonrpc": "2.0", "id": 3, "method": "GetTask", "params": {"id": task_id}}).to_string();
    let got = b.send("POST", "/a2a", &[("A2A-Version", "1.0")], v1).await.json();
    assert_eq!(got["result"]["status"]["state"], "TASK_STATE_WORKING", "{got}");

    let cancelled = b.send("POST", "/a2a", &[], a2a_call("tasks/cancel", &task_id)).await.json();
    assert_eq!(cancelled["result"]["status"]["state"], "canceled", "{cancelled}");
    let events = stream.rest().await;
    let last = events.last().unwrap();
    assert_eq!(last["result"]["status"]["state"], "canceled", "the running turn stopped: {last}");
    assert_eq!(last["result"]["final"], true);

    // Once over, the other instance reads the ending and refuses a second cancel.
    let got = b.send("POST", "/a2a", &[], a2a_call("tasks/get", &task_id)).await.json();
    assert_eq!(got["result"]["status"]["state"], "canceled", "{got}");
    let again = b.send("POST", "/a2a", &[], a2a_call("tasks/cancel", &task_id)).await.json();
    assert_eq!(again["error"]["code"], -32002, "{again}");
    let unknown = b.send("POST", "/a2a", &[], a2a_call("tasks/get", "no-such-task")).await.json();
    assert_eq!(unknown["error"]["code"], -32001, "{unknown}");
}
