//! `POST /a2a` (A2A JSON-RPC, 0.3 and 1.0) and the agent card. Every refusal — a bad envelope, a bad
//! field, no user — is a JSON-RPC error in the caller's version (the face's own error shape); only an
//! auth refusal and an oversized body keep their HTTP status, so clients see them as such.
//!
//! A non-blocking `message/send` (0.3 `configuration.blocking: false`, 1.0 `returnImmediately`) is a
//! background task (docs/background.md): answered `submitted` at once, run where FC delivers it, its
//! steps journaled; `tasks/get`, `tasks/cancel` and `tasks/resubscribe` / `SubscribeToTask` read and stop
//! it through the journal from any instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::Body;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::Value;
use tokio::time::Instant;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::failure::Failure;
use crate::pipeline::{Journaled, Pipeline, Plan, Ticket};
use crate::protocol::a2a::{
    A2aAnswer, A2aRecorded, A2aStream, CancelError, CardSettings, Ids, Kept, Method, RpcError, RpcRequest, SendParams,
    Step, TASK_TTL, TaskIdParams, TaskState, Tasks, Version, agent_card, kept_name, pinned_body, rpc_result,
    task_result,
};
use crate::rejection::Rejection;
use crate::respond;
use crate::sessions::journal::{TurnRecord, TurnStatus};

/// The route (and journal face) of A2A background tasks.
const FACE: &str = "a2a";
/// How often, and how far apart, an answer to a task another instance ran looks for the task's
/// `input-required` record: the mirror's writer is a Redis write behind the answer (milliseconds), and a
/// second is far beyond it on a loaded machine yet short for a message that named a stale task.
const MIRROR_LAG_LOOKS: u32 = 20;
const MIRROR_LAG_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// The A2A face: its tasks and its card.
pub(super) struct A2aFace {
    /// The A2A tasks this instance ran or is running (mirrored to a shared store).
    tasks: Arc<Tasks>,
    card: CardSettings,
    /// For a task another instance runs, or a background task: its stop, its record, its journal.
    pipeline: Arc<Pipeline>,
}

/// A `message/send` or `message/stream` read: what its answer repeats and the task it becomes.
pub(super) struct A2aTurn {
    version: Version,
    /// The JSON-RPC id, echoed in every answer.
    id: Value,
    send: SendParams,
    stream: bool,
    /// The shared store (or the journal) says the task the message names waits for this answer, in this
    /// context: another instance ran it, or it ran in the background.
    waiting_elsewhere: bool,
}

/// Where a task this instance's registry does not hold was found.
enum Found {
    /// A background task: its journal record and the task as its steps left it.
    Journaled(TurnRecord, Kept),
    /// A task another instance ran (the shared store's mirror).
    Mirrored(Kept),
    Missing,
}

impl A2aFace {
    pub(super) fn new(config: &Config, pipeline: Arc<Pipeline>) -> Self {
        let card = CardSettings {
            name: config.agent.name.clone(),
            public_url: config.agent.a2a_public_url.clone(),
            user_source: config.identity.user_source.clone(),
        };
        let tasks = Arc::new(Tasks::mirrored(pipeline.shared_store()));
        A2aFace { tasks, card, pipeline }
    }

    /// `GET /.well-known/agent-card.json` and `/.well-known/agent.json`.
    pub(super) fn card(&self, headers: &HeaderMap) -> Response<Body> {
        respond::json(agent_card(&self.card, headers).to_string())
    }

    /// Whether a task missing here may be elsewhere: in the journal (any session store) or the mirror.
    fn may_be_elsewhere(&self) -> bool {
        self.pipeline.journaling() || self.tasks.shared()
    }

