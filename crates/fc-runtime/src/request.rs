//! What FC asks of the function: a plain [`http::Request`] whose body is a [`Body`], with FC's
//! [`Context`] in its extensions, reached through [`RequestExt`].

use std::future::Future;

use bytes::Bytes;

use crate::{Body, BodyError, Context};

/// One invocation as the function sees it. An HTTP-trigger call (`x-fc-control-path: /http-invoke`, or no
/// control path at all, as in local runs) keeps the method, path, query, headers and body the client sent;
/// an event (`POST /invoke`: a timer, OSS, MNS, EventBridge, `s invoke`, the SDK) is a `POST /invoke`
/// whose body is the payload ([`RequestExt::is_event`]). Either way FC's context is
/// [`RequestExt::fc_context`].
pub type Request = http::Request<Body>;

/// Marks an event invocation in the request's extensions.
#[derive(Clone, Copy)]
struct EventInvocation;

/// FC's part of a [`Request`], the way `lambda_http::RequestExt` reaches Lambda's.
pub trait RequestExt {
    /// What FC says about this invocation.
    ///
    /// # Panics
    ///
    /// If the request has no FC context: every request the runtime hands the function has one; a
    /// request built by hand (in a test) gets one from [`RequestExt::with_fc_context`].
    fn fc_context(&self) -> &Context;

    /// The FC context, `None` for a request built by hand without one.
    fn fc_context_ref(&self) -> Option<&Context>;

    /// The request with `context` as its FC context (for tests, and for middleware that replaces it).
    fn with_fc_context(self, context: Context) -> Self;

    /// Whether this is an event invocation (`POST /invoke`): only the answer's body reaches the caller,
    /// and a non-2xx status is reported to FC as a failed invocation (`x-fc-status: 404`).
    fn is_event(&self) -> bool;

    /// The request as an event invocation (for tests).
    fn into_event(self) -> Self;

    /// Reads the whole body, refusing more than `limit` bytes; the head stays readable. An empty body is
    /// left in its place.
    fn body_bytes(&mut self, limit: usize) -> impl Future<Output = Result<Bytes, BodyError>> + Send;
}

impl RequestExt for Request {
    fn fc_context(&self) -> &Context {
        self.fc_context_ref().expect("an FC context: requests built by hand need RequestExt::with_fc_context")
    }

    fn fc_context_ref(&self) -> Option<&Context> {
        self.extensions().get::<Context>()
    }

    fn with_fc_context(mut self, context: Context) -> Self {
        self.extensions_mut().insert(context);
        self
    }

    fn is_event(&self) -> bool {
        self.extensions().get::<EventInvocation>().is_some()
    }

    fn into_event(mut self) -> Self {
        self.extensions_mut().insert(EventInvocation);
        self
    }

    fn body_bytes(&mut self, limit: usize) -> impl Future<Output = Result<Bytes, BodyError>> + Send {
        std::mem::take(self.body_mut()).bytes_up_to(limit)
    }
}
