//! `RunAgentInput`: `threadId` (the session), `runId`, `messages`, `forwardedProps.user_id`, `resume`. The
//! conversation is carried by the client, so its messages become the turn's history; `state`, `context`
//! and client-side `tools` are not read (the tools are the MCP server's). `resume` answers the approval
//! interrupts the thread's last run finished with (see `render.rs`).

use serde::Deserialize;
use serde::de::Deserializer;
use serde_json::Value;

use crate::agent::QUESTION_ID_PREFIX;
use crate::llm::{ChatMessage, FunctionCall, Sampling, ToolCall};
use crate::mcp::AnswerAction;
use crate::pipeline::{ApprovalAnswer, ApprovalInput, Ask, QuestionAnswer, ResponseThread, UserClaim};
use crate::protocol::reader::{self, Expect, Lenient, Loose, Obj, Part, PartRule};
use crate::protocol::{RequestError, field};

/// Messages a run may carry; more is refused rather than read without bound.
const MAX_MESSAGES: usize = 1000;
/// Content parts a message may carry.
const MAX_PARTS: usize = 256;
/// `resume` entries a run may carry: one per interrupt, and a run asks at most one per tool call of a step.
const MAX_RESUME: usize = 64;

/// A parsed run request.
#[derive(Debug, Clone)]
pub(crate) struct RunInput {
    pub(crate) thread_id: String,
    pub(crate) run_id: String,
    messages: Vec<ChatMessage>,
    /// `forwardedProps.user_id`, else `forwardedProps.userId` (what the AgentScope adapter reads).
    pub(crate) user_id: Option<String>,
    /// `resume`: the user's answers to the approval interrupts the thread's last run finished with.
    answers: Vec<ApprovalAnswer>,
    /// `resume` entries answering a tool's question (an interrupt id made for a question).
    questions: Vec<QuestionAnswer>,
}

impl RunInput {
    pub(crate) fn from_slice(body: &[u8]) -> Result<RunInput, RequestError> {
        let wire = reader::read::<Wire>(body)?;
        let id = |camel: &Loose, snake: &Loose, name: &str| {
            camel
                .0
                .as_ref()
                .or(snake.0.as_ref())
                .filter(|s| !s.is_empty())
                .cloned()
                .ok_or_else(|| field(name, "required non-empty string"))
        };
        let thread_id = id(&wire.thread_id, &wire.thread_id_snake, "threadId")?;
        let run_id = id(&wire.run_id, &wire.run_id_snake, "runId")?;
        let raw = wire.messages.ok_or_else(|| field("messages", "required array"))?;
        let mut messages = Vec::with_capacity(raw.len());
        for (i, message) in raw.into_iter().enumerate() {
            if let Some(message) = message.0.into_chat(&format!("messages[{i}]"))? {
                messages.push(message);
            }
        }
        let (mut answers, mut questions) = (Vec::new(), Vec::new());
        for (i, entry) in wire.resume.unwrap_or_default().iter().enumerate() {
            let at = format!("resume[{i}]");
            let id = entry.get("interruptId").or_else(|| entry.get("interrupt_id")).and_then(Value::as_str);
            match id.is_some_and(|id| id.starts_with(QUESTION_ID_PREFIX)) {
                true => questions.push(question_answer(&at, entry)?),
                false => answers.push(answer(&at, entry)?),
            }
        }
        // A run that only resumes (answers interrupts) needs no new user message.
        let asks = messages.iter().any(|m| matches!(m, ChatMessage::User { content } if !content.trim().is_empty()));
        if !asks && answers.is_empty() && questions.is_empty() {
            return Err(field("messages", "no user message with text"));
        }
        let props = wire.forwarded_props.0.or(wire.forwarded_props_snake.0).unwrap_or_default();
        let user_id = props.user_id.non_blank().or(props.user_id_camel.non_blank()).map(str::to_owned);
        Ok(RunInput { thread_id, run_id, messages, user_id, answers, questions })
    }

    pub(crate) fn to_ask(&self, user: UserClaim) -> Ask {
        Ask {
            messages: self.messages.clone(),
            model: None,
            sampling: Sampling::default(),
            user,
            // The session memory stores this face's input as the model messages it became.
            records: Vec::new(),
            session_id: Some(self.thread_id.clone()),
            // A call that needs approval, or a tool's question, pauses the run with an interrupt; `resume`
            // brings the answer.
            approval: ApprovalInput::asking(self.answers.clone(), self.questions.clone()),
            thread: ResponseThread::default(),
        }
    }
}

