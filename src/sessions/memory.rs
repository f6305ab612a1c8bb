//! The in-process store (`SESSION_STORE=memory`, the default, like the seed's `InMemorySessionHistoryService`):
//! lost with the instance, not shared between instances — FC session affinity keeps a conversation on one
//! instance while it lives. Bounded three ways so a long-lived instance cannot grow without limit: at most
//! `max_sessions` sessions (the least recently used is evicted), `max_messages` per session (the oldest
//! are dropped), and an idle TTL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use tokio::time::Instant;

use super::{Claim, Record, SessionError, SessionKey, SessionSettings, Store, StoredMessage};

/// What a kept message costs beyond its JSON and id, so that `SESSION_MAX_BYTES` is close to the RSS the
/// store takes: its [`Span`] (24 bytes) and its share of the session buffer's spare capacity (the buffer
/// grows by doubling) and of the heap's fragmentation, calibrated against the RSS a stored message was
/// measured to take (BENCHMARKS.md, "Figures behind the code's bounds").
const MESSAGE_OVERHEAD: usize = 512;
/// What a session costs beyond its messages: its map slot (key, entry, hash), the key's two strings, the
/// use order's copy of the key, and the buffer's and spans' allocations.
const SESSION_OVERHEAD: usize = 512;
/// Response ids a session keeps in its response index (`previous_response_id`): the newest. An approval is
/// answered by continuing the latest response, and a client going back further than this starts anew.
const MAX_RESPONSES_PER_SESSION: usize = 32;
/// What a kept response id costs beyond its text: its string and instant in the index.
const RESPONSE_OVERHEAD: usize = 48;

pub(crate) struct MemoryStore {
    sessions: Mutex<SessionTable>,
    /// The running turns' leases: session → (holding turn, expiry). Only running turns hold one, so it is
    /// as small as the instance's concurrency; an expired entry is dropped when next looked at.
    leases: Mutex<HashMap<SessionKey, (String, Instant)>>,
    max_sessions: usize,
    max_messages: usize,
    /// `SESSION_MAX_BYTES`: what all sessions together may cost, counted as [`Span::cost`] and
    /// [`session_cost`]; the least recently used sessions are evicted beyond it.
    max_bytes: usize,
    ttl: Duration,
}

/// Everything the in-process store keeps, under its one lock: each session, their use order and their cost.
#[derive(Default)]
struct SessionTable {
    map: HashMap<SessionKey, Entry>,
    /// Every session by its use stamp, oldest first: the least recently used (and the idle ones, which are
    /// the oldest) are found at the front instead of by a scan of every session. A full store evicts on
    /// every new session, and a scan of every session on each turn was a cost that grew with the cap.
    order: BTreeMap<u64, SessionKey>,
    /// The next use stamp. Stamps rise with `last_used` (both are taken under the lock).
    next_stamp: u64,
    /// The sum of every entry's `bytes`.
    bytes: usize,
}

struct Entry {
    /// Every kept message, oldest first, back to back: its compact JSON, then its id. JSON is about a
    /// quarter of the memory of the parsed struct (whose dozen small strings and metadata map are each an
    /// allocation), for a parse per message on load. One buffer per session, not two allocations per
    /// message (an id and a JSON box): less RSS for the same sessions, and a new session of five messages
    /// costs two long-lived blocks instead of eleven.
    text: String,
    /// Where each kept message is in `text`.
    spans: Vec<Span>,
    /// [`session_cost`] plus the cost of every kept message.
    bytes: usize,
    last_used: Instant,
    /// Its key in [`SessionTable::order`].
    stamp: u64,
    /// The response index: the Responses face's response ids issued in this session, oldest first, with
    /// when each was issued (each is good for the store's TTL from then).
    responses: Vec<(String, Instant)>,
}

/// One kept message in [`Entry::text`]: its JSON is `start..id`, its id `id..end`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    id: usize,
    end: usize,
}

impl Span {
    /// Bytes counted against `SESSION_MAX_BYTES`: the message's own text, as stored, plus the fixed cost.
    fn cost(&self) -> usize {
        self.end - self.start + MESSAGE_OVERHEAD
    }
}

/// What [`Span::cost`] will be for `record` once kept.
fn record_cost(record: &Record) -> usize {
    record.json.len() + record.id.len() + MESSAGE_OVERHEAD
}

