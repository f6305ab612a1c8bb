//! The Function Compute 3.0 custom-runtime adapter. It knows HTTP and FC, nothing about agents.
//!
//! Like `lambda_http`, the whole contract is one call: [`run`]`(options, handler)`, where the handler is an
//! async fn from an [`Invocation`] to a response. The adapter binds `0.0.0.0:<port>`, keeps connections
//! alive, routes by `x-fc-control-path` (HTTP passthrough, `/invoke` events with `x-fc-status`, the
//! `/initialize` and `/pre-stop` hooks), puts an [`FcContext`] in every request, streams [`Body`] chunks
//! as they are produced, and drains in-flight requests on SIGTERM.

mod body;
mod context;
mod dispatch;
mod drain;
mod log;
mod server;

pub use body::{Body, BodySender, ClientGone};
pub use context::{FcContext, RoleCredentials};
pub use dispatch::{Event, Handler, Invocation, error_response, json_response};
pub use drain::Drain;
pub use log::{init_logging, init_logging_for_humans};
pub use server::{RunOptions, run, serve};

/// Why the adapter could not serve.
#[derive(Debug, thiserror::Error)]
pub enum FcError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
}
