//! [`WorkloadTokens`]: the one call the app makes per invocation — "the WAT for this subject".

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::cache::{CacheKey, TokenCache};
use super::client::IdentityClient;
use super::error::IdentityError;
use super::subject::{Subject, UserSource};
use crate::acs::CredentialsProvider;
use crate::secret::Secret;
use crate::telemetry::{Span, SpanKind, names, within};
use crate::upstream::Endpoint;

pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// The `AGENT_IDENTITY_*` variables, as config.rs parses them (straight into this type, no copy in between).
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// `AGENT_IDENTITY_DATA_ENDPOINT` (a bare host meaning https), else the data API of
    /// `AGENT_IDENTITY_REGION_ID` ([`super::default_endpoint`]).
    pub endpoint: Endpoint,
    /// `AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME`; empty when a preset token makes it unnecessary.
    pub workload_identity_name: String,
    /// `AGENT_IDENTITY_TOKEN_TTL_SECS`.
    pub token_ttl: Duration,
    /// `AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN`: when set, it is the answer for every subject, no call made.
    pub preset_token: Option<Secret>,
    /// `AGENT_IDENTITY_USER_SOURCE`: read by the app, which decides the [`Subject`] before asking for a token.
    pub user_source: UserSource,
}

pub struct WorkloadTokens {
    client: IdentityClient,
    workload_identity_name: String,
    preset_token: Option<Secret>,
    cache: TokenCache,
}

impl WorkloadTokens {
    /// `http` is the Agent Identity upstream's client (built once from `upstream::client_builder()`).
    pub fn new(settings: IdentitySettings, http: reqwest::Client) -> Self {
        WorkloadTokens {
            client: IdentityClient::new(&settings.endpoint, http),
            workload_identity_name: settings.workload_identity_name,
            preset_token: settings.preset_token.filter(|t| !t.is_empty()),
            cache: TokenCache::new(settings.token_ttl, TokenCache::DEFAULT_CAPACITY),
        }
    }

    /// The WAT for `subject`: the preset one, a cached one, or a fresh one from Agent Identity signed
    /// with `credentials` (only asked for on a miss). Concurrent misses for one subject share one call.
    pub async fn token(
        &self,
        subject: &Subject,
        credentials: &dyn CredentialsProvider,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        if let Some(preset) = &self.preset_token {
            return Ok(preset.clone());
        }
        let key = CacheKey::new(&self.workload_identity_name, subject);
        // The lookup as a span of its own, saying whether Agent Identity was asked (a cache miss: its
        // action's client span is then the child) or the instance's cache answered.
        let span = Span::start("workload_access_token", SpanKind::Internal, Vec::new);
        let fetched = AtomicBool::new(false);
        let fetch = || {
            fetched.store(true, Ordering::Relaxed);
            self.fetch(subject, credentials, deadline)
        };
        let lookup = within(&span, self.cache.get_or_fetch(key, subject, fetch));
        let token = tokio::time::timeout_at(deadline, lookup).await.unwrap_or(Err(IdentityError::Deadline));
        span.set(names::CACHE_HIT, !fetched.load(Ordering::Relaxed));
        if let Err(error) = &token {
            span.fail("identity_error", &error.to_string());
        }
        span.end();
        token
    }

    /// Whether [`WorkloadTokens::token`] asks Agent Identity (which verifies a JWT) rather than handing out
    /// the preset token (`AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN`), which verifies nothing.
    pub(crate) fn verifies_jwts(&self) -> bool {
        self.preset_token.is_none()
    }

    /// Forget the cached token for `subject` (e.g. a downstream said 401): the next `token` call fetches.
    pub fn invalidate(&self, subject: &Subject) {
        self.cache.invalidate(&CacheKey::new(&self.workload_identity_name, subject));
    }

    /// Forget `rejected` if it is still the cached token for `subject`. Prefer this over [`invalidate`]
    /// when many requests may report the same refused token: they cause one refresh between them.
    ///
    /// [`invalidate`]: WorkloadTokens::invalidate
    pub fn invalidate_token(&self, subject: &Subject, rejected: &Secret) {
        self.cache.invalidate_token(&CacheKey::new(&self.workload_identity_name, subject), rejected);
    }

    async fn fetch(
        &self,
        subject: &Subject,
        credentials: &dyn CredentialsProvider,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        let credentials =
            tokio::time::timeout_at(deadline, credentials.provide()).await.map_err(|_| IdentityError::Deadline)??;
        let workload = self.workload_identity_name.as_str();
        match subject {
            Subject::Jwt(jwt) => {
                self.client.get_workload_access_token_for_jwt(workload, jwt, &credentials, deadline).await
            }
            Subject::UserId(user_id) => {
                self.client.get_workload_access_token_for_user_id(workload, user_id, &credentials, deadline).await
            }
            Subject::Agent => self.client.get_workload_access_token(workload, &credentials, deadline).await,
        }
    }
}
