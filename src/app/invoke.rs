//! Event invocations (`POST /invoke`): a trigger's payload becomes a turn; the answer is the final response.

use std::sync::Arc;

use http::Response;

use super::{App, invocation};
use crate::fc::{Body, Event};
use crate::pipeline::event_claim;
use crate::protocol::agentscope::EventAnswer;
use crate::protocol::triggers;
use crate::rejection::Rejection;

impl App {
    pub(super) async fn event(self: &Arc<Self>, event: Event) -> Result<Response<Body>, Rejection> {
        let context = event.context;
        let request = triggers::request_from_event(&event.payload, &self.event_instruction, &context.request_id)?;
        let session_id = request.session_id().unwrap_or(&context.request_id).to_owned();
        let plan = self.planner.plan(request.to_ask(event_claim(request.user_id())), invocation(&context))?;
        Ok(self.pipeline.answer(plan, EventAnswer::new(Some(session_id))).await)
    }
}
