//! `POST /a2a` (A2A JSON-RPC, 0.3 and 1.0) and the agent card. Every refusal — a bad envelope, a bad
//! field, no user — is a JSON-RPC error in the caller's version (the face's own error shape); only an
//! auth refusal and an oversized body keep their HTTP status, so clients see them as such.

use std::sync::Arc;

use fc_runtime::Body;
use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::pipeline::Plan;
use crate::protocol::a2a::{
    A2aAnswer, A2aStream, CancelError, CardSettings, Method, RpcError, RpcRequest, SendParams, TaskIdParams, Tasks,
    Version, agent_card, rpc_result,
};
use crate::rejection::Rejection;
use crate::respond;

/// The A2A face: its tasks and its card.
pub(super) struct A2aFace {
    /// The A2A tasks this instance ran or is running.
    tasks: Arc<Tasks>,
    card: CardSettings,
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
    pub(super) fn new(config: &Config) -> Self {
        let card = CardSettings {
            name: config.agent.name.clone(),
            public_url: config.agent.a2a_public_url.clone(),
            user_source: config.identity.user_source.clone(),
        };
        A2aFace { tasks: Arc::new(Tasks::default()), card }
    }

    /// `GET /.well-known/agent-card.json` and `/.well-known/agent.json`.
    pub(super) fn card(&self, headers: &HeaderMap) -> Response<Body> {
        respond::json(agent_card(&self.card, headers).to_string())
    }

    /// `tasks/get` and `tasks/cancel`: answered from this instance's tasks.
    fn task(&self, rpc: &RpcRequest) -> Result<String, RpcError> {
        let params = TaskIdParams::parse(&rpc.params)?;
        let task = match rpc.method {
            Method::CancelTask => self.tasks.cancel(&params.id, rpc.version).map_err(|error| match error {
                CancelError::NotFound => RpcError::task_not_found(&params.id),
                CancelError::Finished(state) => RpcError::task_not_cancelable(&params.id, state),
            })?,
            _ => self.tasks.get(&params.id, rpc.version).ok_or_else(|| RpcError::task_not_found(&params.id))?,
        };
        Ok(rpc_result(&rpc.id, task))
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
                let answer = self.task(&rpc).unwrap_or_else(|error| error.to_response(rpc.version, &rpc.id));
                return Ok(Parsed::Answered(respond::json(answer)));
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
    fn reply(&self, turn: A2aTurn, _: &Plan) -> Reply<A2aStream, A2aAnswer> {
        let A2aTurn { version, id, send, stream } = turn;
        let (task_id, cancel) = self.tasks.submit(&send.context_id, &send.message_id, &send.text);
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
