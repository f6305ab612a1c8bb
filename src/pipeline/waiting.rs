//! What the last turn left waiting for the user in a session — approval requests (`approvals`) and tools'
//! questions (`questions`) — and the rules both settle by. A waiting request is a stored record of its
//! kind that no stored answer names; an invocation's answers must each name one, once, before it expires
//! (else nothing is settled and nothing runs); a call the user's answer does not let run gets an output
//! telling the model why, so every call of the conversation has its output. Each kind keeps what is its
//! own: what a request holds besides its call, and what an answer does.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::failure::{Failure, FailureCode, Fault};
use crate::llm::ToolCall;
use crate::sessions::StoredMessage;
use crate::sessions::message::Record;

/// Longest request id echoed in a refusal (ids we make are 37 characters).
const MAX_ECHOED_ID: usize = 64;

/// A kind of request that waits for the user: how it is stored, and how a refusal names it.
pub(super) struct Kind {
    /// The stored request's message type (`mcp_approval_request`, …).
    pub(super) request: &'static str,
    /// The stored answer's message type.
    pub(super) response: &'static str,
    /// The field of a stored answer that names its request.
    pub(super) names: &'static str,
    /// What a refusal calls one ("approval request", "question").
    pub(super) noun: &'static str,
    /// The code of a refused answer.
    pub(super) code: FailureCode,
}

impl Kind {
    /// A refused answer: the request's part (400), nothing run.
    pub(super) fn invalid(&self, message: String) -> Failure {
        Failure::new(self.code, message).with_fault(Fault::Request)
    }
}

/// A stored request no stored answer names, with the fields every kind has.
pub(super) struct Unanswered<'a> {
    pub(super) request_id: String,
    pub(super) call: ToolCall,
    pub(super) expires_at: u64,
    /// The request's whole stored data, for what its kind keeps besides.
    pub(super) data: &'a Map<String, Value>,
}

impl Unanswered<'_> {
    /// A text field of the stored request; empty when missing.
    pub(super) fn text(&self, key: &str) -> &str {
        text(self.data, key)
    }
}

fn text<'a>(data: &'a Map<String, Value>, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The requests of `kind` in `stored` that no stored answer names, oldest first. A record without its
/// id, call id or tool name is no request (nothing could run or be refused by it).
pub(super) fn unanswered<'a>(stored: &'a [StoredMessage], kind: &Kind) -> Vec<Unanswered<'a>> {
    let answered: HashSet<&str> = stored
        .iter()
        .filter(|m| m.kind == kind.response)
        .flat_map(|m| m.items().iter().filter_map(|c| c.data.as_ref()))
        .filter_map(|data| data.get(kind.names)?.as_str())
        .collect();
    let mut out = Vec::new();
    for message in stored.iter().filter(|m| m.kind == kind.request) {
        for data in message.items().iter().filter_map(|c| c.data.as_ref()) {
            let (id, call_id, name) = (text(data, "id"), text(data, "call_id"), text(data, "name"));
            if id.is_empty() || call_id.is_empty() || name.is_empty() || answered.contains(id) {
                continue;
            }
            out.push(Unanswered {
                request_id: id.to_owned(),
                call: ToolCall::new(call_id, name, text(data, "arguments").to_owned()),
                expires_at: text(data, "expires_at").parse().unwrap_or(0),
                data,
            });
        }
    }
    out
}

/// A request still waiting, as its kind keeps it.
pub(super) trait Waiting {
    fn request_id(&self) -> &str;
    fn expires_at(&self) -> u64;
}

/// Checks an invocation's answers, given as the request ids they name, against the `waiting` requests
/// at `now` (unix seconds): each must name a waiting request, at most once, before it expires. The
/// request each answer names, in the answers' order.
pub(super) fn check_answers<'w, 'n, W: Waiting>(
    kind: &Kind,
    named: impl IntoIterator<Item = &'n str>,
    waiting: &'w [W],
    now: u64,
) -> Result<Vec<&'w W>, Failure> {
    let (mut seen, mut found) = (HashSet::new(), Vec::new());
    for id in named {
        if !seen.insert(id) {
            return Err(kind.invalid(format!("the {} {} is answered twice", kind.noun, shown(id))));
        }
        let Some(request) = waiting.iter().find(|w| w.request_id() == id) else {
            return Err(kind.invalid(format!(
                "no {} {} waits in this session (unknown, answered already, or asked of another user)",
                kind.noun,
                shown(id)
            )));
        };
        if request.expires_at() <= now {
            return Err(kind.invalid(format!(
                "the {} {} expired; ask again and answer within TOOL_APPROVAL_TTL_SECS",
                kind.noun,
                shown(id)
            )));
        }
        found.push(request);
    }
    Ok(found)
}

/// The output of a call that was not made, telling the model why (`told`): stored like any tool output.
pub(super) fn not_made(call: &ToolCall, told: &str) -> Record {
    let fields = [("call_id", call.id.as_str()), ("name", call.function.name.as_str()), ("output", told)];
    Record::own("plugin_call_output", "system", &fields)
}

/// An id as an error message may repeat it: quoted when it could be one of ours, else not at all.
pub(super) fn shown(id: &str) -> String {
    match id.chars().count() <= MAX_ECHOED_ID && id.chars().all(|c| c.is_ascii_graphic()) {
        true => format!("{id:?}"),
        false => "(an id this function did not make)".to_owned(),
    }
}
