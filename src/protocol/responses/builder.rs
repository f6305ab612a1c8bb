//! A turn's events → the Responses API stream (responses-api.md, "Streaming"), and the final Response.
//!
//! - `created` → `in_progress` first; then per output item, `output_index` 0, 1, 2… in the order added:
//!   `output_item.added` → its content events → `output_item.done` (same index, same id); then exactly one of
//!   `completed` | `incomplete` | `failed`, whose `response` holds every item and the summed `usage`.
//! - Reasoning is a `reasoning` item (`content_part.added` with a `reasoning_text` part, then
//!   `reasoning_text.delta`… `.done`, `content_part.done`); answer text a `message` item with one
//!   `output_text` part. At most one of the two is open; any other event closes it.
//! - Each MCP server's tool listing is an `mcp_list_tools` item (`server_label`, the tools with their input
//!   schemas): `output_item.added` with no tools, `mcp_list_tools.in_progress`, `.completed`, then
//!   `output_item.done` with them. They come first: the turn lists its tools before the model's first call.
//! - A tool the function ran is an `mcp_call` item, labelled with the server that listed it: added at
//!   `ToolCallStarted` (several may be open), `mcp_call_arguments.delta`/`.done`, then at its `ToolResult` `mcp_call.completed` (or `.failed` for an
//!   `isError` result) and `output_item.done` with the tool's text as `output`. A failed tool's text is in
//!   `output` and `error` stays null (`McpCall.error` changed type between SDK majors).
//! - Items still open at the end are closed with status `incomplete` unless the turn completed.

//!
//! Cost: a tool turn is some thirty events, three of them whole Response objects. Each event is written
//! straight into its frame's bytes from borrowed state ([`super::wire`]); items live once, in `output`, and
//! change from their added to their final shape in place, so nothing is cloned per event, and an answer
//! (`stream: false`) writes no events at all, only the final Response.

use std::collections::HashMap;
use std::sync::Arc;

use super::request::Echo;
use super::wire::{EMPTY, Event, Item, Part, ResponseObject, Standing, TextKind, UrlCitation};
use crate::agent::{TurnEnd, TurnEvent};
use crate::clock::unix_now;
use crate::failure::FailureCode;
use crate::llm::Usage;
use crate::mcp::{ToolDef, ToolOutput};
use crate::protocol::openai::{add_usage, new_id};
use bytes::Bytes;

/// The `server_label` of a call to a tool no listing named (the model made its name up).
const UNLISTED_SERVER: &str = "mcp";

/// Whether events are written (`stream: true`) or only the final Response is (`stream: false`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Stream,
    Answer,
}

struct OpenCall {
    index: usize,
    call_id: String,
    arguments_done: bool,
}

/// What the Response objects are made of.
struct Draft {
    id: String,
    created_at: u64,
    model: String,
    echo: Echo,
    /// Every item added, by `output_index`.
    output: Vec<Item>,
    usage: Option<Usage>,
}

impl Draft {
    fn response<'a>(&'a self, standing: Standing<'a>) -> ResponseObject<'a> {
        ResponseObject {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
            echo: &self.echo,
            output: &self.output,
            usage: self.usage,
            standing,
        }
    }

    /// An event's `item_id` and `output_index`.
    fn at(&self, index: usize) -> Event<'_> {
        Event { item_id: Some(self.output[index].id()), output_index: Some(index), ..Event::default() }
    }

    /// `output_item.added` / `.done`: the item as it stands.
    fn item(&self, kind: &'static str, index: usize) -> Event<'_> {
        Event { kind, item: Some(&self.output[index]), output_index: Some(index), ..Event::default() }
    }
}

/// Numbers the events and, in stream mode, writes each as its SSE frame.
struct Frames {
    mode: Mode,
    seq: u64,
}

impl Frames {
    /// Appends the event's frame to `out`: one buffer per turn event, however many events it makes, so
    /// the body gets one chunk for them.
    fn emit(&mut self, out: &mut Vec<u8>, mut event: Event<'_>) {
        if self.mode == Mode::Stream {
            event.sequence_number = self.seq;
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event.kind.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            // Writing into a Vec fails only if a Serialize impl does; ours do not.
            let _ = serde_json::to_writer(&mut *out, &event);
            out.extend_from_slice(b"\n\n");
        }
        self.seq += 1;
    }
}

/// Builds one Response: `start` and every `push` append the SSE frames to send (none in answer mode).
pub(crate) struct ResponsesBuilder {
    draft: Draft,
    frames: Frames,
    started: bool,
    /// How the turn ended, once it has.
    end: Option<TurnEnd>,
    /// The `output_index` of the open reasoning or message item.
    open_text: Option<usize>,
    open_calls: Vec<OpenCall>,
    /// Each listed tool's server label, by the tool's (turn-unique) name.
    labels: HashMap<String, String>,
}

