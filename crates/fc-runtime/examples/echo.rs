//! The smallest useful FC function: HTTP calls get their method, path and body back; events get their
//! payload back. `cargo run -p fc-runtime --example echo`, then
//! `curl -d hi localhost:9000/some/path` or
//! `curl -d '{"a":1}' -H 'x-fc-control-path: /invoke' localhost:9000/invoke`.

use fc_runtime::{Body, Invocation, PayloadError};
use http::{Response, StatusCode};
use http_body_util::BodyExt;

/// Events bigger than this are refused (FC's own cap for synchronous events is 32 MiB).
const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> Result<(), fc_runtime::Error> {
    fc_runtime::run(echo).await
}

async fn echo(invocation: Invocation) -> Response<Body> {
    match invocation {
        Invocation::Http(request) => {
            let (parts, body, _context) = request.into_parts();
            let Ok(body) = body.collect().await else { return status(StatusCode::BAD_REQUEST) };
            let head = format!("{} {}\n", parts.method, parts.uri.path());
            Response::new(Body::full([head.as_bytes(), &body.to_bytes()].concat()))
        }
        Invocation::Event(event) => match event.payload(MAX_PAYLOAD_BYTES).await {
            Ok((_context, payload)) => Response::new(Body::full(payload)),
            // Any non-2xx answer makes FC record the invocation as failed.
            Err(PayloadError::TooLarge { .. }) => status(StatusCode::PAYLOAD_TOO_LARGE),
            Err(_unreadable) => status(StatusCode::BAD_REQUEST),
        },
    }
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}
