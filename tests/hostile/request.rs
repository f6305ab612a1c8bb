//! `AgentRequest::from_slice` and `to_chat_messages` on arbitrary, request-shaped, mutated and oversized
//! bodies.

use fc_identity_agent::llm::ChatMessage;
use fc_identity_agent::protocol::RequestError;
use fc_identity_agent::protocol::agentscope::AgentRequest;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::arb::{self, MARK};

/// The fields a rejection may name first; anything else means the message is not about the request.
const FIELDS: &[&str] = &[
    "body",
    "input",
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
];

/// A rejection is a 400 message: non-empty, about a known field (or the body as a whole), never quoting
/// the body.
pub fn check_rejection(err: &RequestError) -> Result<(), TestCaseError> {
    let text = err.to_string();
    prop_assert!(!text.contains(MARK), "error quotes the body: {text}");
    let (field, reason) = text.split_once(": ").ok_or_else(|| TestCaseError::fail(format!("no cause: {text}")))?;
    prop_assert!(!reason.trim().is_empty(), "no reason: {text}");
    let head = field.split(['[', '.']).next().unwrap_or("");
    prop_assert!(FIELDS.contains(&head), "names no known field: {text}");
    if let RequestError::Field { field: f, reason: r } = err {
        prop_assert_eq!(f.as_str(), field);
        prop_assert_eq!(r.as_str(), reason);
    }
    Ok(())
}

