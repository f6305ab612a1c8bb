//! WorkloadAccessTokens reused per workload + subject: TTL-bounded, never past the user's JWT `exp`,
//! single-flight (concurrent misses for one key make one upstream call), bounded in size.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::subject::{Subject, jwt_expiry};
use crate::secret::Secret;

/// Identifies one cached token. JWTs are keyed by their SHA-256, so the raw token is never held as a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    workload: String,
    subject: SubjectKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubjectKey {
    Jwt([u8; 32]),
    UserId(String),
    Agent,
}

impl CacheKey {
    pub(crate) fn new(workload: &str, subject: &Subject) -> Self {
        let subject = match subject {
            Subject::Jwt(jwt) => SubjectKey::Jwt(Sha256::digest(jwt.expose().as_bytes()).into()),
            Subject::UserId(id) => SubjectKey::UserId(id.clone()),
            Subject::Agent => SubjectKey::Agent,
        };
        CacheKey { workload: workload.to_owned(), subject }
    }
}

struct Cached {
    token: Secret,
    expires_at: Instant,
}

/// One key's slot. Its async mutex is held during the upstream call, which is what makes misses
/// single-flight: later callers wait on it and then find the fresh token.
struct Slot {
    /// Insertion order, for evicting the oldest.
    seq: u64,
    state: tokio::sync::Mutex<Option<Cached>>,
}

pub(crate) struct TokenCache {
    ttl: Duration,
    capacity: usize,
    slots: Mutex<HashMap<CacheKey, Arc<Slot>>>,
    next_seq: AtomicU64,
}

