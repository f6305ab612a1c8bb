//! The HTTP/1.1 server FC talks to: the [`Runtime`] (a service, its hooks, its options), accept loop,
//! per-connection stall guard, graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::dispatch::{self, Function, Shared};
use crate::hooks::{Hook, HookError, Hooks};
use crate::in_flight::InFlightGuard;
use crate::service::{BoxError, Service};
use crate::stall::{RequestGuard, StallGuard, Watched, guard_for_request};
use crate::{Body, BodyError, Context, Drain, Error, Options, Request};

/// Serves `service` with [`Options::default`] — on the port FC names in `FC_CUSTOM_LISTEN_PORT` (else
/// `FC_SERVER_PORT`, else 9000) — until SIGTERM or SIGINT, then drains and returns. The shorthand for
/// `Runtime::new(service).run()`.
pub async fn run<S>(service: S) -> Result<(), Error>
where
    S: Service<Request, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    Runtime::new(service).run().await
}

/// A function ready to serve: its service, its lifecycle hooks and its [`Options`].
///
/// ```no_run
/// use std::convert::Infallible;
/// use fc_runtime::{Body, Request, Runtime, service_fn};
///
/// # async fn serve() -> Result<(), fc_runtime::Error> {
/// let service = service_fn(|_request: Request| async { Ok::<_, Infallible>(http::Response::new(Body::full("hi"))) });
/// Runtime::new(service)
///     .on_initialize(|context| async move {
///         tracing::info!(request_id = context.request_id(), "warming caches");
///         Ok(())
///     })
///     .run()
///     .await
/// # }
/// ```
pub struct Runtime<S> {
    service: S,
    hooks: Hooks,
    options: Options,
}

impl<S> Runtime<S>
where
    S: Service<Request, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    /// `service` with no hooks and [`Options::default`]. Each request gets its own clone of the service.
    pub fn new(service: S) -> Runtime<S> {
        Runtime { service, hooks: Hooks::default(), options: Options::default() }
    }

    /// How the server behaves (port, timeouts, grace period).
    pub fn options(mut self, options: Options) -> Runtime<S> {
        self.options = options;
        self
    }

    /// FC's `/initialize` hook (only sent when the function configures an initializer): runs once per
    /// instance, before its first invocation, for at most the initializer's timeout (≤ 300 s). `Ok` answers
    /// `200 {"status":"initialized"}`; an error answers `500` and fails the instance start. Without a hook
    /// the answer is the `200`.
    pub fn on_initialize<F, Fut>(mut self, hook: F) -> Runtime<S>
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.initialize = Some(Hook::new(hook));
        self
    }

    /// FC's `/pre-stop` hook (only sent when configured): runs before the instance is destroyed (≤ 90 s),
    /// after the runtime has waited — at most [`Options::shutdown_grace`] — for the other in-flight
    /// requests to finish.
    pub fn on_pre_stop<F, Fut>(mut self, hook: F) -> Runtime<S>
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        self.hooks.pre_stop = Some(Hook::new(hook));
        self
    }

    /// Binds `0.0.0.0:`[`Options::port`] and serves until SIGTERM or SIGINT, then drains and returns.
    pub async fn run(self) -> Result<(), Error> {
        let addr = SocketAddr::from(([0, 0, 0, 0], self.options.port));
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
        tracing::info!(%addr, "listening");
        self.serve(listener, shutdown_signal()).await
    }

    /// Serves on an already bound listener until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish within the grace period and returns. [`Options::port`] is not used. For tests, and
    /// for callers with a signal handling of their own.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        serve(listener, self, shutdown).await
    }
}

async fn serve<S: Function>(
    listener: TcpListener,
    runtime: Runtime<S>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let Runtime { service, hooks, options } = runtime;
    let (drain_tx, drain) = Drain::channel();
    let shared = Arc::new(Shared::new(service, hooks, options.clone(), drain));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection task holds a sender; when all are gone, every connection has closed.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let conn = serve_connection(stream, shared.clone(), options.header_read_timeout, stop_rx.clone());
                    let alive = alive_tx.clone();
                    tokio::spawn(async move {
                        conn.await;
                        drop(alive);
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(in_flight = shared.in_flight.count(), "shutting down: draining in-flight requests");
    let _ = drain_tx.send(Some(Drain::cutoff_after(options.shutdown_grace)));
    let _ = stop_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(options.shutdown_grace, alive_rx.recv()).await.is_err() {
        tracing::warn!(in_flight = shared.in_flight.count(), "grace period over; abandoning requests");
    }
    Ok(())
}
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        _ = async { if let Some(s) = term.as_mut() { s.recv().await; } else { std::future::pending::<()>().await } } => {}
        _ = async { if let Some(s) = int.as_mut() { s.recv().await; } else { std::future::pending::<()>().await } } => {}
    }
}

async fn serve_connection<S: Function>(
    stream: TcpStream,
    shared: Arc<Shared<S>>,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let guard = Arc::new(StallGuard::default());
    let io = TokioIo::new(Watched { io: stream, guard: guard.clone() });
    // `date` is one of the response headers FC reserves; it adds its own.
    let conn = http1::Builder::new()
        .keep_alive(true)
        .auto_date_header(false)
        .serve_connection(io, service_fn(service(shared, guard.clone())));
    tokio::pin!(conn);
    let tick = header_read_timeout / 4;
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep(tick) => {
                if guard.stalled(header_read_timeout) {
                    tracing::debug!("request head not complete in time; closing the connection");
                    return;
                }
            }
        }
    }
}

/// A connection's service: each request is dispatched to the function, its answer's body holding the
/// request's guards.
///
/// The function's future is boxed per request. hyper keeps, for each connection and for the whole of its
/// life (FC holds connections for hours), one slot sized for the service's future; unboxed, that is the
/// size of the function's largest future — for a function that answers some requests only after the whole
/// turn, the whole turn's state — on every connection, idle ones included, next to the spawned task a
/// streamed turn runs in. Boxed, the slot is a pointer and the guards, and the function's future exists
/// only while a request is being answered (for a streamed one, until its response head is ready).
fn service<S: Function>(
    shared: Arc<Shared<S>>,
    guard: Arc<StallGuard>,
) -> impl Fn(http::Request<Incoming>) -> Answering + Send + 'static {
    move |req: http::Request<Incoming>| {
        let shared = shared.clone();
        let guard = guard_for_request(&guard);
        let in_flight = shared.in_flight.enter();
        Box::pin(async move {
            let response = dispatch::dispatch(req, shared).await;
            Ok(response.map(|body| Guarded { body, _guard: guard, _in_flight: in_flight }))
        })
    }
}

/// One request's answer in the making, as hyper's service future.
type Answering = Pin<Box<dyn Future<Output = Result<Response<Guarded>, std::convert::Infallible>> + Send>>;

/// The response body, holding the request's guards until the last byte is sent (or the client leaves).
struct Guarded {
    body: Body,
    _guard: RequestGuard,
    _in_flight: InFlightGuard,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
