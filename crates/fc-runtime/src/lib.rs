//! A custom-runtime adapter for Alibaba Cloud **Function Compute 3.0**: write the function as one async fn
//! from an [`Invocation`] to an `http::Response<`[`Body`]`>`, and [`run`] serves it the way FC expects.
//!
//! What the adapter does for you:
//!
//! - binds `0.0.0.0` on FC's port ([`Options::port`]) and keeps connections alive for as long as FC holds them;
//! - routes by `x-fc-control-path`: HTTP-trigger calls become [`Invocation::Http`], `POST /invoke` events
//!   become [`Invocation::Event`], and the `/initialize` and `/pre-stop` lifecycle hooks call
//!   [`Handler::initialize`] and [`Handler::pre_stop`];
//! - reads FC's `x-fc-*` headers into a [`Context`] (request id, function, region, the function role's
//!   credentials, deadline), reachable from every request and event through `.context()`;
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
//! use fc_runtime::{Body, Invocation, PayloadError};
//! use http::{Response, StatusCode};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), fc_runtime::Error> {
//!     fc_runtime::run(handle).await
//! }
//!
//! async fn handle(invocation: Invocation) -> Response<Body> {
//!     match invocation {
//!         Invocation::Http(request) => {
//!             let greeting = format!("{} {} (request {})\n", request.method(), request.uri().path(),
//!                 request.context().request_id());
//!             Response::new(Body::full(greeting))
//!         }
//!         // Only an event answer's body reaches the caller; a non-2xx status marks the invocation failed.
//!         Invocation::Event(event) => match event.payload(1024 * 1024).await {
//!             Ok((_context, payload)) => Response::new(Body::full(payload)),
//!             Err(PayloadError::TooLarge { .. }) => status(StatusCode::PAYLOAD_TOO_LARGE),
//!             Err(_unreadable) => status(StatusCode::BAD_REQUEST),
//!         },
//!     }
//! }
//!
//! fn status(status: StatusCode) -> Response<Body> {
//!     let mut response = Response::new(Body::empty());
//!     *response.status_mut() = status;
//!     response
//! }
//! ```
//!
//! `examples/echo.rs` is the same function as a crate example (`cargo run -p fc-runtime --example echo`).
//!
//! # What the adapter answers by itself
//!
//! Everything the function sees is answered by the function. The adapter answers only:
//!
//! - `/initialize`: `200 {"status":"initialized"}` once [`Handler::initialize`] succeeds (the default does
//!   nothing), `500 text/plain` with the error otherwise;
//! - `/pre-stop`: after waiting (at most [`Options::shutdown_grace`]) for the other in-flight requests and
//!   running [`Handler::pre_stop`], `200 {"status":"drained"}` or `{"status":"draining"}` when requests were
//!   still running; `500 text/plain` if the hook failed;
//! - an unknown `x-fc-control-path`: `400 text/plain`;
//! - `/invoke` with a method other than `POST`: a `text/plain` "405 Method Not Allowed" body, reported to FC
//!   as a failed event (`404` + `x-fc-status: 404`) like any other event failure.
//!
//! It never writes JSON error bodies: the shape of an error answer is the function's business.
//!
//! # Logs
//!
//! The adapter emits [`tracing`] events and wraps each invocation in an `invocation` span carrying its
//! `request_id`; installing a subscriber (FC ships stdout to the function's logstore) is up to the function.
#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod body;
mod context;
mod dispatch;
mod drain;
mod handler;
mod in_flight;
mod invocation;
mod options;
mod redacted;
mod server;
mod stall;

pub use body::{Body, BodySender, ClientGone};
pub use context::{Context, RoleCredentials};
pub use drain::Drain;
pub use handler::{Handler, HookError};
pub use invocation::{Event, Invocation, PayloadError, Request};
pub use options::Options;
pub use server::{run, run_with, serve};

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
