//! The JSON-RPC envelope of `POST /a2a`, the protocol version the caller speaks (the method's style and
//! the `A2A-Version` header, as the spec says), and the params of each method we serve.

use http::HeaderMap;
use serde_json::Value;

use super::wire::{RpcError, Version};
use crate::llm::{ChatMessage, Sampling};
use crate::mcp::AnswerAction;
use crate::pipeline::{ApprovalAnswer, ApprovalInput, Ask, QuestionAnswer, ResponseThread, UserClaim};
use crate::protocol::{RequestError, reader};

/// Parts a message may carry; more is refused rather than read without bound.
const MAX_PARTS: usize = 256;

/// A method this endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Send,
    Stream,
    GetTask,
    CancelTask,
    /// 0.3 `tasks/resubscribe`, 1.0 `SubscribeToTask`: a recorded (background) task's stream again.
    Resubscribe,
}

/// One JSON-RPC request, its method resolved and its version known.
#[derive(Debug)]
pub(crate) struct RpcRequest {
    /// Echoed in every answer (`null` when the request had none).
    pub(crate) id: Value,
    pub(crate) version: Version,
    pub(crate) method: Method,
    pub(crate) params: Value,
}

impl RpcRequest {
    /// The envelope, or the JSON-RPC error that answers it (with the id, when one could be read).
    /// `stored`: the body is a background task's request read again at its delivery, its version checked
    /// against the caller's header when it was queued; the method's style alone says it now.
    pub(crate) fn parse(
        body: &[u8],
        headers: &HeaderMap,
        stored: bool,
    ) -> Result<RpcRequest, (Value, Version, RpcError)> {
        let header = headers.get("a2a-version").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
        // Until the method is known, answer in the version the header names (empty means 0.3).
        let guess = if header.starts_with('1') { Version::V10 } else { Version::V03 };
        // The one reader's bounds (UTF-8, JSON, nesting) hold here too; a body too deep is a valid JSON text
        // but not an acceptable request.
        let value = reader::json(body).map_err(|error| {
            let rpc = match error {
                RequestError::TooDeep { .. } => RpcError::invalid_request(error.to_string()),
                _ => RpcError::parse(error.to_string()),
            };
            (Value::Null, guess, rpc)
        })?;
        let Value::Object(mut envelope) = value else {
            return Err((Value::Null, guess, RpcError::invalid_request("body: must be a JSON-RPC request object")));
        };
        let id = envelope.remove("id").unwrap_or(Value::Null);
        if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
            return Err((Value::Null, guess, RpcError::invalid_request("id: must be a string, a number or null")));
        }
        if envelope.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err((id, guess, RpcError::invalid_request("jsonrpc: must be \"2.0\"")));
        }
        let Some(name) = envelope.get("method").and_then(Value::as_str) else {
            return Err((id, guess, RpcError::invalid_request("method: required string")));
        };
        let header = match stored {
            true if name.contains('/') => "",
            true => "1.0",
            false => header,
        };
        let (version, method) = match resolve(name, header) {
            Ok(resolved) => resolved,
            Err(error) => return Err((id, guess, error)),
        };
        let params = envelope.remove("params").unwrap_or(Value::Null);
        if !params.is_object() {
            return Err((id, version, RpcError::invalid_params("params: must be an object")));
        }
        Ok(RpcRequest { id, version, method, params })
    }
}

/// 0.3 methods are slash-style and come with no `A2A-Version` or `0.3`; 1.0 methods are PascalCase and
/// need a 1.x header (absent means 0.3, which has no such method: -32009, as the 1.x SDK answers).
fn resolve(name: &str, header: &str) -> Result<(Version, Method), RpcError> {
    let v03 = match name {
        "message/send" => Some(Method::Send),
        "message/stream" => Some(Method::Stream),
        "tasks/get" => Some(Method::GetTask),
        "tasks/cancel" => Some(Method::CancelTask),
        "tasks/resubscribe" => Some(Method::Resubscribe),
        _ => None,
    };
    let v10 = match name {
        "SendMessage" => Some(Method::Send),
        "SendStreamingMessage" => Some(Method::Stream),
        "GetTask" => Some(Method::GetTask),
        "CancelTask" => Some(Method::CancelTask),
        "SubscribeToTask" => Some(Method::Resubscribe),
        _ => None,
    };
    // `name` is one of the fixed names above by now: a message never repeats a method name it did not know.
    let unsupported = |version: &str| {
        RpcError::version_not_supported(format!("method: A2A-Version {version:?} has no method {name}"))
    };
    match (v03, v10) {
        (Some(method), _) if header.is_empty() || header.starts_with("0.3") => Ok((Version::V03, method)),
        (Some(_), _) => Err(unsupported(header)),
        (_, Some(method)) if header == "1" || header.starts_with("1.") => Ok((Version::V10, method)),
        (_, Some(_)) => Err(unsupported(if header.is_empty() { "0.3" } else { header })),
        (None, None) if is_known_unserved(name) => {
            Err(RpcError::unsupported_operation(format!("method: {name} is not supported by this agent")))
        }
        (None, None) => Err(RpcError::method_not_found()),
    }
}

