//! `trigger::parse_event` / `request_from_event` on arbitrary bytes, damaged and mutated real trigger
//! payloads, and envelopes carrying hostile payloads.

use std::sync::OnceLock;

use base64::Engine as _;
use fc_identity_agent::protocol::RequestError;
use fc_identity_agent::protocol::agentscope::ContentItem;
use fc_identity_agent::protocol::triggers::{TriggerKind, parse_event, request_from_event};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::arb;
use super::request::{check_conversation, check_rejection, request_like};

const EVENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fc3/events");

fn real_events() -> &'static [Vec<u8>] {
    static EVENTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut paths: Vec<_> = std::fs::read_dir(EVENTS_DIR)
            .expect("fc3 event samples")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no samples in {EVENTS_DIR}");
        paths.iter().map(|p| std::fs::read(p).expect("sample readable")).collect()
    })
}

fn real_event() -> impl Strategy<Value = Vec<u8>> {
    (0..real_events().len()).prop_map(|i| real_events()[i].clone())
}

/// A request, or an error only where the body is an invalid `AgentRequest`; an envelope's request is one
/// user message with visible text.
fn check_event(body: &[u8], instruction: &str) -> Result<(), TestCaseError> {
    let plain = request_from_event(body, instruction);
    match parse_event(body, instruction) {
        Err(err) => {
            prop_assert_eq!(plain, Err(err.clone()));
            check_rejection(&err)?;
            // Only a body that parsed as a request-like object can fail, so never on bytes or syntax.
            prop_assert!(
                matches!(err, RequestError::Field { .. } | RequestError::TooDeep { .. }),
                "an error for a body that is no AgentRequest: {err}"
            );
        }
        Ok(event) => {
            prop_assert_eq!(plain.as_ref(), Ok(&event.request));
            let req = event.request;
            prop_assert!(!req.input.is_empty());
            check_conversation(&req.to_chat_messages()).map_err(TestCaseError::fail)?;
            if event.kind != TriggerKind::AgentRequest && req.input.len() == 1 {
                // An envelope described as text, or an embedded request (whose input may be anything valid).
                if let [ContentItem::Text(text)] = req.input[0].content.as_slice() {
                    prop_assert!(!text.trim().is_empty(), "blank prompt for a {:?} event", event.kind);
                }
            }
        }
    }
    Ok(())
}

fn texty_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(&b"{}[],:\" \n\tabcinput0123456789\\u-.eE\xff\xc3"[..]), 0..128)
}

/// Envelopes whose payload is hostile: an embedded request (valid or not), text, base64 of anything.
fn envelope() -> impl Strategy<Value = Value> {
    let payload = prop_oneof![
        request_like().prop_map(|r| r.to_string()),
        arb::any_text(16),
        arb::json().prop_map(|v| v.to_string()),
    ];
    (payload, prop::collection::vec(any::<u8>(), 0..64), 0..5u8).prop_map(|(payload, raw, kind)| match kind {
        0 => json!({"triggerTime":"2024-01-01T00:00:00Z","triggerName":"t","payload":payload}),
        1 => json!({"TopicOwner":"1","Message":payload,"Subscriber":"1"}),
        2 => json!({"body":payload,"attrs":{}}),
        3 => json!({"rawPath":"/","requestContext":{"http":{"method":"POST"}},"isBase64Encoded":true,
                    "body": base64::engine::general_purpose::STANDARD.encode(&raw)}),
        _ => json!({"specversion":"1.0","type":"t","source":"s","data":payload}),
    })
}

const CASES: u32 = 256;

#[test]
fn arbitrary_bytes_become_a_request() {
    arb::check(
        CASES,
        || (prop::collection::vec(any::<u8>(), 0..256), arb::any_text(8)),
        |(body, instruction)| check_event(&body, &instruction),
    );
}

#[test]
fn json_looking_bytes_become_a_request() {
    arb::check(CASES, texty_bytes, |body| check_event(&body, "Handle this."));
}

#[test]
fn damaged_real_events_become_a_request() {
    arb::check(
        CASES,
        || (real_event(), arb::byte_edits(6)),
        |(mut body, edits)| {
            arb::damage(&mut body, &edits);
            check_event(&body, "Handle this event.")
        },
    );
}

#[test]
fn mutated_real_events_become_a_request() {
    arb::check(
        CASES,
        || (real_event(), arb::mutations(5)),
        |(body, edits)| {
            // Some samples carry trailing commas (the lenient parser reads them); strict JSON is needed here.
            let fixed = String::from_utf8_lossy(&body).replace(",\n}", "\n}").replace(",\n  }", "\n  }");
            let mut value: Value = serde_json::from_str(&fixed).unwrap_or(Value::Null);
            arb::mutate(&mut value, &edits);
            check_event(value.to_string().as_bytes(), "Handle this event.")
        },
    );
}

#[test]
fn envelopes_with_hostile_payloads_become_a_request() {
    arb::check(
        CASES,
        || (envelope(), arb::mutations(3)),
        |(mut value, edits)| {
            check_event(value.to_string().as_bytes(), "")?;
            arb::mutate(&mut value, &edits);
            check_event(value.to_string().as_bytes(), "")
        },
    );
}

#[test]
fn every_real_event_becomes_a_described_request() {
    for body in real_events() {
        let event = parse_event(body, "Handle this event.").expect("a real event");
        assert_ne!(event.kind, TriggerKind::Text, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn deep_or_huge_event_bodies_stay_on_the_heap() {
    const LEVELS: usize = 100_000;
    let deep = format!("{}{}", "[".repeat(LEVELS), "]".repeat(LEVELS));
    let deep_commas = format!("{}{}", "[1,".repeat(LEVELS), "]".repeat(LEVELS));
    let wide = json!({ "input": vec![json!({"role":"user","content":"x"}); 100_000] }).to_string();
    let timer = json!({"triggerTime":"t","triggerName":"n","payload": deep}).to_string();
    for body in [&deep, &deep_commas, &timer] {
        let event = parse_event(body.as_bytes(), "i").expect("text, not an error");
        assert_eq!(event.request.input.len(), 1);
    }
    let err = request_from_event(wide.as_bytes(), "i").unwrap_err();
    assert_eq!(err.to_string(), "input: more than 1000 messages");
}
