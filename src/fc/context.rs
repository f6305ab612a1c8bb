//! What Function Compute tells us about one invocation, extracted from its `x-fc-*` request headers.

use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use super::Drain;
use crate::secret::Secret;

/// The function role's STS credentials as FC passes them per invocation (`x-fc-access-key-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

/// Per-invocation platform context; rides in request extensions (HTTP) or in [`super::Event`].
#[derive(Debug, Clone)]
pub struct FcContext {
    /// `x-fc-request-id`, or a generated id for local runs so every log line still has one.
    pub request_id: String,
    /// `None` when FC sent empty credential headers (no role) or none at all (local runs).
    pub credentials: Option<RoleCredentials>,
    pub function_name: Option<String>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub qualifier: Option<String>,
    pub memory_mb: Option<u32>,
    /// The function timeout in force for this invocation.
    pub timeout: Duration,
    /// When the invocation must have answered; every upstream call is bounded by it.
    pub deadline: Instant,
    /// When a shutdown in progress will cut this invocation off.
    pub drain: Drain,
}

impl FcContext {
    /// Reads the FC headers. `default_timeout` applies when `x-fc-function-timeout` is absent or invalid.
    pub fn from_headers(headers: &HeaderMap, default_timeout: Duration) -> FcContext {
        let timeout = header(headers, "x-fc-function-timeout")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|secs| *secs > 0)
            .map(Duration::from_secs)
            .unwrap_or(default_timeout);
        FcContext {
            request_id: header(headers, "x-fc-request-id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4())),
            credentials: role_credentials(headers),
            function_name: header(headers, "x-fc-function-name").map(str::to_owned),
            region: header(headers, "x-fc-region").map(str::to_owned),
            account_id: header(headers, "x-fc-account-id").map(str::to_owned),
            qualifier: header(headers, "x-fc-qualifier").map(str::to_owned),
            memory_mb: header(headers, "x-fc-function-memory").and_then(|v| v.parse().ok()),
            timeout,
            deadline: Instant::now() + timeout,
            drain: Drain::never(),
        }
    }
}

/// A non-empty, valid-UTF-8 header value. FC sends empty credential headers when the function has no role.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn role_credentials(headers: &HeaderMap) -> Option<RoleCredentials> {
    let access_key_id = header(headers, "x-fc-access-key-id")?;
    let access_key_secret = header(headers, "x-fc-access-key-secret")?;
    Some(RoleCredentials {
        access_key_id: access_key_id.to_owned(),
        access_key_secret: Secret::new(access_key_secret),
        security_token: header(headers, "x-fc-security-token").map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_every_fc_header() {
        let ctx = FcContext::from_headers(
            &headers(&[
                ("x-fc-request-id", "req-1"),
                ("x-fc-access-key-id", "STS.id"),
                ("x-fc-access-key-secret", "sec"),
                ("x-fc-security-token", "tok"),
                ("x-fc-function-name", "agent"),
                ("x-fc-region", "cn-beijing"),
                ("x-fc-account-id", "123"),
                ("x-fc-qualifier", "LATEST"),
                ("x-fc-function-memory", "512"),
                ("x-fc-function-timeout", "120"),
            ]),
            Duration::from_secs(600),
        );
        assert_eq!(ctx.request_id, "req-1");
        let creds = ctx.credentials.expect("credentials");
        assert_eq!(creds.access_key_id, "STS.id");
        assert_eq!(creds.access_key_secret.expose(), "sec");
        assert_eq!(creds.security_token.as_ref().map(Secret::expose), Some("tok"));
        assert_eq!(ctx.function_name.as_deref(), Some("agent"));
        assert_eq!(ctx.region.as_deref(), Some("cn-beijing"));
        assert_eq!(ctx.account_id.as_deref(), Some("123"));
        assert_eq!(ctx.qualifier.as_deref(), Some("LATEST"));
        assert_eq!(ctx.memory_mb, Some(512));
        assert_eq!(ctx.timeout, Duration::from_secs(120));
        assert!(ctx.deadline > Instant::now() + Duration::from_secs(100));
    }

    #[test]
    fn empty_credential_headers_mean_no_role() {
        let ctx = FcContext::from_headers(
            &headers(&[("x-fc-access-key-id", ""), ("x-fc-access-key-secret", ""), ("x-fc-security-token", "")]),
            Duration::from_secs(600),
        );
        assert!(ctx.credentials.is_none());
    }

    #[test]
    fn access_key_without_token_is_kept() {
        let ctx = FcContext::from_headers(
            &headers(&[("x-fc-access-key-id", "LTAI"), ("x-fc-access-key-secret", "s"), ("x-fc-security-token", "")]),
            Duration::from_secs(600),
        );
        assert!(ctx.credentials.expect("creds").security_token.is_none());
    }

    #[test]
    fn defaults_without_headers() {
        let ctx = FcContext::from_headers(&HeaderMap::new(), Duration::from_secs(42));
        assert!(ctx.request_id.starts_with("local-"));
        assert!(ctx.credentials.is_none());
        assert_eq!(ctx.timeout, Duration::from_secs(42));
        let bad = FcContext::from_headers(&headers(&[("x-fc-function-timeout", "soon")]), Duration::from_secs(7));
        assert_eq!(bad.timeout, Duration::from_secs(7));
    }

    #[test]
    fn debug_hides_the_secret() {
        let ctx = FcContext::from_headers(
            &headers(&[
                ("x-fc-access-key-id", "id"),
                ("x-fc-access-key-secret", "SENTINEL-SECRET"),
                ("x-fc-security-token", "SENTINEL-TOKEN"),
            ]),
            Duration::from_secs(1),
        );
        let dbg = format!("{ctx:?}");
        assert!(!dbg.contains("SENTINEL"), "{dbg}");
    }
}
