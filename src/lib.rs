#![warn(unreachable_pub)]
//! fc-identity-agent: one agent turn per Function Compute invocation, with the caller's Agent Identity
//! WorkloadAccessToken as the bearer for the MCP tools. Data flows one way (docs/architecture.md):
//! `fc_runtime` → `app` → `protocol` (parse) → `pipeline` (plan → identity → mcp → `agent` ⇄ `llm`, `mcp`) →
//! `protocol` (render) → `fc_runtime`.

pub mod acs;
pub mod agent;
pub mod app;
pub(crate) mod clock;
pub mod config;
pub(crate) mod dns;
pub(crate) mod error_chain;
pub mod failure;
pub mod identity;
pub(crate) mod ids;
pub mod llm;
pub mod mcp;
pub mod pipeline;
pub mod protocol;
pub mod rejection;
pub(crate) mod respond;
pub mod retry;
pub mod secret;
pub(crate) mod sessions;
pub mod telemetry;
pub mod upstream;