impl Entry {
    fn json(&self, span: &Span) -> &str {
        &self.text[span.start..span.id]
    }

    fn id(&self, span: &Span) -> &str {
        &self.text[span.id..span.end]
    }

    fn push(&mut self, record: &Record) {
        let start = self.text.len();
        self.text.push_str(&record.json);
        let id = self.text.len();
        self.text.push_str(&record.id);
        self.spans.push(Span { start, id, end: self.text.len() });
    }

    /// Forgets the `count` oldest messages.
    fn drop_oldest(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        let cut = self.spans.get(count).map_or(self.text.len(), |span| span.start);
        self.text.drain(..cut);
        self.spans.drain(..count);
        for span in &mut self.spans {
            span.start -= cut;
            span.id -= cut;
            span.end -= cut;
        }
    }
}

fn session_cost(key: &SessionKey) -> usize {
    key.user_id.len() + key.session_id.len() + SESSION_OVERHEAD
}

impl SessionTable {
    fn remove(&mut self, key: &SessionKey) -> bool {
        let Some(entry) = self.map.remove(key) else { return false };
        self.order.remove(&entry.stamp);
        self.bytes -= entry.bytes;
        true
    }

    fn insert(&mut self, key: &SessionKey, now: Instant) {
        let bytes = session_cost(key);
        let stamp = self.take_stamp();
        self.order.insert(stamp, key.clone());
        let entry =
            Entry { text: String::new(), spans: Vec::new(), bytes, last_used: now, stamp, responses: Vec::new() };
        self.map.insert(key.clone(), entry);
        self.bytes += bytes;
    }

    /// Marks the session used now: it moves to the back of `order`.
    fn touch(&mut self, key: &SessionKey, now: Instant) {
        let stamp = self.take_stamp();
        let Some(entry) = self.map.get_mut(key) else { return };
        entry.last_used = now;
        if let Some(moved) = self.order.remove(&entry.stamp) {
            self.order.insert(stamp, moved);
        }
        entry.stamp = stamp;
    }

    fn take_stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// The least recently used session.
    fn oldest(&self) -> Option<SessionKey> {
        self.order.values().next().cloned()
    }

    /// The least recently used session other than `keep`.
    fn oldest_but(&self, keep: &SessionKey) -> Option<SessionKey> {
        self.order.values().find(|k| *k != keep).cloned()
    }
}

