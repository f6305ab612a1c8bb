//! The model-facing conversation types, in DashScope's OpenAI-compatible wire shape.
//!
//! These are shared by `protocol` (prior turns → history), `agent` (the loop) and the chat client, so
//! they serialize exactly as the `messages` / `tools` fields of a chat-completions request.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A tool's JSON Schema for its arguments object, shared: the MCP session's listing and every model request
/// of the turn point at the one copy parsed from `tools/list`.
pub type Schema = Arc<Map<String, Value>>;

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
    pub parameters: Schema,
}

impl Serialize for ToolSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Function<'a> {
            name: &'a str,
            description: &'a str,
            parameters: &'a Map<String, Value>,
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

/// Saturating: the counts come from the upstream's JSON, and a hostile or broken one could send values
/// whose sum overflows `u64` (a panic in debug builds, a wrapped total in release).
impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(rhs.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(rhs.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(rhs.total_tokens);
    }
}

/// What a running model step reports, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A fragment of `reasoning_content` (thinking models); always before the answer.
    ReasoningDelta(String),
    /// A fragment of the answer text.
    TextDelta(String),
    /// The model began tool call `index`. Comes once per call, before any of its `ToolCallArguments`.
    /// `id` is the model's, or `call_<uuid>` if the model never sent one.
    ToolCallStarted { index: u32, id: String, name: String },
    /// A fragment of the JSON arguments of call `index`.
    ToolCallArguments { index: u32, fragment: String },
    /// The step finished; always the last event.
    Done(StepResult),
}

/// Everything one model step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub text: String,
    pub reasoning: String,
    /// In `index` order; `arguments` concatenated, `{}` when the model sent none.
    pub tool_calls: Vec<ToolCall>,
    /// `None` only if the stream said `[DONE]` without ever giving one.
    pub finish_reason: Option<FinishReason>,
    /// Present when the upstream sent its usage chunk (we always ask for it).
    pub usage: Option<Usage>,
    /// The completion's `id` (`chatcmpl-…`), when the stream named one.
    pub response_id: Option<String>,
    /// The model that answered, as the stream named it.
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// `max_tokens` was hit: the answer is cut.
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

impl FinishReason {
    /// The reason as the wire (and the GenAI conventions) spell it.
    pub(crate) fn as_wire(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(other) => other,
        }
    }

    pub(crate) fn from_wire(reason: &str) -> Self {
        match reason {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
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
        let parameters = Arc::new(Map::from_iter([("type".to_owned(), json!("object"))]));
        let spec = ToolSpec { name: "t".into(), description: "d".into(), parameters };
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            json!({"type":"function","function":{"name":"t","description":"d","parameters":{"type":"object"}}})
        );
    }
}
