//! Function Compute 3.0's `InvokeFunction` with `x-fc-invocation-type: Async`: the function hands a turn to
//! FC's asynchronous queue, which delivers it back to the function's `POST /invoke` (docs/background.md).
//!
//! `POST /2023-03-30/functions/{functionName}/invocations[?qualifier=…]` on the account's FC endpoint
//! (`https://{accountId}.{region}.fc.aliyuncs.com`), the event as the body, ACS3-signed like every FC 3.0
//! API call (`x-acs-action: InvokeFunction`, `x-acs-version: 2023-03-30`). FC answers `202` with its
//! `x-fc-request-id` once the event is queued; the queue's retries, maximum age and destinations are the
//! function's async invocation configuration (s.yaml), not the caller's.

use std::time::SystemTime;

use tokio::time::Instant;

use super::credentials::Credentials;
use super::error::{AcsError, sanitize_message};
use super::signer::{self, SigningInput};
use crate::error_chain::ErrorChain;
use crate::secret::{Secret, redact};
use crate::upstream::Endpoint;

/// The FC 3.0 API version, in the path and in `x-acs-version`.
pub const FC_API_VERSION: &str = "2023-03-30";
/// What the signature names as the call.
pub const INVOKE_ACTION: &str = "InvokeFunction";
/// The header that makes an invocation asynchronous.
pub const INVOCATION_TYPE_HEADER: &str = "x-fc-invocation-type";
/// An async invocation's event is at most 128 KB (FC's limit).
pub const MAX_ASYNC_EVENT_BYTES: usize = 128 * 1024;

/// The function's own FC endpoint, built once.
#[derive(Debug, Clone)]
pub struct FcClient {
    endpoint: Endpoint,
    http: reqwest::Client,
}

impl FcClient {
    pub fn new(endpoint: Endpoint, http: reqwest::Client) -> FcClient {
        FcClient { endpoint, http }
    }

    /// The signed `Host`: with the port unless it is the scheme's default, as the header is sent.
    fn host(&self) -> String {
        match self.endpoint.url().port() {
            Some(port) => format!("{}:{port}", self.endpoint.host()),
            None => self.endpoint.host().to_owned(),
        }
    }

    /// Queues `event` for `function` (at `qualifier`, else LATEST); FC's request id on success. One try:
    /// the caller answers its own client, who may send again (a failed queueing leaves nothing queued).
    pub async fn invoke_async(
        &self,
        function: &str,
        qualifier: Option<&str>,
        event: &[u8],
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<String, AcsError> {
        let path = format!("/{FC_API_VERSION}/functions/{function}/invocations");
        let query = qualifier.map(|q| signer::canonical_query(&[("qualifier", q)])).unwrap_or_default();
        let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        // The nonce must not be guessable ahead (a replay guard): the kernel's randomness.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let body_sha256 = signer::hex_sha256(event);
        let mut headers = vec![
            ("host", self.host()),
            ("content-type", "application/octet-stream".to_owned()),
            ("x-acs-action", INVOKE_ACTION.to_owned()),
            ("x-acs-version", FC_API_VERSION.to_owned()),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", body_sha256.clone()),
            (INVOCATION_TYPE_HEADER, "Async".to_owned()),
        ];
        if let Some(token) = &credentials.security_token {
            headers.push(("x-acs-security-token", token.expose().to_owned()));
        }
        let signature = signer::sign(
            &SigningInput {
                method: "POST",
                path: &path,
                canonical_query: &query,
                headers: &headers,
                body_sha256: &body_sha256,
            },
            &credentials.access_key_id,
            credentials.access_key_secret.expose(),
        );
        let mut url = self.endpoint.url().clone();
        url.set_path(&path);
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        let request = headers
            .iter()
            .filter(|(name, _)| *name != "host")
            .fold(self.http.post(url), |request, (name, value)| request.header(*name, value))
            .header("authorization", signature.authorization)
            .body(event.to_vec());
        let mut secrets: Vec<&Secret> = vec![&credentials.access_key_secret];
        secrets.extend(credentials.security_token.as_ref());
        let action = INVOKE_ACTION.to_owned();
        let transport = |e: reqwest::Error| AcsError::Transport {
            action: action.clone(),
            unsent: e.is_connect(),
            detail: redact(&ErrorChain(&e.without_url()).to_string(), &secrets),
        };
        let sent = tokio::time::timeout_at(deadline, request.send()).await;
        let response = match sent {
            Ok(response) => response.map_err(transport)?,
            Err(_) => return Err(AcsError::Deadline { action, attempts: 1 }),
        };
        let status = response.status().as_u16();
        let request_id = response.headers().get("x-fc-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if (200..300).contains(&status) {
            return Ok(request_id.unwrap_or_default());
        }
        let bytes = response.bytes().await.map_err(transport)?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let field =
            |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(serde_json::Value::as_str).map(str::to_owned);
        let code = field("Code").unwrap_or_else(|| format!("HTTP{status}"));
        let message = sanitize_message(&code, &field("Message").unwrap_or_default(), &secrets);
        Err(AcsError::Api {
            action,
            status,
            code,
            message,
            request_id: field("RequestId").or(request_id),
            retry_after: None,
        })
    }
}
