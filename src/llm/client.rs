//! The HTTP side: request body, sending, error responses, retries before the stream starts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use tokio::time::Instant;

use super::error::{LlmError, UpstreamError};
use super::key::{FixedKey, KeySource};
use super::stream::ChatStream;
use super::types::{ChatMessage, ToolSpec};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::upstream::Endpoint;

/// How throttling and server errors are retried (before the stream starts): the shared schedule, tuned for a
/// model call. A `Retry-After` longer than [`crate::retry::MAX_HINT`] fails the turn at once
/// (`model_throttled`, the hint in the message) rather than sit silent in front of its caller.
const RETRY: RetryPolicy = RetryPolicy::MODEL;
/// Error bodies are small JSON; anything longer is cut rather than buffered.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Where DashScope (and the gateways in front of it) put the request id when the body has none.
const REQUEST_ID_HEADERS: [&str; 3] = ["x-request-id", "x-dashscope-request-id", "request-id"];

/// The `DASHSCOPE_*` variables, as config.rs parses them (straight into this type, no copy in between).
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// `DASHSCOPE_BASE_URL`: the compatible-mode base, e.g. `https://dashscope.aliyuncs.com/compatible-mode/v1`
    /// (keys only work in their own region).
    pub base_url: Endpoint,
    /// `DASHSCOPE_API_KEY`; empty when `DASHSCOPE_API_KEY_PROVIDER` says the key comes from the vault (the
    /// pipeline then gives each turn's client a [`KeySource`] with [`LlmClient::with_keys`]).
    pub api_key: Secret,
    /// `DASHSCOPE_MODEL`: used when a [`ChatRequest`] names no model.
    pub model: String,
    /// `DASHSCOPE_ALLOWED_MODELS`: the models a caller's request may select (empty: none). Enforced by the app
    /// when it builds the [`ChatRequest`]; the client sends whatever model it is given.
    pub allowed_models: Vec<String>,
    /// `DASHSCOPE_ENABLE_THINKING`: sent as `enable_thinking` only when set, since model defaults differ.
    pub enable_thinking: Option<bool>,
}

/// The DashScope chat client. Cheap to clone; all clones share one connection pool.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
    keys: Arc<dyn KeySource>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: String,
    /// The endpoint's host and port, for spans and metrics (`server.address`, `server.port`).
    host: String,
    port: u16,
    model: String,
    enable_thinking: Option<bool>,
}

/// One model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// `None` uses [`LlmSettings::model`].
    pub(crate) model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// When empty, no tool fields are sent at all.
    pub tools: Vec<ToolSpec>,
    pub sampling: Sampling,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        ChatRequest { messages, ..ChatRequest::default() }
    }
}

/// Sampling parameters passed through unchanged; unset ones are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sampling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
}

