//! A streamed answer (Server-Sent Events), the way a long-running turn is sent: the response head leaves
//! at once, each event is written and flushed as it is produced, the producer stops when the client goes
//! away ([`fc_runtime::ClientGone`]), and when the instance drains it ends the stream with a last event of
//! its own instead of being cut off ([`fc_runtime::Context::drain`]).
//! `cargo run -p fc-runtime --example streaming`, then `curl -N localhost:9000/`.

use std::convert::Infallible;
use std::time::Duration;

use fc_runtime::{Body, Request, RequestExt, service_fn};
use http::{HeaderValue, Response, header};

#[tokio::main]
async fn main() -> Result<(), fc_runtime::Error> {
    fc_runtime::run(service_fn(ticks)).await
}

async fn ticks(request: Request) -> Result<Response<Body>, Infallible> {
    let (sender, body) = Body::channel();
    let drain = request.fc_context().drain().clone();
    let deadline = request.fc_context().deadline();
    // The stream outlives the handler: the handler returns the head, a task produces the body.
    tokio::spawn(async move {
        for tick in 0u32.. {
            tokio::select! {
                _ = drain.cutoff() => {
                    let _ = sender.send("data: {\"done\":\"the instance is shutting down\"}\n\n").await;
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if sender.send(format!("data: {{\"tick\":{tick}}}\n\n")).await.is_err() {
                // The client went away: nobody reads any more, stop the work.
                return;
            }
        }
    });
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    Ok(response)
}
