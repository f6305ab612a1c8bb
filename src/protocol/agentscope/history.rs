//! The conversation in `input` → model messages. Earlier turns come back in `input`; that is the only
//! memory a stateless function has, so the mapping must always yield a conversation the model accepts:
//! an assistant message with `tool_calls` is followed directly by one tool message per call.
//!
//! Decisions:
//! - `reasoning` messages are dropped (as the seed does); unknown message types too.
//! - A call without an output later in `input` is left out (the model would refuse the conversation),
//!   and so is an output without a preceding call.
//! - Consecutive calls become one assistant message; an assistant text directly before them is its `content`.
//! - Within such a group a repeated `call_id` keeps the last item (the seed sends a partial and a full one).
//! - A tool's output is placed right after its call group even if other messages came between them.
//! - A plain message with role `tool` has no call id to answer, so it is dropped.
//! - Non-text content becomes a short bracketed note; empty messages are skipped.

use serde_json::{Map, Value};

use super::request::{AgentRequest, ContentItem, InputMessage, MessageType, Role};
use crate::llm::{ChatMessage, ToolCall};

/// Longest URL or file name quoted in a note; data: URLs can be megabytes of base64.
const MAX_NOTE_CHARS: usize = 200;

/// One entry of a conversation as a face carried it; [`assemble`] makes model messages of a list of them.
/// The OpenAI faces build these from their own items, so every face gets the same history rules.
pub(crate) enum Item {
    Message(ChatMessage),
    Call(ToolCall),
    Output { call_id: String, content: String },
}

impl AgentRequest {
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

pub(crate) fn assemble(items: &[Item]) -> Vec<ChatMessage> {
    let mut consumed = vec![false; items.len()];
    let mut out: Vec<ChatMessage> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Message(m) => {
                out.push(m.clone());
                i += 1;
            }
            Item::Output { .. } => i += 1, // placed with its call, or an orphan: either way not here
            Item::Call(_) => {
                let mut group: Vec<ToolCall> = Vec::new();
                while let Some(Item::Call(call)) = items.get(i) {
                    match group.iter_mut().find(|c| c.id == call.id) {
                        Some(earlier) => *earlier = call.clone(),
                        None => group.push(call.clone()),
                    }
                    i += 1;
                }
                let mut answered = Vec::new();
                let mut outputs = Vec::new();
                for call in group {
                    if let Some(k) = find_output(items, &consumed, i, &call.id) {
                        consumed[k] = true;
                        if let Item::Output { content, .. } = &items[k] {
                            outputs.push(ChatMessage::Tool { tool_call_id: call.id.clone(), content: content.clone() });
                        }
                        answered.push(call);
                    }
                }
                if answered.is_empty() {
                    continue;
                }
                match out.last_mut() {
                    Some(ChatMessage::Assistant { tool_calls, .. }) if tool_calls.is_empty() => *tool_calls = answered,
                    _ => out.push(ChatMessage::Assistant { content: None, tool_calls: answered }),
                }
                out.extend(outputs);
            }
        }
    }
    out
}

/// The first unused output for `call_id` after position `from`, not looking past a later call that
/// reuses the id (stand-ins and some clients number calls per turn, so ids repeat across turns).
fn find_output(items: &[Item], consumed: &[bool], from: usize, call_id: &str) -> Option<usize> {
    for (k, item) in items.iter().enumerate().skip(from) {
        match item {
            Item::Call(c) if c.id == call_id => return None,
            Item::Output { call_id: id, .. } if id == call_id && !consumed[k] => return Some(k),
            _ => {}
        }
    }
    None
}