    /// `tasks/get` and `tasks/cancel`: answered from this instance's tasks; `None` when it has no such task.
    fn task(&self, rpc: &RpcRequest, params: &TaskIdParams) -> Option<Result<String, RpcError>> {
        // A task waiting for the user runs nowhere: its answer may have reached another instance, which
        // went on with it; with a shared store its record there is the truth.
        if self.tasks.shared()
            && self.tasks.kept(&params.id).is_some_and(|task| task.state() == TaskState::InputRequired)
        {
            return None;
        }
        let task = match rpc.method {
            Method::CancelTask => match self.tasks.cancel(&params.id, rpc.version) {
                Err(CancelError::NotFound) => return None,
                other => other.map_err(|error| match error {
                    CancelError::NotFound => RpcError::task_not_found(&params.id),
                    CancelError::Finished(state) => RpcError::task_not_cancelable(&params.id, state),
                }),
            },
            _ => Ok(self.tasks.get(&params.id, rpc.version)?),
        };
        Some(task.map(|task| rpc_result(&rpc.id, task)))
    }

    /// A task this instance's registry does not hold: a background task in the journal, else a task another
    /// instance ran in the shared store's mirror.
    async fn find(pipeline: &Pipeline, id: &str) -> Result<Found, Failure> {
        if pipeline.journaling() {
            let refused =
                |rejection: Rejection| Failure::new(crate::failure::FailureCode::SessionError, rejection.message);
            if let Some((record, _)) = pipeline.read_background(id, usize::MAX).await.map_err(refused)? {
                if record.face != FACE {
                    return Ok(Found::Missing);
                }
                // Ended: its result is the task as it ended; running: the steps so far, folded.
                let ended = record.result.as_deref().and_then(Kept::parse);
                let task = match ended {
                    Some(task) => task,
                    None => {
                        let frames = pipeline.read_background(id, 0).await.map_err(refused)?;
                        let Some((record, frames)) = frames else { return Ok(Found::Missing) };
                        let Some(task) = journaled_task(&record, &frames) else { return Ok(Found::Missing) };
                        return Ok(Found::Journaled(record, task));
                    }
                };
                return Ok(Found::Journaled(record, task));
            }
        }
        let Some(store) = pipeline.shared_store() else { return Ok(Found::Missing) };
        let kept = store.kept(&kept_name(id)).await.map_err(|error| Failure::session(&error))?;
        Ok(kept.as_deref().and_then(Kept::parse).map_or(Found::Missing, Found::Mirrored))
    }

    /// `tasks/get` / `tasks/cancel` of a task this instance does not hold: a background task through the
    /// journal, a task another instance runs through the mirror (and a stop sent to that instance).
    async fn elsewhere(pipeline: Arc<Pipeline>, rpc: RpcRequest, params: TaskIdParams) -> Response<Body> {
        let id = &params.id;
        let answer = |error: RpcError| respond::json(error.to_response(rpc.version, &rpc.id));
        let found = match A2aFace::find(&pipeline, id).await {
            Ok(found) => found,
            Err(failure) => return answer(RpcError::rejected(failure.code.as_str(), &failure.message)),
        };
        let (kept, journaled) = match found {
            Found::Missing => return answer(RpcError::task_not_found(id)),
            Found::Journaled(record, kept) => (kept, Some(record)),
            Found::Mirrored(kept) => (kept, None),
        };
        if rpc.method != Method::CancelTask {
            return respond::json(rpc_result(&rpc.id, kept.render(rpc.version, id)));
        }
        let running = journaled.as_ref().is_none_or(|record| !record.status.is_final());
        if kept.state().is_terminal() || !running {
            return answer(RpcError::task_not_cancelable(id, kept.state_word()));
        }
        if journaled.is_some() {
            // The journal's cancel: a queued task never runs, a running one is stopped where it runs.
            return match pipeline.cancel_background(id).await {
                Ok(Some(_)) => respond::json(rpc_result(&rpc.id, kept.cancelled().render(rpc.version, id))),
                Ok(None) => answer(RpcError::task_not_found(id)),
                Err(rejection) => answer(RpcError::rejected(rejection.code, &rejection.message)),
            };
        }
        if let Err(failure) = pipeline.cancel(&kept.turn_id).await {
            return answer(RpcError::rejected(failure.code.as_str(), &failure.message));
        }
        // The instance running it mirrors the cancelled ending; until then the record says so already.
        let cancelled = kept.cancelled();
        if let Some(store) = pipeline.shared_store()
            && let Err(error) = store.keep(&kept_name(id), cancelled.to_json(), TASK_TTL).await
        {
            tracing::warn!(error = %error, "the cancelled task was not mirrored");
        }
        respond::json(rpc_result(&rpc.id, cancelled.render(rpc.version, id)))
    }

