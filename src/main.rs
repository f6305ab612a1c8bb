//! config → App → fc_runtime::run_with; nothing else. (`fc-identity-agent dev` runs the same App against the built-in
//! stand-ins, when built with the `devstack` feature.)

mod logging;

use std::process::ExitCode;

use fc_identity_agent::{app::App, config::Config};

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
        #[cfg(feature = "devstack")]
        Some("dev") => runtime.block_on(dev()),
        Some(other) => {
            eprintln!("unknown argument {other:?}; usage: fc-identity-agent [dev]");
            ExitCode::FAILURE
        }
    }
}

/// One worker thread unless `TOKIO_WORKER_THREADS` says otherwise. The function waits on upstreams almost
/// all the time and is deployed with a fraction of a vCPU (s.yaml: `cpu: 0.35`); a second worker only adds
/// cross-thread wake-ups on every upstream hand-off. Measured (BENCHMARKS.md): ~25 % less CPU and ~10 %
/// less own overhead per tool turn than one worker per core.
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
    let app = match App::new(config) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!("cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "devstack")]
async fn dev() -> ExitCode {
    logging::init_logging_for_humans();
    match fc_identity_agent::devstack::dev::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("dev stack failed: {error}");
            ExitCode::FAILURE
        }
    }
}
