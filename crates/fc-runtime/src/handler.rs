//! The function as the adapter sees it: one call per invocation, and two optional lifecycle hooks.

use std::future::Future;

use http::Response;

use crate::{Body, Context, Invocation};

/// What a lifecycle hook may fail with; the adapter logs it and answers the hook with a `500`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The function. Any `Fn(Invocation) -> impl Future<Output = http::Response<Body>>` that is
/// `Clone + Send + Sync + 'static` is one, with the default hooks; implement the trait on a type of your
/// own to run code in FC's lifecycle hooks as well.
///
/// ```
/// use fc_runtime::{Body, Context, Handler, HookError, Invocation};
/// use http::Response;
///
/// #[derive(Clone)]
/// struct Function;
///
/// impl Handler for Function {
///     async fn call(&self, _invocation: Invocation) -> Response<Body> {
///         Response::new(Body::full("hello\n"))
///     }
///
///     async fn initialize(&self, context: &Context) -> Result<(), HookError> {
///         tracing::info!(request_id = context.request_id(), "warming caches");
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Clone + Send + Sync + 'static {
    /// Answers one invocation.
    fn call(&self, invocation: Invocation) -> impl Future<Output = Response<Body>> + Send;

    /// FC's `/initialize` hook (only sent when the function configures an initializer): runs once per
    /// instance, before its first invocation, for at most the initializer's timeout (≤ 300 s). `Ok` answers
    /// `200 {"status":"initialized"}`; an error answers `500` and fails the instance start. The default does
    /// nothing.
    fn initialize(&self, context: &Context) -> impl Future<Output = Result<(), HookError>> + Send {
        let _ = context;
        async { Ok(()) }
    }

    /// FC's `/pre-stop` hook (only sent when configured): runs before the instance is destroyed (≤ 90 s),
    /// after the adapter has waited — at most [`crate::Options::shutdown_grace`] — for the other in-flight
    /// requests to finish. The default does nothing.
    fn pre_stop(&self, context: &Context) -> impl Future<Output = Result<(), HookError>> + Send {
        let _ = context;
        async { Ok(()) }
    }
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
