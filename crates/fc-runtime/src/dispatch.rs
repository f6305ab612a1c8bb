//! Routing by `x-fc-control-path`: HTTP passthrough, events, lifecycle hooks, and the adapter's own few
//! answers.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument;

use crate::in_flight::InFlight;
use crate::{Body, Context, Drain, Event, Handler, Invocation, Options, Request};

/// What every connection of one server shares.
pub(crate) struct Shared<H> {
    handler: H,
    options: Options,
    drain: Drain,
    pub(crate) in_flight: Arc<InFlight>,
}

impl<H> Shared<H> {
    pub(crate) fn new(handler: H, options: Options, drain: Drain) -> Self {
        Shared { handler, options, drain, in_flight: Arc::default() }
    }
}

pub(crate) async fn dispatch<H: Handler>(req: http::Request<Incoming>, shared: Arc<Shared<H>>) -> Response<Body> {
    let context = Context::from_headers(req.headers(), shared.options.default_timeout).with_drain(shared.drain.clone());
    let span = tracing::info_span!("invocation", request_id = %context.request_id());
    let control_path = req.headers().get("x-fc-control-path").and_then(|v| v.to_str().ok()).map(str::to_owned);
    async move {
        match control_path.as_deref() {
            None | Some("/http-invoke") => shared.handler.call(Invocation::Http(Request::new(req, context))).await,
            Some("/invoke") => invoke(req, context, &shared).await,
            Some("/initialize") => initialize(&context, &shared).await,
            Some("/pre-stop") => pre_stop(&context, &shared).await,
            Some(other) => plain_text(StatusCode::BAD_REQUEST, format!("unknown x-fc-control-path {other:?}\n")),
        }
    }
    .instrument(span)
    .await
}

async fn invoke<H: Handler>(req: http::Request<Incoming>, context: Context, shared: &Shared<H>) -> Response<Body> {
    if req.method() != Method::POST {
        return event_failure(plain_text(StatusCode::METHOD_NOT_ALLOWED, "events are POST /invoke\n"));
    }
    let event = Event::new(req.into_body(), context);
    let response = shared.handler.call(Invocation::Event(event)).await;
    event_result(response).await
}

async fn initialize<H: Handler>(context: &Context, shared: &Shared<H>) -> Response<Body> {
    match shared.handler.initialize(context).await {
        Ok(()) => {
            tracing::info!("initialize hook");
            json(r#"{"status":"initialized"}"#)
        }
        Err(error) => {
            tracing::error!(%error, "initialize hook failed");
            plain_text(StatusCode::INTERNAL_SERVER_ERROR, format!("initialize failed: {error}\n"))
        }
    }
}

async fn pre_stop<H: Handler>(context: &Context, shared: &Shared<H>) -> Response<Body> {
    // Our own request is in flight too; wait for the others, bounded by the grace period.
    let drained =
        tokio::time::timeout(shared.options.shutdown_grace, shared.in_flight.wait_until_at_most(1)).await.is_ok();
    if let Err(error) = shared.handler.pre_stop(context).await {
        tracing::error!(%error, drained, "pre-stop hook failed");
        return plain_text(StatusCode::INTERNAL_SERVER_ERROR, format!("pre-stop failed: {error}\n"));
    }
    tracing::info!(drained, "pre-stop hook");
    json(if drained { r#"{"status":"drained"}"# } else { r#"{"status":"draining"}"# })
}

/// FC only forwards an event invocation's body; success or failure travels in `x-fc-status`.
async fn event_result(response: Response<Body>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut out = Response::new(Body::full(bytes));
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
    }
    if parts.status.is_success() { event_success(out) } else { event_failure(out) }
}

fn event_success(mut response: Response<Body>) -> Response<Body> {
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert("x-fc-status", HeaderValue::from_static("200"));
    response
}

fn event_failure(mut response: Response<Body>) -> Response<Body> {
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert("x-fc-status", HeaderValue::from_static("404"));
    response
}

/// The lifecycle hooks' status answers.
fn json(body: &'static str) -> Response<Body> {
    with_content_type(StatusCode::OK, Body::full(body), "application/json")
}

/// The adapter's own refusals: short and plain, since the shape of the function's error answers is the
/// function's business.
fn plain_text(status: StatusCode, message: impl Into<Bytes>) -> Response<Body> {
    with_content_type(status, Body::full(message), "text/plain; charset=utf-8")
}

fn with_content_type(status: StatusCode, body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
