//! Pieces of a conversation (messages, tool calls, tool outputs, in the order a client or a store keeps
//! them) → model messages the model accepts: an assistant message with `tool_calls` is followed directly
//! by one tool message per call. Shared by the AgentScope face (a request's `input`) and session memory
//! (a stored conversation), so both obey the same rules:
//!
//! - A call without an output later on is left out (the model would refuse the conversation), and so is
//!   an output without a preceding call.
//! - Consecutive calls become one assistant message; an assistant text directly before them is its `content`.
//! - Within such a group a repeated `call_id` keeps the last item (the seed sends a partial and a full one).
//! - A tool's output is placed right after its call group even if other messages came between them.

use super::types::{ChatMessage, ToolCall};

/// One piece of a conversation before assembly.
pub(crate) enum Piece {
    Message(ChatMessage),
    Call(ToolCall),
    Output { call_id: String, content: String },
}

/// The pieces, in order, as model messages (see the module docs for the rules).
pub(crate) fn assemble(items: &[Piece]) -> Vec<ChatMessage> {
    let mut consumed = vec![false; items.len()];
    let mut out: Vec<ChatMessage> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Piece::Message(m) => {
                out.push(m.clone());
                i += 1;
            }
            Piece::Output { .. } => i += 1, // placed with its call, or an orphan: either way not here
            Piece::Call(_) => {
                let mut group: Vec<ToolCall> = Vec::new();
                while let Some(Piece::Call(call)) = items.get(i) {
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
                        if let Piece::Output { content, .. } = &items[k] {
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
fn find_output(items: &[Piece], consumed: &[bool], from: usize, call_id: &str) -> Option<usize> {
    for (k, item) in items.iter().enumerate().skip(from) {
        match item {
            Piece::Call(c) if c.id == call_id => return None,
            Piece::Output { call_id: id, .. } if id == call_id && !consumed[k] => return Some(k),
            _ => {}
        }
    }
    None
}
