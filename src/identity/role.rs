//! The workload identity's role, as the SDK reaches the vault: a WorkloadAccessToken →
//! `AssumeRoleForWorkloadIdentity` (anonymous) → STS credentials that sign `GetResourceAPIKey` and
//! `GetResourceOAuth2Token`. [`Roles`] caches them per WAT; [`TurnWat`] is one turn's WAT, which a refusal
//! drops from the token cache.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::client::IdentityClient;
use super::error::IdentityError;
use super::subject::Subject;
use super::tokens::WorkloadTokens;
use crate::acs::{AcsError, Credentials, CredentialsProvider};
use crate::secret::Secret;

/// What the SDK asks for (`requires_sts_token(session_duration=3600)`).
const ROLE_DURATION_SECS: u32 = 3600;
/// STS credentials are stale this long before their `Expiration` (the credentials chain's rule).
const ROLE_STALE_BEFORE: Duration = Duration::from_secs(15 * 60);
/// When `Expiration` is missing or unreadable: the SDK's own fixed STS cache TTL.
const ROLE_FALLBACK_TTL: Duration = Duration::from_secs(600);
/// Role credentials kept at once (one per WAT, so per user): the SDK's LRU holds 100; a full cache first
/// drops what has expired, then the entry that expires soonest.
const ROLE_CACHE_CAPACITY: usize = 256;

struct CachedRole {
    credentials: Credentials,
    until: Instant,
}

/// STS credentials of the workload identity's role, keyed by the SHA-256 of the WAT they were assumed with
/// (never the token itself).
pub(crate) struct Roles {
    cache: Mutex<HashMap<[u8; 32], CachedRole>>,
}

impl Roles {
    pub(crate) fn new() -> Self {
        Roles { cache: Mutex::new(HashMap::new()) }
    }

    /// The role's credentials for `wat` (cached until shortly before they expire). An AssumeRole refusal
    /// (a 4xx: an expired or revoked WAT) also drops `wat` from the turn's token cache, so the next turn
    /// fetches a fresh one instead of being refused again with the same token.
    pub(crate) async fn credentials(
        &self,
        client: &IdentityClient,
        turn: &TurnWat<'_>,
        wat: &Secret,
        deadline: Instant,
    ) -> Result<Credentials, IdentityError> {
        let hash = hash(wat);
        let cached = lock(&self.cache).get(&hash).filter(|r| Instant::now() < r.until).map(|r| r.credentials.clone());
        if let Some(credentials) = cached {
            return Ok(credentials);
        }
        let session = format!("AgentIdentitySessionRole-{}", uuid::Uuid::new_v4());
        let assumed = client.assume_role_for_workload_identity(wat, &session, ROLE_DURATION_SECS, None, deadline).await;
        let credentials = match assumed {
            Ok(credentials) => credentials,
            Err(error) => {
                if refuses_the_token(&error) {
                    turn.refused(wat);
                }
                return Err(error);
            }
        };
        let lifetime = match credentials.expiration {
            Some(expires) => {
                expires.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(ROLE_STALE_BEFORE)
            }
            None => ROLE_FALLBACK_TTL,
        };
        let mut cache = lock(&self.cache);
        super::cache::make_room(&mut cache, ROLE_CACHE_CAPACITY, |r| r.until);
        cache.insert(hash, CachedRole { credentials: credentials.clone(), until: Instant::now() + lifetime });
        Ok(credentials)
    }

    /// A call signed with the role's credentials for `wat` failed: they may be what was refused (expired,
    /// revoked), so the role is assumed afresh next time.
    pub(crate) fn forget(&self, wat: &Secret) {
        lock(&self.cache).remove(&hash(wat));
    }
}

fn hash(wat: &Secret) -> [u8; 32] {
    Sha256::digest(wat.expose().as_bytes()).into()
}

/// A definitive 4xx answer about the request (not throttling, not the service failing).
fn refuses_the_token(error: &IdentityError) -> bool {
    matches!(error, IdentityError::Upstream(e @ AcsError::Api { status: 400..=499, .. }) if !e.is_retryable())
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One turn's WorkloadAccessToken: this subject's, fetched with these credentials (from the token cache,
/// so usually no call), within this deadline.
pub(crate) struct TurnWat<'a> {
    pub(crate) tokens: &'a WorkloadTokens,
    pub(crate) subject: &'a Subject,
    pub(crate) credentials: &'a dyn CredentialsProvider,
    pub(crate) deadline: Instant,
}

impl TurnWat<'_> {
    pub(crate) async fn get(&self) -> Result<Secret, IdentityError> {
        self.tokens.token(self.subject, self.credentials, self.deadline).await
    }

    /// Agent Identity refused `wat` itself: drop it if it is still the cached one.
    pub(crate) fn refused(&self, wat: &Secret) {
        self.tokens.invalidate_token(self.subject, wat);
    }
}
