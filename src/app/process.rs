//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON answer).

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::Response;

use super::{App, invocation, read_body};
use crate::pipeline::http_claim;
use crate::protocol::agentscope::{AgentRequest, AgentScopeAnswer, AgentScopeStream};
use crate::rejection::Rejection;

impl App {
    /// Everything is checked before a stream may start: body size, the AgentRequest, the model, the user.
    pub(super) async fn process(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let mut request = request;
        let bytes = read_body(&mut request, self.max_request_bytes).await?;
        let agent_request = AgentRequest::from_slice(&bytes)?;
        let claim = http_claim(&self.user_source, request.headers(), agent_request.named_user());
        let plan = self.planner.plan(agent_request.to_ask(claim), invocation(request.fc_context(), "process"))?;
        let session_id = plan.session_id.clone();
        Ok(if agent_request.stream {
            self.pipeline.stream(plan, AgentScopeStream::new(session_id))
        } else {
            self.pipeline.answer(plan, AgentScopeAnswer::new(session_id)).await
        })
    }
}
