//! Local stand-ins for the upstreams (tests and `make dev`); left out of release builds.

pub mod mcp_server;