impl MemoryStore {
    pub(crate) fn new(settings: &SessionSettings) -> MemoryStore {
        MemoryStore {
            sessions: Mutex::new(SessionTable::default()),
            leases: Mutex::new(HashMap::new()),
            max_sessions: settings.max_sessions.max(1),
            max_messages: settings.max_messages.max(1),
            max_bytes: settings.max_bytes,
            ttl: settings.ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionTable> {
        // A panic while holding the lock cannot leave a half-written entry (every update is one push or
        // drain), so a poisoned map is still consistent.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, (String, Instant)>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn claim_now(&self, key: &SessionKey, token: &str, ttl: Duration, continuing: Option<&str>) -> Claim {
        let now = Instant::now();
        // The response index first: a response that is not this user's in this session takes nothing.
        if let Some(response) = continuing
            && !self.issued(key, response, now)
        {
            return Claim::NotIssued;
        }
        {
            let mut leases = self.leases();
            match leases.get(key) {
                Some((holder, expiry)) if holder != token && *expiry > now => {
                    return Claim::Busy { holder: holder.clone() };
                }
                _ => leases.insert(key.clone(), (token.to_owned(), now + ttl)),
            };
        }
        Claim::Held(self.load_now(key))
    }

    /// Whether `token` holds the lease now; `then` runs under the leases' lock when it does.
    fn holding(
        &self,
        key: &SessionKey,
        token: &str,
        then: impl FnOnce(&mut HashMap<SessionKey, (String, Instant)>),
    ) -> bool {
        let mut leases = self.leases();
        let held = leases.get(key).is_some_and(|(holder, expiry)| holder == token && *expiry > Instant::now());
        if held {
            then(&mut leases);
        }
        held
    }

    fn holder_now(&self, key: &SessionKey) -> Option<String> {
        let leases = self.leases();
        leases.get(key).filter(|(_, expiry)| *expiry > Instant::now()).map(|(holder, _)| holder.clone())
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.duration_since(entry.last_used) >= self.ttl
    }

    /// Makes room for one more session: expired ones go first, then the least recently used.
    fn make_room(&self, sessions: &mut SessionTable, now: Instant) {
        if sessions.map.len() < self.max_sessions {
            return;
        }
        // The idle ones are the oldest: they are at the front.
        while let Some(oldest) = sessions.oldest() {
            if !sessions.map.get(&oldest).is_some_and(|e| self.expired(e, now)) {
                break;
            }
            sessions.remove(&oldest);
        }
        while sessions.map.len() >= self.max_sessions {
            let Some(oldest) = sessions.oldest() else { break };
            sessions.remove(&oldest);
        }
    }

    fn load_now(&self, key: &SessionKey) -> Option<Vec<StoredMessage>> {
        let now = Instant::now();
        let mut sessions = self.lock();
        if self.expired(sessions.map.get(key)?, now) {
            sessions.remove(key);
            return None;
        }
        sessions.touch(key, now);
        let entry = sessions.map.get(key)?;
        // Our own serialization, so it parses; a message that somehow did not is left out, not a panic.
        Some(entry.spans.iter().filter_map(|span| serde_json::from_str(entry.json(span)).ok()).collect())
    }

    /// Whether `response` was issued in this (living) session within the TTL.
    fn issued(&self, key: &SessionKey, response: &str, now: Instant) -> bool {
        let sessions = self.lock();
        sessions.map.get(key).is_some_and(|entry| {
            !self.expired(entry, now)
                && entry.responses.iter().any(|(id, at)| id == response && now.duration_since(*at) < self.ttl)
        })
    }

    /// [`MemoryStore::load_now`] when `response` was issued in this session within the TTL.
    fn load_continuing_now(&self, key: &SessionKey, response: &str) -> Option<Vec<StoredMessage>> {
        if !self.issued(key, response, Instant::now()) {
            return None;
        }
        self.load_now(key)
    }

    fn append_now(&self, key: &SessionKey, messages: Vec<Record>, response: Option<&str>) -> Result<(), SessionError> {
        // A message that alone is more than the whole store may hold cannot be kept: refused, so the turn
        // says it was not saved, instead of being stored and evicted at once.
        if let Some(big) = messages.iter().find(|record| record_cost(record) + session_cost(key) > self.max_bytes) {
            return Err(SessionError::Refused(format!(
                "a message of {} bytes is more than the in-memory store holds (SESSION_MAX_BYTES={})",
                big.json.len(),
                self.max_bytes
            )));
        }
        let now = Instant::now();
        let mut guard = self.lock();
        let sessions = &mut *guard;
        if sessions.map.get(key).is_some_and(|entry| self.expired(entry, now)) {
            sessions.remove(key);
        }
        if sessions.map.contains_key(key) {
            sessions.touch(key, now);
        } else {
            self.make_room(sessions, now);
            sessions.insert(key, now);
        }
        let Some(entry) = sessions.map.get_mut(key) else { return Ok(()) };
        // Duplicates are dropped under the lock.
        let known: HashSet<&str> = entry.spans.iter().map(|span| entry.id(span)).collect();
        let mut fresh: Vec<&Record> = Vec::with_capacity(messages.len());
        for record in &messages {
            // A turn appends a handful of messages: the scan of `fresh` is a few comparisons.
            if !known.contains(record.id.as_str()) && !fresh.iter().any(|f| f.id == record.id) {
                fresh.push(record);
            }
        }
        drop(known);
        let added: usize = fresh.iter().map(|record| record_cost(record)).sum();
        entry.text.reserve(fresh.iter().map(|record| record.json.len() + record.id.len()).sum());
        for record in fresh {
            entry.push(record);
        }
        entry.bytes += added;
        sessions.bytes += added;
        if let Some(response) = response {
            entry.responses.push((response.to_owned(), now));
            entry.bytes += response.len() + RESPONSE_OVERHEAD;
            sessions.bytes += response.len() + RESPONSE_OVERHEAD;
            if entry.responses.len() > MAX_RESPONSES_PER_SESSION {
                let (dropped, _) = entry.responses.remove(0);
                entry.bytes -= dropped.len() + RESPONSE_OVERHEAD;
                sessions.bytes -= dropped.len() + RESPONSE_OVERHEAD;
            }
        }
        // The session's own bounds: the message cap, then the byte budget (its oldest messages go first).
        let over_count = entry.spans.len().saturating_sub(self.max_messages);
        let mut dropped = over_count;
        let mut bytes = entry.bytes - entry.spans[..over_count].iter().map(Span::cost).sum::<usize>();
        while bytes > self.max_bytes && dropped < entry.spans.len() {
            bytes -= entry.spans[dropped].cost();
            dropped += 1;
        }
        let freed = entry.bytes - bytes;
        entry.drop_oldest(dropped);
        entry.bytes = bytes;
        sessions.bytes -= freed;
        // The store's budget: other sessions, least recently used first.
        while sessions.bytes > self.max_bytes {
            let Some(oldest) = sessions.oldest_but(key) else { break };
            sessions.remove(&oldest);
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        let sessions = self.lock();
        let counted: usize = sessions
            .map
            .iter()
            .map(|(k, e)| session_cost(k) + e.spans.iter().map(Span::cost).sum::<usize>())
            .sum::<usize>()
            + sessions
                .map
                .values()
                .flat_map(|e| &e.responses)
                .map(|(id, _)| id.len() + RESPONSE_OVERHEAD)
                .sum::<usize>();
        assert_eq!(counted, sessions.bytes, "the running total is the sum of the sessions' costs");
        assert_eq!(sessions.order.len(), sessions.map.len(), "every session has one place in the use order");
        assert!(sessions.order.iter().all(|(stamp, k)| sessions.map[k].stamp == *stamp));
        sessions.bytes
    }
}

impl Store for MemoryStore {
    fn system(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>> {
        std::future::ready(Ok(self.load_now(key))).boxed()
    }

    fn append<'a>(&'a self, key: &'a SessionKey, messages: Vec<Record>) -> BoxFuture<'a, Result<(), SessionError>> {
        std::future::ready(self.append_now(key, messages, None)).boxed()
    }

    fn load_continuing<'a>(
        &'a self,
        key: &'a SessionKey,
        response: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<StoredMessage>>, SessionError>> {
        std::future::ready(Ok(self.load_continuing_now(key, response))).boxed()
    }

    fn delete<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<bool, SessionError>> {
        std::future::ready(Ok(self.lock().remove(key))).boxed()
    }

    fn claim<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
        continuing: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Claim, SessionError>> {
        std::future::ready(Ok(self.claim_now(key, token, ttl, continuing))).boxed()
    }

    fn renew<'a>(
        &'a self,
        key: &'a SessionKey,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        let renewed = self.holding(key, token, |leases| {
            leases.insert(key.clone(), (token.to_owned(), Instant::now() + ttl));
        });
        std::future::ready(Ok(renewed)).boxed()
    }

    fn release<'a>(&'a self, key: &'a SessionKey, token: &'a str) -> BoxFuture<'a, Result<(), SessionError>> {
        self.holding(key, token, |leases| {
            leases.remove(key);
        });
        std::future::ready(Ok(())).boxed()
    }

    fn append_releasing<'a>(
        &'a self,
        key: &'a SessionKey,
        messages: Vec<Record>,
        token: &'a str,
        response: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        // Another holder now: this turn's lease expired while it ran and the session went on without it.
        if self.holder_now(key).is_some_and(|holder| holder != token) {
            return std::future::ready(Err(SessionError::Fenced)).boxed();
        }
        let appended = self.append_now(key, messages, response);
        self.holding(key, token, |leases| {
            leases.remove(key);
        });
        std::future::ready(appended).boxed()
    }

    fn holder<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Result<Option<String>, SessionError>> {
        std::future::ready(Ok(self.holder_now(key))).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::message::{Part, new_message_id};
    use crate::sessions::{StoreKind, replay::Window};

    fn store(max_sessions: usize, max_messages: usize, ttl_secs: u64) -> MemoryStore {
        store_of(max_sessions, max_messages, ttl_secs, SessionSettings::DEFAULT_MAX_BYTES)
    }

    fn store_of(max_sessions: usize, max_messages: usize, ttl_secs: u64, max_bytes: usize) -> MemoryStore {
        MemoryStore::new(&SessionSettings {
            store: StoreKind::Memory,
            ttl: Duration::from_secs(ttl_secs),
            max_sessions,
            max_messages,
            max_bytes,
            timeout: Duration::from_secs(1),
            key_prefix: String::new(),
            redis_cluster: false,
            window: Window { messages: 10, chars: 1000 },
            journal: crate::sessions::JournalSettings { ttl: Duration::from_secs(60), max_turns: 1, max_bytes: 1 },
            lease: crate::sessions::LeaseSettings { ttl: Duration::from_secs(30), busy_wait: Duration::ZERO },
        })
    }

    fn key(user: &str, session: &str) -> SessionKey {
        SessionKey { user_id: user.into(), session_id: session.into() }
    }

    fn text(t: &str) -> Record {
        Record::completed(new_message_id(), "message", "user", &[Part::Text(t)], "o", "user")
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
        store.bytes(); // the use order and the map agree
    }

    #[tokio::test]
    async fn a_session_keeps_its_newest_messages_up_to_the_cap() {
        let store = store(10, 3, 60);
        let four = ["1", "2", "3", "4"].map(text);
        store.append(&key("u", "s"), four.to_vec()).await.unwrap();
        assert_eq!(texts(store.load(&key("u", "s")).await.unwrap()), ["2", "3", "4"]);
        // A message kept past the drop is still known by its id; the new one pushes out the oldest.
        store.append(&key("u", "s"), vec![four[3].clone(), text("5")]).await.unwrap();
        assert_eq!(texts(store.load(&key("u", "s")).await.unwrap()), ["3", "4", "5"]);
        store.bytes();
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

    fn long(t: &str, chars: usize) -> Record {
        text(&format!("{t}{}", "x".repeat(chars)))
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_budget_evicts_the_least_recently_used_sessions() {
        let one = record_cost(&long("a", 1000)) + session_cost(&key("u", "a"));
        // Room for three sessions of one such message, not four.
        let store = store_of(100, 100, 3600, one * 3 + one / 2);
        for name in ["a", "b", "c"] {
            store.append(&key("u", name), vec![long(name, 1000)]).await.unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        store.load(&key("u", "a")).await.unwrap(); // b is now the least recently used
        store.append(&key("u", "d"), vec![long("d", 1000)]).await.unwrap();
        assert_eq!(store.len(), 3);
        assert!(store.bytes() <= one * 3 + one / 2);
        assert_eq!(store.load(&key("u", "b")).await.unwrap(), None, "b was the least recently used");
        for name in ["a", "c", "d"] {
            assert!(store.load(&key("u", name)).await.unwrap().is_some(), "{name} is kept");
        }
        assert!(store.delete(&key("u", "a")).await.unwrap());
        assert_eq!(store.bytes(), 2 * one, "a delete gives its bytes back");
    }

    #[tokio::test]
    async fn a_session_larger_than_the_budget_keeps_its_newest_messages() {
        let one = record_cost(&long("1", 1000));
        let store = store_of(100, 100, 3600, session_cost(&key("u", "s")) + one * 2 + 10);
        store.append(&key("u", "s"), ["1", "2", "3"].map(|t| long(t, 1000)).to_vec()).await.unwrap();
        let kept: Vec<String> =
            texts(store.load(&key("u", "s")).await.unwrap()).iter().map(|t| t[..1].to_owned()).collect();
        assert_eq!(kept, ["2", "3"]);
        assert!(store.bytes() <= session_cost(&key("u", "s")) + one * 2 + 10);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_whole_store_is_refused_and_nothing_is_stored() {
        let store = store_of(100, 100, 3600, 4096);
        store.append(&key("u", "small"), vec![text("hi")]).await.unwrap();
        let before = store.bytes();
        let refused = store.append(&key("u", "s"), vec![text("fits"), long("big", 5000)]).await;
        let Err(SessionError::Refused(reason)) = refused else { panic!("{refused:?}") };
        assert!(reason.contains("SESSION_MAX_BYTES"), "{reason}");
        assert_eq!(store.load(&key("u", "s")).await.unwrap(), None, "not even the message that fitted");
        assert_eq!(store.bytes(), before);
        assert_eq!(texts(store.load(&key("u", "small")).await.unwrap()), ["hi"], "others untouched");
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_continues_its_own_users_session_within_the_ttl() {
        let store = store(10, 10, 60);
        store.append_releasing(&key("u", "s"), vec![text("one")], "t", Some("resp_a")).await.unwrap();
        assert_eq!(texts(store.load_continuing(&key("u", "s"), "resp_a").await.unwrap()), ["one"]);
        assert_eq!(store.load_continuing(&key("u", "s"), "resp_b").await.unwrap(), None, "never issued");
        assert_eq!(store.load_continuing(&key("v", "s"), "resp_a").await.unwrap(), None, "another user's");
        assert_eq!(store.load_continuing(&key("u", "t"), "resp_a").await.unwrap(), None, "another session's");
        store.bytes();
        // The session is used again (it stays alive), but the response was issued a TTL ago.
        tokio::time::advance(Duration::from_secs(40)).await;
        store.append_releasing(&key("u", "s"), vec![text("two")], "t", Some("resp_b")).await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(store.load_continuing(&key("u", "s"), "resp_a").await.unwrap(), None, "expired");
        assert!(store.load_continuing(&key("u", "s"), "resp_b").await.unwrap().is_some());
        for n in 0..MAX_RESPONSES_PER_SESSION {
            store.append_releasing(&key("u", "s"), Vec::new(), "t", Some(&format!("resp_{n}"))).await.unwrap();
        }
        assert_eq!(store.load_continuing(&key("u", "s"), "resp_b").await.unwrap(), None, "only the newest are kept");
        assert!(store.load_continuing(&key("u", "s"), "resp_0").await.unwrap().is_some());
        store.bytes();
        store.delete(&key("u", "s")).await.unwrap();
        assert_eq!(store.bytes(), 0);
    }

    #[tokio::test]
    async fn a_claim_continuing_a_response_takes_nothing_unless_the_response_is_this_sessions() {
        let store = store(10, 10, 60);
        let ttl = Duration::from_secs(30);
        store.append_releasing(&key("u", "s"), vec![text("one")], "t0", Some("resp_a")).await.unwrap();
        for (key, response, why) in [
            (key("u", "s"), "resp_b", "never issued"),
            (key("v", "s"), "resp_a", "another user's"),
            (key("u", "t"), "resp_a", "another session's"),
        ] {
            assert_eq!(store.claim(&key, "t1", ttl, Some(response)).await.unwrap(), Claim::NotIssued, "{why}");
            assert_eq!(store.holder(&key).await.unwrap(), None, "{why}: no lease taken");
        }
        let Claim::Held(Some(stored)) = store.claim(&key("u", "s"), "t1", ttl, Some("resp_a")).await.unwrap() else {
            panic!("this user's response continues its session")
        };
        assert_eq!(texts(Some(stored)), ["one"]);
        assert_eq!(store.holder(&key("u", "s")).await.unwrap().as_deref(), Some("t1"));
        // Busy is told only to a claim whose response is in order.
        assert_eq!(store.claim(&key("u", "s"), "t2", ttl, Some("resp_x")).await.unwrap(), Claim::NotIssued);
        assert_eq!(
            store.claim(&key("u", "s"), "t2", ttl, Some("resp_a")).await.unwrap(),
            Claim::Busy { holder: "t1".into() }
        );
        store.release(&key("u", "s"), "t1").await.unwrap();
        store.delete(&key("u", "s")).await.unwrap();
        assert_eq!(store.claim(&key("u", "s"), "t3", ttl, Some("resp_a")).await.unwrap(), Claim::NotIssued, "deleted");
    }

    #[tokio::test]
    async fn the_running_total_follows_appends_duplicates_caps_and_deletes() {
        let store = store(10, 3, 60);
        let first = text("one");
        store.append(&key("u", "s"), vec![first.clone(), first.clone(), text("two")]).await.unwrap();
        let two = store.bytes();
        store.append(&key("u", "s"), vec![first, text("three"), text("four")]).await.unwrap();
        assert_eq!(texts(store.load(&key("u", "s")).await.unwrap()), ["two", "three", "four"]);
        assert!(store.bytes() > two);
        store.delete(&key("u", "s")).await.unwrap();
        assert_eq!(store.bytes(), 0);
    }
}
