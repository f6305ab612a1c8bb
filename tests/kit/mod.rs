//! Helpers shared by the fault, secrets and load tests: requests with a hang guard, the final event of a
//! stream checked for shape, the `/pre-stop` drain probe, a port nobody listens on; and ([`paused`]) by
//! the approval and question tests.
#![allow(dead_code)]

pub mod binary;
pub mod paused;
pub mod venv;

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Function, parse_sse};

/// A liveness bound, not a timing assertion: a request that has not ended by then is hung.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// The function timeout (seconds) of the requests that exercise the deadline.
pub const SHORT_DEADLINE: &str = "2";

/// One HTTP answer, read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The final `response` event of an SSE answer, after checking the stream is well formed: status 200,
    /// sequence numbers 0..n, exactly one `created` and one terminal response, and the terminal one last.
    pub fn last_event(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        let events = parse_sse(&self.text);
        let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>(), "{}", self.text);
        let responses: Vec<&Value> = events.iter().filter(|e| e["object"] == "response").collect();
        let terminal =
            responses.iter().filter(|e| !["created", "in_progress"].contains(&e["status"].as_str().unwrap()));
        assert_eq!(terminal.count(), 1, "one terminal response: {}", self.text);
        let last = events.last().expect("at least one event").clone();
        assert_eq!(last["object"], "response", "the terminal response comes last: {}", self.text);
        last
    }

    /// `(status, error code)` of the final event.
    pub fn ending(&self) -> (String, Option<String>) {
        ending(&self.last_event())
    }
}

/// `(status, error code)` of a response object.
pub fn ending(response: &Value) -> (String, Option<String>) {
    (response["status"].as_str().unwrap_or_default().to_owned(), response["error"]["code"].as_str().map(str::to_owned))
}

pub fn failed(code: &str) -> (String, Option<String>) {
    ("failed".to_owned(), Some(code.to_owned()))
}

pub fn completed() -> (String, Option<String>) {
    ("completed".to_owned(), None)
}

/// Sends a request and reads the answer to its end, failing the test if that takes longer than the guard.
pub async fn send(f: &Function, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = Function::client().request(method, f.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let exchange = async {
        let response = request.send().await.expect("the function answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body arrives whole");
        Reply { status, headers, text }
    };
    tokio::time::timeout(HANG_GUARD, exchange).await.unwrap_or_else(|_| panic!("{path} hung"))
}

/// POST /process with `body` (streaming unless the body says otherwise).
pub async fn process(f: &Function, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(f, "POST", "/process", headers, body.to_string().into_bytes()).await
}

/// POST /process with the short function timeout.
pub async fn process_with_deadline(f: &Function, body: &Value) -> Reply {
    process(f, &[("x-fc-function-timeout", SHORT_DEADLINE)], body).await
}

/// An event invocation as FC sends it.
pub async fn invoke(f: &Function, payload: &Value) -> Reply {
    let headers = [("x-fc-control-path", "/invoke"), ("x-fc-request-id", "faults-invoke")];
    send(f, "POST", "/invoke", &headers, payload.to_string().into_bytes()).await
}

/// The user's request for a turn, as the sample sends it; `user` picks the subject (the WAT cache is per
/// subject, so a fresh user makes the turn call Agent Identity).
pub fn request(user: &str, text: &str) -> Value {
    json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "session_id": format!("s-{user}"),
        "user_id": user,
    })
}

/// Asks FC's `/pre-stop` hook, which answers `drained` only once no other request is in flight: proof that
/// no stream task of an earlier request is still alive holding its response open.
pub async fn assert_drained(f: &Function) {
    let headers = [("x-fc-control-path", "/pre-stop")];
    let reply = tokio::time::timeout(Duration::from_secs(5), send(f, "GET", "/pre-stop", &headers, Vec::new()))
        .await
        .expect("pre-stop answers once nothing is in flight");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["status"], "drained", "{}", reply.text);
}

/// A loopback URL where connecting is refused, for the whole test run.
///
/// Why not "bind, read the port, drop": tests run in parallel, and a stand-in started by another test can be
/// given the released port a moment later (CI saw a model call answered 404 by some other stand-in). A
/// socket that is bound but never listens keeps the port to itself while the kernel refuses every
/// connection to it; it is leaked so the port stays taken until the test binary exits.
pub async fn closed_port_url() -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    std::mem::forget(socket);
    format!("http://{addr}")
}