impl ResponsesBuilder {
    pub(crate) fn new(model: String, echo: Echo, mode: Mode) -> Self {
        ResponsesBuilder {
            draft: Draft {
                id: echo.response_id.clone().unwrap_or_else(|| new_id("resp")),
                created_at: unix_now(),
                model,
                echo,
                output: Vec::new(),
                usage: None,
            },
            frames: Frames { mode, seq: 0 },
            started: false,
            end: None,
            open_text: None,
            open_calls: Vec::new(),
            labels: HashMap::new(),
        }
    }

    /// A background turn's Response: its id and queueing time are the ticket's.
    pub(crate) fn with_ticket(mut self, id: &str, created_at: u64) -> Self {
        id.clone_into(&mut self.draft.id);
        self.draft.created_at = created_at;
        self
    }

    /// The Response of a turn still queued (a background turn before FC delivered it).
    pub(crate) fn queued_body(&self) -> String {
        serde_json::to_string(&self.draft.response(Standing::Queued)).unwrap_or_default()
    }

    /// How the turn ended, once it has.
    pub(crate) fn end(&self) -> Option<&TurnEnd> {
        self.end.as_ref()
    }

    /// The final Response as a body, once `Finished` was pushed.
    pub(crate) fn final_body(&self) -> Option<Bytes> {
        let response = self.draft.response(self.standing(self.end.as_ref()?));
        serde_json::to_vec(&response).ok().map(Bytes::from)
    }

