//! fc-identity-agent: one agent turn per Function Compute invocation, with the caller's Agent Identity
//! WorkloadAccessToken as the bearer for the MCP tools. Data flows one way (see DESIGN.md):
//! `fc` → `app` → `protocol` → `identity` → `mcp` → `agent` (⇄ `llm`, `mcp`) → `protocol` → `fc`.

pub mod acs;
pub mod agent;
pub mod app;
pub mod config;
pub mod fc;
pub mod identity;
pub mod llm;
pub mod mcp;
pub mod protocol;
pub mod secret;
pub mod upstream;
