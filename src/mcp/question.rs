//! Questions a tool asks the user (MCP elicitation), and the answers that resume its call.
//!
//! A 2026-07-28 server asks by answering `tools/call` with `resultType: "input_required"`: input requests
//! (here only `elicitation/create`, in form mode — a JSON schema to fill — or URL mode — a link to open) and
//! an opaque `requestState`. The client asks the user and repeats the same `tools/call` with
//! `inputResponses` (one `{action, content?}` per request key) and that `requestState`. Nothing waits on
//! the server between the two: the retry may come from another instance, minutes later, which is what lets
//! a turn end with the question and the next invocation carry the answer.
//!
//! Where nobody can be asked (a face with no way to show a question, a turn without a session to keep it
//! in), every question is declined (`action: "decline"`, as the specification says a client does when the
//! user will not answer) and the call retried at once; the model is told what was declined. On 2025
//! revisions the client does not declare the `elicitation` capability at all (see `live.rs`): a server
//! request arriving in the middle of a call cannot be held across invocations.

use std::collections::BTreeMap;

use rmcp::model::{ElicitRequestParams, InputRequest, InputRequiredResult};
use serde_json::{Value, json};

use super::output::ToolOutput;

/// Rounds one `tools/call` may take when questions are declined or the server only hands back its state
/// (load shedding): a server that keeps asking after a decline does not keep the turn.
pub(super) const MAX_ROUNDS: usize = 4;

/// One question of an `input_required` result.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The server's key for it in `inputRequests` (the answer goes back under it).
    pub key: String,
    /// What the server says to the user.
    pub message: String,
    pub form: Form,
}

/// What the user is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    /// Fill in an object described by this JSON schema (flat, primitive properties).
    Schema(Value),
    /// Open this link and complete what it asks there (nothing comes back but the decision).
    Url(String),
}

/// A tool's questions: the call waits for the user's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Questions {
    /// Echoed unchanged on the retry (the server's; never read here).
    pub request_state: Option<String>,
    pub questions: Vec<Question>,
}

/// What a call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Called {
    Output(ToolOutput),
    /// The server asked the user (only when the caller said it can ask, [`Asking::Relay`]).
    Asks(Questions),
}

impl Called {
    /// The tool's output for a caller that cannot ask ([`Asking::Decline`]): declined questions are never
    /// handed back, and were one, nobody could answer it there either.
    pub fn into_output(self) -> ToolOutput {
        match self {
            Called::Output(output) => output,
            Called::Asks(_) => ToolOutput::error("the tool asked a question, and nobody can answer it here"),
        }
    }
}

/// The user's decision on one question (MCP `ElicitResult.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Decline,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Decline => "decline",
            Action::Cancel => "cancel",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "accept" => Some(Action::Accept),
            "decline" => Some(Action::Decline),
            "cancel" => Some(Action::Cancel),
            _ => None,
        }
    }
}

/// The answers that resume a call that asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub request_state: Option<String>,
    /// Per question key: the action, and the form's content when accepted.
    pub answers: Vec<(String, Action, Option<Value>)>,
}

/// How a call treats a server's questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// Hand them to the caller ([`Called::Asks`]): the face shows them and the session keeps the call.
    Relay,
    /// Decline them and retry: nobody can answer.
    Decline,
}

/// The questions of an `input_required` result; `Err` names an input request this client never offers
/// to fulfil (sampling, roots: the capabilities are not declared).
pub(super) fn questions_of(result: InputRequiredResult) -> Result<Questions, String> {
    let mut questions = Vec::new();
    for (key, request) in result.input_requests.unwrap_or_default() {
        let InputRequest::Elicitation(request) = request else {
            return Err(format!(
                "the tool asked for {} (input request {key:?}), which this client does not offer",
                kind(&request)
            ));
        };
        let (message, form) = match request.params {
            ElicitRequestParams::FormElicitationParams { message, requested_schema, .. } => {
                (message, Form::Schema(serde_json::to_value(requested_schema).unwrap_or_else(|_| json!({}))))
            }
            ElicitRequestParams::UrlElicitationParams { message, url, .. } => (message, Form::Url(url)),
            #[allow(unreachable_patterns)]
            _ => return Err(format!("the tool asked a question of a kind this client does not know ({key:?})")),
        };
        questions.push(Question { key, message, form });
    }
    Ok(Questions { request_state: result.request_state, questions })
}

fn kind(request: &InputRequest) -> &'static str {
    match request {
        InputRequest::CreateMessage(_) => "sampling",
        InputRequest::ListRoots(_) => "roots",
        _ => "an input",
    }
}

/// `inputResponses` for `answers`.
pub(super) fn responses(answers: &[(String, Action, Option<Value>)]) -> BTreeMap<String, Value> {
    answers
        .iter()
        .map(|(key, action, content)| {
            let mut result = json!({"action": action.as_str()});
            if let (Action::Accept, Some(content)) = (action, content) {
                result["content"] = content.clone();
            }
            (key.clone(), result)
        })
        .collect()
}

/// Every question declined.
pub(super) fn declined(questions: &[Question]) -> Vec<(String, Action, Option<Value>)> {
    questions.iter().map(|q| (q.key.clone(), Action::Decline, None)).collect()
}

/// What the model is told besides the tool's own answer when questions were declined for want of anyone
/// to ask.
pub(super) fn declined_note(messages: &[String]) -> String {
    let asked = messages.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ");
    format!(
        "(The tool asked the user: {asked}. This conversation has no way to show a tool's questions, so they were \
         declined; tell the user, so they can answer it another way.)"
    )
}

/// `output` with `note` added to what the model reads.
pub(super) fn with_note(mut output: ToolOutput, note: &str) -> ToolOutput {
    if output.text.is_empty() {
        output.text = note.to_owned();
    } else {
        output.text = format!("{}\n{note}", output.text);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_url_questions_are_read_and_other_inputs_refused() {
        let result: InputRequiredResult = serde_json::from_value(json!({
            "resultType": "input_required",
            "requestState": "s1",
            "inputRequests": {
                "a": {"method": "elicitation/create", "params": {"mode": "form", "message": "How many?",
                    "requestedSchema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}},
                "b": {"method": "elicitation/create", "params": {"mode": "url", "message": "Sign",
                    "url": "https://example.com/sign", "elicitationId": "e1"}}
            }
        }))
        .unwrap();
        let questions = questions_of(result).unwrap();
        assert_eq!(questions.request_state.as_deref(), Some("s1"));
        assert_eq!(questions.questions.len(), 2);
        assert_eq!(questions.questions[0].key, "a");
        let Form::Schema(schema) = &questions.questions[0].form else { panic!() };
        assert_eq!(schema["properties"]["n"]["type"], "integer");
        assert_eq!(questions.questions[1].form, Form::Url("https://example.com/sign".into()));

        let roots: InputRequiredResult = serde_json::from_value(json!({"resultType": "input_required",
            "inputRequests": {"r": {"method": "roots/list"}}}))
        .unwrap();
        assert!(questions_of(roots).unwrap_err().contains("roots"));
    }

    #[test]
    fn responses_carry_content_only_when_accepted() {
        let answers = vec![
            ("a".to_owned(), Action::Accept, Some(json!({"n": 2}))),
            ("b".to_owned(), Action::Decline, Some(json!({"n": 3}))),
        ];
        let sent = responses(&answers);
        assert_eq!(sent["a"], json!({"action": "accept", "content": {"n": 2}}));
        assert_eq!(sent["b"], json!({"action": "decline"}));
    }
}
