//! The live stream against the AgentScope runtime protocol: the spec's event sequence, sequence numbers,
//! and for every object type the seed's key list in its order (read from the raw text: `serde_json::Value`
//! sorts keys).

mod common;

use std::collections::BTreeMap;

use common::json_order::key_lists_by_class;
use common::{Function, user_request};
use serde_json::{Value, json};

const REFERENCE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference/seed-process-tool-call.normalized.jsonl");

type Step = (String, Option<String>, String);

/// `(object, type, status)` per event, with each run of identical steps (the streamed deltas) kept once.
fn pattern(events: &[Value]) -> Vec<Step> {
    let mut steps: Vec<Step> = events
        .iter()
        .map(|e| {
            (
                e["object"].as_str().unwrap().to_owned(),
                e["type"].as_str().map(str::to_owned),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    steps.dedup();
    steps
}

fn step(object: &str, kind: Option<&str>, status: &str) -> Step {
    (object.to_owned(), kind.map(str::to_owned), status.to_owned())
}

/// One model step's messages in the spec's order: `message{kind}` opened, its content streamed and
/// completed, the message completed.
fn block(kind: &str, content: &str) -> Vec<Step> {
    vec![
        step("message", Some(kind), "in_progress"),
        step("content", Some(content), "in_progress"),
        step("content", Some(content), "completed"),
        step("message", Some(kind), "completed"),
    ]
}

fn expected(thinking: bool) -> Vec<Step> {
    let mut steps = vec![step("response", None, "created"), step("response", None, "in_progress")];
    if thinking {
        steps.extend(block("reasoning", "text"));
    }
    steps.extend(block("plugin_call", "data"));
    steps.push(step("message", Some("plugin_call_output"), "completed"));
    if thinking {
        steps.extend(block("reasoning", "text"));
    }
    steps.extend(block("message", "text"));
    steps.push(step("response", None, "completed"));
    steps
}

async fn tool_turn(f: &Function) -> (String, Vec<Value>) {
    let answer = f.post_process(&[], &user_request("Tell me the time in UTC")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let events = answer.events();
    (answer.text, events)
}

/// Checks what the sequence alone cannot show: numbering, ids, content ownership, the aggregate output.
fn check_lifecycle(events: &[Value]) {
    let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let response_id = events[0]["id"].as_str().unwrap();
    assert!(response_id.starts_with("response_"), "{response_id}");
    let mut open: Option<&Value> = None;
    let mut completed_messages = Vec::new();
    for e in events {
        match (e["object"].as_str().unwrap(), e["status"].as_str().unwrap()) {
            ("response", _) => assert_eq!(e["id"], response_id),
            ("message", "in_progress") => {
                assert!(open.is_none(), "a message opened inside another: {e}");
                assert!(e["id"].as_str().unwrap().starts_with("msg_"), "{e}");
                open = Some(e);
            }
            ("message", "completed") => {
                if let Some(opened) = open.take() {
                    assert_eq!(opened["id"], e["id"]);
                } else {
                    assert_eq!(e["type"], "plugin_call_output", "only tool results complete unopened: {e}");
                }
                completed_messages.push(e.clone());
            }
            ("content", status) => {
                let owner = open.unwrap_or_else(|| panic!("content outside a message: {e}"));
                assert_eq!(e["msg_id"], owner["id"]);
                assert_eq!(e["index"], 0);
                assert_eq!(e["delta"], json!(status == "in_progress"), "{e}");
            }
            other => panic!("unexpected {other:?}: {e}"),
        }
    }
    // Each completed message carries its completed content in full.
    for (i, e) in events.iter().enumerate() {
        if e["object"] == "message" && e["status"] == "completed" && e["type"] != "plugin_call_output" {
            assert_eq!(e["content"], json!([events[i - 1]]), "message {i} lacks its completed content");
        }
    }
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["output"], Value::Array(completed_messages), "output = every completed message in order");
    assert!(last["completed_at"].as_u64().unwrap() >= last["created_at"].as_u64().unwrap());
}

#[tokio::test]
async fn tool_turn_follows_the_spec_event_sequence() {
    let f = Function::start(&[]).await;
    let (_, events) = tool_turn(&f).await;
    assert_eq!(pattern(&events), expected(false));
    check_lifecycle(&events);
    let deltas = events.iter().filter(|e| e["object"] == "content" && e["status"] == "in_progress");
    assert!(deltas.count() > 2, "arguments and answer arrive in several deltas");
}

#[tokio::test]
async fn thinking_puts_a_reasoning_message_first_in_every_step() {
    let f = Function::start(&[("DASHSCOPE_ENABLE_THINKING", "true")]).await;
    let (_, events) = tool_turn(&f).await;
    assert_eq!(pattern(&events), expected(true));
    check_lifecycle(&events);
    assert_eq!(events[2]["type"], "reasoning");
    assert_eq!(events[2]["role"], "assistant");
    assert_eq!(f.stack.dashscope.requests()[0].body["enable_thinking"], true);
}

#[tokio::test]
async fn every_object_type_has_the_seed_keys_in_order() {
    let reference = std::fs::read_to_string(REFERENCE).unwrap();
    let seed = key_lists_by_class(reference.lines().filter(|l| !l.trim().is_empty()));
    for class in ["response", "message", "content/text", "content/data", "data/call", "data/output"] {
        assert!(seed.contains_key(class), "the reference lacks {class}");
    }
    let f = Function::start(&[("DASHSCOPE_ENABLE_THINKING", "true")]).await;
    let (text, _) = tool_turn(&f).await;
    let frames: Vec<&str> = text.split("\n\n").filter_map(|frame| frame.strip_prefix("data: ")).collect();
    let mut ours: BTreeMap<String, Vec<String>> = key_lists_by_class(frames.iter().copied());
    // The seed never reports usage; the spec fixes its keys.
    assert_eq!(ours.remove("usage").unwrap(), ["prompt_tokens", "completion_tokens", "total_tokens"]);
    assert_eq!(ours, seed);

    // The non-streaming body is the same final object, keys in the same order.
    let mut request = user_request("Tell me the time in UTC");
    request["stream"] = json!(false);
    let single = f.post_process(&[], &request).await;
    assert_eq!(single.status, 200, "{}", single.text);
    let mut ours = key_lists_by_class(std::iter::once(single.text.as_str()));
    ours.remove("usage");
    assert_eq!(ours, seed, "stream:false body");
}
