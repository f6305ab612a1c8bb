//! A span handle that is nothing when tracing is off, and the one way a future runs inside a span.

use std::borrow::Cow;
use std::future::Future;

use futures_util::future::Either;
use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, Value};

/// Who a span is about: work of ours (`Internal`) or a request to an upstream (`Client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Internal,
    Client,
}

/// One span, started by [`Span::start`] and ended by [`Span::end`] (or when dropped). Without tracing
/// it holds nothing and every method returns at once; attribute values are built only when recorded
/// (pass closures or cheap values).
#[derive(Debug, Default)]
pub(crate) struct Span(Option<Context>);

impl Span {
    /// No span: what every handle is when tracing is off.
    pub(crate) const fn none() -> Span {
        Span(None)
    }

    /// A span under the current OpenTelemetry context (the span a caller's future runs [`within`]).
    /// `attributes` is called only when the span is recorded.
    pub(crate) fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        match super::installed() {
            Some(telemetry) => Span(telemetry.start(name.into(), kind, attributes, &Context::current())),
            None => Span(None),
        }
    }

    /// A turn's root: under the caller's `traceparent` when it sent one ([`super::Origin::parent`]), else
    /// a new trace.
    pub(crate) fn root(
        parent: Option<&Context>,
        name: impl Into<Cow<'static, str>>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Span {
        match super::installed() {
            Some(telemetry) => {
                let fresh = Context::new();
                Span(telemetry.start(name.into(), SpanKind::Internal, attributes, parent.unwrap_or(&fresh)))
            }
            None => Span(None),
        }
    }

    /// Whether this span is recorded (tracing on and sampled in).
    pub(crate) fn is_recording(&self) -> bool {
        self.0.as_ref().is_some_and(|cx| cx.span().is_recording())
    }

    pub(crate) fn set(&self, key: &'static str, value: impl Into<Value>) {
        if let Some(cx) = &self.0 {
            cx.span().set_attribute(KeyValue::new(key, value));
        }
    }

    /// Sets an attribute whose value costs something to make (a string copied, JSON written).
    pub(crate) fn set_with<V: Into<Value>>(&self, key: &'static str, value: impl FnOnce() -> V) {
        if self.is_recording() {
            self.set(key, value());
        }
    }

    /// Marks the span failed: `error.type` (our failure code, or the upstream's error class) and the status.
    /// `message` is one the function already shows its callers: it carries no secret.
    pub(crate) fn fail(&self, error_type: &str, message: &str) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new(super::names::ERROR_TYPE, error_type.to_owned()));
            span.set_status(Status::error(message.to_owned()));
        }
    }

    /// Ends the span now (its end time); later calls do nothing.
    pub(crate) fn end(&self) {
        if let Some(cx) = &self.0 {
            cx.span().end();
        }
    }

    /// This span as W3C `traceparent` and `tracestate` values (what MCP puts in `params._meta`);
    /// `None` when it is not recorded.
    pub(crate) fn trace_fields(&self) -> Option<(String, Option<String>)> {
        self.0.as_ref().and_then(super::propagation::fields_of)
    }

    /// What a future needs to run within this span, apart from the span itself (whose end stays with
    /// its owner): see [`in_scope`].
    pub(crate) fn scope(&self) -> Scope {
        Scope(self.0.clone())
    }
}

/// A span's context, to run a future within ([`in_scope`]) while the [`Span`] is kept elsewhere.
pub(crate) struct Scope(Option<Context>);

impl Drop for Span {
    fn drop(&mut self) {
        // A span whose work was cut short (a dropped future) still ends, with the time it was dropped.
        self.end();
    }
}

/// Sets an attribute on the current span (the one the running future is [`within`]): for a fact learnt
/// below the code that made the span (the gateway refusing a tool call).
pub(crate) fn mark_current(key: &'static str, value: impl Into<Value>) {
    if super::active() {
        Context::current().span().set_attribute(KeyValue::new(key, value));
    }
}

/// Runs `future` with `span` as the current span, so that spans started and requests sent inside it
/// find it; without tracing, `future` itself.
pub(crate) fn within<F: Future>(span: &Span, future: F) -> Either<WithContext<F>, F> {
    in_scope(span.scope(), future)
}

/// [`within`] for a span kept elsewhere.
pub(crate) fn in_scope<F: Future>(scope: Scope, future: F) -> Either<WithContext<F>, F> {
    match scope.0 {
        Some(cx) => Either::Left(future.with_context(cx)),
        None => Either::Right(future),
    }
}
