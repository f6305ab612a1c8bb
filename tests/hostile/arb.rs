//! Shared strategies: arbitrary JSON biased towards the keys and values our parsers look at, strings that
//! carry a sentinel, and structure-aware mutation of JSON trees.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

/// Starts every generated free-text string, so a test can tell whether an error message echoes input.
pub const MARK: char = '§';

/// Keys the request, history and trigger code read; random keys would almost never hit them.
const KEYS: &[&str] = &[
    "input",
    "role",
    "type",
    "content",
    "text",
    "data",
    "call_id",
    "name",
    "arguments",
    "output",
    "stream",
    "session_id",
    "user_id",
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "tools",
    "id",
    "image_url",
    "filename",
    "refusal",
    "events",
    "eventSource",
    "specversion",
    "source",
    "triggerTime",
    "triggerName",
    "payload",
    "TopicOwner",
    "Message",
    "body",
    "attrs",
    "rawPath",
    "requestContext",
    "isBase64Encoded",
    "jobName",
    "Records",
    "Version",
];

/// Values with meaning somewhere (roles, message and content types, call ids that collide).
const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "tool",
    "message",
    "function_call",
    "function_call_output",
    "plugin_call",
    "plugin_call_output",
    "reasoning",
    "text",
    "data",
    "image",
    "file",
    "audio",
    "refusal",
    "mcp_call",
    "c1",
    "c2",
    "c3",
    "",
    "1.0",
    "acs:oss",
    "cdn",
    "{}",
    "[DONE]",
];

/// Any characters, control characters, quotes and astral planes included.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect())
}

/// Free text that starts with [`MARK`].
pub fn marked_text() -> impl Strategy<Value = String> {
    any_text(10).prop_map(|s| format!("{MARK}{s}"))
}

pub fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => marked_text()]
}

pub fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(0.5), Just(1.0), Just(-1.0), Just(1e300), any::<f64>()]
            .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        word().prop_map(Value::String),
        marked_text().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, at most a few levels deep (depth limits have their own tests).
pub fn json() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One edit of a JSON tree, applied at the `at`-th node (pre-order, modulo the node count).
#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(Value),
    /// Removes one child (key or item) of a container; a no-op on scalars.
    RemoveChild(usize),
    /// Inserts into an object, or pushes onto an array.
    Insert(String, Value),
    /// Repeats an array item (collides call ids, doubles messages).
    DuplicateChild(usize),
    /// The same data with another JSON type (a string's text as a number, an object as a list …).
    Retype,
}

pub fn mutations(max: usize) -> impl Strategy<Value = Vec<(usize, Mutation)>> {
    let mutation = prop_oneof![
        3 => json().prop_map(Mutation::Replace),
        2 => any::<usize>().prop_map(Mutation::RemoveChild),
        2 => (key(), json()).prop_map(|(k, v)| Mutation::Insert(k, v)),
        1 => any::<usize>().prop_map(Mutation::DuplicateChild),
        2 => Just(Mutation::Retype),
    ];
    prop::collection::vec((any::<usize>(), mutation), 1..max)
}

pub fn mutate(value: &mut Value, edits: &[(usize, Mutation)]) {
    for (at, edit) in edits {
        let count = node_count(value);
        if let Some(node) = nth_node(value, at % count) {
            apply(node, edit);
        }
    }
}

fn node_count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(node_count).sum(),
        Value::Object(map) => map.values().map(node_count).sum(),
        _ => 0,
    }
}

fn nth_node(value: &mut Value, mut n: usize) -> Option<&mut Value> {
    if n == 0 {
        return Some(value);
    }
    n -= 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => return None,
    };
    for child in children {
        let size = node_count(child);
        if n < size {
            return nth_node(child, n);
        }
        n -= size;
    }
    None
}

fn apply(node: &mut Value, edit: &Mutation) {
    match (edit, &mut *node) {
        (Mutation::Replace(v), _) => *node = v.clone(),
        (Mutation::RemoveChild(i), Value::Array(items)) if !items.is_empty() => {
            let i = i % items.len();
            items.remove(i);
        }
        (Mutation::RemoveChild(i), Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(i % map.len()).cloned().unwrap_or_default();
            map.remove(&key);
        }
        (Mutation::Insert(k, v), Value::Object(map)) => {
            map.insert(k.clone(), v.clone());
        }
        (Mutation::Insert(_, v), Value::Array(items)) => items.push(v.clone()),
        (Mutation::DuplicateChild(i), Value::Array(items)) if !items.is_empty() => {
            let copy = items[i % items.len()].clone();
            items.push(copy);
        }
        (Mutation::Retype, _) => *node = retype(node),
        _ => {}
    }
}

fn retype(value: &Value) -> Value {
    match value {
        Value::Null => Value::Bool(false),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::Array(vec![Value::String(s.clone())]), Value::Number),
        Value::Array(items) => Value::Object(
            items.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect::<Map<String, Value>>(),
        ),
        Value::Object(map) => Value::Array(map.values().cloned().collect()),
    }
}

/// Byte-level damage: flips, insertions, deletions, truncation.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

pub fn byte_edits(max: usize) -> impl Strategy<Value = Vec<ByteEdit>> {
    let edit = prop_oneof![
        3 => (any::<usize>(), 1u8..).prop_map(|(at, x)| ByteEdit::Flip(at, x)),
        3 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        2 => (any::<usize>(), 1usize..16).prop_map(|(at, n)| ByteEdit::Delete(at, n)),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
    ];
    prop::collection::vec(edit, 1..max)
}

pub fn damage(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Flip(at, x) if len > 0 => bytes[at % len] ^= x,
            ByteEdit::Insert(at, b) => {
                let at = at % (len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Delete(at, n) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            ByteEdit::Truncate(at) => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
}

/// Runs a property for `cases` cases (or `PROPTEST_CASES`) on a thread with a large stack: generating
/// nested JSON through layers of strategy combinators is deep recursion in a debug build, more than the
/// 2 MiB of a test thread. The strategy is made on that thread (boxed strategies are not `Send`).
pub fn check<S: Strategy>(
    cases: u32,
    make: impl FnOnce() -> S + Send + 'static,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    let worker = std::thread::Builder::new().stack_size(64 << 20).spawn(move || {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        if let Err(failure) = runner.run(&make(), test) {
            panic!("{failure}");
        }
    });
    if let Err(panic) = worker.expect("spawn a property thread").join() {
        std::panic::resume_unwind(panic);
    }
}
