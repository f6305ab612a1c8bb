//! Routing by `x-fc-control-path`: HTTP passthrough, events, lifecycle hooks, and the runtime's own few
//! answers.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument;

use crate::hooks::{Hook, Hooks};
use crate::in_flight::InFlight;
use crate::service::{BoxError, Service};
use crate::{Body, Context, Drain, Options, Request, RequestExt};

/// What every connection of one server shares.
pub(crate) struct Shared<S> {
    service: S,
    hooks: Hooks,
    options: Options,
    drain: Drain,
    pub(crate) in_flight: Arc<InFlight>,
}

impl<S> Shared<S> {
    pub(crate) fn new(service: S, hooks: Hooks, options: Options, drain: Drain) -> Self {
        Shared { service, hooks, options, drain, in_flight: Arc::default() }
    }
}

/// The function's side of a runtime: a clonable service from a [`Request`] to a response.
pub(crate) trait Function:
    Service<Request, Response = Response<Body>, Error: Into<BoxError>, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Function for S where
    S: Service<Request, Response = Response<Body>, Error: Into<BoxError>, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

pub(crate) async fn dispatch<S: Function>(req: http::Request<Incoming>, shared: Arc<Shared<S>>) -> Response<Body> {
    let context = Context::from_headers(req.headers(), shared.options.default_timeout).with_drain(shared.drain.clone());
    let span = tracing::info_span!("invocation", request_id = %context.request_id());
    let control_path = req.headers().get("x-fc-control-path").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let req = req.map(Body::incoming);
    async move {
        match control_path.as_deref() {
            None | Some("/http-invoke") => call(&shared.service, req.with_fc_context(context)).await,
            Some("/invoke") => invoke(req, context, &shared).await,
            Some("/initialize") => initialize(context, shared.hooks.initialize.as_ref()).await,
            Some("/pre-stop") => pre_stop(context, &shared).await,
            Some(other) => plain_text(StatusCode::BAD_REQUEST, format!("unknown x-fc-control-path {other:?}\n")),
        }
    }
    .instrument(span)
    .await
}

/// One call of the function: a clone of the service (each request has its own, as tower expects of a
/// service shared between connections), ready, then called. Its error is logged and answered `500`.
async fn call<S: Function>(service: &S, request: Request) -> Response<Body> {
    let mut service = service.clone();
    // Each error becomes a `BoxError` at once: the service's own error type need not be `Send`, so it
    // must not live across an await.
    if let Err(error) = std::future::poll_fn(|cx| service.poll_ready(cx)).await {
        return failed(error.into());
    }
    match service.call(request).await {
        Ok(response) => response,
        Err(error) => failed(error.into()),
    }
}

fn failed(error: BoxError) -> Response<Body> {
    tracing::error!(%error, "the function failed");
    plain_text(StatusCode::INTERNAL_SERVER_ERROR, format!("the function failed: {error}\n"))
}

async fn invoke<S: Function>(req: Request, context: Context, shared: &Shared<S>) -> Response<Body> {
    if req.method() != Method::POST {
        return event_failure(plain_text(StatusCode::METHOD_NOT_ALLOWED, "events are POST /invoke\n"));
    }
    let response = call(&shared.service, req.with_fc_context(context).into_event()).await;
    event_result(response).await
}

async fn initialize(context: Context, hook: Option<&Hook>) -> Response<Body> {
    let ran = match hook {
        Some(hook) => hook.run(context).await,
        None => Ok(()),
    };
    match ran {
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

async fn pre_stop<S>(context: Context, shared: &Shared<S>) -> Response<Body> {
    // Our own request is in flight too; wait for the others, bounded by the grace period.
    let drained =
        tokio::time::timeout(shared.options.shutdown_grace, shared.in_flight.wait_until_at_most(1)).await.is_ok();
    if let Some(hook) = &shared.hooks.pre_stop
        && let Err(error) = hook.run(context).await
    {
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
        // Only a body the function passed on from a request can fail; the answer is lost with it.
        Err(error) => {
            tracing::error!(%error, "the event answer's body failed");
            return event_failure(plain_text(StatusCode::BAD_GATEWAY, format!("the answer failed: {error}\n")));
        }
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