    /// `tasks/resubscribe` (0.3) / `SubscribeToTask` (1.0): a background task's steps from the first, then
    /// the live ones until it ends, in the caller's version with its JSON-RPC id. A task that ran in the
    /// foreground was not recorded (its stream was its caller's) and cannot be resubscribed; a task that is
    /// over has nothing more to stream.
    async fn resubscribe(
        pipeline: Arc<Pipeline>,
        tasks: Arc<Tasks>,
        rpc: RpcRequest,
        params: TaskIdParams,
        until: Instant,
    ) -> Response<Body> {
        let id = params.id;
        let refuse = |error: RpcError| stream_error(rpc.version, &rpc.id, &error);
        let found = match tasks.kept(&id) {
            Some(kept) => Found::Mirrored(kept),
            None => match A2aFace::find(&pipeline, &id).await {
                Ok(found) => found,
                Err(failure) => return refuse(RpcError::rejected(failure.code.as_str(), &failure.message)),
            },
        };
        let kept = match found {
            Found::Missing => return refuse(RpcError::task_not_found(&id)),
            Found::Mirrored(kept) if kept.state().is_terminal() => {
                return refuse(RpcError::task_finished(rpc.version, &id, kept.state_word()));
            }
            Found::Mirrored(_) => {
                return refuse(RpcError::unsupported_operation(format!(
                    "task {id} runs in the foreground, so its stream is its caller's: only a task sent non-blocking \
                     (configuration.blocking: false / returnImmediately: true) is recorded and can be resubscribed"
                )));
            }
            Found::Journaled(_, kept) if kept.state().is_terminal() => {
                return refuse(RpcError::task_finished(rpc.version, &id, kept.state_word()));
            }
            Found::Journaled(_, kept) => kept,
        };
        let (version, rpc_id, context_id) = (rpc.version, rpc.id, kept.context_id().to_owned());
        let task_id = id.clone();
        super::background::follow(pipeline, id, 0, until, move |_, frame| {
            let step = Step::from_frame(frame)?;
            let ids = Ids { task_id: &task_id, context_id: &context_id };
            Some(Bytes::from(format!("data: {}\n\n", rpc_result(&rpc_id, step.render(version, &ids)))))
        })
    }

    /// Before planning a message that names a task this instance does not hold waiting for input: whether
    /// the journal or the mirror says it waits for this answer, in this context.
    async fn settle_turn(pipeline: Arc<Pipeline>, turn: &mut A2aTurn) {
        let Some(task_id) = turn.send.task_id.clone() else { return };
        // The mirror is written off the turn's path, so it may trail the answer that ended the task
        // `input-required` by a moment: a message that answers requests (which only such a task asks)
        // looks again, for a bounded while, before it goes on as a new task.
        let answers = !turn.send.answers.is_empty() || !turn.send.questions.is_empty();
        let mut looks = if answers { MIRROR_LAG_LOOKS } else { 1 };
        loop {
            looks -= 1;
            let found = match A2aFace::find(&pipeline, &task_id).await {
                Ok(found) => found,
                Err(failure) => {
                    // The message still runs, as a new task: the answer reaches the session either way.
                    tracing::warn!(code = %failure.code, "the continued task could not be looked up");
                    return;
                }
            };
            let task = match &found {
                Found::Journaled(_, kept) | Found::Mirrored(kept) => Some(kept),
                Found::Missing => None,
            };
            if let Some(task) =
                task.filter(|task| task.state() == TaskState::InputRequired || task.state().is_terminal())
            {
                turn.waiting_elsewhere =
                    task.state() == TaskState::InputRequired && task.context_id() == turn.send.context_id;
                return;
            }
            if looks == 0 {
                return;
            }
            tokio::time::sleep(MIRROR_LAG_PAUSE).await;
        }
    }
}

