//! Turns a turn's `TurnEvent`s into the protocol's event sequence (see process-protocol.md, "Event
//! sequence"): response created/in_progress, then per message an in_progress event, content deltas, the
//! completed content and the completed message, and at the end the final `response`.
//!
//! Lifecycle rules:
//! - A reasoning message is opened by the first `ReasoningDelta` and closed by any other event; an answer
//!   message likewise by `TextDelta`. At most one of the two is open at a time.
//! - A tool call message is opened by `ToolCallStarted` (or the first event naming its call id) and closed
//!   by `ToolCallCompleted`; several may be open at once.
//! - `ToolResult` is one completed `plugin_call_output` message.
//! - `Finished` closes whatever is still open as completed (a tool call with the arguments received so
//!   far) and emits the final response; events after it are ignored.

use super::pyjson::to_python_json;
use super::wire::{
    ContentBody, ContentObject, ErrorObject, MessageKind, MessageObject, MessageRole, ResponseObject, Status,
    StreamObject, ToolData,
};
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::FailureCode;
use crate::llm::Usage;
use crate::mcp::QuestionForm;

struct OpenText {
    msg_id: String,
    kind: MessageKind,
    text: String,
}

struct OpenCall {
    msg_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Builds one response: every `push` returns the objects to stream, in order, and the final
/// [`ResponseObject`] (the non-streaming body) is kept. The two renderers ([`super::AgentScopeStream`],
/// [`super::AgentScopeAnswer`]) use it the same way; only what they keep differs.
pub struct ResponseBuilder {
    started: bool,
    finished: bool,
    seq: u64,
    id: String,
    created_at: u64,
    session_id: Option<String>,
    output: Vec<MessageObject>,
    open_text: Option<OpenText>,
    open_calls: Vec<OpenCall>,
    usage: Option<Usage>,
    last: Option<ResponseObject>,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", crate::ids::uuid())
}

impl ResponseBuilder {
    /// A builder for a response created now.
    pub fn new(session_id: Option<String>) -> Self {
        ResponseBuilder {
            started: false,
            finished: false,
            seq: 0,
            id: new_id("response"),
            created_at: crate::clock::unix_now(),
            session_id,
            output: Vec::new(),
            open_text: None,
            open_calls: Vec::new(),
            usage: None,
            last: None,
        }
    }

    /// A background task's response: the task's id and queueing time.
    pub(crate) fn with_id(mut self, id: &str, created_at: u64) -> Self {
        id.clone_into(&mut self.id);
        self.created_at = created_at;
        self
    }

    /// `response_<uuid4>` of this response.
    pub fn response_id(&self) -> &str {
        &self.id
    }

    /// True once `Finished` was pushed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The latest response object: the final one once finished (`None` before `start`).
    pub fn response(&self) -> Option<&ResponseObject> {
        self.last.as_ref()
    }

