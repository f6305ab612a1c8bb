//! The tasks this instance ran or is running, so `tasks/get` can answer and `tasks/cancel` can stop a
//! turn. Bounded ([`MAX_TASKS`], oldest dropped first) and kept for [`TASK_TTL`] after their last change:
//! an FC instance lives for hours and must not grow without bound.
//!
//! With a shared store (Redis) every task is also mirrored there ([`Kept`], `a2a_task:{id}`, the same
//! TTL) whenever its state changes — on a writer task of its own, in order, off the turn's path — so
//! `tasks/get` and `tasks/cancel` answer on any instance (issue 28): FC scales out behind one trigger and
//! A2A callers send no affinity header. The answer's text is mirrored with each state change, not with
//! every token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::request::new_id;
use super::steps::Step;
use super::wire::{Ids, TaskState, Version};
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::{Failure, FailureCode};
use crate::mcp::QuestionForm;
use crate::sessions::Store;

/// Mirror writes that may wait for the writer; beyond it a write is dropped (logged): the store is
/// slower than the turns, and the local record still answers on this instance.
const MIRROR_BUFFER: usize = 256;

pub(crate) const MAX_TASKS: usize = 1000;
pub(crate) const TASK_TTL: Duration = Duration::from_secs(3600);

/// What is known of one task.
#[derive(Debug)]
struct TaskRecord {
    context_id: String,
    user_message_id: String,
    question: String,
    artifact_id: String,
    state: TaskState,
    answer: String,
    /// The agent's status message (a tool in use, the failure).
    note: Option<String>,
    failure: Option<Failure>,
    /// The approval requests the turn stopped for (data parts of the `input-required` status message).
    approvals: Vec<Value>,
    /// Stops the running turn (see [`Tasks::cancel`]).
    stop: Arc<Notify>,
    /// The turn the task runs as (`Pipeline::cancel` stops it from any instance).
    turn_id: String,
    created: Instant,
    touched: Instant,
}

/// What an event changed, for a streaming renderer to send.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    Nothing,
    /// `resumed`: the task was waiting for consent, so a `working` status goes first.
    Text {
        delta: String,
        first: bool,
        resumed: bool,
    },
    Status {
        state: TaskState,
        note: Option<String>,
    },
    /// The task waits for the user's OAuth2 consent (`auth-required`).
    Authorization {
        provider: String,
        url: String,
    },
    /// The turn ended waiting for the user's approval of these requests (`input-required`, final).
    Approval {
        requests: Vec<Value>,
    },
}

/// `tasks/cancel` could not cancel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CancelError {
    #[error("no such task")]
    NotFound,
    #[error("task already {0}")]
    Finished(&'static str),
}

/// This instance's tasks.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    records: Mutex<HashMap<String, TaskRecord>>,
    /// To the writer that mirrors each change to the shared store; `None` without one.
    mirror: Option<mpsc::Sender<(String, String)>>,
}

/// A task as the shared store keeps it: what another instance needs to answer `tasks/get` in either
/// version, and the turn to stop for `tasks/cancel`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Kept {
    context_id: String,
    user_message_id: String,
    question: String,
    artifact_id: String,
    state: TaskState,
    answer: String,
    note: Option<String>,
    approvals: Vec<Value>,
    pub(crate) turn_id: String,
}

impl Kept {
    fn of(record: &TaskRecord) -> Kept {
        Kept {
            context_id: record.context_id.clone(),
            user_message_id: record.user_message_id.clone(),
            question: record.question.clone(),
            artifact_id: record.artifact_id.clone(),
            state: record.state,
            answer: record.answer.clone(),
            note: record.note.clone(),
            approvals: record.approvals.clone(),
            turn_id: record.turn_id.clone(),
        }
    }

    /// A task just submitted (a background task's answer before anything ran).
    pub(crate) fn submitted(context_id: &str, user_message_id: &str, question: &str, turn_id: &str) -> Kept {
        Kept {
            context_id: context_id.to_owned(),
            user_message_id: user_message_id.to_owned(),
            question: question.to_owned(),
            artifact_id: new_id(),
            state: TaskState::Submitted,
            answer: String::new(),
            note: None,
            approvals: Vec::new(),
            turn_id: turn_id.to_owned(),
        }
    }

