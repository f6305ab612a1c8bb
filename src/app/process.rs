//! `POST /process`: an AgentRequest in, the turn out as AgentScope SSE (or one JSON response).

use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, ClientGone, Request};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::rejection::json_response;
use super::turn::{Plan, shutting_down};
use super::{App, Rejection, user};
use crate::agent::{AgentEvent, FailureCode, TurnEnd, TurnError};
use crate::identity::Subject;
use crate::protocol::{AgentRequest, ResponseBuilder};

impl App {
    pub(super) async fn process(self: &Arc<Self>, request: Request) -> Response<Body> {
        match self.plan_process(request).await {
            Ok((plan, session_id, true)) => self.stream(plan, session_id),
            Ok((plan, session_id, false)) => {
                let response = self.run_to_response(plan, session_id).await;
                json_response(StatusCode::OK, response.to_json())
            }
            Err(rejection) => rejection.into_response(),
        }
    }

    /// Everything checked before a stream may start: body size, the AgentRequest, the model, the user.
    /// Returns the plan, the session id and whether to stream.
    async fn plan_process(&self, request: Request) -> Result<(Plan, Option<String>, bool), Rejection> {
        let (parts, body, context) = request.into_parts();
        let limit = self.config.max_request_bytes;
        // Content-Type is not checked: curl users forget it, and a body that parses is accepted.
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Err(Rejection::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body exceeds MAX_REQUEST_BYTES ({limit} bytes)"),
                ));
            }
            Err(error) => return Err(Rejection::invalid_request(format!("body: {error}"))),
        };
        let agent_request =
            AgentRequest::from_slice(&bytes).map_err(|error| Rejection::invalid_request(error.to_string()))?;
        let subject = match user::http_subject(&self.config.identity.user_source, &parts.headers, &agent_request) {
            Ok(subject) => subject,
            // The user only matters for the WorkloadAccessToken, which is fetched for the MCP servers alone:
            // without any, an anonymous caller is fine. A configured source's 401 still applies.
            Err(rejection) if rejection.status == StatusCode::BAD_REQUEST && !self.mcp.has_servers() => Subject::Agent,
            Err(rejection) => return Err(rejection),
        };
        let session_id = agent_request.session_id().map(str::to_owned);
        let plan = self.plan(&agent_request, subject, &context)?;
        Ok((plan, session_id, agent_request.stream))
    }

    /// Starts the turn and answers at once with a chunked SSE body that carries its events as they happen.
    fn stream(self: &Arc<Self>, plan: Plan, session_id: Option<String>) -> Response<Body> {
        let mut builder = ResponseBuilder::new(session_id);
        let created = builder.start().iter().map(|event| Bytes::from(event.sse_frame())).collect();
        let (sender, body) = Body::channel_starting_with(created);
        let app = self.clone();
        let task = async move {
            let (events_tx, mut events_rx) = mpsc::channel(64);
            let drain = plan.drain.clone();
            let forward = async {
                while let Some(event) = events_rx.recv().await {
                    for frame in builder.push(&event) {
                        sender.send(frame.sse_frame()).await?;
                    }
                }
                Ok::<_, ClientGone>(())
            };
            let end = tokio::select! {
                _ = async { tokio::join!(app.run_plan(plan, events_tx), forward) } => None,
                // Client gone: dropping the turn here cancels every upstream request at once.
                _ = sender.closed() => {
                    tracing::info!("client disconnected; turn cancelled");
                    return;
                }
                _ = drain.cutoff() => Some(shutting_down()),
            };
            if !builder.is_finished() {
                // The turn's task ended without saying how: say so rather than stop silently.
                let end = end.unwrap_or_else(|| {
                    TurnEnd::Failed(TurnError::new(FailureCode::Internal, "the turn ended without a result"))
                });
                for frame in builder.push(&AgentEvent::Finished(end)) {
                    if sender.send(frame.sse_frame()).await.is_err() {
                        return;
                    }
                }
            }
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
