//! What an A2A task's stream says, one step at a time, in neither version's shapes: a live stream renders
//! each step at once in its caller's version; a background task journals the steps themselves, so a
//! `tasks/resubscribe` (0.3) or `SubscribeToTask` (1.0) — from a client of either line, with its own
//! JSON-RPC id — gets the same story in its own shapes. Message ids are minted when a step is made, so a
//! replayed step is the step that was sent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::request::new_id;
use super::tasks::{Change, Kept};
use super::wire::{Ids, TaskState, Version};
use crate::failure::Failure;

/// One event of a task's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum Step {
    /// The task as it stood when its stream began.
    Task { task: Kept },
    /// A status update; `note` is the agent's message (a tool in use, a failure), `error` our failure on a
    /// terminal state.
    Status {
        state: TaskState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(default)]
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorNote>,
    },
    /// A chunk of the answer (the artifact `answer`), appended after the first.
    Text { artifact_id: String, delta: String, append: bool },
    /// Waiting for the user's OAuth2 consent.
    Authorization { provider: String, url: String, message_id: String },
    /// The turn ended waiting for the user's answer to these requests (`input-required`, the stream's end).
    Approval { requests: Vec<Value>, message_id: String },
}

/// Our failure on a task that did not complete (the status update's `metadata.error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorNote {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ErrorNote {
    pub(crate) fn of(failure: &Failure) -> ErrorNote {
        ErrorNote { code: failure.code.as_str().to_owned(), message: failure.message.clone() }
    }
}

impl Step {
    /// The `working` status a stream sends right after the task.
    pub(crate) fn working() -> Step {
        Step::Status { state: TaskState::Working, note: None, message_id: String::new(), error: None }
    }

    /// The steps a change of the task's record makes; `failure` is the task's, for a terminal status.
    pub(crate) fn of(change: Change, artifact_id: &str, failure: Option<&Failure>) -> Vec<Step> {
        match change {
            Change::Nothing => Vec::new(),
            Change::Text { delta, first, resumed } => {
                let text = Step::Text { artifact_id: artifact_id.to_owned(), delta, append: !first };
                if resumed { vec![Step::working(), text] } else { vec![text] }
            }
            Change::Authorization { provider, url } => {
                vec![Step::Authorization { provider, url, message_id: new_id() }]
            }
            Change::Approval { requests } => vec![Step::Approval { requests, message_id: new_id() }],
            Change::Status { state, note } => {
                let error = if state.is_terminal() { failure.map(ErrorNote::of) } else { None };
                let message_id = if note.is_some() { new_id() } else { String::new() };
                vec![Step::Status { state, note, message_id, error }]
            }
        }
    }

    /// The step as a stream result in `version`'s shapes (1.0: wrapped in its member name).
    pub(crate) fn render(&self, version: Version, ids: &Ids<'_>) -> Value {
        match self {
            Step::Task { task } => version.wrap("task", task.render(version, ids.task_id)),
            Step::Status { state, note, message_id, error } => {
                let message = note.as_deref().map(|text| version.message(ids, message_id, false, text));
                let metadata = error.as_ref().map(|e| json!({ "error": { "code": e.code, "message": e.message } }));
                version.status_update(ids, version.status(*state, message), state.is_terminal(), metadata)
            }
            Step::Text { artifact_id, delta, append } => {
                version.artifact_update(ids, version.artifact(artifact_id, delta), *append)
            }
            Step::Authorization { provider, url, message_id } => {
                let message = version.authorization_message(ids, message_id, provider, url);
                version.status_update(ids, version.status(TaskState::AuthRequired, Some(message)), false, None)
            }
            Step::Approval { requests, message_id } => {
                let message = version.approval_message(ids, message_id, requests);
                version.status_update(ids, version.status(TaskState::InputRequired, Some(message)), true, None)
            }
        }
    }

    /// As a journal frame (`data: {step}`); the step of such a frame.
    pub(crate) fn to_frame(&self) -> String {
        format!("data: {}\n\n", serde_json::to_string(self).unwrap_or_default())
    }

    pub(crate) fn from_frame(frame: &str) -> Option<Step> {
        let data = frame.trim_end().strip_prefix("data: ")?;
        serde_json::from_str(data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: Ids<'static> = Ids { task_id: "t1", context_id: "c1" };

    #[test]
    fn a_step_renders_as_each_version_streams_it_and_survives_the_journal() {
        let failure = Failure::new(crate::failure::FailureCode::ModelError, "boom");
        let steps =
            Step::of(Change::Status { state: TaskState::Failed, note: Some("boom".into()) }, "a1", Some(&failure));
        let [step] = steps.as_slice() else { panic!("one step: {steps:?}") };
        assert_eq!(Step::from_frame(&step.to_frame()).as_ref(), Some(step));
        let v03 = step.render(Version::V03, &IDS);
        assert_eq!((v03["kind"].as_str(), v03["final"].as_bool()), (Some("status-update"), Some(true)));
        assert_eq!(v03["metadata"]["error"]["code"], "model_error");
        let v10 = step.render(Version::V10, &IDS);
        assert_eq!(v10["statusUpdate"]["status"]["state"], "TASK_STATE_FAILED");
        let resumed = Step::of(Change::Text { delta: "hi".into(), first: false, resumed: true }, "a1", None);
        assert_eq!(resumed.len(), 2, "a resumed text is preceded by working");
        assert_eq!(resumed[1].render(Version::V10, &IDS)["artifactUpdate"]["append"], true);
    }
}
