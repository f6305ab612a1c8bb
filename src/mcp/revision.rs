//! Which MCP revision a server is spoken to in, and what the instance has learned about each server.
//!
//! Two lifecycles exist side by side:
//! - **2025-03-26 / 2025-06-18 / 2025-11-25**: `initialize` + `notifications/initialized`, then requests on
//!   the `Mcp-Session-Id` the server gave (the session is kept across warm turns, [`super::pool`]);
//! - **2026-07-28**: no handshake and no session; `server/discover` once, then every request carries the
//!   revision, client info and capabilities in `params._meta` and the `Mcp-Method`/`Mcp-Name` headers
//!   (rmcp writes both from the peer's request metadata).
//!
//! `auto` tries the handshake first (offering 2025-11-25): it costs nothing extra against today's gateways,
//! which all speak a 2025 revision, where discovery first would cost a refused `server/discover` on the first
//! turn of every instance. A server that refuses `initialize` (a 2026-only server) is then discovered. The
//! answer is remembered per server for the life of the instance, so the probe is paid once. A server that
//! speaks both is spoken to in 2025-11-25 under `auto`; `AI_GATEWAY_MCP_PROTOCOL=2026-07-28` pins the newer.

use std::fmt;
use std::sync::{Arc, RwLock};

use rmcp::model::{ProtocolVersion, ServerPeerInfo};

/// `AI_GATEWAY_MCP_PROTOCOL`: `auto` (default) or one revision, pinned for every server.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum McpProtocol {
    #[default]
    Auto,
    Pinned(ProtocolVersion),
}

impl fmt::Debug for McpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            McpProtocol::Auto => f.write_str("auto"),
            McpProtocol::Pinned(version) => write!(f, "{version}"),
        }
    }
}

/// The revisions this client speaks, newest first (what `AI_GATEWAY_MCP_PROTOCOL` may pin).
pub const SUPPORTED: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

impl McpProtocol {
    /// Parses `auto` or one of [`SUPPORTED`]; the error names what is accepted (the value is not echoed: the
    /// config parser adds the variable's name).
    pub fn parse(value: &str) -> Result<McpProtocol, String> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("auto") {
            return Ok(McpProtocol::Auto);
        }
        match SUPPORTED.iter().find(|known| **known == value) {
            Some(_) => Ok(McpProtocol::Pinned(version_of(value))),
            None => Err(format!("must be `auto` or one of {}", SUPPORTED.join(", "))),
        }
    }
}

pub(super) fn version_of(value: &str) -> ProtocolVersion {
    match value {
        "2026-07-28" => ProtocolVersion::V_2026_07_28,
        "2025-11-25" => ProtocolVersion::V_2025_11_25,
        "2025-06-18" => ProtocolVersion::V_2025_06_18,
        _ => ProtocolVersion::V_2025_03_26,
    }
}

/// What the instance knows about one server after the first contact.
#[derive(Debug, Clone)]
pub(super) enum Learned {
    /// It answered the handshake: open every user's session with `initialize`.
    Handshake,
    /// It is stateless (2026-07-28): what `server/discover` said, so a new user's connection starts
    /// without a request ([`rmcp::service::serve_directly`]).
    Stateless(Arc<ServerPeerInfo>),
}

/// Per server, what was learned (index = the server's index in the client's list).
#[derive(Debug, Default)]
pub(super) struct Knowledge {
    servers: Vec<RwLock<Option<Learned>>>,
}

impl Knowledge {
    pub(super) fn new(servers: usize) -> Knowledge {
        Knowledge { servers: (0..servers).map(|_| RwLock::new(None)).collect() }
    }

    pub(super) fn get(&self, server: usize) -> Option<Learned> {
        self.servers.get(server)?.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set(&self, server: usize, learned: Learned) {
        if let Some(slot) = self.servers.get(server) {
            *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(learned);
        }
    }

    /// Forget a server's revision (it stopped answering the way it did): the next open probes again.
    pub(super) fn forget(&self, server: usize) {
        if let Some(slot) = self.servers.get(server) {
            *slot.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auto_and_each_revision_and_refuses_others() {
        assert_eq!(McpProtocol::parse(""), Ok(McpProtocol::Auto));
        assert_eq!(McpProtocol::parse("AUTO"), Ok(McpProtocol::Auto));
        for value in SUPPORTED {
            let McpProtocol::Pinned(version) = McpProtocol::parse(value).unwrap() else { panic!("{value}") };
            assert_eq!(version.as_str(), value);
        }
        let error = McpProtocol::parse("2024-11-05").unwrap_err();
        assert!(error.contains("2026-07-28") && !error.contains("2024-11-05"), "{error}");
    }
}
