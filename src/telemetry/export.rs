//! The providers and the export: spans wait in a bounded queue of ours and metrics in the SDK's manual
//! reader until [`Telemetry::flush`] sends them, on the function's own tokio runtime, through its own
//! reqwest client (rustls, no second HTTP stack).
//!
//! Why not the SDK's batch processor and periodic reader: both export from a background thread on a
//! timer. In Function Compute an instance is frozen as soon as an invocation has answered, so a timer
//! fires whenever the instance next runs — maybe minutes later, maybe never before it is stopped. Here
//! the export happens where the lifecycle allows it: at each turn's end before the invocation is over,
//! and in the pre-stop hook. A queue that fills (a collector down for long) drops the newest spans,
//! counts them and says so in the log; a collector that is slow costs a turn's end at most the flush
//! budget. Nothing is retried (see the import of `RetryPolicy`): a batch that did not make it is counted as
//! dropped.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanKind as OtelKind, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
// Retries off: the exporter would wait between tries with `std::thread::sleep` (its `tokio` feature is
// not in our build), blocking the runtime's one worker; a failed batch is dropped and counted instead.
use opentelemetry_otlp::{MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor};
use tokio::time::Instant;

use super::metrics::Instruments;
use super::span::SpanKind;
use super::{SamplerChoice, SignalExport, TelemetryError, TelemetrySettings};

/// Spans held between two flushes. A turn with ten tool calls makes about 40; this holds dozens of
/// concurrent turns and, should the collector be unreachable, bounds what waits (a span is ~1 KiB).
const MAX_QUEUED_SPANS: usize = 2048;

/// The instrumentation scope of everything recorded here.
const SCOPE: &str = env!("CARGO_PKG_NAME");

pub(super) struct Telemetry {
    tracer: Option<SdkTracer>,
    /// Keeps the tracer's pipeline alive (the tracer holds it weakly).
    _tracer_provider: Option<SdkTracerProvider>,
    queue: Arc<SpanQueue>,
    spans: Option<SpanExporter>,
    metrics: Option<Metrics>,
    capture_content: bool,
    timeout: Duration,
    metric_interval: Duration,
    /// One flush at a time; holds when the metrics were last sent.
    flushing: tokio::sync::Mutex<Option<Instant>>,
}

struct Metrics {
    /// Keeps the instruments' pipeline alive.
    _provider: SdkMeterProvider,
    reader: SharedReader,
    exporter: MetricExporter,
    instruments: Instruments,
}

impl Telemetry {
    pub(super) fn new(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("cloud.provider", "alibaba_cloud"),
                KeyValue::new("cloud.platform", "alibaba_cloud_fc"),
            ])
            .with_attributes(settings.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
            .build();
        let queue = Arc::new(SpanQueue::default());
        let (tracer, tracer_provider, spans) = match &settings.traces {
            None => (None, None, None),
            Some(signal) => {
                let mut exporter = for_signal(SpanExporter::builder().with_http(), signal)?
                    .build()
                    .map_err(|e| TelemetryError(e.to_string()))?;
                exporter.set_resource(&resource);
                let provider = SdkTracerProvider::builder()
                    .with_span_processor(Enqueue(queue.clone()))
                    .with_sampler(sampler(&settings.sampler))
                    .with_resource(resource.clone())
                    .build();
                (Some(provider.tracer(SCOPE)), Some(provider), Some(exporter))
            }
        };
        let metrics = match &settings.metrics {
            None => None,
            Some(signal) => {
                let exporter = for_signal(MetricExporter::builder().with_http(), signal)?
                    .build()
                    .map_err(|e| TelemetryError(e.to_string()))?;
                let reader = SharedReader(Arc::new(ManualReader::builder().build()));
                let provider = SdkMeterProvider::builder().with_reader(reader.clone()).with_resource(resource).build();
                let instruments = Instruments::new(&opentelemetry::metrics::MeterProvider::meter(&provider, SCOPE));
                Some(Metrics { _provider: provider, reader, exporter, instruments })
            }
        };
        Ok(Telemetry {
            tracer,
            _tracer_provider: tracer_provider,
            queue,
            spans,
            metrics,
            capture_content: settings.capture_content,
            timeout: settings.timeout,
            metric_interval: settings.metric_interval,
            flushing: tokio::sync::Mutex::new(None),
        })
    }

    pub(super) fn start(
        &self,
        name: Cow<'static, str>,
        kind: SpanKind,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        parent: &Context,
    ) -> Option<Context> {
        let tracer = self.tracer.as_ref()?;
        let kind = match kind {
            SpanKind::Internal => OtelKind::Internal,
            SpanKind::Client => OtelKind::Client,
        };
        let span =
            tracer.span_builder(name).with_kind(kind).with_attributes(attributes()).start_with_context(tracer, parent);
        Some(parent.with_span(span))
    }

    pub(super) fn instruments(&self) -> Option<&Instruments> {
        self.metrics.as_ref().map(|metrics| &metrics.instruments)
    }

    pub(super) fn captures_content(&self) -> bool {
        self.capture_content
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends every queued span and, when `all` or their interval has passed, the metrics; gives up at
    /// `budget` (what was being sent then is counted as dropped). Never fails: a collector's trouble is
    /// logged, not passed on.
    pub(super) async fn flush(&self, budget: Duration, all: bool) {
        let until = Instant::now() + budget;
        let Ok(mut metrics_sent) = tokio::time::timeout_at(until, self.flushing.lock()).await else {
            // Another flush holds the line for longer than our budget: it takes our spans with it.
            return;
        };
        if let Some(exporter) = &self.spans {
            loop {
                let batch = self.queue.take();
                if batch.is_empty() {
                    break;
                }
                let count = batch.len() as u64;
                let outcome = tokio::time::timeout_at(until, exporter.export(batch)).await;
                if let Some(problem) = problem(outcome) {
                    let dropped = self.queue.dropped.fetch_add(count, Ordering::Relaxed) + count;
                    tracing::warn!(spans = count, dropped_total = dropped, "spans not exported: {problem}");
                    break;
                }
            }
        }
        let Some(metrics) = &self.metrics else {
            return;
        };
        let due = metrics_sent.is_none_or(|sent| sent.elapsed() >= self.metric_interval);
        if !(all || due) {
            return;
        }
        let mut collected = ResourceMetrics::default();
        if let Err(error) = metrics.reader.collect(&mut collected) {
            tracing::warn!("metrics not collected: {error}");
            return;
        }
        *metrics_sent = Some(Instant::now());
        if let Some(problem) = problem(tokio::time::timeout_at(until, metrics.exporter.export(&collected)).await) {
            tracing::warn!("metrics not exported: {problem}");
        }
    }
}

