//! The A2A renderers of a turn. Each feeds every event to the task's record first ([`Tasks::apply`]), so
//! `tasks/get` sees what the stream sent; the stream then sends what changed (as [`Step`]s rendered in the
//! caller's version), the answer the whole task, and a background task journals the steps themselves.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::request::SendParams;
use super::steps::Step;
use super::tasks::{Change, Tasks};
use super::wire::{Ids, RpcError, TaskState, Version, rpc_result, task_result};
use crate::agent::TurnEvent;
use crate::pipeline::{Journaled, Renderer};
use crate::sessions::journal::{TurnOutcome, TurnStatus};

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

    fn frame(&self, step: &Step) -> Bytes {
        let ids = Ids { task_id: &self.task.task_id, context_id: &self.task.context_id };
        let result = step.render(self.task.version, &ids);
        Bytes::from(format!("data: {}\n\n", rpc_result(&self.task.rpc_id, result)))
    }
}

impl Renderer for A2aStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// The submitted Task and the first `working` status leave with the response head.
    fn opening(&mut self) -> Vec<Bytes> {
        let task = self.task.tasks.kept(&self.task.task_id);
        let mut out = Vec::new();
        if let Some(task) = task {
            out.push(self.frame(&Step::Task { task }));
        }
        out.push(self.frame(&Step::working()));
        out
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let task = &self.task;
        let change = task.tasks.apply(&task.task_id, event);
        let failure = ends(&change).then(|| task.tasks.failure(&task.task_id)).flatten();
        for step in Step::of(change, &self.artifact_id, failure.as_ref()) {
            out.push(self.frame(&step));
        }
    }
}

/// A background task's stream (a non-blocking `message/send`): the same steps as [`A2aStream`]'s, journaled
/// as steps rather than in the sender's version, so a resubscribe in either version can render them; its
/// outcome is the task as the shared store keeps it. The task lives in a registry of its own: it is
/// stopped and read through the journal, never through this instance's tasks.
pub(crate) struct A2aRecorded {
    task_id: String,
    tasks: Tasks,
    artifact_id: String,
}

impl A2aRecorded {
    /// The task `ticket` names, for `send` in its context.
    pub(crate) fn new(ticket: &str, send: &SendParams) -> A2aRecorded {
        let tasks = Tasks::default();
        tasks.insert(ticket, &send.context_id, &send.message_id, &send.text, ticket);
        let artifact_id = tasks.artifact_id(ticket);
        A2aRecorded { task_id: ticket.to_owned(), tasks, artifact_id }
    }
}

impl Renderer for A2aRecorded {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    fn opening(&mut self) -> Vec<Bytes> {
        let task = self.tasks.kept(&self.task_id);
        task.map(|task| Step::Task { task })
            .into_iter()
            .chain([Step::working()])
            .map(|s| Bytes::from(s.to_frame()))
            .collect()
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let change = self.tasks.apply(&self.task_id, event);
        let failure = ends(&change).then(|| self.tasks.failure(&self.task_id)).flatten();
        out.extend(Step::of(change, &self.artifact_id, failure.as_ref()).iter().map(|s| Bytes::from(s.to_frame())));
    }
}

impl Journaled for A2aRecorded {
    /// The turn's end as the journal's status (a task waiting for the user is a turn that completed), and
    /// the task as it ended.
    fn outcome(&self) -> Option<TurnOutcome> {
        let task = self.tasks.kept(&self.task_id)?;
        let status = match task.state() {
            TaskState::Completed | TaskState::InputRequired => TurnStatus::Completed,
            TaskState::Canceled => TurnStatus::Cancelled,
            TaskState::Failed => TurnStatus::Failed,
            TaskState::Submitted | TaskState::Working | TaskState::AuthRequired => return None,
        };
        Some(TurnOutcome { status, result: task.to_json() })
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

/// Whether the change ends the task (only then is its failure looked up: not once per token).
fn ends(change: &Change) -> bool {
    matches!(change, Change::Status { state, .. } if state.is_terminal())
}

/// `{"error":{"code","message"}}` (our failure code) on the terminal status of a task that did not complete.
fn failure_metadata(task: &TaskRef) -> Option<Value> {
    let failure = task.tasks.failure(&task.task_id)?;
    Some(json!({ "error": { "code": failure.code.as_str(), "message": failure.message } }))
}
