//! Tool turns against the function over HTTP, and what the stand-ins say they spent on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devstack::Stack;
use serde_json::{Value, json};

/// The question the DashScope stand-in answers with one `getutctime` call, then a text answer.
const TOOL_TURN: &str = "Tell me the time in UTC";
/// One it answers at once, without a tool call ("no tools" in the question; the tools are still offered).
const PLAIN_TURN: &str = "Just say hi, no tools needed";
const TURN_LIMIT: Duration = Duration::from_secs(60);

pub struct Driver {
    client: reqwest::Client,
    process_url: String,
    face: Face,
    /// [`TOOL_TURN`], or [`PLAIN_TURN`] for [`Driver::without_tool`].
    question: &'static str,
    /// Numbers each turn's session: by default every turn is a session of its own, so a turn's cost does
    /// not grow with the conversation the earlier turns stored (session memory is on by default).
    next_session: AtomicU64,
}

/// The wire face a driver speaks; each sends the same tool turn and checks it completed its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `POST /process`, AgentScope SSE.
    Process,
    /// `POST /a2a`, A2A 0.3 `message/stream`.
    A2a,
    /// `POST /ag-ui`, AG-UI events.
    AgUi,
    /// `POST /compatible-mode/v1/responses`, the Responses API streamed.
    Responses,
    /// `POST /compatible-mode/v1/chat/completions`, `chat.completion.chunk`s streamed.
    Chat,
}

impl Face {
    /// Every face the harness can drive, by the name `--faces` takes.
    pub const ALL: [(&'static str, Face); 5] = [
        ("process", Face::Process),
        ("a2a", Face::A2a),
        ("ag-ui", Face::AgUi),
        ("responses", Face::Responses),
        ("chat", Face::Chat),
    ];

    /// `process`, `a2a`, `ag-ui`, `responses` or `chat` → the face.
    pub fn named(name: &str) -> Option<Face> {
        Face::ALL.iter().find(|(n, _)| *n == name).map(|(_, face)| *face)
    }

    pub fn name(self) -> &'static str {
        Face::ALL.iter().find(|(_, face)| *face == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// The face's endpoint on the function.
    pub fn path(self) -> &'static str {
        match self {
            Face::Process => "/process",
            Face::A2a => "/a2a",
            Face::AgUi => "/ag-ui",
            Face::Responses => "/compatible-mode/v1/responses",
            Face::Chat => "/compatible-mode/v1/chat/completions",
        }
    }
}

/// One turn as the client saw it.
pub struct TurnOutcome {
    /// When the request was sent.
    pub began: Instant,
    /// Request sent → last byte of the SSE body received.
    pub wall: Duration,
    /// `None` when the turn ended `completed` with the tool's output in it; else what went wrong.
    pub error: Option<String>,
}

impl Driver {
    pub fn new(process_url: String) -> Result<Driver, String> {
        Driver::for_face(process_url, Face::Process)
    }

    /// A driver of `face` at `url` (the face's endpoint).
    pub fn for_face(url: String, face: Face) -> Result<Driver, String> {
        let client = devstack::client_builder().timeout(TURN_LIMIT).build().map_err(|e| format!("client: {e}"))?;
        Ok(Driver { client, process_url: url, face, question: TOOL_TURN, next_session: AtomicU64::new(0) })
    }

    /// The same driver asking a question the model answers without calling a tool (`/process` only): a
    /// turn counts only if it completes with the answer and no tool call.
    pub fn without_tool(self) -> Driver {
        assert_eq!(self.face, Face::Process, "plain turns are checked on /process only");
        Driver { question: PLAIN_TURN, ..self }
    }

