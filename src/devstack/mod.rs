//! Local stand-ins for the upstreams, speaking their real protocols over real sockets. Used by the tests
//! and by `make dev`; release builds for FC leave them out (`--no-default-features`).

pub mod agent_identity;
pub mod dashscope;
pub mod dev;
pub mod mcp_server;
mod stack;

pub use stack::{DASHSCOPE_KEY, Stack, StackOptions, StackSecrets, WORKLOAD_IDENTITY};

/// Turns Nagle off on every accepted connection, as the real upstreams' front ends do: otherwise a small
/// SSE chunk can wait for the client's delayed ACK (up to 40 ms on Linux), which would show up as the
/// function's latency.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    })
}
