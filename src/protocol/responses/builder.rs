//! A turn's events → the Responses API stream (responses-api.md, "Streaming"), keeping the final Response.
//!
//! - `created` → `in_progress` first; then per output item, `output_index` 0, 1, 2… in the order added:
//!   `output_item.added` → its content events → `output_item.done` (same index, same id); then exactly one of
//!   `completed` | `incomplete` | `failed`, whose `response` holds every item and the summed `usage`.
//! - Reasoning is a `reasoning` item (`content_part.added` with a `reasoning_text` part, then
//!   `reasoning_text.delta`… `.done`, `content_part.done`); answer text a `message` item with one
//!   `output_text` part. At most one of the two is open; any other event closes it.
//! - A tool the function ran is an `mcp_call` item: added at `ToolCallStarted` (several may be open),
//!   `mcp_call_arguments.delta`/`.done`, then at its `ToolResult` `mcp_call.completed` (or `.failed` for an
//!   `isError` result) and `output_item.done` with the tool's text as `output`. A failed tool's text is in
//!   `output` and `error` stays null (`McpCall.error` changed type between SDK majors).
//! - Items still open at the end are closed with status `incomplete` unless the turn completed.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::request::Echo;
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::Failure;
use crate::llm::Usage;
use crate::mcp::ToolOutput;
use crate::protocol::openai::{add_usage, new_id, now_secs};

/// The `server_label` of the function's tools: the events do not say which MCP server a tool came from,
/// and the label is only for display.
pub(crate) const SERVER_LABEL: &str = "mcp";

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Reasoning,
    Message,
}

struct OpenText {
    index: usize,
    id: String,
    kind: TextKind,
    text: String,
}

struct OpenCall {
    index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
    arguments_done: bool,
}

/// Builds one Response: `start` and every `push` append the events to send (each one SSE frame).
pub(crate) struct ResponsesBuilder {
    id: String,
    created_at: u64,
    model: String,
    echo: Echo,
    seq: u64,
    started: bool,
    finished: bool,
    /// Every item added, by `output_index`: the added shape while open, the final one once done.
    output: Vec<Value>,
    open_text: Option<OpenText>,
    open_calls: Vec<OpenCall>,
    usage: Option<Usage>,
    /// The last lifecycle Response (the final one once finished).
    last: Option<Value>,
}

impl ResponsesBuilder {
    pub(crate) fn new(model: String, echo: Echo) -> Self {
        ResponsesBuilder {
            id: new_id("resp"),
            created_at: now_secs(),
            model,
            echo,
            seq: 0,
            started: false,
            finished: false,
            output: Vec::new(),
            open_text: None,
            open_calls: Vec::new(),
            usage: None,
            last: None,
        }
    }

    /// The final Response once `Finished` was pushed.
    pub(crate) fn final_response(&self) -> Option<&Value> {
        self.last.as_ref().filter(|_| self.finished)
    }

