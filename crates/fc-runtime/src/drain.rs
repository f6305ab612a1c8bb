//! Tells in-flight requests when a shutdown will cut them off, so they can end with a final answer
//! instead of being dropped mid-stream when the grace period runs out.

use std::fmt;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The moment, once a shutdown has begun, after which the server abandons in-flight requests (minus a
/// margin to write a last event). Reached through [`crate::Context::drain`]; select on [`Drain::cutoff`] next
/// to long-running work to end it with a final answer of your own.
#[derive(Clone)]
pub struct Drain(watch::Receiver<Option<Instant>>);

impl Drain {
    /// A drain that never comes (contexts made outside a running server, tests).
    pub fn never() -> Drain {
        let (_tx, rx) = watch::channel(None);
        Drain(rx)
    }

    pub(crate) fn channel() -> (watch::Sender<Option<Instant>>, Drain) {
        let (tx, rx) = watch::channel(None);
        (tx, Drain(rx))
    }

    /// The cut-off for a shutdown starting now: the end of the grace period less a margin (a quarter of
    /// it, at most one second) to send a final event.
    pub(crate) fn cutoff_after(grace: Duration) -> Instant {
        Instant::now() + grace - (grace / 4).min(Duration::from_secs(1))
    }

    /// Resolves at the cut-off once a shutdown has begun; never resolves otherwise.
    pub async fn cutoff(&self) {
        let mut rx = self.0.clone();
        let at = match rx.wait_for(Option::is_some).await {
            Ok(at) => *at,
            // The server is gone without announcing a drain: nothing to wait for.
            Err(_) => None,
        };
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Drain").field(&*self.0.borrow()).finish()
    }
}
