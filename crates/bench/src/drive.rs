//! Tool turns against the function over HTTP, and what the stand-ins say they spent on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devstack::Stack;
use serde_json::{Value, json};

/// The question the DashScope stand-in answers with one `getutctime` call, then a text answer.
const TOOL_TURN: &str = "Tell me the time in UTC";
const TURN_LIMIT: Duration = Duration::from_secs(60);

pub struct Driver {
    client: reqwest::Client,
    process_url: String,
    face: Face,
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
        Ok(Driver { client, process_url: url, face, next_session: AtomicU64::new(0) })
    }

    fn body(&self, user: &str, session: &str) -> Value {
        match self.face {
            Face::Process => json!({
                "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": TOOL_TURN}]}],
                "session_id": session,
                "user_id": user,
            }),
            Face::A2a => json!({"jsonrpc": "2.0", "id": 1, "method": "message/stream", "params": {"message": {
                "kind": "message", "role": "user", "messageId": "m", "contextId": session,
                "parts": [{"kind": "text", "text": TOOL_TURN}], "metadata": {"user_id": user}}}}),
            Face::AgUi => json!({"threadId": session, "runId": "r",
                "messages": [{"id": "m", "role": "user", "content": TOOL_TURN}], "forwardedProps": {"user_id": user}}),
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
        let error = match received {
            Err(error) => Some(error),
            Ok((status, _)) if status != 200 => Some(format!("HTTP {status}")),
            Ok((_, bytes)) => match self.face {
                Face::Process => check_completed(&bytes),
                Face::A2a => check_a2a_completed(&bytes),
                Face::AgUi => check_agui_completed(&bytes),
            }
            .err(),
        };
        TurnOutcome { began, wall, error }
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

/// The last SSE frame is the final response object: `completed`, with the tool call, its output and an
/// answer. Anything else is an error, so a function that fails fast cannot look fast.
fn check_completed(body: &[u8]) -> Result<(), String> {
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
    if kinds != ["plugin_call", "plugin_call_output", "message"] {
        return Err(format!("output items {kinds:?}, not one tool call and an answer"));
    }
    Ok(())
}

/// The SSE frames of a body, as JSON.
fn frames(body: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    text.split("\n\n")
        .filter_map(|frame| frame.trim().strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).map_err(|e| format!("frame: {e}")))
        .collect()
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