/// The task a journaled background turn's record and steps make (`None`: not an A2A task's record).
fn journaled_task(record: &TurnRecord, frames: &[String]) -> Option<Kept> {
    let mut task = Kept::parse(&record.summary)?;
    for step in frames.iter().filter_map(|frame| Step::from_frame(frame)) {
        task.apply(&step);
    }
    // Ended without a result of its own: cancelled while queued, or failed before it could run.
    match record.status {
        TurnStatus::Cancelled if !task.state().is_terminal() => Some(task.cancelled()),
        TurnStatus::Failed if !task.state().is_terminal() => Some(task.failed()),
        _ => Some(task),
    }
}

/// A streaming method's error: 1.0 answers it at once as JSON (the spec: an immediate error response);
/// 0.3's SDK reads a streaming method's answer only as SSE, so there it is the stream's one event.
fn stream_error(version: Version, id: &Value, error: &RpcError) -> Response<Body> {
    let body = error.to_response(version, id);
    match version {
        Version::V10 => respond::json(body),
        Version::V03 => {
            let mut response = Response::new(Body::from(format!("data: {body}\n\n")));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
            response
        }
    }
}

impl Face for A2aFace {
    type Request = A2aTurn;
    type Stream = A2aStream;
    type Answer = A2aAnswer;

    /// A JSON-RPC error is an answer (status 200), not a refusal: the envelope and the params are the
    /// face's own business.
    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<A2aTurn>, Rejection> {
        let rpc = match RpcRequest::parse(body, caller.headers(), caller.delivered()) {
            Ok(rpc) => rpc,
            Err((id, version, error)) => return Ok(Parsed::Answered(rpc_error(version, &id, &error))),
        };
        let stream = match rpc.method {
            Method::Send => false,
            Method::Stream => true,
            Method::GetTask | Method::CancelTask => {
                let params = match TaskIdParams::parse(&rpc.params) {
                    Ok(params) => params,
                    Err(error) => return Ok(Parsed::Answered(rpc_error(rpc.version, &rpc.id, &error))),
                };
                return Ok(match self.task(&rpc, &params) {
                    Some(answer) => {
                        let answer = answer.unwrap_or_else(|error| error.to_response(rpc.version, &rpc.id));
                        Parsed::Answered(respond::json(answer))
                    }
                    None if self.may_be_elsewhere() => {
                        Parsed::Later(Box::pin(A2aFace::elsewhere(self.pipeline.clone(), rpc, params)))
                    }
                    None => Parsed::Answered(rpc_error(rpc.version, &rpc.id, &RpcError::task_not_found(&params.id))),
                });
            }
            Method::Resubscribe => {
                let params = match TaskIdParams::parse(&rpc.params) {
                    Ok(params) => params,
                    Err(error) => return Ok(Parsed::Answered(stream_error(rpc.version, &rpc.id, &error))),
                };
                let (pipeline, tasks) = (self.pipeline.clone(), self.tasks.clone());
                return Ok(Parsed::Later(Box::pin(A2aFace::resubscribe(
                    pipeline,
                    tasks,
                    rpc,
                    params,
                    caller.deadline(),
                ))));
            }
        };
        let send = match SendParams::parse(rpc.version, &rpc.params) {
            Ok(send) => send,
            Err(error) => return Ok(Parsed::Answered(rpc_error(rpc.version, &rpc.id, &error))),
        };
        // A bearer JWT, else `metadata.user_id`, else the agent-only token (a required JWT stays required).
        let claim = caller.claim(send.user_id.as_deref()).or_agent();
        let ask = send.to_ask(claim);
        Ok(Parsed::Turn(ask, A2aTurn { version: rpc.version, id: rpc.id, send, stream, waiting_elsewhere: false }))
    }

