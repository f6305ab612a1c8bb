//! `--otlp`: an OTLP/HTTP receiver for the bench, so the function is measured with telemetry **on** — every
//! span and metric built, queued and exported — against a collector that costs it nothing to reach.
//!
//! Why not the tests' Python receiver: it decodes every request, and on this 2-core machine its CPU would be
//! taken from the function being measured. This sink reads each body and answers `200` with an empty
//! protobuf body (an empty `Export…ServiceResponse` is a valid one: every field is optional), counting
//! requests and bytes so the report can show that the export really happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Larger than any export batch the function sends (its queue is bounded far below this), so a body is
/// never cut; a request past it is answered 413 and counted as refused.
const MAX_BODY_BYTES: usize = 16 << 20;

/// What the sink has received so far.
#[derive(Default)]
pub(crate) struct Received {
    requests: AtomicU64,
    bytes: AtomicU64,
    refused: AtomicU64,
}

impl Received {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} OTLP requests, {} bytes received, {} refused",
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed)
        )
    }
}

/// Starts the sink on a loopback port; returns the endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub(crate) async fn start() -> Result<(String, Arc<Received>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("OTLP sink: {e}"))?;
    let address: SocketAddr = listener.local_addr().map_err(|e| format!("OTLP sink: {e}"))?;
    let received = Arc::new(Received::default());
    let counts = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, counts.clone()));
        }
    });
    Ok((format!("http://{address}"), received))
}

/// HTTP/1.1 keep-alive, `Content-Length` bodies (what the function's exporter sends); anything else ends
/// the connection.
async fn serve(mut stream: TcpStream, received: Arc<Received>) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        let Some(head_end) = read_head(&mut stream, &mut buffer).await else { return };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok());
        let Some(length) = length else { return };
        if length > MAX_BODY_BYTES {
            received.refused.fetch_add(1, Ordering::Relaxed);
            let _ = stream
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            return;
        }
        let total = head_end + 4 + length;
        while buffer.len() < total {
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        received.requests.fetch_add(1, Ordering::Relaxed);
        received.bytes.fetch_add(length as u64, Ordering::Relaxed);
        buffer.drain(..total);
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Reads until the end of a request head; its offset (before the blank line), or `None` when the peer went.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end);
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}
