//! `ResponseBuilder` on any sequence of `TurnEvent`s decoded from the input bytes.
//!
//! Each event is an opcode byte, then (where needed) a call-id byte (one of four ids, `""` included) and a
//! length-prefixed string. Checks: contiguous sequence numbers, every frame `data: <JSON>\n\n`, exactly
//! one terminal response once `Finished` arrives, and nothing after it.
#![no_main]

use fc_identity_agent::agent::{TurnEnd, TurnEvent};
use fc_identity_agent::failure::{Failure, FailureCode};
use fc_identity_agent::llm::Usage;
use fc_identity_agent::mcp::{Content, ToolOutput};
use fc_identity_agent::protocol::agentscope::{ResponseBuilder, Status, StreamObject};
use libfuzzer_sys::fuzz_target;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn text(&mut self) -> String {
        let len = usize::from(self.byte().unwrap_or(0) % 16).min(self.0.len());
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    fn id(&mut self) -> String {
        ["c1", "c2", "", "c\"\n3"][usize::from(self.byte().unwrap_or(0) % 4)].to_owned()
    }

    fn number(&mut self) -> u64 {
        match self.byte().unwrap_or(0) {
            255 => u64::MAX,
            b => u64::from(b),
        }
    }

    fn event(&mut self) -> Option<TurnEvent> {
        Some(match self.byte()? % 10 {
            0 => TurnEvent::ReasoningDelta(self.text()),
            1 => TurnEvent::TextDelta(self.text()),
            2 => TurnEvent::ToolCallStarted { call_id: self.id(), name: self.text() },
            3 => TurnEvent::ToolCallArgumentsDelta { call_id: self.id(), delta: self.text() },
            4 => TurnEvent::ToolCallCompleted { call_id: self.id(), name: self.text(), arguments: self.text() },
            5 => {
                let text = self.text();
                let output = ToolOutput { content: vec![Content::text(text.clone())], text, is_error: false };
                TurnEvent::ToolResult { call_id: self.id(), name: self.text(), output }
            }
            6 => TurnEvent::Usage(Usage {
                prompt_tokens: self.number(),
                completion_tokens: self.number(),
                total_tokens: self.number(),
            }),
            7 => TurnEvent::Finished(TurnEnd::Completed),
            8 => TurnEvent::Finished(TurnEnd::Failed(Failure::new(FailureCode::ModelError, self.text()))),
            _ => TurnEvent::Finished(TurnEnd::Incomplete(Failure::new(FailureCode::MaxIterations, self.text()))),
        })
    }
}

fn terminal(event: &StreamObject) -> bool {
    matches!(event, StreamObject::Response(r) if matches!(r.status, Status::Completed | Status::Failed | Status::Incomplete))
}

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader(data);
    let mut builder = ResponseBuilder::new(None);
    let mut events = builder.start();
    let mut finished = false;
    while let Some(agent_event) = reader.event() {
        let out = builder.push(&agent_event);
        if finished {
            assert!(out.is_empty(), "events after the final response");
        }
        finished |= matches!(agent_event, TurnEvent::Finished(_));
        events.extend(out);
    }
    for (seq, event) in events.iter().enumerate() {
        assert_eq!(event.sequence_number(), Some(seq as u64));
        let frame = event.sse_frame();
        let json = frame.strip_prefix("data: ").and_then(|f| f.strip_suffix("\n\n")).expect("an SSE frame");
        assert!(!json.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(value["sequence_number"].as_u64(), Some(seq as u64));
    }
    let terminals = events.iter().filter(|e| terminal(e)).count();
    assert_eq!(terminals, usize::from(finished));
    if finished {
        assert!(terminal(events.last().expect("events")));
    }
    let _ = builder.response().map(|r| r.to_json());
});
