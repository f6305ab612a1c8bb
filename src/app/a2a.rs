//! `POST /a2a` (A2A JSON-RPC, 0.3 and 1.0) and the agent card. Every refusal — a bad envelope, a bad
//! field, no user — is a JSON-RPC error in the caller's version (the face's own error shape); only an
//! auth refusal and an oversized body keep their HTTP status, so clients see them as such.

use std::sync::Arc;

use fc_runtime::Body;
use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::pipeline::{Pipeline, Plan};
use crate::protocol::a2a::{
    A2aAnswer, A2aStream, CancelError, CardSettings, Kept, Method, RpcError, RpcRequest, SendParams, TASK_TTL,
    TaskIdParams, Tasks, Version, agent_card, kept_name, rpc_result,
};
use crate::rejection::Rejection;
use crate::respond;

/// The A2A face: its tasks and its card.
pub(super) struct A2aFace {
    /// The A2A tasks this instance ran or is running (mirrored to a shared store).
    tasks: Arc<Tasks>,
    card: CardSettings,
    /// For a task another instance runs: its stop (`Pipeline::cancel`) and its mirrored record.
    pipeline: Arc<Pipeline>,
}

/// A `message/send` or `message/stream` read: what its answer repeats and the task it becomes.
pub(super) struct A2aTurn {
    version: Version,
    /// The JSON-RPC id, echoed in every answer.
    id: Value,
    send: SendParams,
    stream: bool,
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

    /// `tasks/get` and `tasks/cancel`: answered from this instance's tasks; `None` when it has no such task.
    fn task(&self, rpc: &RpcRequest, params: &TaskIdParams) -> Option<Result<String, RpcError>> {
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

    /// The same for a task this instance does not know: answered from the shared store's mirror, a
    /// cancel sent to the instance running the turn (`Pipeline::cancel`).
    async fn elsewhere(pipeline: Arc<Pipeline>, rpc: RpcRequest, params: TaskIdParams) -> Response<Body> {
        let not_found = || RpcError::task_not_found(&params.id).to_response(rpc.version, &rpc.id);
        let Some(store) = pipeline.shared_store() else { return respond::json(not_found()) };
        let kept = match store.kept(&kept_name(&params.id)).await {
            Ok(kept) => kept.as_deref().and_then(Kept::parse),
            Err(error) => {
                let failure = crate::failure::Failure::session(&error);
                let answer =
                    RpcError::rejected(failure.code.as_str(), &failure.message).to_response(rpc.version, &rpc.id);
                return respond::json(answer);
            }
        };
        let Some(kept) = kept else { return respond::json(not_found()) };
        if rpc.method != Method::CancelTask {
            return respond::json(rpc_result(&rpc.id, kept.render(rpc.version, &params.id)));
        }
        if kept.state().is_terminal() {
            let answer = RpcError::task_not_cancelable(&params.id, kept.state_word()).to_response(rpc.version, &rpc.id);
            return respond::json(answer);
        }
        if let Err(failure) = pipeline.cancel(&kept.turn_id).await {
            let answer = RpcError::rejected(failure.code.as_str(), &failure.message).to_response(rpc.version, &rpc.id);
            return respond::json(answer);
        }
        // The instance running it mirrors the cancelled ending; until then the record says so already.
        let cancelled = kept.cancelled();
        if let Err(error) = store.keep(&kept_name(&params.id), cancelled.to_json(), TASK_TTL).await {
            tracing::warn!(error = %error, "the cancelled task was not mirrored");
        }
        respond::json(rpc_result(&rpc.id, cancelled.render(rpc.version, &params.id)))
    }
}

impl Face for A2aFace {
    type Request = A2aTurn;
    type Stream = A2aStream;
    type Answer = A2aAnswer;

    /// A JSON-RPC error is an answer (status 200), not a refusal: the envelope and the params are the
    /// face's own business.
    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<A2aTurn>, Rejection> {
        let rpc = match RpcRequest::parse(body, caller.headers()) {
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
                    None if self.tasks.shared() => {
                        Parsed::Later(Box::pin(A2aFace::elsewhere(self.pipeline.clone(), rpc, params)))
                    }
                    None => Parsed::Answered(rpc_error(rpc.version, &rpc.id, &RpcError::task_not_found(&params.id))),
                });
            }
        };
        let send = match SendParams::parse(rpc.version, &rpc.params) {
            Ok(send) => send,
            Err(error) => return Ok(Parsed::Answered(rpc_error(rpc.version, &rpc.id, &error))),
        };
        // A bearer JWT, else `metadata.user_id`, else the agent-only token (a required JWT stays required).
        let claim = caller.claim(send.user_id.as_deref()).or_agent();
        let ask = send.to_ask(claim);
        Ok(Parsed::Turn(ask, A2aTurn { version: rpc.version, id: rpc.id, send, stream }))
    }

    /// The task is registered only once the turn is planned; `tasks/cancel` stops it.
    fn reply(&self, turn: A2aTurn, plan: &Plan) -> Reply<A2aStream, A2aAnswer> {
        let A2aTurn { version, id, send, stream } = turn;
        // An answer to an `input-required` task of this instance goes on in that task; otherwise a new one.
        let (task_id, cancel) =
            self.tasks.submit(send.task_id.as_deref(), &send.context_id, &send.message_id, &send.text, &plan.turn_id);
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
