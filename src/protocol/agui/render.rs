//! The turn as AG-UI events, each a `data: <json>\n\n` frame: `RUN_STARTED`; the answer as
//! `TEXT_MESSAGE_START/CONTENT/END`; reasoning as `REASONING_START`, `REASONING_MESSAGE_*`,
//! `REASONING_END`; tool use as `TOOL_CALL_START/ARGS/END` and `TOOL_CALL_RESULT`; then `RUN_FINISHED`, or
//! `RUN_ERROR` with our failure code. Whatever is open is closed before anything else starts and before
//! the run ends, so the stream passes `@ag-ui/client`'s verifier. A run that stopped for the user's approval
//! of tool calls finishes with the `interrupt` outcome, one `Interrupt` per request; the next run's `resume`
//! answers them (see `request.rs`).

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};

use super::request::RunInput;
use crate::agent::{TurnEnd, TurnEvent};
use crate::mcp::QuestionForm;
use crate::pipeline::Renderer;

/// What is open in the stream.
#[derive(Debug, PartialEq)]
enum Open {
    Nothing,
    Text(String),
    Reasoning(String),
    /// A tool call whose arguments are still arriving; `args_sent` says whether any delta went out.
    ToolCall {
        id: String,
        args_sent: bool,
    },
}

/// `POST /ag-ui`: the run's events as they happen.
pub(crate) struct AguiStream {
    thread_id: String,
    run_id: String,
    open: Open,
    /// Ids of this run's messages are `<runId>-<n>`: unique within the thread, readable in a log.
    next_id: u64,
    /// The approval requests this run made, as `Interrupt`s for `RUN_FINISHED`'s outcome.
    interrupts: Vec<Value>,
}

/// The reason an approval interrupt carries (AG-UI leaves `reason` an open string).
pub(crate) const APPROVAL_REASON: &str = "tool_approval";
/// Characters of a call's arguments quoted in the interrupt's human prompt (all of them are in `metadata`).
const MAX_QUOTED_ARGUMENTS: usize = 200;

/// One approval request as an AG-UI 1.0 `Interrupt`: answered by `id` in the next run's `resume`.
fn interrupt(request_id: &str, call_id: &str, server: &str, name: &str, arguments: &str, expires_at: u64) -> Value {
    let quoted: String = arguments.chars().take(MAX_QUOTED_ARGUMENTS).collect();
    let ellipsis = if quoted.len() < arguments.len() { "…" } else { "" };
    let expires = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expires_at));
    json!({
        "id": request_id,
        "reason": APPROVAL_REASON,
        "message": format!("Approve calling the tool {name} with {quoted}{ellipsis}?"),
        "toolCallId": call_id,
        "expiresAt": expires.to_string(),
        "metadata": {"name": name, "arguments": arguments, "serverLabel": server},
    })
}

/// The reason a tool's question carries (an MCP elicitation).
pub(crate) const QUESTION_REASON: &str = "mcp_elicitation";

/// A tool's question as an AG-UI 1.0 `Interrupt`: a form's schema is the interrupt's `responseSchema` (the
/// answer is a `resolved` resume whose payload fills it), a link is `metadata.url` (`resolved` once the
/// user completed it there).
fn question_interrupt(
    request_id: &str,
    call_id: &str,
    server: &str,
    name: &str,
    message: &str,
    form: &QuestionForm,
    expires_at: u64,
) -> Value {
    let expires = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expires_at));
    let mut interrupt = json!({
        "id": request_id,
        "reason": QUESTION_REASON,
        "message": message,
        "toolCallId": call_id,
        "expiresAt": expires.to_string(),
        "metadata": {"name": name, "serverLabel": server},
    });
    match form {
        QuestionForm::Schema(schema) => {
            interrupt["responseSchema"] = schema.clone();
            interrupt["metadata"]["mode"] = json!("form");
        }
        QuestionForm::Url(url) => {
            interrupt["metadata"]["mode"] = json!("url");
            interrupt["metadata"]["url"] = json!(url);
        }
    }
    interrupt
}

impl AguiStream {
    pub(crate) fn new(run: &RunInput) -> Self {
        AguiStream {
            thread_id: run.thread_id.clone(),
            run_id: run.run_id.clone(),
            open: Open::Nothing,
            next_id: 0,
            interrupts: Vec::new(),
        }
    }

