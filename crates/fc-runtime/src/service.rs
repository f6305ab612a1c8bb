//! The function as a [`tower_service::Service`]: any service from a [`Request`] to an
//! `http::Response<`[`Body`]`>` runs, middleware (`tower` layers) included, and [`service_fn`] makes one
//! of an async closure, as `lambda_runtime::service_fn` does.

use std::future::Future;
use std::task::{Context, Poll};

pub use tower_service::Service;

/// What a service may fail with. The runtime logs it and answers `500 text/plain`; a function that
/// wants its own error shape answers with it instead of failing.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A [`Service`] from an async function or closure returning `Result<http::Response<Body>, E>`.
///
/// ```
/// use std::convert::Infallible;
/// use fc_runtime::{Body, Request, service_fn};
///
/// let service = service_fn(|request: Request| async move {
///     Ok::<_, Infallible>(http::Response::new(Body::full(format!("{}\n", request.uri().path()))))
/// });
/// # let _ = service;
/// ```
///
/// [`Body`]: crate::Body
pub fn service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

/// See [`service_fn`].
#[derive(Clone, Copy, Debug)]
pub struct ServiceFn<F>(F);

impl<F, Fut, Response, Error, Request> Service<Request> for ServiceFn<F>
where
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Result<Response, Error>>,
{
    type Response = Response;
    type Error = Error;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Fut {
        (self.0)(request)
    }
}
