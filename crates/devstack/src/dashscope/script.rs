//! What the scripted model answers: a pure function of the request body (plus "seen before" for the
//! `-once` faults), so every test run streams the same bytes.

use std::time::Duration;

use serde_json::{Value, json};

/// Fixed so streams are byte-for-byte reproducible.
const CREATED: u64 = 1_735_113_344;

/// The reply to one request.
#[derive(Debug)]
pub(super) enum Reply {
    Error {
        status: u16,
        code: &'static str,
        message: &'static str,
        /// Sent as `Retry-After` (seconds) when set.
        retry_after: Option<&'static str>,
    },
    Stream(Vec<Step>),
    /// Accept the request and never answer (not even the status line).
    Hang,
}

#[derive(Debug)]
pub(super) enum Step {
    /// One `data:` line (a JSON chunk or `[DONE]`), without framing.
    Data(String),
    Pause(Duration),
    /// Break the connection (the body errors, so the response is cut mid-chunked-encoding).
    Abort,
    /// Send this `data:` line, pause, and repeat for as long as the client listens (a very slow model).
    DripForever(String, Duration),
}

/// The conversation as the script sees it.
struct Conversation {
    /// The last user message's text.
    question: String,
    /// Contents of the `tool` messages after the last user message.
    tool_results: Vec<String>,
    /// Offered tool names, as offered (possibly prefixed by the MCP client).
    tools: Vec<String>,
    thinking: bool,
    model: String,
}

impl Conversation {
    fn parse(body: &Value) -> Self {
        let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let last_user = messages.iter().rposition(|m| m["role"] == "user");
        let question = last_user.map(|i| content_text(&messages[i]["content"])).unwrap_or_default();
        let tool_results = last_user
            .map(|i| &messages[i + 1..])
            .unwrap_or(&[])
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| content_text(&m["content"]))
            .collect();
        let tools = body["tools"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect();
        Conversation {
            question,
            tool_results,
            tools,
            thinking: body["enable_thinking"] == true,
            model: body["model"].as_str().unwrap_or("qwen-max").to_owned(),
        }
    }

    /// The offered tool whose name ends with `suffix` (MCP clients may prefix names per server).
    fn tool(&self, suffix: &str) -> Option<String> {
        self.tools.iter().find(|t| t.ends_with(suffix)).cloned()
    }
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether the question carries `[fault:<name>]` exactly.
fn fault(question: &str, name: &str) -> bool {
    question.contains(&format!("[fault:{name}]"))
}

/// Builds the reply. `first_time` says whether this exact conversation was seen before (for `-once`).
pub(super) fn plan(body: &Value, request_id: &str, first_time: bool, slow: Duration, chunk_delay: Duration) -> Reply {
    let convo = Conversation::parse(body);
    let q = convo.question.as_str();
    let error = |status, code, message| Reply::Error { status, code, message, retry_after: None };
    if fault(q, "hang") {
        return Reply::Hang;
    }
    if fault(q, "401") {
        return error(401, "invalid_api_key", "Incorrect API key provided. ");
    }
    if fault(q, "403") {
        return error(403, "Model.AccessDenied", "Model access denied.");
    }
    let throttled = |retry_after| Reply::Error {
        status: 429,
        code: "Throttling",
        message: "Requests rate limit exceeded, please try again later.",
        retry_after,
    };
    if fault(q, "429-retry-after") {
        return throttled(Some("30"));
    }
    if fault(q, "429-retry-after-1-once") && first_time {
        return throttled(Some("1"));
    }
    if fault(q, "429") || (fault(q, "429-once") && first_time) {
        return throttled(None);
    }
    if fault(q, "quota") {
        return error(429, "insufficient_quota", "You exceeded your current quota, please check your plan.");
    }
    if fault(q, "500") || (fault(q, "500-once") && first_time) {
        return error(500, "internal_error", "An internal error has occured, please try again later.");
    }
    if fault(q, "503") {
        return error(503, "ModelServingError", "Too many requests. Your requests are being throttled.");
    }
    if fault(q, "404") {
        return error(404, "model_not_found", "The model does not exist or you do not have access to it.");
    }
    if fault(q, "filter") {
        return error(400, "data_inspection_failed", "Input data may contain inappropriate content.");
    }

    let pause = if fault(q, "slow") { Some(slow) } else { Some(chunk_delay).filter(|delay| !delay.is_zero()) };
    let mut out = Chunks::new(request_id, &convo.model, pause);
    if convo.thinking {
        for part in ["Let me think", " about the question", " step by step."] {
            out.delta(json!({"content": null, "reasoning_content": part}));
        }
    }
    if fault(q, "malformed") {
        out.delta(json!({"content": "Hmm"}));
        out.raw(r#"{"id":"chatcmpl-bad","choices":[{"index":0,"delta":{"content":"oops"#.to_owned());
    }
    if fault(q, "drip") {
        out.text("A very slow answer");
        let chunk = json!({"id": out.id, "object": "chat.completion.chunk", "created": CREATED,
            "model": out.model, "system_fingerprint": null, "usage": null,
            "choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": null, "logprobs": null}]});
        out.steps.push(Step::DripForever(chunk.to_string(), slow));
        return Reply::Stream(out.steps);
    }
    if fault(q, "midstream-error") || fault(q, "midstream-filter") || fault(q, "cut") || fault(q, "eof") {
        out.text("Partial answer that will not finish");
        if fault(q, "cut") {
            out.steps.push(Step::Abort);
        } else if !fault(q, "eof") {
            let code = if fault(q, "midstream-filter") { "data_inspection_failed" } else { "internal_error" };
            let error = json!({"error": {"code": code, "message": "The stream failed while generating.",
                "type": code, "param": null}, "request_id": request_id});
            out.raw(error.to_string());
        }
        return Reply::Stream(out.steps);
    }

