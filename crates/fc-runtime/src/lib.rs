//! A custom-runtime adapter for Alibaba Cloud **Function Compute 3.0**, in the shape of
//! `lambda_runtime`/`lambda_http`: the function is any [`tower_service::Service`] from a [`Request`] (a
//! plain `http::Request<`[`Body`]`>`, FC's [`Context`] reached through [`RequestExt`]) to an
//! `http::Response<`[`Body`]`>` — an async closure through [`service_fn`], or a service wrapped in tower
//! layers — and [`run`] serves it the way FC expects.
//!
//! What the runtime does for you:
//!
//! - binds `0.0.0.0` on FC's port ([`Options::port`]) and keeps connections alive for as long as FC holds them;
//! - routes by `x-fc-control-path`: HTTP-trigger calls and `POST /invoke` events go to the service (an
//!   event is marked, [`RequestExt::is_event`]), and the `/initialize` and `/pre-stop` lifecycle hooks run
//!   the hooks registered on the [`Runtime`];
//! - reads FC's `x-fc-*` headers into a [`Context`] (request id, function, region, the function role's
//!   credentials, deadline), [`RequestExt::fc_context`] on every request;
//! - streams a [`Body::channel`] chunk by chunk (`Transfer-Encoding: chunked`, which is how FC recognises a
//!   streaming response) and never sets the response headers FC reserves (`content-length`, `date`, …);
//! - reports an event's outcome in `x-fc-status` (a 2xx answer → `200`, anything else → `404`, FC's
//!   "invocation failed"), since only the body of an event answer reaches the caller;
//! - closes connections whose request head stalls, without timing out idle keep-alive connections;
//! - on SIGTERM or SIGINT stops accepting, lets in-flight requests finish within [`Options::shutdown_grace`],
//!   and tells them when it will give up ([`Context::drain`]).
//!
//! # Example
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use fc_runtime::{Body, BodyError, Request, RequestExt, service_fn};
//! use http::{Response, StatusCode};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), fc_runtime::Error> {
//!     fc_runtime::run(service_fn(handle)).await
//! }
//!
//! async fn handle(mut request: Request) -> Result<Response<Body>, Infallible> {
//!     if !request.is_event() {
//!         let greeting = format!("{} {} (request {})\n", request.method(), request.uri().path(),
//!             request.fc_context().request_id());
//!         return Ok(Response::new(Body::full(greeting)));
//!     }
//!     // Only an event answer's body reaches the caller; a non-2xx status marks the invocation failed.
//!     Ok(match request.body_bytes(1024 * 1024).await {
//!         Ok(payload) => Response::new(Body::full(payload)),
//!         Err(BodyError::TooLarge { .. }) => status(StatusCode::PAYLOAD_TOO_LARGE),
//!         Err(_unreadable) => status(StatusCode::BAD_REQUEST),
//!     })
//! }
//!
//! fn status(status: StatusCode) -> Response<Body> {
//!     let mut response = Response::new(Body::empty());
//!     *response.status_mut() = status;
//!     response
//! }
//! ```
//!
//! The examples (`cargo run -p fc-runtime --example <name>`): `echo` (HTTP and events), `streaming` (a
//! streamed answer that stops when the client leaves or the instance drains), `hooks` (the lifecycle hooks
//! and a tower layer).
//!
//! # What the runtime answers by itself
//!
//! Everything the function sees is answered by the function. The runtime answers only:
//!
//! - `/initialize`: `200 {"status":"initialized"}` once the [`Runtime::on_initialize`] hook succeeds (or
//!   when there is none), `500 text/plain` with the error otherwise;
//! - `/pre-stop`: after waiting (at most [`Options::shutdown_grace`]) for the other in-flight requests and
//!   running the [`Runtime::on_pre_stop`] hook, `200 {"status":"drained"}` or `{"status":"draining"}` when
//!   requests were still running; `500 text/plain` if the hook failed;
//! - an unknown `x-fc-control-path`: `400 text/plain`;
//! - `/invoke` with a method other than `POST`: a `text/plain` "405 Method Not Allowed" body, reported to FC
//!   as a failed event (`404` + `x-fc-status: 404`) like any other event failure;
//! - a service that returns an error: `500 text/plain` with it (logged).
//!
//! It never writes JSON error bodies: the shape of an error answer is the function's business.
//!
//! # Logs
//!
//! The runtime emits [`tracing`] events and wraps each invocation in an `invocation` span carrying its
//! `request_id`; installing a subscriber (FC ships stdout to the function's logstore) is up to the function.
#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod body;
mod context;
mod dispatch;
mod drain;
mod hooks;
mod in_flight;
mod options;
mod redacted;
mod request;
mod server;
mod service;
mod stall;

pub use body::{Body, BodyError, BodySender, ClientGone};
pub use context::{Context, RoleCredentials};
pub use drain::Drain;
pub use hooks::HookError;
pub use options::Options;
pub use request::{Request, RequestExt};
pub use server::{Runtime, run};
pub use service::{BoxError, Service, ServiceFn, service_fn};

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Why the adapter could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound (port in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address the adapter tried to bind.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}
