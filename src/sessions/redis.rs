//! Redis / Alibaba Cloud Tair (`SESSION_STORE=redis://…` or `rediss://…`), in the AgentScope runtime's
//! layout (docs/sessions.md, "The Redis layout"), so a Python AgentScope app pointed at the same Redis reads the
//! same conversations:
//!
//! - `{prefix}session:{user_id}:{session_id}`: STRING, the whole `Session` JSON;
//! - `{prefix}session_index:{user_id}`: SET of the user's session ids.
//!
//! On a Redis Cluster / Tair cluster instance (`SESSION_REDIS_CLUSTER=true`) the user is wrapped in a hash
//! tag — `session:{u}:s` and `session_index:{u}` — so the two keys the append script touches hash to one
//! slot (a script over keys in two slots fails `CROSSSLOT`). A Python app reads those keys by passing the
//! braced user id; on a non-cluster Redis the layout is the runtime's, unchanged.
//!
//! Unlike the runtime's read-modify-write (whose last SET wins), an append is one Lua script: it reads the
//! record, refuses one that does not parse (leaving it untouched), skips messages whose id is stored,
//! splices the new ones onto the end of the stored text (so what another writer stored is kept byte for
//! byte) and refreshes the TTL — atomic, so concurrent turns of one session never lose a message. A turn
//! costs two round trips: the claim script before (the session's run lease taken, then the session read:
//! `lease.rs`), the append script after (checked against the lease, which it releases). One multiplexed
//! connection manager per process, connecting lazily and reconnecting by itself.
//!
//! Beside the AgentScope layout, what must outlive an invocation (issue 28):
//!
//! - `{prefix}session_lease:{user_id}:{session_id}`: STRING, the id of the turn running in the session,
//!   with a `PX` expiry its holder renews;
//! - `{prefix}a2a_task:{task_id}`: STRING, an A2A task as any instance answers `tasks/get` for it, `EX`
//!   an hour after its last change (`protocol::a2a::tasks`);
//! - `{prefix}turn_stop`: the pub/sub channel a stop request for a turn on another instance travels on
//!   (one subscriber connection per process);
//! - `{prefix}response_session:{user_id}:{response_id}`: STRING, the session id a Responses response was
//!   issued in (the response index: `previous_response_id` → session), `EX` the session TTL from its
//!   issue, written by the append script; checked by the claim script of a turn that continues the
//!   response (so a continued turn is two round trips like any other), or read with the session in one
//!   pipelined round trip when a background request is queued.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{Claim, Record, Session, SessionError, SessionKey, SessionSettings, Store, StoredMessage};
use crate::secret::{self, Secret};

mod journal;

/// KEYS: session, index, and the session's lease when the append is under one, then (under a lease) the
/// response index entry of a Responses turn. ARGV: session id, user id, TTL seconds, the lease's token
/// (empty without a lease), then (message id, message JSON) pairs.
/// Under a lease: refused (`FENCED`) if another turn holds it, and released after the write.
const APPEND: &str = r#"
if KEYS[3] then
  local holder = redis.call('GET', KEYS[3])
  if holder and holder ~= ARGV[4] then
    return redis.error_reply('FENCED the session lease is held by another turn')
  end
end
local current = redis.call('GET', KEYS[1])
local known, stored = {}, 0
if current then
  local ok, doc = pcall(cjson.decode, current)
  if not ok or type(doc) ~= 'table' or type(doc.messages) ~= 'table' then
    return redis.error_reply('CORRUPT the record is not a Session JSON object')
  end
  for key, _ in pairs(doc) do
    if key ~= 'id' and key ~= 'user_id' and key ~= 'messages' then
      return redis.error_reply('CORRUPT the record has a field a Session does not have: ' .. key)
    end
  end
  for _, message in ipairs(doc.messages) do
    if type(message) == 'table' and type(message.id) == 'string' then known[message.id] = true end
    stored = stored + 1
  end
