//! A turn's events → the messages a session stores, as the runtime's ReActAgent stores them
//! (docs/sessions.md, "How the runtime remembers a turn"): per model step its reasoning, its text and one `plugin_call` per tool
//! call (all sharing the step's `original_id`), then one `plugin_call_output` with **role `system`** per
//! result. Only completed pieces are recorded: a delta becomes a message once its step is over. Each is
//! written once, as the JSON the store keeps ([`Record`]).

use crate::agent::TurnEvent;
use crate::llm::ChatMessage;
use crate::sessions::message::{Part, Record, new_message_id};

pub(crate) struct Recorder {
    agent_name: String,
    messages: Vec<Record>,
    /// The agent-level message (one model step) the pieces being recorded belong to.
    step: String,
    reasoning: String,
    text: String,
}

impl Recorder {
    pub(crate) fn new(agent_name: &str) -> Recorder {
        Recorder {
            agent_name: agent_name.to_owned(),
            messages: Vec::new(),
            step: new_message_id(),
            reasoning: String::new(),
            text: String::new(),
        }
    }

    pub(crate) fn observe(&mut self, event: &TurnEvent) {
        match event {
            TurnEvent::ReasoningDelta(delta) => self.reasoning.push_str(delta),
            TurnEvent::TextDelta(delta) => self.text.push_str(delta),
            TurnEvent::ToolCallStarted { .. } | TurnEvent::ToolCallArgumentsDelta { .. } | TurnEvent::Usage(_) => {}
            // The listing is not part of the conversation: the next turn lists the tools afresh.
            TurnEvent::ToolsListed { .. } => {}
            // A consent prompt is for the caller now, not part of the conversation.
            TurnEvent::AuthorizationRequired { .. } => {}
            TurnEvent::ToolCallCompleted { call_id, name, arguments } => {
                self.close_texts();
                let fields = [("arguments", arguments.as_str()), ("call_id", call_id), ("name", name)];
                let record = self.step_message("plugin_call", "assistant", Part::Fields(&fields));
                self.messages.push(record);
            }
            TurnEvent::ApprovalRequested { request_id, call_id, server, name, arguments, expires_at } => {
                self.close_texts();
                // The model's call (what an approval runs) and the request that waits for the user.
                let fields = [("arguments", arguments.as_str()), ("call_id", call_id), ("name", name)];
                let record = self.step_message("plugin_call", "assistant", Part::Fields(&fields));
                self.messages.push(record);
                let request = super::approvals::request_record(
                    request_id,
                    call_id,
                    server,
                    name,
                    arguments,
                    *expires_at,
                    &self.step,
                );
                self.messages.push(request);
            }
            TurnEvent::QuestionAsked(asked) => {
                self.close_texts();
                // The call itself was recorded when it completed; the question waits for the user beside it.
                self.messages.push(super::questions::record(asked, &self.step));
            }
            TurnEvent::ToolResult { call_id, name, output } => {
                self.close_texts();
                // The MCP content blocks as a JSON string, as the runtime keeps a tool_result's output.
                let output = serde_json::to_string(&output.content).unwrap_or_else(|_| output.text.clone());
                let fields = [("call_id", call_id.as_str()), ("name", name), ("output", &output)];
                // A tool result is an agent-level message of its own, named `system`.
                self.messages.push(data_message("plugin_call_output", "system", &fields, &new_message_id(), "system"));
                // The next model step is a new agent-level message.
                self.step = new_message_id();
            }
            TurnEvent::Finished(_) => self.close_texts(),
        }
    }

    /// Everything recorded so far, oldest first; the recorder is left empty.
    pub(crate) fn finish(&mut self) -> Vec<Record> {
        self.close_texts();
        std::mem::take(&mut self.messages)
    }

    fn close_texts(&mut self) {
        if !self.reasoning.is_empty() {
            let record = self.step_message("reasoning", "assistant", Part::Text(&self.reasoning));
            self.messages.push(record);
            self.reasoning.clear();
        }
        if !self.text.is_empty() {
            let record = self.step_message("message", "assistant", Part::Text(&self.text));
            self.messages.push(record);
            self.text.clear();
        }
    }

