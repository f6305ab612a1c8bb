//! The turn journal: what a background turn said, numbered, kept with a TTL so a client can collect it later
//! or pick its stream up where it dropped (docs/background.md).
//!
//! One entry per background turn, by its id (a Responses `resp_…`, an AgentScope task id): the
//! [`TurnRecord`] (status, the face's object, the request until the turn starts) and the turn's SSE frames,
//! each a complete `event:`/`data:` frame as the face rendered it, numbered from 0 in the order sent.
//! Only background turns are journaled: a foreground turn touches none of this.
//!
//! - [`MemoryJournal`]: one instance (`make dev`), bounded in entries and bytes.
//! - Redis (`super::redis`): `{prefix}turn:{id}` (the record, JSON) and `{prefix}turn:{id}:events` (a LIST
//!   of frames), both with `BACKGROUND_TTL_SECS`; every change is one script, so a record and its frames never
//!   disagree.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::SessionError;
use crate::secret::Secret;

/// Where a background turn stands. The names are the Responses API's (`incomplete` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TurnStatus {
    Queued,
    InProgress,
    Completed,
    Incomplete,
    Failed,
    Cancelled,
}

impl TurnStatus {
    /// The turn is over: nothing more will be appended.
    pub(crate) fn is_final(self) -> bool {
        !matches!(self, TurnStatus::Queued | TurnStatus::InProgress)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Queued => "queued",
            TurnStatus::InProgress => "in_progress",
            TurnStatus::Completed => "completed",
            TurnStatus::Incomplete => "incomplete",
            TurnStatus::Failed => "failed",
            TurnStatus::Cancelled => "cancelled",
        }
    }
}

/// What is kept about a background turn besides its frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TurnRecord {
    /// The route that took the request (`responses`, `process_task`): which face runs and shows it.
    pub(crate) face: String,
    pub(crate) status: TurnStatus,
    /// Unix seconds when it was queued.
    pub(crate) created_at: u64,
    /// The face's own object for the turn as it was queued (the queued Response); shown, with the current
    /// status, until the turn has a result.
    pub(crate) summary: String,
    /// The face's final object (the completed Response, the last AgentScope event), once the turn ended.
    #[serde(default)]
    pub(crate) result: Option<String>,
    /// Someone asked the turn to stop; the instance running it stops at its next look.
    #[serde(default)]
    pub(crate) cancel: bool,
    /// What the asynchronous invocation runs, taken out when it starts.
    #[serde(default)]
    pub(crate) pending: Option<Pending>,
}

/// A queued turn's request: the body as the caller sent it, and the caller's claim (which may hold the
/// caller's JWT, so it is a [`Secret`] and leaves the store as soon as the turn starts).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The record's `face` and `created_at`, for the invocation that runs it.
    pub(crate) face: String,
    pub(crate) created_at: u64,
    pub(crate) body: String,
    #[serde(with = "secret_text")]
    pub(crate) claim: Secret,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("body_bytes", &self.body.len()).finish_non_exhaustive()
    }
}

mod secret_text {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// A read of a journaled turn: its record and the frames asked for.
pub(crate) type TurnRead = (TurnRecord, Vec<String>);

/// How a turn ended, written with its last frames.
#[derive(Debug, Clone)]
pub(crate) struct TurnOutcome {
    pub(crate) status: TurnStatus,
    /// The face's final object.
    pub(crate) result: String,
}

/// Where background turns are journaled. Every call is bounded by the store's timeout.
pub(crate) trait Journal: Send + Sync {
    /// Records a new queued turn; refused when the id is taken.
    fn open<'a>(&'a self, id: &'a str, record: &'a TurnRecord) -> BoxFuture<'a, Result<(), SessionError>>;

    /// `queued` → `in_progress`, handing out (and forgetting) the pending request. `None` when the turn is
    /// unknown or not queued any more (a duplicate delivery, or cancelled before it started).
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Pending>, SessionError>>;

    /// Appends `frames` after those already there and, with `outcome`, ends the turn. Answers whether a
    /// cancel was asked.
    fn append<'a>(
        &'a self,
        id: &'a str,
        frames: Vec<String>,
        outcome: Option<TurnOutcome>,
    ) -> BoxFuture<'a, Result<bool, SessionError>>;

    /// The record and the frames numbered `from` on; `None` when the turn is unknown (or expired).
    fn read<'a>(&'a self, id: &'a str, from: usize) -> BoxFuture<'a, Result<Option<TurnRead>, SessionError>>;

    /// Asks the turn to stop: a queued one is `cancelled` at once (it will not run), a running one is
    /// flagged for its instance. The record afterwards; `None` when unknown.
    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TurnRecord>, SessionError>>;

    /// Resolves when the turn may have changed since it was last read (a reader then reads again).
    fn changed<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
}

