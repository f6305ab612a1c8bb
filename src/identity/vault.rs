//! The model key from the Agent Identity vault (`DASHSCOPE_API_KEY_PROVIDER`), as the SDK's
//! `requires_api_key` gets it: a WorkloadAccessToken → `AssumeRoleForWorkloadIdentity` (STS credentials of
//! the workload identity's role) → `GetResourceAPIKey` signed with them → the key.
//!
//! Unlike the SDK (which fetches the key on every request), [`ApiKeys`] keeps it: the key belongs to the
//! provider, not to a user, so one key serves every turn until DashScope refuses it (a rotation) or
//! [`KEY_MAX_AGE`] passes. Misses are single-flight; the WAT is only asked for on a miss, so a warm turn
//! costs no Agent Identity call at all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::client::IdentityClient;
use super::error::IdentityError;
use super::role::{Roles, TurnWat, lock};
use super::subject::Subject;
use super::tokens::WorkloadTokens;
use crate::acs::CredentialsProvider;
use crate::llm::{KeyError, KeySource};
use crate::secret::Secret;

/// The API gives a key no lifetime. Re-reading it hourly picks up a rotation in the vault even while the
/// old key still works; a key DashScope refuses is dropped at once.
pub(crate) const KEY_MAX_AGE: Duration = Duration::from_secs(3600);

struct CachedKey {
    key: Secret,
    until: Instant,
}

/// The vault-held model key of one provider, for the whole process.
pub(crate) struct ApiKeys {
    client: IdentityClient,
    provider: String,
    key: Mutex<Option<CachedKey>>,
    roles: Arc<Roles>,
    /// Held during a fetch: concurrent misses wait for it and then find the fresh key.
    flight: tokio::sync::Mutex<()>,
}

impl ApiKeys {
    /// `provider`: `DASHSCOPE_API_KEY_PROVIDER`. `client` talks to the Agent Identity upstream; `roles` is
    /// the process's role cache (shared with the OAuth2 tokens).
    pub(crate) fn new(provider: String, client: IdentityClient, roles: Arc<Roles>) -> Self {
        ApiKeys { client, provider, key: Mutex::new(None), roles, flight: tokio::sync::Mutex::new(()) }
    }

    /// The cached key, or a fresh one: the turn's WAT is asked for only then, to exchange.
    pub(crate) async fn key(&self, wat: &TurnWat<'_>, deadline: Instant) -> Result<Secret, IdentityError> {
        if let Some(key) = self.cached() {
            return Ok(key);
        }
        let fetch = async {
            let _flight = self.flight.lock().await;
            if let Some(key) = self.cached() {
                return Ok(key);
            }
            let token = wat.get().await?;
            let key = self.fetch(wat, &token, deadline).await?;
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

    async fn fetch(&self, turn: &TurnWat<'_>, wat: &Secret, deadline: Instant) -> Result<Secret, IdentityError> {
        let role = self.roles.credentials(&self.client, turn, wat, deadline).await?;
        let key = self.client.get_resource_api_key(&self.provider, wat, None, &role, deadline).await;
        if key.is_err() {
            self.roles.forget(wat);
        }
        key
    }
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
            let wat = TurnWat {
                tokens: &self.tokens,
                subject: &self.subject,
                credentials: self.credentials.as_ref(),
                deadline: self.deadline,
            };
            self.keys.key(&wat, self.deadline).await.map_err(KeyError::new)
        })
    }

    fn refused(&self, key: &Secret) -> bool {
        self.keys.refused(key);
        true
    }
}
