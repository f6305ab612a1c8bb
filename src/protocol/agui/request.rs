//! `RunAgentInput`: `threadId` (the session), `runId`, `messages`, `forwardedProps.user_id`. The
//! conversation is carried by the client, so its messages become the turn's history; `state`, `context`
//! and client-side `tools` are not read (the tools are the MCP server's).

use serde_json::Value;

use crate::llm::{ChatMessage, FunctionCall, Sampling, ToolCall};
use crate::pipeline::{Ask, UserClaim};
use crate::protocol::RequestError;

/// Messages a run may carry; more is refused rather than read without bound.
const MAX_MESSAGES: usize = 1000;

/// A parsed run request.
#[derive(Debug, Clone)]
pub(crate) struct RunInput {
    pub(crate) thread_id: String,
    pub(crate) run_id: String,
    messages: Vec<ChatMessage>,
    /// `forwardedProps.user_id`, else `forwardedProps.userId` (what the AgentScope adapter reads).
    pub(crate) user_id: Option<String>,
}

impl RunInput {
    pub(crate) fn from_slice(body: &[u8]) -> Result<RunInput, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
        let field = |camel: &str, snake: &str| value.get(camel).or_else(|| value.get(snake));
        let id =
            |camel: &'static str, snake: &str| {
                field(camel, snake).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(
                    || RequestError::Field { field: camel.into(), reason: "required non-empty string".into() },
                )
            };
        let thread_id = id("threadId", "thread_id")?;
        let run_id = id("runId", "run_id")?;
        let raw = field("messages", "messages")
            .and_then(Value::as_array)
            .ok_or_else(|| RequestError::Field { field: "messages".into(), reason: "required array".into() })?;
        if raw.len() > MAX_MESSAGES {
            return Err(RequestError::Field { field: "messages".into(), reason: format!("at most {MAX_MESSAGES}") });
        }
        let mut messages = Vec::with_capacity(raw.len());
        for (i, message) in raw.iter().enumerate() {
            if let Some(message) = chat_message(message)
                .map_err(|reason| RequestError::Field { field: format!("messages[{i}]"), reason })?
            {
                messages.push(message);
            }
        }
        if !messages.iter().any(|m| matches!(m, ChatMessage::User { content } if !content.trim().is_empty())) {
            return Err(RequestError::Field { field: "messages".into(), reason: "no user message with text".into() });
        }
        let props = field("forwardedProps", "forwarded_props");
        let user = props.and_then(|p| p.get("user_id").or_else(|| p.get("userId"))).and_then(Value::as_str);
        Ok(RunInput { thread_id, run_id, messages, user_id: user.map(str::to_owned) })
    }

    pub(crate) fn to_ask(&self, user: UserClaim) -> Ask {
        Ask {
            messages: self.messages.clone(),
            model: None,
            sampling: Sampling::default(),
            user,
            // The session memory stores this face's input as the model messages it became.
            records: Vec::new(),
            session_id: Some(self.thread_id.clone()),
        }
    }
}

/// One AG-UI message as the model's; `None` for what the model does not read (reasoning, activity).
fn chat_message(message: &Value) -> Result<Option<ChatMessage>, String> {
    let role = message.get("role").and_then(Value::as_str).ok_or("role: required string")?;
    let content = message.get("content");
    let text = || content.and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Some(match role {
        "system" | "developer" => ChatMessage::System { content: text() },
        "user" => ChatMessage::User { content: user_text(content)? },
        "assistant" => {
            let calls = message.get("toolCalls").or_else(|| message.get("tool_calls"));
            let calls = calls.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            let tool_calls = calls.iter().map(tool_call).collect::<Result<Vec<_>, _>>()?;
            let content = content.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
            ChatMessage::Assistant { content, tool_calls }
        }
        "tool" => {
            let id = message.get("toolCallId").or_else(|| message.get("tool_call_id")).and_then(Value::as_str);
            let id = id.ok_or("toolCallId: required for a tool message")?;
            let content = match message.get("error").and_then(Value::as_str) {
                Some(error) => format!("error: {error}"),
                None => text(),
            };
            ChatMessage::Tool { tool_call_id: id.to_owned(), content }
        }
        "reasoning" | "activity" => return Ok(None),
        other => return Err(format!("role: unknown role {other:?}")),
    }))
}

/// A user message's text: a string, or its text parts joined (media parts are not read).
fn user_text(content: Option<&Value>) -> Result<String, String> {
    match content {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")),
        _ => Err("content: required string or parts".into()),
    }
}

fn tool_call(call: &Value) -> Result<ToolCall, String> {
    let id = call.get("id").and_then(Value::as_str).ok_or("toolCalls[].id: required")?;
    let function = call.get("function").ok_or("toolCalls[].function: required")?;
    let name = function.get("name").and_then(Value::as_str).ok_or("toolCalls[].function.name: required")?;
    let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or("{}");
    Ok(ToolCall {
        id: id.to_owned(),
        kind: "function".into(),
        function: FunctionCall { name: name.to_owned(), arguments: arguments.to_owned() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<RunInput, RequestError> {
        RunInput::from_slice(value.to_string().as_bytes())
    }

    #[test]
    fn a_run_is_its_thread_its_messages_and_its_user() {
        let run = parse(json!({"threadId":"t1","runId":"r1","messages":[
            {"id":"1","role":"user","content":"hi"},
            {"id":"2","role":"assistant","toolCalls":[{"id":"c1","type":"function","function":{"name":"time","arguments":"{}"}}]},
            {"id":"3","role":"tool","toolCallId":"c1","content":"noon"},
            {"id":"4","role":"reasoning","content":"hm"},
            {"id":"5","role":"user","content":[{"type":"text","text":"and now?"},{"type":"image","source":{}}]}],
            "forwardedProps":{"user_id":"u1"}}))
        .unwrap();
        let ask = run.to_ask(UserClaim::Agent);
        assert_eq!(
            (run.run_id.as_str(), ask.session_id.as_deref(), run.user_id.as_deref()),
            ("r1", Some("t1"), Some("u1"))
        );
        assert_eq!(ask.messages.len(), 4);
        assert_eq!(ask.messages[3], ChatMessage::User { content: "and now?".into() });
        assert!(
            matches!(&ask.messages[1], ChatMessage::Assistant { tool_calls, .. } if tool_calls[0].function.name == "time")
        );
    }

    #[test]
    fn bad_runs_name_the_field() {
        let missing = parse(json!({"runId":"r","messages":[]})).unwrap_err();
        assert_eq!(missing.to_string(), "threadId: required non-empty string");
        let no_user = parse(json!({"threadId":"t","runId":"r","messages":[{"id":"1","role":"system","content":"x"}]}));
        assert!(no_user.unwrap_err().to_string().contains("no user message"));
        let bad_role = parse(json!({"threadId":"t","runId":"r","messages":[{"id":"1","role":"robot","content":"x"}]}));
        assert_eq!(bad_role.unwrap_err().to_string(), "messages[0]: role: unknown role \"robot\"");
        assert!(matches!(RunInput::from_slice(b"{"), Err(RequestError::NotJson(_))));
    }
}
