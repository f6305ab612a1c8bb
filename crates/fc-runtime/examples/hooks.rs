//! FC's lifecycle hooks and a tower layer around the function. `/initialize` (configured as the function's
//! initializer) runs once per instance before its first invocation; `/pre-stop` runs before the instance
//! is destroyed, after the in-flight requests finished. The function itself is wrapped in a tower
//! timeout, as any `tower::Service` stack can be.
//! `cargo run -p fc-runtime --example hooks`, then
//! `curl -X POST -H 'x-fc-control-path: /initialize' localhost:9000/initialize` and `curl localhost:9000/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fc_runtime::{Body, Request, Runtime, service_fn};
use http::Response;
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), fc_runtime::Error> {
    let warm = Arc::new(AtomicBool::new(false));
    let answer = {
        let warm = warm.clone();
        service_fn(move |_request: Request| {
            let warm = warm.load(Ordering::Relaxed);
            async move { Ok::<_, Infallible>(Response::new(Body::full(format!("warm: {warm}\n")))) }
        })
    };
    // A request that takes longer fails with the layer's error, which the runtime answers `500`.
    let service = ServiceBuilder::new().timeout(Duration::from_secs(10)).service(answer);
    Runtime::new(service)
        .on_initialize(move |context| {
            let warm = warm.clone();
            async move {
                tracing::info!(request_id = context.request_id(), "loading what every invocation needs");
                warm.store(true, Ordering::Relaxed);
                Ok(())
            }
        })
        .on_pre_stop(|_context| async {
            tracing::info!("flushing before the instance goes");
            Ok(())
        })
        .run()
        .await
}
