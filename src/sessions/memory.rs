//! The in-process store (`SESSION_STORE=memory`, the default, like the seed's `InMemorySessionHistoryService`):
//! lost with the instance, not shared between instances — FC session affinity keeps a conversation on one
//! instance while it lives. Bounded three ways so a long-lived instance cannot grow without limit: at most
//! `max_sessions` sessions (the least recently used is evicted), `max_messages` per session (the oldest
//! are dropped), and an idle TTL.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use tokio::time::Instant;

use super::{SessionError, SessionKey, SessionSettings, Store, StoredMessage};

pub(crate) struct MemoryStore {
    sessions: Mutex<HashMap<SessionKey, Entry>>,
    max_sessions: usize,
    max_messages: usize,
    ttl: Duration,
}

struct Entry {
    /// Each message as its compact JSON: about a quarter of the memory of the parsed struct (whose dozen
    /// small strings and metadata map are each an allocation), for a parse per message on load.
    messages: Vec<Kept>,
    last_used: Instant,
}

struct Kept {
    id: Box<str>,
    json: Box<str>,
}

impl Kept {
    fn new(message: &StoredMessage) -> Option<Kept> {
        let json = serde_json::to_string(message).ok()?;
        Some(Kept { id: message.id.as_str().into(), json: json.into() })
    }
}

impl MemoryStore {
    pub(crate) fn new(settings: &SessionSettings) -> MemoryStore {
        MemoryStore {
            sessions: Mutex::new(HashMap::new()),
            max_sessions: settings.max_sessions.max(1),
            max_messages: settings.max_messages.max(1),
            ttl: settings.ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Entry>> {
        // A panic while holding the lock cannot leave a half-written entry (every update is one push or
        // drain), so a poisoned map is still consistent.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.duration_since(entry.last_used) >= self.ttl
    }

    /// Makes room for one more session: expired ones go first, then the least recently used.
    fn make_room(&self, sessions: &mut HashMap<SessionKey, Entry>, now: Instant) {
        if sessions.len() < self.max_sessions {
            return;
        }
        sessions.retain(|_, entry| !self.expired(entry, now));
        while sessions.len() >= self.max_sessions {
            // O(n) on a new session at the cap only; n is bounded by the cap (1,000 by default).
            let Some(oldest) = sessions.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            sessions.remove(&oldest);
        }
    }

    fn load_now(&self, key: &SessionKey) -> Option<Vec<StoredMessage>> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let entry = sessions.get_mut(key)?;
        if self.expired(entry, now) {
            sessions.remove(key);
            return None;
        }
        entry.last_used = now;
        // Our own serialization, so it parses; a message that somehow did not is left out, not a panic.
        Some(entry.messages.iter().filter_map(|kept| serde_json::from_str(&kept.json).ok()).collect())
    }

    fn append_now(&self, key: &SessionKey, messages: Vec<StoredMessage>) {
        let now = Instant::now();
        let mut sessions = self.lock();
        if sessions.get(key).is_some_and(|entry| self.expired(entry, now)) {
            sessions.remove(key);
        }
        if !sessions.contains_key(key) {
            self.make_room(&mut sessions, now);
        }
        let entry = sessions.entry(key.clone()).or_insert_with(|| Entry { messages: Vec::new(), last_used: now });
        entry.last_used = now;
        let mut known: HashSet<String> = entry.messages.iter().map(|m| m.id.to_string()).collect();
        let fresh = messages.iter().filter(|m| known.insert(m.id.clone())).filter_map(Kept::new);
        entry.messages.extend(fresh);
        let excess = entry.messages.len().saturating_sub(self.max_messages);
        entry.messages.drain(..excess);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Store for MemoryStore {
    fn load<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>> {
        std::future::ready(Ok(self.load_now(key))).boxed()
    }

    fn append<'a>(
        &'a self,
        key: &'a SessionKey,
        messages: Vec<StoredMessage>,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        self.append_now(key, messages);
        std::future::ready(Ok(())).boxed()
    }

    fn delete<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<bool, SessionError>> {
        std::future::ready(Ok(self.lock().remove(key).is_some())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::message::{Part, new_message_id};
    use crate::sessions::{StoreKind, replay::Window};

    fn store(max_sessions: usize, max_messages: usize, ttl_secs: u64) -> MemoryStore {
        MemoryStore::new(&SessionSettings {
            store: StoreKind::Memory,
            ttl: Duration::from_secs(ttl_secs),
            max_sessions,
            max_messages,
            timeout: Duration::from_secs(1),
            key_prefix: String::new(),
            window: Window { messages: 10, chars: 1000 },
        })
    }

    fn key(user: &str, session: &str) -> SessionKey {
        SessionKey { user_id: user.into(), session_id: session.into() }
    }

    fn text(t: &str) -> StoredMessage {
        StoredMessage::completed(new_message_id(), "message", "user", vec![Part::Text(t.into())], "o", "user")
    }

    fn texts(messages: Option<Vec<StoredMessage>>) -> Vec<String> {
        messages.unwrap_or_default().iter().filter_map(|m| m.items()[0].text.clone()).collect()
    }

    #[tokio::test]
    async fn appends_skip_known_ids_and_users_are_apart() {
        let store = store(10, 10, 60);
        let first = text("one");
        store.append(&key("u1", "s"), vec![first.clone(), text("two")]).await.unwrap();
        store.append(&key("u1", "s"), vec![first, text("three")]).await.unwrap();
        assert_eq!(texts(store.load(&key("u1", "s")).await.unwrap()), ["one", "two", "three"]);
        assert_eq!(store.load(&key("u2", "s")).await.unwrap(), None, "another user's session is not theirs");
        assert!(store.delete(&key("u1", "s")).await.unwrap());
        assert!(!store.delete(&key("u1", "s")).await.unwrap());
        assert_eq!(store.load(&key("u1", "s")).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_session_is_evicted_at_the_cap() {
        let store = store(2, 10, 3600);
        store.append(&key("u", "a"), vec![text("a")]).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        store.append(&key("u", "b"), vec![text("b")]).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        store.load(&key("u", "a")).await.unwrap(); // a is now the most recently used
        tokio::time::advance(Duration::from_secs(1)).await;
        store.append(&key("u", "c"), vec![text("c")]).await.unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(texts(store.load(&key("u", "a")).await.unwrap()), ["a"]);
        assert_eq!(store.load(&key("u", "b")).await.unwrap(), None, "b was the least recently used");
        assert_eq!(texts(store.load(&key("u", "c")).await.unwrap()), ["c"]);
    }

    #[tokio::test]
    async fn a_session_keeps_its_newest_messages_up_to_the_cap() {
        let store = store(10, 3, 60);
        store.append(&key("u", "s"), ["1", "2", "3", "4"].map(text).to_vec()).await.unwrap();
        store.append(&key("u", "s"), vec![text("5")]).await.unwrap();
        assert_eq!(texts(store.load(&key("u", "s")).await.unwrap()), ["3", "4", "5"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_session_expires_and_use_keeps_it_alive() {
        let store = store(10, 10, 60);
        store.append(&key("u", "s"), vec![text("x")]).await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(store.load(&key("u", "s")).await.unwrap().is_some(), "used before its TTL ran out");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(store.load(&key("u", "s")).await.unwrap().is_some(), "the read refreshed it");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(store.load(&key("u", "s")).await.unwrap(), None);
    }
}
