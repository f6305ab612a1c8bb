//! Local stand-ins for the upstreams, for tests and `make dev`.

pub mod agent_identity;
