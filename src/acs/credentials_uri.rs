//! `ALIBABA_CLOUD_CREDENTIALS_URI`: an HTTP endpoint answering
//! `{AccessKeyId, AccessKeySecret, SecurityToken, Expiration}`, cached until 15 minutes before expiry.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::credentials::{Credentials, CredentialsError, CredentialsProvider, parse_expiration};
use crate::error_chain::ErrorChain;
use crate::secret::{Secret, redact};
use crate::upstream::Endpoint;

/// The SDK treats STS credentials as stale this long before `Expiration`; so do we.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// An answer without `Expiration` is reused this long, so a broken endpoint cannot pin stale keys forever.
const TTL_WITHOUT_EXPIRATION: Duration = Duration::from_secs(5 * 60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct CredentialsUriProvider {
    uri: Option<Endpoint>,
    http: reqwest::Client,
    /// Held across the fetch: concurrent callers on a stale cache wait for one request (single-flight).
    cached: Mutex<Option<(Credentials, SystemTime)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UriResponse {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

impl CredentialsUriProvider {
    pub(crate) const NAME: &'static str = "credentials-uri";

    /// `uri` is `ALIBABA_CLOUD_CREDENTIALS_URI` as config.rs parsed it (None: this provider has nothing).
    pub fn new(uri: Option<Endpoint>, http: reqwest::Client) -> Self {
        CredentialsUriProvider { uri, http, cached: Mutex::new(None) }
    }

    async fn fetch(&self, uri: &Endpoint) -> Result<(Credentials, SystemTime), CredentialsError> {
        let unavailable = |detail: String| CredentialsError::Unavailable { provider: Self::NAME, detail };
        let response = self.http.get(uri.url().clone()).timeout(FETCH_TIMEOUT).send().await.map_err(|e| {
            unavailable(format!("request failed: {}", redact(&ErrorChain(&e.without_url()).to_string(), &[])))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        let body: UriResponse =
            response.json().await.map_err(|_| unavailable("response is not the expected JSON object".into()))?;
        if let Some(code) = body.code.as_deref().filter(|c| *c != "Success") {
            return Err(unavailable(format!("Code {code}")));
        }
        let (Some(id), Some(secret)) = (body.access_key_id, body.access_key_secret) else {
            return Err(unavailable("AccessKeyId or AccessKeySecret missing".into()));
        };
        let expiration = match body.expiration.as_deref() {
            Some(text) => Some(
                parse_expiration(text)
                    .ok_or_else(|| unavailable(format!("Expiration {text:?} is not an RFC 3339 UTC time")))?,
            ),
            None => None,
        };
        let refresh_at = match expiration {
            Some(exp) => exp.checked_sub(REFRESH_BEFORE_EXPIRY).unwrap_or(SystemTime::UNIX_EPOCH),
            None => SystemTime::now() + TTL_WITHOUT_EXPIRATION,
        };
        let credentials = Credentials {
            access_key_id: id,
            access_key_secret: Secret::new(secret),
            security_token: body.security_token.filter(|t| !t.is_empty()).map(Secret::new),
            expiration,
        };
        Ok((credentials, refresh_at))
    }
}

impl CredentialsProvider for CredentialsUriProvider {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn provide(&self) -> BoxFuture<'_, Result<Credentials, CredentialsError>> {
        Box::pin(async move {
            let Some(uri) = self.uri.as_ref() else {
                return Err(CredentialsError::Missing { tried: vec![Self::NAME] });
            };
            let mut cached = self.cached.lock().await;
            if let Some((credentials, refresh_at)) = cached.as_ref()
                && SystemTime::now() < *refresh_at
            {
                return Ok(credentials.clone());
            }
            let (credentials, refresh_at) = self.fetch(uri).await?;
            tracing::debug!(provider = Self::NAME, access_key_id = %credentials.access_key_id, "credentials refreshed");
            *cached = Some((credentials.clone(), refresh_at));
            Ok(credentials)
        })
    }
}
