//! The conversation in `input` → model messages. Earlier turns come back in `input`; that is the only
//! memory a stateless function has, so the mapping must always yield a conversation the model accepts:
//! an assistant message with `tool_calls` is followed directly by one tool message per call.
//!
//! Decisions:
//! - `reasoning` messages are dropped (as the seed does); unknown message types too.
//! - Calls and outputs are paired by `llm::conversation::assemble` (its docs give the rules).
//! - A plain message with role `tool` has no call id to answer, so it is dropped.
//! - Non-text content becomes a short bracketed note; empty messages are skipped.

use serde_json::{Map, Value};

use super::request::{AgentRequest, ContentItem, InputMessage, MessageType, Role};
use crate::llm::conversation::{Piece as Item, assemble};
use crate::llm::{ChatMessage, ToolCall};
use crate::mcp::AnswerAction;
use crate::pipeline::{ApprovalAnswer, ApprovalInput, QuestionAnswer, ResentRequest};
use crate::protocol::{RequestError, field};
use crate::sessions::message::{Part, Record, new_message_id};

/// Longest URL or file name quoted in a note; data: URLs can be megabytes of base64.
const MAX_NOTE_CHARS: usize = 200;

impl AgentRequest {
    /// `input` as a session stores it: runtime Messages with the client's ids (fresh ones where it sent
    /// none), `status:"completed"`; content other than text and data is kept as the note the model reads.
    pub(crate) fn to_records(&self) -> Vec<Record> {
        // Approval messages are not stored as sent: the session keeps its own record of each answer.
        self.input.iter().filter(|m| !is_approval(m)).map(record_of).collect()
    }

    /// The `mcp_approval_response` messages of `input` (data `{approval_request_id, approve, reason?}`),
    /// and any `mcp_approval_request` sent back (data `{id, arguments, …}`), in order.
    pub(crate) fn approval_input(&self) -> Result<ApprovalInput, RequestError> {
        // `/process` shows a tool's question as an `mcp_elicitation_request` message (see builder.rs).
        let mut approval = ApprovalInput::asking(Vec::new(), Vec::new());
        for (i, message) in self.input.iter().enumerate() {
            let MessageType::Other(kind) = &message.kind else { continue };
            for (j, item) in message.content.iter().enumerate() {
                let ContentItem::Data(data) = item else { continue };
                let at = format!("input[{i}].content[{j}].data");
                let text = |key: &str| data.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
                match kind.as_str() {
                    "mcp_approval_response" => {
                        let request_id = text("approval_request_id").ok_or_else(|| {
                            field(format!("{at}.approval_request_id"), "required: the id of the request answered")
                        })?;
                        let approve = data
                            .get("approve")
                            .and_then(Value::as_bool)
                            .ok_or_else(|| field(format!("{at}.approve"), "required: true or false"))?;
                        approval.answers.push(ApprovalAnswer {
                            request_id: request_id.to_owned(),
                            approve,
                            reason: text("reason").map(str::to_owned),
                        });
                    }
                    "mcp_approval_request" => {
                        let request_id = text("id").ok_or_else(|| field(format!("{at}.id"), "required"))?;
                        let arguments = data
                            .get("arguments")
                            .and_then(Value::as_str)
                            .ok_or_else(|| field(format!("{at}.arguments"), "expected a string"))?;
                        approval
                            .resent
                            .push(ResentRequest { request_id: request_id.to_owned(), arguments: arguments.to_owned() });
                    }
                    "mcp_elicitation_response" => approval.questions.push(question_answer(&at, data)?),
                    _ => {}
                }
            }
        }
        Ok(approval)
    }

    /// The conversation in `input`, in order, as model messages (see the module docs for the rules).
    pub fn to_chat_messages(&self) -> Vec<ChatMessage> {
        let items: Vec<Item> = self.input.iter().flat_map(items_of).collect();
        assemble(&items)
    }
}

fn items_of(msg: &InputMessage) -> Vec<Item> {
    match msg.kind {
        MessageType::Message => text_message(msg).map(Item::Message).into_iter().collect(),
        MessageType::FunctionCall | MessageType::PluginCall => {
            data_items(msg).filter_map(call_of).map(Item::Call).collect()
        }
        MessageType::FunctionCallOutput | MessageType::PluginCallOutput => {
            data_items(msg).filter_map(output_of).collect()
        }
        MessageType::Reasoning | MessageType::Other(_) => Vec::new(),
    }
}

fn data_items(msg: &InputMessage) -> impl Iterator<Item = &Map<String, Value>> {
    msg.content.iter().filter_map(|c| match c {
        ContentItem::Data(d) => Some(d),
        _ => None,
    })
}

