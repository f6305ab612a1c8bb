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
//! costs two round trips: `GET` before, `EVALSHA` after. One multiplexed connection manager per process,
//! connecting lazily and reconnecting by itself.

use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{Record, Session, SessionError, SessionKey, SessionSettings, Store, StoredMessage};
use crate::secret::{self, Secret};

mod journal;

/// KEYS: session, index. ARGV: session id, user id, TTL seconds, then (message id, message JSON) pairs.
const APPEND: &str = r#"
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
for i = 4, #ARGV, 2 do
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
return #fresh
"#;

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

    async fn append_now(&self, key: &SessionKey, messages: Vec<Record>) -> Result<(), SessionError> {
        let (session_key, index_key) = (self.session_key(key)?, self.index_key(key)?);
        let mut connection = self.connection().await?;
        let mut invocation = self.append.prepare_invoke();
        invocation.key(session_key).key(index_key).arg(&key.session_id).arg(&key.user_id).arg(self.ttl_secs);
        for message in &messages {
            invocation.arg(&message.id).arg(&message.json);
        }
        let appended: Result<i64, SessionError> =
            self.bounded(async { invocation.invoke_async(&mut connection).await.map_err(|e| self.error(e)) }).await;
        match appended {
            Err(SessionError::Refused(reason)) if reason.contains("CORRUPT") => {
                Err(SessionError::Corrupt { session: key.session_id.clone(), reason })
            }
            other => other.map(|_| ()),
        }
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
        self.append_now(key, messages).boxed()
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