end
local fresh = {}
for i = 5, #ARGV, 2 do
  if not known[ARGV[i]] then
    known[ARGV[i]] = true
    fresh[#fresh + 1] = ARGV[i + 1]
  end
end
local value
if not current then
  value = '{"id":' .. cjson.encode(ARGV[1]) .. ',"user_id":' .. cjson.encode(ARGV[2]) .. ',"messages":['
    .. table.concat(fresh, ',') .. ']}'
elseif #fresh == 0 then
  value = current
else
  local head = string.match(current, '^(.*)%]%s*}%s*$')
  if not head then return redis.error_reply('CORRUPT the record does not end with its messages') end
  local separator = ','
  if stored == 0 then separator = '' end
  value = head .. separator .. table.concat(fresh, ',') .. ']}'
end
-- The index first: a script is not rolled back, so a failing SADD (say the key holds another type) must
-- come before the session is written, or the turn would be reported unsaved although it was saved.
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], value, 'EX', ARGV[3])
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[3]) end
return #fresh
"#;

/// KEYS: the session's lease, the session, then (a turn continuing a Responses `previous_response_id`)
/// that response's index entry. ARGV: the turn's token, the lease's TTL in milliseconds, then (continuing)
/// the session id. Takes the lease when it is free (or already this turn's) and then reads the session:
/// the claim and the load in one round trip. `{1, session or nil}` when taken, `{0, holder}` when busy,
/// `{2, nil}` when the response was not issued in this session (or the session is gone): nothing taken,
/// and checked first, so an id that is not the caller's learns nothing of the session's lease.
const CLAIM: &str = r#"
if KEYS[3] and redis.call('GET', KEYS[3]) ~= ARGV[3] then return {2, false} end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, holder} end
local session = redis.call('GET', KEYS[2])
if KEYS[3] and not session then return {2, false} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, session}
"#;

/// KEYS: the lease. ARGV: the token, the TTL in milliseconds. 1 when renewed.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"#;

/// KEYS: the lease. ARGV: the token. Deleted only by its holder.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// How soon a lost stop-channel subscription is tried again: stop requests published meanwhile are
/// missed (the turn still ends by its deadline or its caller), so not long; but not a busy loop either.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

pub(crate) struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    /// The URL's password, for scrubbing the client's error texts.
    password: Option<Secret>,
    prefix: String,
    /// `SESSION_REDIS_CLUSTER`: the user is a hash tag in both keys.
    cluster: bool,
    ttl_secs: u64,
    timeout: Duration,
    append: redis::Script,
    /// `BACKGROUND_TTL_SECS`: the turn journal's keys (`journal.rs`).
    journal_ttl_secs: u64,
    journal_start: redis::Script,
    journal_append: redis::Script,
    journal_cancel: redis::Script,
    claim: redis::Script,
    renew: redis::Script,
    release: redis::Script,
}

impl RedisStore {
    pub(crate) fn new(
        url: &Secret,
        settings: &SessionSettings,
        journal_ttl: Duration,
    ) -> Result<RedisStore, SessionError> {
        // `rediss://` goes through rustls; reqwest's clients install the same (ring) provider.
        crate::upstream::install_tls_provider();
        let password = password_of(url.expose());
        let (journal_start, journal_append, journal_cancel) = journal::scripts();
        let client = redis::Client::open(url.expose()).map_err(|error| {
            SessionError::Refused(format!("SESSION_STORE: {}", scrub(&error.to_string(), password.as_ref())))
        })?;
        Ok(RedisStore {
            client,
            connection: OnceCell::new(),
            password,
            prefix: settings.key_prefix.clone(),
            cluster: settings.redis_cluster,
            ttl_secs: settings.ttl.as_secs().max(1),
            timeout: settings.timeout,
            append: redis::Script::new(APPEND),
            journal_ttl_secs: journal_ttl.as_secs().max(1),
            journal_start,
            journal_append,
            journal_cancel,
            claim: redis::Script::new(CLAIM),
            renew: redis::Script::new(RENEW),
            release: redis::Script::new(RELEASE),
        })
    }

