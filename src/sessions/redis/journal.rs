//! The turn journal in Redis/Tair, beside the sessions (docs/background.md):
//!
//! - `{prefix}turn:{id}`: STRING, the [`TurnRecord`] as JSON;
//! - `{prefix}turn:{id}:events`: LIST of the turn's SSE frames, numbered by their position.
//!
//! With `SESSION_REDIS_CLUSTER` the id is a hash tag (`turn:{id}`), so both keys share a slot. Every change is
//! one script over both keys — start, append (frames and the end together), cancel — so a reader never sees
//! an end without its frames, and two deliveries of one turn never both start it. A read is one pipelined
//! `GET` + `LRANGE`. Only background turns come here: a foreground turn costs the store nothing more.

use futures_util::future::{BoxFuture, FutureExt};

use super::RedisStore;
use crate::sessions::SessionError;
use crate::sessions::journal::{Journal, Pending, TurnOutcome, TurnRead, TurnRecord};

/// How often a reader on another instance looks for new frames (Redis has no wake-up across instances
/// short of pub/sub, and a reader is a client waiting on a background turn: a quarter second is live enough).
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// KEYS: record. ARGV: TTL seconds. Returns the pending request as JSON, or nil when not queued.
const START: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return false end
local doc = cjson.decode(current)
if doc.status ~= 'queued' then return false end
local pending = doc.pending
doc.pending = nil
doc.status = 'in_progress'
redis.call('SET', KEYS[1], cjson.encode(doc), 'EX', ARGV[1])
if pending == nil or pending == cjson.null then return false end
return cjson.encode(pending)
"#;

/// KEYS: record, events. ARGV: TTL seconds, final status ('' while running), result, frames…
/// Returns 1 when a cancel was asked, 0 otherwise; an error when the turn is gone.
const APPEND: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return redis.error_reply('GONE the turn is no longer journaled') end
if #ARGV > 3 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 4)) end
local doc = cjson.decode(current)
if ARGV[2] ~= '' then
  doc.status = ARGV[2]
  doc.result = ARGV[3]
  redis.call('SET', KEYS[1], cjson.encode(doc), 'EX', ARGV[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
if doc.cancel == true then return 1 end
return 0
"#;

/// KEYS: record. Returns the record after, or nil when unknown.
const CANCEL: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return false end
local doc = cjson.decode(current)
if doc.status == 'queued' then
  doc.status = 'cancelled'
  doc.pending = nil
elseif doc.status == 'in_progress' then
  doc.cancel = true
else
  return current
end
local value = cjson.encode(doc)
redis.call('SET', KEYS[1], value, 'KEEPTTL')
return value
"#;

impl RedisStore {
    fn turn_keys(&self, id: &str) -> (String, String) {
        let id = if self.cluster { format!("{{{id}}}") } else { id.to_owned() };
        let record = format!("{}turn:{id}", self.prefix);
        let events = format!("{record}:events");
        (record, events)
    }

    fn parse_record(id: &str, text: &str) -> Result<TurnRecord, SessionError> {
        serde_json::from_str(text)
            .map_err(|error| SessionError::Corrupt { session: format!("turn {id}"), reason: error.to_string() })
    }

    async fn open_turn(&self, id: &str, record: &TurnRecord) -> Result<(), SessionError> {
        let (key, _) = self.turn_keys(id);
        let value = serde_json::to_string(record).map_err(|e| SessionError::Refused(e.to_string()))?;
        let mut connection = self.connection().await?;
        let set: Option<String> = self
            .bounded(async {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("NX")
                    .arg("EX")
                    .arg(self.journal_ttl_secs)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.error(e))
            })
            .await?;
        match set {
            Some(_) => Ok(()),
            None => Err(SessionError::Refused(format!("the turn {id} is already journaled"))),
        }
    }

    async fn start_turn(&self, id: &str) -> Result<Option<Pending>, SessionError> {
        let (key, _) = self.turn_keys(id);
        let mut connection = self.connection().await?;
        let mut invocation = self.journal_start.prepare_invoke();
        invocation.key(key).arg(self.journal_ttl_secs);
        let pending: Option<String> =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await?;
        pending
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| SessionError::Corrupt { session: format!("turn {id}"), reason: e.to_string() })
            })
            .transpose()
    }

    async fn append_turn(
        &self,
        id: &str,
        frames: Vec<String>,
        outcome: Option<TurnOutcome>,
    ) -> Result<bool, SessionError> {
        let (key, events) = self.turn_keys(id);
        let mut connection = self.connection().await?;
        let mut invocation = self.journal_append.prepare_invoke();
        invocation.key(key).key(events).arg(self.journal_ttl_secs);
        match &outcome {
            Some(outcome) => invocation.arg(outcome.status.as_str()).arg(&outcome.result),
            None => invocation.arg("").arg(""),
        };
        for frame in &frames {
            invocation.arg(frame);
        }
        let cancel: i64 =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await?;
        Ok(cancel == 1)
    }

    async fn read_turn(&self, id: &str, from: usize) -> Result<Option<TurnRead>, SessionError> {
        let (key, events) = self.turn_keys(id);
        let mut connection = self.connection().await?;
        let (record, frames): (Option<String>, Vec<String>) = self
            .bounded(async {
                redis::pipe()
                    .get(&key)
                    // `usize::MAX` (the record alone) must not wrap to -1, which LRANGE reads as the last frame.
                    .lrange(&events, isize::try_from(from).unwrap_or(isize::MAX), -1)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.error(e))
            })
            .await?;
        let Some(record) = record else { return Ok(None) };
        Ok(Some((Self::parse_record(id, &record)?, frames)))
    }

    async fn cancel_turn(&self, id: &str) -> Result<Option<TurnRecord>, SessionError> {
        let (key, _) = self.turn_keys(id);
        let mut connection = self.connection().await?;
        let mut invocation = self.journal_cancel.prepare_invoke();
        invocation.key(key);
        let record: Option<String> =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await?;
        record.map(|text| Self::parse_record(id, &text)).transpose()
    }
}

impl Journal for RedisStore {
    fn open<'a>(&'a self, id: &'a str, record: &'a TurnRecord) -> BoxFuture<'a, Result<(), SessionError>> {
        self.open_turn(id, record).boxed()
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Pending>, SessionError>> {
        self.start_turn(id).boxed()
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        frames: Vec<String>,
        outcome: Option<TurnOutcome>,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        self.append_turn(id, frames, outcome).boxed()
    }

    fn read<'a>(&'a self, id: &'a str, from: usize) -> BoxFuture<'a, Result<Option<TurnRead>, SessionError>> {
        self.read_turn(id, from).boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TurnRecord>, SessionError>> {
        self.cancel_turn(id).boxed()
    }

    fn changed<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, ()> {
        tokio::time::sleep(POLL).boxed()
    }
}

/// The scripts, compiled once with the store.
pub(super) fn scripts() -> (redis::Script, redis::Script, redis::Script) {
    (redis::Script::new(START), redis::Script::new(APPEND), redis::Script::new(CANCEL))
}