/// Methods of either version this agent does not offer (no push notifications, no listing, no extended
/// card).
fn is_known_unserved(name: &str) -> bool {
    name.starts_with("tasks/pushNotificationConfig/")
        || name.contains("TaskPushNotificationConfig")
        || matches!(name, "ListTasks" | "agent/getAuthenticatedExtendedCard" | "GetExtendedAgentCard")
}

/// The params of `message/send` / `message/stream` (`SendMessage` / `SendStreamingMessage`).
#[derive(Debug, Clone)]
pub(crate) struct SendParams {
    /// The user's text: every text part, joined with newlines (file and data parts are not read).
    pub(crate) text: String,
    pub(crate) message_id: String,
    /// The caller's `contextId`, else a new one (the spec: a generated contextId must be returned).
    pub(crate) context_id: String,
    /// `message.metadata.user_id` (the same key in both versions).
    pub(crate) user_id: Option<String>,
    /// Data parts `{"approval_request_id", "approve", "reason"?}`: answers to the approval requests an
    /// `input-required` task asked (the message may then hold no text).
    pub(crate) answers: Vec<ApprovalAnswer>,
    /// Data parts `{"elicitation_request_id", "action", "content"?}`: answers to the tools' questions an
    /// `input-required` task asked.
    pub(crate) questions: Vec<QuestionAnswer>,
    /// The task the message continues (`taskId`), when it names one.
    pub(crate) task_id: Option<String>,
    /// The caller asked not to wait for the turn: 0.3 `configuration.blocking: false`, 1.0
    /// `configuration.returnImmediately: true` (a background task, answered `submitted` at once).
    pub(crate) non_blocking: bool,
}