/// `stop` is either one string or a list, as the caller gave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [ToolSpec],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_thinking: Option<bool>,
    #[serde(flatten)]
    sampling: &'a Sampling,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl LlmClient {
    /// Builds the client (and its one `reqwest::Client`). Fails only if the TLS stack cannot initialise.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let http = crate::upstream::client_builder().build().map_err(|e| LlmError::transport(&e))?;
        let endpoint = format!("{}/chat/completions", settings.base_url.as_str().trim_end_matches('/'));
        let host = settings.base_url.host().to_owned();
        let port = settings.base_url.url().port_or_known_default().unwrap_or(443);
        Ok(LlmClient {
            inner: Arc::new(Inner {
                http,
                endpoint,
                host,
                port,
                model: settings.model,
                enable_thinking: settings.enable_thinking,
            }),
            keys: Arc::new(FixedKey(settings.api_key)),
        })
    }

    /// The same client (same connection pool) asking `keys` for its key: one turn's view of the vault.
    pub(crate) fn with_keys(&self, keys: Arc<dyn KeySource>) -> LlmClient {
        LlmClient { inner: self.inner.clone(), keys }
    }

    /// The model a request with `requested` (its `model`) goes to: that one, else the configured one.
    pub(crate) fn model_name<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested.unwrap_or(&self.inner.model)
    }

    /// The DashScope host and port requests go to.
    pub(crate) fn server(&self) -> (&str, u16) {
        (&self.inner.host, self.inner.port)
    }

    /// The exact JSON body [`LlmClient::stream`] sends for `request`.
    #[cfg(test)]
    pub(crate) fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
        serde_json::to_value(self.wire(request)).unwrap_or(serde_json::Value::Null)
    }

    fn wire<'a>(&'a self, request: &'a ChatRequest) -> WireRequest<'a> {
        let has_tools = !request.tools.is_empty();
        WireRequest {
            model: request.model.as_deref().unwrap_or(&self.inner.model),
            messages: &request.messages,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            tools: &request.tools,
            tool_choice: has_tools.then_some("auto"),
            parallel_tool_calls: has_tools.then_some(true),
            enable_thinking: self.inner.enable_thinking,
            sampling: &request.sampling,
        }
    }

    /// Starts one streaming model call. Returns once DashScope answered 200; error statuses come back as
    /// `Err`. Throttling and server errors are retried (at most twice, after the upstream's `Retry-After` up
    /// to 10 s, else a jittered backoff) — here, before the caller has seen any event, and never past
    /// `deadline`. Once the [`ChatStream`] exists nothing is retried.
    ///
    /// A 401 is reported to the key source; when it says a fresh key may differ (a vault-held key that was
    /// rotated), the call is made once more with the fresh key — once, so a key that is simply wrong
    /// costs one refetch, not a loop.
    pub async fn stream(&self, request: &ChatRequest, deadline: Instant) -> Result<ChatStream, LlmError> {
        let body = Bytes::from(
            serde_json::to_vec(&self.wire(request))
                .map_err(|e| LlmError::Malformed { detail: format!("request body: {e}"), request_id: None })?,
        );
        let mut key = self.key(deadline).await?;
        let mut refreshed = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match self.send_once(body.clone(), &key, deadline).await {
                Ok(stream) => return Ok(stream),
                Err(err) => err,
            };
            let refused = matches!(&err, LlmError::Unauthorized(up) if up.status == 401);
            if refused && !refreshed && self.keys.refused(&key) {
                tracing::warn!(error = %err, "the model key was refused; fetching it again");
                refreshed = true;
                key = self.key(deadline).await?;
                // The refetch is not a retry of a throttled or failing service: it does not count as a try.
                attempts -= 1;
                continue;
            }
            if !err.is_retryable() {
                return Err(err);
            }
            let hint = err.upstream().and_then(|upstream| upstream.retry_after);
            let Some(wait) = RETRY.next_delay(attempts, hint, deadline) else {
                return Err(err);
            };
            tracing::warn!(error = %err, attempt = attempts, wait_ms = wait.as_millis() as u64, "retrying model call");
            tokio::time::sleep(wait).await;
        }
    }

    async fn key(&self, deadline: Instant) -> Result<Secret, LlmError> {
        match tokio::time::timeout_at(deadline, self.keys.key()).await {
            Ok(key) => key.map_err(LlmError::Key),
            Err(_) => Err(LlmError::DeadlineExceeded),
        }
    }

    async fn send_once(&self, body: Bytes, api_key: &Secret, deadline: Instant) -> Result<ChatStream, LlmError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", api_key.expose())).map_err(|_| {
            LlmError::Transport { detail: "the API key contains characters not allowed in a header".into() }
        })?;
        auth.set_sensitive(true);
        let send = self
            .inner
            .http
            .post(&self.inner.endpoint)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            // The model call's span as the parent of whatever DashScope records (nothing without tracing).
            .headers(crate::telemetry::trace_headers())
            .body(body)
            .send();
        let mut response = tokio::time::timeout_at(deadline, send)
            .await
            .map_err(|_| LlmError::DeadlineExceeded)?
            .map_err(|e| LlmError::transport(&e))?;
        let status = response.status();
        let request_id = header_request_id(response.headers());
        let retry_after = header_retry_after(response.headers());
        if status.is_success() {
            return Ok(ChatStream::new(response, deadline, request_id, api_key.clone()));
        }
        let mut body = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await? {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
            Ok::<_, reqwest::Error>(())
        };
        // A body cut short still leaves the status, which is what classifies the error: read errors are moot.
        if tokio::time::timeout_at(deadline, read).await.is_err() {
            return Err(LlmError::DeadlineExceeded);
        }
        let mut upstream = UpstreamError::from_body(status.as_u16(), &body, request_id, api_key);
        upstream.retry_after = retry_after;
        Err(LlmError::from_status(upstream))
    }
}

/// `Retry-After: <seconds>`; the HTTP-date form is left to our own backoff.
fn header_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn header_request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok().filter(|v| !v.is_empty()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(thinking: Option<bool>) -> LlmClient {
        LlmClient::new(LlmSettings {
            base_url: Endpoint::parse("http://127.0.0.1:1/compatible-mode/v1/").unwrap(),
            api_key: Secret::new("k"),
            model: "qwen-max".into(),
            allowed_models: Vec::new(),
            enable_thinking: thinking,
        })
        .unwrap()
    }

    #[test]
    fn body_without_tools_omits_tool_fields_and_thinking() {
        let c = client(None);
        let body = c.request_body(&ChatRequest::new(vec![ChatMessage::User { content: "hi".into() }]));
        assert_eq!(
            body,
            json!({"model":"qwen-max","messages":[{"role":"user","content":"hi"}],"stream":true,
                   "stream_options":{"include_usage":true}})
        );
        assert_eq!(c.inner.endpoint, "http://127.0.0.1:1/compatible-mode/v1/chat/completions");
    }

    #[test]
    fn body_with_tools_sampling_and_thinking() {
        let c = client(Some(false));
        let request = ChatRequest {
            model: Some("qwen-plus".into()),
            messages: vec![],
            tools: vec![ToolSpec { name: "t".into(), description: "d".into(), parameters: Default::default() }],
            sampling: Sampling {
                temperature: Some(0.5),
                top_p: None,
                max_tokens: Some(10),
                seed: Some(1),
                stop: Some(StopSequences::Many(vec!["x".into()])),
            },
        };
        let body = c.request_body(&request);
        assert_eq!(body["model"], "qwen-plus");
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["parallel_tool_calls"], true);
        assert_eq!(body["enable_thinking"], false);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["stop"], json!(["x"]));
        assert!(body.get("top_p").is_none());
        assert_eq!(body["tools"][0]["function"]["name"], "t");
        let one = Sampling { stop: Some(StopSequences::One("end".into())), ..Sampling::default() };
        assert_eq!(serde_json::to_value(one).unwrap(), json!({"stop":"end"}));
    }
}
