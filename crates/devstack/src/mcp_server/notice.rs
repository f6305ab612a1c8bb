//! `notifications/tools/list_changed` on the next response a 2025 client reads after
//! [`McpStandIn::change_tools`](super::McpStandIn::change_tools).
//!
//! rmcp's session worker sends every server notification but progress and cancellation on the standalone
//! `GET` stream (`LocalSessionWorker::resolve_outbound_channel`), and it is lost when the client holds none
//! open, as the function does. So the gate writes the notification at the head of the next POST response of
//! each client instead: an SSE event before the reply's own (what rmcp sends when a handler notifies during a
//! request on its stateless path), or, for a one-JSON-body reply, an SSE stream of the two (rmcp's own
//! fallback when a notification precedes a JSON reply). A `tools/list` answer is already the new list, so it
//! counts as told and carries nothing. 2026-07-28 requests never carry it: that revision has no unsolicited
//! notifications on a request's stream, only `ttlMs` and `subscriptions/listen` (see `tools.rs`).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::watch;

const LIST_CHANGED_EVENT: &[u8] = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";

/// The tool-list generation (bumped by each change) and how far each client has been told.
pub(super) struct Notices {
    generation: watch::Sender<u64>,
    /// Per `Mcp-Session-Id` (`""` for sessionless 2025 requests): the generation last told.
    told: Mutex<HashMap<String, u64>>,
}

impl Default for Notices {
    fn default() -> Self {
        Notices { generation: watch::Sender::new(0), told: Mutex::default() }
    }
}

impl Notices {
    pub(super) fn change(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }

    pub(super) fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// For `subscriptions/listen` (2026-07-28), which waits for the next change.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The generation a reply to this request would tell its client about, if that client is behind.
    pub(super) fn due(&self, client: &str) -> Option<u64> {
        let generation = self.generation();
        let told = self.told.lock().unwrap_or_else(|p| p.into_inner()).get(client).copied().unwrap_or(0);
        (told < generation).then_some(generation)
    }

    /// The client has been told (or has listed) up to `generation`; a new session starts told up to now.
    pub(super) fn told(&self, client: &str, generation: u64) {
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        let entry = told.entry(client.to_owned()).or_default();
        *entry = (*entry).max(generation);
    }

    /// Puts the notification ahead of a successful reply; `Err` gives back a reply that cannot carry it
    /// (an error status, an empty `202`) as it was.
    pub(super) async fn prepend(response: Response) -> Result<Response, Response> {
        let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let is_sse = content_type.is_some_and(|t| t.starts_with("text/event-stream"));
        let is_json = content_type.is_some_and(|t| t.starts_with("application/json"));
        if response.status() != StatusCode::OK || !(is_sse || is_json) {
            return Err(response);
        }
        let (mut parts, body) = response.into_parts();
        let rest = if is_sse {
            body.into_data_stream().left_stream()
        } else {
            // rmcp's JSON reply is one in-memory buffer: reading it cannot fail.
            let Ok(json) = axum::body::to_bytes(body, usize::MAX).await else {
                return Err(Response::from_parts(parts, Body::empty()));
            };
            let event = [b"data: ".as_slice(), &json, b"\n\n"].concat();
            futures_util::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(event)) }).right_stream()
        };
        parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/event-stream"));
        parts.headers.remove(header::CONTENT_LENGTH);
        let head = futures_util::stream::once(async { Ok(Bytes::from_static(LIST_CHANGED_EVENT)) });
        Ok(Response::from_parts(parts, Body::from_stream(head.chain(rest))))
    }
}
