//! The Agent Identity data API (`agentidentitydata`, 2025-11-27): the actions this agent uses.

use opentelemetry::KeyValue;
use serde_json::Value;
use tokio::time::Instant;

use super::error::IdentityError;
use crate::acs::{AcsError, Credentials, Param, RpcClient, parse_expiration};
use crate::secret::Secret;
use crate::telemetry::{Span, SpanKind, names, within};
use crate::upstream::Endpoint;

pub const API_VERSION: &str = "2025-11-27";

/// `agentidentitydata.<region>.aliyuncs.com`: the data endpoint's host when none is configured.
pub fn default_endpoint(region: &str) -> String {
    format!("agentidentitydata.{region}.aliyuncs.com")
}

#[derive(Debug, Clone)]
pub struct IdentityClient {
    rpc: RpcClient,
}

impl IdentityClient {
    /// `endpoint`: the data API (`http://127.0.0.1:PORT` for the devstack), validated by config.rs.
    pub(crate) fn new(endpoint: &Endpoint, http: reqwest::Client) -> Self {
        IdentityClient { rpc: RpcClient::new(endpoint, API_VERSION, http) }
    }

    pub fn from_rpc(rpc: RpcClient) -> Self {
        IdentityClient { rpc }
    }

    /// One action — signed with `credentials`, or anonymous — as a client span (`rpc.method` is the
    /// action; the vault's actions are among them) under the current one, whose context the request carries.
    async fn call(
        &self,
        action: &'static str,
        params: &[Param<'_>],
        credentials: Option<&Credentials>,
        deadline: Instant,
    ) -> Result<Value, AcsError> {
        let span = Span::start(action, SpanKind::Client, || {
            vec![
                KeyValue::new(names::RPC_SYSTEM, "alibaba_cloud"),
                KeyValue::new(names::RPC_SERVICE, "AgentIdentityData"),
                KeyValue::new(names::RPC_METHOD, action),
                KeyValue::new(names::SERVER_ADDRESS, self.rpc.host().to_owned()),
            ]
        });
        let called = match credentials {
            Some(credentials) => within(&span, self.rpc.call(action, params, credentials, deadline)).await,
            None => within(&span, self.rpc.call_anonymous(action, params, deadline)).await,
        };
        if let Err(error) = &called {
            // The upstream's error code (`EntityNotExist.…`) when it gave one; its message names no secret.
            span.fail(error.code().unwrap_or("transport"), &error.to_string());
        }
        span.end();
        called
    }

    /// A WAT for a user id the caller vouches for.
    pub async fn get_workload_access_token_for_user_id(
        &self,
        workload_identity_name: &str,
        user_id: &str,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        const ACTION: &str = "GetWorkloadAccessTokenForUserId";
        let params = [Param::plain("WorkloadIdentityName", workload_identity_name), Param::plain("UserId", user_id)];
        let response = self.call(ACTION, &params, Some(credentials), deadline).await?;
        secret_field(ACTION, &response, "WorkloadAccessToken")
    }

    /// A WAT for the user of an IdP token (Agent Identity verifies it).
    pub async fn get_workload_access_token_for_jwt(
        &self,
        workload_identity_name: &str,
        user_token: &Secret,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        const ACTION: &str = "GetWorkloadAccessTokenForJWT";
        let params =
            [Param::plain("WorkloadIdentityName", workload_identity_name), Param::secret("UserToken", user_token)];
        let response = self.call(ACTION, &params, Some(credentials), deadline).await?;
        secret_field(ACTION, &response, "WorkloadAccessToken")
    }

    /// A WAT for the agent itself (no user).
    pub async fn get_workload_access_token(
        &self,
        workload_identity_name: &str,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        const ACTION: &str = "GetWorkloadAccessToken";
        let params = [Param::plain("WorkloadIdentityName", workload_identity_name)];
        let response = self.call(ACTION, &params, Some(credentials), deadline).await?;
        secret_field(ACTION, &response, "WorkloadAccessToken")
    }

    /// The API key held by a resource credential provider (e.g. the DashScope key), for a WAT.
    pub async fn get_resource_api_key(
        &self,
        resource_credential_provider_name: &str,
        workload_access_token: &Secret,
        token_vault_name: Option<&str>,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        const ACTION: &str = "GetResourceAPIKey";
        let mut params = vec![
            Param::plain("ResourceCredentialProviderName", resource_credential_provider_name),
            Param::secret("WorkloadAccessToken", workload_access_token),
        ];
        params.extend(token_vault_name.map(|v| Param::plain("TokenVaultName", v)));
        let response = self.call(ACTION, &params, Some(credentials), deadline).await?;
        secret_field(ACTION, &response, "APIKey")
    }

    /// `GetResourceOAuth2Token` in the `USER_FEDERATION` flow: the user's token for a provider, or the URL the
    /// user must visit first (then polled with `request.session_uri`). Signed with the role's STS credentials.
    pub(crate) async fn get_resource_oauth2_token(
        &self,
        request: &OAuth2TokenRequest<'_>,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<OAuth2Answer, IdentityError> {
        const ACTION: &str = "GetResourceOAuth2Token";
        let mut params = vec![
            Param::plain("ResourceCredentialProviderName", request.provider),
            Param::secret("WorkloadAccessToken", request.workload_access_token),
            Param::plain("Scopes", request.scopes_json),
            Param::plain("OAuth2Flow", "USER_FEDERATION"),
            Param::plain("ResourceOAuth2ReturnURL", request.return_url),
            // The SDK's spelling of a boolean; always sent on the user-federation path.
            Param::plain("ForceAuthentication", "False"),
            Param::secret("CustomState", request.custom_state),
        ];
        params.extend(request.session_uri.map(|uri| Param::secret("SessionURI", uri)));
        let response = self.call(ACTION, &params, Some(credentials), deadline).await?;
        let text = |field: &str| response.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(token) = text("AccessToken") {
            tracing::debug!(
                action = ACTION,
                request_id = request_id(&response).as_deref(),
                "Agent Identity issued AccessToken"
            );
            let expires_in = response.get("ExpiresIn").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
            return Ok(OAuth2Answer::Token { access_token: Secret::new(token), expires_in });
        }
        match (text("AuthorizationURL"), text("SessionURI")) {
            (Some(url), Some(session_uri)) => {
                Ok(OAuth2Answer::Authorize { url: Secret::new(url), session_uri: Secret::new(session_uri) })
            }
            // Polling a session the user has not finished yet may answer neither: still pending.
            (None, _) if request.session_uri.is_some() => Ok(OAuth2Answer::Pending),
            (Some(_), None) => Err(IdentityError::MissingField {
                action: ACTION,
                field: "SessionURI",
                request_id: request_id(&response),
            }),
            (None, _) => Err(IdentityError::MissingField {
                action: ACTION,
                field: "AccessToken",
                request_id: request_id(&response),
            }),
        }
    }

    /// `CompleteResourceTokenAuth`: the app confirms which user authorized the session. Signed with the
    /// function's own credentials (the SDK's `confirm_user_auth`), not the role's.
    pub(crate) async fn complete_resource_token_auth(
        &self,
        session_uri: &Secret,
        user_identifier: &Secret,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<(), IdentityError> {
        const ACTION: &str = "CompleteResourceTokenAuth";
        let params = [Param::secret("SessionURI", session_uri), Param::secret("UserIdentifier", user_identifier)];
        self.call(ACTION, &params, Some(credentials), deadline).await?;
        Ok(())
    }

    /// STS credentials for the workload identity's role, from a WAT alone (unsigned call).
    pub async fn assume_role_for_workload_identity(
        &self,
        workload_access_token: &Secret,
        role_session_name: &str,
        duration_seconds: u32,
        policy: Option<&str>,
        deadline: Instant,
    ) -> Result<Credentials, IdentityError> {
        const ACTION: &str = "AssumeRoleForWorkloadIdentity";
        let duration = duration_seconds.to_string();
        let mut params = vec![
            Param::secret("WorkloadAccessToken", workload_access_token),
            Param::plain("RoleSessionName", role_session_name),
            Param::plain("DurationSeconds", &duration),
        ];
        params.extend(policy.map(|p| Param::plain("Policy", p)));
        let response = self.call(ACTION, &params, None, deadline).await?;
        let missing = |field| IdentityError::MissingField { action: ACTION, field, request_id: request_id(&response) };
        let creds = response.get("Credentials").ok_or_else(|| missing("Credentials"))?;
        let text = |field: &'static str| {
            creds.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| missing(field))
        };
        Ok(Credentials {
            access_key_id: text("AccessKeyId")?.to_owned(),
            access_key_secret: Secret::new(text("AccessKeySecret")?),
            security_token: Some(Secret::new(text("SecurityToken")?)),
            expiration: text("Expiration").ok().and_then(parse_expiration),
        })
    }
}

