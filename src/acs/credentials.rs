//! Credentials and the providers that find them, in the spirit of aws-config: each provider either yields
//! credentials, says it has none ([`CredentialsError::Missing`], so a chain moves on), or fails.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::secret::Secret;

/// An AccessKey pair, plus the STS token and expiry when it is temporary.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub(crate) access_key_secret: Secret,
    pub security_token: Option<Secret>,
    pub expiration: Option<SystemTime>,
}

impl Credentials {
    /// The triple as another source holds it: the `ALIBABA_CLOUD_*` variables (config.rs) and FC's
    /// per-invocation `x-fc-access-key-*` headers both become credentials through here, and nowhere else. No
    /// expiration: neither says when its keys expire (FC's are fresh for the invocation that carries them).
    pub(crate) fn from_parts(access_key_id: String, access_key_secret: Secret, security_token: Option<Secret>) -> Self {
        Credentials { access_key_id, access_key_secret, security_token, expiration: None }
    }

    /// Long-term AccessKey credentials.
    pub fn access_key(access_key_id: impl Into<String>, access_key_secret: impl Into<Secret>) -> Self {
        Credentials::from_parts(access_key_id.into(), access_key_secret.into(), None)
    }

    /// STS credentials (the function role's triple on FC).
    pub fn sts(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<Secret>,
        security_token: impl Into<Secret>,
    ) -> Self {
        Credentials {
            security_token: Some(security_token.into()),
            ..Credentials::access_key(access_key_id, access_key_secret)
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"***")
            .field("security_token", &self.security_token.as_ref().map(|_| "***"))
            .field("expiration", &self.expiration.map(humantime::format_rfc3339_seconds))
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.security_token.is_some() { "sts" } else { "access key" };
        write!(f, "{kind} credentials {}", self.access_key_id)
    }
}

/// Parses an STS `Expiration` (`2025-12-01T09:30:00Z`, UTC, fractional seconds allowed).
pub fn parse_expiration(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z')).ok()
}

/// Why no credentials came back. Never carries a secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// No provider had anything; `tried` names them in order.
    #[error("no Alibaba Cloud credentials found (tried: {})", .tried.join(", "))]
    Missing { tried: Vec<&'static str> },
    /// A source exists but is half-configured (e.g. an AccessKey id without its secret).
    #[error("credentials from {provider} are incomplete: {detail}")]
    Incomplete { provider: &'static str, detail: String },
    /// A source exists but fetching from it failed.
    #[error("credentials from {provider} could not be loaded: {detail}")]
    Unavailable { provider: &'static str, detail: String },
}

/// A source of credentials. Object-safe so the app can hold `Arc<dyn CredentialsProvider>` and chain them.
pub trait CredentialsProvider: Send + Sync {
    /// Short name used in [`CredentialsError::Missing`] and logs.
    fn name(&self) -> &'static str;
    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>>;
}

impl<P: CredentialsProvider + ?Sized> CredentialsProvider for Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        (**self).provide()
    }
}

impl<P: CredentialsProvider + ?Sized> CredentialsProvider for Box<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        (**self).provide()
    }
}

/// Credentials known up front, e.g. the per-invocation `x-fc-access-key-*` headers the app already parsed.
#[derive(Debug, Clone)]
pub struct StaticProvider {
    name: &'static str,
    credentials: Option<Credentials>,
}

impl StaticProvider {
    pub(crate) fn new(name: &'static str, credentials: Option<Credentials>) -> Self {
        StaticProvider { name, credentials }
    }

    /// The FC invocation headers' triple (always fresh, so first in the chain).
    pub fn invocation(credentials: Option<Credentials>) -> Self {
        StaticProvider::new("fc-invocation-headers", credentials)
    }

    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN`, as `config.rs` parsed them into
    /// [`Credentials`] at start (one parser of those variables, not two).
    pub fn environment(credentials: Option<Credentials>) -> Self {
        StaticProvider::new("environment", credentials)
    }
}

impl CredentialsProvider for StaticProvider {
    fn name(&self) -> &'static str {
        self.name
    }
    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        let result = self.credentials.clone().ok_or_else(|| CredentialsError::Missing { tried: vec![self.name] });
        Box::pin(async move { result })
    }
}

/// Asks each provider in order; the first with credentials wins. A provider that has none is skipped; one
/// that is misconfigured or failing stops the chain, because silently using a lower-priority identity
/// would be worse than failing.
pub struct ChainProvider {
    providers: Vec<Arc<dyn CredentialsProvider>>,
}

impl ChainProvider {
    pub fn new(providers: Vec<Arc<dyn CredentialsProvider>>) -> Self {
        ChainProvider { providers }
    }
}

impl fmt::Debug for ChainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.providers.iter().map(|p| p.name()).collect();
        f.debug_struct("ChainProvider").field("providers", &names).finish()
    }
}

impl CredentialsProvider for ChainProvider {
    fn name(&self) -> &'static str {
        "chain"
    }
    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            let mut tried = Vec::with_capacity(self.providers.len());
            for provider in &self.providers {
                match provider.provide().await {
                    Ok(credentials) => {
                        tracing::debug!(provider = provider.name(), "credentials loaded");
                        return Ok(credentials);
                    }
                    Err(CredentialsError::Missing { tried: inner }) => tried.extend(inner),
                    Err(other) => return Err(other),
                }
            }
            Err(CredentialsError::Missing { tried })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_secret_and_token() {
        let c = Credentials::sts("STS.id", "sentinel-secret", "sentinel-token");
        let shown = format!("{c:?} {c}");
        assert!(shown.contains("STS.id"));
        assert!(!shown.contains("sentinel"), "{shown}");
    }

    #[tokio::test]
    async fn chain_prefers_earlier_providers_and_lists_what_it_tried() {
        let invocation = Arc::new(StaticProvider::invocation(Some(Credentials::sts("STS.hdr", "s", "t"))));
        let environment = Arc::new(StaticProvider::environment(Some(Credentials::access_key("env-id", "s"))));
        let chain = ChainProvider::new(vec![invocation, environment.clone()]);
        assert_eq!(chain.provide().await.unwrap().access_key_id, "STS.hdr");

        let chain = ChainProvider::new(vec![Arc::new(StaticProvider::invocation(None)), environment]);
        assert_eq!(chain.provide().await.unwrap().access_key_id, "env-id");

        let chain = ChainProvider::new(vec![
            Arc::new(StaticProvider::invocation(None)),
            Arc::new(StaticProvider::environment(None)),
        ]);
        let err = chain.provide().await.unwrap_err();
        assert_eq!(err, CredentialsError::Missing { tried: vec!["fc-invocation-headers", "environment"] });
        assert!(err.to_string().contains("fc-invocation-headers, environment"));
    }
}