/// `RunAgentInput` as sent; each field also under its snake_case name (camelCase wins). `state`, `context`
/// and `tools` are not read.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "threadId", default)]
    thread_id: Loose,
    #[serde(rename = "thread_id", default)]
    thread_id_snake: Loose,
    #[serde(rename = "runId", default)]
    run_id: Loose,
    #[serde(rename = "run_id", default)]
    run_id_snake: Loose,
    #[serde(default, deserialize_with = "messages")]
    messages: Option<Vec<Obj<Message>>>,
    #[serde(rename = "forwardedProps", default)]
    forwarded_props: Lenient<Props>,
    #[serde(rename = "forwarded_props", default)]
    forwarded_props_snake: Lenient<Props>,
    /// The same name in both spellings.
    #[serde(default, deserialize_with = "resume")]
    resume: Option<Vec<Value>>,
}

impl Expect for Wire {
    const EXPECTING: &'static str = "expected a JSON object";
}

fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Obj<Message>>>, D::Error> {
    reader::seq_at_most(d, MAX_MESSAGES, "messages", "expected an array of messages")
}

fn resume<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    reader::seq_at_most(d, MAX_RESUME, "resume entries", "expected an array of resume entries")
}

/// One `ResumeEntry` `{interruptId, status, payload?}` as the answer to an approval request: `cancelled`
/// declines; `resolved` approves unless the payload says `approve: false` (or is `false`); `payload.reason`
/// is told to the model on a decline. The error names the field at fault, never its value.
fn answer(at: &str, entry: &Value) -> Result<ApprovalAnswer, RequestError> {
    let Some(entry) = entry.as_object() else { return Err(field(at, "expected an object")) };
    let request_id = entry.get("interruptId").or_else(|| entry.get("interrupt_id")).and_then(Value::as_str);
    let Some(request_id) = request_id.filter(|id| !id.is_empty()) else {
        return Err(field(format!("{at}.interruptId"), "required: the id of the interrupt answered"));
    };
    let resolved = match entry.get("status").and_then(Value::as_str) {
        Some("resolved") => true,
        Some("cancelled") => false,
        _ => return Err(field(format!("{at}.status"), "expected resolved or cancelled")),
    };
    let payload = entry.get("payload").filter(|p| !p.is_null());
    let said = match payload {
        Some(Value::Bool(approve)) => Some(*approve),
        Some(Value::Object(payload)) => match payload.get("approve") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(approve)) => Some(*approve),
            Some(_) => return Err(field(format!("{at}.payload.approve"), "expected true or false")),
        },
        _ => None,
    };
    let reason = match payload.and_then(|p| p.get("reason")) {
        None | Some(Value::Null) => None,
        Some(Value::String(reason)) => Some(reason.clone()).filter(|r| !r.is_empty()),
        Some(_) => return Err(field(format!("{at}.payload.reason"), "expected a string")),
    };
    let approve = resolved && said.unwrap_or(true);
    Ok(ApprovalAnswer { request_id: request_id.to_owned(), approve, reason })
}

/// One `ResumeEntry` answering a tool's question: `resolved` accepts, its `payload` the form's content
/// (an object; a link's question needs none); `cancelled` dismisses it (MCP `cancel`), or declines it when
/// the payload says `{"action": "decline"}`.
fn question_answer(at: &str, entry: &Value) -> Result<QuestionAnswer, RequestError> {
    let request_id = entry.get("interruptId").or_else(|| entry.get("interrupt_id")).and_then(Value::as_str);
    let request_id = request_id.unwrap_or_default().to_owned();
    let payload = entry.get("payload").filter(|p| !p.is_null());
    let (action, content) = match entry.get("status").and_then(Value::as_str) {
        Some("resolved") => match payload {
            None => (AnswerAction::Accept, None),
            Some(Value::Object(content)) => (AnswerAction::Accept, Some(Value::Object(content.clone()))),
            Some(_) => return Err(field(format!("{at}.payload"), "expected an object of the requested fields")),
        },
        Some("cancelled") => match payload.and_then(|p| p.get("action")).and_then(Value::as_str) {
            Some("decline") => (AnswerAction::Decline, None),
            _ => (AnswerAction::Cancel, None),
        },
        _ => return Err(field(format!("{at}.status"), "expected resolved or cancelled")),
    };
    Ok(QuestionAnswer { request_id, action, content })
}

/// `forwardedProps`: only the user is read, leniently.
#[derive(Deserialize, Default)]
struct Props {
    #[serde(default)]
    user_id: Loose,
    #[serde(rename = "userId", default)]
    user_id_camel: Loose,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: Loose,
    #[serde(default)]
    content: Lenient<Content>,
    #[serde(rename = "toolCalls", default)]
    tool_calls: Lenient<Vec<serde_json::Value>>,
    #[serde(rename = "tool_calls", default)]
    tool_calls_snake: Lenient<Vec<serde_json::Value>>,
    #[serde(rename = "toolCallId", default)]
    tool_call_id: Loose,
    #[serde(rename = "tool_call_id", default)]
    tool_call_id_snake: Loose,
    #[serde(default)]
    error: Loose,
}