    /// Response `created` and `in_progress`. Called implicitly by the first `push`; a second call is a no-op.
    pub fn start(&mut self) -> Vec<StreamObject> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            for status in [Status::Created, Status::InProgress] {
                let r = self.response_object(status, None, None);
                self.emit(&mut out, || StreamObject::Response(r.clone()));
                self.last = Some(r);
            }
        }
        out
    }

    /// The events for one agent event, in order.
    pub fn push(&mut self, event: &TurnEvent) -> Vec<StreamObject> {
        let mut out = self.start();
        if self.is_finished() {
            return out;
        }
        match event {
            TurnEvent::ReasoningDelta(delta) => self.text_delta(&mut out, MessageKind::Reasoning, delta),
            TurnEvent::TextDelta(delta) => self.text_delta(&mut out, MessageKind::Message, delta),
            TurnEvent::ToolCallStarted { call_id, name } => {
                self.close_text(&mut out);
                self.open_call(&mut out, call_id, name);
            }
            TurnEvent::ToolCallArgumentsDelta { call_id, delta } => {
                self.close_text(&mut out);
                let i = self.open_call(&mut out, call_id, "");
                let call = &mut self.open_calls[i];
                call.arguments.push_str(delta);
                let content = ContentObject {
                    sequence_number: None,
                    status: Status::InProgress,
                    index: 0,
                    delta: true,
                    msg_id: call.msg_id.clone(),
                    body: ContentBody::Data(ToolData::Call {
                        call_id: call.call_id.clone(),
                        name: call.name.clone(),
                        arguments: delta.clone(),
                    }),
                };
                self.emit_content(&mut out, content);
            }
            TurnEvent::ToolCallCompleted { call_id, name, arguments } => {
                self.close_text(&mut out);
                let i = self.open_call(&mut out, call_id, name);
                let mut call = self.open_calls.remove(i);
                if !name.is_empty() {
                    call.name = name.clone();
                }
                call.arguments = arguments.clone();
                self.close_call(&mut out, call);
            }
            TurnEvent::ToolResult { call_id, name, output } => {
                self.close_text(&mut out);
                if let Some(i) = self.open_calls.iter().position(|c| &c.call_id == call_id) {
                    let call = self.open_calls.remove(i);
                    self.close_call(&mut out, call);
                }
                let msg_id = new_id("msg");
                let content = ContentObject {
                    sequence_number: None,
                    status: Status::Completed,
                    index: 0,
                    delta: false,
                    msg_id: msg_id.clone(),
                    // The AgentScope runtime puts the MCP content list into `output` with `json.dumps`.
                    body: ContentBody::Data(ToolData::Output {
                        call_id: call_id.clone(),
                        name: name.clone(),
                        output: to_python_json(&output.content),
                    }),
                };
                let seq = self.next_seq();
                let mut msg =
                    message(seq, Status::Completed, msg_id, MessageKind::PluginCallOutput, Some(vec![content]));
                // A failed call (the server's `isError`, the gateway's refusal, a timeout) says so in the
                // runtime `Message`'s own error field, so a client can show it as failed without reading
                // the text; the model still reads the text and goes on.
                if output.is_error {
                    msg.code = Some(FailureCode::ToolError.as_str().to_owned());
                }
                self.emit(&mut out, || StreamObject::Message(msg.clone()));
                self.output.push(msg);
            }
            TurnEvent::AuthorizationRequired { provider, url } => {
                self.close_text(&mut out);
                self.authorization(&mut out, provider, url);
            }
            TurnEvent::ApprovalRequested { request_id, server, name, arguments, .. } => {
                self.close_text(&mut out);
                let msg_id = new_id("msg");
                let seq = self.next_seq();
                let opened = message(seq, Status::InProgress, msg_id.clone(), MessageKind::McpApprovalRequest, None);
                self.emit(&mut out, || StreamObject::Message(opened));
                let content = ContentObject {
                    sequence_number: None,
                    status: Status::Completed,
                    index: 0,
                    delta: false,
                    msg_id: msg_id.clone(),
                    body: ContentBody::Data(ToolData::ApprovalRequest {
                        id: request_id.clone(),
                        arguments: arguments.clone(),
                        name: name.clone(),
                        server_label: server.clone(),
                    }),
                };
                let content = self.emit_content(&mut out, content);
                self.complete_message(&mut out, msg_id, MessageKind::McpApprovalRequest, content);
            }
            TurnEvent::QuestionAsked(asked) => {
                let crate::agent::AskedQuestion {
                    request_id,
                    server,
                    name,
                    arguments,
                    message: text,
                    form,
                    expires_at,
                    ..
                } = &**asked;
                self.close_text(&mut out);
                let (mode, requested_schema, url) = match form {
                    QuestionForm::Schema(schema) => ("form", Some(schema.clone()), None),
                    QuestionForm::Url(url) => ("url", None, Some(url.clone())),
                };
                let said = match &url {
                    Some(url) => format!("{text}\n{url}"),
                    None => text.clone(),
                };
                let data = ToolData::ElicitationRequest {
                    kind: "mcp_elicitation_request",
                    id: request_id.clone(),
                    server_label: server.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                    message: text.clone(),
                    mode,
                    requested_schema,
                    url,
                    expires_at: *expires_at,
                };
                self.text_and_data(&mut out, said, data);
            }
            TurnEvent::Usage(usage) => {
                self.close_text(&mut out);
                *self.usage.get_or_insert_with(Usage::default) += *usage;
            }
            TurnEvent::Finished(end) => {
                self.finish(&mut out, end);
            }
            // The AgentScope protocol has no message for a tool listing (the runtime sends none), and
            // `/process` stays byte-compatible with it.
            TurnEvent::ToolsListed { .. } => {}
        }
        out
    }

    /// A keep-alive for a quiet stream: a `message` of the runtime's `heartbeat` type, completed at once
    /// with no content. It takes the next sequence number (the numbers stay contiguous) and stays out of
    /// the response's output.
    pub(crate) fn heartbeat(&mut self) -> StreamObject {
        let seq = self.next_seq();
        StreamObject::Message(message(seq, Status::Completed, new_id("msg"), MessageKind::Heartbeat, Some(Vec::new())))
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    fn emit(&self, out: &mut Vec<StreamObject>, make: impl FnOnce() -> StreamObject) {
        out.push(make());
    }

    fn emit_content(&mut self, out: &mut Vec<StreamObject>, mut content: ContentObject) -> ContentObject {
        content.sequence_number = Some(self.next_seq());
        self.emit(out, || StreamObject::Content(content.clone()));
        content
    }

    fn response_object(
        &mut self,
        status: Status,
        error: Option<ErrorObject>,
        completed: Option<u64>,
    ) -> ResponseObject {
        let finished = completed.is_some();
        ResponseObject {
            sequence_number: self.next_seq(),
            object: "response",
            status,
            error,
            id: self.id.clone(),
            created_at: self.created_at,
            completed_at: completed,
            output: finished.then(|| self.output.clone()),
            usage: self.usage,
            session_id: self.session_id.clone(),
        }
    }

    fn text_delta(&mut self, out: &mut Vec<StreamObject>, kind: MessageKind, delta: &str) {
        if self.open_text.as_ref().is_some_and(|t| t.kind != kind) {
            self.close_text(out);
        }
        if self.open_text.is_none() {
            let msg_id = new_id("msg");
            let seq = self.next_seq();
            let msg = message(seq, Status::InProgress, msg_id.clone(), kind, None);
            self.emit(out, || StreamObject::Message(msg));
            self.open_text = Some(OpenText { msg_id, kind, text: String::new() });
        }
        let Some(open) = self.open_text.as_mut() else {
            return;
        };
        open.text.push_str(delta);
        let content = ContentObject {
            sequence_number: None,
            status: Status::InProgress,
            index: 0,
            delta: true,
            msg_id: open.msg_id.clone(),
            body: ContentBody::Text(delta.to_owned()),
        };
        self.emit_content(out, content);
    }

    fn close_text(&mut self, out: &mut Vec<StreamObject>) {
        let Some(open) = self.open_text.take() else {
            return;
        };
        let content = ContentObject {
            sequence_number: None,
            status: Status::Completed,
            index: 0,
            delta: false,
            msg_id: open.msg_id.clone(),
            body: ContentBody::Text(open.text),
        };
        let content = self.emit_content(out, content);
        self.complete_message(out, open.msg_id, open.kind, content);
    }

    /// Index of the open call `call_id`, opening it (message in_progress) when it is not open yet.
    fn open_call(&mut self, out: &mut Vec<StreamObject>, call_id: &str, name: &str) -> usize {
        if let Some(i) = self.open_calls.iter().position(|c| c.call_id == call_id) {
            if self.open_calls[i].name.is_empty() {
                self.open_calls[i].name = name.to_owned();
            }
            return i;
        }
        let msg_id = new_id("msg");
        let seq = self.next_seq();
        let msg = message(seq, Status::InProgress, msg_id.clone(), MessageKind::PluginCall, None);
        self.emit(out, || StreamObject::Message(msg));
        self.open_calls.push(OpenCall {
            msg_id,
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
        });
        self.open_calls.len() - 1
    }

    fn close_call(&mut self, out: &mut Vec<StreamObject>, call: OpenCall) {
        let content = ContentObject {
            sequence_number: None,
            status: Status::Completed,
            index: 0,
            delta: false,
            msg_id: call.msg_id.clone(),
            body: ContentBody::Data(ToolData::Call {
                call_id: call.call_id,
                name: call.name,
                arguments: call.arguments,
            }),
        };
        let content = self.emit_content(out, content);
        self.complete_message(out, call.msg_id, MessageKind::PluginCall, content);
    }

    /// One completed assistant `message` with two contents: the text with the link, and a `data` content a
    /// client can act on (AgentScope messages carry structured data that way).
    fn authorization(&mut self, out: &mut Vec<StreamObject>, provider: &str, url: &str) {
        let data = ToolData::Authorization {
            kind: "oauth2_authorization",
            provider: provider.to_owned(),
            url: url.to_owned(),
        };
        self.text_and_data(out, crate::agent::authorization_message(provider, url), data);
    }

    /// An assistant `message` a person reads (`text`) and a client acts on (`data`, typed by its `type`).
    fn text_and_data(&mut self, out: &mut Vec<StreamObject>, text: String, data: ToolData) {
        let msg_id = new_id("msg");
        let seq = self.next_seq();
        let opened = message(seq, Status::InProgress, msg_id.clone(), MessageKind::Message, None);
        self.emit(out, || StreamObject::Message(opened));
        let bodies = [ContentBody::Text(text), ContentBody::Data(data)];
        let mut contents = Vec::new();
        for (index, body) in bodies.into_iter().enumerate() {
            let content = ContentObject {
                sequence_number: None,
                status: Status::Completed,
                index: index as u32,
                delta: false,
                msg_id: msg_id.clone(),
                body,
            };
            contents.push(self.emit_content(out, content));
        }
        let seq = self.next_seq();
        let msg = message(seq, Status::Completed, msg_id, MessageKind::Message, Some(contents));
        self.emit(out, || StreamObject::Message(msg.clone()));
        self.output.push(msg);
    }

    fn complete_message(
        &mut self,
        out: &mut Vec<StreamObject>,
        msg_id: String,
        kind: MessageKind,
        content: ContentObject,
    ) {
        let seq = self.next_seq();
        let msg = message(seq, Status::Completed, msg_id, kind, Some(vec![content]));
        self.emit(out, || StreamObject::Message(msg.clone()));
        self.output.push(msg);
    }

    fn finish(&mut self, out: &mut Vec<StreamObject>, end: &TurnEnd) -> ResponseObject {
        self.finished = true;
        self.close_text(out);
        for call in std::mem::take(&mut self.open_calls) {
            self.close_call(out, call);
        }
        let (status, error) = match end {
            TurnEnd::Completed => (Status::Completed, None),
            TurnEnd::Incomplete(e) => (Status::Incomplete, Some(e)),
            TurnEnd::Failed(e) => (Status::Failed, Some(e)),
        };
        let error = error.map(|e| ErrorObject { code: e.code.as_str().to_owned(), message: e.message.clone() });
        let r = self.response_object(status, error, Some(crate::clock::unix_now()));
        self.emit(out, || StreamObject::Response(r.clone()));
        self.last = Some(r.clone());
        r
    }
}

fn message(
    seq: u64,
    status: Status,
    id: String,
    kind: MessageKind,
    content: Option<Vec<ContentObject>>,
) -> MessageObject {
    let role = if kind == MessageKind::PluginCallOutput { MessageRole::Tool } else { MessageRole::Assistant };
    MessageObject {
        sequence_number: seq,
        object: "message",
        status,
        error: None,
        id,
        kind,
        role,
        content,
        code: None,
        message: None,
        usage: None,
        metadata: None,
    }
}