    /// The user's part of both keys: the user id, or on a cluster the user id as a hash tag. A brace in
    /// the user id would change which part of the key is the tag (`{}` hashes the whole key), so on a
    /// cluster such a user is refused rather than have its two keys land in different slots.
    fn user_part(&self, key: &SessionKey) -> Result<String, SessionError> {
        if !self.cluster {
            return Ok(key.user_id.clone());
        }
        if key.user_id.contains(['{', '}']) {
            return Err(SessionError::Refused(
                "with SESSION_REDIS_CLUSTER the user id must not contain '{' or '}' (it is the keys' hash tag)".into(),
            ));
        }
        Ok(format!("{{{}}}", key.user_id))
    }

    fn session_key(&self, key: &SessionKey) -> Result<String, SessionError> {
        Ok(format!("{}session:{}:{}", self.prefix, self.user_part(key)?, key.session_id))
    }

    fn index_key(&self, key: &SessionKey) -> Result<String, SessionError> {
        Ok(format!("{}session_index:{}", self.prefix, self.user_part(key)?))
    }

    /// The response index entry of `response` (an id the Responses face made: no `:` in it), in the
    /// session's slot on a cluster.
    fn response_key(&self, key: &SessionKey, response: &str) -> Result<String, SessionError> {
        Ok(format!("{}response_session:{}:{response}", self.prefix, self.user_part(key)?))
    }

    /// `{prefix}session_lease:{user}:{session}`: beside the session key, in its slot on a cluster.
    fn lease_key(&self, key: &SessionKey) -> Result<String, SessionError> {
        Ok(format!("{}session_lease:{}:{}", self.prefix, self.user_part(key)?, key.session_id))
    }

    /// `{prefix}turn_stop`: where a stop request for a turn running on another instance is published
    /// (the turn's id); every instance listens ([`Store::listen_stops`]).
    fn stop_channel(&self) -> String {
        format!("{}turn_stop", self.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, SessionError> {
        let connection = self.connection.get_or_try_init(|| async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1);
            ConnectionManager::new_lazy_with_config(self.client.clone(), config).map_err(|e| self.error(e))
        });
        Ok(connection.await?.clone())
    }

    fn error(&self, error: redis::RedisError) -> SessionError {
        let text = scrub(&error.to_string(), self.password.as_ref());
        if error.is_timeout() {
            SessionError::Timeout
        } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped() {
            SessionError::Unreachable(text)
        } else {
            SessionError::Refused(text)
        }
    }

