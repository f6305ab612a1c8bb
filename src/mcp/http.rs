//! The HTTP backend handed to rmcp's streamable-HTTP transport: our shared reqwest client, trimmed to the
//! requests a one-turn session needs.
//!
//! rmcp's worker would add two requests per session beyond the four a one-tool turn needs: a standalone
//! `GET` SSE stream right after `initialized` (for server-initiated messages, which a single turn never
//! uses — we announce no sampling/elicitation/roots) and a `DELETE` at close. We answer the standalone GET
//! with "server does not support SSE" (rmcp then skips it quietly) and make `DELETE` opt-in. A `GET` that
//! resumes an interrupted response stream (`Last-Event-ID` present) still goes out: without it that call
//! would fail.
//!
//! The bearer is not part of rmcp's transport config: a session outlives the turn that opened it (it is
//! kept for the same user's next turns, [`super::pool`]), and each turn brings its own token (a refreshed
//! WorkloadAccessToken for the same user keeps the session). So every request takes the `Authorization`
//! header from the session's [`BearerCell`] as it is at that moment.
//!
//! rmcp runs each session's HTTP requests in a worker task of its own, and that worker does not stop an
//! in-flight request when the session's owner goes away (e.g. the handshake is abandoned at the deadline):
//! a hung server would keep the task and its connection forever. So every request and response stream here
//! also ends when the owner's [`SessionOwner`] is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use futures_util::StreamExt;

use http::{HeaderName, HeaderValue, header::AUTHORIZATION};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use tokio::sync::watch;

type HttpError = StreamableHttpError<reqwest::Error>;

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");

/// The `Authorization` header a session sends now; the turn using the session sets it.
#[derive(Clone)]
pub(crate) struct BearerCell(Arc<RwLock<HeaderValue>>);

impl BearerCell {
    pub(crate) fn new(value: HeaderValue) -> BearerCell {
        BearerCell(Arc::new(RwLock::new(value)))
    }

    pub(crate) fn set(&self, value: HeaderValue) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }

    fn apply(&self, mut headers: HashMap<HeaderName, HeaderValue>) -> HashMap<HeaderName, HeaderValue> {
        headers.insert(AUTHORIZATION, self.0.read().unwrap_or_else(|p| p.into_inner()).clone());
        headers
    }
}

/// What telemetry needs from a session's requests, which rmcp's worker sends outside any turn's context:
/// the trace context to send on requests that carry none in `params._meta` (`initialize`, `tools/list`),
/// set by the code that makes them, and the MCP session id the server gave (`mcp.session.id`). Untouched
/// without telemetry.
#[derive(Clone, Default)]
pub(crate) struct TraceCell(Arc<RwLock<Traced>>);

#[derive(Default)]
struct Traced {
    traceparent: Option<HeaderValue>,
    session_id: Option<Arc<str>>,
}

impl TraceCell {
    /// `span`'s `traceparent` for the session's next requests (nothing without telemetry).
    pub(crate) fn follow_span(&self, span: &crate::telemetry::Span) {
        if let Some((traceparent, _)) = span.trace_fields() {
            self.0.write().unwrap_or_else(|p| p.into_inner()).traceparent = HeaderValue::from_str(&traceparent).ok();
        }
    }