/// The model refuses a conversation unless every assistant message with `tool_calls` is followed directly
/// by exactly one tool message per call, and no tool message appears anywhere else.
pub fn check_conversation(messages: &[ChatMessage]) -> Result<(), String> {
    let mut i = 0;
    while i < messages.len() {
        match &messages[i] {
            ChatMessage::Tool { tool_call_id, .. } => {
                return Err(format!("tool message {i} ({tool_call_id:?}) follows no assistant call"));
            }
            ChatMessage::Assistant { tool_calls, .. } if !tool_calls.is_empty() => {
                let mut ids: Vec<&str> = tool_calls.iter().map(|c| c.id.as_str()).collect();
                if tool_calls.iter().any(|c| c.id.is_empty() || c.function.name.is_empty()) {
                    return Err(format!("assistant {i} has a call without id or name"));
                }
                let mut answered = Vec::new();
                let mut j = i + 1;
                while let Some(ChatMessage::Tool { tool_call_id, .. }) = messages.get(j) {
                    if !ids.contains(&tool_call_id.as_str()) {
                        return Err(format!("tool message {j} answers {tool_call_id:?}, not a call of {i}"));
                    }
                    answered.push(tool_call_id.as_str());
                    j += 1;
                }
                ids.sort_unstable();
                answered.sort_unstable();
                if ids != answered {
                    return Err(format!("calls {ids:?} of assistant {i} answered by {answered:?}"));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a body and checks every invariant the app relies on, whatever the outcome.
fn check_body(body: &[u8]) -> Result<Option<AgentRequest>, TestCaseError> {
    match AgentRequest::from_slice(body) {
        Err(err) => check_rejection(&err).map(|_| None),
        Ok(req) => {
            prop_assert!(!req.input.is_empty());
            let sent_stream = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("stream").cloned());
            match sent_stream {
                None | Some(Value::Null) => prop_assert!(req.stream, "stream must default to true"),
                Some(Value::Bool(b)) => prop_assert_eq!(req.stream, b),
                Some(other) => prop_assert!(false, "accepted stream = {other}"),
            }
            let messages = req.to_chat_messages();
            prop_assert!(!messages.is_empty(), "accepted a request the model would get nothing of");
            check_conversation(&messages).map_err(TestCaseError::fail)?;
            prop_assert!(serde_json::to_string(&messages).is_ok());
            Ok(Some(req))
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Request-shaped JSON: the right keys with right-ish values, so most cases get past the first check.

fn maybe(key: &str, value: Option<Value>) -> Option<(String, Value)> {
    value.map(|v| (key.to_owned(), v))
}

fn object(fields: impl IntoIterator<Item = Option<(String, Value)>>) -> Value {
    Value::Object(fields.into_iter().flatten().collect())
}

fn call_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(&["c1", "c2", "c3"][..]).prop_map(Value::from),
        1 => Just(Value::from("")),
        1 => arb::json_leaf(),
    ]
}

fn data_item() -> impl Strategy<Value = Value> {
    let args = prop_oneof![arb::any_text(6).prop_map(Value::from), arb::json()];
    (
        prop::option::of(call_id()),
        prop::option::of(prop_oneof![arb::word().prop_map(Value::from), arb::json_leaf()]),
        prop::option::of(args),
        prop::option::of(arb::json()),
    )
        .prop_map(|(id, name, args, output)| {
            json!({"type": "data", "data": object([
                maybe("call_id", id), maybe("name", name), maybe("arguments", args), maybe("output", output),
            ])})
        })
}

fn content_item() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => arb::any_text(8).prop_map(|t| json!({"type": "text", "text": t})),
        4 => data_item(),
        1 => arb::word().prop_map(|w| json!({"type": w, "image_url": "http://x/§", "filename": "f"})),
        1 => arb::json(),
    ]
}

fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![4 => arb::word().prop_map(Value::from), 1 => arb::json_leaf()];
    let kind = prop_oneof![
        4 => prop::sample::select(
            &["message", "function_call", "function_call_output", "plugin_call", "plugin_call_output"][..]
        )
        .prop_map(Value::from),
        1 => arb::word().prop_map(Value::from),
        1 => arb::json_leaf(),
    ];
    let content = prop_oneof![
        6 => prop::collection::vec(content_item(), 0..4).prop_map(Value::Array),
        1 => arb::any_text(6).prop_map(Value::from),
        1 => arb::json(),
    ];
    (prop::option::of(role), prop::option::of(kind), prop::option::of(content))
        .prop_map(|(r, k, c)| object([maybe("role", r), maybe("type", k), maybe("content", c)]))
}

pub fn request_like() -> impl Strategy<Value = Value> {
    let scalar = || prop::option::of(arb::json_leaf());
    (
        prop::collection::vec(message(), 0..10),
        prop::option::of(prop_oneof![any::<bool>().prop_map(Value::Bool), arb::json_leaf()]),
        (scalar(), scalar(), scalar(), scalar(), scalar()),
        prop::option::of(prop_oneof![arb::json(), prop::collection::vec(arb::json(), 0..3).prop_map(Value::Array)]),
    )
        .prop_map(|(input, stream, (session, temp, top_p, max_tokens, stop), tools)| {
            object([
                Some(("input".to_owned(), Value::Array(input))),
                maybe("stream", stream),
                maybe("session_id", session),
                maybe("temperature", temp),
                maybe("top_p", top_p),
                maybe("max_tokens", max_tokens),
                maybe("stop", stop),
                maybe("tools", tools),
            ])
        })
}

/// The seed's own tool-call turn as a client would send it back as history (process-protocol.md).
pub fn reference_request() -> Value {
    let call = |args: &str| json!({"type":"data","data":{"call_id":"call_1","name":"getutctime","arguments":args}});
    json!({
        "input": [
            {"role":"user","type":"message","content":[{"type":"text","text":"Tell me the time in UTC"}]},
            {"role":"assistant","type":"plugin_call","content":[call(""), call("{}")]},
            {"role":"tool","type":"plugin_call_output","content":[
                {"type":"data","data":{"call_id":"call_1","name":"getutctime","output":"[{\"type\":\"text\",\"text\":\"12:00\"}]"}}
            ]},
            {"role":"assistant","type":"message","content":[{"type":"text","text":"It is 12:00 UTC."}]},
            {"role":"user","type":"message","content":[{"type":"text","text":"And tomorrow?"}]}
        ],
        "session_id": "s-1", "stream": true, "temperature": 0.7, "stop": "END"
    })
}

fn valid_base() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(reference_request()),
        1 => Just(json!({"input":[{"role":"user","content":"hi"}]})),
        3 => request_like(),
    ]
}

const CASES: u32 = 256;

#[test]
fn arbitrary_bytes_are_rejected_or_accepted_cleanly() {
    arb::check(CASES, || prop::collection::vec(any::<u8>(), 0..256), |body| check_body(&body).map(drop));
}

#[test]
fn arbitrary_json_is_rejected_with_a_named_field() {
    arb::check(CASES, arb::json, |value| check_body(value.to_string().as_bytes()).map(drop));
}

#[test]
fn request_shaped_json_keeps_the_invariants() {
    arb::check(CASES, request_like, |value| check_body(value.to_string().as_bytes()).map(drop));
}

#[test]
fn mutated_requests_keep_the_invariants() {
    arb::check(
        CASES,
        || (valid_base(), arb::mutations(5)),
        |(mut value, edits)| {
            arb::mutate(&mut value, &edits);
            check_body(value.to_string().as_bytes()).map(drop)
        },
    );
}

