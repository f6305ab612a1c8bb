//! What Function Compute tells the function about one invocation, read from its `x-fc-*` request headers.

use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use crate::Drain;
use crate::redacted::Redacted;

/// The function role's STS credentials as FC passes them with each invocation (`x-fc-access-key-id`,
/// `x-fc-access-key-secret`, `x-fc-security-token`). `Debug` never prints the secret or the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    access_key_id: String,
    access_key_secret: Redacted,
    security_token: Option<Redacted>,
}

impl RoleCredentials {
    /// The AccessKey id (`STS.…` for role credentials).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey secret. Keep it out of logs and error messages.
    pub fn access_key_secret(&self) -> &str {
        self.access_key_secret.expose()
    }

    /// The STS security token; `None` when FC sent none (plain AccessKeys, or `custom.debian11`, whose docs
    /// say the header is dropped there).
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_ref().map(Redacted::expose)
    }
}

/// Per-invocation platform context, reached through [`crate::RequestExt::fc_context`] on every request
/// and event.
#[derive(Debug, Clone)]
pub struct Context {
    request_id: String,
    credentials: Option<RoleCredentials>,
    function_name: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    qualifier: Option<String>,
    memory_mb: Option<u32>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    timeout: Duration,
    deadline: Instant,
    drain: Drain,
}

impl Context {
    /// Reads FC's headers. `default_timeout` applies when `x-fc-function-timeout` is absent or invalid; the
    /// deadline is that long from now. A context made here never drains ([`Context::drain`] never fires);
    /// the server makes its own, tied to its shutdown.
    pub fn from_headers(headers: &HeaderMap, default_timeout: Duration) -> Context {
        let timeout = header(headers, "x-fc-function-timeout")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|secs| *secs > 0)
            .map(Duration::from_secs)
            .unwrap_or(default_timeout);
        Context {
            request_id: header(headers, "x-fc-request-id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4())),
            credentials: role_credentials(headers),
            function_name: header(headers, "x-fc-function-name").map(str::to_owned),
            region: header(headers, "x-fc-region").map(str::to_owned),
            account_id: header(headers, "x-fc-account-id").map(str::to_owned),
            qualifier: header(headers, "x-fc-qualifier").map(str::to_owned),
            memory_mb: header(headers, "x-fc-function-memory").and_then(|v| v.parse().ok()),
            traceparent: header(headers, "traceparent").map(str::to_owned),
            tracestate: header(headers, "tracestate").map(str::to_owned),
            timeout,
            deadline: Instant::now() + timeout,
            drain: Drain::never(),
        }
    }

    /// The same context, cut off by `drain` when the server shuts down.
    pub(crate) fn with_drain(mut self, drain: Drain) -> Context {
        self.drain = drain;
        self
    }

    /// `x-fc-request-id`, or `local-<uuid>` outside FC, so every log line still has one.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The function role's credentials; `None` when FC sent empty credential headers (no role) or none at
    /// all (local runs).
    pub fn credentials(&self) -> Option<&RoleCredentials> {
        self.credentials.as_ref()
    }

    /// `x-fc-function-name`.
    pub fn function_name(&self) -> Option<&str> {
        self.function_name.as_deref()
    }

    /// `x-fc-region`, e.g. `cn-hangzhou`.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// `x-fc-account-id`: the Alibaba Cloud account that owns the function.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// `x-fc-qualifier`: the version or alias invoked (`LATEST` by default).
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }

    /// `x-fc-function-memory`, in MiB.
    pub fn memory_mb(&self) -> Option<u32> {
        self.memory_mb
    }

    /// The caller's W3C Trace Context `traceparent` header, as sent (not validated here), so that the
    /// function's own spans can continue the caller's trace.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The caller's W3C Trace Context `tracestate` header, as sent.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The function timeout in force for this invocation (`x-fc-function-timeout`, else
    /// [`crate::Options::default_timeout`]).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the invocation must have answered: its arrival plus [`Context::timeout`]. Bound upstream calls
    /// by it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// When a shutdown in progress will cut this invocation off; see [`Drain::cutoff`].
    pub fn drain(&self) -> &Drain {
        &self.drain
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
        access_key_secret: Redacted::new(access_key_secret),
        security_token: header(headers, "x-fc-security-token").map(Redacted::new),
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
        let ctx = Context::from_headers(
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
                ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("tracestate", "congo=t61rcWkgMzE"),
            ]),
            Duration::from_secs(600),
        );
        assert_eq!(ctx.request_id(), "req-1");
        let creds = ctx.credentials().expect("credentials");
        assert_eq!(creds.access_key_id(), "STS.id");
        assert_eq!(creds.access_key_secret(), "sec");
        assert_eq!(creds.security_token(), Some("tok"));
        assert_eq!(ctx.function_name(), Some("agent"));
        assert_eq!(ctx.region(), Some("cn-beijing"));
        assert_eq!(ctx.account_id(), Some("123"));
        assert_eq!(ctx.qualifier(), Some("LATEST"));
        assert_eq!(ctx.memory_mb(), Some(512));
        assert_eq!(ctx.traceparent(), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
        assert_eq!(ctx.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(ctx.timeout(), Duration::from_secs(120));
        assert!(ctx.deadline() > Instant::now() + Duration::from_secs(100));
    }

    #[test]
    fn empty_credential_headers_mean_no_role() {
        let ctx = Context::from_headers(
            &headers(&[("x-fc-access-key-id", ""), ("x-fc-access-key-secret", ""), ("x-fc-security-token", "")]),
            Duration::from_secs(600),
        );
        assert!(ctx.credentials().is_none());
    }

    #[test]
    fn access_key_without_token_is_kept() {
        let ctx = Context::from_headers(
            &headers(&[("x-fc-access-key-id", "LTAI"), ("x-fc-access-key-secret", "s"), ("x-fc-security-token", "")]),
            Duration::from_secs(600),
        );
        assert!(ctx.credentials().expect("creds").security_token().is_none());
    }

    #[test]
    fn defaults_without_headers() {
        let ctx = Context::from_headers(&HeaderMap::new(), Duration::from_secs(42));
        assert!(ctx.request_id().starts_with("local-"));
        assert!(ctx.credentials().is_none());
        assert_eq!(ctx.timeout(), Duration::from_secs(42));
        let bad = Context::from_headers(&headers(&[("x-fc-function-timeout", "soon")]), Duration::from_secs(7));
        assert_eq!(bad.timeout(), Duration::from_secs(7));
    }

    #[test]
    fn debug_hides_the_secret() {
        let ctx = Context::from_headers(
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
