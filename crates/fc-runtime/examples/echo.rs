//! The smallest useful FC function: HTTP calls get their method, path and body back; events get their
//! payload back. `cargo run -p fc-runtime --example echo`, then
//! `curl -d hi localhost:9000/some/path` or
//! `curl -d '{"a":1}' -H 'x-fc-control-path: /invoke' localhost:9000/invoke`.

use std::convert::Infallible;

use fc_runtime::{Body, BodyError, Request, RequestExt, service_fn};
use http::{Response, StatusCode};

/// Bodies bigger than this are refused (FC's own cap for synchronous events is 32 MiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> Result<(), fc_runtime::Error> {
    fc_runtime::run(service_fn(echo)).await
}

async fn echo(mut request: Request) -> Result<Response<Body>, Infallible> {
    let body = match request.body_bytes(MAX_BODY_BYTES).await {
        Ok(body) => body,
        // For an event, any non-2xx answer makes FC record the invocation as failed.
        Err(BodyError::TooLarge { .. }) => return Ok(status(StatusCode::PAYLOAD_TOO_LARGE)),
        Err(_unreadable) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    if request.is_event() {
        // Only an event answer's body reaches the caller.
        return Ok(Response::new(Body::full(body)));
    }
    let head =
        format!("{} {} (request {})\n", request.method(), request.uri().path(), request.fc_context().request_id());
    Ok(Response::new(Body::full([head.as_bytes(), &body].concat())))
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
