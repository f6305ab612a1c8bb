//! Session memory: the conversation of one (user, session) kept between stateless invocations
//! (docs/sessions.md). The pipeline loads it before a turn and appends the request's input and
//! the turn's completed output after it, so every face that names a session gets memory for free.
//!
//! - [`message`]: the AgentScope runtime's `Session`/`Message` JSON, what every store keeps.
//! - [`replay`]: stored messages → what the model is sent, trimmed to the [`Window`].
//! - [`record`]: a turn's events → the messages to store.
//! - [`journal`]: background turns' events, numbered, with a TTL (only background turns are journaled).
//! - [`memory`]: the in-process store (bounded LRU, message cap, idle TTL); [`redis`]: Redis/Tair with the
//!   AgentScope key layout and an atomic, de-duplicating append. `SESSION_STORE=none` builds no store.

pub(crate) mod journal;
pub(crate) mod lease;
pub(crate) mod memory;
pub(crate) mod message;
pub(crate) mod redis;
pub(crate) mod replay;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::secret::Secret;
pub(crate) use journal::{Journal, JournalSettings};
pub(crate) use lease::{Claim, LeaseSettings};
pub(crate) use message::{Record, Session, StoredMessage};
pub(crate) use replay::Window;

/// Longest `session_id` accepted (the FC affinity header allows 64; clients' own ids are often uuids).
pub(crate) const MAX_SESSION_ID_CHARS: usize = 128;

/// Whose conversation: the user the function trusts and the session the caller names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    pub(crate) user_id: String,
    pub(crate) session_id: String,
}

/// Where conversations are kept. Every call is bounded by the caller (the turn's deadline).
pub(crate) trait Store: Send + Sync {
    /// The stored messages, oldest first; `None` when the session does not exist (or has expired).
    fn load<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>>;

    /// Appends `messages`, skipping any whose `id` is already stored, atomically with respect to other
    /// appends to the same session; refreshes the TTL. Creates the session when missing. Each record's
    /// JSON is kept (or sent) as it is.
    fn append<'a>(&'a self, key: &'a SessionKey, messages: Vec<Record>) -> BoxFuture<'a, Result<(), SessionError>>;

    /// The session `key` as the continuation of `response`, in one round trip: `None` unless the response
    /// index holds `response` for this very user and session (an id never issued, expired, issued to
    /// another user or in another session) and the session still exists. Only for a request checked without
    /// running (a background request when it is queued): a turn checks in its claim ([`Store::claim`]).
    fn load_continuing<'a>(
        &'a self,
        key: &'a SessionKey,
        response: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>>;

    /// Claims the session's run lease for the turn `token` (for `ttl`) and, when it got it, loads the
    /// session in the same call ([`lease`]). With `continuing` (a Responses `previous_response_id`), the
    /// same call first checks the response index as [`Store::load_continuing`] does and takes nothing when
    /// the response is not this user's in this session ([`Claim::NotIssued`]).
    fn claim<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
        continuing: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Claim, SessionError>>;

    /// Extends the lease `token` holds; `false` when it holds it no more (expired, taken by another).
    fn renew<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SessionError>>;

    /// Gives the lease back if `token` still holds it.
    fn release<'a>(&'a self, key: &'a SessionKey, token: &'a str) -> BoxFuture<'a, Result<(), SessionError>>;

    /// [`Store::append`] under the lease `token` held, released in the same call. Refused
    /// ([`SessionError::Fenced`]) when another turn holds the lease now: this turn's lease expired and
    /// the session went on without it. With `response` (the Responses face answered the turn under that
    /// id), the same write notes in the store's response index that this user's `response` continues this
    /// session, for `SESSION_TTL_SECS` from now, so a later `previous_response_id` finds it
    /// ([`Store::claim`]).
    fn append_releasing<'a>(
        &'a self,
        key: &'a SessionKey,
        messages: Vec<Record>,
        token: &'a str,
        response: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SessionError>>;

    /// The id of the turn holding the session's lease, if any (a stop request by session).
    fn holder<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<String>, SessionError>>;

    /// Asks every instance to stop the turn `turn` (it does not run here): `false` when the store
    /// connects no instances (in process: there is no other).
    fn publish_stop<'a>(&'a self, _turn: &'a str) -> BoxFuture<'a, Result<bool, SessionError>> {
        Box::pin(std::future::ready(Ok(false)))
    }

    /// Calls `on_stop` with every turn id another instance publishes ([`Store::publish_stop`]), from now
    /// on, for the life of the process (in process: never).
    fn listen_stops(&self, _on_stop: Arc<dyn Fn(&str) + Send + Sync>) {}

    /// Whether other instances read what this store keeps (Redis), so records a later request may ask
    /// about on any instance go here ([`Store::keep`]).
    fn shared(&self) -> bool {
        false
    }

    /// Keeps `value` under `name` for `ttl` where every instance reads it (a shared store only; the
    /// in-process store keeps nothing: its instance has its own records).
    fn keep<'a>(&'a self, _name: &'a str, _value: String, _ttl: Duration) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// What [`Store::keep`] kept under `name`, if it has not expired.
    fn kept<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, Result<Option<String>, SessionError>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Forgets the session; `false` when there was none.
    fn delete<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<bool, SessionError>>;

    /// The store's kind as telemetry names it (`db.system.name`).
    fn system(&self) -> &'static str;
}