impl TokenCache {
    pub(crate) const DEFAULT_CAPACITY: usize = 10_000;

    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        TokenCache { ttl, capacity: capacity.max(1), slots: Mutex::new(HashMap::new()), next_seq: AtomicU64::new(0) }
    }

    /// The cached token for `subject`, or the result of `fetch` (which is then cached). Errors are not
    /// cached. The entry lives for the TTL, but never past a JWT subject's `exp`.
    pub(crate) async fn get_or_fetch<F, Fut, E>(&self, key: CacheKey, subject: &Subject, fetch: F) -> Result<Secret, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Secret, E>>,
    {
        let slot = self.slot(key);
        let mut state = slot.state.lock().await;
        if let Some(cached) = state.as_ref()
            && Instant::now() < cached.expires_at
        {
            return Ok(cached.token.clone());
        }
        *state = None;
        let token = fetch().await?;
        if let Some(lifetime) = self.lifetime(subject) {
            *state = Some(Cached { token: token.clone(), expires_at: Instant::now() + lifetime });
        }
        Ok(token)
    }

    /// Forgets the token for `key`: the next caller fetches a fresh one (concurrent callers share it).
    pub(crate) fn invalidate(&self, key: &CacheKey) {
        self.lock_slots().remove(key);
    }

    /// Forgets the token for `key` only if it is still `rejected`. Many callers that saw the same token
    /// refused downstream thus cause exactly one refresh, not one each.
    pub(crate) fn invalidate_token(&self, key: &CacheKey, rejected: &Secret) {
        let mut slots = self.lock_slots();
        let stale = slots.get(key).is_some_and(|slot| match slot.state.try_lock() {
            Ok(state) => state.as_ref().is_some_and(|c| &c.token == rejected),
            // A fetch is under way: its token is newer than the rejected one.
            Err(_) => false,
        });
        if stale {
            slots.remove(key);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock_slots().len()
    }

    fn lifetime(&self, subject: &Subject) -> Option<Duration> {
        let Subject::Jwt(jwt) = subject else {
            return Some(self.ttl);
        };
        match jwt_expiry(jwt.expose()) {
            Some(exp) => exp.duration_since(SystemTime::now()).ok().map(|left| left.min(self.ttl)),
            None => Some(self.ttl),
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<Slot>>> {
        // A panic while holding this lock leaves the map consistent (every operation is one call).
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn slot(&self, key: CacheKey) -> Arc<Slot> {
        let mut slots = self.lock_slots();
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        if slots.len() >= self.capacity {
            evict(&mut slots, self.capacity);
        }
        let slot =
            Arc::new(Slot { seq: self.next_seq.fetch_add(1, Ordering::Relaxed), state: tokio::sync::Mutex::new(None) });
        slots.insert(key, slot.clone());
        slot
    }
}

/// Drops expired or empty idle slots; if still full, the oldest idle ones. Slots with a fetch in flight
/// (locked) are kept so their waiters stay single-flight.
fn evict(slots: &mut HashMap<CacheKey, Arc<Slot>>, capacity: usize) {
    let now = Instant::now();
    slots.retain(|_, slot| match slot.state.try_lock() {
        Ok(state) => state.as_ref().is_some_and(|c| now < c.expires_at),
        Err(_) => true,
    });
    if slots.len() < capacity {
        return;
    }
    let mut idle: Vec<(u64, CacheKey)> = slots
        .iter()
        .filter(|(_, slot)| slot.state.try_lock().is_ok())
        .map(|(key, slot)| (slot.seq, key.clone()))
        .collect();
    idle.sort_by_key(|(seq, _)| *seq);
    let excess = slots.len() + 1 - capacity;
    for (_, key) in idle.into_iter().take(excess) {
        slots.remove(&key);
    }
}

/// Makes room for one more entry in a capped map of expiring entries: the expired go first, then, if it is
/// still full, the one that expires soonest. Shared by the OAuth2 token and STS role caches.
pub(super) fn make_room<K: Copy + Eq + std::hash::Hash, V>(
    cache: &mut std::collections::HashMap<K, V>,
    capacity: usize,
    until: impl Fn(&V) -> tokio::time::Instant,
) {
    if cache.len() < capacity {
        return;
    }
    let now = tokio::time::Instant::now();
    cache.retain(|_, entry| now < until(entry));
    if cache.len() >= capacity
        && let Some(soonest) = cache.iter().min_by_key(|(_, entry)| until(entry)).map(|(key, _)| *key)
    {
        cache.remove(&soonest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use std::sync::atomic::AtomicUsize;

    fn user(id: &str) -> (CacheKey, Subject) {
        let subject = Subject::UserId(id.into());
        (CacheKey::new("w", &subject), subject)
    }

    async fn get(cache: &TokenCache, (key, subject): &(CacheKey, Subject), calls: &AtomicUsize) -> Secret {
        cache
            .get_or_fetch(key.clone(), subject, || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok::<_, ()>(Secret::new(format!("wat-{n}")))
            })
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn ttl_bounds_reuse() {
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let calls = AtomicUsize::new(0);
        let u = user("u1");
        assert_eq!(get(&cache, &u, &calls).await.expose(), "wat-1");
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(get(&cache, &u, &calls).await.expose(), "wat-1");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(get(&cache, &u, &calls).await.expose(), "wat-2");
    }

    #[tokio::test(start_paused = true)]
    async fn jwt_exp_bounds_the_entry() {
        let exp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 60;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let subject = Subject::Jwt(Secret::new(format!("h.{payload}.s")));
        let key = CacheKey::new("w", &subject);
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let calls = AtomicUsize::new(0);
        let entry = (key, subject);
        assert_eq!(get(&cache, &entry, &calls).await.expose(), "wat-1");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(get(&cache, &entry, &calls).await.expose(), "wat-1");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(get(&cache, &entry, &calls).await.expose(), "wat-2", "entry outlived the JWT's exp");

        let expired = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1000}"#);
        let subject = Subject::Jwt(Secret::new(format!("h.{expired}.s")));
        let entry = (CacheKey::new("w", &subject), subject);
        get(&cache, &entry, &calls).await;
        get(&cache, &entry, &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "a token for an expired JWT must not be cached");
    }

    #[tokio::test]
    async fn jwt_key_does_not_hold_the_raw_token() {
        let key = CacheKey::new("w", &Subject::Jwt(Secret::new("sentinel.jwt.value")));
        assert!(!format!("{key:?}").contains("sentinel"));
    }

    #[tokio::test]
    async fn invalidate_token_only_drops_the_rejected_one() {
        let cache = TokenCache::new(Duration::from_secs(300), 10);
        let calls = AtomicUsize::new(0);
        let u = user("u1");
        let first = get(&cache, &u, &calls).await;
        cache.invalidate_token(&u.0, &first);
        let second = get(&cache, &u, &calls).await;
        cache.invalidate_token(&u.0, &first); // a late caller still holding the old token
        assert_eq!(get(&cache, &u, &calls).await, second);
        cache.invalidate(&u.0);
        assert_eq!(get(&cache, &u, &calls).await.expose(), "wat-3");
    }

    #[tokio::test]
    async fn size_is_bounded() {
        let cache = TokenCache::new(Duration::from_secs(300), 3);
        let calls = AtomicUsize::new(0);
        for i in 0..10 {
            get(&cache, &user(&format!("u{i}")), &calls).await;
            assert!(cache.len() <= 3);
        }
        // The newest survive.
        get(&cache, &user("u9"), &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn make_room_drops_the_expired_then_the_soonest_to_expire() {
        use std::collections::HashMap;
        let now = tokio::time::Instant::now();
        let at = |secs| now + Duration::from_secs(secs);
        let mut cache: HashMap<u8, tokio::time::Instant> = HashMap::from([(1, at(10)), (2, at(30)), (3, at(20))]);
        make_room(&mut cache, 4, |until| *until);
        assert_eq!(cache.len(), 3, "room enough: nothing dropped");
        make_room(&mut cache, 3, |until| *until);
        assert_eq!(cache.keys().copied().collect::<std::collections::BTreeSet<_>>(), [2, 3].into());
        tokio::time::advance(Duration::from_secs(25)).await;
        make_room(&mut cache, 2, |until| *until);
        assert_eq!(cache.keys().copied().collect::<Vec<_>>(), [2], "the expired one goes first");
    }
}