    /// A message naming a task this instance does not hold waiting for input asks the journal and the mirror
    /// (one read; nothing for any other message).
    fn settle<'a>(&'a self, turn: &'a mut A2aTurn) -> Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>> {
        let task_id = turn.send.task_id.as_deref()?;
        if self.tasks.waits_for_input(task_id, &turn.send.context_id) || !self.may_be_elsewhere() {
            return None;
        }
        Some(Box::pin(A2aFace::settle_turn(self.pipeline.clone(), turn)))
    }

    /// A non-blocking `message/send` that starts a task, where background work can be queued. A message
    /// continuing a task runs blocking (the task's id is already taken, and its answer is what the caller
    /// waits for), and so does any send where nothing could keep the task (no store, no FC async queue):
    /// A2A lets the agent answer a non-blocking send with the finished task, which beats refusing it.
    fn background(&self, turn: &A2aTurn) -> bool {
        !turn.stream && turn.send.non_blocking && turn.send.task_id.is_none() && self.pipeline.queues_background()
    }

    fn ticket_prefix(&self) -> &'static str {
        "a2a"
    }

    /// The task as submitted, as the shared store keeps tasks (each version renders it).
    fn queued(&self, turn: &A2aTurn, ticket: &Ticket) -> String {
        let send = &turn.send;
        Kept::submitted(&send.context_id, &send.message_id, &send.text, &ticket.id).to_json()
    }

    /// The body with the context and message ids this read settled (generated ones included).
    fn pinned(&self, turn: &A2aTurn, body: &[u8]) -> Option<Vec<u8>> {
        pinned_body(body, &turn.send)
    }

    /// The `message/send` result: the task, `submitted`.
    fn acknowledge(&self, turn: &A2aTurn, ticket: &Ticket, summary: String) -> Response<Body> {
        let task = Kept::parse(&summary).map(|task| task.render(turn.version, &ticket.id)).unwrap_or(Value::Null);
        respond::json(rpc_result(&turn.id, task_result(turn.version, task)))
    }

    fn recorded(&self, turn: A2aTurn, ticket: &Ticket) -> Option<Box<dyn Journaled>> {
        Some(Box::new(A2aRecorded::new(&ticket.id, &turn.send)))
    }

    /// The task is registered only once the turn is planned; `tasks/cancel` stops it.
    fn reply(&self, turn: A2aTurn, plan: &Plan) -> Reply<A2aStream, A2aAnswer> {
        let A2aTurn { version, id, send, stream, waiting_elsewhere } = turn;
        // An answer to an `input-required` task (of this instance, or one the shared store or the journal
        // knows) goes on in that task; otherwise a new one.
        let (task_id, cancel) = self.tasks.submit(
            send.task_id.as_deref(),
            waiting_elsewhere,
            &send.context_id,
            &send.message_id,
            &send.text,
            &plan.turn_id,
        );
        let tasks = self.tasks.clone();
        let reply = match stream {
            true => Reply::stream(A2aStream::new(version, id, task_id, send.context_id, tasks)),
            false => Reply::answer(A2aAnswer::new(version, id, task_id, send.context_id, tasks)),
        };
        reply.until(Box::pin(cancel))
    }

    /// A [`Rejection`] as a JSON-RPC error in the request's version (0.3 before the envelope is read); 401
    /// and 413 keep their status.
    fn refuse(&self, rejection: Rejection, turn: Option<&A2aTurn>) -> Response<Body> {
        let (version, id) = turn.map_or((Version::V03, &Value::Null), |turn| (turn.version, &turn.id));
        let body = RpcError::rejected(rejection.code, &rejection.message).to_response(version, id);
        let status = match rejection.status {
            status @ (StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE) => status,
            _ => StatusCode::OK,
        };
        respond::respond(status, respond::JSON, body)
    }
}

fn rpc_error(version: Version, id: &Value, error: &RpcError) -> Response<Body> {
    respond::json(error.to_response(version, id))
}