/// Why a store could not answer. Messages never carry the store's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("the session store is unreachable: {0}")]
    Unreachable(String),
    #[error("the session store did not answer in time")]
    Timeout,
    #[error("the stored session {session:?} does not parse ({reason}); it was left as it is")]
    Corrupt { session: String, reason: String },
    #[error("the session store refused the command: {0}")]
    Refused(String),
    #[error("the session's lease was lost while the turn ran (another turn of the session holds it now)")]
    Fenced,
}

impl From<tokio::time::error::Elapsed> for SessionError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        SessionError::Timeout
    }
}

/// `SESSION_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreKind {
    None,
    Memory,
    /// A `redis://` or `rediss://` URL (it may hold a password: a [`Secret`]).
    Redis(Secret),
}

/// `SESSION_*`: which store, its bounds and the model's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionSettings {
    pub(crate) store: StoreKind,
    /// `SESSION_TTL_SECS`: a session idle this long is forgotten (memory: since last use; Redis: since
    /// last write, the key's `EX`).
    pub(crate) ttl: Duration,
    /// `SESSION_MAX_SESSIONS` (memory): least recently used sessions are evicted beyond it.
    pub(crate) max_sessions: usize,
    /// `SESSION_MAX_MESSAGES` (memory): the oldest messages of a session are dropped beyond it.
    pub(crate) max_messages: usize,
    /// `SESSION_MAX_BYTES` (memory): what all sessions together may cost (each message's stored JSON
    /// plus a fixed overhead per message and per session); least recently used sessions are evicted
    /// beyond it, and a message larger than all of it is refused.
    pub(crate) max_bytes: usize,
    /// `SESSION_STORE_TIMEOUT_MS` (Redis): one command, connecting included; a turn fails `session_error`
    /// rather than wait longer.
    pub(crate) timeout: Duration,
    /// `SESSION_KEY_PREFIX` (Redis): put before `session:` and `session_index:`.
    pub(crate) key_prefix: String,
    /// `SESSION_REDIS_CLUSTER` (Redis): the user is a hash tag in both keys, for a Redis Cluster / Tair
    /// cluster instance, where the append script's two keys must share a slot.
    pub(crate) redis_cluster: bool,
    /// `SESSION_WINDOW_MESSAGES` / `SESSION_WINDOW_CHARS`.
    pub(crate) window: Window,
    /// `BACKGROUND_TTL_SECS`, `BACKGROUND_MAX_TURNS`, `BACKGROUND_MAX_BYTES`: the turn journal, kept in the
    /// same store.
    pub(crate) journal: JournalSettings,
    /// `SESSION_LEASE_TTL_SECS` / `SESSION_BUSY_WAIT_SECS`: one turn per session at a time.
    pub(crate) lease: LeaseSettings,
}

impl SessionSettings {
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(86_400);
    pub(crate) const DEFAULT_MAX_SESSIONS: usize = 1_000;
    pub(crate) const DEFAULT_MAX_MESSAGES: usize = 100;
    /// Issue 17: a full store plus 200 streams must fit in half of the smallest FC memory (128 MB), next to
    /// what the idle process and the streams take; the store's RSS stays under this budget, whose
    /// per-message charge errs on the safe side (BENCHMARKS.md, "Figures behind the code's bounds").
    pub(crate) const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    pub(crate) const DEFAULT_WINDOW: Window = Window { messages: 60, chars: 120_000 };
}

/// Session memory as configured: the store `SESSION_STORE` names and the replay window, built once per
/// process; `None` for `SESSION_STORE=none`. (The in-process store's own table is `memory::SessionTable`.)
pub(crate) struct SessionMemory {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) window: Window,
    /// Background turns' events, in the same store (Redis), or in the instance beside the sessions.
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) lease: LeaseSettings,
}

impl SessionMemory {
    pub(crate) fn new(settings: &SessionSettings) -> Result<Option<SessionMemory>, SessionError> {
        let (store, journal): (Arc<dyn Store>, Arc<dyn Journal>) = match &settings.store {
            StoreKind::None => return Ok(None),
            StoreKind::Memory => {
                (Arc::new(memory::MemoryStore::new(settings)), Arc::new(journal::MemoryJournal::new(settings.journal)))
            }
            StoreKind::Redis(url) => {
                let redis = Arc::new(redis::RedisStore::new(url, settings, settings.journal.ttl)?);
                (redis.clone(), redis)
            }
        };
        Ok(Some(SessionMemory { store, window: settings.window, journal, lease: settings.lease }))
    }
}

/// A `session_id` that can be a key: non-empty, at most [`MAX_SESSION_ID_CHARS`], no control characters,
/// and no `:` — the Redis key is `session:{user}:{session}`, so a colon in the session id would let user
/// `a:b` with session `c` and user `a` with session `b:c` share a key.
pub(crate) fn check_session_id(session_id: &str) -> Result<(), String> {
    if session_id.chars().count() > MAX_SESSION_ID_CHARS {
        return Err(format!("session_id: longer than {MAX_SESSION_ID_CHARS} characters"));
    }
    if session_id.chars().any(|c| c == ':' || c.is_control()) {
        return Err("session_id: must not contain ':' or control characters".to_owned());
    }
    Ok(())
}
