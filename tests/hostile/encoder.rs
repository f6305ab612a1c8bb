//! `ResponseBuilder` on arbitrary `TurnEvent` sequences: deltas of any text, tool calls with repeated,
//! empty and unknown ids, huge usage, `Finished` anywhere or never.

use std::collections::HashMap;

use fc_identity_agent::agent::{TurnEnd, TurnEvent};
use fc_identity_agent::failure::{Failure, FailureCode};
use fc_identity_agent::llm::Usage;
use fc_identity_agent::mcp::{Content, ToolOutput};
use fc_identity_agent::protocol::agentscope::{ResponseBuilder, Status, StreamObject};
use proptest::prelude::*;
use serde_json::Value;

use super::arb;

fn call_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&["c1", "c2", "c3"][..]).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => arb::any_text(6),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("getutctime".to_owned()), 1 => Just(String::new()), 1 => arb::any_text(6)]
}

fn usage() -> impl Strategy<Value = Usage> {
    let n = || prop_oneof![3 => 0..10_000u64, 1 => any::<u64>(), 1 => Just(u64::MAX)];
    (n(), n(), n()).prop_map(|(p, c, t)| Usage { prompt_tokens: p, completion_tokens: c, total_tokens: t })
}

fn turn_error() -> impl Strategy<Value = Failure> {
    (prop::sample::select(&[FailureCode::ModelError, FailureCode::MaxIterations][..]), arb::any_text(8))
        .prop_map(|(code, message)| Failure::new(code, message))
}

pub fn turn_end() -> impl Strategy<Value = TurnEnd> {
    prop_oneof![
        Just(TurnEnd::Completed),
        turn_error().prop_map(TurnEnd::Incomplete),
        turn_error().prop_map(TurnEnd::Failed),
    ]
}

pub fn agent_event() -> impl Strategy<Value = TurnEvent> {
    prop_oneof![
        3 => arb::any_text(8).prop_map(TurnEvent::ReasoningDelta),
        4 => arb::any_text(8).prop_map(TurnEvent::TextDelta),
        3 => (call_id(), name()).prop_map(|(call_id, name)| TurnEvent::ToolCallStarted { call_id, name }),
        3 => (call_id(), arb::any_text(6))
            .prop_map(|(call_id, delta)| TurnEvent::ToolCallArgumentsDelta { call_id, delta }),
        3 => (call_id(), name(), arb::any_text(6))
            .prop_map(|(call_id, name, arguments)| TurnEvent::ToolCallCompleted { call_id, name, arguments }),
        2 => (call_id(), name(), arb::any_text(6))
            .prop_map(|(call_id, name, text)| TurnEvent::ToolResult { call_id, name, output: ToolOutput {
                content: vec![Content::text(text.clone())],
                text,
                is_error: false,
            } }),
        2 => usage().prop_map(TurnEvent::Usage),
        1 => turn_end().prop_map(TurnEvent::Finished),
    ]
}

/// Events in any order; half the time a `Finished` is appended (it may also occur earlier, or never).
pub fn agent_events() -> impl Strategy<Value = Vec<TurnEvent>> {
    (prop::collection::vec(agent_event(), 0..40), prop::option::of(turn_end())).prop_map(|(mut events, end)| {
        events.extend(end.map(TurnEvent::Finished));
        events
    })
}

fn is_terminal(status: Status) -> bool {
    matches!(status, Status::Completed | Status::Failed | Status::Incomplete)
}

