//! Logs: JSON lines on stdout (FC ships stdout to the function's SLS logstore), level from `RUST_LOG`.
//! The function's own choice, with filters for its own dependencies; the FC adapter only emits events.

use tracing_subscriber::EnvFilter;

/// Without `RUST_LOG`: our own lines from `info`; rmcp's from `warn`, except its transport worker's, which
/// reports every MCP refusal (a 401 we answer with a fresh token included) as an ERROR "worker quit with
/// fatal" outside any request's span. The turn logs each MCP failure itself, classified, with the request
/// id; `RUST_LOG=info,rmcp=debug` brings rmcp's lines back.
const DEFAULT_FILTER: &str = "info,rmcp=warn,rmcp::transport::worker=off";

/// Installs the JSON subscriber once. Every line inside an invocation carries its `request_id` (from
/// fc-runtime's `invocation` span). FC prints its own `FC Invoke Start/End` markers, so we never do.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::stdout)
        .try_init();
}
