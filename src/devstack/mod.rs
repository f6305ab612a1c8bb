//! Local stand-ins for the upstreams, speaking their real protocols over real sockets. Used by the tests
//! and by `make dev`; release builds for FC leave them out (`--no-default-features`).

pub mod agent_identity;
pub mod dashscope;
pub mod dev;
pub mod mcp_server;
mod stack;

pub use stack::{DASHSCOPE_KEY, Stack, StackOptions, StackSecrets, WORKLOAD_IDENTITY};
