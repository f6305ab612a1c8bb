//! Approval requests across invocations. A turn that stops for the user's approval
//! (`TurnEvent::ApprovalRequested`) leaves in its session the model's call and an `mcp_approval_request`
//! message holding what the call will be — tool, arguments, call id, expiry. No instance waits for the
//! human: the next invocation in the session brings the answer, and [`resolve`] turns it into what the turn
//! does first:
//!
//! - approved: the call runs exactly as stored (an answer names the request, never the arguments; a client
//!   that re-sends the request with other arguments is refused);
//! - declined: the model is told the user declined (and why, if they said);
//! - a request nobody answered when the user went on is declined the same way, so the conversation stays
//!   one the model accepts (every call has its output).
//!
//! Only the session's own user can answer (the session is keyed by the verified user), and only once:
//! each answer is stored as an `mcp_approval_response`, after which the request is no longer pending. An
//! unknown, answered or expired request is refused with `approval_invalid`, nothing run.

use super::waiting::{self, Kind, Waiting, check_answers, not_made, shown};
use crate::agent::RequireApproval;
use crate::failure::{Failure, FailureCode};
use crate::llm::ToolCall;
use crate::sessions::StoredMessage;
use crate::sessions::message::{Part, Record, new_message_id};

/// The stored message kinds (the AgentScope runtime's `MessageType` names).
pub(crate) const REQUEST_KIND: &str = "mcp_approval_request";
pub(crate) const RESPONSE_KIND: &str = "mcp_approval_response";

/// Approval requests as they wait in a session ([`waiting`]).
const APPROVAL: Kind = Kind {
    request: REQUEST_KIND,
    response: RESPONSE_KIND,
    names: "approval_request_id",
    noun: "approval request",
    code: FailureCode::ApprovalInvalid,
};

/// The user's answer to one request, as a face parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApprovalAnswer {
    pub(crate) request_id: String,
    pub(crate) approve: bool,
    pub(crate) reason: Option<String>,
}

/// A request a client sent back with its conversation (the Responses and `/process` faces carry the whole
/// history): its arguments must be the stored ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResentRequest {
    pub(crate) request_id: String,
    pub(crate) arguments: String,
}

/// What a face says about approvals in this invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApprovalInput {
    /// The face can show an approval request (else such calls are declined and the model told).
    pub(crate) can_ask: bool,
    pub(crate) answers: Vec<ApprovalAnswer>,
    pub(crate) resent: Vec<ResentRequest>,
    /// The request's own approval rules by server label (a Responses `mcp` tool's `require_approval`):
    /// they add to `TOOL_APPROVAL`, never loosen it.
    pub(crate) requested: Vec<(String, RequireApproval)>,
    /// The face can show a tool's question (`pipeline::questions`; else questions are declined).
    pub(crate) can_question: bool,
    /// The user's answers to the questions the last turn's tools asked.
    pub(crate) questions: Vec<super::questions::QuestionAnswer>,
}

impl ApprovalInput {
    /// A face that can show both approval requests and tools' questions (A2A, AG-UI, `/process`), with the
    /// user's answers this request carries.
    pub(crate) fn asking(answers: Vec<ApprovalAnswer>, questions: Vec<super::questions::QuestionAnswer>) -> Self {
        ApprovalInput { can_ask: true, answers, can_question: true, questions, ..ApprovalInput::default() }
    }
}

/// A request still waiting in the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub(crate) request_id: String,
    pub(crate) call: ToolCall,
    pub(crate) expires_at: u64,
}

/// This invocation's answers applied to the session.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Calls to run first, as stored.
    pub(crate) approved: Vec<ToolCall>,
    /// To store (and to replay to the model now): the answers, and the outputs of the calls not run.
    pub(crate) records: Vec<Record>,
}

/// The stored record of a request the turn made (what [`pending`] reads back).
pub(crate) fn request_record(
    request_id: &str,
    call_id: &str,
    server: &str,
    name: &str,
    arguments: &str,
    expires_at: u64,
    original_id: &str,
) -> Record {
    let expires = expires_at.to_string();
    let fields = [
        ("id", request_id),
        ("arguments", arguments),
        ("name", name),
        ("server_label", server),
        ("call_id", call_id),
        ("expires_at", expires.as_str()),
    ];
    Record::completed(new_message_id(), REQUEST_KIND, "assistant", &[Part::Fields(&fields)], original_id, "assistant")
}

/// The requests of `stored` that no stored answer names, oldest first.
pub(crate) fn pending(stored: &[StoredMessage]) -> Vec<Pending> {
    waiting::unanswered(stored, &APPROVAL)
        .into_iter()
        .map(|request| Pending { request_id: request.request_id, call: request.call, expires_at: request.expires_at })
        .collect()
}

