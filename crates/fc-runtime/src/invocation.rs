//! What FC asks of the function: an HTTP request or an event, each with its [`Context`].

use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::Context;

/// One invocation, as routed by FC's `x-fc-control-path`.
// Built once per invocation and moved straight into the handler: boxing the request would cost an
// allocation on every HTTP call to save a copy of a few hundred bytes on events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Invocation {
    /// An HTTP-trigger call (`x-fc-control-path: /http-invoke`, or no control path at all, as in local runs):
    /// method, path, query, headers and body as the client sent them. The answer goes back to the client.
    Http(Request),
    /// `POST /invoke`: an event or API invocation (timer, OSS, MNS, EventBridge, `s invoke`, the SDK). Only
    /// the answer's body reaches the caller; a non-2xx status is reported to FC as a failed invocation.
    Event(Event),
}

/// An HTTP request and its FC context. Dereferences to the [`http::Request`] for the method, URI, headers
/// and body.
#[derive(Debug)]
pub struct Request {
    inner: http::Request<Incoming>,
    context: Context,
}

impl Request {
    pub(crate) fn new(inner: http::Request<Incoming>, context: Context) -> Request {
        Request { inner, context }
    }

    /// What FC says about this invocation.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The request head, its body and its context, to read the body while keeping the rest.
    pub fn into_parts(self) -> (Parts, Incoming, Context) {
        let (parts, body) = self.inner.into_parts();
        (parts, body, self.context)
    }

    /// The plain [`http::Request`] and the context.
    pub fn into_inner(self) -> (http::Request<Incoming>, Context) {
        (self.inner, self.context)
    }
}

impl Deref for Request {
    type Target = http::Request<Incoming>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Request {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

/// An event invocation: its context and its body, not read yet — how much of it to accept is the
/// function's choice ([`Event::payload`]).
#[derive(Debug)]
pub struct Event {
    body: Incoming,
    context: Context,
}

/// Why an event's payload could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The body is longer than the limit given to [`Event::payload`].
    #[error("the event body exceeds {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed or the body was malformed while it was being read.
    #[error("could not read the event body: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Event {
    pub(crate) fn new(body: Incoming, context: Context) -> Event {
        Event { body, context }
    }

    /// What FC says about this invocation.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Reads the whole payload, refusing more than `limit` bytes (FC itself caps events at 32 MiB for
    /// synchronous and 128 KiB for asynchronous calls).
    pub async fn payload(self, limit: usize) -> Result<(Context, Bytes), PayloadError> {
        match Limited::new(self.body, limit).collect().await {
            Ok(collected) => Ok((self.context, collected.to_bytes())),
            Err(error) if error.is::<LengthLimitError>() => Err(PayloadError::TooLarge { limit }),
            Err(error) => Err(PayloadError::Read(error)),
        }
    }

    /// The context and the unread body, to stream it instead.
    pub fn into_parts(self) -> (Context, Incoming) {
        (self.context, self.body)
    }
}
