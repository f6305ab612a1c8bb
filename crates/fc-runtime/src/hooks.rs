//! FC's lifecycle hooks, `/initialize` and `/pre-stop`: code of the function's own, registered on the
//! [`crate::Runtime`], that FC runs once per instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Context;

/// What a lifecycle hook may fail with; the runtime logs it and answers the hook with a `500`.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type HookFuture = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>>;

/// One registered hook: an async closure over the hook request's context.
#[derive(Clone)]
pub(crate) struct Hook(Arc<dyn Fn(Context) -> HookFuture + Send + Sync>);

impl Hook {
    pub(crate) fn new<F, Fut>(hook: F) -> Hook
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        Hook(Arc::new(move |context| Box::pin(hook(context))))
    }

    pub(crate) async fn run(&self, context: Context) -> Result<(), HookError> {
        (self.0)(context).await
    }
}

/// The hooks a runtime runs; a missing one answers its request as if it had succeeded.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) initialize: Option<Hook>,
    pub(crate) pre_stop: Option<Hook>,
}
