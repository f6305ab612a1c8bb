//! config → App → fc_runtime::Runtime; nothing else. (`make dev` runs this binary against the local
//! stand-ins: the `devstack` crate's binary.)

mod logging;

use std::process::ExitCode;

use fc_identity_agent::{app::App, config::Config, telemetry};

fn main() -> ExitCode {
    let runtime = match runtime().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => runtime.block_on(serve()),
        // No arguments: FC starts the binary bare and configures it by environment (README: Configuration).
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: fc-identity-agent (configured by environment)");
            ExitCode::FAILURE
        }
    }
}

/// One worker thread unless `TOKIO_WORKER_THREADS` says otherwise. The function waits on upstreams almost
/// all the time and is deployed with a fraction of a vCPU (s.yaml: `cpu: 0.05`); a second worker only adds
/// cross-thread wake-ups on every upstream hand-off, so one worker takes less CPU and less own overhead per
/// tool turn than one per core (BENCHMARKS.md, "Figures behind the code's bounds").
fn runtime() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder
}

async fn serve() -> ExitCode {
    logging::init_logging();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(variable = error.variable, "invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Before the first span: nothing at all when no OTEL_* endpoint is configured.
    if let Err(error) = telemetry::install(config.telemetry.as_ref()) {
        tracing::error!("cannot start: {error}");
        return ExitCode::FAILURE;
    }
    let app = match App::new(config) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!("cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = app.run().await;
    // SIGTERM without a pre-stop hook: what the last turns recorded still leaves.
    telemetry::shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
