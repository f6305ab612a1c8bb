//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON response).

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::App;
use super::turn::Plan;
use super::user;
use crate::fc::{self, Body, FcContext};
use crate::protocol::{AgentRequest, ResponseBuilder};

impl App {
    pub(super) async fn process(self: &Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let Some(context) = parts.extensions.get::<FcContext>().cloned() else {
            return fc::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "no invocation context",
            );
        };
        let limit = self.config.max_request_bytes;
        // Content-Type is not checked: curl users forget it, and a body that parses is accepted.
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return fc::error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    &format!("the body exceeds MAX_REQUEST_BYTES ({limit} bytes)"),
                );
            }
            Err(error) => {
                return fc::error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("body: {error}"),
                );
            }
        };
        let agent_request = match AgentRequest::from_slice(&bytes) {
            Ok(request) => request,
            Err(error) => {
                return fc::error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &error.to_string(),
                );
            }
        };
        let model = match self.pick_model(&agent_request) {
            Ok(model) => model,
            Err(message) => {
                return fc::error_response(StatusCode::BAD_REQUEST, "invalid_request", &message);
            }
        };
        let subject = match user::http_subject(
            &self.config.identity.user_source,
            &parts.headers,
            &agent_request,
        ) {
            Ok(subject) => subject,
            Err(refusal) => {
                return fc::error_response(refusal.status, refusal.code, &refusal.message);
            }
        };
        let session_id = agent_request.session_id().map(str::to_owned);
        let plan = Plan {
            subject,
            role: context.credentials.clone(),
            turn: self.turn_for(&agent_request, model, context.deadline),
        };
        if !agent_request.stream {
            let response = self.run_to_response(plan, session_id).await;
            return fc::json_response(StatusCode::OK, response.to_json());
        }
        self.stream(plan, session_id)
    }

    /// The request's `model`, if the configuration allows callers to choose one.
    pub(super) fn pick_model(&self, request: &AgentRequest) -> Result<Option<String>, String> {
        match request.model.as_deref().filter(|m| !m.is_empty()) {
            None => Ok(None),
            Some(model) if self.config.model.allowed_models.iter().any(|m| m == model) => {
                Ok(Some(model.to_owned()))
            }
            Some(_) if self.config.model.allowed_models.is_empty() => Err(
                "model: choosing a model is not enabled (DASHSCOPE_ALLOWED_MODELS is empty)"
                    .to_owned(),
            ),
            Some(_) => Err(format!(
                "model: must be one of {}",
                self.config.model.allowed_models.join(", ")
            )),
        }
    }

    /// Starts the turn and answers at once with a chunked SSE body that carries its events as they happen.
    fn stream(self: &Arc<Self>, plan: Plan, session_id: Option<String>) -> Response<Body> {
        let (sender, body) = Body::channel();
        let app = self.clone();
        let task = async move {
            let mut builder = ResponseBuilder::new(session_id);
            let (events_tx, mut events_rx) = mpsc::channel(64);
            let forward = async {
                for event in builder.start() {
                    sender.send(event.sse_frame()).await?;
                }
                while let Some(event) = events_rx.recv().await {
                    for frame in builder.push(&event) {
                        sender.send(frame.sse_frame()).await?;
                    }
                }
                if !builder.is_finished() {
                    // The turn's task ended without saying how: say so rather than stop silently.
                    let end = crate::agent::TurnEnd::Failed(crate::agent::TurnError::new(
                        crate::agent::FailureCode::Internal,
                        "the turn ended without a result",
                    ));
                    for frame in builder.push(&crate::agent::AgentEvent::Finished(end)) {
                        sender.send(frame.sse_frame()).await?;
                    }
                }
                Ok::<_, fc::ClientGone>(())
            };
            tokio::select! {
                _ = async { tokio::join!(app.run_plan(plan, events_tx), forward) } => {}
                // Client gone: dropping the turn here cancels every upstream request at once.
                _ = sender.closed() => tracing::info!("client disconnected; turn cancelled"),
            }
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
