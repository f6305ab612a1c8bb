//! The AgentScope renderers of a turn: the `/process` SSE stream, the `/process` `stream:false` answer,
//! and the answer to an event invocation. All three build the same response objects with one
//! [`ResponseBuilder`]; they differ only in what they send.

use bytes::Bytes;
use http::StatusCode;

use super::builder::ResponseBuilder;
use super::wire::Status;
use crate::agent::TurnEvent;
use crate::failure::FailureCode;
use crate::pipeline::{Journaled, Renderer, Ticket};
use crate::rejection::ErrorBody;
use crate::sessions::journal::{TurnOutcome, TurnStatus};

/// `POST /process` with `stream:true`: every object as a `data: <json>\n\n` frame, as it is made.
pub struct AgentScopeStream {
    builder: ResponseBuilder,
}

impl AgentScopeStream {
    pub fn new(session_id: Option<String>) -> Self {
        AgentScopeStream { builder: ResponseBuilder::new(session_id) }
    }

    /// The stream of a background task (`POST /process/task`), journaled: the response's id is the task's.
    pub(crate) fn recorded(session_id: Option<String>, ticket: &Ticket) -> Self {
        AgentScopeStream { builder: ResponseBuilder::new(session_id).with_id(&ticket.id, ticket.created_at) }
    }
}

/// The task's result is the final response object, as the AgentScope runtime keeps the last event.
impl Journaled for AgentScopeStream {
    fn outcome(&self) -> Option<TurnOutcome> {
        if !self.builder.is_finished() {
            return None;
        }
        let response = self.builder.response()?;
        let cancelled = response.error.as_ref().is_some_and(|error| error.code == FailureCode::Cancelled.as_str());
        let status = match response.status {
            Status::Completed => TurnStatus::Completed,
            Status::Incomplete => TurnStatus::Incomplete,
            _ if cancelled => TurnStatus::Cancelled,
            _ => TurnStatus::Failed,
        };
        Some(TurnOutcome { status, result: response.to_json() })
    }
}

impl Renderer for AgentScopeStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// `created` and `in_progress` leave with the response head.
    fn opening(&mut self) -> Vec<Bytes> {
        self.builder.start().iter().map(|object| Bytes::from(object.sse_frame())).collect()
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        out.extend(self.builder.push(event).iter().map(|object| Bytes::from(object.sse_frame())));
    }

    /// The protocol's own keep-alive (its `heartbeat` message type) rather than an SSE comment: a client
    /// reading `data:` lines only still sees the stream is alive.
    fn heartbeat(&mut self, out: &mut Vec<Bytes>) {
        out.push(Bytes::from(self.builder.heartbeat().sse_frame()));
    }
}

/// `POST /process` with `stream:false`: the final response object (what the stream's last event
/// carries) as the whole body, whatever the turn's status.
pub struct AgentScopeAnswer {
    builder: ResponseBuilder,
}

impl AgentScopeAnswer {
    pub fn new(session_id: Option<String>) -> Self {
        AgentScopeAnswer { builder: ResponseBuilder::new(session_id) }
    }
}

impl Renderer for AgentScopeAnswer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        self.builder.push(event);
        if let TurnEvent::Finished(_) = event
            && let Some(response) = self.builder.response()
        {
            out.push(Bytes::from(response.to_json()));
        }
    }
}

/// An event invocation (`/invoke`): the final response object when the turn completed; otherwise the
/// error body with a failure status, so FC records an InvocationError (and retries async invocations).
pub struct EventAnswer {
    builder: ResponseBuilder,
    status: StatusCode,
}

impl EventAnswer {
    pub(crate) fn new(session_id: Option<String>) -> Self {
        EventAnswer { builder: ResponseBuilder::new(session_id), status: StatusCode::OK }
    }
}

impl Renderer for EventAnswer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        self.builder.push(event);
        let TurnEvent::Finished(_) = event else {
            return;
        };
        let Some(response) = self.builder.response() else {
            return;
        };
        match (response.status, &response.error) {
            (Status::Completed, _) => out.push(Bytes::from(response.to_json())),
            (status, error) => {
                self.status = StatusCode::INTERNAL_SERVER_ERROR;
                let ended = format!("the turn ended {}", status.as_str());
                let (code, message) = match error {
                    Some(error) => (error.code.as_str(), error.message.as_str()),
                    None => ("internal", ended.as_str()),
                };
                out.push(Bytes::from(ErrorBody::new(code, message).to_json()));
            }
        }
    }

    fn status(&self) -> StatusCode {
        self.status
    }
}