    fn body(&self, user: &str, session: &str) -> Value {
        let question = self.question;
        match self.face {
            Face::Process => json!({
                "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": question}]}],
                "session_id": session,
                "user_id": user,
            }),
            Face::A2a => json!({"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": {
                "kind": "message", "role": "user", "messageId": "m", "contextId": session,
                "parts": [{"kind": "text", "text": question}], "metadata": {"user_id": user}}}}),
            Face::AgUi => json!({"threadId": session, "runId": "r",
                "messages": [{"id": "m", "role": "user", "content": question}], "forwardedProps": {"user_id": user}}),
            Face::Responses => json!({"input": question, "stream": true, "conversation": session,
                "user_id": user}),
            Face::Chat => json!({"messages": [{"role": "user", "content": question}], "stream": true,
                "session_id": session, "user_id": user}),
        }
    }

    /// One streamed tool turn for `user`, in a session of its own.
    pub async fn turn(&self, user: &str) -> TurnOutcome {
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.turn_in(user, &format!("bench-{user}-{n}")).await
    }

    /// One streamed tool turn for `user` in `session` (which remembers the turns before it).
    pub async fn turn_in(&self, user: &str, session: &str) -> TurnOutcome {
        let body = self.body(user, session);
        let began = Instant::now();
        let received = async {
            let response =
                self.client.post(&self.process_url).json(&body).send().await.map_err(|e| format!("send: {e}"))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| format!("body: {e}"))?;
            Ok::<_, String>((status, bytes))
        }
        .await;
        let wall = began.elapsed();
        TurnOutcome { began, wall, error: self.check(received) }
    }

    /// [`Driver::turn`] on `/process`, reading the stream as it comes: also returns when the first text
    /// of the answer arrived (time to first token; `None` if none did).
    pub async fn timed_turn(&self, user: &str) -> (TurnOutcome, Option<Duration>) {
        assert_eq!(self.face, Face::Process, "time to first token is read on /process only");
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let body = self.body(user, &format!("bench-{user}-{n}"));
        let began = Instant::now();
        let mut first_token = None;
        let received = async {
            let mut response =
                self.client.post(&self.process_url).json(&body).send().await.map_err(|e| format!("send: {e}"))?;
            let status = response.status();
            let mut bytes = Vec::new();
            let mut scanned = 0;
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
                bytes.extend_from_slice(&chunk);
                while first_token.is_none() {
                    let Some(end) = bytes[scanned..].windows(2).position(|w| w == b"\n\n") else { break };
                    if is_answer_text(&bytes[scanned..scanned + end]) {
                        first_token = Some(began.elapsed());
                    }
                    scanned += end + 2;
                }
            }
            Ok::<_, String>((status, bytes))
        }
        .await;
        let wall = began.elapsed();
        (TurnOutcome { began, wall, error: self.check(received) }, first_token)
    }

    /// `None` when the turn ended as this driver's question should (see the face's check); else what went
    /// wrong.
    fn check(&self, received: Result<(reqwest::StatusCode, impl AsRef<[u8]>), String>) -> Option<String> {
        match received {
            Err(error) => Some(error),
            Ok((status, _)) if status != 200 => Some(format!("HTTP {status}")),
            Ok((_, bytes)) => {
                let bytes = bytes.as_ref();
                match self.face {
                    Face::Process if self.question == PLAIN_TURN => check_answered(bytes),
                    Face::Process => check_completed(bytes),
                    Face::A2a => check_a2a_completed(bytes),
                    Face::AgUi => check_agui_completed(bytes),
                    Face::Responses => check_responses_completed(bytes),
                    Face::Chat => check_chat_completed(bytes),
                }
                .err()
            }
        }
    }

    /// `total` turns by `concurrency` workers; worker `i` is user `{prefix}-{i}`. Returns the outcomes and
    /// the wall time of the whole run.
    pub async fn run_concurrent(
        self: &Arc<Self>,
        prefix: &str,
        concurrency: usize,
        total: usize,
    ) -> (Vec<TurnOutcome>, Duration) {
        let next = Arc::new(AtomicUsize::new(0));
        let began = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|worker| {
                let (driver, next) = (self.clone(), next.clone());
                let user = format!("{prefix}-{worker}");
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        outcomes.push(driver.turn(&user).await);
                    }
                    outcomes
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(total);
        for worker in workers {
            match worker.await {
                Ok(mine) => outcomes.extend(mine),
                Err(e) => outcomes.push(TurnOutcome {
                    began: Instant::now(),
                    wall: Duration::ZERO,
                    error: Some(format!("worker: {e}")),
                }),
            }
        }
        (outcomes, began.elapsed())
    }

    /// `count` turns started together (behind a barrier), user `{prefix}-{i}` each.
    pub async fn burst(self: &Arc<Self>, prefix: &str, count: usize) -> Vec<TurnOutcome> {
        let barrier = Arc::new(tokio::sync::Barrier::new(count));
        let turns: Vec<_> = (0..count)
            .map(|i| {
                let (driver, barrier) = (self.clone(), barrier.clone());
                let user = format!("{prefix}-{i}");
                tokio::spawn(async move {
                    barrier.wait().await;
                    driver.turn(&user).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(count);
        for turn in turns {
            outcomes.push(turn.await.unwrap_or_else(|e| TurnOutcome {
                began: Instant::now(),
                wall: Duration::ZERO,
                error: Some(format!("task: {e}")),
            }));
        }
        outcomes
    }
}

/// The number of messages `user`'s stored `session` holds (`GET /sessions/{id}`), `None` when it has none.
pub async fn stored_messages(base_url: &str, user: &str, session: &str) -> Result<Option<usize>, String> {
    let client = devstack::client_builder().timeout(TURN_LIMIT).build().map_err(|e| format!("client: {e}"))?;
    let url = format!("{base_url}/sessions/{session}?user_id={user}");
    let response = client.get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    match response.status().as_u16() {
        404 => Ok(None),
        200 => {
            let session: Value = response.json().await.map_err(|e| format!("GET {url}: {e}"))?;
            Ok(session["messages"].as_array().map(Vec::len))
        }
        status => Err(format!("GET {url}: HTTP {status}")),
    }
}

/// An AgentScope SSE frame carrying text of the answer (`"object":"content"`, `"type":"text"`).
fn is_answer_text(frame: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(frame) else { return false };
    let Some(data) = text.lines().find_map(|line| line.strip_prefix("data:")) else { return false };
    if !data.contains(r#""text""#) {
        return false;
    }
    serde_json::from_str::<Value>(data.trim()).is_ok_and(|f| f["object"] == "content" && f["type"] == "text")
}

/// The last SSE frame is the final response object: `completed`, with the tool call, its output and an
/// answer. Anything else is an error, so a function that fails fast cannot look fast.
fn check_completed(body: &[u8]) -> Result<(), String> {
    check_output(body, &["plugin_call", "plugin_call_output", "message"])
}

/// A turn without a tool call: `completed` with only the answer.
fn check_answered(body: &[u8]) -> Result<(), String> {
    check_output(body, &["message"])
}

fn check_output(body: &[u8], expected: &[&str]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let last = text
        .rsplit("\n\n")
        .find_map(|frame| frame.trim().strip_prefix("data:"))
        .ok_or_else(|| "no SSE data frame".to_owned())?;
    let last: Value = serde_json::from_str(last.trim()).map_err(|e| format!("last frame: {e}"))?;
    if last["object"] != "response" || last["status"] != "completed" {
        let error = &last["error"];
        return Err(format!("ended {} {}", last["status"], error));
    }
    let kinds: Vec<&str> = last["output"]
        .as_array()
        .map(|items| items.iter().filter_map(|m| m["type"].as_str()).collect())
        .unwrap_or_default();
    if kinds != expected {
        return Err(format!("output items {kinds:?}, not {expected:?}"));
    }
    Ok(())
}

/// The SSE frames of a body, as JSON: each frame's `data:` line (after an `event:` line, if any); Chat
/// Completions' closing `[DONE]` is not JSON and is left out.
fn frames(body: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|line| line.strip_prefix("data:")))
        .map(str::trim)
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).map_err(|e| format!("frame: {e}")))
        .collect()
}

