//! Which MCP revisions the stand-in speaks, and what that means for rmcp's configuration.
//!
//! rmcp 3.11.0 serves 2026-07-28 itself: with `legacy_session_mode` on, a request whose `_meta` carries the
//! 2026 client context (or any `server/discover`) is routed to its stateless path (no `Mcp-Session-Id`),
//! while `initialize` opens a session; with it off, every request is stateless and `initialize` is still
//! negotiated per request. `supported_protocol_versions` bounds both: a server listing only 2026-07-28
//! refuses `initialize` with a JSON-RPC error (-32022, no version with a handshake), one without it refuses a
//! 2026 request with HTTP 400. What rmcp does not do is refuse `server/discover` the way a pre-2026 server
//! does (it always knows the method), so the gate does that for [`Revisions::Legacy`].

use std::borrow::Cow;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::ProtocolVersion;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;

use super::SessionMode;

/// The MCP revisions the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Revisions {
    /// 2025-03-26, 2025-06-18 and 2025-11-25 (or only 2025-03-26 with `only_2025_03_26`): `initialize`
    /// and, with [`SessionMode::Stateful`], `Mcp-Session-Id` sessions. `server/discover` is refused as a
    /// 2025 server refuses it: HTTP 400 "Session ID is required" from a session server when it names no
    /// session, else a JSON-RPC "method not found" (-32601, HTTP 200).
    #[default]
    Legacy,
    /// 2026-07-28 only: stateless, `server/discover`, client context in every request's `_meta`, and the
    /// `Mcp-Method` / `Mcp-Name` headers required; `initialize` gets a JSON-RPC error. [`SessionMode`]
    /// only picks the reply form (SSE for `Stateful`, one JSON body for `StatelessJson`).
    Modern,
    /// Whichever the client speaks: `initialize` (a session if `Stateful`) or `server/discover` and 2026
    /// requests, which rmcp serves statelessly beside the sessions.
    Both,
}

impl Revisions {
    /// Parses the dev binary's `--mcp-revisions` value.
    pub fn parse(text: &str) -> Option<Revisions> {
        match text {
            "legacy" => Some(Revisions::Legacy),
            "modern" => Some(Revisions::Modern),
            "both" => Some(Revisions::Both),
            _ => None,
        }
    }

    /// What `server/discover`, `initialize` and per-request versions are checked against.
    pub(super) fn supported_versions(self, only_2025_03_26: bool) -> Cow<'static, [ProtocolVersion]> {
        let newest_legacy = if only_2025_03_26 { ProtocolVersion::V_2025_03_26 } else { ProtocolVersion::V_2025_11_25 };
        let legacy = ProtocolVersion::known_up_to(&newest_legacy);
        match self {
            Revisions::Legacy => Cow::Borrowed(legacy),
            Revisions::Modern => Cow::Owned(vec![ProtocolVersion::V_2026_07_28]),
            Revisions::Both => {
                let mut both = legacy.to_vec();
                both.push(ProtocolVersion::V_2026_07_28);
                Cow::Owned(both)
            }
        }
    }

    pub(super) fn config(self, sessions: SessionMode) -> StreamableHttpServerConfig {
        let config = StreamableHttpServerConfig::default();
        let json = sessions == SessionMode::StatelessJson;
        let config = if json {
            config.with_legacy_session_mode(false).with_json_response(true).with_sse_keep_alive(None)
        } else {
            config
        };
        match self {
            Revisions::Legacy | Revisions::Both => config,
            // No sessions in 2026; and rmcp then checks every request's header and `_meta` version before
            // dispatch, as a server that never knew the older revisions would.
            Revisions::Modern => config.with_legacy_session_mode(false).with_stateless_protocol_metadata_required(true),
        }
    }

    /// A 2025 server's answer to `server/discover` (see [`Revisions::Legacy`]), for the request `id`.
    pub(super) fn refuse_discover(sessions: SessionMode, in_session: bool, id: Option<&serde_json::Value>) -> Response {
        if sessions == SessionMode::Stateful && !in_session {
            // Any request but `initialize` without a session, before the method is even looked at.
            return (StatusCode::BAD_REQUEST, "Bad Request: Session ID is required").into_response();
        }
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id.cloned().unwrap_or(serde_json::Value::Null),
            "error": {"code": -32601, "message": "Method not found: server/discover"},
        });
        ([(header::CONTENT_TYPE, "application/json")], error.to_string()).into_response()
    }
}
