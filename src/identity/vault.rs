//! The model key from the Agent Identity vault (`DASHSCOPE_API_KEY_PROVIDER`), as the SDK's
//! `requires_api_key` gets it: a WorkloadAccessToken → `AssumeRoleForWorkloadIdentity` (STS credentials of
//! the workload identity's role) → `GetResourceAPIKey` signed with them → the key.
//!
//! Unlike the SDK (which fetches the key on every request), [`ApiKeys`] keeps it: the key belongs to the
//! provider, not to a user, so one key serves every turn until DashScope refuses it (a rotation) or
//! [`KEY_MAX_AGE`] passes. Misses are single-flight; the WAT is only asked for on a miss, so a warm turn
//! costs no Agent Identity call at all.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::client::IdentityClient;
use super::error::IdentityError;
use super::subject::Subject;
use super::tokens::WorkloadTokens;
use crate::acs::{Credentials, CredentialsProvider};
use crate::llm::{KeyError, KeySource};
use crate::secret::Secret;
use crate::upstream::Endpoint;

/// The API gives a key no lifetime. Re-reading it hourly picks up a rotation in the vault even while the
/// old key still works; a key DashScope refuses is dropped at once.
pub(crate) const KEY_MAX_AGE: Duration = Duration::from_secs(3600);
/// What the SDK asks for (`requires_sts_token(session_duration=3600)`).
const ROLE_DURATION_SECS: u32 = 3600;
/// STS credentials are stale this long before their `Expiration` (the credentials chain's rule).
const ROLE_STALE_BEFORE: Duration = Duration::from_secs(15 * 60);
/// When `Expiration` is missing or unreadable: the SDK's own fixed STS cache TTL.
const ROLE_FALLBACK_TTL: Duration = Duration::from_secs(600);

struct CachedKey {
    key: Secret,
    until: Instant,
}

/// STS credentials for the WAT they were assumed with (keyed by its hash, never the token itself).
struct CachedRole {
    wat: [u8; 32],
    credentials: Credentials,
    until: Instant,
}

/// The vault-held model key of one provider, for the whole process.
pub(crate) struct ApiKeys {
    client: IdentityClient,
    provider: String,
    key: Mutex<Option<CachedKey>>,
    role: Mutex<Option<CachedRole>>,
    /// Held during a fetch: concurrent misses wait for it and then find the fresh key.
    flight: tokio::sync::Mutex<()>,
}

impl ApiKeys {
    /// `provider`: `DASHSCOPE_API_KEY_PROVIDER`. `http` is the Agent Identity upstream's client.
    pub(crate) fn new(provider: String, endpoint: &Endpoint, http: reqwest::Client) -> Self {
        ApiKeys::from_client(provider, IdentityClient::new(endpoint, http))
    }

    fn from_client(provider: String, client: IdentityClient) -> Self {
        ApiKeys { client, provider, key: Mutex::new(None), role: Mutex::new(None), flight: tokio::sync::Mutex::new(()) }
    }

    /// The cached key, or a fresh one: `wat` is awaited only then, for the WAT to exchange.
    pub(crate) async fn key<W>(&self, wat: W, deadline: Instant) -> Result<Secret, IdentityError>
    where
        W: Future<Output = Result<Secret, IdentityError>>,
    {
        if let Some(key) = self.cached() {
            return Ok(key);
        }
        let fetch = async {
            let _flight = self.flight.lock().await;
            if let Some(key) = self.cached() {
                return Ok(key);
            }
            let wat = wat.await?;
            let key = self.fetch(&wat, deadline).await?;
            *lock(&self.key) = Some(CachedKey { key: key.clone(), until: Instant::now() + KEY_MAX_AGE });
            Ok(key)
        };
        tokio::time::timeout_at(deadline, fetch).await.map_err(|_| IdentityError::Deadline)?
    }

    /// DashScope refused `key`: forget it if it is still the cached one (many turns refused with the same
    /// key cause one refetch between them).
    pub(crate) fn refused(&self, key: &Secret) {
        let mut cached = lock(&self.key);
        if cached.as_ref().is_some_and(|c| &c.key == key) {
            *cached = None;
        }
    }

    fn cached(&self) -> Option<Secret> {
        lock(&self.key).as_ref().filter(|c| Instant::now() < c.until).map(|c| c.key.clone())
    }

    async fn fetch(&self, wat: &Secret, deadline: Instant) -> Result<Secret, IdentityError> {
        let role = self.role(wat, deadline).await?;
        let key = self.client.get_resource_api_key(&self.provider, wat, None, &role, deadline).await;
        if key.is_err() {
            // The role's credentials may be what was refused (expired, revoked): assume the role afresh next time.
            *lock(&self.role) = None;
        }
        key
    }

    /// STS credentials of the workload identity's role for `wat`, cached until shortly before they expire.
    async fn role(&self, wat: &Secret, deadline: Instant) -> Result<Credentials, IdentityError> {
        let hash: [u8; 32] = Sha256::digest(wat.expose().as_bytes()).into();
        let cached = lock(&self.role)
            .as_ref()
            .filter(|r| r.wat == hash && Instant::now() < r.until)
            .map(|r| r.credentials.clone());
        if let Some(credentials) = cached {
            return Ok(credentials);
        }
        let session = format!("AgentIdentitySessionRole-{}", uuid::Uuid::new_v4());
        let credentials =
            self.client.assume_role_for_workload_identity(wat, &session, ROLE_DURATION_SECS, None, deadline).await?;
        let lifetime = match credentials.expiration {
            Some(expires) => {
                expires.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(ROLE_STALE_BEFORE)
            }
            None => ROLE_FALLBACK_TTL,
        };
        *lock(&self.role) =
            Some(CachedRole { wat: hash, credentials: credentials.clone(), until: Instant::now() + lifetime });
        Ok(credentials)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One turn's view of the vault: the key, exchanged (on a miss) for this subject's WAT fetched with these
/// credentials, within this deadline. The chat client's [`KeySource`].
pub(crate) struct VaultKey {
    keys: Arc<ApiKeys>,
    tokens: Arc<WorkloadTokens>,
    subject: Subject,
    credentials: Arc<dyn CredentialsProvider>,
    deadline: Instant,
}

impl VaultKey {
    pub(crate) fn new(
        keys: Arc<ApiKeys>,
        tokens: Arc<WorkloadTokens>,
        subject: Subject,
        credentials: Arc<dyn CredentialsProvider>,
        deadline: Instant,
    ) -> Self {
        VaultKey { keys, tokens, subject, credentials, deadline }
    }
}

impl KeySource for VaultKey {
    fn key(&self) -> BoxFuture<'_, Result<Secret, KeyError>> {
        Box::pin(async move {
            let wat = self.tokens.token(&self.subject, self.credentials.as_ref(), self.deadline);
            self.keys.key(wat, self.deadline).await.map_err(KeyError::new)
        })
    }

    fn refused(&self, key: &Secret) -> bool {
        self.keys.refused(key);
        true
    }
}