fn non_empty_str<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A JSON value as the text the model sees: strings as they are, anything else compact.
fn as_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn call_of(data: &Map<String, Value>) -> Option<ToolCall> {
    let call_id = non_empty_str(data, "call_id")?;
    let name = non_empty_str(data, "name")?;
    let mut arguments = as_text(data.get("arguments"));
    if arguments.trim().is_empty() {
        arguments = "{}".to_owned();
    }
    Some(ToolCall::new(call_id, name, arguments))
}

fn output_of(data: &Map<String, Value>) -> Option<Item> {
    let call_id = non_empty_str(data, "call_id")?;
    Some(Item::Output { call_id: call_id.to_owned(), content: as_text(data.get("output")) })
}

fn text_message(msg: &InputMessage) -> Option<ChatMessage> {
    let text = msg.content.iter().filter_map(text_of).collect::<Vec<_>>().join("\n");
    if text.is_empty() {
        return None;
    }
    match msg.role.unwrap_or(Role::User) {
        Role::User => Some(ChatMessage::User { content: text }),
        Role::System => Some(ChatMessage::System { content: text }),
        Role::Assistant => Some(ChatMessage::Assistant { content: Some(text), tool_calls: Vec::new() }),
        Role::Tool => None,
    }
}

fn text_of(item: &ContentItem) -> Option<String> {
    let note = |what: &str, detail: Option<&String>| match detail.filter(|d| d.chars().count() <= MAX_NOTE_CHARS) {
        Some(d) => format!("[{what}: {d}]"),
        None => format!("[{what}]"),
    };
    match item {
        ContentItem::Text(t) | ContentItem::Refusal(t) => Some(t.clone()).filter(|t| !t.is_empty()),
        ContentItem::Image { url } => Some(note("image", url.as_ref())),
        ContentItem::File { name } => Some(note("file", name.as_ref())),
        ContentItem::Audio => Some("[audio]".to_owned()),
        ContentItem::Data(_) => Some("[data]".to_owned()),
        ContentItem::Other(kind) => Some(note("attachment", Some(kind))),
    }
}

/// An `mcp_elicitation_response` data item `{elicitation_request_id, action, content?}`: the user's answer
/// to a tool's question (`action` as MCP's `ElicitResult`: `accept` with the form's `content`, `decline`,
/// `cancel`).
fn question_answer(at: &str, data: &Map<String, Value>) -> Result<QuestionAnswer, RequestError> {
    let request_id =
        data.get("elicitation_request_id").and_then(Value::as_str).filter(|s| !s.trim().is_empty()).ok_or_else(
            || field(format!("{at}.elicitation_request_id"), "required: the id of the question answered"),
        )?;
    let action = data
        .get("action")
        .and_then(Value::as_str)
        .and_then(AnswerAction::parse)
        .ok_or_else(|| field(format!("{at}.action"), "required: accept, decline or cancel"))?;
    let content = match data.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::Object(content)) => Some(Value::Object(content.clone())),
        Some(_) => return Err(field(format!("{at}.content"), "expected an object of the requested fields")),
    };
    Ok(QuestionAnswer { request_id: request_id.to_owned(), action, content })
}

/// Messages the session keeps its own record of instead of storing them as sent: approval and question
/// requests and answers.
fn is_approval(msg: &InputMessage) -> bool {
    matches!(&msg.kind, MessageType::Other(kind) if matches!(kind.as_str(),
        "mcp_approval_response" | "mcp_approval_request" | "mcp_elicitation_response" | "mcp_elicitation_request"))
}

fn record_of(msg: &InputMessage) -> Record {
    let kind = match &msg.kind {
        MessageType::Message => "message",
        MessageType::FunctionCall => "function_call",
        MessageType::FunctionCallOutput => "function_call_output",
        MessageType::PluginCall => "plugin_call",
        MessageType::PluginCallOutput => "plugin_call_output",
        MessageType::Reasoning => "reasoning",
        MessageType::Other(other) => other.as_str(),
    };
    let role = match msg.role.unwrap_or(Role::User) {
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::System => "system",
        Role::Tool => "tool",
    };
    let texts: Vec<Option<String>> = msg
        .content
        .iter()
        .map(|item| match item {
            ContentItem::Data(_) => None,
            other => text_of(other),
        })
        .collect();
    let parts: Vec<Part> = msg
        .content
        .iter()
        .zip(&texts)
        .filter_map(|(item, text)| match item {
            ContentItem::Data(data) => Some(Part::Data(data)),
            _ => text.as_deref().map(Part::Text),
        })
        .collect();
    let id = msg.id.clone().unwrap_or_else(new_message_id);
    Record::completed(id.clone(), kind, role, &parts, &id, role)
}
