//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON answer). Everything is
//! checked before a stream may start: body size, the AgentRequest, the model, the user.

use fc_runtime::Body;
use http::Response;

use super::face::{Caller, Face, Parsed, Reply};
use crate::pipeline::Plan;
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