    /// The MCP session id the server assigned, once a request carried one.
    pub(crate) fn session_id(&self) -> Option<Arc<str>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).session_id.clone()
    }

    /// The `traceparent` header for `message`: its own `params._meta.traceparent` (a `tools/call`, made in
    /// the call's span), else the session's current one. Records the session id on the way.
    fn apply(
        &self,
        message: &ClientJsonRpcMessage,
        session_id: Option<&Arc<str>>,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) {
        let mut traced = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = session_id {
            traced.session_id = Some(id.clone());
        }
        let own = match message {
            ClientJsonRpcMessage::Request(request) => match &request.request {
                ClientRequest::CallToolRequest(call) => call
                    .params
                    .meta
                    .as_ref()
                    .and_then(|meta| meta.get_traceparent())
                    .and_then(|value| HeaderValue::from_str(value).ok()),
                _ => None,
            },
            _ => None,
        };
        if let Some(traceparent) = own.or_else(|| traced.traceparent.clone()) {
            headers.insert(TRACEPARENT, traceparent);
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Held by whoever owns the session (the handshake, then the open session); dropping it abandons every
/// request of the session still in flight.
pub(crate) struct SessionOwner(#[allow(dead_code)] watch::Sender<()>);

#[derive(Clone)]
pub(crate) struct SessionHttp {
    pub(crate) inner: reqwest::Client,
    pub(crate) delete_on_close: bool,
    bearer: BearerCell,
    trace: TraceCell,
    owner: watch::Receiver<()>,
}

impl SessionHttp {
    pub(crate) fn new(
        inner: reqwest::Client,
        delete_on_close: bool,
        bearer: BearerCell,
        trace: TraceCell,
    ) -> (SessionHttp, SessionOwner) {
        let (owner, alive) = watch::channel(());
        let http = SessionHttp { inner, delete_on_close, bearer, trace, owner: alive };
        (http, SessionOwner(owner))
    }

    /// Resolves once the owner is gone.
    fn owner_gone(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut alive = self.owner.clone();
        async move { while alive.changed().await.is_ok() {} }
    }

    async fn while_owned<T>(&self, request: impl Future<Output = Result<T, HttpError>>) -> Result<T, HttpError> {
        tokio::select! {
            result = request => result,
            () = self.owner_gone() => Err(StreamableHttpError::TransportChannelClosed),
        }
    }

    fn stream_while_owned(&self, stream: BoxedSseResponse) -> BoxedSseResponse {
        stream.take_until(self.owner_gone()).boxed()
    }

    fn post_while_owned(&self, response: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
        match response {
            StreamableHttpPostResponse::Sse(stream, session) => {
                StreamableHttpPostResponse::Sse(self.stream_while_owned(stream), session)
            }
            other => other,
        }
    }
}

/// reqwest errors carry the request URL, and rmcp logs transport errors at `error` level; a gateway URL
/// may hold a key in its query string.
fn without_url(error: HttpError) -> HttpError {
    match error {
        StreamableHttpError::Client(e) => StreamableHttpError::Client(e.without_url()),
        other => other,
    }
}

impl StreamableHttpClient for SessionHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let mut custom_headers = self.bearer.apply(custom_headers);
        // rmcp writes the 2026-07-28 standard headers only once a revision that has them is known. Our
        // `initialize` goes out before anything is known (a server that takes 2026-07-28 requests may be
        // behind it, routing on `Mcp-Method`); a 2025 server ignores the header.
        if let ClientJsonRpcMessage::Request(request) = &message
            && matches!(request.request, ClientRequest::InitializeRequest(_))
        {
            custom_headers.entry(MCP_METHOD).or_insert(HeaderValue::from_static("initialize"));
        }
        if crate::telemetry::active() {
            self.trace.apply(&message, session_id.as_ref(), &mut custom_headers);
        }
        let post =
            self.inner.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits);
        let response = self.while_owned(post).await.map_err(without_url)?;
        Ok(self.post_while_owned(response))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        if !self.delete_on_close {
            return Ok(());
        }
        let delete = self.inner.delete_session(uri, session_id, auth_header, self.bearer.apply(custom_headers));
        self.while_owned(delete).await.map_err(without_url)
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, HttpError> {
        if last_event_id.is_none() {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        let get = self.inner.get_stream(uri, session_id, last_event_id, auth_header, self.bearer.apply(custom_headers));
        let stream = self.while_owned(get).await.map_err(without_url)?;
        Ok(self.stream_while_owned(stream))
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, HttpError> {
        if last_event_id.is_none() {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        let get = self.inner.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            self.bearer.apply(custom_headers),
            max_sse_event_size,
        );
        let stream = self.while_owned(get).await.map_err(without_url)?;
        Ok(self.stream_while_owned(stream))
    }
}
