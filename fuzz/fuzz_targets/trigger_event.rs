//! `trigger::parse_event` on any bytes: a request with visible input, or an error only for a body that
//! is an invalid `AgentRequest`.
#![no_main]

use fc_identity_agent::protocol::RequestError;
use fc_identity_agent::protocol::agentscope::ContentItem;
use fc_identity_agent::protocol::triggers::{TriggerKind, parse_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match parse_event(body, "Handle this event.") {
        Err(err) => {
            // Only a body that parsed as a request-like object can fail, so never on bytes or syntax.
            assert!(matches!(err, RequestError::Field { .. } | RequestError::TooDeep { .. }), "{err}");
        }
        Ok(event) => {
            let req = event.request;
            assert!(!req.input.is_empty());
            if event.kind != TriggerKind::AgentRequest
                && let [msg] = req.input.as_slice()
                && let [ContentItem::Text(text)] = msg.content.as_slice()
            {
                assert!(!text.trim().is_empty(), "blank prompt for {:?}", event.kind);
            }
            let _ = req.to_chat_messages();
        }
    }
});