    /// Runs one command within the store's timeout.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        tokio::time::timeout(self.timeout, call).await.map_err(|_| SessionError::Timeout)?
    }

    async fn load_now(&self, key: &SessionKey) -> Result<Option<Vec<StoredMessage>>, SessionError> {
        let session_key = self.session_key(key)?;
        let mut connection = self.connection().await?;
        let record: Option<String> = self
            .bounded(async {
                redis::cmd("GET").arg(session_key).query_async(&mut connection).await.map_err(|e| self.error(e))
            })
            .await?;
        let Some(record) = record else { return Ok(None) };
        let session: Session = serde_json::from_str(&record)
            .map_err(|error| SessionError::Corrupt { session: key.session_id.clone(), reason: error.to_string() })?;
        Ok(Some(session.messages))
    }

    async fn load_continuing_now(
        &self,
        key: &SessionKey,
        response: &str,
    ) -> Result<Option<Vec<StoredMessage>>, SessionError> {
        let (session_key, response_key) = (self.session_key(key)?, self.response_key(key, response)?);
        let mut connection = self.connection().await?;
        let (record, issued_in): (Option<String>, Option<String>) = self
            .bounded(async {
                redis::pipe()
                    .get(session_key)
                    .get(response_key)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.error(e))
            })
            .await?;
        if issued_in.as_deref() != Some(key.session_id.as_str()) {
            return Ok(None);
        }
        let Some(record) = record else { return Ok(None) };
        let session: Session = serde_json::from_str(&record)
            .map_err(|error| SessionError::Corrupt { session: key.session_id.clone(), reason: error.to_string() })?;
        Ok(Some(session.messages))
    }

    async fn append_now(
        &self,
        key: &SessionKey,
        messages: Vec<Record>,
        token: Option<&str>,
        response: Option<&str>,
    ) -> Result<(), SessionError> {
        let (session_key, index_key) = (self.session_key(key)?, self.index_key(key)?);
        let mut connection = self.connection().await?;
        let mut invocation = self.append.prepare_invoke();
        invocation.key(session_key).key(index_key);
        if token.is_some() {
            invocation.key(self.lease_key(key)?);
            if let Some(response) = response {
                invocation.key(self.response_key(key, response)?);
            }
        }
        invocation.arg(&key.session_id).arg(&key.user_id).arg(self.ttl_secs).arg(token.unwrap_or(""));
        for message in &messages {
            invocation.arg(&message.id).arg(&message.json);
        }
        let appended: Result<i64, SessionError> =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await;
        match appended {
            Err(SessionError::Refused(reason)) if reason.contains("CORRUPT") => {
                Err(SessionError::Corrupt { session: key.session_id.clone(), reason })
            }
            Err(SessionError::Refused(reason)) if reason.contains("FENCED") => Err(SessionError::Fenced),
            other => other.map(|_| ()),
        }
    }

    async fn claim_now(
        &self,
        key: &SessionKey,
        token: &str,
        ttl: Duration,
        continuing: Option<&str>,
    ) -> Result<Claim, SessionError> {
        let (lease_key, session_key) = (self.lease_key(key)?, self.session_key(key)?);
        let mut connection = self.connection().await?;
        let mut invocation = self.claim.prepare_invoke();
        invocation.key(lease_key).key(session_key).arg(token).arg(ttl.as_millis().max(1) as u64);
        if let Some(response) = continuing {
            invocation.key(self.response_key(key, response)?).arg(&key.session_id);
        }
        let (taken, value): (i64, Option<String>) =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await?;
        match taken {
            0 => return Ok(Claim::Busy { holder: value.unwrap_or_default() }),
            2 => return Ok(Claim::NotIssued),
            _ => {}
        }
        let Some(record) = value else { return Ok(Claim::Held(None)) };
        let session: Session = serde_json::from_str(&record)
            .map_err(|error| SessionError::Corrupt { session: key.session_id.clone(), reason: error.to_string() })?;
        Ok(Claim::Held(Some(session.messages)))
    }

    /// Runs a lease script (renew, release) and reads its integer answer.
    async fn lease_script(
        &self,
        script: &redis::Script,
        key: &SessionKey,
        args: &[String],
    ) -> Result<i64, SessionError> {
        let lease_key = self.lease_key(key)?;
        let mut connection = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        invocation.key(lease_key);
        for arg in args {
            invocation.arg(arg);
        }
        self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await
    }

    async fn holder_now(&self, key: &SessionKey) -> Result<Option<String>, SessionError> {
        let lease_key = self.lease_key(key)?;
        let mut connection = self.connection().await?;
        self.bounded(async {
            redis::cmd("GET").arg(lease_key).query_async(&mut connection).await.map_err(|e| self.error(e))
        })
        .await
    }

    async fn delete_now(&self, key: &SessionKey) -> Result<bool, SessionError> {
        let (session_key, index_key) = (self.session_key(key)?, self.index_key(key)?);
        let mut connection = self.connection().await?;
        // MULTI/EXEC: on a cluster the two keys share a slot (the hash tag), as a transaction needs.
        let (deleted, _): (i64, i64) = self
            .bounded(async {
                redis::pipe()
                    .atomic()
                    .del(session_key)
                    .srem(index_key, &key.session_id)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.error(e))
            })
            .await?;
        Ok(deleted > 0)
    }
}