    /// A background turn that was cancelled is `cancelled`, as OpenAI shows one; a foreground turn has no
    /// such status (its client stopped it by leaving), so a cancel there stays a failure.
    fn standing<'a>(&self, end: &'a TurnEnd) -> Standing<'a> {
        match end {
            TurnEnd::Failed(failure) if self.draft.echo.background && failure.code == FailureCode::Cancelled => {
                Standing::Cancelled
            }
            end => standing(end),
        }
    }

    /// `response.created` and `response.in_progress`; a second call adds nothing.
    pub(crate) fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let response = Some(self.draft.response(Standing::InProgress));
            self.frames.emit(out, Event { kind, response, ..Event::default() });
        }
    }

    pub(crate) fn push(&mut self, event: &TurnEvent, out: &mut Vec<u8>) {
        self.start(out);
        if self.end.is_some() {
            return;
        }
        match event {
            TurnEvent::ToolsListed { server, tools } => {
                self.close_text(out, "completed");
                self.list_tools(out, server, tools);
            }
            TurnEvent::ReasoningDelta(delta) => self.text_delta(out, TextKind::Reasoning, delta),
            TurnEvent::TextDelta(delta) => self.text_delta(out, TextKind::Message, delta),
            TurnEvent::ToolCallStarted { call_id, name } => {
                self.close_text(out, "completed");
                self.open_call(out, call_id, name);
            }
            TurnEvent::ToolCallArgumentsDelta { call_id, delta } => {
                self.close_text(out, "completed");
                let index = self.open_call(out, call_id, "");
                if let Item::Call { arguments, .. } = &mut self.draft.output[index] {
                    arguments.push_str(delta);
                }
                let at = self.draft.at(index);
                self.frames.emit(out, Event { kind: "response.mcp_call_arguments.delta", delta: Some(delta), ..at });
            }
            TurnEvent::ToolCallCompleted { call_id, name, arguments } => {
                self.close_text(out, "completed");
                let index = self.open_call(out, call_id, name);
                if let Some(call) = self.open_calls.iter_mut().find(|c| c.index == index) {
                    call.arguments_done = true;
                }
                let label = (!name.is_empty()).then(|| self.label_of(name).to_owned());
                if let Item::Call { name: item_name, arguments: item_arguments, server_label, .. } =
                    &mut self.draft.output[index]
                {
                    if let Some(label) = label {
                        name.clone_into(item_name);
                        *server_label = label;
                    }
                    arguments.clone_into(item_arguments);
                }
                let at = self.draft.at(index);
                let done = Event { kind: "response.mcp_call_arguments.done", arguments: Some(arguments), ..at };
                self.frames.emit(out, done);
            }
            TurnEvent::ToolResult { call_id, name, output } => {
                self.close_text(out, "completed");
                let index = self.open_call(out, call_id, name);
                self.close_call(out, index, Some(output));
            }
            TurnEvent::AuthorizationRequired { provider, url } => {
                self.close_text(out, "completed");
                self.authorization(out, provider, url);
            }
            TurnEvent::ApprovalRequested { request_id, server, name, arguments, .. } => {
                self.close_text(out, "completed");
                let index = self.draft.output.len();
                self.draft.output.push(Item::ApprovalRequest {
                    id: request_id.clone(),
                    server_label: server.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                });
                self.frames.emit(out, self.draft.item("response.output_item.added", index));
                self.frames.emit(out, self.draft.item("response.output_item.done", index));
            }
            // The Responses API has no item for a tool's question (an MCP elicitation): this face does not
            // relay them, the MCP client declines them and the model is told (docs/faces.md).
            TurnEvent::QuestionAsked(_) => {}
            TurnEvent::Usage(usage) => add_usage(&mut self.draft.usage, *usage),
            TurnEvent::Finished(end) => self.finish(out, end),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>, end: &TurnEnd) {
        let item_status = if matches!(end, TurnEnd::Completed) { "completed" } else { "incomplete" };
        self.close_text(out, item_status);
        while let Some(call) = self.open_calls.first() {
            self.close_call(out, call.index, None);
        }
        let kind = match end {
            TurnEnd::Completed => "response.completed",
            TurnEnd::Incomplete(_) => "response.incomplete",
            TurnEnd::Failed(_) => "response.failed",
        };
        let standing = self.standing(end);
        let response = Some(self.draft.response(standing));
        self.frames.emit(out, Event { kind, response, ..Event::default() });
        self.end = Some(end.clone());
    }

    fn text_delta(&mut self, out: &mut Vec<u8>, kind: TextKind, delta: &str) {
        let open_kind = self.open_text.and_then(|index| match &self.draft.output[index] {
            Item::Text { kind, .. } => Some(*kind),
            _ => None,
        });
        if open_kind.is_some_and(|open| open != kind) {
            self.close_text(out, "completed");
        }
        let index = match self.open_text {
            Some(index) => index,
            None => {
                let index = self.draft.output.len();
                let id = new_id(if kind == TextKind::Reasoning { "rs" } else { "msg" });
                let text = String::new();
                self.draft.output.push(Item::Text {
                    kind,
                    id,
                    text,
                    status: "in_progress",
                    open: true,
                    citation: None,
                });
                self.frames.emit(out, self.draft.item("response.output_item.added", index));
                let part = Some(Part::new(kind, ""));
                let at = self.draft.at(index);
                self.frames
                    .emit(out, Event { kind: "response.content_part.added", content_index: Some(0), part, ..at });
                self.open_text = Some(index);
                index
            }
        };
        if let Item::Text { text, .. } = &mut self.draft.output[index] {
            text.push_str(delta);
        }
        let at = Event { content_index: Some(0), delta: Some(delta), ..self.draft.at(index) };
        let event = match kind {
            TextKind::Reasoning => Event { kind: "response.reasoning_text.delta", ..at },
            TextKind::Message => Event { kind: "response.output_text.delta", logprobs: Some(EMPTY), ..at },
        };
        self.frames.emit(out, event);
    }

    fn close_text(&mut self, out: &mut Vec<u8>, status: &'static str) {
        let Some(index) = self.open_text.take() else { return };
        let Item::Text { kind, text, citation, .. } = &self.draft.output[index] else { return };
        let (kind, text) = (*kind, text.as_str());
        let at = Event { content_index: Some(0), text: Some(text), ..self.draft.at(index) };
        let done = match kind {
            TextKind::Reasoning => Event { kind: "response.reasoning_text.done", ..at },
            TextKind::Message => Event { kind: "response.output_text.done", logprobs: Some(EMPTY), ..at },
        };
        self.frames.emit(out, done);
        let part = Some(Part::annotated(kind, text, citation.as_ref()));
        let at = Event { content_index: Some(0), ..self.draft.at(index) };
        self.frames.emit(out, Event { kind: "response.content_part.done", part, ..at });
        if let Item::Text { status: item_status, open, .. } = &mut self.draft.output[index] {
            *item_status = status;
            *open = false;
        }
        self.frames.emit(out, self.draft.item("response.output_item.done", index));
    }

    /// A whole assistant `message` item with the link, whose `output_text` carries a `url_citation`
    /// annotation over the URL (titled "Authorize <provider>"): the Responses idiom for a link a client can
    /// act on, announced by `response.output_text.annotation.added`.
    fn authorization(&mut self, out: &mut Vec<u8>, provider: &str, url: &str) {
        let text = crate::agent::authorization_message(provider, url);
        // The SDK's indexes count characters, not bytes.
        let start = text.find(url).map_or(0, |byte| text[..byte].chars().count());
        let citation = UrlCitation {
            end_index: start + url.chars().count(),
            start_index: start,
            title: format!("Authorize {provider}"),
            url: url.to_owned(),
        };
        let index = self.draft.output.len();
        let id = new_id("msg");
        let item = Item::Text { kind: TextKind::Message, id, text, status: "in_progress", open: true, citation: None };
        self.draft.output.push(item);
        self.frames.emit(out, self.draft.item("response.output_item.added", index));
        let part = Some(Part::new(TextKind::Message, ""));
        let at = Event { content_index: Some(0), ..self.draft.at(index) };
        self.frames.emit(out, Event { kind: "response.content_part.added", part, ..at });
        let Item::Text { text, .. } = &self.draft.output[index] else { return };
        let at = Event { content_index: Some(0), ..self.draft.at(index) };
        let delta = Event { kind: "response.output_text.delta", delta: Some(text), logprobs: Some(EMPTY), ..at };
        self.frames.emit(out, delta);
        let at = Event { content_index: Some(0), ..self.draft.at(index) };
        let added = Event {
            kind: "response.output_text.annotation.added",
            annotation: Some(&citation),
            annotation_index: Some(0),
            ..at
        };
        self.frames.emit(out, added);
        if let Item::Text { citation: item_citation, .. } = &mut self.draft.output[index] {
            *item_citation = Some(citation);
        }
        self.open_text = Some(index);
        self.close_text(out, "completed");
    }

    /// One server's listing, added and done at once (the tools were listed before the turn reported them).
    fn list_tools(&mut self, out: &mut Vec<u8>, server: &str, tools: &Arc<[ToolDef]>) {
        for tool in tools.iter() {
            self.labels.insert(tool.name.clone(), server.to_owned());
        }
        let index = self.draft.output.len();
        let item =
            Item::Listing { id: new_id("mcpl"), server_label: server.to_owned(), tools: tools.clone(), open: true };
        self.draft.output.push(item);
        self.frames.emit(out, self.draft.item("response.output_item.added", index));
        self.frames.emit(out, Event { kind: "response.mcp_list_tools.in_progress", ..self.draft.at(index) });
        self.frames.emit(out, Event { kind: "response.mcp_list_tools.completed", ..self.draft.at(index) });
        if let Item::Listing { open, .. } = &mut self.draft.output[index] {
            *open = false;
        }
        self.frames.emit(out, self.draft.item("response.output_item.done", index));
    }

    /// The server label of a tool, by its name.
    fn label_of(&self, tool: &str) -> &str {
        self.labels.get(tool).map_or(UNLISTED_SERVER, String::as_str)
    }

    /// The `output_index` of the open call with this id, added now if it is new.
    fn open_call(&mut self, out: &mut Vec<u8>, call_id: &str, name: &str) -> usize {
        if let Some(call) = self.open_calls.iter().find(|c| c.call_id == call_id) {
            return call.index;
        }
        let index = self.draft.output.len();
        let item = Item::Call {
            id: new_id("mcp"),
            server_label: self.label_of(name).to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
            output: None,
            status: "in_progress",
        };
        self.draft.output.push(item);
        self.frames.emit(out, self.draft.item("response.output_item.added", index));
        self.frames.emit(out, Event { kind: "response.mcp_call.in_progress", ..self.draft.at(index) });
        self.open_calls.push(OpenCall { index, call_id: call_id.to_owned(), arguments_done: false });
        index
    }

    /// Ends the open call at `index`: with the tool's result, or without one when the turn ended first.
    fn close_call(&mut self, out: &mut Vec<u8>, index: usize, result: Option<&ToolOutput>) {
        let Some(at) = self.open_calls.iter().position(|c| c.index == index) else { return };
        let call = self.open_calls.remove(at);
        if !call.arguments_done
            && let Item::Call { arguments, .. } = &self.draft.output[index]
        {
            let at = self.draft.at(index);
            self.frames.emit(out, Event { kind: "response.mcp_call_arguments.done", arguments: Some(arguments), ..at });
        }
        let status = match result {
            Some(output) if output.is_error => "failed",
            Some(_) => "completed",
            None => "incomplete",
        };
        if result.is_some() {
            let kind = if status == "failed" { "response.mcp_call.failed" } else { "response.mcp_call.completed" };
            self.frames.emit(out, Event { kind, ..self.draft.at(index) });
        }
        if let Item::Call { output, status: item_status, .. } = &mut self.draft.output[index] {
            *output = result.map(|r| r.text.clone());
            *item_status = status;
        }
        self.frames.emit(out, self.draft.item("response.output_item.done", index));
    }
}

fn standing(end: &TurnEnd) -> Standing<'_> {
    match end {
        TurnEnd::Completed => Standing::Completed,
        TurnEnd::Incomplete(_) => Standing::Incomplete,
        TurnEnd::Failed(failure) => Standing::Failed(failure),
    }
}
