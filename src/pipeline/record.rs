//! A turn's events → the messages a session stores, as the runtime's ReActAgent stores them
//! (`../shared/spec/sessions.md` §1): per model step its reasoning, its text and one `plugin_call` per tool
//! call (all sharing the step's `original_id`), then one `plugin_call_output` with **role `system`** per
//! result. Only completed pieces are recorded: a delta becomes a message once its step is over.

use serde_json::{Map, Value};

use crate::agent::TurnEvent;
use crate::llm::ChatMessage;
use crate::sessions::message::{Part, StoredMessage, new_message_id};

pub(crate) struct Recorder {
    agent_name: String,
    messages: Vec<StoredMessage>,
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
                let data = data([("call_id", call_id), ("name", name), ("arguments", arguments)]);
                self.push("plugin_call", "assistant", Part::Data(data), None);
            }
            TurnEvent::ToolResult { call_id, name, output } => {
                self.close_texts();
                // The MCP content blocks as a JSON string, as the runtime keeps a tool_result's output.
                let output = serde_json::to_string(&output.content).unwrap_or_else(|_| output.text.clone());
                let data = data([("call_id", call_id), ("name", name), ("output", &output)]);
                let id = new_message_id();
                self.push("plugin_call_output", "system", Part::Data(data), Some((id, "system")));
                // The next model step is a new agent-level message.
                self.step = new_message_id();
            }
            TurnEvent::Finished(_) => self.close_texts(),
        }
    }

    /// Everything recorded so far, oldest first; the recorder is left empty.
    pub(crate) fn finish(&mut self) -> Vec<StoredMessage> {
        self.close_texts();
        std::mem::take(&mut self.messages)
    }

    fn close_texts(&mut self) {
        if !self.reasoning.is_empty() {
            let reasoning = std::mem::take(&mut self.reasoning);
            self.push("reasoning", "assistant", Part::Text(reasoning), None);
        }
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.push("message", "assistant", Part::Text(text), None);
        }
    }

    /// `own`: a piece that is an agent-level message of its own (a tool result), with its name.
    fn push(&mut self, kind: &str, role: &str, part: Part, own: Option<(String, &str)>) {
        let (original_id, original_name) = match own {
            Some((id, name)) => (id, name.to_owned()),
            None => (self.step.clone(), self.agent_name.clone()),
        };
        let message = StoredMessage::completed(new_message_id(), kind, role, vec![part], &original_id, &original_name);
        self.messages.push(message);
    }
}

/// Stored messages for model messages that came without ids (a face that keeps none): fresh ids, so
/// nothing can be de-duplicated, but the conversation is kept.
pub(crate) fn from_chat(messages: &[ChatMessage]) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    for message in messages {
        let id = new_message_id();
        let text = |role: &str, name: &str, text: &str| {
            StoredMessage::completed(id.clone(), "message", role, vec![Part::Text(text.to_owned())], &id, name)
        };
        match message {
            ChatMessage::System { content } => out.push(text("system", "system", content)),
            ChatMessage::User { content } => out.push(text("user", "user", content)),
            ChatMessage::Assistant { content, tool_calls } => {
                if let Some(content) = content.as_deref().filter(|c| !c.is_empty()) {
                    out.push(text("assistant", "assistant", content));
                }
                for call in tool_calls {
                    let data = data([
                        ("call_id", &call.id),
                        ("name", &call.function.name),
                        ("arguments", &call.function.arguments),
                    ]);
                    let call_id = new_message_id();
                    out.push(StoredMessage::completed(
                        call_id,
                        "plugin_call",
                        "assistant",
                        vec![Part::Data(data)],
                        &id,
                        "assistant",
                    ));
                }
            }
            ChatMessage::Tool { tool_call_id, content } => {
                let data = data([("call_id", tool_call_id), ("output", content)]);
                out.push(StoredMessage::completed(
                    id.clone(),
                    "plugin_call_output",
                    "system",
                    vec![Part::Data(data)],
                    &id,
                    "system",
                ));
            }
        }
    }
    out
}

fn data<const N: usize>(pairs: [(&str, &String); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TurnEnd;
    use crate::mcp::ToolOutput;
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
        let messages = recorder.finish();
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