    pub(crate) fn parse(json: &str) -> Option<Kept> {
        serde_json::from_str(json).ok()
    }

    pub(crate) fn context_id(&self) -> &str {
        &self.context_id
    }

    /// The task after one more step of its stream, as [`Tasks::apply`] left the record that made it.
    pub(crate) fn apply(&mut self, step: &Step) {
        match step {
            Step::Task { task } => *self = task.clone(),
            Step::Status { state, note, .. } => {
                self.state = *state;
                self.note = note.clone();
            }
            Step::Text { delta, .. } => {
                self.answer.push_str(delta);
                self.state = TaskState::Working;
            }
            Step::Authorization { provider, url, .. } => {
                self.state = TaskState::AuthRequired;
                self.note = Some(crate::agent::authorization_message(provider, url));
            }
            Step::Approval { requests, .. } => {
                self.state = TaskState::InputRequired;
                self.approvals = requests.clone();
                self.note = None;
            }
        }
    }

    pub(crate) fn state(&self) -> TaskState {
        self.state
    }

    /// The state as a refused cancel names it.
    pub(crate) fn state_word(&self) -> &'static str {
        state_word(self.state)
    }

    /// The task as the caller's version shows it.
    pub(crate) fn render(&self, version: Version, id: &str) -> Value {
        render_parts(version, id, self)
    }

    /// Marked cancelled, as a cancel answers it.
    pub(crate) fn cancelled(mut self) -> Kept {
        self.state = TaskState::Canceled;
        self.note = Some(Failure::cancelled().to_string());
        self
    }

    /// Marked failed: a background task that ended before it could run (its request no longer planned).
    pub(crate) fn failed(mut self) -> Kept {
        self.state = TaskState::Failed;
        self.note = Some("the background task failed before it could run".to_owned());
        self
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The shared store's name of task `id`.
pub(crate) fn kept_name(id: &str) -> String {
    format!("a2a_task:{id}")
}

impl Tasks {
    /// Tasks mirrored to `store` (when it is shared between instances) by a writer task of their own.
    pub(crate) fn mirrored(store: Option<Arc<dyn Store>>) -> Tasks {
        let Some(store) = store.filter(|store| store.shared()) else { return Tasks::default() };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return Tasks::default() };
        let (sender, mut changes) = mpsc::channel::<(String, String)>(MIRROR_BUFFER);
        runtime.spawn(async move {
            while let Some((id, json)) = changes.recv().await {
                if let Err(error) = store.keep(&kept_name(&id), json, TASK_TTL).await {
                    tracing::warn!(error = %error, task = %id, "the task was not mirrored to the session store");
                }
            }
        });
        Tasks { records: Mutex::default(), mirror: Some(sender) }
    }

    /// Sends the record's state to the mirror, if any.
    fn mirror(&self, id: &str, record: &TaskRecord) {
        let Some(mirror) = &self.mirror else { return };
        if mirror.try_send((id.to_owned(), Kept::of(record).to_json())).is_err() {
            tracing::warn!(task = %id, "the task mirror is behind; a change was not mirrored");
        }
    }

    /// Whether another instance may know tasks this one does not (the mirror's store is shared).
    pub(crate) fn shared(&self) -> bool {
        self.mirror.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, TaskRecord>> {
        // A panic while holding the lock cannot leave a record half-written in a way that matters more
        // than losing every task: keep serving.
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a submitted task — `continues`, when it names a task of this context waiting for the
    /// user (`input-required`) here, or `waiting_elsewhere` (the shared store said so: another instance ran
    /// it), else a new one; returns its id and the future that resolves when it is cancelled.
    pub(crate) fn submit(
        &self,
        continues: Option<&str>,
        waiting_elsewhere: bool,
        context_id: &str,
        user_message_id: &str,
        question: &str,
        turn_id: &str,
    ) -> (String, impl Future<Output = ()> + Send + 'static) {
        let waiting = continues.filter(|id| waiting_elsewhere || self.waits_for_input(id, context_id));
        let id = waiting.map_or_else(new_id, str::to_owned);
        let stop = self.insert(&id, context_id, user_message_id, question, turn_id);
        // `notify_one` keeps a permit when nobody waits yet, so a cancel before the turn starts still counts.
        (id, async move { stop.notified().await })
    }

    /// Whether `id` is a task of this context waiting for the user (`input-required`) here.
    pub(crate) fn waits_for_input(&self, id: &str, context_id: &str) -> bool {
        self.lock().get(id).is_some_and(|r| r.state == TaskState::InputRequired && r.context_id == context_id)
    }

    /// Registers a submitted task under `id` (a continued task's, or a background task's ticket); its stop.
    pub(crate) fn insert(
        &self,
        id: &str,
        context_id: &str,
        user_message_id: &str,
        question: &str,
        turn_id: &str,
    ) -> Arc<Notify> {
        let now = Instant::now();
        let stop = Arc::new(Notify::new());
        let record = TaskRecord {
            context_id: context_id.to_owned(),
            user_message_id: user_message_id.to_owned(),
            question: question.to_owned(),
            artifact_id: new_id(),
            state: TaskState::Submitted,
            answer: String::new(),
            note: None,
            failure: None,
            approvals: Vec::new(),
            stop: stop.clone(),
            turn_id: turn_id.to_owned(),
            created: now,
            touched: now,
        };
        let mut records = self.lock();
        records.retain(|_, r| now.duration_since(r.touched) < TASK_TTL);
        while records.len() >= MAX_TASKS {
            let Some(oldest) = records.iter().min_by_key(|(_, r)| r.created).map(|(id, _)| id.clone()) else {
                break;
            };
            records.remove(&oldest);
        }
        self.mirror(id, &record);
        records.insert(id.to_owned(), record);
        stop
    }

    /// Applies one of the task's turn events. A task already cancelled stays cancelled. A change of
    /// state is mirrored (not every token of the answer).
    pub(crate) fn apply(&self, id: &str, event: &TurnEvent) -> Change {
        let change = self.apply_now(id, event);
        if !matches!(change, Change::Nothing | Change::Text { first: false, resumed: false, .. })
            && let Some(record) = self.lock().get(id)
        {
            self.mirror(id, record);
        }
        change
    }

    fn apply_now(&self, id: &str, event: &TurnEvent) -> Change {
        let mut records = self.lock();
        let Some(record) = records.get_mut(id) else {
            return Change::Nothing;
        };
        record.touched = Instant::now();
        if record.state.is_terminal() && !matches!(event, TurnEvent::Finished(_)) {
            return Change::Nothing;
        }
        let (state, note) = match event {
            TurnEvent::TextDelta(delta) if !delta.is_empty() => {
                let first = record.answer.is_empty();
                let resumed = record.state == TaskState::AuthRequired;
                record.answer.push_str(delta);
                record.state = TaskState::Working;
                if resumed {
                    record.note = None;
                }
                return Change::Text { delta: delta.clone(), first, resumed };
            }
            TurnEvent::AuthorizationRequired { provider, url } => {
                record.state = TaskState::AuthRequired;
                record.note = Some(crate::agent::authorization_message(provider, url));
                return Change::Authorization { provider: provider.clone(), url: url.clone() };
            }
            TurnEvent::ToolCallStarted { name, .. } => (TaskState::Working, Some(format!("calling tool {name}"))),
            TurnEvent::ToolResult { name, output, .. } => {
                let outcome = if output.is_error { "failed" } else { "answered" };
                (TaskState::Working, Some(format!("tool {name} {outcome}")))
            }
            TurnEvent::ApprovalRequested { request_id, server, name, arguments, .. } => {
                record.approvals.push(serde_json::json!({
                    "type": "mcp_approval_request", "id": request_id, "name": name, "arguments": arguments,
                    "server_label": server,
                }));
                return Change::Nothing;
            }
            TurnEvent::QuestionAsked(asked) => {
                let crate::agent::AskedQuestion {
                    request_id, server, name, arguments, message, form, expires_at, ..
                } = &**asked;
                let mut request = serde_json::json!({
                    "type": "mcp_elicitation_request", "id": request_id, "name": name, "arguments": arguments,
                    "server_label": server, "message": message, "expires_at": expires_at,
                });
                match form {
                    QuestionForm::Schema(schema) => {
                        request["mode"] = "form".into();
                        request["requested_schema"] = schema.clone();
                    }
                    QuestionForm::Url(url) => {
                        request["mode"] = "url".into();
                        request["url"] = url.as_str().into();
                    }
                }
                record.approvals.push(request);
                return Change::Nothing;
            }
            TurnEvent::Finished(TurnEnd::Completed) if !record.approvals.is_empty() && !record.state.is_terminal() => {
                record.state = TaskState::InputRequired;
                record.note = None;
                return Change::Approval { requests: record.approvals.clone() };
            }
            TurnEvent::Finished(end) => {
                if !record.state.is_terminal() {
                    let (state, failure) = ending(end);
                    record.state = state;
                    record.note = failure.as_ref().map(|f| f.to_string());
                    record.failure = failure;
                }
                return Change::Status { state: record.state, note: record.note.clone() };
            }
            // A listing changes nothing about the task: no status note, no artifact.
            TurnEvent::ToolsListed { .. } => return Change::Nothing,
            _ => return Change::Nothing,
        };
        record.state = state;
        record.note = note.clone();
        Change::Status { state, note }
    }

    /// Marks a running task cancelled and stops its turn.
    pub(crate) fn cancel(&self, id: &str, version: Version) -> Result<Value, CancelError> {
        let mut records = self.lock();
        let record = records.get_mut(id).ok_or(CancelError::NotFound)?;
        if record.state.is_terminal() {
            return Err(CancelError::Finished(state_word(record.state)));
        }
        record.state = TaskState::Canceled;
        record.note = Some(Failure::cancelled().to_string());
        record.failure = Some(Failure::cancelled());
        record.touched = Instant::now();
        record.stop.notify_one();
        let task = render(version, id, record);
        self.mirror(id, record);
        Ok(task)
    }

    /// The task as the caller's version shows it, answer and question included.
    pub(crate) fn get(&self, id: &str, version: Version) -> Option<Value> {
        self.lock().get(id).map(|record| render(version, id, record))
    }

    /// The task as the shared store would keep it.
    pub(crate) fn kept(&self, id: &str) -> Option<Kept> {
        self.lock().get(id).map(Kept::of)
    }

    /// The failure the task ended with, if any.
    pub(crate) fn failure(&self, id: &str) -> Option<Failure> {
        self.lock().get(id).and_then(|r| r.failure.clone())
    }

    pub(crate) fn artifact_id(&self, id: &str) -> String {
        self.lock().get(id).map(|r| r.artifact_id.clone()).unwrap_or_default()
    }
}

/// A turn's end as a task state: a cancelled turn is `canceled`; a bound hit is a failure (the answer
/// so far stays in the artifact), since A2A has no "incomplete".
fn ending(end: &TurnEnd) -> (TaskState, Option<Failure>) {
    match end {
        TurnEnd::Completed => (TaskState::Completed, None),
        TurnEnd::Failed(f) if f.code == FailureCode::Cancelled => (TaskState::Canceled, Some(f.clone())),
        TurnEnd::Incomplete(f) | TurnEnd::Failed(f) => (TaskState::Failed, Some(f.clone())),
    }
}

fn state_word(state: TaskState) -> &'static str {
    match state {
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "canceled",
        TaskState::Submitted | TaskState::Working | TaskState::AuthRequired => "running",
        TaskState::InputRequired => "waiting for the user",
    }
}

fn render(version: Version, id: &str, record: &TaskRecord) -> Value {
    render_parts(version, id, &Kept::of(record))
}

fn render_parts(version: Version, id: &str, record: &Kept) -> Value {
    let ids = Ids { task_id: id, context_id: &record.context_id };
    let note = match record.state {
        TaskState::InputRequired => Some(version.approval_message(&ids, &format!("{id}-status"), &record.approvals)),
        _ => record.note.as_deref().map(|text| version.message(&ids, &format!("{id}-status"), false, text)),
    };
    let artifacts =
        if record.answer.is_empty() { Vec::new() } else { vec![version.artifact(&record.artifact_id, &record.answer)] };
    let history = vec![version.message(&ids, &record.user_message_id, true, &record.question)];
    version.task(&ids, version.status(record.state, note), artifacts, history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_stops_the_turn_and_sticks() {
        let tasks = Tasks::default();
        let (id, stopped) = tasks.submit(None, false, "c1", "m1", "hi", "turn_1");
        assert_eq!(
            tasks.apply(&id, &TurnEvent::TextDelta("he".into())),
            Change::Text { delta: "he".into(), first: true, resumed: false }
        );
        let task = tasks.cancel(&id, Version::V03).unwrap();
        assert_eq!(task["status"]["state"], "canceled");
        // The permit is kept: the turn's future resolves even though nobody waited when cancel came.
        tokio::time::timeout(Duration::from_secs(5), stopped).await.expect("the turn is told to stop");
        let late = tasks.apply(&id, &TurnEvent::Finished(TurnEnd::Completed));
        assert_eq!(late, Change::Status { state: TaskState::Canceled, note: Some(Failure::cancelled().to_string()) });
        assert_eq!(tasks.cancel(&id, Version::V03), Err(CancelError::Finished("canceled")));
        assert_eq!(tasks.cancel("nope", Version::V03), Err(CancelError::NotFound));
        let got = tasks.get(&id, Version::V10).unwrap();
        assert_eq!(got["artifacts"][0]["parts"][0]["text"], "he");
        assert_eq!(got["history"][0]["role"], "ROLE_USER");
    }

    #[test]
    fn the_registry_is_bounded_oldest_first() {
        let tasks = Tasks::default();
        let (first, _) = tasks.submit(None, false, "c", "m", "q", "turn_1");
        for _ in 0..MAX_TASKS {
            let _ = tasks.submit(None, false, "c", "m", "q", "turn_1");
        }
        assert!(tasks.get(&first, Version::V03).is_none());
        assert_eq!(tasks.lock().len(), MAX_TASKS);
    }

    #[test]
    fn a_failed_turn_fails_the_task_with_its_code() {
        let tasks = Tasks::default();
        let (id, _) = tasks.submit(None, false, "c", "m", "q", "turn_1");
        let failure = Failure::new(FailureCode::ModelError, "boom");
        tasks.apply(&id, &TurnEvent::Finished(TurnEnd::Failed(failure.clone())));
        assert_eq!(tasks.failure(&id), Some(failure));
        assert_eq!(tasks.get(&id, Version::V03).unwrap()["status"]["state"], "failed");
    }

    #[test]
    fn a_consent_prompt_makes_the_task_auth_required_until_the_turn_goes_on() {
        let tasks = Tasks::default();
        let (id, _stopped) = tasks.submit(None, false, "c1", "m1", "hi", "turn_1");
        let prompt = TurnEvent::AuthorizationRequired { provider: "calendar".into(), url: "https://c/a".into() };
        assert_eq!(
            tasks.apply(&id, &prompt),
            Change::Authorization { provider: "calendar".into(), url: "https://c/a".into() }
        );
        let task = tasks.get(&id, Version::V03).unwrap();
        assert_eq!(task["status"]["state"], "auth-required");
        assert!(task["status"]["message"]["parts"][0]["text"].as_str().unwrap().contains("https://c/a"));
        assert_eq!(tasks.get(&id, Version::V10).unwrap()["status"]["state"], "TASK_STATE_AUTH_REQUIRED");
        assert_eq!(
            tasks.apply(&id, &TurnEvent::TextDelta("ok".into())),
            Change::Text { delta: "ok".into(), first: true, resumed: true }
        );
        assert_eq!(tasks.get(&id, Version::V03).unwrap()["status"]["state"], "working");
    }
}
