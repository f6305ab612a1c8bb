//! The stall guard: closes a connection whose request head starts but never completes (slow-loris), without
//! timing out idle keep-alive connections, which FC holds open for hours.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its next request, so
//! the clock is kept here instead, at the socket: it starts at the first byte read while no request is in
//! progress and stops when a request head has been parsed.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Detects a client that starts a request head and never finishes it (slow-loris), without timing out
/// idle keep-alive connections: the clock starts at the first byte read while no request is in progress.
#[derive(Default)]
pub(crate) struct StallGuard {
    in_request: AtomicUsize,
    /// Milliseconds since `EPOCH` when a head began; 0 = no head in progress.
    head_started_ms: AtomicU64,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

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

    pub(crate) fn stalled(&self, limit: Duration) -> bool {
        let started = self.head_started_ms.load(Ordering::Acquire);
        started != 0 && now_ms().saturating_sub(started) > limit.as_millis() as u64
    }
}

/// Marks a request in progress from the moment its head is parsed until its response body is dropped.
pub(crate) struct RequestGuard(Arc<StallGuard>);

pub(crate) fn guard_for_request(guard: &Arc<StallGuard>) -> RequestGuard {
    guard.in_request.fetch_add(1, Ordering::AcqRel);
    guard.head_started_ms.store(0, Ordering::Release);
    RequestGuard(guard.clone())
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_request.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, telling its guard about every read.
pub(crate) struct Watched {
    pub(crate) io: TcpStream,
    pub(crate) guard: Arc<StallGuard>,
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