impl Expect for Message {
    const EXPECTING: &'static str = "expected a message object";
}

/// A message's `content`: a string, or (for a user) parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

const ROLES: &str = "expected one of user, assistant, system, developer, tool, reasoning, activity";

impl Message {
    /// One AG-UI message as the model's; `None` for what the model does not read (reasoning, activity).
    fn into_chat(self, at: &str) -> Result<Option<ChatMessage>, RequestError> {
        let Some(role) = self.role.as_str() else {
            return Err(field(format!("{at}.role"), "required string"));
        };
        let text = match &self.content.0 {
            Some(Content::Text(text)) => Some(text.clone()),
            _ => None,
        };
        Ok(Some(match role {
            "system" | "developer" => ChatMessage::System { content: text.unwrap_or_default() },
            "user" => ChatMessage::User {
                content: match self.content.0 {
                    Some(Content::Text(text)) => text,
                    Some(Content::Parts(parts)) if parts.len() > MAX_PARTS => {
                        return Err(field(format!("{at}.content"), format!("more than {MAX_PARTS} parts")));
                    }
                    // Only text parts are read (media parts are not).
                    Some(Content::Parts(parts)) => reader::parts_text(&format!("{at}.content"), &parts, |p| {
                        if p.type_.as_str() == Some("text") { PartRule::TextIfAny } else { PartRule::Skip }
                    })?,
                    None => return Err(field(format!("{at}.content"), "required string or parts")),
                },
            },
            "assistant" => {
                let calls = self.tool_calls.0.or(self.tool_calls_snake.0).unwrap_or_default();
                let tool_calls = calls
                    .into_iter()
                    .enumerate()
                    .map(|(j, call)| tool_call(&format!("{at}.toolCalls[{j}]"), call))
                    .collect::<Result<Vec<_>, _>>()?;
                ChatMessage::Assistant { content: text.filter(|s| !s.is_empty()), tool_calls }
            }
            "tool" => {
                let id = self.tool_call_id.0.or(self.tool_call_id_snake.0);
                let id = id.ok_or_else(|| field(format!("{at}.toolCallId"), "required for a tool message"))?;
                let content = match self.error.0 {
                    Some(error) => format!("error: {error}"),
                    None => text.unwrap_or_default(),
                };
                ChatMessage::Tool { tool_call_id: id, content }
            }
            "reasoning" | "activity" => return Ok(None),
            _ => return Err(field(format!("{at}.role"), ROLES)),
        }))
    }
}

#[derive(Deserialize)]
struct WireCall {
    #[serde(deserialize_with = "reader::string")]
    id: String,
    function: Obj<WireFunction>,
}

impl Expect for WireCall {
    const EXPECTING: &'static str = "expected an object";
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(deserialize_with = "reader::string")]
    name: String,
    #[serde(default)]
    arguments: Loose,
}

impl Expect for WireFunction {
    const EXPECTING: &'static str = "expected an object";
}

