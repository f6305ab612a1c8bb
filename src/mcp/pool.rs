//! The live connections an instance keeps between turns, per (MCP server, user), bounded.
//!
//! The user is the verified subject the WorkloadAccessToken was issued for, so one user's connection (and
//! with it the tool list the gateway filtered for that user) is never handed to another; a refreshed token
//! for the same user finds the same entry. The pool is bounded in entries and in bytes (each entry's tool
//! list as JSON plus a fixed estimate for the connection), least recently used out, so it fits a 128 MB
//! instance next to the session store. An entry idle past its time is dropped when it is next looked at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::live::{LIVE_OVERHEAD_BYTES, Live};

/// Who a connection is for: the verified user (`UserKey::for_user`), never a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserKey(Arc<str>);

impl UserKey {
    /// A key for a verified user id, made by the caller from what Agent Identity accepted.
    pub fn new(user: &str) -> UserKey {
        UserKey(Arc::from(user))
    }
}

/// The pool's bounds (`AI_GATEWAY_MCP_CACHE_ENTRIES`, `AI_GATEWAY_MCP_CACHE_BYTES`) and how long an idle
/// connection and a 2025-revision tool list are kept (`AI_GATEWAY_MCP_CACHE_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    pub entries: usize,
    pub bytes: usize,
    pub idle: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        // 256 users × a typical gateway list (a few KiB) stays well under 4 MiB.
        PoolLimits { entries: 256, bytes: 4 << 20, idle: Duration::from_secs(300) }
    }
}

struct Slot {
    live: Arc<Live>,
    bytes: usize,
    last_used: Instant,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<(usize, UserKey), Slot>,
    bytes: usize,
}

pub(super) struct Pool {
    limits: PoolLimits,
    inner: Mutex<Inner>,
}

impl Pool {
    pub(super) fn new(limits: PoolLimits) -> Pool {
        Pool { limits, inner: Mutex::new(Inner::default()) }
    }

    pub(super) fn limits(&self) -> PoolLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's live connection to `server`, if one is kept, still open and not idle too long.
    pub(super) fn get(&self, server: usize, user: &UserKey) -> Option<Arc<Live>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = (server, user.clone());
        let usable = match inner.slots.get(&key) {
            None => return None,
            Some(slot) => now.duration_since(slot.last_used) < self.limits.idle && slot.live.is_open(),
        };
        if !usable {
            remove(&mut inner, &key);
            return None;
        }
        let slot = inner.slots.get_mut(&key)?;
        slot.last_used = now;
        Some(slot.live.clone())
    }

    /// Keeps `live` for the user (replacing what was there), then evicts down to the bounds.
    pub(super) fn put(&self, server: usize, user: &UserKey, live: Arc<Live>) {
        if self.limits.entries == 0 {
            return;
        }
        let mut inner = self.lock();
        let key = (server, user.clone());
        remove(&mut inner, &key);
        inner.bytes += LIVE_OVERHEAD_BYTES;
        inner.slots.insert(key.clone(), Slot { live, bytes: LIVE_OVERHEAD_BYTES, last_used: Instant::now() });
        self.evict(&mut inner, &key);
    }

    /// The connection's tool list was (re)listed and is `list_bytes` long as JSON.
    pub(super) fn resize(&self, server: usize, user: &UserKey, live: &Arc<Live>, list_bytes: usize) {
        let mut inner = self.lock();
        let key = (server, user.clone());
        let Some(slot) = inner.slots.get_mut(&key).filter(|slot| Arc::ptr_eq(&slot.live, live)) else {
            return;
        };
        let old = std::mem::replace(&mut slot.bytes, LIVE_OVERHEAD_BYTES + list_bytes);
        let new = slot.bytes;
        inner.bytes = inner.bytes - old + new;
        self.evict(&mut inner, &key);
    }

    /// Forgets the user's connection to `server` if it is `live` (a timeout, a dead transport, a refused
    /// token: the next turn opens a new one). In-flight requests end when the last turn using it lets go.
    pub(super) fn forget(&self, server: usize, user: &UserKey, live: &Arc<Live>) {
        let mut inner = self.lock();
        let key = (server, user.clone());
        if inner.slots.get(&key).is_some_and(|slot| Arc::ptr_eq(&slot.live, live)) {
            remove(&mut inner, &key);
        }
    }

    /// Forgets every connection of the user (a refused token is refused on every server).
    pub(super) fn forget_user(&self, user: &UserKey) {
        let mut inner = self.lock();
        let keys: Vec<_> = inner.slots.keys().filter(|(_, u)| u == user).cloned().collect();
        for key in keys {
            remove(&mut inner, &key);
        }
    }

    /// Entries and bytes held (for tests and the benchmark).
    pub(super) fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.slots.len(), inner.bytes)
    }

    /// Drops least recently used entries (never `keep`, the one just used) until within both bounds.
    fn evict(&self, inner: &mut Inner, keep: &(usize, UserKey)) {
        while inner.slots.len() > self.limits.entries || inner.bytes > self.limits.bytes {
            let oldest = inner
                .slots
                .iter()
                .filter(|(key, _)| *key != keep)
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => remove(inner, &key),
                None => break,
            }
        }
    }
}

fn remove(inner: &mut Inner, key: &(usize, UserKey)) {
    if let Some(slot) = inner.slots.remove(key) {
        inner.bytes -= slot.bytes;
    }
}
