//! Event invocations (`POST /invoke`, marked by FC): a trigger's payload becomes a turn; the answer is the
//! final response object, or the plain error body when the event is refused.

use fc_runtime::Body;
use http::Response;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::pipeline::{EVENT_KEY, Plan, event_claim};
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
        if let Some(id) = background_turn(body) {
            return Ok(Parsed::Deliver(id));
        }
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

/// The id of the background turn an async invocation of this function delivers: an event that is exactly
/// `{"background_turn": "<id>"}` (what `pipeline::submit` queues). Any other event is a trigger's. Safe to
/// take from any invoker: the id only runs a turn queued under it, with the request and caller kept then.
fn background_turn(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Delivery {
        background_turn: String,
    }
    // Cheap refusal first: trigger payloads are parsed once, by their own reader.
    if body.len() > 256 || !body.windows(EVENT_KEY.len()).any(|w| w == EVENT_KEY.as_bytes()) {
        return None;
    }
    serde_json::from_slice::<Delivery>(body).ok().map(|d| d.background_turn).filter(|id| !id.is_empty())
}