    /// A piece of the current model step: it belongs to the step's agent-level message.
    fn step_message(&self, kind: &str, role: &str, part: Part<'_>) -> Record {
        Record::completed(new_message_id(), kind, role, &[part], &self.step, &self.agent_name)
    }
}

/// Records for model messages that came without ids (a face that keeps none): fresh ids, so nothing can
/// be de-duplicated, but the conversation is kept.
pub(crate) fn from_chat(messages: &[ChatMessage]) -> Vec<Record> {
    let mut out = Vec::new();
    for message in messages {
        let id = new_message_id();
        let text = |role: &str, name: &str, text: &str| {
            Record::completed(id.clone(), "message", role, &[Part::Text(text)], &id, name)
        };
        match message {
            ChatMessage::System { content } => out.push(text("system", "system", content)),
            ChatMessage::User { content } => out.push(text("user", "user", content)),
            ChatMessage::Assistant { content, tool_calls } => {
                if let Some(content) = content.as_deref().filter(|c| !c.is_empty()) {
                    out.push(text("assistant", "assistant", content));
                }
                for call in tool_calls {
                    let fields = [
                        ("arguments", call.function.arguments.as_str()),
                        ("call_id", &call.id),
                        ("name", &call.function.name),
                    ];
                    out.push(data_message("plugin_call", "assistant", &fields, &id, "assistant"));
                }
            }
            ChatMessage::Tool { tool_call_id, content } => {
                let fields = [("call_id", tool_call_id.as_str()), ("output", content)];
                out.push(Record::own("plugin_call_output", "system", &fields));
            }
        }
    }
    out
}

/// A new message of one `data` item, part of the agent-level message `original_id`.
fn data_message(kind: &str, role: &str, fields: &[(&str, &str)], original_id: &str, original_name: &str) -> Record {
    Record::completed(new_message_id(), kind, role, &[Part::Fields(fields)], original_id, original_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TurnEnd;
    use crate::mcp::ToolOutput;
    use crate::sessions::StoredMessage;
    use crate::sessions::replay::to_chat;

    #[test]
    fn a_tool_turn_is_recorded_and_replays_without_its_reasoning() {
        let mut recorder = Recorder::new("Friday");
        let output = ToolOutput {
            text: "12:00".into(),
            content: vec![rmcp::model::ContentBlock::text("12:00")],
            is_error: false,
        };
        for event in [
            TurnEvent::ReasoningDelta("think".into()),
            TurnEvent::ToolCallStarted { call_id: "c1".into(), name: "clock".into() },
            TurnEvent::ToolCallCompleted { call_id: "c1".into(), name: "clock".into(), arguments: "{}".into() },
            TurnEvent::ToolResult { call_id: "c1".into(), name: "clock".into(), output },
            TurnEvent::TextDelta("It is ".into()),
            TurnEvent::TextDelta("12:00.".into()),
            TurnEvent::Finished(TurnEnd::Completed),
        ] {
            recorder.observe(&event);
        }
        let messages: Vec<StoredMessage> = recorder.finish().iter().map(|r| r.message().unwrap()).collect();
        let kinds: Vec<(&str, &str)> =
            messages.iter().map(|m| (m.kind.as_str(), m.role.as_deref().unwrap_or(""))).collect();
        assert_eq!(
            kinds,
            [
                ("reasoning", "assistant"),
                ("plugin_call", "assistant"),
                ("plugin_call_output", "system"),
                ("message", "assistant")
            ]
        );
        let original = |m: &StoredMessage| m.metadata.as_ref().unwrap()["original_id"].clone();
        assert_eq!(original(&messages[0]), original(&messages[1]), "one model step, one agent message");
        assert_ne!(original(&messages[1]), original(&messages[3]));
        let chat = to_chat(&messages);
        assert_eq!(chat.len(), 3, "{chat:?}");
        assert_eq!(chat[1], crate::llm::ChatMessage::Tool { tool_call_id: "c1".into(), content: "12:00".into() });
    }
}
