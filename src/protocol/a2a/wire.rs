//! A2A objects in each version's shapes: 0.3 objects carry `kind` and lowercase states; 1.0 is ProtoJSON
//! (enum names such as `TASK_STATE_COMPLETED`, `ROLE_AGENT`; stream results wrapped by member name).

use serde_json::{Map, Value, json};

/// The protocol line a caller speaks; every answer is in its shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V03,
    V10,
}

/// The task states this agent goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskState {
    Submitted,
    Working,
    /// Waiting for the user's OAuth2 consent (the status message has the link); back to working after.
    AuthRequired,
    /// The turn ended waiting for the user's approval of a tool call (the status message carries each
    /// request as a data part); the user's answer, a message in the same context, goes on.
    InputRequired,
    Completed,
    Failed,
    Canceled,
}

impl TaskState {
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Failed | TaskState::Canceled)
    }
}

impl Version {
    pub(crate) fn user_role(self) -> &'static str {
        match self {
            Version::V03 => "user",
            Version::V10 => "ROLE_USER",
        }
    }

    fn agent_role(self) -> &'static str {
        match self {
            Version::V03 => "agent",
            Version::V10 => "ROLE_AGENT",
        }
    }

    fn state(self, state: TaskState) -> &'static str {
        match (self, state) {
            (Version::V03, TaskState::Submitted) => "submitted",
            (Version::V03, TaskState::Working) => "working",
            (Version::V03, TaskState::AuthRequired) => "auth-required",
            (Version::V03, TaskState::InputRequired) => "input-required",
            (Version::V03, TaskState::Completed) => "completed",
            (Version::V03, TaskState::Failed) => "failed",
            (Version::V03, TaskState::Canceled) => "canceled",
            (Version::V10, TaskState::Submitted) => "TASK_STATE_SUBMITTED",
            (Version::V10, TaskState::Working) => "TASK_STATE_WORKING",
            (Version::V10, TaskState::AuthRequired) => "TASK_STATE_AUTH_REQUIRED",
            (Version::V10, TaskState::InputRequired) => "TASK_STATE_INPUT_REQUIRED",
            (Version::V10, TaskState::Completed) => "TASK_STATE_COMPLETED",
            (Version::V10, TaskState::Failed) => "TASK_STATE_FAILED",
            (Version::V10, TaskState::Canceled) => "TASK_STATE_CANCELED",
        }
    }

    /// 0.3 tags every object with its `kind`; 1.0 tells them apart by where they sit.
    fn tagged(self, kind: &str, mut object: Map<String, Value>) -> Value {
        if self == Version::V03 {
            object.insert("kind".into(), Value::from(kind));
        }
        Value::Object(object)
    }

    pub(crate) fn text_part(self, text: &str) -> Value {
        self.tagged("text", obj(json!({ "text": text })))
    }

    /// A structured part (0.3 `{"kind":"data","data":…}`, 1.0 `{"data":…}`).
    pub(crate) fn data_part(self, data: Value) -> Value {
        self.tagged("data", obj(json!({ "data": data })))
    }

    /// The agent's consent prompt: the text with the link, and a data part
    /// `{"type":"oauth2_authorization","provider","url"}` a client acts on.
    pub(crate) fn authorization_message(self, ids: &Ids<'_>, message_id: &str, provider: &str, url: &str) -> Value {
        let text = crate::agent::authorization_message(provider, url);
        let data = json!({ "type": "oauth2_authorization", "provider": provider, "url": url });
        let message = json!({
            "messageId": message_id, "role": self.agent_role(),
            "parts": [self.text_part(&text), self.data_part(data)],
            "contextId": ids.context_id, "taskId": ids.task_id,
        });
        self.tagged("message", obj(message))
    }

    /// What the agent needs from the user: a text naming the calls to approve and the tools' questions, and
    /// one data part per request — `{"type":"mcp_approval_request","id","name","arguments","server_label"}`
    /// or `{"type":"mcp_elicitation_request","id","message","mode","requested_schema"|"url",…}` — that the
    /// answer names by `id`.
    pub(crate) fn approval_message(self, ids: &Ids<'_>, message_id: &str, requests: &[Value]) -> Value {
        let is_question = |r: &&Value| r["type"] == "mcp_elicitation_request";
        let names: Vec<&str> = requests.iter().filter(|r| !is_question(r)).filter_map(|r| r["name"].as_str()).collect();
        let asked: Vec<String> = requests
            .iter()
            .filter(is_question)
            .map(|r| match r["url"].as_str() {
                Some(url) => format!("{} (open {url})", r["message"].as_str().unwrap_or_default()),
                None => r["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        let mut said = Vec::new();
        if !names.is_empty() {
            said.push(format!(
                "Approve or decline: {}. Answer with a data part {{\"approval_request_id\": <id>, \"approve\": \
                 true|false}} per request.",
                names.join(", ")
            ));
        }
        if !asked.is_empty() {
            said.push(format!(
                "A tool asks: {}. Answer with a data part {{\"elicitation_request_id\": <id>, \"action\": \
                 \"accept\"|\"decline\"|\"cancel\", \"content\": {{…}}}} per question.",
                asked.join("; ")
            ));
        }
        let text = said.join(" ");
        let mut parts = vec![self.text_part(&text)];
        parts.extend(requests.iter().map(|request| self.data_part(request.clone())));
        let message = json!({
            "messageId": message_id, "role": self.agent_role(), "parts": parts,
            "contextId": ids.context_id, "taskId": ids.task_id,
        });
        self.tagged("message", obj(message))
    }

    /// A message with one text part.
    pub(crate) fn message(self, ids: &Ids<'_>, message_id: &str, user: bool, text: &str) -> Value {
        let role = if user { self.user_role() } else { self.agent_role() };
        let message = json!({
            "messageId": message_id, "role": role, "parts": [self.text_part(text)],
            "contextId": ids.context_id, "taskId": ids.task_id,
        });
        self.tagged("message", obj(message))
    }

    pub(crate) fn status(self, state: TaskState, message: Option<Value>) -> Value {
        let mut status = obj(json!({ "state": self.state(state) }));
        if let Some(message) = message {
            status.insert("message".into(), message);
        }
        Value::Object(status)
    }

    pub(crate) fn task(self, ids: &Ids<'_>, status: Value, artifacts: Vec<Value>, history: Vec<Value>) -> Value {
        let mut task = obj(json!({ "id": ids.task_id, "contextId": ids.context_id, "status": status }));
        if !artifacts.is_empty() {
            task.insert("artifacts".into(), Value::Array(artifacts));
        }
        if !history.is_empty() {
            task.insert("history".into(), Value::Array(history));
        }
        self.tagged("task", task)
    }

    pub(crate) fn artifact(self, artifact_id: &str, text: &str) -> Value {
        json!({ "artifactId": artifact_id, "name": "answer", "parts": [self.text_part(text)] })
    }

    /// A status update; `last` is 0.3's `final` (1.0 dropped it: the stream's end says so).
    pub(crate) fn status_update(self, ids: &Ids<'_>, status: Value, last: bool, metadata: Option<Value>) -> Value {
        let mut update = obj(json!({ "taskId": ids.task_id, "contextId": ids.context_id, "status": status }));
        if self == Version::V03 {
            update.insert("final".into(), Value::Bool(last));
        }
        if let Some(metadata) = metadata {
            update.insert("metadata".into(), metadata);
        }
        self.wrap("statusUpdate", self.tagged("status-update", update))
    }

    pub(crate) fn artifact_update(self, ids: &Ids<'_>, artifact: Value, append: bool) -> Value {
        let update = obj(json!({
            "taskId": ids.task_id, "contextId": ids.context_id, "artifact": artifact, "append": append,
        }));
        self.wrap("artifactUpdate", self.tagged("artifact-update", update))
    }

    /// A stream's (or `SendMessage`'s) result: 1.0 wraps the object in its member name.
    pub(crate) fn wrap(self, member: &str, object: Value) -> Value {
        match self {
            Version::V03 => object,
            Version::V10 => json!({ member: object }),
        }
    }
}

/// Which task and context an object belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids<'a> {
    pub(crate) task_id: &'a str,
    pub(crate) context_id: &'a str,
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `{"jsonrpc":"2.0","id","result"}`.
pub(crate) fn rpc_result(id: &Value, result: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string()
}

/// `message/send`'s result: the Task (1.0: `{"task": …}`).
pub(crate) fn task_result(version: Version, task: Value) -> Value {
    version.wrap("task", task)
}

/// A JSON-RPC error with the spec's code; `reason` is 1.0's `ErrorInfo.reason`, and `detail` (our own
/// failure or rejection code) travels in `data` so a caller can tell an auth refusal from a bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    reason: &'static str,
    detail: Option<&'static str>,
}

impl RpcError {
    fn new(code: i64, reason: &'static str, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), reason, detail: None }
    }

    pub(crate) fn parse(message: impl Into<String>) -> RpcError {
        RpcError::new(-32700, "PARSE_ERROR", message)
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> RpcError {
        RpcError::new(-32600, "INVALID_REQUEST", message)
    }

    /// The name is not repeated: it is whatever the body sent.
    pub(crate) fn method_not_found() -> RpcError {
        RpcError::new(-32601, "METHOD_NOT_FOUND", "method: not an A2A method (0.3 or 1.0)")
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, "INVALID_PARAMS", message)
    }

    pub(crate) fn task_not_found(id: &str) -> RpcError {
        RpcError::new(-32001, "TASK_NOT_FOUND", format!("no task {id} on this instance (it may have expired)"))
    }

    pub(crate) fn task_not_cancelable(id: &str, state: &str) -> RpcError {
        RpcError::new(-32002, "TASK_NOT_CANCELABLE", format!("task {id} is already {state}"))
    }

    /// A resubscribe to a task that is over, nothing more to stream: 1.0 says `UnsupportedOperationError`;
    /// 0.3 names no error, and its SDK's server answers `InvalidParams`, which is what 0.3 clients meet.
    pub(crate) fn task_finished(version: Version, id: &str, state: &str) -> RpcError {
        let message = format!("task {id} is already {state}: nothing more will stream (tasks/get reads it)");
        match version {
            Version::V03 => RpcError::invalid_params(message),
            Version::V10 => RpcError::unsupported_operation(message),
        }
    }

    pub(crate) fn unsupported_operation(message: impl Into<String>) -> RpcError {
        RpcError::new(-32004, "UNSUPPORTED_OPERATION", message)
    }

    pub(crate) fn version_not_supported(message: impl Into<String>) -> RpcError {
        RpcError::new(-32009, "VERSION_NOT_SUPPORTED", message)
    }

    /// A request refused before a turn (bad field, no user, body too large): `-32602` for a field the
    /// params got wrong, `-32600` otherwise; our rejection code goes along in `data`.
    pub(crate) fn rejected(code: &'static str, message: &str) -> RpcError {
        let error = match code {
            "invalid_request" => RpcError::invalid_params(message),
            _ => RpcError::invalid_request(message),
        };
        RpcError { detail: Some(code), ..error }
    }

    /// The error response.
    pub(crate) fn to_response(&self, version: Version, id: &Value) -> String {
        let mut error = obj(json!({ "code": self.code, "message": self.message }));
        match version {
            Version::V03 => {
                if let Some(detail) = self.detail {
                    error.insert("data".into(), json!({ "code": detail }));
                }
            }
            Version::V10 => {
                let mut info = json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": self.reason,
                    "domain": "a2a-protocol.org",
                });
                if let Some(detail) = self.detail {
                    info["metadata"] = json!({ "code": detail });
                }
                error.insert("data".into(), json!([info]));
            }
        }
        json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: Ids<'static> = Ids { task_id: "t1", context_id: "c1" };

    #[test]
    fn each_version_has_its_own_shapes() {
        let status = Version::V03.status(TaskState::Completed, None);
        let v03 = Version::V03.status_update(&IDS, status, true, None);
        assert_eq!(
            v03,
            json!({"kind":"status-update","taskId":"t1","contextId":"c1","status":{"state":"completed"},"final":true})
        );
        let status = Version::V10.status(TaskState::Completed, None);
        let v10 = Version::V10.status_update(&IDS, status, true, None);
        assert_eq!(
            v10,
            json!({"statusUpdate":{"taskId":"t1","contextId":"c1","status":{"state":"TASK_STATE_COMPLETED"}}})
        );
        let part = Version::V10.artifact_update(&IDS, Version::V10.artifact("a1", "hi"), true);
        assert_eq!(part["artifactUpdate"]["artifact"]["parts"], json!([{"text":"hi"}]));
        assert_eq!(Version::V03.message(&IDS, "m", false, "x")["role"], "agent");
    }

    #[test]
    fn errors_carry_our_code_in_each_versions_data() {
        let error = RpcError::rejected("unauthenticated", "Authorization: Bearer required");
        let v03: Value = serde_json::from_str(&error.to_response(Version::V03, &json!(1))).unwrap();
        assert_eq!(
            v03["error"],
            json!({"code":-32600,"message":"Authorization: Bearer required","data":{"code":"unauthenticated"}})
        );
        let v10: Value =
            serde_json::from_str(&RpcError::task_not_found("t").to_response(Version::V10, &json!("x"))).unwrap();
        assert_eq!((v10["id"].clone(), v10["error"]["code"].clone()), (json!("x"), json!(-32001)));
        assert_eq!(v10["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    }
}
