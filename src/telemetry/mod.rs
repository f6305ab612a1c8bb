//! OpenTelemetry for the turn: spans and metrics in the GenAI semantic conventions, exported over OTLP/HTTP
//! (protobuf) — what Alibaba Cloud ARMS and any OpenTelemetry collector ingest. docs/telemetry.md lists
//! every span, attribute and variable.
//!
//! - Off costs nothing: without an `OTEL_EXPORTER_OTLP_*ENDPOINT` no provider, exporter or queue exists;
//!   every entry point here first reads one `OnceLock` and returns. Span handles are `Span(None)`.
//! - The instrumented code asks for spans through [`Span`] and runs its futures [`within`] one, so the
//!   clients below (DashScope, MCP, Agent Identity) find their parent in the OpenTelemetry context and
//!   send it upstream ([`trace_headers`], [`trace_fields`]) without it being passed down by hand.
//! - [`export`]: ended spans wait in a bounded queue and leave at the turn's end, before the invocation
//!   is over (FC may freeze the instance right after), and at the pre-stop hook and shutdown.
//!
//! This module is generic: it knows spans, attributes and metrics, not turns or faces. Which span a turn,
//! a model call or a tool call gets is decided where they happen.

mod export;
mod metrics;
mod propagation;
mod span;

pub(crate) mod names;

use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use metrics::{ChatMeasure, TurnMeasure};
pub(crate) use propagation::{Origin, trace_headers};
pub(crate) use span::{Span, SpanKind, in_scope, mark_current, within};

use crate::secret::Secret;
use crate::upstream::Endpoint;

/// The `OTEL_*` configuration (config.rs parses it); present only when something is to be exported.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// Where spans go (`…/v1/traces`) and how; `None`: no spans are recorded.
    pub(crate) traces: Option<SignalExport>,
    /// Where metrics go (`…/v1/metrics`) and how; `None`: no metrics are recorded.
    pub(crate) metrics: Option<SignalExport>,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: the budget for what is left at the pre-stop hook and at shutdown.
    pub(crate) timeout: Duration,
    /// The resource's attributes in order of precedence (a later key wins).
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) sampler: SamplerChoice,
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`: messages, tool arguments and results in spans.
    pub(crate) capture_content: bool,
    /// `OTEL_METRIC_EXPORT_INTERVAL`: metrics leave at a turn's end at most this often (0: every turn).
    pub(crate) metric_interval: Duration,
}

/// One signal's exporter: the OTLP/HTTP endpoint, the headers sent with every export (the general
/// `OTEL_EXPORTER_OTLP_HEADERS`, then the signal's own, a later name winning) and one request's time limit
/// (the signal's own `…_TIMEOUT`, else the general one).
#[derive(Debug, Clone)]
pub(crate) struct SignalExport {
    pub(crate) endpoint: Endpoint,
    /// ARMS' authentication token is among them: secrets.
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) timeout: Duration,
}

/// `OTEL_TRACES_SAMPLER` / `_ARG`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// The caller's sampling decision when it sent a `traceparent`, else the inner one.
    ParentBased(Box<SamplerChoice>),
}

/// The exporters could not be built (the configuration itself was checked by config.rs).
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry exporter: {0}")]
pub struct TelemetryError(String);

static INSTALLED: OnceLock<export::Telemetry> = OnceLock::new();

/// The installed telemetry, or `None` when it is off (the common, free path).
fn installed() -> Option<&'static export::Telemetry> {
    INSTALLED.get()
}

/// Whether spans and metrics are recorded at all.
pub(crate) fn active() -> bool {
    INSTALLED.get().is_some()
}

/// Builds the exporters and the providers once, at start, from the configuration's telemetry settings;
/// nothing without them (no `OTEL_*` endpoint). Must run inside the tokio runtime (the exports run on it).
pub fn install(settings: Option<&TelemetrySettings>) -> Result<(), TelemetryError> {
    let Some(settings) = settings else {
        return Ok(());
    };
    let telemetry = export::Telemetry::new(settings)?;
    if INSTALLED.set(telemetry).is_err() {
        return Err(TelemetryError("installed twice".to_owned()));
    }
    tracing::info!(
        traces = settings.traces.as_ref().map(|t| t.endpoint.redacted()),
        metrics = settings.metrics.as_ref().map(|m| m.endpoint.redacted()),
        "OpenTelemetry export on"
    );
    Ok(())
}

/// At a turn's end, before its invocation is over: sends what the turn recorded (and the metrics, when
/// their interval has passed), within [`TURN_FLUSH_BUDGET`]. The caller already has every byte of its
/// answer; only the end of the response waits for this.
pub(crate) async fn turn_done() {
    if let Some(telemetry) = installed() {
        telemetry.flush(TURN_FLUSH_BUDGET, false).await;
    }
}

/// Before the instance goes (FC's pre-stop hook, SIGTERM): everything still queued and the metrics, within
/// `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub async fn shutdown() {
    if let Some(telemetry) = installed() {
        telemetry.flush(telemetry.timeout(), true).await;
    }
}

/// How long a turn's end may wait for its spans to be accepted. A collector in the same region answers in
/// milliseconds; a slow or unreachable one costs the response's end at most this, and the batch is
/// dropped (counted and logged) rather than held against the next turn.
pub(crate) const TURN_FLUSH_BUDGET: Duration = Duration::from_millis(1000);

/// Whether message contents may be recorded (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`).
pub(crate) fn captures_content() -> bool {
    installed().is_some_and(export::Telemetry::captures_content)
}