impl Store for RedisStore {
    fn system(&self) -> &'static str {
        "redis"
    }

    fn load<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>> {
        self.load_now(key).boxed()
    }

    fn append<'a>(&'a self, key: &'a SessionKey, messages: Vec<Record>) -> BoxFuture<'a, Result<(), SessionError>> {
        self.append_now(key, messages, None, None).boxed()
    }

    fn claim<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
        continuing: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Claim, SessionError>> {
        self.claim_now(key, token, ttl, continuing).boxed()
    }

    fn renew<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        let args = [token.to_owned(), (ttl.as_millis().max(1) as u64).to_string()];
        async move { Ok(self.lease_script(&self.renew, key, &args).await? == 1) }.boxed()
    }

    fn release<'a>(&'a self, key: &'a SessionKey, token: &'a str) -> BoxFuture<'a, Result<(), SessionError>> {
        let args = [token.to_owned()];
        async move { self.lease_script(&self.release, key, &args).await.map(|_| ()) }.boxed()
    }

    fn append_releasing<'a>(
        &'a self,
        key: &'a SessionKey,
        messages: Vec<Record>,
        token: &'a str,
        response: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        self.append_now(key, messages, Some(token), response).boxed()
    }

    fn load_continuing<'a>(
        &'a self,
        key: &'a SessionKey,
        response: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>> {
        self.load_continuing_now(key, response).boxed()
    }

    fn holder<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<String>, SessionError>> {
        self.holder_now(key).boxed()
    }

    fn shared(&self) -> bool {
        true
    }

    fn keep<'a>(&'a self, name: &'a str, value: String, ttl: Duration) -> BoxFuture<'a, Result<(), SessionError>> {
        async move {
            let mut connection = self.connection().await?;
            let key = format!("{}{name}", self.prefix);
            self.bounded(async {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(|e| self.error(e))
            })
            .await
        }
        .boxed()
    }

    fn kept<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, SessionError>> {
        async move {
            let mut connection = self.connection().await?;
            let key = format!("{}{name}", self.prefix);
            self.bounded(async {
                redis::cmd("GET").arg(key).query_async(&mut connection).await.map_err(|e| self.error(e))
            })
            .await
        }
        .boxed()
    }

    fn publish_stop<'a>(&'a self, turn: &'a str) -> BoxFuture<'a, Result<bool, SessionError>> {
        async move {
            let mut connection = self.connection().await?;
            let listeners: i64 = self
                .bounded(async {
                    redis::cmd("PUBLISH")
                        .arg(self.stop_channel())
                        .arg(turn)
                        .query_async(&mut connection)
                        .await
                        .map_err(|e| self.error(e))
                })
                .await?;
            Ok(listeners > 0)
        }
        .boxed()
    }

    fn listen_stops(&self, on_stop: Arc<dyn Fn(&str) + Send + Sync>) {
        // Built outside a runtime (a unit test's store): nobody to stop anyway.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (client, channel, timeout) = (self.client.clone(), self.stop_channel(), self.timeout);
        let password = self.password.clone();
        runtime.spawn(async move {
            loop {
                let subscribed = tokio::time::timeout(timeout, async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                })
                .await;
                match subscribed {
                    Ok(Ok(pubsub)) => {
                        let mut messages = pubsub.into_on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(turn) = message.get_payload::<String>() {
                                on_stop(&turn);
                            }
                        }
                        tracing::warn!("the session store's stop channel closed; listening again");
                    }
                    Ok(Err(error)) => {
                        let error = scrub(&error.to_string(), password.as_ref());
                        tracing::warn!(error = %error, "cannot listen on the session store's stop channel");
                    }
                    Err(_) => tracing::warn!("the session store's stop channel did not answer in time"),
                }
                tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
            }
        });
    }

    fn delete<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<bool, SessionError>> {
        self.delete_now(key).boxed()
    }
}

/// The password of a `redis://user:password@host` URL, to be scrubbed from error texts.
fn password_of(url: &str) -> Option<Secret> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then(|| Secret::new(password))
}

fn scrub(text: &str, password: Option<&Secret>) -> String {
    let secrets: Vec<&Secret> = password.into_iter().collect();
    secret::redact(text, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_for_scrubbing() {
        assert_eq!(
            password_of("rediss://default:s3cret@r-x.redis.rds.aliyuncs.com:6379/0").unwrap().expose(),
            "s3cret"
        );
        assert_eq!(password_of("redis://:pw@127.0.0.1:6379").unwrap().expose(), "pw");
        assert!(password_of("redis://127.0.0.1:6379/0").is_none());
    }
}
