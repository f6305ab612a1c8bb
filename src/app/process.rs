//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON answer).

use std::sync::Arc;

use fc_runtime::{Body, Request};
use http::Response;

use super::{App, invocation, read_body};
use crate::pipeline::http_claim;
use crate::protocol::agentscope::{AgentRequest, AgentScopeAnswer, AgentScopeStream};
use crate::rejection::Rejection;

impl App {
    /// Everything is checked before a stream may start: body size, the AgentRequest, the model, the user.
    pub(super) async fn process(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let (parts, body, context) = request.into_parts();
        let bytes = read_body(body, self.max_request_bytes).await?;
        let request = AgentRequest::from_slice(&bytes)?;
        let claim = http_claim(&self.user_source, &parts.headers, request.named_user());
        let plan = self.planner.plan(request.to_ask(claim), invocation(&context))?;
        let session_id = plan.session_id.clone();
        Ok(if request.stream {
            self.pipeline.stream(plan, AgentScopeStream::new(session_id))
        } else {
            self.pipeline.answer(plan, AgentScopeAnswer::new(session_id)).await
        })
    }
}