fn tool_call(at: &str, call: serde_json::Value) -> Result<ToolCall, RequestError> {
    let call = reader::typed::<Obj<WireCall>>(call).map_err(|error| match error {
        RequestError::Field { field: path, reason } if path == "body" => field(at, reason),
        RequestError::Field { field: path, reason } => field(format!("{at}.{path}"), reason),
        other => other,
    })?;
    let WireCall { id, function } = call.0;
    let arguments = function.0.arguments.0.unwrap_or_else(|| "{}".to_owned());
    Ok(ToolCall { id, kind: "function".into(), function: FunctionCall { name: function.0.name, arguments } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<RunInput, RequestError> {
        RunInput::from_slice(value.to_string().as_bytes())
    }

    #[test]
    fn a_run_is_its_thread_its_messages_and_its_user() {
        let run = parse(json!({"threadId":"t1","runId":"r1","messages":[
            {"id":"1","role":"user","content":"hi"},
            {"id":"2","role":"assistant","toolCalls":[{"id":"c1","type":"function","function":{"name":"time","arguments":"{}"}}]},
            {"id":"3","role":"tool","toolCallId":"c1","content":"noon"},
            {"id":"4","role":"reasoning","content":"hm"},
            {"id":"5","role":"user","content":[{"type":"text","text":"and now?"},{"type":"image","source":{}}]}],
            "forwardedProps":{"user_id":"u1"}}))
        .unwrap();
        let ask = run.to_ask(UserClaim::Agent);
        assert_eq!(
            (run.run_id.as_str(), ask.session_id.as_deref(), run.user_id.as_deref()),
            ("r1", Some("t1"), Some("u1"))
        );
        assert_eq!(ask.messages.len(), 4);
        assert_eq!(ask.messages[3], ChatMessage::User { content: "and now?".into() });
        assert!(
            matches!(&ask.messages[1], ChatMessage::Assistant { tool_calls, .. } if tool_calls[0].function.name == "time")
        );
    }

    #[test]
    fn bad_runs_name_the_field() {
        let missing = parse(json!({"runId":"r","messages":[]})).unwrap_err();
        assert_eq!(missing.to_string(), "threadId: required non-empty string");
        let no_user = parse(json!({"threadId":"t","runId":"r","messages":[{"id":"1","role":"system","content":"x"}]}));
        assert!(no_user.unwrap_err().to_string().contains("no user message"));
        let bad_role = parse(json!({"threadId":"t","runId":"r","messages":[{"id":"1","role":"robot","content":"x"}]}));
        assert_eq!(bad_role.unwrap_err().to_string(), format!("messages[0].role: {ROLES}"));
        assert!(matches!(RunInput::from_slice(b"{"), Err(RequestError::NotJson(_))));
    }

    #[test]
    fn a_resume_answers_interrupts_and_needs_no_new_message() {
        let run = parse(json!({"threadId":"t","runId":"r2","messages":[],"resume":[
            {"interruptId":"mcpr_a","status":"resolved"},
            {"interruptId":"mcpr_b","status":"resolved","payload":{"approve":false,"reason":"not now"}},
            {"interrupt_id":"mcpr_c","status":"cancelled","payload":{"approve":true}},
            {"interruptId":"mcpr_d","status":"resolved","payload":false}]}))
        .unwrap();
        let ask = run.to_ask(UserClaim::Agent);
        assert!(ask.approval.can_ask && ask.messages.is_empty());
        let said: Vec<(&str, bool, Option<&str>)> =
            ask.approval.answers.iter().map(|a| (a.request_id.as_str(), a.approve, a.reason.as_deref())).collect();
        assert_eq!(
            said,
            [
                ("mcpr_a", true, None),
                ("mcpr_b", false, Some("not now")),
                ("mcpr_c", false, None),
                ("mcpr_d", false, None)
            ]
        );
    }

    #[test]
    fn a_resume_answers_questions_by_their_ids_beside_approvals() {
        let run = parse(json!({"threadId":"t","runId":"r2","messages":[],"resume":[
            {"interruptId":"mcpq_a","status":"resolved","payload":{"guests":2}},
            {"interruptId":"mcpq_b","status":"cancelled","payload":{"action":"decline"}},
            {"interruptId":"mcpq_c","status":"cancelled"},
            {"interruptId":"mcpq_d","status":"resolved"},
            {"interruptId":"mcpr_e","status":"resolved"}]}))
        .unwrap();
        let ask = run.to_ask(UserClaim::Agent);
        assert!(ask.approval.can_question);
        let said: Vec<(&str, AnswerAction, Option<Value>)> =
            ask.approval.questions.iter().map(|a| (a.request_id.as_str(), a.action, a.content.clone())).collect();
        assert_eq!(
            said,
            [
                ("mcpq_a", AnswerAction::Accept, Some(json!({"guests": 2}))),
                ("mcpq_b", AnswerAction::Decline, None),
                ("mcpq_c", AnswerAction::Cancel, None),
                ("mcpq_d", AnswerAction::Accept, None)
            ]
        );
        assert_eq!(ask.approval.answers.len(), 1, "the approval is an approval");
        let bad = parse(json!({"threadId":"t","runId":"r","messages":[],
            "resume":[{"interruptId":"mcpq_a","status":"resolved","payload":"four"}]}));
        assert_eq!(bad.unwrap_err().to_string(), "resume[0].payload: expected an object of the requested fields");
    }

    #[test]
    fn bad_resume_entries_name_the_field_not_the_value() {
        let refused = |entry: serde_json::Value| {
            parse(json!({"threadId":"t","runId":"r","messages":[],"resume":[entry]})).unwrap_err().to_string()
        };
        assert_eq!(
            refused(json!({"interruptId":"a","status":"secret-ish"})),
            "resume[0].status: expected resolved or cancelled"
        );
        assert_eq!(
            refused(json!({"status":"resolved"})),
            "resume[0].interruptId: required: the id of the interrupt answered"
        );
        assert_eq!(
            refused(json!({"interruptId":"a","status":"resolved","payload":{"approve":"yes"}})),
            "resume[0].payload.approve: expected true or false"
        );
        assert_eq!(refused(json!("a")), "resume[0]: expected an object");
        let many: Vec<_> =
            (0..=MAX_RESUME).map(|i| json!({"interruptId": format!("i{i}"), "status": "resolved"})).collect();
        let err = parse(json!({"threadId":"t","runId":"r","messages":[],"resume":many})).unwrap_err().to_string();
        assert!(err.contains(&format!("more than {MAX_RESUME}")), "{err}");
    }
}
