//! `POST /compatible-mode/v1/responses`: a Responses API request in, the turn out as the official event
//! stream (or one Response object). Refusals are in OpenAI's error shape.

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::Response;

use super::{App, read_body};
use crate::protocol::openai::rejection_response;
use crate::protocol::responses::{ResponsesAnswer, ResponsesRequest, ResponsesStream};
use crate::rejection::Rejection;

impl App {
    pub(super) async fn responses(self: &Arc<Self>, request: Request) -> Response<Body> {
        self.responses_turn(request).await.unwrap_or_else(rejection_response)
    }

    async fn responses_turn(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let mut request = request;
        let bytes = read_body(&mut request, self.max_request_bytes).await?;
        let ResponsesRequest { turn, stream, echo } = ResponsesRequest::from_slice(&bytes)?;
        let (plan, model) = self.openai_plan(request.headers(), request.fc_context(), "responses", turn)?;
        Ok(if stream {
            self.pipeline.stream(plan, ResponsesStream::new(model, echo))
        } else {
            self.pipeline.answer(plan, ResponsesAnswer::new(model, echo)).await
        })
    }
}
