//! The turn's root span, `invoke_agent {agent}`, and the turns metric: started before the session is
//! recalled, fed by the events the pump forwards (token usage summed, how the turn ended), ended when the
//! pump is done. Every face gets it, events included, because every face runs through the pump.

use opentelemetry::KeyValue;

use super::plan::Plan;
use crate::agent::{TurnEnd, TurnEvent};
use crate::identity::{Subject, jwt_subject};
use crate::llm::Usage;
use crate::telemetry::{self, Span, TurnMeasure, names};

pub(super) struct TurnTrace {
    span: Span,
    face: &'static str,
    usage: Usage,
    ended: bool,
}

impl TurnTrace {
    /// The root span of `plan`'s turn, under the caller's `traceparent` when it sent one.
    pub(super) fn start(plan: &Plan, agent: &str, model: &str) -> TurnTrace {
        let face = plan.origin.face;
        if !telemetry::active() {
            return TurnTrace { span: Span::none(), face, usage: Usage::default(), ended: false };
        }
        let span = Span::root(plan.origin.parent(), format!("invoke_agent {agent}"), || {
            let mut attributes = vec![
                KeyValue::new(names::OPERATION_NAME, "invoke_agent"),
                KeyValue::new(names::PROVIDER_NAME, names::PROVIDER_DASHSCOPE),
                KeyValue::new(names::SPAN_KIND, "AGENT"),
                KeyValue::new(names::AGENT_NAME, agent.to_owned()),
                KeyValue::new(names::REQUEST_MODEL, model.to_owned()),
                KeyValue::new(names::FACE, face),
            ];
            if let Some(session) = &plan.session_id {
                attributes.push(KeyValue::new(names::CONVERSATION_ID, session.clone()));
                attributes.push(KeyValue::new(names::SESSION_ID, session.clone()));
            }
            if let Some(user) = user_id(&plan.subject) {
                attributes.push(KeyValue::new(names::USER_ID, user));
            }
            if let Some(invocation) = plan.origin.invocation_id() {
                attributes.push(KeyValue::new(names::FAAS_INVOCATION_ID, invocation.to_owned()));
            }
            attributes
        });
        TurnTrace { span, face, usage: Usage::default(), ended: false }
    }

    /// The span the turn's work runs within.
    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// One event on its way to the face: usage is summed, `Finished` ends the span.
    pub(super) fn observe(&mut self, event: &TurnEvent) {
        match event {
            TurnEvent::Usage(usage) => self.usage += *usage,
            TurnEvent::Finished(end) => self.end(Some(end)),
            _ => {}
        }
    }

    /// Ends the span (once): `None` when the turn was dropped because its client went away.
    pub(super) fn end(&mut self, end: Option<&TurnEnd>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let (outcome, failure) = match end {
            Some(TurnEnd::Completed) => ("completed", None),
            Some(TurnEnd::Incomplete(_)) => ("incomplete", None),
            Some(TurnEnd::Failed(failure)) => ("failed", Some(failure)),
            None => ("abandoned", None),
        };
        let span = &self.span;
        span.set(names::OUTCOME, outcome);
        span.set(names::USAGE_INPUT_TOKENS, i64::try_from(self.usage.prompt_tokens).unwrap_or(i64::MAX));
        span.set(names::USAGE_OUTPUT_TOKENS, i64::try_from(self.usage.completion_tokens).unwrap_or(i64::MAX));
        if let Some(failure) = failure {
            span.fail(failure.code.as_str(), &failure.message);
        }
        span.end();
        TurnMeasure { face: self.face, outcome, error_type: failure.map(|failure| failure.code.as_str()) }.record();
    }
}

/// `gen_ai.user.id`: who the turn is for — the user id, or a JWT's `sub` (never the JWT itself).
fn user_id(subject: &Subject) -> Option<String> {
    match subject {
        Subject::UserId(user) => Some(user.clone()),
        Subject::Jwt(jwt) => jwt_subject(jwt.expose()),
        Subject::Agent => None,
    }
}