/// Why an export did not succeed, if it did not.
fn problem(outcome: Result<OTelSdkResult, tokio::time::error::Elapsed>) -> Option<String> {
    match outcome {
        Ok(Ok(())) => None,
        // The exporter's errors name the collector's status or the transport failure, never its headers.
        Ok(Err(error)) => Some(error.to_string()),
        Err(_elapsed) => Some("the collector did not answer in time".to_owned()),
    }
}

/// An OTLP/HTTP exporter builder (spans or metrics) set up for its signal: protobuf, the signal's endpoint,
/// headers and time limit, an HTTP client of its own (each carries its own time limit), no retries.
fn for_signal<B: WithExportConfig + WithHttpConfig>(builder: B, signal: &SignalExport) -> Result<B, TelemetryError> {
    let client = crate::upstream::client_builder()
        .timeout(signal.timeout)
        .build()
        .map_err(|e| TelemetryError(format!("HTTP client: {e}")))?;
    let headers = signal.headers.iter().map(|(name, value)| (name.clone(), value.expose().to_owned())).collect();
    Ok(builder
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(signal.endpoint.as_str())
        .with_timeout(signal.timeout)
        .with_headers(headers)
        .with_http_client(client)
        .with_retry_policy(RetryPolicy::disabled()))
}

fn sampler(choice: &SamplerChoice) -> Sampler {
    match choice {
        SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
        SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
        SamplerChoice::Ratio(ratio) => Sampler::TraceIdRatioBased(*ratio),
        SamplerChoice::ParentBased(root) => Sampler::ParentBased(Box::new(sampler(root))),
    }
}

/// Ended spans waiting for the next flush.
#[derive(Debug, Default)]
struct SpanQueue {
    spans: Mutex<Vec<SpanData>>,
    /// Spans lost: the queue was full, or their export failed.
    dropped: AtomicU64,
}

impl SpanQueue {
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The span processor: every ended (sampled) span into the queue, or counted when it is full.
#[derive(Debug)]
struct Enqueue(Arc<SpanQueue>);

impl SpanProcessor for Enqueue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let mut spans = self.0.spans.lock().unwrap_or_else(|p| p.into_inner());
        if spans.len() < MAX_QUEUED_SPANS {
            spans.push(span);
            return;
        }
        drop(spans);
        let dropped = self.0.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // One line per hundred, not per span: a long outage must not flood the log.
        if dropped % 100 == 1 {
            tracing::warn!(dropped_total = dropped, "span queue full ({MAX_QUEUED_SPANS}); dropping spans");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The manual reader, shared between the meter provider (which owns its reader) and the flush.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: std::sync::Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
