//! Every environment variable the function reads, parsed and validated once at start.
//!
//! A missing or malformed value is a [`ConfigError`] naming the variable, so FC's start error shows the
//! cause in one line. Secrets are held as [`Secret`] and print as `***`.

use std::time::Duration;

use reqwest::Url;

use crate::secret::Secret;

const DEFAULT_DASHSCOPE_BASE_URL: &str = "https://dashscope.aliyuncs.com/compatible-mode/v1";
const DEFAULT_SYSTEM_PROMPT: &str = "You're a helpful assistant named Friday.";
const DEFAULT_EVENT_INSTRUCTION: &str =
    "An event was delivered to you by Alibaba Cloud Function Compute. Handle it and reply with a short summary.";

#[derive(Debug, Clone)]
pub struct Config {
    /// `FC_CUSTOM_LISTEN_PORT`, else `FC_SERVER_PORT`, else 9000.
    pub port: u16,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN`, when set (FC sets them for the role).
    pub env_credentials: Option<EnvCredentials>,
    pub credentials_uri: Option<Url>,
    pub identity: IdentityConfig,
    pub model: ModelConfig,
    /// `AI_GATEWAY_MCP_SERVER`, split on commas; empty = no tools.
    pub mcp_servers: Vec<Url>,
    pub agent: AgentConfig,
    /// `FUNCTION_TIMEOUT_SECS`: the turn deadline when FC does not send `x-fc-function-timeout`.
    pub function_timeout: Duration,
    /// `MAX_REQUEST_BYTES`: larger bodies get 413.
    pub max_request_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCredentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub region: String,
    /// `AGENT_IDENTITY_DATA_ENDPOINT`: a host (→ https) or a full URL, as given.
    pub endpoint: String,
    /// Required unless a preset token is configured.
    pub workload_identity_name: String,
    pub preset_token: Option<Secret>,
    pub user_source: UserSource,
    pub token_ttl: Duration,
}

/// Where the end user's identity comes from on HTTP invocations (`AGENT_IDENTITY_USER_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSource {
    /// Bearer JWT if present, else body `user_id`.
    Auto,
    /// A bearer JWT is required.
    Jwt,
    /// Body `user_id` (falling back to `session_id`).
    Body,
    /// A header set by the trigger (lowercase name), e.g. a JWT claim FC forwards.
    Header(http::HeaderName),
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub api_key: Secret,
    pub base_url: Url,
    pub model: String,
    /// Models a request's `model` field may select; empty = the field is refused.
    pub allowed_models: Vec<String>,
    pub enable_thinking: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub name: String,
    pub system_prompt: String,
    pub max_iters: u32,
    pub event_instruction: String,
    pub tool_timeout: Duration,
}

/// A configuration value that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&lookup);
        let region = env.get("AGENT_IDENTITY_REGION_ID").unwrap_or_else(|| "cn-beijing".to_owned());
        let preset_token = env.get("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN").map(Secret::new);
        let workload_identity_name = match env.get("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME") {
            Some(name) => name,
            None if preset_token.is_some() => String::new(),
            None => return Err(missing("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME")),
        };
        let endpoint = match env.get("AGENT_IDENTITY_DATA_ENDPOINT") {
            Some(endpoint) => validate_endpoint(endpoint)?,
            None => format!("agentidentitydata.{region}.aliyuncs.com"),
        };
        Ok(Config {
            port: match env.get("FC_CUSTOM_LISTEN_PORT") {
                Some(_) => env.number("FC_CUSTOM_LISTEN_PORT", 9000)?,
                None => env.number("FC_SERVER_PORT", 9000)?,
            },
            env_credentials: env_credentials(&env)?,
            credentials_uri: env.url("ALIBABA_CLOUD_CREDENTIALS_URI")?,
            identity: IdentityConfig {
                region,
                endpoint,
                workload_identity_name,
                preset_token,
                user_source: user_source(env.get("AGENT_IDENTITY_USER_SOURCE"))?,
                token_ttl: Duration::from_secs(env.positive("AGENT_IDENTITY_TOKEN_TTL_SECS", 300)?),
            },
            model: ModelConfig {
                api_key: Secret::new(env.get("DASHSCOPE_API_KEY").ok_or_else(|| missing("DASHSCOPE_API_KEY"))?),
                base_url: env
                    .url("DASHSCOPE_BASE_URL")?
                    .unwrap_or_else(|| Url::parse(DEFAULT_DASHSCOPE_BASE_URL).expect("the default base URL is valid")),
                model: env.get("DASHSCOPE_MODEL").unwrap_or_else(|| "qwen-max".to_owned()),
                allowed_models: env.list("DASHSCOPE_ALLOWED_MODELS"),
                enable_thinking: env.boolean("DASHSCOPE_ENABLE_THINKING")?,
            },
            mcp_servers: env
                .list("AI_GATEWAY_MCP_SERVER")
                .into_iter()
                .map(|url| parse_url("AI_GATEWAY_MCP_SERVER", &url))
                .collect::<Result<_, _>>()?,
            agent: AgentConfig {
                name: env.get("AGENT_NAME").unwrap_or_else(|| "Friday".to_owned()),
                system_prompt: env.get("AGENT_SYSTEM_PROMPT").unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_owned()),
                max_iters: env.positive("AGENT_MAX_ITERS", 10)?,
                event_instruction: env
                    .get("AGENT_EVENT_INSTRUCTION")
                    .unwrap_or_else(|| DEFAULT_EVENT_INSTRUCTION.to_owned()),
                tool_timeout: Duration::from_secs(env.positive("AGENT_TOOL_TIMEOUT_SECS", 30)?),
            },
            function_timeout: Duration::from_secs(env.positive("FUNCTION_TIMEOUT_SECS", 600)?),
            max_request_bytes: env.positive("MAX_REQUEST_BYTES", 1_048_576)?,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| invalid(name, format!("{raw:?} is not a valid number"))),
        }
    }

    fn positive<T: std::str::FromStr + PartialEq + Default>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        let value = self.number(name, default)?;
        if value == T::default() {
            return Err(invalid(name, "must be greater than 0".to_owned()));
        }
        Ok(value)
    }

    fn boolean(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(None),
            Some("true" | "1" | "yes") => Ok(Some(true)),
            Some("false" | "0" | "no") => Ok(Some(false)),
            Some(other) => Err(invalid(name, format!("{other:?} is not true or false"))),
        }
    }

    fn url(&self, name: &'static str) -> Result<Option<Url>, ConfigError> {
        self.get(name).map(|raw| parse_url(name, &raw)).transpose()
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

fn missing(variable: &'static str) -> ConfigError {
    ConfigError { variable, problem: "required but not set".to_owned() }
}

fn invalid(variable: &'static str, problem: String) -> ConfigError {
    ConfigError { variable, problem }
}

fn parse_url(variable: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| invalid(variable, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(variable, format!("{raw:?} must be an http(s) URL with a host")));
    }
    Ok(url)
}