/// What `GetResourceOAuth2Token` is asked.
pub(crate) struct OAuth2TokenRequest<'a> {
    pub(crate) provider: &'a str,
    pub(crate) workload_access_token: &'a Secret,
    /// Compact JSON array (`["openid","corpid"]`).
    pub(crate) scopes_json: &'a str,
    pub(crate) return_url: &'a str,
    pub(crate) custom_state: &'a Secret,
    /// Set when polling a started authorization.
    pub(crate) session_uri: Option<&'a Secret>,
}

/// What `GetResourceOAuth2Token` answered.
#[derive(Debug)]
pub(crate) enum OAuth2Answer {
    /// The user's access token; `ExpiresIn` in seconds when sent.
    Token { access_token: Secret, expires_in: Option<u64> },
    /// The user must authorize at `url` first; poll with `session_uri`.
    Authorize { url: Secret, session_uri: Secret },
    /// A poll of a session that is not authorized yet.
    Pending,
}

fn request_id(response: &Value) -> Option<String> {
    response.get("RequestId").and_then(Value::as_str).map(str::to_owned)
}

fn secret_field(action: &'static str, response: &Value, field: &'static str) -> Result<Secret, IdentityError> {
    let request_id = request_id(response);
    match response.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(value) => {
            tracing::debug!(action, request_id = request_id.as_deref(), "Agent Identity issued {field}");
            Ok(Secret::new(value))
        }
        None => Err(IdentityError::MissingField { action, field, request_id }),
    }
}
