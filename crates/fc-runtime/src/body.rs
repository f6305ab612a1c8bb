//! The body of a request or a response: a whole buffer, a stream of chunks sent as they are produced, or
//! the request body as it arrives from FC.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::mpsc;

/// The body of a request ([`crate::Request`]: what the client or the event source sent, read as it
/// arrives) and of a response: [`Body::full`] or [`Body::empty`], or a stream from [`Body::channel`].
/// Response bodies go out with `Transfer-Encoding: chunked`, each streamed chunk written and flushed when
/// it is produced — which is also how FC recognises a streaming response.
///
/// It is an [`http_body::Body`], so any `http-body` tool reads it; [`crate::RequestExt::body_bytes`]
/// reads a request's up to a limit.
pub struct Body(Kind);

enum Kind {
    Full(Option<Bytes>),
    /// Chunks known when the response was made come first, then whatever the sender sends.
    Streaming(VecDeque<Bytes>, mpsc::Receiver<Bytes>),
    /// A request body on its way in. Private: the server's types stay out of the public API.
    Incoming(hyper::body::Incoming),
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is longer than the limit it was read with.
    #[error("the body exceeds {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed or the body was malformed while it was being read.
    #[error("could not read the body: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The producing half of a streaming body. Sending fails once the client has gone away, which is the
/// producer's signal to stop upstream work.
#[derive(Clone, Debug)]
pub struct BodySender(mpsc::Sender<Bytes>);

/// The client went away; nobody reads the body any more.
#[derive(Debug, thiserror::Error)]
#[error("the client closed the connection")]
pub struct ClientGone;

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Body {
        Body(Kind::Full(None))
    }

    /// A body that is all there at once.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// A streaming body and its sender. A small buffer keeps memory flat: a slow client applies
    /// backpressure to the producer instead of letting chunks pile up.
    pub fn channel() -> (BodySender, Body) {
        Body::channel_starting_with(Vec::new())
    }

    /// A streaming body whose first chunks are already known: they leave in the same write as the
    /// response head instead of one write (and one wake-up of the client) later.
    pub fn channel_starting_with(first: Vec<Bytes>) -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(32);
        (BodySender(tx), Body(Kind::Streaming(first.into(), rx)))
    }

    pub(crate) fn incoming(body: hyper::body::Incoming) -> Body {
        Body(Kind::Incoming(body))
    }

    /// The whole body, refusing more than `limit` bytes.
    pub(crate) async fn bytes_up_to(self, limit: usize) -> Result<Bytes, BodyError> {
        match Limited::new(self, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) => match error.downcast::<BodyError>() {
                Ok(error) => Err(*error),
                Err(error) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
                Err(error) => Err(BodyError::Read(error)),
            },
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::full(text)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::full(text)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::full(bytes)
    }
}

impl BodySender {
    /// Sends one chunk; it is written and flushed to the client as soon as the connection takes it. Waits
    /// while the client is slow (backpressure); fails once the client has gone away.
    pub async fn send(&self, chunk: impl Into<Bytes>) -> Result<(), ClientGone> {
        self.0.send(chunk.into()).await.map_err(|_| ClientGone)
    }

    /// Resolves when the body has been dropped (client disconnected or response finished).
    pub async fn closed(&self) {
        self.0.closed().await
    }

    /// Whether the body has been dropped already (see [`BodySender::closed`]).
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Kind::Full(_) => "full",
            Kind::Streaming(..) => "streaming",
            Kind::Incoming(_) => "incoming",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Streaming(first, rx) => match first.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
            },
            Kind::Incoming(body) => {
                Pin::new(body).poll_frame(cx).map(|frame| frame.map(|f| f.map_err(|e| BodyError::Read(Box::new(e)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Streaming(..) => false,
            Kind::Incoming(body) => body.is_end_stream(),
        }
    }

    /// Never an exact size, so hyper frames every response chunked and never writes `content-length`,
    /// one of the response headers FC reserves for itself.
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_body_past_the_limit_is_too_large_and_one_within_it_is_whole() {
        assert!(matches!(Body::full("12345").bytes_up_to(4).await, Err(BodyError::TooLarge { limit: 4 })));
        assert_eq!(&Body::full("1234").bytes_up_to(4).await.unwrap()[..], b"1234");
    }

    #[tokio::test]
    async fn the_first_chunks_come_before_the_sent_ones() {
        let (sender, body) = Body::channel_starting_with(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        sender.send("c").await.unwrap();
        drop(sender);
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");
    }
}
