//! Reading one model step: SSE decoding ([`super::sse`]), typed events, the final [`StepResult`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::time::Instant;

use super::accumulate::{Chunk, StepAccumulator};
use super::error::{ErrorEnvelope, LlmError, UpstreamError};
use super::sse::SseDecoder;
use super::types::{StepResult, StreamItem};
use crate::error_chain::ErrorChain;
use crate::secret::{Secret, redact};

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// One streaming model call in progress. Read it with [`ChatStream::next`] until `Done` or an error; after
/// either, `next` returns `None`. Dropping it drops the HTTP response, which closes the upstream
/// connection and so cancels generation.
pub struct ChatStream {
    /// `None` once the step ended: the response is released as soon as it is no longer needed.
    body: Option<BodyStream>,
    sse: SseDecoder,
    deadline: Instant,
    request_id: Option<String>,
    api_key: Secret,
    acc: StepAccumulator,
    pending: VecDeque<StreamItem>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("open", &self.body.is_some())
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    pub(crate) fn new(
        response: reqwest::Response,
        deadline: Instant,
        request_id: Option<String>,
        api_key: Secret,
    ) -> Self {
        ChatStream {
            body: Some(Box::pin(response.bytes_stream())),
            sse: SseDecoder::default(),
            deadline,
            request_id,
            api_key,
            acc: StepAccumulator::default(),
            pending: VecDeque::new(),
        }
    }

    /// Reads a step from a response already in hand, e.g. one built from bytes; no request is made. For
    /// the SSE decoding micro-benchmark (`benches/micro.rs`).
    #[doc(hidden)]
    pub fn from_response(response: reqwest::Response, deadline: Instant) -> Self {
        ChatStream::new(response, deadline, None, Secret::new(String::new()))
    }

    /// The next event, `Some(Err(_))` once on failure, then `None`. Never waits past the deadline.
    pub async fn next(&mut self) -> Option<Result<StreamItem, LlmError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            let body = self.body.as_mut()?;
            let step = match self.sse.next_event() {
                Ok(Some(data)) => self.handle(&data),
                Ok(None) => match tokio::time::timeout_at(self.deadline, body.next()).await {
                    Err(_) => return Some(Err(self.fail(LlmError::DeadlineExceeded))),
                    Ok(Some(Ok(bytes))) => {
                        self.sse.push(&bytes);
                        Ok(())
                    }
                    Ok(Some(Err(e))) => {
                        let detail = redact(&ErrorChain(&e).to_string(), &[&self.api_key]);
                        Err(LlmError::Truncated { detail, request_id: self.request_id.clone() })
                    }
                    // The spec counts EOF as success only after `finish_reason` (the usage chunk may be lost).
                    Ok(None) if self.acc.finish_reason.is_some() => self.complete(),
                    Ok(None) => Err(LlmError::Truncated {
                        detail: "the stream ended before finish_reason or [DONE]".into(),
                        request_id: self.request_id.clone(),
                    }),
                },
                Err(e) => Err(LlmError::Malformed { detail: e.to_string(), request_id: self.request_id.clone() }),
            };
            if let Err(err) = step {
                return Some(Err(self.fail(err)));
            }
        }
    }

    /// The same events as a `futures` stream, for callers that prefer combinators.
    pub fn into_stream(self) -> impl Stream<Item = Result<StreamItem, LlmError>> + Send {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|item| (item, s)) })
    }

    fn handle(&mut self, data: &str) -> Result<(), LlmError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            return self.complete();
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| LlmError::Malformed {
            detail: format!("chunk is not valid JSON: {e}"),
            request_id: self.request_id.clone(),
        })?;
        if self.request_id.is_none() {
            self.request_id =
                chunk.id.as_deref().or(chunk.request_id.as_deref()).filter(|id| !id.is_empty()).map(str::to_owned);
        }
        if let Some(error) = chunk.error {
            let envelope = ErrorEnvelope {
                error: Some(error),
                request_id: chunk.request_id.map(Cow::into_owned),
                ..ErrorEnvelope::default()
            };
            let upstream = UpstreamError::from_envelope(200, envelope, self.request_id.clone(), &self.api_key);
            return Err(LlmError::mid_stream(upstream));
        }
        self.acc.apply(chunk, &mut self.pending);
        Ok(())
    }

    fn complete(&mut self) -> Result<(), LlmError> {
        let result = self
            .acc
            .finish(&mut self.pending)
            .map_err(|detail| LlmError::Malformed { detail, request_id: self.request_id.clone() })?;
        self.pending.push_back(StreamItem::Done(result));
        if let Some(mut body) = self.body.take() {
            // Reading the body to its end (already buffered right after `[DONE]`) lets the connection go
            // back to the pool instead of being closed; never wait for it.
            for _ in 0..4 {
                match body.next().now_or_never() {
                    Some(Some(_)) => continue,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, err: LlmError) -> LlmError {
        self.body = None;
        self.pending.clear();
        err
    }
}

/// Decodes a whole response body, delivered in `chunks`, exactly as a live [`ChatStream`] would: the
/// events before the end, then the step or the error. Exists for the fuzzer (`fuzz/`, target
/// `sse_stream`), which cannot afford a socket per input; not an API. Needs a tokio runtime with time.
#[doc(hidden)]
pub async fn decode_body(chunks: Vec<bytes::Bytes>) -> (Vec<StreamItem>, Result<StepResult, LlmError>) {
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)));
    let response = reqwest::Response::from(http::Response::new(body));
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let mut stream = ChatStream::new(response, deadline, None, Secret::new(""));
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamItem::Done(step)) => return (events, Ok(step)),
            Ok(event) => events.push(event),
            Err(err) => return (events, Err(err)),
        }
    }
    let never = "the stream ended without Done or an error".to_owned();
    (events, Err(LlmError::Malformed { detail: never, request_id: None }))
}
