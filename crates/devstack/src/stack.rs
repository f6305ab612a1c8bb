//! The three stand-ins wired together as the function sees the cloud: the MCP server accepts exactly the
//! WorkloadAccessTokens the Agent Identity stand-in minted. Tests, `make dev` and the benchmark use it; the
//! function is configured for it by environment ([`Stack::env`]), as FC configures it.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::agent_identity::{self, AgentIdentityStandIn, KnownKey};
use super::dashscope::{self, DashScopeStandIn};
use super::fc_async::{FcAsyncOptions, FcAsyncStandIn};
use super::mcp_server::{self, McpStandIn, Revisions, SessionMode};

/// The DashScope key the stand-in accepts.
pub const DASHSCOPE_KEY: &str = "sk-devstack-dashscope-key";
/// The vault's API-key credential provider holding the DashScope key (`DASHSCOPE_API_KEY_PROVIDER`).
pub const DASHSCOPE_KEY_PROVIDER: &str = "dashscope-key";
/// The OAuth2 credential provider of the stand-in vault, whose token the second MCP server takes.
pub const OAUTH2_PROVIDER: &str = agent_identity::StandInOptions::OAUTH2_PROVIDER;
/// The scopes the function is configured to ask that provider for.
pub const OAUTH2_SCOPES: &str = "openid calendar.read";
/// The second MCP server's tools are `calendar_<tool>`.
pub const OAUTH2_TOOL_PREFIX: &str = "calendar_";
/// The function's name as the FC async stand-in knows it (`BACKGROUND_FUNCTION_NAME`).
pub const FUNCTION_NAME: &str = "fc-identity-agent-dev";
/// The workload identity the Agent Identity stand-in serves.
pub const WORKLOAD_IDENTITY: &str = "fc-identity-agent-dev";

/// Where the stand-ins listen: ephemeral loopback ports unless given.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub identity_addr: SocketAddr,
    pub dashscope_addr: SocketAddr,
    pub mcp_addr: SocketAddr,
    /// The MCP server that takes the OAuth2 provider's token instead of the WAT.
    pub mcp_oauth2_addr: SocketAddr,
    /// FC's asynchronous invocation API (background turns).
    pub fc_addr: SocketAddr,
    pub mcp_sessions: SessionMode,
    /// The MCP revisions both MCP servers speak (`devstack --mcp-revisions`).
    pub mcp_revisions: Revisions,
    /// Tools both MCP servers deny with 403 (`devstack --mcp-deny`), as an AI Gateway policy would.
    pub mcp_deny_tools: HashSet<String>,
    pub secrets: StackSecrets,
    /// The DashScope stand-in's pause before every stream chunk (zero by default).
    pub model_chunk_delay: std::time::Duration,
    /// `ttlMs` of the MCP servers' 2026-07-28 `tools/list` results (rmcp's 0 when unset).
    pub mcp_list_ttl_ms: Option<u64>,
    /// Every stand-in answers every request after this (zero: none): a network delay, as a gateway in
    /// another zone (the benchmark's `--delay-ms`).
    pub delay: std::time::Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        StackOptions {
            identity_addr: any,
            dashscope_addr: any,
            mcp_addr: any,
            mcp_oauth2_addr: any,
            fc_addr: any,
            mcp_sessions: SessionMode::default(),
            mcp_revisions: Revisions::default(),
            mcp_deny_tools: HashSet::new(),
            secrets: StackSecrets::default(),
            model_chunk_delay: std::time::Duration::ZERO,
            mcp_list_ttl_ms: None,
            delay: std::time::Duration::ZERO,
        }
    }
}

/// The secrets the stand-ins accept and [`Stack::env`] hands the function. Tests swap in sentinel values
/// and then look for them in logs and response bodies.
#[derive(Debug, Clone)]
pub struct StackSecrets {
    pub dashscope_key: String,
    /// The function role's STS triple.
    pub sts_access_key_id: String,
    pub sts_access_key_secret: String,
    pub sts_security_token: String,
    /// Minted WATs (and the stand-in's STS secrets, OAuth2 tokens and session URIs) start with this.
    pub wat_prefix: String,
    /// `OAUTH2_STATE_KEY` for [`Stack::oauth2_env`].
    pub oauth2_state_key: String,
}

impl Default for StackSecrets {
    fn default() -> Self {
        StackSecrets {
            dashscope_key: DASHSCOPE_KEY.to_owned(),
            sts_access_key_id: agent_identity::StandInOptions::STS_ID.to_owned(),
            sts_access_key_secret: agent_identity::StandInOptions::STS_SECRET.to_owned(),
            sts_security_token: agent_identity::StandInOptions::STS_TOKEN.to_owned(),
            wat_prefix: "wat-".to_owned(),
            oauth2_state_key: "devstack-oauth2-state-key-not-for-production".to_owned(),
        }
    }
}

pub struct Stack {
    pub identity: AgentIdentityStandIn,
    pub dashscope: DashScopeStandIn,
    pub mcp: McpStandIn,
    /// Accepts only the OAuth2 provider's access tokens (tools prefixed `calendar_`).
    pub mcp_oauth2: McpStandIn,
    /// FC's async invocation: background turns come back through it to the function's `/invoke`
    /// ([`FcAsyncStandIn::deliver_to`] names the instance).
    pub fc: FcAsyncStandIn,
    secrets: StackSecrets,
}

