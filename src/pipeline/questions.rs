//! Tools' questions across invocations (MCP elicitation through 2026-07-28 `input_required`). A turn whose
//! tool asked the user (`TurnEvent::QuestionAsked`) leaves in its session the model's call and one
//! `mcp_elicitation_request` message per question: the call (tool, arguments, call id), the question (its
//! key, message, and schema or link), the server's `requestState` and the expiry. No instance waits: the
//! next invocation in the session brings the answers, and [`resolve`] turns them into calls to repeat —
//! each call exactly as stored, with `inputResponses` and the stored `requestState`:
//!
//! - a question answered `accept` (with the form's content), `decline` or `cancel` goes to the server as
//!   the user said; a call's other questions nobody answered go as `cancel` (the user dismissed them);
//! - a call none of whose questions were answered when the user went on is not repeated: the model is told
//!   the user did not answer, so the conversation stays one it accepts (every call has its output).
//!
//! As with approvals, only the session's own user can answer (the session is keyed by the verified user),
//! and only once: each answer is stored as an `mcp_elicitation_response`, after which the question is no
//! longer pending. An unknown, answered or expired question is refused with `answer_invalid`, nothing run.

use serde_json::{Map, Value, json};

use super::waiting::{self, Kind, Waiting, check_answers, not_made, shown};
use crate::agent::AskedQuestion;
use crate::failure::{Failure, FailureCode};
use crate::llm::ToolCall;
use crate::mcp::{AnswerAction, QuestionForm, Resume};
use crate::sessions::StoredMessage;
use crate::sessions::message::{Part, Record, new_message_id};

/// The stored message kinds (named like the AgentScope runtime's `mcp_approval_*` pair).
pub(crate) const REQUEST_KIND: &str = "mcp_elicitation_request";
pub(crate) const RESPONSE_KIND: &str = "mcp_elicitation_response";

/// Tools' questions as they wait in a session ([`waiting`]).
const QUESTION: Kind = Kind {
    request: REQUEST_KIND,
    response: RESPONSE_KIND,
    names: "elicitation_request_id",
    noun: "question",
    code: FailureCode::AnswerInvalid,
};

/// The user's answer to one question, as a face parsed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuestionAnswer {
    pub(crate) request_id: String,
    pub(crate) action: AnswerAction,
    /// The form's content (accepted form questions only).
    pub(crate) content: Option<Value>,
}

/// A question still waiting in the session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingQuestion {
    pub(crate) request_id: String,
    pub(crate) call: ToolCall,
    pub(crate) key: String,
    pub(crate) is_form: bool,
    pub(crate) request_state: Option<String>,
    pub(crate) expires_at: u64,
}

/// This invocation's answers applied to the session.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Calls to repeat first, as stored, with the answers.
    pub(crate) resumed: Vec<(ToolCall, Resume)>,
    /// To store (and to replay to the model now): the answers, and the outputs of the calls not repeated.
    pub(crate) records: Vec<Record>,
}

/// A call whose questions are being settled: what it is repeated with, and whether the user answered any.
struct AskingCall {
    call: ToolCall,
    resume: Resume,
    answered: bool,
}

/// The stored record of a question a tool asked (what [`pending`] reads back), part of the step
/// `original_id`.
pub(crate) fn record(asked: &AskedQuestion, original_id: &str) -> Record {
    let mut data = Map::new();
    for (key, value) in [
        ("id", &asked.request_id),
        ("call_id", &asked.call_id),
        ("server_label", &asked.server),
        ("name", &asked.name),
        ("arguments", &asked.arguments),
        ("key", &asked.key),
        ("message", &asked.message),
    ] {
        data.insert(key.to_owned(), Value::String(value.clone()));
    }
    match &asked.form {
        QuestionForm::Schema(schema) => {
            data.insert("mode".into(), json!("form"));
            data.insert("requested_schema".into(), schema.clone());
        }
        QuestionForm::Url(url) => {
            data.insert("mode".into(), json!("url"));
            data.insert("url".into(), json!(url));
        }
    }
    if let Some(state) = asked.request_state.as_deref() {
        data.insert("request_state".into(), json!(state));
    }
    data.insert("expires_at".into(), json!(asked.expires_at.to_string()));
    Record::completed(new_message_id(), REQUEST_KIND, "assistant", &[Part::Data(&data)], original_id, "assistant")
}

/// The questions of `stored` that no stored answer names, oldest first.
pub(crate) fn pending(stored: &[StoredMessage]) -> Vec<PendingQuestion> {
    waiting::unanswered(stored, &QUESTION)
        .into_iter()
        .map(|question| PendingQuestion {
            key: question.text("key").to_owned(),
            is_form: question.text("mode") == "form",
            request_state: question.data.get("request_state").and_then(Value::as_str).map(str::to_owned),
            request_id: question.request_id,
            call: question.call,
            expires_at: question.expires_at,
        })
        .collect()
}

