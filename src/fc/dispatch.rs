//! Routing by `x-fc-control-path`: HTTP passthrough, events, lifecycle hooks.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tracing::Instrument;

use super::server::{InFlight, RunOptions};
use super::{Body, Drain, FcContext};

/// What FC asks of the function.
pub enum Invocation {
    /// An HTTP trigger call (or a local run): method, path, headers and body as the client sent them.
    /// The [`FcContext`] is in the request's extensions.
    Http(Request<Incoming>),
    /// `POST /invoke`: an event or API invocation. Only the response body reaches the caller; a
    /// non-2xx status is reported to FC as a failed invocation (`x-fc-status: 404`).
    Event(Event),
}

/// The bytes of an event invocation and its context.
pub struct Event {
    pub payload: Bytes,
    pub context: FcContext,
}

/// The function: any async fn from an [`Invocation`] to a response.
pub trait Handler: Clone + Send + Sync + 'static {
    fn call(&self, invocation: Invocation) -> impl Future<Output = Response<Body>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Invocation) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    fn call(&self, invocation: Invocation) -> impl Future<Output = Response<Body>> + Send {
        self(invocation)
    }
}

pub(super) struct Shared<H> {
    handler: H,
    options: RunOptions,
    drain: Drain,
    pub(super) in_flight: Arc<InFlight>,
}

impl<H> Shared<H> {
    pub(super) fn new(handler: H, options: RunOptions, drain: Drain) -> Self {
        Shared { handler, options, drain, in_flight: Arc::default() }
    }
}

pub(super) async fn dispatch<H: Handler>(mut req: Request<Incoming>, shared: Arc<Shared<H>>) -> Response<Body> {
    let mut context = FcContext::from_headers(req.headers(), shared.options.default_timeout);
    context.drain = shared.drain.clone();
    let span = tracing::info_span!("invocation", request_id = %context.request_id);
    let control_path = req.headers().get("x-fc-control-path").and_then(|v| v.to_str().ok()).map(str::to_owned);
    async move {
        match control_path.as_deref() {
            None | Some("/http-invoke") => {
                req.extensions_mut().insert(context);
                shared.handler.call(Invocation::Http(req)).await
            }
            Some("/invoke") => invoke(req, context, &shared).await,
            Some("/initialize") => {
                tracing::info!("initialize hook");
                json_response(StatusCode::OK, r#"{"status":"initialized"}"#)
            }
            Some("/pre-stop") => {
                // Our own request is in flight too; wait for the others, bounded by the grace period.
                let drained =
                    tokio::time::timeout(shared.options.shutdown_grace, shared.in_flight.wait_until_at_most(1))
                        .await
                        .is_ok();
                tracing::info!(drained, "pre-stop hook");
                json_response(
                    StatusCode::OK,
                    if drained { r#"{"status":"drained"}"# } else { r#"{"status":"draining"}"# },
                )
            }
            Some(other) => error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("unknown x-fc-control-path {other:?}"),
            ),
        }
    }
    .instrument(span)
    .await
}

async fn invoke<H: Handler>(req: Request<Incoming>, context: FcContext, shared: &Shared<H>) -> Response<Body> {
    if req.method() != Method::POST {
        return event_failure(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "events are POST /invoke",
        ));
    }
    let limit = shared.options.max_event_bytes;
    let payload = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return event_failure(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("event body exceeds {limit} bytes"),
            ));
        }
        Err(error) => {
            return event_failure(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("could not read the event body: {error}"),
            ));
        }
    };
    let response = shared.handler.call(Invocation::Event(Event { payload, context })).await;
    event_result(response).await
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

/// A JSON response with the given body text.
pub fn json_response(status: StatusCode, json: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::full(json));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The error shape of DESIGN.md: `{"error":{"code":"…","message":"…"}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    json_response(status, body.to_string())
}