/// `BACKGROUND_*` bounds of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalSettings {
    /// `BACKGROUND_TTL_SECS`: a journaled turn is forgotten this long after its last change.
    pub(crate) ttl: Duration,
    /// `BACKGROUND_MAX_TURNS` (memory): the oldest turns are forgotten beyond it.
    pub(crate) max_turns: usize,
    /// `BACKGROUND_MAX_BYTES` (memory): what all journaled frames and results together may take.
    pub(crate) max_bytes: usize,
}

impl JournalSettings {
    /// A day: long enough to collect the answer of a job started before leaving work.
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(86_400);
    pub(crate) const DEFAULT_MAX_TURNS: usize = 200;
    /// A tool turn's stream is some 10-30 KB; 8 MiB keeps a few hundred next to the session store's budget.
    pub(crate) const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;
}

/// What a journaled entry costs beyond its frames' text (record, map slot, frame headers).
const ENTRY_OVERHEAD: usize = 1024;
const FRAME_OVERHEAD: usize = 32;

/// The in-process journal: lost with the instance, so for one instance (`make dev`, tests).
pub(crate) struct MemoryJournal {
    table: Mutex<JournalTable>,
    /// Woken on every change: readers re-read (there are few of them; a spurious wake costs one lookup).
    notify: Arc<Notify>,
    settings: JournalSettings,
}

#[derive(Default)]
struct JournalTable {
    entries: HashMap<String, Entry>,
    /// Ids oldest first, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

struct Entry {
    record: TurnRecord,
    frames: Vec<String>,
    bytes: usize,
    expires: Instant,
}

impl MemoryJournal {
    pub(crate) fn new(settings: JournalSettings) -> MemoryJournal {
        MemoryJournal { table: Mutex::new(JournalTable::default()), notify: Arc::new(Notify::new()), settings }
    }

    fn with<T>(&self, f: impl FnOnce(&mut JournalTable, Instant) -> T) -> T {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        table.expire(now);
        f(&mut table, now)
    }
}

impl JournalTable {
    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> =
            self.entries.iter().filter(|(_, entry)| entry.expires <= now).map(|(id, _)| id.clone()).collect();
        for id in expired {
            self.remove(&id);
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(entry) = self.entries.remove(id) {
            self.bytes -= entry.bytes;
            self.order.retain(|other| other != id);
        }
    }

    /// Forgets the oldest turns other than `keep` until the table fits.
    fn fit(&mut self, keep: &str, settings: &JournalSettings) {
        while self.entries.len() > settings.max_turns || self.bytes > settings.max_bytes {
            let Some(oldest) = self.order.iter().find(|id| *id != keep).cloned() else { break };
            self.remove(&oldest);
        }
    }
}

fn record_cost(record: &TurnRecord) -> usize {
    ENTRY_OVERHEAD
        + record.summary.len()
        + record.result.as_ref().map_or(0, String::len)
        + record.pending.as_ref().map_or(0, |p| p.body.len())
}

impl Journal for MemoryJournal {
    fn open<'a>(&'a self, id: &'a str, record: &'a TurnRecord) -> BoxFuture<'a, Result<(), SessionError>> {
        let opened = self.with(|table, now| {
            if table.entries.contains_key(id) {
                return Err(SessionError::Refused(format!("the turn {id} is already journaled")));
            }
            let bytes = record_cost(record);
            if bytes > self.settings.max_bytes {
                return Err(SessionError::Refused("the request is larger than BACKGROUND_MAX_BYTES".into()));
            }
            let entry = Entry { record: record.clone(), frames: Vec::new(), bytes, expires: now + self.settings.ttl };
            table.entries.insert(id.to_owned(), entry);
            table.order.push_back(id.to_owned());
            table.bytes += bytes;
            table.fit(id, &self.settings);
            Ok(())
        });
        async move { opened }.boxed()
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Pending>, SessionError>> {
        let started = self.with(|table, now| {
            let entry = table.entries.get_mut(id)?;
            if entry.record.status != TurnStatus::Queued {
                return None;
            }
            entry.record.status = TurnStatus::InProgress;
            entry.expires = now + self.settings.ttl;
            let pending = entry.record.pending.take();
            let freed = pending.as_ref().map_or(0, |p| p.body.len());
            entry.bytes -= freed;
            table.bytes -= freed;
            pending
        });
        self.notify.notify_waiters();
        async move { Ok(started) }.boxed()
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        frames: Vec<String>,
        outcome: Option<TurnOutcome>,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        let appended = self.with(|table, now| {
            let Some(entry) = table.entries.get_mut(id) else {
                return Err(SessionError::Refused(format!("the turn {id} is no longer journaled")));
            };
            let mut added = frames.iter().map(|frame| frame.len() + FRAME_OVERHEAD).sum::<usize>();
            entry.frames.extend(frames);
            if let Some(outcome) = outcome {
                added += outcome.result.len();
                entry.record.status = outcome.status;
                entry.record.result = Some(outcome.result);
            }
            entry.expires = now + self.settings.ttl;
            entry.bytes += added;
            let cancel = entry.record.cancel;
            table.bytes += added;
            table.fit(id, &self.settings);
            Ok(cancel)
        });
        self.notify.notify_waiters();
        async move { appended }.boxed()
    }