/// A bare host (`agentidentitydata.cn-beijing.aliyuncs.com`, optionally `:port`) or an http(s) URL.
fn validate_endpoint(raw: String) -> Result<String, ConfigError> {
    const NAME: &str = "AGENT_IDENTITY_DATA_ENDPOINT";
    if raw.contains("://") {
        parse_url(NAME, &raw)?;
    } else {
        parse_url(NAME, &format!("https://{raw}"))
            .map_err(|_| invalid(NAME, format!("{raw:?} is neither a host nor an http(s) URL")))?;
        if raw.contains('/') {
            return Err(invalid(NAME, format!("{raw:?}: a bare host must not have a path")));
        }
    }
    Ok(raw)
}

fn user_source(raw: Option<String>) -> Result<UserSource, ConfigError> {
    const NAME: &str = "AGENT_IDENTITY_USER_SOURCE";
    let Some(raw) = raw else {
        return Ok(UserSource::Auto);
    };
    match raw.as_str() {
        "auto" => Ok(UserSource::Auto),
        "jwt" => Ok(UserSource::Jwt),
        "body" => Ok(UserSource::Body),
        _ => match raw.strip_prefix("header:").map(str::trim) {
            Some(header) if !header.is_empty() => http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                .map(UserSource::Header)
                .map_err(|_| invalid(NAME, format!("{header:?} is not a valid header name"))),
            _ => Err(invalid(NAME, format!("{raw:?}: expected auto, jwt, body or header:<name>"))),
        },
    }
}

