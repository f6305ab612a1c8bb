//! The HTTP/1.1 server FC talks to: accept loop, per-connection stall guard, graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::dispatch::{self, Shared};
use crate::in_flight::InFlightGuard;
use crate::stall::{RequestGuard, StallGuard, Watched, guard_for_request};
use crate::{Body, Drain, Error, Handler, Options};

/// Serves `handler` with [`Options::default`] — on the port FC names in `FC_CUSTOM_LISTEN_PORT` (else
/// `FC_SERVER_PORT`, else 9000) — until SIGTERM or SIGINT, then drains and returns.
pub async fn run<H: Handler>(handler: H) -> Result<(), Error> {
    run_with(Options::default(), handler).await
}

/// Binds `0.0.0.0:`[`Options::port`] and serves until SIGTERM or SIGINT, then drains and returns.
pub async fn run_with<H: Handler>(options: Options, handler: H) -> Result<(), Error> {
    let addr = SocketAddr::from(([0, 0, 0, 0], options.port));
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    tracing::info!(%addr, "listening");
    serve(listener, options, handler, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish within the grace period and returns. [`Options::port`] is not used. For tests, and for
/// callers with a signal handling of their own.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    options: Options,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (drain_tx, drain) = Drain::channel();
    let shared = Arc::new(Shared::new(handler, options.clone(), drain));
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

async fn serve_connection<H: Handler>(
    stream: TcpStream,
    shared: Arc<Shared<H>>,
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

/// A connection's service: each request is dispatched to the handler, its answer's body holding the
/// request's guards.
///
/// The handler's future is boxed per request. hyper keeps, for each connection and for the whole of its
/// life (FC holds connections for hours), one slot sized for the service's future; unboxed, that is the
/// size of the handler's largest future — for a function that answers some requests only after the whole
/// turn, the whole turn's state — on every connection, idle ones included, next to the spawned task a
/// streamed turn runs in. Boxed, the slot is a pointer and the guards, and the handler's future exists
/// only while a request is being answered (for a streamed one, until its response head is ready).
fn service<H: Handler>(
    shared: Arc<Shared<H>>,
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
type Answering = Pin<Box<dyn Future<Output = Result<http::Response<Guarded>, std::convert::Infallible>> + Send>>;

/// The response body, holding the request's guards until the last byte is sent (or the client leaves).
struct Guarded {
    body: Body,
    _guard: RequestGuard,
    _in_flight: InFlightGuard,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
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