    let lower = q.to_lowercase();
    let wants_tools = !convo.tools.is_empty() && !lower.contains("no tools");
    let calls = if wants_tools && (convo.tool_results.is_empty() || lower.contains("loop forever")) {
        choose_calls(&convo, &lower)
    } else {
        Vec::new()
    };
    if calls.is_empty() {
        let answer = if convo.tool_results.is_empty() {
            format!("You asked: \"{}\". This is the scripted answer.", excerpt(q))
        } else {
            convo.tool_results.iter().map(|r| format!("The tool said: {r}")).collect::<Vec<_>>().join(" ")
        };
        out.text(&answer);
        out.finish("stop");
    } else {
        out.tool_calls(&calls);
        out.finish("tool_calls");
    }
    let prompt_tokens = body["messages"].to_string().len() as u64 / 4 + 1;
    out.usage(prompt_tokens);
    out.steps.push(Step::Data("[DONE]".into()));
    Reply::Stream(out.steps)
}

fn choose_calls(convo: &Conversation, lower: &str) -> Vec<(String, String)> {
    let named = |suffix: &str| convo.tool(suffix).unwrap_or_else(|| suffix.to_owned());
    if lower.contains("rendezvous") {
        let tool = named("rendezvous");
        return vec![(tool.clone(), "{}".into()), (tool, "{}".into())];
    }
    if lower.contains("broken tool") {
        return vec![(named("broken"), "{}".into())];
    }
    if let Some(seconds) = sleep_seconds(lower) {
        return vec![(named("sleep"), json!({ "seconds": seconds }).to_string())];
    }
    let hello = lower.contains("hello").then(|| convo.tool("helloworld")).flatten();
    let time = convo.tool("getutctime");
    let hello_call = |tool: String| (tool, json!({"name": greeted(&convo.question, lower)}).to_string());
    match (hello, time) {
        (Some(h), Some(t)) if lower.contains("time") => vec![(t, "{}".into()), hello_call(h)],
        (Some(h), _) => vec![hello_call(h)],
        (None, Some(t)) => vec![(t, "{}".into())],
        (None, None) => Vec::new(),
    }
}

/// N in "sleep N seconds" (a whole or decimal number).
fn sleep_seconds(lower: &str) -> Option<f64> {
    let rest = &lower[lower.find("sleep ")? + "sleep ".len()..];
    let number = rest.split_whitespace().next()?;
    rest[number.len()..].trim_start().starts_with("second").then(|| number.parse().ok()).flatten()
}

/// X in "say hello to X", in the user's casing; "world" when nobody is named.
fn greeted(question: &str, lower: &str) -> String {
    const MARKER: &str = "hello to ";
    let Some(at) = lower.find(MARKER) else {
        return "world".into();
    };
    // Lower-casing may change byte lengths outside ASCII; then the lower-cased name is the best we have.
    let source = if question.len() == lower.len() { question } else { lower };
    let rest = &source[at + MARKER.len()..];
    let end = rest.find(|c: char| ".,!?[\n".contains(c)).unwrap_or(rest.len());
    let rest = &rest[..end];
    let rest = rest.split(" and ").next().unwrap_or(rest).trim();
    if rest.is_empty() { "world".into() } else { rest.to_owned() }
}

fn excerpt(question: &str) -> String {
    let cleaned: String = question.split("[fault:").next().unwrap_or("").trim().chars().take(60).collect();
    cleaned
}

/// Builds chunks in the real shape.
struct Chunks {
    id: String,
    model: String,
    pause: Option<Duration>,
    role_sent: bool,
    deltas: u64,
    steps: Vec<Step>,
}