fn env_credentials(env: &Env) -> Result<Option<EnvCredentials>, ConfigError> {
    let id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID");
    let secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    let token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN").map(Secret::new);
    match (id, secret) {
        (Some(access_key_id), Some(secret)) => {
            Ok(Some(EnvCredentials { access_key_id, access_key_secret: Secret::new(secret), security_token: token }))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(missing("ALIBABA_CLOUD_ACCESS_KEY_SECRET")),
        (None, Some(_)) => Err(missing("ALIBABA_CLOUD_ACCESS_KEY_ID")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> =
            [("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME", "fc-agent"), ("DASHSCOPE_API_KEY", "sk-test")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn error(pairs: &[(&str, &str)]) -> ConfigError {
        config(pairs).expect_err("expected a config error")
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.identity.region, "cn-beijing");
        assert_eq!(c.identity.endpoint, "agentidentitydata.cn-beijing.aliyuncs.com");
        assert_eq!(c.identity.user_source, UserSource::Auto);
        assert_eq!(c.identity.token_ttl, Duration::from_secs(300));
        assert_eq!(c.model.base_url.as_str(), DEFAULT_DASHSCOPE_BASE_URL);
        assert_eq!(c.model.model, "qwen-max");
        assert!(c.model.allowed_models.is_empty());
        assert_eq!(c.model.enable_thinking, None);
        assert!(c.mcp_servers.is_empty());
        assert_eq!(c.agent.name, "Friday");
        assert_eq!(c.agent.system_prompt, DEFAULT_SYSTEM_PROMPT);
        assert_eq!(c.agent.max_iters, 10);
        assert_eq!(c.agent.tool_timeout, Duration::from_secs(30));
        assert_eq!(c.function_timeout, Duration::from_secs(600));
        assert_eq!(c.max_request_bytes, 1_048_576);
        assert!(c.env_credentials.is_none());
    }

    #[test]
    fn port_precedence() {
        assert_eq!(config(&[("FC_SERVER_PORT", "8080")]).unwrap().port, 8080);
        assert_eq!(config(&[("FC_SERVER_PORT", "8080"), ("FC_CUSTOM_LISTEN_PORT", "9100")]).unwrap().port, 9100);
        assert_eq!(error(&[("FC_CUSTOM_LISTEN_PORT", "70000")]).variable, "FC_CUSTOM_LISTEN_PORT");
        assert_eq!(error(&[("FC_SERVER_PORT", "http")]).variable, "FC_SERVER_PORT");
    }

    #[test]
    fn required_values_are_named() {
        let e = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(e.to_string(), "AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME: required but not set");
        let e = Config::from_lookup(|n| (n == "AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME").then(|| "w".to_owned()))
            .unwrap_err();
        assert_eq!(e.variable, "DASHSCOPE_API_KEY");
        // A preset token makes the workload name unnecessary: no data API call is made.
        let c = Config::from_lookup(|n| match n {
            "AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN" => Some("wat".to_owned()),
            "DASHSCOPE_API_KEY" => Some("k".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.identity.preset_token.as_ref().map(Secret::expose), Some("wat"));
    }

    #[test]
    fn urls_and_endpoints() {
        assert_eq!(error(&[("DASHSCOPE_BASE_URL", "not a url")]).variable, "DASHSCOPE_BASE_URL");
        assert_eq!(error(&[("DASHSCOPE_BASE_URL", "ftp://x/y")]).variable, "DASHSCOPE_BASE_URL");
        let c = config(&[("AI_GATEWAY_MCP_SERVER", "https://gw.example.com/mcp-servers/a, http://127.0.0.1:1/mcp")])
            .unwrap();
        assert_eq!(c.mcp_servers.len(), 2);
        assert_eq!(error(&[("AI_GATEWAY_MCP_SERVER", "https://ok/x,nope")]).variable, "AI_GATEWAY_MCP_SERVER");
        assert_eq!(
            config(&[("AGENT_IDENTITY_REGION_ID", "cn-hangzhou")]).unwrap().identity.endpoint,
            "agentidentitydata.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            config(&[("AGENT_IDENTITY_DATA_ENDPOINT", "http://127.0.0.1:8123")]).unwrap().identity.endpoint,
            "http://127.0.0.1:8123"
        );
        assert_eq!(
            config(&[("AGENT_IDENTITY_DATA_ENDPOINT", "example.com:8443")]).unwrap().identity.endpoint,
            "example.com:8443"
        );
        assert_eq!(
            error(&[("AGENT_IDENTITY_DATA_ENDPOINT", "example.com/path")]).variable,
            "AGENT_IDENTITY_DATA_ENDPOINT"
        );
        assert_eq!(error(&[("ALIBABA_CLOUD_CREDENTIALS_URI", "::")]).variable, "ALIBABA_CLOUD_CREDENTIALS_URI");
    }

    #[test]
    fn user_source_grammar() {
        let src = |v| config(&[("AGENT_IDENTITY_USER_SOURCE", v)]).map(|c| c.identity.user_source);
        assert_eq!(src("jwt").unwrap(), UserSource::Jwt);
        assert_eq!(src("body").unwrap(), UserSource::Body);
        assert_eq!(src("auto").unwrap(), UserSource::Auto);
        assert_eq!(src("header:X-User-Id").unwrap(), UserSource::Header(http::HeaderName::from_static("x-user-id")));
        for bad in ["header:", "header:bad header", "cookie", "JWT"] {
            assert_eq!(src(bad).unwrap_err().variable, "AGENT_IDENTITY_USER_SOURCE", "{bad}");
        }
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(error(&[("AGENT_MAX_ITERS", "0")]).to_string(), "AGENT_MAX_ITERS: must be greater than 0");
        assert_eq!(error(&[("AGENT_MAX_ITERS", "-1")]).variable, "AGENT_MAX_ITERS");
        assert_eq!(error(&[("MAX_REQUEST_BYTES", "1MB")]).variable, "MAX_REQUEST_BYTES");
        assert_eq!(error(&[("AGENT_TOOL_TIMEOUT_SECS", "x")]).variable, "AGENT_TOOL_TIMEOUT_SECS");
        assert_eq!(error(&[("FUNCTION_TIMEOUT_SECS", "0")]).variable, "FUNCTION_TIMEOUT_SECS");
        assert_eq!(error(&[("AGENT_IDENTITY_TOKEN_TTL_SECS", "0")]).variable, "AGENT_IDENTITY_TOKEN_TTL_SECS");
        // Empty counts as unset: FC consoles often keep a variable with no value.
        assert_eq!(
            config(&[("AGENT_IDENTITY_TOKEN_TTL_SECS", "")]).unwrap().identity.token_ttl,
            Duration::from_secs(300)
        );
        assert_eq!(config(&[("DASHSCOPE_ENABLE_THINKING", "true")]).unwrap().model.enable_thinking, Some(true));
        assert_eq!(config(&[("DASHSCOPE_ENABLE_THINKING", "False")]).unwrap().model.enable_thinking, Some(false));
        assert_eq!(error(&[("DASHSCOPE_ENABLE_THINKING", "maybe")]).variable, "DASHSCOPE_ENABLE_THINKING");
        let c = config(&[("DASHSCOPE_ALLOWED_MODELS", "qwen-max, qwen-plus,,")]).unwrap();
        assert_eq!(c.model.allowed_models, vec!["qwen-max", "qwen-plus"]);
    }

    #[test]
    fn partial_access_keys_are_rejected_and_secrets_hidden() {
        assert_eq!(error(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI")]).variable, "ALIBABA_CLOUD_ACCESS_KEY_SECRET");
        let c = config(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "SENTINEL-AK-SECRET"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "SENTINEL-STS"),
            ("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN", "SENTINEL-WAT"),
            ("DASHSCOPE_API_KEY", "SENTINEL-KEY"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SENTINEL"), "{dbg}");
        assert!(dbg.contains("LTAI"));
    }
}