    fn new_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{}-{kind}-{}", self.run_id, self.next_id)
    }

    /// Closes whatever is open (a tool call still taking arguments is left: it ends with its own event).
    fn close(&mut self, out: &mut Vec<Bytes>) {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => {}
            Open::Text(id) => out.push(frame(json!({"type": "TEXT_MESSAGE_END", "messageId": id}))),
            Open::Reasoning(id) => {
                out.push(frame(json!({"type": "REASONING_MESSAGE_END", "messageId": id})));
                out.push(frame(json!({"type": "REASONING_END", "messageId": id})));
            }
            Open::ToolCall { id, .. } => out.push(frame(json!({"type": "TOOL_CALL_END", "toolCallId": id}))),
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Open::Text(_)) {
            self.close(out);
            let id = self.new_id("text");
            out.push(frame(json!({"type": "TEXT_MESSAGE_START", "messageId": id, "role": "assistant"})));
            self.open = Open::Text(id);
        }
        if let Open::Text(id) = &self.open {
            out.push(frame(json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": id, "delta": delta})));
        }
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Open::Reasoning(_)) {
            self.close(out);
            let id = self.new_id("reasoning");
            out.push(frame(json!({"type": "REASONING_START", "messageId": id})));
            out.push(frame(json!({"type": "REASONING_MESSAGE_START", "messageId": id, "role": "reasoning"})));
            self.open = Open::Reasoning(id);
        }
        if let Open::Reasoning(id) = &self.open {
            out.push(frame(json!({"type": "REASONING_MESSAGE_CONTENT", "messageId": id, "delta": delta})));
        }
    }

    /// A `CUSTOM` event `oauth2_authorization` `{provider, url}` a client acts on (AG-UI's idiom for what
    /// the protocol has no event of its own for), then the prompt as one whole assistant text message.
    fn authorization(&mut self, provider: &str, url: &str, out: &mut Vec<Bytes>) {
        self.close(out);
        out.push(frame(json!({
            "type": "CUSTOM", "name": "oauth2_authorization", "value": {"provider": provider, "url": url},
        })));
        let id = self.new_id("text");
        let text = crate::agent::authorization_message(provider, url);
        out.push(frame(json!({"type": "TEXT_MESSAGE_START", "messageId": id, "role": "assistant"})));
        out.push(frame(json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": id, "delta": text})));
        out.push(frame(json!({"type": "TEXT_MESSAGE_END", "messageId": id})));
    }

    fn finish(&mut self, end: &TurnEnd, out: &mut Vec<Bytes>) {
        self.close(out);
        let (thread_id, run_id) = (&self.thread_id, &self.run_id);
        out.push(frame(match end {
            // The turn ended waiting for the user: the run is paused, not done.
            TurnEnd::Completed if !self.interrupts.is_empty() => json!({
                "type": "RUN_FINISHED", "threadId": thread_id, "runId": run_id,
                "outcome": {"type": "interrupt", "interrupts": std::mem::take(&mut self.interrupts)},
            }),
            TurnEnd::Completed => json!({
                "type": "RUN_FINISHED", "threadId": thread_id, "runId": run_id, "outcome": {"type": "success"},
            }),
            // A bound hit is no success: the client must not read the run as completed.
            TurnEnd::Incomplete(failure) | TurnEnd::Failed(failure) => {
                json!({"type": "RUN_ERROR", "message": failure.message, "code": failure.code.as_str()})
            }
        }));
    }
}

fn frame(event: Value) -> Bytes {
    Bytes::from(format!("data: {event}\n\n"))
}

impl Renderer for AguiStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// `RUN_STARTED` leaves with the response head; 1.0 producers declare their protocol version there.
    fn opening(&mut self) -> Vec<Bytes> {
        vec![frame(json!({
            "type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id, "protocolVersion": "1.0",
        }))]
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        match event {
            TurnEvent::TextDelta(delta) if !delta.is_empty() => self.text(delta, out),
            TurnEvent::ReasoningDelta(delta) if !delta.is_empty() => self.reasoning(delta, out),
            TurnEvent::ToolCallStarted { call_id, name } => {
                self.close(out);
                out.push(frame(json!({"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": name})));
                self.open = Open::ToolCall { id: call_id.clone(), args_sent: false };
            }
            TurnEvent::ToolCallArgumentsDelta { call_id, delta } if !delta.is_empty() => {
                if let Open::ToolCall { id, args_sent } = &mut self.open
                    && id == call_id
                {
                    *args_sent = true;
                    out.push(frame(json!({"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": delta})));
                }
            }
            TurnEvent::ToolCallCompleted { call_id, name, arguments } => {
                let open_here = matches!(&self.open, Open::ToolCall { id, .. } if id == call_id);
                if !open_here {
                    // A call reported only when complete: open it here so START precedes ARGS.
                    self.close(out);
                    out.push(frame(json!({"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": name})));
                    self.open = Open::ToolCall { id: call_id.clone(), args_sent: false };
                }
                if let Open::ToolCall { args_sent: false, .. } = self.open {
                    out.push(frame(json!({"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": arguments})));
                }
                self.close(out);
            }
            TurnEvent::ToolResult { call_id, output, .. } => {
                self.close(out);
                let id = self.new_id("tool");
                out.push(frame(json!({
                    "type": "TOOL_CALL_RESULT", "messageId": id, "toolCallId": call_id, "content": output.text,
                    "role": "tool",
                })));
            }
            TurnEvent::AuthorizationRequired { provider, url } => self.authorization(provider, url, out),
            // The held call is not shown as a call (the loop withholds its events); it is asked at the end.
            TurnEvent::ApprovalRequested { request_id, call_id, server, name, arguments, expires_at } => {
                self.interrupts.push(interrupt(request_id, call_id, server, name, arguments, *expires_at));
            }
            TurnEvent::QuestionAsked(asked) => {
                let crate::agent::AskedQuestion {
                    request_id, call_id, server, name, message, form, expires_at, ..
                } = &**asked;
                self.interrupts.push(question_interrupt(request_id, call_id, server, name, message, form, *expires_at));
            }
            TurnEvent::Finished(end) => self.finish(end, out),
            // AG-UI has no event for a tool listing; the tool calls themselves are shown.
            TurnEvent::ToolsListed { .. } => {}
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Failure, FailureCode};

    fn run() -> AguiStream {
        let input = RunInput::from_slice(
            br#"{"threadId":"t","runId":"r","messages":[{"id":"1","role":"user","content":"hi"}]}"#,
        );
        AguiStream::new(&input.unwrap())
    }

    fn types(events: &[TurnEvent]) -> Vec<String> {
        let mut stream = run();
        let mut out = stream.opening();
        for event in events {
            stream.render(event, &mut out);
        }
        out.iter()
            .map(|b| {
                let text = std::str::from_utf8(b).unwrap();
                let value: Value = serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
                value["type"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn everything_opened_is_closed_in_order() {
        let events = [
            TurnEvent::ReasoningDelta("hm".into()),
            TurnEvent::TextDelta("a".into()),
            TurnEvent::ToolCallStarted { call_id: "c".into(), name: "time".into() },
            TurnEvent::ToolCallCompleted { call_id: "c".into(), name: "time".into(), arguments: "{}".into() },
            TurnEvent::ToolResult {
                call_id: "c".into(),
                name: "time".into(),
                output: crate::mcp::ToolOutput::error("noon"),
            },
            TurnEvent::TextDelta("b".into()),
            TurnEvent::Finished(TurnEnd::Completed),
        ];
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED",
            ]
        );
    }

    #[test]
    fn a_failed_turn_is_a_run_error_with_our_code() {
        let failed = TurnEvent::Finished(TurnEnd::Failed(Failure::new(FailureCode::ModelError, "boom")));
        assert_eq!(types(&[TurnEvent::TextDelta("a".into()), failed]).last().unwrap(), "RUN_ERROR");
    }

    #[test]
    fn a_consent_prompt_is_a_custom_event_then_a_whole_text_message() {
        let events = [
            TurnEvent::TextDelta("Let me look".into()),
            TurnEvent::AuthorizationRequired { provider: "calendar".into(), url: "https://c.example/a".into() },
            TurnEvent::Finished(TurnEnd::Completed),
        ];
        assert_eq!(
            types(&events),
            [
                "RUN_STARTED",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "CUSTOM",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED"
            ]
        );
    }

    #[test]
    fn approval_requests_pause_the_run_with_an_interrupt_each() {
        let mut stream = run();
        let mut out = Vec::new();
        let asked = TurnEvent::ApprovalRequested {
            request_id: "mcpr_1".into(),
            call_id: "call_1".into(),
            server: "hello".into(),
            name: "helloworld".into(),
            arguments: r#"{"name":"Ada"}"#.into(),
            expires_at: 1_800_000_000,
        };
        stream.render(&asked, &mut out);
        assert!(out.is_empty(), "the request is asked when the run ends");
        stream.render(&TurnEvent::Finished(TurnEnd::Completed), &mut out);
        let text = std::str::from_utf8(&out[0]).unwrap();
        let event: Value = serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
        let outcome = &event["outcome"];
        assert_eq!(outcome["type"], "interrupt");
        let interrupt = &outcome["interrupts"][0];
        assert_eq!((interrupt["id"].as_str(), interrupt["toolCallId"].as_str()), (Some("mcpr_1"), Some("call_1")));
        assert_eq!(interrupt["expiresAt"], "2027-01-15T08:00:00Z");
        assert_eq!(
            interrupt["metadata"],
            json!({"name": "helloworld", "arguments": r#"{"name":"Ada"}"#, "serverLabel": "hello"})
        );
        assert!(interrupt["message"].as_str().unwrap().contains("helloworld"));
    }
}
