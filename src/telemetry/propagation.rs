//! W3C Trace Context in and out: the caller's `traceparent`/`tracestate` becomes the parent of the turn's
//! root span, and every upstream request carries the span it was made in (HTTP headers; MCP also in
//! `params._meta`, as the MCP conventions put it).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Where a turn came from, for its root span: the wire face, the caller's trace context (when it sent a
/// valid one) and FC's request id. Made per invocation; empty (and free) when tracing is off.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) face: &'static str,
    parent: Option<Context>,
    invocation_id: Option<String>,
}

impl Origin {
    /// The origin of an invocation on `face`, from FC's context (which read the trace headers).
    pub(crate) fn of(face: &'static str, context: &fc_runtime::Context) -> Origin {
        if !super::active() {
            return Origin { face, parent: None, invocation_id: None };
        }
        let fields = Fields { traceparent: context.traceparent(), tracestate: context.tracestate() };
        let extracted = TraceContextPropagator::new().extract_with_context(&Context::new(), &fields);
        let parent = extracted.span().span_context().is_valid().then_some(extracted);
        Origin { face, parent, invocation_id: Some(context.request_id().to_owned()) }
    }

    /// An origin with no caller context.
    #[cfg(test)]
    pub(crate) fn local(face: &'static str) -> Origin {
        Origin { face, parent: None, invocation_id: None }
    }

    /// The caller's span, the root's parent.
    pub(crate) fn parent(&self) -> Option<&Context> {
        self.parent.as_ref()
    }

    /// FC's request id (`faas.invocation_id`), which the log lines carry too.
    pub(crate) fn invocation_id(&self) -> Option<&str> {
        self.invocation_id.as_deref()
    }
}

struct Fields<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Fields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent,
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// The current span's `traceparent` (and `tracestate`) as HTTP headers for an upstream request; empty
/// when tracing is off or no span is current.
pub(crate) fn trace_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if super::active() {
        TraceContextPropagator::new()
            .inject_context(&Context::current(), &mut opentelemetry_http::HeaderInjector(&mut headers));
    }
    headers
}

/// `cx`'s span as `traceparent` and `tracestate`; `None` without a valid span.
pub(super) fn fields_of(cx: &Context) -> Option<(String, Option<String>)> {
    let mut fields = Owned::default();
    TraceContextPropagator::new().inject_context(cx, &mut fields);
    fields.traceparent.map(|traceparent| (traceparent, fields.tracestate))
}

#[derive(Default)]
struct Owned {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Owned {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
}
