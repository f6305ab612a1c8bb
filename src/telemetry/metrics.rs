//! The metrics: the GenAI client histograms as the conventions define them (names, units, bucket
//! boundaries, attributes) and turns by face and outcome.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use super::names;

/// The conventions' advisory boundaries for `gen_ai.client.token.usage`: powers of 4 up to 64 Mi tokens.
const TOKEN_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
/// The conventions' advisory boundaries for the GenAI durations, in seconds: doubling from 10 ms to 82 s.
const DURATION_BOUNDARIES: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

#[derive(Debug)]
pub(super) struct Instruments {
    token_usage: Histogram<u64>,
    duration: Histogram<f64>,
    first_chunk: Histogram<f64>,
    turns: Counter<u64>,
}

impl Instruments {
    pub(super) fn new(meter: &Meter) -> Instruments {
        Instruments {
            token_usage: meter
                .u64_histogram(names::METRIC_TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used")
                .with_boundaries(TOKEN_BOUNDARIES.to_vec())
                .build(),
            duration: meter
                .f64_histogram(names::METRIC_OPERATION_DURATION)
                .with_unit("s")
                .with_description("GenAI operation duration")
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            first_chunk: meter
                .f64_histogram(names::METRIC_TIME_TO_FIRST_CHUNK)
                .with_unit("s")
                .with_description("Time to receive the first chunk in a streaming operation")
                .with_boundaries(DURATION_BOUNDARIES.to_vec())
                .build(),
            turns: meter
                .u64_counter(names::METRIC_TURNS)
                .with_unit("{turn}")
                .with_description("Agent turns by wire face and outcome")
                .build(),
        }
    }
}

fn instruments() -> Option<&'static Instruments> {
    super::installed().and_then(super::export::Telemetry::instruments)
}

/// What one model call measured.
pub(crate) struct ChatMeasure<'a> {
    pub(crate) request_model: &'a str,
    pub(crate) response_model: Option<&'a str>,
    pub(crate) server_address: &'a str,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) duration: Duration,
    pub(crate) first_chunk: Option<Duration>,
    /// Set when the call failed.
    pub(crate) error_type: Option<&'a str>,
}

impl ChatMeasure<'_> {
    /// Records the call in the GenAI client metrics (nothing when metrics are off).
    pub(crate) fn record(&self) {
        let Some(instruments) = instruments() else {
            return;
        };
        let mut attributes = vec![
            KeyValue::new(names::OPERATION_NAME, "chat"),
            KeyValue::new(names::PROVIDER_NAME, names::PROVIDER_DASHSCOPE),
            KeyValue::new(names::REQUEST_MODEL, self.request_model.to_owned()),
            KeyValue::new(names::SERVER_ADDRESS, self.server_address.to_owned()),
        ];
        if let Some(model) = self.response_model {
            attributes.push(KeyValue::new(names::RESPONSE_MODEL, model.to_owned()));
        }
        if let Some(first_chunk) = self.first_chunk {
            instruments.first_chunk.record(first_chunk.as_secs_f64(), &attributes);
        }
        for (kind, tokens) in [("input", self.input_tokens), ("output", self.output_tokens)] {
            if let Some(tokens) = tokens {
                let mut typed = attributes.clone();
                typed.push(KeyValue::new(names::TOKEN_TYPE, kind));
                instruments.token_usage.record(tokens, &typed);
            }
        }
        if let Some(error_type) = self.error_type {
            attributes.push(KeyValue::new(names::ERROR_TYPE, error_type.to_owned()));
        }
        instruments.duration.record(self.duration.as_secs_f64(), &attributes);
    }
}

/// How one turn ended, for `fc_agent.turns`.
pub(crate) struct TurnMeasure<'a> {
    pub(crate) face: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) error_type: Option<&'a str>,
}

impl TurnMeasure<'_> {
    pub(crate) fn record(&self) {
        let Some(instruments) = instruments() else {
            return;
        };
        let mut attributes = vec![KeyValue::new(names::FACE, self.face), KeyValue::new(names::OUTCOME, self.outcome)];
        if let Some(error_type) = self.error_type {
            attributes.push(KeyValue::new(names::ERROR_TYPE, error_type.to_owned()));
        }
        instruments.turns.add(1, &attributes);
    }
}
