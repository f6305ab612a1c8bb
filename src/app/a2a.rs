//! `POST /a2a` (A2A JSON-RPC, 0.3 and 1.0) and the agent card. Every refusal — a bad envelope, a bad
//! field, no user — is a JSON-RPC error in the caller's version (the face's own error shape); only an
//! auth refusal and an oversized body keep their HTTP status, so clients see them as such.

use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, Request, RequestExt};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::Value;

use super::{App, invocation, json_response, read_body};
use crate::pipeline::http_claim;
use crate::protocol::a2a::{
    A2aAnswer, A2aStream, CancelError, Method, RpcError, RpcRequest, SendParams, TaskIdParams, Version, agent_card,
    rpc_result,
};
use crate::rejection::Rejection;

impl App {
    pub(super) async fn a2a(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let mut request = request;
        let bytes = match read_body(&mut request, self.max_request_bytes).await {
            Ok(bytes) => bytes,
            Err(rejection) => return Ok(refused(Version::V03, &Value::Null, rejection)),
        };
        let rpc = match RpcRequest::parse(&bytes, request.headers()) {
            Ok(rpc) => rpc,
            Err((id, version, error)) => return Ok(rpc_error(version, &id, &error)),
        };
        let (version, id) = (rpc.version, rpc.id.clone());
        let fail = |error: RpcError| Ok(rpc_error(version, &id, &error));
        match rpc.method {
            Method::Send | Method::Stream => {
                let send = match SendParams::parse(version, &rpc.params) {
                    Ok(send) => send,
                    Err(error) => return fail(error),
                };
                // A bearer JWT, else `metadata.user_id`, else the agent-only token (a required JWT stays required).
                let claim = http_claim(&self.user_source, request.headers(), send.user_id.as_deref()).or_agent();
                let plan = match self.planner.plan(send.to_ask(claim), invocation(request.fc_context(), "a2a")) {
                    Ok(plan) => plan,
                    Err(rejection) => return Ok(refused(version, &id, rejection)),
                };
                let (task_id, cancel) = self.tasks.submit(&send.context_id, &send.message_id, &send.text);
                let tasks = self.tasks.clone();
                Ok(if rpc.method == Method::Stream {
                    let renderer = A2aStream::new(version, id, task_id, send.context_id, tasks);
                    self.pipeline.stream_until(plan, renderer, cancel)
                } else {
                    let renderer = A2aAnswer::new(version, id, task_id, send.context_id, tasks);
                    self.pipeline.answer_until(plan, renderer, cancel).await
                })
            }
            Method::GetTask => {
                let params = match TaskIdParams::parse(&rpc.params) {
                    Ok(params) => params,
                    Err(error) => return fail(error),
                };
                match self.tasks.get(&params.id, version) {
                    Some(task) => Ok(json_response(rpc_result(&id, task))),
                    None => fail(RpcError::task_not_found(&params.id)),
                }
            }
            Method::CancelTask => {
                let params = match TaskIdParams::parse(&rpc.params) {
                    Ok(params) => params,
                    Err(error) => return fail(error),
                };
                match self.tasks.cancel(&params.id, version) {
                    Ok(task) => Ok(json_response(rpc_result(&id, task))),
                    Err(CancelError::NotFound) => fail(RpcError::task_not_found(&params.id)),
                    Err(CancelError::Finished(state)) => fail(RpcError::task_not_cancelable(&params.id, state)),
                }
            }
        }
    }

    /// `GET /.well-known/agent-card.json` and `/.well-known/agent.json`.
    pub(super) fn agent_card(&self, request: &Request) -> Response<Body> {
        json_response(agent_card(&self.card, request.headers()).to_string())
    }
}

fn rpc_error(version: Version, id: &Value, error: &RpcError) -> Response<Body> {
    json_response(error.to_response(version, id))
}

/// A [`Rejection`] as a JSON-RPC error; 401 and 413 keep their status.
fn refused(version: Version, id: &Value, rejection: Rejection) -> Response<Body> {
    let body = RpcError::rejected(rejection.code, &rejection.message).to_response(version, id);
    let mut response = Response::new(Body::full(Bytes::from(body)));
    if matches!(rejection.status, StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE) {
        *response.status_mut() = rejection.status;
    }
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
