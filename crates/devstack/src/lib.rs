//! Local stand-ins for the function's upstreams (Agent Identity, DashScope, an MCP server, FC's
//! asynchronous invocation), speaking their
//! real protocols over real sockets. The function's integration tests, `make dev` (this crate's binary)
//! and `make bench` run against them. A crate of its own, not depending on the function: the function is
//! only ever their client, and none of this can end up in the binary FC runs.

pub mod agent_identity;
pub mod chat;
mod client;
pub mod dashscope;
pub mod fc_async;
pub mod mcp_server;
mod stack;

pub use client::client_builder;
pub use stack::{
    DASHSCOPE_KEY, DASHSCOPE_KEY_PROVIDER, FUNCTION_NAME, OAUTH2_PROVIDER, OAUTH2_SCOPES, OAUTH2_TOOL_PREFIX, Stack,
    StackOptions, StackSecrets, WORKLOAD_IDENTITY,
};

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
