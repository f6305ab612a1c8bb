//! The HTTP/1.1 server FC talks to: accept loop, per-connection stall guard, graceful drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::dispatch::{self, Handler};
use super::{Body, Drain, FcError};

/// How the server behaves; [`RunOptions::default`] is what FC needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub port: u16,
    /// Used when FC does not send `x-fc-function-timeout`.
    pub default_timeout: Duration,
    /// Largest `/invoke` event body accepted.
    pub max_event_bytes: usize,
    /// A request head must arrive within this time once its first byte has; idle keep-alive
    /// connections are never timed out (FC holds them for hours).
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM or `/pre-stop` before we give up on them.
    pub shutdown_grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            port: 9000,
            default_timeout: Duration::from_secs(600),
            max_event_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(60),
        }
    }
}

/// Binds `0.0.0.0:port` and serves until SIGTERM or SIGINT, then drains and returns.
pub async fn run<H: Handler>(options: RunOptions, handler: H) -> Result<(), FcError> {
    let addr = SocketAddr::from(([0, 0, 0, 0], options.port));
    let listener = TcpListener::bind(addr).await.map_err(|source| FcError::Bind { addr, source })?;
    tracing::info!(%addr, "listening");
    serve(listener, options, handler, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish within the grace period and returns.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    options: RunOptions,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FcError> {
    let (drain_tx, drain) = Drain::channel();
    let shared = Arc::new(dispatch::Shared::new(handler, options.clone(), drain));
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
    shared: Arc<dispatch::Shared<H>>,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let guard = Arc::new(StallGuard::default());
    let io = TokioIo::new(Watched { io: stream, guard: guard.clone() });
    let service_guard = guard.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let shared = shared.clone();
        let guard = guard_for_request(&service_guard);
        let in_flight = shared.in_flight.enter();
        async move {
            let response = dispatch::dispatch(req, shared).await;
            Ok::<_, std::convert::Infallible>(response.map(|body| Guarded {
                body,
                _guard: guard,
                _in_flight: in_flight,
            }))
        }
    });
    // `date` is one of the response headers FC reserves; it adds its own.
    let conn = http1::Builder::new().keep_alive(true).auto_date_header(false).serve_connection(io, service);
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

/// Detects a client that starts a request head and never finishes it (slow-loris), without timing out
/// idle keep-alive connections: the clock starts at the first byte read while no request is in progress.
#[derive(Default)]
struct StallGuard {
    in_request: AtomicUsize,
    /// Milliseconds since `EPOCH` when a head began; 0 = no head in progress.
    head_started_ms: AtomicU64,
}

static EPOCH: once_cell::sync::Lazy<Instant> = once_cell::sync::Lazy::new(Instant::now);

fn now_ms() -> u64 {
    // +1 keeps 0 free to mean "none".
    EPOCH.elapsed().as_millis() as u64 + 1
}

impl StallGuard {
    fn on_bytes_read(&self) {
        if self.in_request.load(Ordering::Acquire) == 0 {
            let _ = self.head_started_ms.compare_exchange(0, now_ms(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn stalled(&self, limit: Duration) -> bool {
        let started = self.head_started_ms.load(Ordering::Acquire);
        started != 0 && now_ms().saturating_sub(started) > limit.as_millis() as u64
    }
}

/// Marks a request in progress from the moment its head is parsed until its response body is dropped.
struct RequestGuard(Arc<StallGuard>);

fn guard_for_request(guard: &Arc<StallGuard>) -> RequestGuard {
    guard.in_request.fetch_add(1, Ordering::AcqRel);
    guard.head_started_ms.store(0, Ordering::Release);
    RequestGuard(guard.clone())
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_request.fetch_sub(1, Ordering::AcqRel);
    }
}

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

struct Watched {
    io: TcpStream,
    guard: Arc<StallGuard>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.guard.on_bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Requests being handled right now, so `/pre-stop` can wait for them.
#[derive(Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub(super) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.clone())
    }

    /// Waits until at most `others` requests remain (the caller's own request counts as one).
    pub(super) async fn wait_until_at_most(&self, others: usize) {
        loop {
            let notified = self.idle.notified();
            if self.count() <= others {
                return;
            }
            notified.await;
        }
    }
}

pub(super) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.idle.notify_waiters();
    }
}
