//! The A2A renderers of a turn. Both feed every event to the task's record first ([`Tasks::apply`]), so
//! `tasks/get` sees what the stream sent; the stream then sends what changed, the answer the whole task.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::tasks::{Change, Tasks};
use super::wire::{Ids, RpcError, TaskState, Version, rpc_result, task_result};
use crate::agent::TurnEvent;
use crate::pipeline::Renderer;

/// The task a renderer reports on.
struct TaskRef {
    version: Version,
    rpc_id: Value,
    task_id: String,
    context_id: String,
    tasks: Arc<Tasks>,
}

/// `message/stream` / `SendStreamingMessage`: the Task, then status updates (tool use shows as the
/// status message) and artifact chunks as the model's tokens arrive, ending with the terminal status.
pub(crate) struct A2aStream {
    task: TaskRef,
    artifact_id: String,
}

impl A2aStream {
    pub(crate) fn new(version: Version, rpc_id: Value, task_id: String, context_id: String, tasks: Arc<Tasks>) -> Self {
        let artifact_id = tasks.artifact_id(&task_id);
        A2aStream { task: TaskRef { version, rpc_id, task_id, context_id, tasks }, artifact_id }
    }

    fn frame(&self, result: Value) -> Bytes {
        Bytes::from(format!("data: {}\n\n", rpc_result(&self.task.rpc_id, result)))
    }
}

impl Renderer for A2aStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// The submitted Task and the first `working` status leave with the response head.
    fn opening(&mut self) -> Vec<Bytes> {
        let version = self.task.version;
        let task = self.task.tasks.get(&self.task.task_id, version).unwrap_or(Value::Null);
        let ids = Ids { task_id: &self.task.task_id, context_id: &self.task.context_id };
        let working = version.status_update(&ids, version.status(TaskState::Working, None), false, None);
        vec![self.frame(version.wrap("task", task)), self.frame(working)]
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let version = self.task.version;
        let ids = Ids { task_id: &self.task.task_id, context_id: &self.task.context_id };
        let result = match self.task.tasks.apply(&self.task.task_id, event) {
            Change::Nothing => return,
            Change::Text { delta, first, resumed } => {
                if resumed {
                    let working = version.status_update(&ids, version.status(TaskState::Working, None), false, None);
                    out.push(self.frame(working));
                }
                version.artifact_update(&ids, version.artifact(&self.artifact_id, &delta), !first)
            }
            Change::Authorization { provider, url } => {
                let message = version.authorization_message(&ids, &super::request::new_id(), &provider, &url);
                version.status_update(&ids, version.status(TaskState::AuthRequired, Some(message)), false, None)
            }
            Change::Approval { requests } => {
                let message = version.approval_message(&ids, &super::request::new_id(), &requests);
                // The turn is over: the stream ends here; the answer comes as a new message.
                version.status_update(&ids, version.status(TaskState::InputRequired, Some(message)), true, None)
            }
            Change::Status { state, note } => {
                let message = note.map(|text| version.message(&ids, &super::request::new_id(), false, &text));
                let last = state.is_terminal();
                let metadata = if last { failure_metadata(&self.task) } else { None };
                version.status_update(&ids, version.status(state, message), last, metadata)
            }
        };
        out.push(self.frame(result));
    }
}

/// `message/send` / `SendMessage`: the finished Task (the answer as its artifact), as one JSON-RPC result.
pub(crate) struct A2aAnswer {
    task: TaskRef,
}

impl A2aAnswer {
    pub(crate) fn new(version: Version, rpc_id: Value, task_id: String, context_id: String, tasks: Arc<Tasks>) -> Self {
        A2aAnswer { task: TaskRef { version, rpc_id, task_id, context_id, tasks } }
    }
}

impl Renderer for A2aAnswer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let task = &self.task;
        task.tasks.apply(&task.task_id, event);
        if !matches!(event, TurnEvent::Finished(_)) {
            return;
        }
        let body = match task.tasks.get(&task.task_id, task.version) {
            Some(mut object) => {
                if let Some(metadata) = failure_metadata(task) {
                    object["metadata"] = metadata;
                }
                rpc_result(&task.rpc_id, task_result(task.version, object))
            }
            // Only a registry flooded by newer tasks while this one ran can lose it.
            None => RpcError::invalid_request("the task was dropped from the registry before it finished")
                .to_response(task.version, &task.rpc_id),
        };
        out.push(Bytes::from(body));
    }
}

/// `{"error":{"code","message"}}` (our failure code) on the terminal status of a task that did not complete.
fn failure_metadata(task: &TaskRef) -> Option<Value> {
    let failure = task.tasks.failure(&task.task_id)?;
    Some(json!({ "error": { "code": failure.code.as_str(), "message": failure.message } }))
}
