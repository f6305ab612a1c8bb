//! A session's run lease: one turn per (user, session) at a time, across instances (issue 28).
//!
//! A turn that names a session claims its lease before it runs and gives it back when it ends; a second
//! turn of the same session meanwhile finds it held ([`Claim::Busy`]) and is refused `session_busy`, or
//! waits `SESSION_BUSY_WAIT_SECS` for it. The lease's value is the holding turn's id: its fencing token
//! (only the holder renews, releases or writes under it) and the address a stop request is sent to. It
//! expires after `SESSION_LEASE_TTL_SECS` unless renewed, so an instance that dies mid-turn blocks its
//! session only that long; a running turn renews it every third of that time.
//!
//! In Redis the claim is folded into the session's load (one script: take the lease if free, then read
//! the session) and the release into the append (one script: check the token, append, release), so a
//! turn still costs two round trips (docs/design-notes.md, "One turn per session"). A turn continuing a
//! Responses `previous_response_id` has the response index checked by the same claim ([`Claim::NotIssued`]),
//! so it costs no more.

use std::time::Duration;

use super::StoredMessage;

/// What claiming a session's lease found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim {
    /// The lease is this turn's now; the session's stored messages (`None`: no such session yet).
    Held(Option<Vec<StoredMessage>>),
    /// Another turn holds it: its id.
    Busy { holder: String },
    /// The claim continued a response (`previous_response_id`) the store's response index does not hold
    /// for this user and session (never issued, expired, another user's or session's), or the session is
    /// gone: nothing was taken.
    NotIssued,
}

/// `SESSION_LEASE_TTL_SECS` / `SESSION_BUSY_WAIT_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseSettings {
    /// How long a lease lives without renewal: how long a dead instance's session stays blocked.
    pub(crate) ttl: Duration,
    /// How long a turn waits for a busy session before it is refused; zero: not at all.
    pub(crate) busy_wait: Duration,
}

impl LeaseSettings {
    /// Long enough that a renewal (every third of it) survives a slow store command or two; short enough
    /// that a session whose instance died is free again within half a minute.
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(30);

    /// A running turn renews its lease this often: two renewals may fail before it expires.
    pub(crate) fn renew_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }
}

/// How often a waiting turn asks again whether the session is free. Only a turn that found its session
/// busy and was told to wait pays it (one store command per poll).
pub(crate) const BUSY_POLL: Duration = Duration::from_millis(100);
