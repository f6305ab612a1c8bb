//! Event invocations (`POST /invoke`, marked by FC): a trigger's payload becomes a turn; the answer is the
//! final response object, or the plain error body when the event is refused.

use fc_runtime::Body;
use http::Response;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::pipeline::{Plan, event_claim};
use crate::protocol::agentscope::EventAnswer;
use crate::protocol::triggers;
use crate::rejection::Rejection;

/// The event face. An event is a request body like any other: FC's own limit (32 MiB) is far above what a
/// turn uses, so `MAX_REQUEST_BYTES` bounds it too.
pub(super) struct EventFace {
    /// `AGENT_EVENT_INSTRUCTION`: what the model is told an event's description is for.
    instruction: String,
}

impl EventFace {
    pub(super) fn new(config: &Config) -> Self {
        EventFace { instruction: config.agent.event_instruction.clone() }
    }
}

impl Face for EventFace {
    /// FC's request id: the answer's id when the event names no conversation.
    type Request = String;
    type Stream = EventAnswer;
    type Answer = EventAnswer;

    /// An event that names no conversation (`session_id`) has no memory: its session would last one
    /// invocation and only fill the store.
    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<String>, Rejection> {
        let request = triggers::request_from_event(body, &self.instruction)?;
        let mut ask = request.to_ask(event_claim(request.user_id()));
        // An event's answer goes to a trigger, not a person: a call that needs approval is declined.
        ask.approval.can_ask = false;
        Ok(Parsed::Turn(ask, caller.request_id().to_owned()))
    }

    /// The answer names the event's session, else FC's request id.
    fn reply(&self, request_id: String, plan: &Plan) -> Reply<EventAnswer, EventAnswer> {
        Reply::answer(EventAnswer::new(Some(plan.session_id.clone().unwrap_or(request_id))))
    }

    fn refuse(&self, rejection: Rejection, _: Option<&String>) -> Response<Body> {
        rejection.into_response()
    }
}