#[test]
fn damaged_request_bytes_keep_the_invariants() {
    arb::check(
        CASES,
        || (valid_base(), arb::byte_edits(4)),
        |(value, edits)| {
            let mut body = value.to_string().into_bytes();
            arb::damage(&mut body, &edits);
            check_body(&body).map(drop)
        },
    );
}

// ------------------------------------------------------------------------------------------------
// Oversized and malformed bodies, as an HTTP client could send them.

fn rejection(body: &[u8]) -> String {
    let err = AgentRequest::from_slice(body).expect_err("must be rejected");
    check_rejection(&err).expect("a clean 400 message");
    err.to_string()
}

#[test]
fn invalid_utf8_is_rejected_naming_the_offset() {
    let mut body = br#"{"input":[{"content":""#.to_vec();
    let at = body.len();
    body.extend_from_slice(b"\xff\xfe\"}]}");
    let err = AgentRequest::from_slice(&body).unwrap_err();
    assert_eq!(err, RequestError::NotUtf8 { at });
    assert_eq!(err.to_string(), format!("body: not valid UTF-8 (at byte {at})"));
}

#[test]
fn a_hundred_thousand_levels_of_nesting_are_rejected_without_recursion() {
    const LEVELS: usize = 100_000;
    let arrays = format!("{}{}", "[".repeat(LEVELS), "]".repeat(LEVELS));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(LEVELS), "}".repeat(LEVELS));
    let inside_input = format!(r#"{{"input":[{{"role":"user","content":{arrays}}}]}}"#);
    for body in [arrays.as_str(), objects.as_str(), inside_input.as_str()] {
        let text = rejection(body.as_bytes());
        assert!(text.starts_with("body: not valid JSON") && text.contains("recursion limit"), "{text}");
    }
    // Unterminated: the parser must give up at its limit, not read to the end first.
    assert!(rejection("[".repeat(LEVELS).as_bytes()).contains("recursion limit"));
}

#[test]
fn nesting_past_our_own_limit_is_too_deep() {
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let body = format!(r#"{{"input":[{{"role":"user","content":"hi"}}],"tools":[{{"x":{deep}}}]}}"#);
    assert_eq!(rejection(body.as_bytes()), "body: nested deeper than 64 levels");
}

#[test]
fn a_hundred_thousand_input_items_are_refused_by_count() {
    let items = vec![json!({"role":"user","content":"x"}); 100_000];
    let body = json!({ "input": items }).to_string();
    assert_eq!(rejection(body.as_bytes()), "input: more than 1000 messages");
    let content = vec![json!({"type":"text","text":"x"}); 100_000];
    let body = json!({"input":[{"role":"user","content": content}]}).to_string();
    assert_eq!(rejection(body.as_bytes()), "input[0].content: more than 256 items");
}

#[test]
fn the_reference_conversation_maps_to_a_valid_conversation() {
    let req = AgentRequest::from_value(&reference_request()).unwrap();
    let messages = req.to_chat_messages();
    check_conversation(&messages).unwrap();
    assert_eq!(messages.len(), 5, "{messages:?}");
}

#[test]
fn a_conversation_the_model_could_not_read_is_refused() {
    for body in [
        r#"{"input":[{}]}"#,
        r#"{"input":[{"role":"user","content":[]}]}"#,
        r#"{"input":[{"role":"user","content":[{"type":"text","text":""}]}]}"#,
        r#"{"input":[{"type":"reasoning","content":[{"type":"text","text":"hm"}]}]}"#,
        r#"{"input":[{"role":"tool","content":"orphan"}]}"#,
        r#"{"input":[{"type":"function_call","content":[{"type":"data","data":{"call_id":"a","name":"f"}}]}]}"#,
        r#"{"input":[{"type":"mcp_list_tools","content":[]}]}"#,
    ] {
        let text = rejection(body.as_bytes());
        assert!(text.starts_with("input: holds no message the model can read"), "{body}: {text}");
    }
    let answered = r#"{"input":[{"type":"function_call","content":[{"type":"data","data":{"call_id":"a","name":"f"}}]},
        {"type":"function_call_output","content":[{"type":"data","data":{"call_id":"a","output":"1"}}]}]}"#;
    assert_eq!(AgentRequest::from_slice(answered.as_bytes()).unwrap().to_chat_messages().len(), 2);
}