/// A Responses stream: `response.completed` last, whose output has the tool listing, the `mcp_call` with
/// the tool's output, and the answer message.
fn check_responses_completed(body: &[u8]) -> Result<(), String> {
    let frames = frames(body)?;
    let last = frames.last().ok_or_else(|| "no SSE data frame".to_owned())?;
    if last["type"] != "response.completed" || last["response"]["status"] != "completed" {
        return Err(format!("ended {} {}", last["type"], last["response"]["error"]));
    }
    let output = last["response"]["output"].as_array().map(Vec::as_slice).unwrap_or_default();
    let kinds: Vec<&str> = output.iter().filter_map(|item| item["type"].as_str()).collect();
    let called = output.iter().any(|item| {
        item["type"] == "mcp_call"
            && item["name"] == "getutctime"
            && item["output"].as_str().is_some_and(|o| !o.is_empty())
    });
    if !(kinds.first() == Some(&"mcp_list_tools") && called && kinds.last() == Some(&"message")) {
        return Err(format!("output items {kinds:?}, not the listing, one tool call with its output and an answer"));
    }
    Ok(())
}

/// A Chat Completions stream: `[DONE]` last, `finish_reason: stop`, and an answer that quotes the tool.
fn check_chat_completed(body: &[u8]) -> Result<(), String> {
    if !body.ends_with(b"data: [DONE]\n\n") {
        return Err("no closing [DONE]".into());
    }
    let frames = frames(body)?;
    if let Some(error) = frames.iter().find_map(|f| f.get("error")) {
        return Err(format!("failed: {error}"));
    }
    let choices = frames.iter().filter_map(|f| f["choices"].get(0));
    let content: String = choices.clone().filter_map(|c| c["delta"]["content"].as_str()).collect();
    let finish: Vec<&str> = choices.filter_map(|c| c["finish_reason"].as_str()).collect();
    // The stand-in model answers a tool turn with "The tool said: <the tool's output>".
    let quoted = content.strip_prefix("The tool said:").is_some_and(|rest| !rest.trim().is_empty());
    if finish != ["stop"] || !quoted {
        return Err(format!("finish {finish:?}, answer {content:?}: not a completed tool turn"));
    }
    Ok(())
}