impl Stack {
    pub async fn start() -> std::io::Result<Stack> {
        Stack::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> std::io::Result<Stack> {
        let secrets = options.secrets;
        let mut identity_options = agent_identity::StandInOptions {
            workload_identity_name: Some(WORKLOAD_IDENTITY.to_owned()),
            token_prefix: secrets.wat_prefix.clone(),
            delay: options.delay,
            ..agent_identity::StandInOptions::default()
        };
        identity_options.api_keys.insert(DASHSCOPE_KEY_PROVIDER.to_owned(), secrets.dashscope_key.clone());
        let role = KnownKey {
            access_key_id: secrets.sts_access_key_id.clone(),
            access_key_secret: secrets.sts_access_key_secret.clone(),
            security_token: Some(secrets.sts_security_token.clone()),
        };
        identity_options.keys.push(role.clone());
        let fc = FcAsyncStandIn::bind(FcAsyncOptions::new(FUNCTION_NAME, vec![role]), options.fc_addr).await?;
        let identity = AgentIdentityStandIn::bind(identity_options, options.identity_addr).await?;
        let dashscope = DashScopeStandIn::start(dashscope::StandInOptions {
            bind: options.dashscope_addr,
            chunk_delay: options.model_chunk_delay,
            delay: options.delay,
            ..dashscope::StandInOptions::with_key(secrets.dashscope_key.clone())
        })
        .await?;
        let mcp = McpStandIn::start(mcp_server::StandInOptions {
            bind: options.mcp_addr,
            sessions: options.mcp_sessions,
            revisions: options.mcp_revisions,
            deny_tools: options.mcp_deny_tools.clone(),
            list_ttl_ms: options.mcp_list_ttl_ms,
            delay: Some(options.delay),
            asking_tools: true,
            ..mcp_server::StandInOptions::new(identity.token_checker())
        })
        .await?;
        let mcp_oauth2 = McpStandIn::start(mcp_server::StandInOptions {
            bind: options.mcp_oauth2_addr,
            sessions: options.mcp_sessions,
            revisions: options.mcp_revisions,
            deny_tools: options.mcp_deny_tools,
            list_ttl_ms: options.mcp_list_ttl_ms,
            delay: Some(options.delay),
            tool_prefix: OAUTH2_TOOL_PREFIX.to_owned(),
            ..mcp_server::StandInOptions::new(identity.oauth2_token_checker(OAUTH2_PROVIDER))
        })
        .await?;
        Ok(Stack { identity, dashscope, mcp, mcp_oauth2, fc, secrets })
    }

    /// The function's environment pointing at the stand-ins, with the role's STS credentials in the
    /// environment as FC provides them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AGENT_IDENTITY_DATA_ENDPOINT", self.identity.url()),
            ("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME", WORKLOAD_IDENTITY.to_owned()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", self.secrets.sts_access_key_id.clone()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", self.secrets.sts_access_key_secret.clone()),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", self.secrets.sts_security_token.clone()),
            ("DASHSCOPE_API_KEY", self.secrets.dashscope_key.clone()),
            ("DASHSCOPE_BASE_URL", self.dashscope.base_url()),
            ("AI_GATEWAY_MCP_SERVER", self.mcp.url().to_owned()),
            ("BACKGROUND_FC_ENDPOINT", self.fc.url()),
            ("BACKGROUND_FUNCTION_NAME", FUNCTION_NAME.to_owned()),
        ]
    }

    /// [`Stack::env`] with the model key taken from the vault instead of the environment.
    pub fn vault_env(&self) -> Vec<(String, String)> {
        self.env_with(&[("DASHSCOPE_API_KEY", ""), ("DASHSCOPE_API_KEY_PROVIDER", DASHSCOPE_KEY_PROVIDER)])
    }

    /// Overrides for [`Stack::env_with`] adding the OAuth2 MCP server after the WAT one, configured to take
    /// the stand-in provider's token. The return URL comes from `AGENT_PUBLIC_URL` (the caller knows the
    /// function's address).
    pub fn oauth2_env(&self) -> Vec<(&'static str, String)> {
        let oauth2 = self.mcp_oauth2.url();
        vec![
            ("AI_GATEWAY_MCP_SERVER", format!("{},{oauth2}", self.mcp.url())),
            ("AI_GATEWAY_MCP_OAUTH2", format!("{oauth2} {OAUTH2_PROVIDER} {OAUTH2_SCOPES}")),
            ("OAUTH2_STATE_KEY", self.secrets.oauth2_state_key.clone()),
        ]
    }

    /// Rotates the DashScope key: the vault holds `key` and DashScope accepts only it from now on.
    pub fn rotate_dashscope_key(&self, key: &str) {
        self.identity.set_api_key(DASHSCOPE_KEY_PROVIDER, key);
        self.dashscope.set_api_key(key);
    }

    /// [`Stack::env`] with `overrides` applied on top: a new value replaces the stack's (or is added), an
    /// empty value unsets the variable.
    pub fn env_with(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .filter(|(name, _)| !overrides.iter().any(|(overridden, _)| overridden == name))
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let set = overrides.iter().filter(|(_, value)| !value.is_empty());
        env.extend(set.map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_with_replaces_adds_and_unsets() {
        let stack = Stack::start().await.unwrap();
        let env = stack.env_with(&[("DASHSCOPE_API_KEY", "sk-other"), ("AI_GATEWAY_MCP_SERVER", ""), ("X_NEW", "1")]);
        let get = |name: &str| env.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("DASHSCOPE_API_KEY"), ["sk-other"]);
        assert!(get("AI_GATEWAY_MCP_SERVER").is_empty());
        assert_eq!(get("X_NEW"), ["1"]);
        assert_eq!(get("DASHSCOPE_BASE_URL"), [stack.dashscope.base_url()]);
        // One variable added, one unset.
        assert_eq!(env.len(), stack.env().len());
    }
}
