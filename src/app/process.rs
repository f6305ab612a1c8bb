//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON answer). Everything is
//! checked before a stream may start: body size, the AgentRequest, the model, the user.

use fc_runtime::Body;
use http::Response;

use super::face::{Caller, Face, Parsed, Reply};
use crate::pipeline::{Journaled, Plan, Ticket};
use crate::protocol::agentscope::{AgentRequest, AgentScopeAnswer, AgentScopeStream};
use crate::rejection::Rejection;

/// The AgentScope face.
pub(super) struct ProcessFace;

impl Face for ProcessFace {
    /// `stream`.
    type Request = bool;
    type Stream = AgentScopeStream;
    type Answer = AgentScopeAnswer;

    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<bool>, Rejection> {
        let request = AgentRequest::from_slice(body)?;
        let claim = caller.claim(request.named_user());
        Ok(Parsed::Turn(request.to_ask(claim), request.stream))
    }

    /// Every response object names the planned session.
    fn reply(&self, stream: bool, plan: &Plan) -> Reply<AgentScopeStream, AgentScopeAnswer> {
        let session_id = plan.session_id.clone();
        match stream {
            true => Reply::stream(AgentScopeStream::new(session_id)),
            false => Reply::answer(AgentScopeAnswer::new(session_id)),
        }
    }

    fn refuse(&self, rejection: Rejection, _: Option<&bool>) -> Response<Body> {
        rejection.into_response()
    }
}

/// `POST /process/task`: the AgentScope runtime 1.1's background task (same path and answer): the
/// AgentRequest is queued with FC's async invocation and collected with `GET /process/task/{task_id}`
/// (or followed as the `/process` stream, resumable with `Last-Event-ID`).
pub(super) struct ProcessTaskFace;

/// What a queued task's stream needs: the session the request names.
pub(super) struct TaskRequest {
    session_id: Option<String>,
}

impl Face for ProcessTaskFace {
    type Request = TaskRequest;
    type Stream = AgentScopeStream;
    type Answer = AgentScopeAnswer;

    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<TaskRequest>, Rejection> {
        let request = AgentRequest::from_slice(body)?;
        let claim = caller.claim(request.named_user());
        let session_id = request.session_id().map(str::to_owned);
        Ok(Parsed::Turn(request.to_ask(claim), TaskRequest { session_id }))
    }

    /// Never called: every task is queued (`background`), and runs through [`Face::recorded`].
    fn reply(&self, request: TaskRequest, _: &Plan) -> Reply<AgentScopeStream, AgentScopeAnswer> {
        Reply::answer(AgentScopeAnswer::new(request.session_id))
    }

    fn refuse(&self, rejection: Rejection, _: Option<&TaskRequest>) -> Response<Body> {
        rejection.into_response()
    }

    fn background(&self, _: &TaskRequest) -> bool {
        true
    }

    fn ticket_prefix(&self) -> &'static str {
        "task"
    }

    /// The runtime's answer to a submitted task.
    fn queued(&self, _: &TaskRequest, ticket: &Ticket) -> String {
        serde_json::json!({
            "task_id": ticket.id,
            "status": "submitted",
            "queue": "fc-async",
            "message": "Stream query task submitted successfully",
        })
        .to_string()
    }

    fn recorded(&self, request: TaskRequest, ticket: &Ticket) -> Option<Box<dyn Journaled>> {
        Some(Box::new(AgentScopeStream::recorded(request.session_id, ticket)))
    }
}