impl SendParams {
    pub(crate) fn parse(version: Version, params: &Value) -> Result<SendParams, RpcError> {
        let message = params.get("message").filter(|m| m.is_object());
        let message = message.ok_or_else(|| RpcError::invalid_params("params.message: required object"))?;
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != version.user_role() {
            let expected = version.user_role();
            return Err(RpcError::invalid_params(format!("params.message.role: must be {expected:?}")));
        }
        let parts = message.get("parts").and_then(Value::as_array);
        let parts = parts.ok_or_else(|| RpcError::invalid_params("params.message.parts: required array"))?;
        if parts.len() > MAX_PARTS {
            return Err(RpcError::invalid_params(format!("params.message.parts: at most {MAX_PARTS} parts")));
        }
        let texts: Vec<&str> = parts.iter().filter_map(|part| text_of(version, part)).collect();
        let answers = parts
            .iter()
            .enumerate()
            .filter_map(|(i, part)| answer_of(part).map(|answer| answer.map_err(|reason| (i, reason))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|(i, reason)| RpcError::invalid_params(format!("params.message.parts[{i}].data.{reason}")))?;
        let questions = parts
            .iter()
            .enumerate()
            .filter_map(|(i, part)| question_answer_of(part).map(|answer| answer.map_err(|reason| (i, reason))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|(i, reason)| RpcError::invalid_params(format!("params.message.parts[{i}].data.{reason}")))?;
        if texts.is_empty() && answers.is_empty() && questions.is_empty() {
            return Err(RpcError::invalid_params(
                "params.message.parts: no text part (file and data parts are not read)",
            ));
        }
        let string = |key: &str| message.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let user_id = message.get("metadata").and_then(|m| m.get("user_id")).and_then(Value::as_str);
        let configuration = params.get("configuration");
        let non_blocking = match version {
            Version::V03 => configuration.and_then(|c| c.get("blocking")).and_then(Value::as_bool) == Some(false),
            Version::V10 => {
                configuration.and_then(|c| c.get("returnImmediately")).and_then(Value::as_bool) == Some(true)
            }
        };
        Ok(SendParams {
            text: texts.join("\n"),
            message_id: string("messageId").unwrap_or_else(new_id),
            context_id: string("contextId").unwrap_or_else(new_id),
            user_id: user_id.map(str::to_owned),
            answers,
            questions,
            task_id: string("taskId"),
            non_blocking,
        })
    }

    /// The pipeline's question: one user message, in this context's session.
    pub(crate) fn to_ask(&self, user: UserClaim) -> Ask {
        let messages = match self.text.is_empty() {
            true => Vec::new(),
            false => vec![ChatMessage::User { content: self.text.clone() }],
        };
        Ask {
            messages,
            model: None,
            sampling: Sampling::default(),
            user,
            // The session memory stores this face's input as the model messages it became.
            records: Vec::new(),
            session_id: Some(self.context_id.clone()),
            // A call that needs approval, or a tool's question, ends the task `input-required`; the answer
            // comes back as data parts.
            approval: ApprovalInput::asking(self.answers.clone(), self.questions.clone()),
            thread: ResponseThread::default(),
        }
    }
}

/// An approval answer in a data part (0.3 `{kind:"data", data}`, 1.0 `{data}`): `None` for any other
/// part; the field at fault when the data names a request but is not a valid answer.
fn answer_of(part: &Value) -> Option<Result<ApprovalAnswer, String>> {
    let data = part.get("data")?.as_object()?;
    let request_id = data.get("approval_request_id")?;
    let Some(request_id) = request_id.as_str().filter(|id| !id.is_empty()) else {
        return Some(Err("approval_request_id: expected the id of the request answered".into()));
    };
    let Some(approve) = data.get("approve").and_then(Value::as_bool) else {
        return Some(Err("approve: required: true or false".into()));
    };
    let reason = data.get("reason").and_then(Value::as_str).filter(|r| !r.is_empty()).map(str::to_owned);
    Some(Ok(ApprovalAnswer { request_id: request_id.to_owned(), approve, reason }))
}

/// An answer to a tool's question in a data part: `None` for any other part; the field at fault when the
/// data names a question but is not a valid answer.
fn question_answer_of(part: &Value) -> Option<Result<QuestionAnswer, String>> {
    let data = part.get("data")?.as_object()?;
    let request_id = data.get("elicitation_request_id")?;
    let Some(request_id) = request_id.as_str().filter(|id| !id.is_empty()) else {
        return Some(Err("elicitation_request_id: expected the id of the question answered".into()));
    };
    let Some(action) = data.get("action").and_then(Value::as_str).and_then(AnswerAction::parse) else {
        return Some(Err("action: required: accept, decline or cancel".into()));
    };
    let content = match data.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::Object(content)) => Some(Value::Object(content.clone())),
        Some(_) => return Some(Err("content: expected an object of the requested fields".into())),
    };
    Some(Ok(QuestionAnswer { request_id: request_id.to_owned(), action, content }))
}

/// A text part's text: 0.3 `{kind:"text", text}`, 1.0 `{text}`.
fn text_of(version: Version, part: &Value) -> Option<&str> {
    let text = part.get("text").and_then(Value::as_str)?;
    match version {
        Version::V03 => (part.get("kind").and_then(Value::as_str) == Some("text")).then_some(text),
        Version::V10 => Some(text),
    }
}

/// The params of `tasks/get` and `tasks/cancel` (`GetTask`, `CancelTask`): `{id}`.
#[derive(Debug, Clone)]
pub(crate) struct TaskIdParams {
    pub(crate) id: String,
}

impl TaskIdParams {
    pub(crate) fn parse(params: &Value) -> Result<TaskIdParams, RpcError> {
        match params.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
            Some(id) => Ok(TaskIdParams { id: id.to_owned() }),
            None => Err(RpcError::invalid_params("params.id: required task id")),
        }
    }
}

/// `body` (a `message/send` read as `send`) with the ids the read settled written in: a background task's
/// request is read again when FC delivers it, and a context or message id generated then would differ
/// from the one the caller was answered with. `None` when the body is not an object with a message.
pub(crate) fn pinned_body(body: &[u8], send: &SendParams) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let message = value.get_mut("params")?.get_mut("message")?.as_object_mut()?;
    message.insert("contextId".into(), Value::from(send.context_id.as_str()));
    message.insert("messageId".into(), Value::from(send.message_id.as_str()));
    serde_json::to_vec(&value).ok()
}