impl Chunks {
    fn new(request_id: &str, model: &str, pause: Option<Duration>) -> Self {
        Chunks {
            id: format!("chatcmpl-{request_id}"),
            model: model.to_owned(),
            pause,
            role_sent: false,
            deltas: 0,
            steps: Vec::new(),
        }
    }

    fn raw(&mut self, data: String) {
        if let Some(pause) = self.pause {
            self.steps.push(Step::Pause(pause));
        }
        self.steps.push(Step::Data(data));
    }

    fn chunk(&mut self, choices: Value, usage: Value) {
        let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": CREATED,
            "model": self.model, "system_fingerprint": null, "choices": choices, "usage": usage});
        self.raw(chunk.to_string());
    }

    fn delta(&mut self, mut delta: Value) {
        if !self.role_sent {
            self.role_sent = true;
            delta["role"] = json!("assistant");
        }
        self.deltas += 1;
        self.chunk(json!([{"index": 0, "delta": delta, "finish_reason": null, "logprobs": null}]), Value::Null);
    }

    /// The text in several chunks of a few words each.
    fn text(&mut self, text: &str) {
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        for group in words.chunks(3) {
            self.delta(json!({"content": group.concat(), "reasoning_content": null}));
        }
    }

    /// Calls in the shapes the spec lists: the first chunk of each has id, name and a first fragment; the
    /// rest carry `"id":""`, `"function":{}` or no id at all, interleaved across calls.
    fn tool_calls(&mut self, calls: &[(String, String)]) {
        let ids: Vec<String> = (0..calls.len()).map(|i| format!("call_{}_{i}", self.id)).collect();
        let parts: Vec<[String; 3]> = calls.iter().map(|(_, args)| split3(args)).collect();
        for (i, (name, _)) in calls.iter().enumerate() {
            let call = json!({"index": i, "id": ids[i], "type": "function",
                "function": {"name": name, "arguments": parts[i][0]}});
            self.delta(json!({"content": null, "tool_calls": [call]}));
        }
        for (i, part) in parts.iter().enumerate() {
            let second = json!({"index": i, "id": "", "type": "function", "function": {"arguments": part[1]}});
            self.delta(json!({"content": null, "tool_calls": [second]}));
            self.delta(json!({"content": null, "tool_calls": [{"index": i, "id": "", "function": {}}]}));
            let third = json!({"index": i, "type": "function", "function": {"arguments": part[2]}});
            self.delta(json!({"content": null, "tool_calls": [third]}));
        }
    }

    fn finish(&mut self, reason: &str) {
        let choices = json!([{"index": 0, "delta": {}, "finish_reason": reason, "logprobs": null}]);
        self.chunk(choices, Value::Null);
    }

    fn usage(&mut self, prompt_tokens: u64) {
        let completion_tokens = self.deltas * 3;
        let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "prompt_tokens_details": {"cached_tokens": 0}});
        self.chunk(json!([]), usage);
    }
}

/// Splits on char boundaries into three (possibly empty) fragments.
fn split3(text: &str) -> [String; 3] {
    let chars: Vec<char> = text.chars().collect();
    let a = chars.len() / 3;
    let b = 2 * chars.len() / 3;
    [chars[..a].iter().collect(), chars[a..b].iter().collect(), chars[b..].iter().collect()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeted_names_the_person() {
        let q = "Please say hello to Alice Smith, thanks";
        assert_eq!(greeted(q, &q.to_lowercase()), "Alice Smith");
        assert_eq!(greeted("hello", "hello"), "world");
    }

    #[test]
    fn split3_rejoins() {
        assert_eq!(split3("{}").concat(), "{}");
        assert_eq!(split3(r#"{"name":"Zoë"}"#).concat(), r#"{"name":"Zoë"}"#);
    }

    #[test]
    fn a_chunk_delay_pauses_before_every_chunk_and_none_without_it() {
        let body = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "Tell me the time"}],
            "tools": [{"type": "function", "function": {"name": "getutctime"}}]});
        let steps = |delay| match plan(&body, "r1", true, Duration::from_secs(9), delay) {
            Reply::Stream(steps) => steps,
            other => panic!("{other:?}"),
        };
        let delayed = steps(Duration::from_millis(7));
        let data = delayed.iter().filter(|s| matches!(s, Step::Data(_))).count();
        let pauses = delayed.iter().filter(|s| matches!(s, Step::Pause(d) if *d == Duration::from_millis(7))).count();
        assert!(data > 1, "{delayed:?}");
        // Every chunk but the closing `[DONE]` line waits first.
        assert_eq!(pauses, data - 1, "{delayed:?}");
        assert!(!steps(Duration::ZERO).iter().any(|s| matches!(s, Step::Pause(_))));
    }
}
