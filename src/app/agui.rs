//! `POST /ag-ui`: a `RunAgentInput` in, the run out as AG-UI events over SSE. A request refused before the
//! run is a plain `{"error":…}` 4xx (AG-UI has no error shape before `RUN_STARTED`).

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::Response;

use super::{App, invocation, read_body};
use crate::pipeline::http_claim;
use crate::protocol::agui::{AguiStream, RunInput};
use crate::rejection::Rejection;

impl App {
    pub(super) async fn agui(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let mut request = request;
        let bytes = read_body(&mut request, self.max_request_bytes).await?;
        let run = RunInput::from_slice(&bytes)?;
        let claim = http_claim(&self.user_source, request.headers(), run.user_id.as_deref());
        let plan = self.planner.plan(run.to_ask(claim), invocation(request.fc_context(), "ag-ui"))?;
        let mut response = self.pipeline.stream(plan, AguiStream::new(&run));
        // Proxies (nginx and kin) must not hold the events back.
        response.headers_mut().insert("x-accel-buffering", http::HeaderValue::from_static("no"));
        Ok(response)
    }
}