/// An A2A stream: a tool status, the answer streamed, and the final status `completed`.
fn check_a2a_completed(body: &[u8]) -> Result<(), String> {
    let frames = frames(body)?;
    let results: Vec<&Value> = frames.iter().map(|f| &f["result"]).collect();
    let last = results.last().ok_or_else(|| "no SSE data frame".to_owned())?;
    if last["kind"] != "status-update" || last["status"]["state"] != "completed" || last["final"] != true {
        return Err(format!("ended {last}"));
    }
    let tool = results
        .iter()
        .any(|r| r["status"]["message"]["parts"][0]["text"].as_str().is_some_and(|t| t.contains("getutctime")));
    let answer = results.iter().any(|r| r["kind"] == "artifact-update");
    if !(tool && answer) {
        return Err("no tool status or no answer chunk".into());
    }
    Ok(())
}

/// An AG-UI run: a tool call with its result, answer text, and `RUN_FINISHED` last.
fn check_agui_completed(body: &[u8]) -> Result<(), String> {
    let frames = frames(body)?;
    let types: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    if types.last() != Some(&"RUN_FINISHED") {
        return Err(format!("ended {:?}", types.last()));
    }
    if !["TOOL_CALL_RESULT", "TEXT_MESSAGE_CONTENT"].iter().all(|t| types.contains(t)) {
        return Err(format!("events {types:?}, not one tool call and an answer"));
    }
    Ok(())
}

/// Request counts of the three stand-ins at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub identity: usize,
    pub mcp: usize,
    pub model: usize,
}

impl Counts {
    pub fn now(stack: &Stack) -> Counts {
        Counts {
            identity: stack.identity.requests().len(),
            mcp: stack.mcp.request_count(),
            model: stack.dashscope.request_count(),
        }
    }

    pub fn since(self, before: Counts) -> Counts {
        Counts {
            identity: self.identity - before.identity,
            mcp: self.mcp - before.mcp,
            model: self.model - before.model,
        }
    }
}