impl Waiting for PendingQuestion {
    fn request_id(&self) -> &str {
        &self.request_id
    }

    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Applies `answers` to the `waiting` questions at `now` (unix seconds). Every waiting question is settled.
/// Refused (nothing settled, nothing run): an answer to no waiting question, two answers to one, an expired
/// question, content that is not an object for an accepted form.
pub(crate) fn resolve(
    waiting: Vec<PendingQuestion>,
    answers: &[QuestionAnswer],
    now: u64,
) -> Result<Resolved, Failure> {
    let asked = check_answers(&QUESTION, answers.iter().map(|a| a.request_id.as_str()), &waiting, now)?;
    for (answer, question) in answers.iter().zip(asked) {
        if question.is_form
            && answer.action == AnswerAction::Accept
            && !matches!(answer.content, Some(Value::Object(_)))
        {
            return Err(QUESTION.invalid(format!(
                "accepting the question {} needs the form's content: an object of the requested fields",
                shown(&answer.request_id)
            )));
        }
    }
    let mut resolved = Resolved::default();
    // Per call (in the order asked): its questions, answered or dismissed.
    let mut calls: Vec<AskingCall> = Vec::new();
    for question in waiting {
        let answer = answers.iter().find(|a| a.request_id == question.request_id);
        let (action, content) = match answer {
            Some(answer) => (answer.action, answer.content.clone()),
            None => (AnswerAction::Cancel, None),
        };
        let content_text = content.as_ref().map(Value::to_string).unwrap_or_default();
        let fields = [
            ("action", action.as_str()),
            ("content", content_text.as_str()),
            ("elicitation_request_id", question.request_id.as_str()),
            ("reason", if answer.is_some() { "" } else { "not answered" }),
        ];
        resolved.records.push(Record::own(RESPONSE_KIND, "user", &fields));
        let at = match calls.iter().position(|asking| asking.call.id == question.call.id) {
            Some(at) => at,
            None => {
                let resume = Resume { request_state: question.request_state, answers: Vec::new() };
                calls.push(AskingCall { call: question.call, resume, answered: false });
                calls.len() - 1
            }
        };
        calls[at].resume.answers.push((question.key, action, content));
        calls[at].answered |= answer.is_some();
    }
    for AskingCall { call, resume, answered } in calls {
        if answered {
            resolved.resumed.push((call, resume));
            continue;
        }
        let told = "The tool asked the user a question and they went on without answering it; the call was not \
                    completed.";
        resolved.records.push(not_made(&call, told));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(records: &[Record]) -> Vec<StoredMessage> {
        records.iter().filter_map(Record::message).collect()
    }

    fn question(id: &str, call: &str, key: &str, expires_at: u64) -> Record {
        let form = QuestionForm::Schema(json!({"type": "object", "properties": {"n": {"type": "integer"}}}));
        let asked = AskedQuestion {
            request_id: id.into(),
            call_id: call.into(),
            server: "s".into(),
            name: "book_table".into(),
            arguments: "{}".into(),
            key: key.into(),
            message: "How many?".into(),
            form,
            request_state: Some("state-1".into()),
            expires_at,
        };
        record(&asked, "o")
    }

    fn answer(id: &str, action: AnswerAction, content: Option<Value>) -> QuestionAnswer {
        QuestionAnswer { request_id: id.into(), action, content }
    }

    #[test]
    fn an_answered_question_resumes_its_call_with_the_state_and_dismisses_its_siblings() {
        let records = [question("q1", "c1", "a", 100), question("q2", "c1", "b", 100), question("q3", "c2", "a", 100)];
        let waiting = pending(&stored(&records));
        assert_eq!(waiting.len(), 3);
        assert!(waiting[0].is_form && waiting[0].request_state.as_deref() == Some("state-1"));
        let resolved = resolve(waiting, &[answer("q1", AnswerAction::Accept, Some(json!({"n": 2})))], 50).unwrap();
        assert_eq!(resolved.resumed.len(), 1, "only the call with an answer is repeated");
        let (call, resume) = &resolved.resumed[0];
        assert_eq!(call.id, "c1");
        assert_eq!(resume.request_state.as_deref(), Some("state-1"));
        assert_eq!(
            resume.answers,
            vec![("a".into(), AnswerAction::Accept, Some(json!({"n": 2}))), ("b".into(), AnswerAction::Cancel, None)]
        );
        // Three answers and the output of the call nobody answered.
        assert_eq!(resolved.records.len(), 4);
        let mut all = records.to_vec();
        all.extend(resolved.records);
        assert!(pending(&stored(&all)).is_empty(), "answered once, nothing waits any more");
    }

    #[test]
    fn unknown_twice_expired_and_contentless_answers_are_refused() {
        let waiting = || pending(&stored(&[question("q1", "c1", "a", 100)]));
        let refused = |answers: &[QuestionAnswer], now| resolve(waiting(), answers, now).unwrap_err();
        let unknown = refused(&[answer("qx", AnswerAction::Decline, None)], 50);
        assert_eq!((unknown.code, unknown.http_status().as_u16()), (FailureCode::AnswerInvalid, 400));
        let twice = [answer("q1", AnswerAction::Decline, None), answer("q1", AnswerAction::Cancel, None)];
        assert!(refused(&twice, 50).message.contains("twice"));
        assert!(refused(&[answer("q1", AnswerAction::Decline, None)], 100).message.contains("expired"));
        assert!(refused(&[answer("q1", AnswerAction::Accept, Some(json!(3)))], 50).message.contains("content"));
        assert!(resolve(waiting(), &[answer("q1", AnswerAction::Decline, None)], 50).is_ok());
    }
}