pub(crate) fn new_id() -> String {
    crate::ids::uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(version: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = version {
            h.insert("a2a-version", HeaderValue::from_static(v));
        }
        h
    }

    fn parse(body: Value, version: Option<&'static str>) -> Result<RpcRequest, (Value, Version, RpcError)> {
        RpcRequest::parse(body.to_string().as_bytes(), &headers(version), false)
    }

    #[test]
    fn the_method_style_and_the_header_tell_the_versions_apart() {
        let slash = parse(json!({"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}), None).unwrap();
        assert_eq!((slash.version, slash.method), (Version::V03, Method::Send));
        let pascal = parse(json!({"jsonrpc":"2.0","id":"a","method":"CancelTask","params":{}}), Some("1.0")).unwrap();
        assert_eq!((pascal.version, pascal.method, pascal.id), (Version::V10, Method::CancelTask, json!("a")));
        let (_, _, no_header) =
            parse(json!({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}), None).unwrap_err();
        assert_eq!(no_header.code, -32009);
        let (_, _, mixed) =
            parse(json!({"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{}}), Some("1.0")).unwrap_err();
        assert_eq!(mixed.code, -32009);
    }

    #[test]
    fn envelope_errors_have_the_spec_codes() {
        assert_eq!(RpcRequest::parse(b"{", &headers(None), false).unwrap_err().2.code, -32700);
        assert_eq!(parse(json!([1]), None).unwrap_err().2.code, -32600);
        assert_eq!(parse(json!({"jsonrpc":"1.0","id":1,"method":"message/send"}), None).unwrap_err().2.code, -32600);
        let (id, _, unknown) = parse(json!({"jsonrpc":"2.0","id":7,"method":"nope","params":{}}), None).unwrap_err();
        assert_eq!((id, unknown.code), (json!(7), -32601));
        let push = parse(json!({"jsonrpc":"2.0","id":7,"method":"tasks/pushNotificationConfig/set","params":{}}), None);
        assert_eq!(push.unwrap_err().2.code, -32004);
        let again = parse(json!({"jsonrpc":"2.0","id":7,"method":"SubscribeToTask","params":{}}), Some("1.0")).unwrap();
        assert_eq!((again.version, again.method), (Version::V10, Method::Resubscribe));
        let params = parse(json!({"jsonrpc":"2.0","id":7,"method":"tasks/get","params":[1]}), None);
        assert_eq!(params.unwrap_err().2.code, -32602);
    }

    #[test]
    fn a_message_is_its_text_parts_and_its_context() {
        let v03 = json!({"message":{"kind":"message","role":"user","messageId":"m1","contextId":"c1",
            "parts":[{"kind":"text","text":"hello"},{"kind":"data","data":{}},{"kind":"text","text":"there"}],
            "metadata":{"user_id":"u1"}}});
        let send = SendParams::parse(Version::V03, &v03).unwrap();
        assert_eq!(
            (send.text.as_str(), send.context_id.as_str(), send.user_id.as_deref()),
            ("hello\nthere", "c1", Some("u1"))
        );
        let v10 = json!({"message":{"role":"ROLE_USER","messageId":"m1","parts":[{"text":"hi"}]}});
        let send = SendParams::parse(Version::V10, &v10).unwrap();
        assert_eq!(send.text, "hi");
        assert!(!send.context_id.is_empty(), "a context is generated");
        assert_eq!(send.to_ask(UserClaim::Agent).session_id.as_deref(), Some(send.context_id.as_str()));
        let wrong_role = SendParams::parse(Version::V10, &json!({"message":{"role":"user","parts":[{"text":"hi"}]}}));
        assert_eq!(wrong_role.unwrap_err().code, -32602);
        assert!(!send.non_blocking, "blocking unless asked");
        let v10_later = json!({"message":{"role":"ROLE_USER","parts":[{"text":"hi"}]},
            "configuration":{"returnImmediately":true}});
        assert!(SendParams::parse(Version::V10, &v10_later).unwrap().non_blocking);
        let v03_later = json!({"message":{"kind":"message","role":"user","parts":[{"kind":"text","text":"hi"}]},
            "configuration":{"blocking":false}});
        assert!(SendParams::parse(Version::V03, &v03_later).unwrap().non_blocking);
        let no_text = SendParams::parse(Version::V03, &json!({"message":{"role":"user","parts":[{"kind":"file"}]}}));
        assert!(no_text.unwrap_err().message.contains("no text part"));
    }
}
