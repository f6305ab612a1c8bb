//! A stored conversation → what the model is sent, the way the seed's DashScope formatter does it
//! (docs/sessions.md, "How a session is replayed"): reasoning is never replayed, text items are joined with `\n`, calls
//! and outputs are paired by `llm::conversation`, and a tool output that is a JSON list of content blocks
//! is sent as the text of those blocks. Then the window: the newest messages that fit the budget.

use serde_json::{Map, Value};

use super::message::StoredMessage;
use crate::llm::conversation::{Piece, assemble};
use crate::llm::{ChatMessage, ToolCall};

/// How much of a stored conversation the model is sent (`SESSION_WINDOW_MESSAGES`, `SESSION_WINDOW_CHARS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) messages: usize,
    pub(crate) chars: usize,
}

/// The model messages of `stored`, oldest first.
pub(crate) fn to_chat(stored: &[StoredMessage]) -> Vec<ChatMessage> {
    let pieces: Vec<Piece> = stored.iter().flat_map(pieces_of).collect();
    assemble(&pieces)
}

fn pieces_of(message: &StoredMessage) -> Vec<Piece> {
    let data = || message.items().iter().filter_map(|c| c.data.as_ref());
    match message.kind.as_str() {
        "message" => text_message(message).map(Piece::Message).into_iter().collect(),
        "plugin_call" | "function_call" => data().filter_map(call_of).map(Piece::Call).collect(),
        "plugin_call_output" | "function_call_output" => data().filter_map(output_of).collect(),
        _ => Vec::new(), // reasoning is never replayed; other kinds say nothing to the model
    }
}

fn text_message(message: &StoredMessage) -> Option<ChatMessage> {
    let texts: Vec<&str> = message.items().iter().filter_map(|c| c.text.as_deref()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        return None;
    }
    let content = texts.join("\n");
    match message.role.as_deref().unwrap_or("user") {
        "assistant" => Some(ChatMessage::Assistant { content: Some(content), tool_calls: Vec::new() }),
        "system" => Some(ChatMessage::System { content }),
        "tool" => None, // no call id to answer
        _ => Some(ChatMessage::User { content }),
    }
}

fn non_empty<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn call_of(data: &Map<String, Value>) -> Option<ToolCall> {
    let arguments = match data.get("arguments") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    Some(ToolCall::new(non_empty(data, "call_id")?, non_empty(data, "name")?, arguments))
}

fn output_of(data: &Map<String, Value>) -> Option<Piece> {
    let content = match data.get("output") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => blocks_text(s).unwrap_or_else(|| s.clone()),
        Some(other) => other.to_string(),
    };
    Some(Piece::Output { call_id: non_empty(data, "call_id")?.to_owned(), content })
}

/// The text of an output stored as a JSON list of content blocks (`[{"type":"text","text":…}]`), as the
/// seed's formatter sends it; `None` when the output is anything else.
fn blocks_text(output: &str) -> Option<String> {
    let blocks: Vec<Value> = serde_json::from_str(output).ok()?;
    let texts: Vec<&str> = blocks
        .iter()
        .map(|b| (b.get("type").and_then(Value::as_str) == Some("text")).then(|| b.get("text")?.as_str()).flatten())
        .collect::<Option<_>>()?;
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The newest messages of `conversation` within `window`, cut only between units: an assistant message
/// with tool calls and its tool messages stay together, and the newest unit is always kept (it is the
/// caller's new message; the model can refuse an oversized one itself, with a clear error).
pub(crate) fn fit(conversation: Vec<ChatMessage>, window: Window) -> Vec<ChatMessage> {
    let mut starts: Vec<usize> = Vec::new();
    for (i, message) in conversation.iter().enumerate() {
        if !matches!(message, ChatMessage::Tool { .. }) {
            starts.push(i);
        }
    }
    let (mut count, mut chars, mut keep_from) = (0usize, 0usize, conversation.len());
    for (n, &start) in starts.iter().enumerate().rev() {
        let end = starts.get(n + 1).copied().unwrap_or(conversation.len());
        let unit = &conversation[start..end];
        let unit_chars: usize = unit.iter().map(chat_chars).sum();
        let first = keep_from == conversation.len();
        if !first && (count + unit.len() > window.messages || chars + unit_chars > window.chars) {
            break;
        }
        count += unit.len();
        chars += unit_chars;
        keep_from = start;
    }
    let mut conversation = conversation;
    conversation.drain(..keep_from);
    conversation
}

fn chat_chars(message: &ChatMessage) -> usize {
    match message {
        ChatMessage::System { content } | ChatMessage::User { content } => content.chars().count(),
        ChatMessage::Tool { content, .. } => content.chars().count(),
        ChatMessage::Assistant { content, tool_calls } => {
            content.as_deref().map_or(0, |c| c.chars().count())
                + tool_calls.iter().map(|c| c.function.name.len() + c.function.arguments.chars().count()).sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::message::Part;

    fn stored(kind: &str, role: &str, part: Part) -> StoredMessage {
        let id = crate::sessions::message::new_message_id();
        crate::sessions::Record::completed(id, kind, role, &[part], "o", "n").message().unwrap()
    }

    fn data<'a>(pairs: &'a [(&'a str, &'a str)]) -> Part<'a> {
        Part::Fields(pairs)
    }

    fn user(text: &str) -> ChatMessage {
        ChatMessage::User { content: text.into() }
    }

    #[test]
    fn a_stored_tool_turn_replays_as_the_seed_sends_it() {
        let turn = vec![
            stored("message", "user", Part::Text("Tell me the time in UTC")),
            stored("reasoning", "assistant", Part::Text("I should call the tool")),
            stored("plugin_call", "assistant", data(&[("call_id", "c1"), ("name", "getutctime"), ("arguments", "{}")])),
            stored(
                "plugin_call_output",
                "system",
                data(&[
                    ("call_id", "c1"),
                    ("name", "getutctime"),
                    ("output", r#"[{"type": "text", "text": "2026-01-01T00:00:00Z"}]"#),
                ]),
            ),
            stored("message", "assistant", Part::Text("The current UTC time is 2026-01-01T00:00:00Z.")),
        ];
        assert_eq!(
            to_chat(&turn),
            vec![
                user("Tell me the time in UTC"),
                ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("c1", "getutctime", "{}")] },
                ChatMessage::Tool { tool_call_id: "c1".into(), content: "2026-01-01T00:00:00Z".into() },
                ChatMessage::Assistant {
                    content: Some("The current UTC time is 2026-01-01T00:00:00Z.".into()),
                    tool_calls: Vec::new()
                },
            ]
        );
    }

    #[test]
    fn the_window_keeps_the_newest_units_and_never_splits_a_call_from_its_result() {
        let call = ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("c1", "t", "{}")] };
        let result = ChatMessage::Tool { tool_call_id: "c1".into(), content: "r".into() };
        let conversation = vec![user("one"), call.clone(), result.clone(), user("two")];
        let by_count = fit(conversation.clone(), Window { messages: 2, chars: 1000 });
        assert_eq!(by_count, vec![user("two")], "the call and its result do not fit in one slot");
        let three = fit(conversation.clone(), Window { messages: 3, chars: 1000 });
        assert_eq!(three, vec![call, result, user("two")]);
        let by_chars = fit(conversation.clone(), Window { messages: 100, chars: 4 });
        assert_eq!(by_chars, vec![user("two")]);
        let tiny = fit(vec![user("a very long new message")], Window { messages: 1, chars: 1 });
        assert_eq!(tiny, vec![user("a very long new message")], "the newest message is always sent");
    }
}