    /// `response.created` and `response.in_progress`; a second call adds nothing.
    pub(crate) fn start(&mut self, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let response = self.response("in_progress", Value::Null, Value::Null);
            self.emit(out, kind, json!({"response": response}));
        }
    }

    pub(crate) fn push(&mut self, event: &TurnEvent, out: &mut Vec<Value>) {
        self.start(out);
        if self.finished {
            return;
        }
        match event {
            TurnEvent::ReasoningDelta(delta) => self.text_delta(out, TextKind::Reasoning, delta),
            TurnEvent::TextDelta(delta) => self.text_delta(out, TextKind::Message, delta),
            TurnEvent::ToolCallStarted { call_id, name } => {
                self.close_text(out, "completed");
                self.open_call(out, call_id, name);
            }
            TurnEvent::ToolCallArgumentsDelta { call_id, delta } => {
                self.close_text(out, "completed");
                let i = self.open_call(out, call_id, "");
                self.open_calls[i].arguments.push_str(delta);
                let (id, index) = (self.open_calls[i].id.clone(), self.open_calls[i].index);
                self.emit(
                    out,
                    "response.mcp_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": delta}),
                );
            }
            TurnEvent::ToolCallCompleted { call_id, name, arguments } => {
                self.close_text(out, "completed");
                let i = self.open_call(out, call_id, name);
                let call = &mut self.open_calls[i];
                if !name.is_empty() {
                    call.name = name.clone();
                }
                call.arguments = arguments.clone();
                call.arguments_done = true;
                let fields = json!({"item_id": call.id, "output_index": call.index, "arguments": arguments});
                self.emit(out, "response.mcp_call_arguments.done", fields);
            }
            TurnEvent::ToolResult { call_id, name, output } => {
                self.close_text(out, "completed");
                let i = self.open_call(out, call_id, name);
                let call = self.open_calls.remove(i);
                self.close_call(out, call, Some(output));
            }
            TurnEvent::AuthorizationRequired { provider, url } => {
                self.close_text(out, "completed");
                self.authorization(out, provider, url);
            }
            TurnEvent::Usage(usage) => add_usage(&mut self.usage, *usage),
            TurnEvent::Finished(end) => self.finish(out, end),
        }
    }

    fn finish(&mut self, out: &mut Vec<Value>, end: &TurnEnd) {
        let item_status = if matches!(end, TurnEnd::Completed) { "completed" } else { "incomplete" };
        self.close_text(out, item_status);
        for call in std::mem::take(&mut self.open_calls) {
            self.close_call(out, call, None);
        }
        let (kind, response) = match end {
            TurnEnd::Completed => ("response.completed", self.response("completed", Value::Null, Value::Null)),
            // The SDK's enum has no reason for an iteration bound; `max_output_tokens` is the nearest (the
            // turn's budget ran out), and strict clients accept it.
            TurnEnd::Incomplete(_) => (
                "response.incomplete",
                self.response("incomplete", Value::Null, json!({"reason": "max_output_tokens"})),
            ),
            TurnEnd::Failed(failure) => ("response.failed", self.response("failed", error(failure), Value::Null)),
        };
        self.emit(out, kind, json!({"response": response}));
        self.finished = true;
    }

    fn text_delta(&mut self, out: &mut Vec<Value>, kind: TextKind, delta: &str) {
        if self.open_text.as_ref().is_some_and(|t| t.kind != kind) {
            self.close_text(out, "completed");
        }
        if self.open_text.is_none() {
            let index = self.output.len();
            let (id, item, part) = match kind {
                TextKind::Reasoning => {
                    let id = new_id("rs");
                    let item =
                        json!({"type": "reasoning", "id": id, "summary": [], "content": [], "status": "in_progress"});
                    (id, item, json!({"type": "reasoning_text", "text": ""}))
                }
                TextKind::Message => {
                    let id = new_id("msg");
                    let item = json!({"type": "message", "id": id, "role": "assistant", "status": "in_progress", "content": []});
                    (id, item, json!({"type": "output_text", "text": "", "annotations": []}))
                }
            };
            self.output.push(item.clone());
            self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
            let fields = json!({"item_id": id, "output_index": index, "content_index": 0, "part": part});
            self.emit(out, "response.content_part.added", fields);
            self.open_text = Some(OpenText { index, id, kind, text: String::new() });
        }
        let Some(text) = self.open_text.as_mut() else { return };
        text.text.push_str(delta);
        let (id, index) = (text.id.clone(), text.index);
        match kind {
            TextKind::Reasoning => self.emit(
                out,
                "response.reasoning_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta}),
            ),
            TextKind::Message => self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            ),
        }
    }

    fn close_text(&mut self, out: &mut Vec<Value>, status: &str) {
        let Some(OpenText { index, id, kind, text }) = self.open_text.take() else { return };
        let at = json!({"item_id": id, "output_index": index, "content_index": 0});
        let (done_kind, done, part, item) = match kind {
            TextKind::Reasoning => {
                let part = json!({"type": "reasoning_text", "text": text});
                let item = json!({"type": "reasoning", "id": id, "summary": [], "content": [part], "status": status});
                ("response.reasoning_text.done", json!({"text": text}), part, item)
            }
            TextKind::Message => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let item =
                    json!({"type": "message", "id": id, "role": "assistant", "status": status, "content": [part]});
                ("response.output_text.done", json!({"text": text, "logprobs": []}), part, item)
            }
        };
        self.emit(out, done_kind, merge(&at, done));
        self.emit(out, "response.content_part.done", merge(&at, json!({"part": part})));
        self.output[index] = item.clone();
        self.emit(out, "response.output_item.done", json!({"output_index": index, "item": item}));
    }

    /// A whole assistant `message` item with the link, whose `output_text` carries a `url_citation`
    /// annotation over the URL (titled "Authorize <provider>"): the Responses idiom for a link a client can
    /// act on, announced by `response.output_text.annotation.added`.
    fn authorization(&mut self, out: &mut Vec<Value>, provider: &str, url: &str) {
        let text = crate::agent::authorization_message(provider, url);
        let start = text.find(url).map_or(0, |byte| text[..byte].chars().count());
        let end = start + url.chars().count();
        let annotation = json!({"type": "url_citation", "url": url, "title": format!("Authorize {provider}"),
            "start_index": start, "end_index": end});
        let index = self.output.len();
        let id = new_id("msg");
        let item = json!({"type": "message", "id": id, "role": "assistant", "status": "in_progress", "content": []});
        self.output.push(item.clone());
        self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
        let at = json!({"item_id": id, "output_index": index, "content_index": 0});
        let empty = json!({"type": "output_text", "text": "", "annotations": []});
        self.emit(out, "response.content_part.added", merge(&at, json!({"part": empty})));
        self.emit(out, "response.output_text.delta", merge(&at, json!({"delta": text, "logprobs": []})));
        let added = json!({"annotation_index": 0, "annotation": annotation});
        self.emit(out, "response.output_text.annotation.added", merge(&at, added));
        self.emit(out, "response.output_text.done", merge(&at, json!({"text": text, "logprobs": []})));
        let part = json!({"type": "output_text", "text": text, "annotations": [annotation]});
        self.emit(out, "response.content_part.done", merge(&at, json!({"part": part})));
        let item = json!({"type": "message", "id": id, "role": "assistant", "status": "completed", "content": [part]});
        self.output[index] = item.clone();
        self.emit(out, "response.output_item.done", json!({"output_index": index, "item": item}));
    }

    /// The open call with this id, added now if it is new.
    fn open_call(&mut self, out: &mut Vec<Value>, call_id: &str, name: &str) -> usize {
        if let Some(i) = self.open_calls.iter().position(|c| c.call_id == call_id) {
            return i;
        }
        let index = self.output.len();
        let id = new_id("mcp");
        let item = mcp_call(&id, name, "", None, "in_progress");
        self.output.push(item.clone());
        self.emit(out, "response.output_item.added", json!({"output_index": index, "item": item}));
        self.emit(out, "response.mcp_call.in_progress", json!({"item_id": id, "output_index": index}));
        let call = OpenCall {
            index,
            id,
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
            arguments_done: false,
        };
        self.open_calls.push(call);
        self.open_calls.len() - 1
    }

    /// Ends a call item: with the tool's result, or without one when the turn ended first.
    fn close_call(&mut self, out: &mut Vec<Value>, call: OpenCall, result: Option<&ToolOutput>) {
        let at = json!({"item_id": call.id, "output_index": call.index});
        if !call.arguments_done {
            self.emit(out, "response.mcp_call_arguments.done", merge(&at, json!({"arguments": call.arguments})));
        }
        let status = match result {
            Some(output) if output.is_error => "failed",
            Some(_) => "completed",
            None => "incomplete",
        };
        if result.is_some() {
            let kind = if status == "failed" { "response.mcp_call.failed" } else { "response.mcp_call.completed" };
            self.emit(out, kind, at);
        }
        let item = mcp_call(&call.id, &call.name, &call.arguments, result.map(|r| r.text.as_str()), status);
        self.output[call.index] = item.clone();
        self.emit(out, "response.output_item.done", json!({"output_index": call.index, "item": item}));
    }

    fn emit(&mut self, out: &mut Vec<Value>, kind: &str, fields: Value) {
        let mut event = Map::new();
        event.insert("type".into(), kind.into());
        event.insert("sequence_number".into(), self.seq.into());
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.seq += 1;
        let event = Value::Object(event);
        if let Some(response) = event.get("response") {
            self.last = Some(response.clone());
        }
        out.push(event);
    }

    /// The Response object now: every field the SDK requires, unset ones as `null` like OpenAI.
    fn response(&self, status: &str, error: Value, incomplete_details: Value) -> Value {
        let done = !matches!(status, "in_progress");
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": if done { Value::Array(self.output.clone()) } else { json!([]) },
            "error": error,
            "incomplete_details": incomplete_details,
            "instructions": self.echo.instructions,
            "metadata": self.echo.metadata,
            "conversation": self.echo.conversation.as_ref().map(|id| json!({"id": id})),
            "previous_response_id": null,
            "parallel_tool_calls": true,
            "tool_choice": "auto",
            "tools": [],
            "temperature": self.echo.temperature,
            "top_p": self.echo.top_p,
            "max_output_tokens": self.echo.max_output_tokens,
            "store": false,
            "background": false,
            "text": {"format": {"type": "text"}},
            "usage": if done { self.usage.map(usage) } else { None },
        })
    }
}

/// One event as an SSE frame: `event: <type>` and its JSON.
pub(crate) fn sse_frame(event: &Value) -> Bytes {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

fn mcp_call(id: &str, name: &str, arguments: &str, output: Option<&str>, status: &str) -> Value {
    json!({"type": "mcp_call", "id": id, "server_label": SERVER_LABEL, "name": name, "arguments": arguments,
        "output": output, "error": null, "status": status})
}

fn error(failure: &Failure) -> Value {
    json!({"code": failure.code.as_str(), "message": failure.message})
}

fn usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    })
}

fn merge(at: &Value, more: Value) -> Value {
    let mut merged = at.as_object().cloned().unwrap_or_default();
    if let Value::Object(more) = more {
        merged.extend(more);
    }
    Value::Object(merged)
}
