//! `POST /ag-ui`: a `RunAgentInput` in, the run out as AG-UI events over SSE. A request refused before the
//! run is a plain `{"error":…}` 4xx (AG-UI has no error shape before `RUN_STARTED`).

use fc_runtime::Body;
use http::{HeaderMap, HeaderValue, Response};

use super::face::{Caller, Face, Parsed, Reply};
use crate::pipeline::Plan;
use crate::protocol::agui::{AguiStream, RunInput};
use crate::rejection::Rejection;

/// The AG-UI face: always streamed.
pub(super) struct AguiFace;

impl Face for AguiFace {
    type Request = RunInput;
    type Stream = AguiStream;
    type Answer = AguiStream;

    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<RunInput>, Rejection> {
        let run = RunInput::from_slice(body)?;
        let claim = caller.claim(run.user_id.as_deref());
        Ok(Parsed::Turn(run.to_ask(claim), run))
    }

    fn reply(&self, run: RunInput, _: &Plan) -> Reply<AguiStream, AguiStream> {
        Reply::stream(AguiStream::new(&run))
    }

    fn refuse(&self, rejection: Rejection, _: Option<&RunInput>) -> Response<Body> {
        rejection.into_response()
    }

    /// Proxies (nginx and kin) must not hold the events back.
    fn extra_headers(&self, headers: &mut HeaderMap) {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
}