    fn read<'a>(&'a self, id: &'a str, from: usize) -> BoxFuture<'a, Result<Option<TurnRead>, SessionError>> {
        let read = self.with(|table, _| {
            let entry = table.entries.get(id)?;
            let frames = entry.frames.get(from..).map(<[String]>::to_vec).unwrap_or_default();
            Some((entry.record.clone(), frames))
        });
        async move { Ok(read) }.boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TurnRecord>, SessionError>> {
        let cancelled = self.with(|table, _| {
            let entry = table.entries.get_mut(id)?;
            match entry.record.status {
                TurnStatus::Queued => {
                    entry.record.status = TurnStatus::Cancelled;
                    entry.record.pending = None;
                }
                TurnStatus::InProgress => entry.record.cancel = true,
                _ => {}
            }
            Some(entry.record.clone())
        });
        self.notify.notify_waiters();
        async move { Ok(cancelled) }.boxed()
    }

    fn changed<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, ()> {
        let notify = self.notify.clone();
        async move {
            // A change between the reader's last read and this call would be missed: the bound makes the
            // reader look again anyway.
            let _ = tokio::time::timeout(MEMORY_RECHECK, notify.notified()).await;
        }
        .boxed()
    }
}

/// How long a memory-journal reader waits for a wake before reading again anyway.
const MEMORY_RECHECK: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TurnRecord {
        TurnRecord {
            face: "responses".into(),
            status: TurnStatus::Queued,
            created_at: 1,
            summary: "{}".into(),
            result: None,
            cancel: false,
            pending: Some(Pending {
                face: "responses".into(),
                created_at: 1,
                body: "{\"input\":\"hi\"}".into(),
                claim: Secret::new("{\"jwt\":\"x\"}"),
            }),
        }
    }

    fn journal(max_turns: usize) -> MemoryJournal {
        MemoryJournal::new(JournalSettings { ttl: Duration::from_secs(60), max_turns, max_bytes: 1 << 20 })
    }

    #[tokio::test]
    async fn a_turn_starts_once_and_its_frames_are_numbered_in_order() {
        let journal = journal(10);
        journal.open("t1", &record()).await.unwrap();
        assert!(journal.open("t1", &record()).await.is_err(), "an id is journaled once");
        let pending = journal.start("t1").await.unwrap().expect("queued turns start");
        assert_eq!(pending.body, "{\"input\":\"hi\"}");
        assert!(journal.start("t1").await.unwrap().is_none(), "a second delivery runs nothing");
        journal.append("t1", vec!["a".into(), "b".into()], None).await.unwrap();
        let outcome = TurnOutcome { status: TurnStatus::Completed, result: "{\"done\":1}".into() };
        journal.append("t1", vec!["c".into()], Some(outcome)).await.unwrap();
        let (record, frames) = journal.read("t1", 1).await.unwrap().unwrap();
        assert_eq!(frames, ["b", "c"]);
        assert_eq!(record.status, TurnStatus::Completed);
        assert!(record.pending.is_none(), "the claim left the journal when the turn started");
    }

    #[tokio::test]
    async fn cancel_stops_a_queued_turn_and_flags_a_running_one() {
        let journal = journal(10);
        journal.open("q", &record()).await.unwrap();
        assert_eq!(journal.cancel("q").await.unwrap().unwrap().status, TurnStatus::Cancelled);
        assert!(journal.start("q").await.unwrap().is_none(), "a cancelled turn never starts");
        journal.open("r", &record()).await.unwrap();
        journal.start("r").await.unwrap();
        assert!(!journal.append("r", vec![], None).await.unwrap());
        journal.cancel("r").await.unwrap();
        assert!(journal.append("r", vec![], None).await.unwrap(), "the running instance hears of it");
        assert!(journal.cancel("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_oldest_turns_make_room() {
        let journal = journal(2);
        for id in ["a", "b", "c"] {
            journal.open(id, &record()).await.unwrap();
        }
        assert!(journal.read("a", 0).await.unwrap().is_none());
        assert!(journal.read("c", 0).await.unwrap().is_some());
    }
}
