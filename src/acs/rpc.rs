//! A small Alibaba Cloud RPC client: `POST /` with a sorted form body, ACS3-signed, JSON back. Retries only
//! what can get better (throttling, 5xx, `ServiceUnavailable`) and never sleeps past the caller's deadline.

use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde_json::Value;
use tokio::time::Instant;

use super::credentials::Credentials;
use super::error::{AcsError, sanitize_message};
use super::signer::{self, FORM_CONTENT_TYPE, RpcHeaders, SigningInput};
use crate::error_chain::ErrorChain;
use crate::retry::RetryPolicy;
use crate::secret::{Secret, redact};
use crate::upstream::Endpoint;

/// Response header with the server's requested pause before a retry, in **milliseconds**. The API docs do
/// not name the unit; the official OpenAPI SDK's own tests do (aliyun/darabonba-openapi: its throttling mock
/// sends the header from a `RetryAfterMs` value, and `GetThrottlingTimeLeft("2000")` is 2000 ms).
pub const RETRY_AFTER_HEADER: &str = "x-acs-retry-after";

/// One form parameter. Values marked secret (tokens) are masked out of any upstream message we keep.
#[derive(Clone, Copy)]
pub struct Param<'a> {
    name: &'a str,
    value: &'a str,
    /// The value again, when it is a secret: what upstream messages are redacted against.
    secret: Option<&'a Secret>,
}

impl<'a> Param<'a> {
    pub(crate) fn plain(name: &'a str, value: &'a str) -> Self {
        Param { name, value, secret: None }
    }

    pub(crate) fn secret(name: &'a str, value: &'a Secret) -> Self {
        Param { name, value: value.expose(), secret: Some(value) }
    }
}