/// Waits until every request the stand-ins received has finished its response, so its time is recorded
/// (an MCP or model body can end a moment after the function already answered its client).
pub async fn settle(stack: &Stack) -> Result<(), String> {
    let began = Instant::now();
    loop {
        let mcp_done = stack.mcp.elapsed().len() >= stack.mcp.request_count();
        let model_done = stack.dashscope.requests().iter().all(|r| r.elapsed.is_some());
        if mcp_done && model_done {
            return Ok(());
        }
        if began.elapsed() > Duration::from_secs(5) {
            return Err("stand-in responses did not end within 5 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The time the stand-ins spent on the requests numbered `from..to` (per stand-in, in arrival order for
/// identity and model, completion order for MCP — the same set once [`settle`] returned).
pub struct StandInTimes {
    identity: Vec<Duration>,
    mcp: Vec<Duration>,
    model: Vec<Duration>,
}

impl StandInTimes {
    pub fn read(stack: &Stack) -> StandInTimes {
        StandInTimes {
            identity: stack.identity.requests().iter().map(|r| r.elapsed).collect(),
            mcp: stack.mcp.elapsed(),
            model: stack.dashscope.requests().iter().map(|r| r.elapsed.unwrap_or_default()).collect(),
        }
    }

    pub fn between(&self, from: Counts, to: Counts) -> Duration {
        let sum = |times: &[Duration], a: usize, b: usize| -> Duration {
            times.get(a..b).map(|s| s.iter().sum()).unwrap_or_default()
        };
        sum(&self.identity, from.identity, to.identity)
            + sum(&self.mcp, from.mcp, to.mcp)
            + sum(&self.model, from.model, to.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(events: &[Value]) -> Vec<u8> {
        events
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
            .collect::<String>()
            .into()
    }

    #[test]
    fn a_responses_turn_counts_only_when_completed_with_the_tool_output() {
        let output = |call_output: &str| {
            json!([{"type": "mcp_list_tools"}, {"type": "mcp_call", "name": "getutctime", "output": call_output},
                {"type": "message"}])
        };
        let completed = |call_output: &str| json!({"type": "response.completed", "response": {"status": "completed", "output": output(call_output)}});
        assert_eq!(check_responses_completed(&sse(&[json!({"type": "response.created"}), completed("12:00")])), Ok(()));
        assert!(check_responses_completed(&sse(&[completed("")])).is_err(), "no tool output");
        let failed = json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "x"}}});
        assert!(check_responses_completed(&sse(&[failed])).is_err());
    }

    #[test]
    fn a_chat_turn_counts_only_when_it_stops_quoting_the_tool() {
        let chunk = |delta: Value, finish: Value| json!({"choices": [{"delta": delta, "finish_reason": finish}]});
        let body = |frames: &[Value]| {
            let mut text: String = frames.iter().map(|f| format!("data: {f}\n\n")).collect();
            text.push_str("data: [DONE]\n\n");
            text.into_bytes()
        };
        let answer = chunk(json!({"content": "The tool said: 12:00"}), Value::Null);
        let stop = chunk(json!({}), json!("stop"));
        assert_eq!(check_chat_completed(&body(&[answer.clone(), stop.clone()])), Ok(()));
        assert!(check_chat_completed(&body(&[chunk(json!({"content": "Hi"}), Value::Null), stop.clone()])).is_err());
        assert!(check_chat_completed(&body(&[answer.clone(), json!({"error": {"code": "model_throttled"}})])).is_err());
        assert!(check_chat_completed(&body(&[answer])).is_err(), "no finish_reason");
    }

    #[test]
    fn a_plain_turn_counts_only_with_the_answer_alone_and_the_first_token_is_answer_text() {
        let done = |output: Value| {
            format!("data: {}\n\n", json!({"object": "response", "status": "completed", "output": output})).into_bytes()
        };
        let answer = json!([{"type": "message"}]);
        let tool = json!([{"type": "plugin_call"}, {"type": "plugin_call_output"}, {"type": "message"}]);
        assert_eq!(check_answered(&done(answer.clone())), Ok(()));
        assert!(check_answered(&done(tool.clone())).is_err(), "a tool call where none was asked for");
        assert_eq!(check_completed(&done(tool)), Ok(()));
        assert!(check_completed(&done(answer)).is_err());

        let text = br#"data: {"sequence_number":9,"object":"content","status":"in_progress","type":"text","delta":true,"text":"The"}"#;
        let call = br#"data: {"sequence_number":3,"object":"content","status":"in_progress","type":"data","data":{"name":"text"}}"#;
        assert!(is_answer_text(text));
        assert!(!is_answer_text(call));
        assert!(!is_answer_text(b"data: {\"object\":\"message\",\"type\":\"text\""));
    }

    #[test]
    fn faces_by_name_and_path() {
        for (name, face) in Face::ALL {
            assert_eq!(Face::named(name), Some(face));
            assert_eq!(face.name(), name);
        }
        assert_eq!(Face::named("openai"), None);
        assert_eq!(Face::Responses.path(), "/compatible-mode/v1/responses");
    }
}
