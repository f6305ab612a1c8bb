//! Tool turns against the function over HTTP, and what the stand-ins say they spent on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
}

/// The wire face a driver's turns use; each has its own body and its own check of a completed tool turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `POST /process` (AgentScope SSE).
    Process,
    /// `POST /compatible-mode/v1/responses` with `stream: true`.
    Responses,
    /// `POST /compatible-mode/v1/chat/completions` with `stream: true`.
    Chat,
}

impl Face {
    pub fn path(self) -> &'static str {
        match self {
            Face::Process => "/process",
            Face::Responses => "/compatible-mode/v1/responses",
            Face::Chat => "/compatible-mode/v1/chat/completions",
        }
    }

    fn body(self, user: &str) -> Value {
        match self {
            Face::Process => json!({
                "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": TOOL_TURN}]}],
                "session_id": format!("bench-{user}"),
                "user_id": user,
            }),
            Face::Responses => json!({"input": TOOL_TURN, "stream": true, "user_id": user}),
            Face::Chat => json!({"messages": [{"role": "user", "content": TOOL_TURN}], "stream": true, "user": user}),
        }
    }

    fn check(self, body: &[u8]) -> Result<(), String> {
        match self {
            Face::Process => check_completed(body),
            Face::Responses => check_responses_completed(body),
            Face::Chat => check_chat_completed(body),
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
        let client = devstack::client_builder().timeout(TURN_LIMIT).build().map_err(|e| format!("client: {e}"))?;
        Ok(Driver { client, process_url, face: Face::Process })
    }

    /// Turns on another face of the function at `base_url`.
    pub fn on_face(base_url: &str, face: Face) -> Result<Driver, String> {
        let mut driver = Driver::new(format!("{}{}", base_url.trim_end_matches('/'), face.path()))?;
        driver.face = face;
        Ok(driver)
    }

    /// One streamed tool turn for `user`.
    pub async fn turn(&self, user: &str) -> TurnOutcome {
        let body = self.face.body(user);
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
            Ok((_, bytes)) => self.face.check(&bytes).err(),
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

/// The Responses stream ends with `response.completed` holding the `mcp_call` (with its output) and the answer.
fn check_responses_completed(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let last = text
        .rsplit("\n\n")
        .find_map(|frame| frame.lines().find_map(|line| line.strip_prefix("data:")))
        .ok_or_else(|| "no SSE data frame".to_owned())?;
    let last: Value = serde_json::from_str(last.trim()).map_err(|e| format!("last frame: {e}"))?;
    if last["type"] != "response.completed" {
        return Err(format!("ended {} {}", last["type"], last["response"]["error"]));
    }
    let output = last["response"]["output"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = output.iter().filter_map(|item| item["type"].as_str()).collect();
    if kinds != ["mcp_call", "message"] || !output[0]["output"].is_string() {
        return Err(format!("output items {kinds:?}, not one tool call with its output and an answer"));
    }
    Ok(())
}

/// The Chat Completions stream carries the answer quoting the tool, `finish_reason: stop` and `[DONE]`.
fn check_chat_completed(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    if !text.trim_end().ends_with("data: [DONE]") {
        return Err("no data: [DONE]".into());
    }
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|frame| frame.trim().strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).map_err(|e| format!("chunk: {e}")))
        .collect::<Result<_, _>>()?;
    if let Some(error) = chunks.iter().find_map(|c| c.get("error")) {
        return Err(format!("failed: {error}"));
    }
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    let stopped = chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop");
    if !stopped || !content.contains("The tool said") {
        return Err(format!("no answer quoting the tool: {content:?}"));
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
