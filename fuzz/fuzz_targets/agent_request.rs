//! `AgentRequest::from_slice` on any bytes: a clean rejection naming a field, or a request whose
//! conversation the model accepts.
#![no_main]

use fc_identity_agent::llm::ChatMessage;
use fc_identity_agent::protocol::RequestError;
use fc_identity_agent::protocol::agentscope::AgentRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match AgentRequest::from_slice(body) {
        Err(err) => {
            let text = err.to_string();
            let (field, reason) = text.split_once(": ").expect("`field: reason`");
            assert!(!field.is_empty() && !reason.trim().is_empty(), "{text}");
            if let RequestError::Field { field: f, .. } = &err {
                assert_eq!(f, field);
            }
        }
        Ok(req) => {
            assert!(!req.input.is_empty());
            let messages = req.to_chat_messages();
            check_conversation(&messages);
            serde_json::to_string(&messages).expect("messages serialize");
        }
    }
});

/// Every assistant message with tool calls is followed by exactly one tool message per call; no other
/// tool messages.
fn check_conversation(messages: &[ChatMessage]) {
    let mut i = 0;
    while i < messages.len() {
        match &messages[i] {
            ChatMessage::Tool { .. } => panic!("orphan tool message at {i}: {messages:?}"),
            ChatMessage::Assistant { tool_calls, .. } if !tool_calls.is_empty() => {
                let mut ids: Vec<&str> = tool_calls.iter().map(|c| c.id.as_str()).collect();
                let mut answered = Vec::new();
                let mut j = i + 1;
                while let Some(ChatMessage::Tool { tool_call_id, .. }) = messages.get(j) {
                    answered.push(tool_call_id.as_str());
                    j += 1;
                }
                ids.sort_unstable();
                answered.sort_unstable();
                assert_eq!(ids, answered, "calls of message {i} not answered one to one");
                i = j;
            }
            _ => i += 1,
        }
    }
}