/// Checks one frame and returns its parsed JSON.
fn check_frame(event: &StreamObject, seq: u64) -> Result<Value, TestCaseError> {
    prop_assert_eq!(event.sequence_number(), Some(seq));
    let frame = event.sse_frame();
    let json = frame
        .strip_prefix("data: ")
        .and_then(|f| f.strip_suffix("\n\n"))
        .ok_or_else(|| TestCaseError::fail(format!("not an SSE frame: {frame:?}")))?;
    prop_assert!(!json.contains(['\n', '\r']), "a line break splits the frame: {frame:?}");
    let value: Value = serde_json::from_str(json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(value["sequence_number"].as_u64(), Some(seq));
    prop_assert_eq!(value["object"].as_str(), Some(event.object()));
    prop_assert_eq!(value["status"].as_str(), Some(event.status().as_str()));
    Ok(value)
}

/// Every message opened (`in_progress`) is completed exactly once, content only refers to an open
/// message, and the final response lists the completed messages in order.
fn check_lifecycle(events: &[StreamObject], finished: bool) -> Result<(), TestCaseError> {
    let mut open: HashMap<String, ()> = HashMap::new();
    let mut completed: Vec<String> = Vec::new();
    for event in events {
        match event {
            StreamObject::Message(m) if m.status == Status::InProgress => {
                prop_assert!(open.insert(m.id.clone(), ()).is_none(), "message {} opened twice", m.id);
            }
            StreamObject::Message(m) => {
                prop_assert_eq!(m.status, Status::Completed);
                prop_assert!(!completed.contains(&m.id), "message {} completed twice", m.id);
                open.remove(&m.id);
                completed.push(m.id.clone());
            }
            StreamObject::Content(c) => prop_assert!(open.contains_key(&c.msg_id), "content for closed {}", c.msg_id),
            StreamObject::Response(r) if is_terminal(r.status) => {
                prop_assert!(open.is_empty(), "final response leaves {:?} open", open.keys());
                let listed: Vec<String> = r.output.iter().flatten().map(|m| m.id.clone()).collect();
                prop_assert_eq!(&listed, &completed);
            }
            StreamObject::Response(_) => {}
        }
    }
    if finished {
        prop_assert!(open.is_empty());
    }
    Ok(())
}

fn check_sequence(input: &[TurnEvent]) -> Result<(), TestCaseError> {
    let mut builder = ResponseBuilder::new(Some("s".into()));
    let mut events = builder.start();
    let first_finish = input.iter().position(|e| matches!(e, TurnEvent::Finished(_)));
    for (i, agent_event) in input.iter().enumerate() {
        let out = builder.push(agent_event);
        if first_finish.is_some_and(|f| i > f) {
            prop_assert!(out.is_empty(), "events after the final response: {out:?}");
        }
        events.extend(out);
    }
    prop_assert!(events.len() >= 2);
    prop_assert!(matches!(&events[0], StreamObject::Response(r) if r.status == Status::Created));
    prop_assert!(matches!(&events[1], StreamObject::Response(r) if r.status == Status::InProgress));
    for (seq, event) in events.iter().enumerate() {
        check_frame(event, seq as u64)?;
    }
    let terminal: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, StreamObject::Response(r) if is_terminal(r.status)))
        .map(|(i, _)| i)
        .collect();
    check_lifecycle(&events, first_finish.is_some())?;
    let streamed_final = match first_finish {
        Some(f) => {
            prop_assert_eq!(&terminal, &vec![events.len() - 1], "one final response, last");
            prop_assert!(builder.is_finished());
            let StreamObject::Response(last) = &events[events.len() - 1] else { unreachable!() };
            let TurnEvent::Finished(end) = &input[f] else { unreachable!() };
            let expected = match end {
                TurnEnd::Completed => Status::Completed,
                TurnEnd::Incomplete(_) => Status::Incomplete,
                TurnEnd::Failed(_) => Status::Failed,
            };
            prop_assert_eq!(last.status, expected);
            prop_assert_eq!(last.error.is_some(), expected != Status::Completed);
            Some(last.clone())
        }
        None => {
            prop_assert!(terminal.is_empty(), "a final response without Finished");
            None
        }
    };
    // What a `stream:false` answer sends: the final object, equal to the stream's last event.
    let latest = builder.response().cloned().expect("a started builder has a response");
    match streamed_final {
        Some(last) => prop_assert_eq!(&latest, &last),
        None => prop_assert!(!is_terminal(latest.status), "terminal without Finished"),
    }
    Ok(())
}

#[test]
fn any_event_sequence_encodes_to_a_well_formed_stream() {
    arb::check(256, agent_events, |input| check_sequence(&input));
}

#[test]
fn usage_sums_saturate_instead_of_overflowing() {
    let huge = Usage { prompt_tokens: u64::MAX, completion_tokens: u64::MAX - 1, total_tokens: 1 };
    let input = [TurnEvent::Usage(huge), TurnEvent::Usage(huge), TurnEvent::Finished(TurnEnd::Completed)];
    check_sequence(&input).unwrap();
    let mut builder = ResponseBuilder::new(None);
    for e in &input {
        builder.push(e);
    }
    let usage = builder.response().and_then(|r| r.usage).unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (u64::MAX, u64::MAX, 2));
}
