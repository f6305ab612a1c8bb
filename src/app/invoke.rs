//! Event invocations (`POST /invoke`): a trigger's payload becomes a turn; the answer is the final response.

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::Response;

use super::{App, invocation, read_body};
use crate::pipeline::event_claim;
use crate::protocol::agentscope::EventAnswer;
use crate::protocol::triggers;
use crate::rejection::Rejection;

impl App {
    pub(super) async fn event(self: &Arc<Self>, mut event: Request) -> Result<Response<Body>, Rejection> {
        // An event is a request body like any other; FC's own limit (32 MiB) is far above what a turn uses.
        let payload = read_body(&mut event, self.max_request_bytes).await?;
        let context = event.fc_context();
        let request_id = context.request_id();
        let request = triggers::request_from_event(&payload, &self.event_instruction, request_id)?;
        let mut ask = request.to_ask(event_claim(request.user_id()));
        // `triggers` defaults an event's session to its request id so that the answer names one; such a
        // session lasts one invocation, and remembering it would only fill the store.
        if ask.session_id.as_deref() == Some(request_id) {
            ask.session_id = None;
        }
        let plan = self.planner.plan(ask, invocation(context, "event"))?;
        // An event that names no conversation has no memory; its answer carries the request id, as before.
        let answer_id = plan.session_id.clone().unwrap_or_else(|| request_id.to_owned());
        Ok(self.pipeline.answer(plan, EventAnswer::new(Some(answer_id))).await)
    }
}