impl std::fmt::Debug for Param<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret.is_some() { "***" } else { self.value };
        write!(f, "{}={value}", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct RpcClient {
    url: Url,
    /// `host[:port]` exactly as sent in the `Host` header (the port only when not the scheme's default).
    host: String,
    version: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl RpcClient {
    /// `endpoint`: `https://agentidentitydata.cn-beijing.aliyuncs.com/`, or `http://127.0.0.1:PORT` for
    /// tests; config.rs turns a bare host into the https URL.
    pub fn new(endpoint: &Endpoint, version: impl Into<String>, http: reqwest::Client) -> Self {
        // `port()` is None for the scheme's default port, which the Host header then leaves out too.
        let host = match endpoint.url().port() {
            Some(port) => format!("{}:{port}", endpoint.host()),
            None => endpoint.host().to_owned(),
        };
        RpcClient { url: endpoint.url().clone(), host, version: version.into(), http, retry: RetryPolicy::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The signed `Host` value (also what telemetry records as `server.address`).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// A signed call (ACS3-HMAC-SHA256 with `credentials`).
    pub async fn call(
        &self,
        action: &str,
        params: &[Param<'_>],
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Value, AcsError> {
        self.execute(action, params, Some(credentials), deadline).await
    }

    /// An unsigned call in the legacy RPC form (`Action, Format, Version, Timestamp, SignatureNonce` in the
    /// query), as the SDK sends anonymous actions such as AssumeRoleForWorkloadIdentity.
    pub(crate) async fn call_anonymous(
        &self,
        action: &str,
        params: &[Param<'_>],
        deadline: Instant,
    ) -> Result<Value, AcsError> {
        self.execute(action, params, None, deadline).await
    }

    async fn execute(
        &self,
        action: &str,
        params: &[Param<'_>],
        credentials: Option<&Credentials>,
        deadline: Instant,
    ) -> Result<Value, AcsError> {
        let pairs: Vec<(&str, &str)> = params.iter().map(|p| (p.name, p.value)).collect();
        let body = signer::form_body(&pairs);
        let mut secrets: Vec<&Secret> = params.iter().filter_map(|p| p.secret).collect();
        if let Some(c) = credentials {
            secrets.push(&c.access_key_secret);
            secrets.extend(c.security_token.as_ref());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.build(action, &body, credentials);
            let sent = tokio::time::timeout_at(deadline, self.send(action, request, &secrets)).await;
            let error = match sent {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error,
                Err(_) => {
                    return Err(AcsError::Deadline { action: action.to_owned(), attempts: attempt });
                }
            };
            tracing::warn!(
                action,
                attempt,
                status = error.status(),
                code = error.code(),
                request_id = error.request_id(),
                "Alibaba Cloud call failed"
            );
            if !error.is_retryable() {
                return Err(error);
            }
            let hint = match &error {
                AcsError::Api { retry_after, .. } => *retry_after,
                _ => None,
            };
            let Some(delay) = self.retry.next_delay(attempt, hint, deadline) else {
                return Err(error);
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// A fresh request: new `x-acs-date` and nonce each time, so a retry is never a replay.
    fn build(&self, action: &str, body: &str, credentials: Option<&Credentials>) -> reqwest::RequestBuilder {
        let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let Some(credentials) = credentials else {
            let query = anonymous_query(action, &self.version, &date, &nonce);
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut url = self.url.clone();
            url.set_query(Some(&signer::canonical_query(&pairs)));
            return self
                .http
                .post(url)
                .header("accept", "application/json")
                .header("host", &self.host)
                .header("x-acs-version", &self.version)
                .header("x-acs-action", action)
                .header("content-type", FORM_CONTENT_TYPE)
                .body(body.to_owned());
        };
        let body_sha256 = signer::hex_sha256(body.as_bytes());
        let headers = RpcHeaders {
            host: &self.host,
            action,
            version: &self.version,
            date: &date,
            nonce: &nonce,
            body_sha256: &body_sha256,
            security_token: credentials.security_token.as_ref().map(|t| t.expose()),
        }
        .to_vec();
        let signature = signer::sign(
            &SigningInput {
                method: "POST",
                path: "/",
                canonical_query: "",
                headers: &headers,
                body_sha256: &body_sha256,
            },
            &credentials.access_key_id,
            credentials.access_key_secret.expose(),
        );
        let base = self.http.post(self.url.clone()).header("accept", "application/json").body(body.to_owned());
        headers
            .iter()
            .fold(base, |request, (name, value)| request.header(*name, value))
            .header("authorization", signature.authorization)
    }

    async fn send(
        &self,
        action: &str,
        request: reqwest::RequestBuilder,
        secrets: &[&Secret],
    ) -> Result<Value, AcsError> {
        // URLs are dropped: ours carry no secrets, but a query string could one day.
        let transport = |e: reqwest::Error| AcsError::Transport {
            action: action.to_owned(),
            unsent: e.is_connect(),
            detail: redact(&ErrorChain(&e.without_url()).to_string(), secrets),
        };
        // The caller's span as the parent of Agent Identity's (unsigned; nothing without tracing).
        let response = request.headers(crate::telemetry::trace_headers()).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let request_id_header = header_str(&response, "x-acs-request-id");
        let retry_after = header_str(&response, RETRY_AFTER_HEADER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        let bytes = response.bytes().await.map_err(transport)?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return match json {
                Some(value @ Value::Object(_)) => Ok(value),
                _ => Err(AcsError::InvalidResponse { action: action.to_owned(), status }),
            };
        }
        let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str).map(str::to_owned);
        let code = field("Code").unwrap_or_else(|| format!("HTTP{status}"));
        let message = sanitize_message(&code, &field("Message").unwrap_or_default(), secrets);
        Err(AcsError::Api {
            action: action.to_owned(),
            status,
            request_id: field("RequestId").or(request_id_header),
            code,
            message,
            retry_after,
        })
    }
}

/// The query of an anonymous (unsigned) RPC request, in the SDK's order.
pub fn anonymous_query(action: &str, version: &str, timestamp: &str, nonce: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Action", action.to_owned()),
        ("Format", "json".to_owned()),
        ("Version", version.to_owned()),
        ("Timestamp", timestamp.to_owned()),
        ("SignatureNonce", nonce.to_owned()),
    ]
}

fn header_str(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> RpcClient {
        let endpoint = Endpoint::parse(endpoint).unwrap();
        RpcClient::new(&endpoint, "2025-11-27", crate::upstream::client_builder().build().unwrap())
    }

    #[test]
    fn host_header_has_the_port_only_when_not_the_default() {
        assert_eq!(
            client("https://agentidentitydata.cn-beijing.aliyuncs.com/").host(),
            "agentidentitydata.cn-beijing.aliyuncs.com"
        );
        assert_eq!(client("http://127.0.0.1:8123").host(), "127.0.0.1:8123");
        assert_eq!(client("https://example.com:443/").host(), "example.com");
    }

    #[test]
    fn param_debug_masks_secrets() {
        let token = crate::secret::Secret::new("sentinel-wat");
        let shown = format!("{:?}", [Param::plain("UserId", "u1"), Param::secret("WorkloadAccessToken", &token)]);
        assert_eq!(shown, "[UserId=u1, WorkloadAccessToken=***]");
    }
}
