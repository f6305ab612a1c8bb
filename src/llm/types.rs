//! The model-facing conversation types, in DashScope's OpenAI-compatible wire shape.
//!
//! These are shared by `protocol` (prior turns → history), `agent` (the loop) and the chat client, so
//! they serialize exactly as the `messages` / `tools` fields of a chat-completions request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ChatMessage {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        /// `None` when the step only called tools.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

/// A complete tool call the model asked for (`arguments` is the JSON text the model produced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

fn function_type() -> String {
    "function".to_owned()
}

impl ToolCall {
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ToolCall {
            id: id.into(),
            kind: function_type(),
            function: FunctionCall { name: name.into(), arguments: arguments.into() },
        }
    }
}

/// A tool offered to the model: serializes as `{"type":"function","function":{name,description,parameters}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

impl Serialize for ToolSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Function<'a> {
            name: &'a str,
            description: &'a str,
            parameters: &'a Value,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            function: Function<'a>,
        }
        Wire {
            kind: "function",
            function: Function { name: &self.name, description: &self.description, parameters: &self.parameters },
        }
        .serialize(s)
    }
}

/// Token usage of one or more model calls (summed with `+=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
        self.total_tokens += rhs.total_tokens;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_serialize_in_openai_shape() {
        let msgs = vec![
            ChatMessage::System { content: "sys".into() },
            ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("call_1", "getutctime", "{}")] },
            ChatMessage::Tool { tool_call_id: "call_1".into(), content: "12:00".into() },
        ];
        assert_eq!(
            serde_json::to_value(&msgs).unwrap(),
            json!([
                {"role":"system","content":"sys"},
                {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"getutctime","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"12:00"}
            ])
        );
    }

    #[test]
    fn tool_spec_serializes_nested() {
        let spec = ToolSpec { name: "t".into(), description: "d".into(), parameters: json!({"type":"object"}) };
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"type":"function","function":{"name":"t","description":"d","parameters":{"type":"object"}}})
        );
    }
}