impl Waiting for Pending {
    fn request_id(&self) -> &str {
        &self.request_id
    }

    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Applies `input`'s answers to the `waiting` requests at `now` (unix seconds). Every waiting request is
/// settled: answered ones as the user said, the others declined as unanswered. Refused (nothing settled,
/// nothing run): an answer to no waiting request, two answers to one, an expired request, a re-sent request
/// whose arguments differ.
pub(crate) fn resolve(waiting: Vec<Pending>, input: &ApprovalInput, now: u64) -> Result<Resolved, Failure> {
    check_answers(&APPROVAL, input.answers.iter().map(|a| a.request_id.as_str()), &waiting, now)?;
    for resent in &input.resent {
        if let Some(request) = waiting.iter().find(|p| p.request_id == resent.request_id)
            && request.call.function.arguments != resent.arguments
        {
            return Err(APPROVAL.invalid(format!(
                "the approval request {} was sent back with other arguments: an answer cannot change them",
                shown(&resent.request_id)
            )));
        }
    }
    let mut resolved = Resolved::default();
    for request in waiting {
        let answer = input.answers.iter().find(|a| a.request_id == request.request_id);
        let approve = answer.is_some_and(|a| a.approve);
        let reason = answer.and_then(|a| a.reason.as_deref()).unwrap_or_default();
        let answer_fields = [
            ("approval_request_id", request.request_id.as_str()),
            ("approve", if approve { "true" } else { "false" }),
            ("reason", if answer.is_some() { reason } else { "not answered" }),
        ];
        resolved.records.push(Record::own(RESPONSE_KIND, "user", &answer_fields));
        if approve {
            resolved.approved.push(request.call);
            continue;
        }
        let told = match (answer, reason.is_empty()) {
            (Some(_), true) => "The user declined this call; it was not made.".to_owned(),
            (Some(_), false) => format!("The user declined this call; it was not made. Their reason: {reason}"),
            (None, _) => {
                "The user did not approve this call (they went on without answering); it was not made.".to_owned()
            }
        };
        resolved.records.push(not_made(&request.call, &told));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(records: &[Record]) -> Vec<StoredMessage> {
        records.iter().filter_map(Record::message).collect()
    }

    fn answer(id: &str, approve: bool) -> ApprovalAnswer {
        ApprovalAnswer { request_id: id.into(), approve, reason: None }
    }

    fn two_waiting() -> Vec<Pending> {
        let records = [
            request_record("mcpr_a", "call_1", "bank", "transfer", r#"{"to":"bob","amount":5}"#, 100, "o"),
            request_record("mcpr_b", "call_2", "mail", "send_mail", "{}", 100, "o"),
        ];
        pending(&stored(&records))
    }

    #[test]
    fn a_stored_request_is_pending_until_answered() {
        let waiting = two_waiting();
        assert_eq!(waiting.len(), 2);
        assert_eq!(waiting[0].call, ToolCall::new("call_1", "transfer", r#"{"to":"bob","amount":5}"#.to_owned()));
        assert_eq!(waiting[0].expires_at, 100);
        let input = ApprovalInput { answers: vec![answer("mcpr_a", true)], ..Default::default() };
        let resolved = resolve(waiting.clone(), &input, 50).unwrap();
        assert_eq!(resolved.approved, vec![waiting[0].call.clone()]);
        // Two answers (one unanswered, declined) and the declined call's output.
        assert_eq!(resolved.records.len(), 3);
        let mut all = vec![
            request_record("mcpr_a", "call_1", "bank", "transfer", "{}", 100, "o"),
            request_record("mcpr_b", "call_2", "mail", "send_mail", "{}", 100, "o"),
        ];
        all.extend(resolved.records);
        assert!(pending(&stored(&all)).is_empty(), "answered once, nothing waits any more");
    }

    #[test]
    fn unknown_twice_expired_and_changed_answers_are_refused() {
        let refused = |input: ApprovalInput, now| resolve(two_waiting(), &input, now).unwrap_err();
        let unknown = refused(ApprovalInput { answers: vec![answer("mcpr_x", true)], ..Default::default() }, 50);
        assert_eq!((unknown.code, unknown.http_status().as_u16()), (FailureCode::ApprovalInvalid, 400));
        let twice =
            ApprovalInput { answers: vec![answer("mcpr_a", true), answer("mcpr_a", false)], ..Default::default() };
        assert!(refused(twice, 50).message.contains("twice"));
        let late = refused(ApprovalInput { answers: vec![answer("mcpr_a", true)], ..Default::default() }, 100);
        assert!(late.message.contains("expired"));
        let changed = ApprovalInput {
            answers: vec![answer("mcpr_a", true)],
            resent: vec![ResentRequest { request_id: "mcpr_a".into(), arguments: r#"{"to":"eve"}"#.into() }],
            ..Default::default()
        };
        assert!(refused(changed, 50).message.contains("other arguments"));
        let long = refused(ApprovalInput { answers: vec![answer(&"x".repeat(500), true)], ..Default::default() }, 50);
        assert!(!long.message.contains("xxxx"), "a long id is not echoed");
    }

    #[test]
    fn declining_tells_the_model_why() {
        let input = ApprovalInput {
            answers: vec![ApprovalAnswer {
                request_id: "mcpr_a".into(),
                approve: false,
                reason: Some("too much".into()),
            }],
            ..Default::default()
        };
        let resolved = resolve(two_waiting(), &input, 50).unwrap();
        assert!(resolved.approved.is_empty());
        let texts: Vec<String> = resolved
            .records
            .iter()
            .filter_map(|r| r.message()?.items()[0].data.as_ref()?.get("output").map(ToString::to_string))
            .collect();
        assert_eq!(texts.len(), 2);
        assert!(texts[0].contains("too much") && texts[1].contains("without answering"), "{texts:?}");
    }
}
