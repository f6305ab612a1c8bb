//! Every environment variable the function reads, parsed and validated once at start.
//!
//! A missing or malformed value is a [`ConfigError`] naming the variable, so FC's start error shows the
//! cause in one line. Secrets are held as [`Secret`] and print as `***`.

use std::time::Duration;

use crate::acs::Credentials;
use crate::agent::ToolApproval;
use crate::identity::{self, IdentitySettings, OAuth2Settings};
use crate::llm::LlmSettings;
use crate::mcp::{McpProtocol, McpSettings, OAuth2Grant, PoolLimits};
use crate::secret::Secret;
use crate::sessions::{JournalSettings, LeaseSettings, SessionSettings, StoreKind, Window};
use crate::telemetry::{SamplerChoice, SignalExport, TelemetrySettings};
use crate::upstream::Endpoint;

pub(crate) use crate::identity::UserSource;

/// Under the idle timeouts of the usual proxies and load balancers (nginx 60 s, SLB 60 s, browsers'
/// own), with room for a slow write; what AgentScope and sse-starlette use.
const DEFAULT_STREAM_HEARTBEAT_SECS: u64 = 15;
const DEFAULT_DASHSCOPE_BASE_URL: &str = "https://dashscope.aliyuncs.com/compatible-mode/v1";
const DEFAULT_SYSTEM_PROMPT: &str = "You're a helpful assistant named Friday.";
const DEFAULT_EVENT_INSTRUCTION: &str =
    "An event was delivered to you by Alibaba Cloud Function Compute. Handle it and reply with a short summary.";

/// The parsed environment. Each upstream's variables are parsed straight into the settings type its client
/// takes, so building the clients is passing these on; every URL is already an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct Config {
    /// `FC_CUSTOM_LISTEN_PORT`, else `FC_SERVER_PORT`, else 9000.
    pub(crate) port: u16,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN`, when set (FC sets them for the role).
    pub(crate) env_credentials: Option<Credentials>,
    /// `ALIBABA_CLOUD_CREDENTIALS_URI`.
    pub(crate) credentials_uri: Option<Endpoint>,
    /// `AGENT_IDENTITY_*`.
    pub(crate) identity: IdentitySettings,
    /// `DASHSCOPE_*`.
    pub(crate) model: LlmSettings,
    /// `AI_GATEWAY_MCP_SERVER` and `AGENT_TOOL_TIMEOUT_SECS`.
    pub(crate) mcp: McpSettings,
    pub(crate) agent: AgentConfig,
    /// `FUNCTION_TIMEOUT_SECS`: the turn deadline when FC does not send `x-fc-function-timeout`.
    pub(crate) function_timeout: Duration,
    /// `MAX_REQUEST_BYTES`: larger bodies get 413.
    pub(crate) max_request_bytes: usize,
    /// `SESSION_*`: session memory.
    pub(crate) sessions: SessionSettings,
    /// `BACKGROUND_*` (and FC's own `FC_ACCOUNT_ID`, `FC_REGION`, `FC_FUNCTION_NAME`): where a background
    /// turn is queued.
    pub(crate) background: BackgroundSettings,
    /// `STREAM_HEARTBEAT_SECS` (default 15; 0: off): a streamed body quiet this long gets a keep-alive.
    pub(crate) stream_heartbeat: Option<Duration>,
    /// `DASHSCOPE_API_KEY_PROVIDER`: the Agent Identity API-key credential provider holding the model key
    /// (then `DASHSCOPE_API_KEY` must not be set).
    pub(crate) model_key_provider: Option<String>,
    /// `OAUTH2_*` (+ `AGENT_PUBLIC_URL`): set exactly when some MCP server takes the user's OAuth2 token
    /// (`AI_GATEWAY_MCP_OAUTH2`).
    pub(crate) oauth2: Option<OAuth2Settings>,
    /// `OTEL_*`: `None` (no exporter, no provider, nothing recorded) unless an OTLP endpoint is set and
    /// `OTEL_SDK_DISABLED` is not `true`.
    pub telemetry: Option<TelemetrySettings>,
}

/// `AGENT_*`: what the app itself does with a turn.
#[derive(Debug, Clone)]
pub(crate) struct AgentConfig {
    /// `AGENT_NAME`: `GET /` and the A2A agent card show it.
    pub(crate) name: String,
    pub(crate) system_prompt: String,
    pub(crate) max_iters: u32,
    pub(crate) event_instruction: String,
    /// `A2A_PUBLIC_URL`: the A2A endpoint's URL as callers reach it (the card's `url`); unset, it is
    /// derived from each card request's `Host` / `X-Forwarded-*`.
    pub(crate) a2a_public_url: Option<Endpoint>,
    /// `TOOL_APPROVAL`: which tool calls wait for the user's approval (`none`, `all`, or names/patterns).
    pub(crate) tool_approval: ToolApproval,
    /// `TOOL_APPROVAL_TTL_SECS`: how long such a request may be answered.
    pub(crate) approval_ttl: Duration,
}

/// A configuration value that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub(crate) problem: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&lookup);
        let mcp = mcp_settings(&env)?;
        let oauth2 = match mcp.grants.iter().any(Option::is_some) {
            true => Some(oauth2_settings(&env)?),
            false => None,
        };
        Ok(Config {
            port: match env.get("FC_CUSTOM_LISTEN_PORT") {
                Some(_) => env.number("FC_CUSTOM_LISTEN_PORT", 9000)?,
                None => env.number("FC_SERVER_PORT", 9000)?,
            },
            env_credentials: env_credentials(&env)?,
            credentials_uri: env.endpoint("ALIBABA_CLOUD_CREDENTIALS_URI")?,
            identity: identity_settings(&env)?,
            model: LlmSettings {
                api_key: model_key(&env)?,
                base_url: match env.endpoint("DASHSCOPE_BASE_URL")? {
                    Some(endpoint) => endpoint,
                    None => Endpoint::parse(DEFAULT_DASHSCOPE_BASE_URL).expect("the default base URL is valid"),
                },
                model: env.get("DASHSCOPE_MODEL").unwrap_or_else(|| "qwen-max".to_owned()),
                allowed_models: env.list("DASHSCOPE_ALLOWED_MODELS"),
                enable_thinking: env.boolean("DASHSCOPE_ENABLE_THINKING")?,
            },
            mcp,
            agent: AgentConfig {
                name: env.get("AGENT_NAME").unwrap_or_else(|| "Friday".to_owned()),
                system_prompt: env.get("AGENT_SYSTEM_PROMPT").unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_owned()),
                max_iters: env.positive("AGENT_MAX_ITERS", 10)?,
                event_instruction: env
                    .get("AGENT_EVENT_INSTRUCTION")
                    .unwrap_or_else(|| DEFAULT_EVENT_INSTRUCTION.to_owned()),
                a2a_public_url: env.endpoint("A2A_PUBLIC_URL")?,
                tool_approval: ToolApproval::parse(&env.get("TOOL_APPROVAL").unwrap_or_default())
                    .map_err(|reason| invalid("TOOL_APPROVAL", reason))?,
                approval_ttl: Duration::from_secs(
                    env.positive("TOOL_APPROVAL_TTL_SECS", crate::agent::DEFAULT_APPROVAL_TTL.as_secs())?,
                ),
            },
            function_timeout: Duration::from_secs(env.positive("FUNCTION_TIMEOUT_SECS", 600)?),
            max_request_bytes: env.positive("MAX_REQUEST_BYTES", 1_048_576)?,
            sessions: session_settings(&env)?,
            background: background_settings(&env)?,
            stream_heartbeat: match env.number("STREAM_HEARTBEAT_SECS", DEFAULT_STREAM_HEARTBEAT_SECS)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            model_key_provider: env.get("DASHSCOPE_API_KEY_PROVIDER"),
            oauth2,
            telemetry: telemetry_settings(&env)?,
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

    fn endpoint(&self, name: &'static str) -> Result<Option<Endpoint>, ConfigError> {
        self.get(name).map(|raw| parse_endpoint(name, &raw)).transpose()
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

/// The one URL check: every upstream address in the environment becomes an [`Endpoint`] here.
fn parse_endpoint(variable: &'static str, raw: &str) -> Result<Endpoint, ConfigError> {
    Endpoint::parse(raw).map_err(|e| invalid(variable, format!("{raw:?}: {e}")))
}

/// A bare host (`agentidentitydata.cn-beijing.aliyuncs.com`, optionally `:port`, meaning https) or an http(s)
/// URL.
fn host_or_url(variable: &'static str, raw: &str) -> Result<Endpoint, ConfigError> {
    if raw.contains("://") {
        return parse_endpoint(variable, raw);
    }
    if raw.contains('/') {
        return Err(invalid(variable, format!("{raw:?}: a bare host must not have a path")));
    }
    Endpoint::parse(&format!("https://{raw}"))
        .map_err(|_| invalid(variable, format!("{raw:?} is neither a host nor an http(s) URL")))
}

/// `SESSION_STORE` (`memory` by default, `none`, or a `redis://` / `rediss://` URL) and its bounds.
fn session_settings(env: &Env) -> Result<SessionSettings, ConfigError> {
    let store = match env.get("SESSION_STORE") {
        None => StoreKind::Memory,
        Some(raw) => match raw.to_ascii_lowercase().as_str() {
            "memory" => StoreKind::Memory,
            "none" => StoreKind::None,
            lower if lower.starts_with("redis://") || lower.starts_with("rediss://") => {
                StoreKind::Redis(Secret::new(raw))
            }
            // The value may be a URL with a password in it: it is not echoed.
            _ => return Err(invalid("SESSION_STORE", "expected memory, none, or a redis:// or rediss:// URL".into())),
        },
    };
    let defaults = SessionSettings::DEFAULT_WINDOW;
    let key_prefix = env.get("SESSION_KEY_PREFIX").unwrap_or_default();
    let redis_cluster = env.boolean("SESSION_REDIS_CLUSTER")?.unwrap_or(false);
    // A brace in the prefix would become the keys' hash tag instead of the user.
    if redis_cluster && key_prefix.contains(['{', '}']) {
        return Err(invalid("SESSION_KEY_PREFIX", "must not contain '{' or '}' with SESSION_REDIS_CLUSTER".into()));
    }
    Ok(SessionSettings {
        store,
        ttl: Duration::from_secs(env.positive("SESSION_TTL_SECS", SessionSettings::DEFAULT_TTL.as_secs())?),
        max_sessions: env.positive("SESSION_MAX_SESSIONS", SessionSettings::DEFAULT_MAX_SESSIONS)?,
        max_messages: env.positive("SESSION_MAX_MESSAGES", SessionSettings::DEFAULT_MAX_MESSAGES)?,
        max_bytes: env.positive("SESSION_MAX_BYTES", SessionSettings::DEFAULT_MAX_BYTES)?,
        timeout: Duration::from_millis(
            env.positive("SESSION_STORE_TIMEOUT_MS", SessionSettings::DEFAULT_TIMEOUT.as_millis() as u64)?,
        ),
        key_prefix,
        redis_cluster,
        window: Window {
            messages: env.positive("SESSION_WINDOW_MESSAGES", defaults.messages)?,
            chars: env.positive("SESSION_WINDOW_CHARS", defaults.chars)?,
        },
        journal: JournalSettings {
            ttl: Duration::from_secs(env.positive("BACKGROUND_TTL_SECS", JournalSettings::DEFAULT_TTL.as_secs())?),
            max_turns: env.positive("BACKGROUND_MAX_TURNS", JournalSettings::DEFAULT_MAX_TURNS)?,
            max_bytes: env.positive("BACKGROUND_MAX_BYTES", JournalSettings::DEFAULT_MAX_BYTES)?,
        },
        lease: LeaseSettings {
            ttl: Duration::from_secs(env.positive("SESSION_LEASE_TTL_SECS", LeaseSettings::DEFAULT_TTL.as_secs())?),
            busy_wait: Duration::from_secs(env.number("SESSION_BUSY_WAIT_SECS", 0)?),
        },
    })
}

/// Where background turns go: FC's asynchronous invocation of this very function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackgroundSettings {
    /// `BACKGROUND_FC_ENDPOINT`, else `https://{FC_ACCOUNT_ID}.{FC_REGION}.fc.aliyuncs.com` (FC sets both);
    /// `None` outside FC without the variable: `background: true` is then refused, naming it.
    pub(crate) endpoint: Option<Endpoint>,
    /// `BACKGROUND_FUNCTION_NAME`, else `FC_FUNCTION_NAME`.
    pub(crate) function_name: Option<String>,
    /// `BACKGROUND_QUALIFIER`: the version or alias the async invocation runs (unset: LATEST).
    pub(crate) qualifier: Option<String>,
}

/// `BACKGROUND_FC_ENDPOINT`, `BACKGROUND_FUNCTION_NAME`, `BACKGROUND_QUALIFIER`.
fn background_settings(env: &Env) -> Result<BackgroundSettings, ConfigError> {
    let endpoint = match env.endpoint("BACKGROUND_FC_ENDPOINT")? {
        Some(endpoint) => Some(endpoint),
        None => match (env.get("FC_ACCOUNT_ID"), env.get("FC_REGION")) {
            (Some(account), Some(region)) => {
                Some(parse_endpoint("FC_REGION", &format!("https://{account}.{region}.fc.aliyuncs.com"))?)
            }
            _ => None,
        },
    };
    // The name goes into the API path: FC's own rule (letters, digits, `_`, `-`), so nothing needs escaping.
    let name_rule = |variable: &'static str, value: String| {
        if value.len() <= 128 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            Ok(value)
        } else {
            Err(invalid(variable, format!("{value:?} is not a function name (letters, digits, '_' and '-')")))
        }
    };
    let function_name = match env.get("BACKGROUND_FUNCTION_NAME") {
        Some(name) => Some(name_rule("BACKGROUND_FUNCTION_NAME", name)?),
        None => env.get("FC_FUNCTION_NAME").map(|name| name_rule("FC_FUNCTION_NAME", name)).transpose()?,
    };
    let qualifier = env.get("BACKGROUND_QUALIFIER").map(|q| name_rule("BACKGROUND_QUALIFIER", q)).transpose()?;
    Ok(BackgroundSettings { endpoint, function_name, qualifier })
}

/// `AI_GATEWAY_MCP_SERVER` (comma-separated URLs), `AGENT_TOOL_TIMEOUT_SECS`, and `AI_GATEWAY_MCP_OAUTH2`:
/// comma-separated entries `<server URL> <provider> [<scope> ...]` (whitespace between the fields), each
/// naming one of the servers that takes that Agent Identity OAuth2 provider's token, with those scopes,
/// instead of the WorkloadAccessToken. `AI_GATEWAY_MCP_PROTOCOL` (`auto` or a revision) and the kept
/// connections' bounds `AI_GATEWAY_MCP_CACHE_ENTRIES` / `_BYTES` / `_SECS`.
fn mcp_settings(env: &Env) -> Result<McpSettings, ConfigError> {
    const OAUTH2: &str = "AI_GATEWAY_MCP_OAUTH2";
    let servers: Vec<Endpoint> = env
        .list("AI_GATEWAY_MCP_SERVER")
        .iter()
        .map(|url| parse_endpoint("AI_GATEWAY_MCP_SERVER", url))
        .collect::<Result<_, _>>()?;
    let mut grants: Vec<Option<OAuth2Grant>> = vec![None; servers.len()];
    for entry in env.list(OAUTH2) {
        let mut fields = entry.split_whitespace();
        let (Some(url), Some(provider)) = (fields.next(), fields.next()) else {
            return Err(invalid(
                OAUTH2,
                "expected entries of the form \"<server URL> <provider> [<scope> ...]\"".into(),
            ));
        };
        let endpoint = parse_endpoint(OAUTH2, url)?;
        let Some(index) = servers.iter().position(|server| server.as_str() == endpoint.as_str()) else {
            return Err(invalid(OAUTH2, format!("{} is not one of AI_GATEWAY_MCP_SERVER", endpoint.redacted())));
        };
        if grants[index].is_some() {
            return Err(invalid(OAUTH2, format!("{} is named twice", endpoint.redacted())));
        }
        let scopes = fields.map(str::to_owned).collect();
        grants[index] = Some(OAuth2Grant { provider: provider.to_owned(), scopes });
    }
    let mut settings = McpSettings::new(servers, Duration::from_secs(env.positive("AGENT_TOOL_TIMEOUT_SECS", 30)?));
    settings.grants = grants;
    const PROTOCOL: &str = "AI_GATEWAY_MCP_PROTOCOL";
    settings.protocol =
        McpProtocol::parse(&env.get(PROTOCOL).unwrap_or_default()).map_err(|problem| invalid(PROTOCOL, problem))?;
    // What a warm turn reuses per (server, user); 0 entries keeps nothing (every turn opens anew).
    let defaults = PoolLimits::default();
    settings.pool = PoolLimits {
        entries: env.number("AI_GATEWAY_MCP_CACHE_ENTRIES", defaults.entries)?,
        bytes: env.positive("AI_GATEWAY_MCP_CACHE_BYTES", defaults.bytes)?,
        idle: Duration::from_secs(env.positive("AI_GATEWAY_MCP_CACHE_SECS", defaults.idle.as_secs())?),
    };
    Ok(settings)
}

/// The OAuth2 consent flow's settings, needed once a server takes an OAuth2 token. The return URL is
/// `OAUTH2_RETURN_URL`, else `AGENT_PUBLIC_URL` (the function's URL as browsers reach it) +
/// `/oauth2/callback`; it is never guessed from a request's `Host`, since Agent Identity only redirects to
/// the return URLs registered on the workload identity.
fn oauth2_settings(env: &Env) -> Result<OAuth2Settings, ConfigError> {
    const RETURN_URL: &str = "OAUTH2_RETURN_URL";
    const STATE_KEY: &str = "OAUTH2_STATE_KEY";
    let return_url = match (env.endpoint(RETURN_URL)?, env.endpoint("AGENT_PUBLIC_URL")?) {
        (Some(url), _) => url,
        (None, Some(base)) => {
            let url = format!("{}{CALLBACK_PATH}", base.as_str().trim_end_matches('/'));
            parse_endpoint("AGENT_PUBLIC_URL", &url)?
        }
        (None, None) => {
            return Err(invalid(
                RETURN_URL,
                "required when AI_GATEWAY_MCP_OAUTH2 is set (or set AGENT_PUBLIC_URL, the function's public URL, \
                 and the return URL is its /oauth2/callback)"
                    .to_owned(),
            ));
        }
    };
    let state_key = match env.get(STATE_KEY) {
        None => {
            return Err(invalid(
                STATE_KEY,
                "required when AI_GATEWAY_MCP_OAUTH2 is set (the same random string on every instance)".to_owned(),
            ));
        }
        // The value is a secret: only its length is reported.
        Some(key) if key.len() < identity::MIN_STATE_KEY_BYTES => {
            return Err(invalid(STATE_KEY, format!("must be at least {} bytes", identity::MIN_STATE_KEY_BYTES)));
        }
        Some(key) => Secret::new(key),
    };
    Ok(OAuth2Settings {
        return_url,
        poll_interval: Duration::from_millis(
            env.positive("OAUTH2_POLL_INTERVAL_MS", identity::DEFAULT_POLL_INTERVAL.as_millis() as u64)?,
        ),
        poll_limit: env.positive("OAUTH2_POLL_LIMIT", identity::DEFAULT_POLL_LIMIT)?,
        state_key,
        bound_to_jwt: user_source(env.get("AGENT_IDENTITY_USER_SOURCE"))? == UserSource::Jwt,
    })
}

/// Where `GET /oauth2/callback` is served (and what `AGENT_PUBLIC_URL` is extended with).
pub(crate) const CALLBACK_PATH: &str = "/oauth2/callback";

/// `DASHSCOPE_API_KEY`, or nothing when `DASHSCOPE_API_KEY_PROVIDER` names the vault's provider instead.
/// Both set is refused: which one wins would be a guess, and a stale plain-text key is what the vault removes.
fn model_key(env: &Env) -> Result<Secret, ConfigError> {
    match (env.get("DASHSCOPE_API_KEY"), env.get("DASHSCOPE_API_KEY_PROVIDER")) {
        (Some(_), Some(_)) => Err(invalid(
            "DASHSCOPE_API_KEY",
            "set together with DASHSCOPE_API_KEY_PROVIDER; set only one of DASHSCOPE_API_KEY and \
             DASHSCOPE_API_KEY_PROVIDER"
                .to_owned(),
        )),
        (Some(key), None) => Ok(Secret::new(key)),
        (None, Some(_)) => Ok(Secret::default()),
        (None, None) => Err(ConfigError {
            variable: "DASHSCOPE_API_KEY",
            problem: "required but not set (or set DASHSCOPE_API_KEY_PROVIDER to take the key from the Agent \
                      Identity vault)"
                .to_owned(),
        }),
    }
}

fn identity_settings(env: &Env) -> Result<IdentitySettings, ConfigError> {
    let preset_token = env.get("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN").map(Secret::new);
    let workload_identity_name = match env.get("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME") {
        Some(name) => name,
        // No data API call is made with a preset token, so there is nothing to name.
        None if preset_token.is_some() => String::new(),
        None => return Err(missing("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME")),
    };
    let endpoint = match env.get("AGENT_IDENTITY_DATA_ENDPOINT") {
        Some(endpoint) => host_or_url("AGENT_IDENTITY_DATA_ENDPOINT", &endpoint)?,
        None => {
            let region = env.get("AGENT_IDENTITY_REGION_ID").unwrap_or_else(|| "cn-beijing".to_owned());
            host_or_url("AGENT_IDENTITY_REGION_ID", &identity::default_endpoint(&region))?
        }
    };
    Ok(IdentitySettings {
        endpoint,
        workload_identity_name,
        token_ttl: Duration::from_secs(
            env.positive("AGENT_IDENTITY_TOKEN_TTL_SECS", identity::DEFAULT_TOKEN_TTL.as_secs())?,
        ),
        preset_token,
        user_source: user_source(env.get("AGENT_IDENTITY_USER_SOURCE"))?,
    })
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

/// OpenTelemetry's standard variables (the SDK specification's names and defaults), for the OTLP/HTTP
/// protobuf exporter. Off — `None` — when no endpoint is set or `OTEL_SDK_DISABLED=true`. A protocol other
/// than `http/protobuf` is refused rather than ignored: a collector told to expect gRPC would see nothing.
fn telemetry_settings(env: &Env) -> Result<Option<TelemetrySettings>, ConfigError> {
    const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
    const RESOURCE: &str = "OTEL_RESOURCE_ATTRIBUTES";
    const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
    if env.boolean("OTEL_SDK_DISABLED")? == Some(true) {
        return Ok(None);
    }
    // The base endpoint gets each signal's path; a signal's own endpoint is used as it is (the spec's rule).
    let base = env.endpoint(ENDPOINT)?;
    let signal = |variable: &'static str, path: &str| -> Result<Option<Endpoint>, ConfigError> {
        match (env.endpoint(variable)?, &base) {
            (Some(own), _) => Ok(Some(own)),
            (None, Some(base)) => {
                parse_endpoint(ENDPOINT, &format!("{}{path}", base.as_str().trim_end_matches('/'))).map(Some)
            }
            (None, None) => Ok(None),
        }
    };
    let traces = signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")?;
    let metrics = signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics")?;
    if traces.is_none() && metrics.is_none() {
        return Ok(None);
    }
    for variable in
        ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"]
    {
        match env.get(variable).as_deref() {
            None | Some("http/protobuf") => {}
            Some(other) => {
                return Err(invalid(
                    variable,
                    format!(
                        "{other:?} is not supported: this function exports OTLP over HTTP as protobuf only \
                             (http/protobuf)"
                    ),
                ));
            }
        }
    }
    let timeout = Duration::from_millis(env.positive(TIMEOUT, 10_000)?);
    // ARMS takes its token in a header: the values are secrets and are never echoed. A signal's own
    // headers come after the general ones, so a name set in both takes the signal's value.
    let general = headers(env, HEADERS)?;
    let export = |endpoint: Option<Endpoint>,
                  own_headers: &'static str,
                  own_timeout: &'static str|
     -> Result<Option<SignalExport>, ConfigError> {
        let Some(endpoint) = endpoint else { return Ok(None) };
        let mut headers = general.clone();
        for (name, value) in self::headers(env, own_headers)? {
            headers.retain(|(kept, _)| !kept.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }
        let timeout = match env.get(own_timeout) {
            Some(_) => Duration::from_millis(env.positive(own_timeout, 10_000)?),
            None => timeout,
        };
        Ok(Some(SignalExport { endpoint, headers, timeout }))
    };
    let traces = export(traces, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")?;
    let metrics = export(metrics, "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")?;
    let mut resource = Vec::new();
    // What FC says about the instance (its environment), then the operator's attributes, then the service name.
    for (key, variable) in [
        ("faas.name", "FC_FUNCTION_NAME"),
        ("cloud.region", "FC_REGION"),
        ("cloud.account.id", "FC_ACCOUNT_ID"),
        ("faas.instance", "FC_INSTANCE_ID"),
    ] {
        if let Some(value) = env.get(variable) {
            resource.push((key.to_owned(), value));
        }
    }
    if let Some(mib) = env.get("FC_FUNCTION_MEMORY_SIZE").and_then(|v| v.parse::<u64>().ok()) {
        // The convention counts bytes; FC counts MiB.
        resource.push(("faas.max_memory".to_owned(), (mib * 1024 * 1024).to_string()));
    }
    let service = env.get("FC_FUNCTION_NAME").unwrap_or_else(|| env!("CARGO_PKG_NAME").to_owned());
    resource.push(("service.name".to_owned(), service));
    resource.extend(key_values(env, RESOURCE, "attribute")?);
    if let Some(name) = env.get("OTEL_SERVICE_NAME") {
        resource.push(("service.name".to_owned(), name));
    }
    Ok(Some(TelemetrySettings {
        traces,
        metrics,
        timeout,
        resource,
        sampler: sampler(env)?,
        capture_content: env.boolean("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")?.unwrap_or(false),
        metric_interval: Duration::from_millis(env.number("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?),
    }))
}

/// `OTEL_EXPORTER_OTLP_HEADERS` or a signal's own: valid HTTP header names and values, kept as secrets.
fn headers(env: &Env, variable: &'static str) -> Result<Vec<(String, Secret)>, ConfigError> {
    key_values(env, variable, "header")?
        .into_iter()
        .map(|(name, value)| match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) if http::HeaderValue::from_str(&value).is_ok() => Ok((name, Secret::new(value))),
            _ => Err(invalid(variable, format!("the header {name:?} is not a valid HTTP header"))),
        })
        .collect()
}

/// `key=value,key2=value2` with percent-encoded values (`OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_RESOURCE_ATTRIBUTES`). A malformed entry is refused by position: it may hold a secret.
fn key_values(env: &Env, variable: &'static str, what: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = env.get(variable) else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for (index, entry) in raw.split(',').enumerate().filter(|(_, e)| !e.trim().is_empty()) {
        let bad = || invalid(variable, format!("{what} {} is not of the form key=value", index + 1));
        let (key, value) = entry.split_once('=').ok_or_else(bad)?;
        let key = percent_decode(key.trim()).filter(|k| !k.is_empty()).ok_or_else(bad)?;
        let value = percent_decode(value.trim()).ok_or_else(bad)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// `%XX` escapes decoded (the W3C Baggage value encoding the OTLP variables use); `None` when malformed.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`) and its ratio `OTEL_TRACES_SAMPLER_ARG`.
fn sampler(env: &Env) -> Result<SamplerChoice, ConfigError> {
    const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, ConfigError> {
        let ratio: f64 = env.number(ARG, 1.0)?;
        match (0.0..=1.0).contains(&ratio) {
            true => Ok(ratio),
            false => Err(invalid(ARG, format!("{ratio} is not a ratio between 0 and 1"))),
        }
    };
    let parent_based = |root| SamplerChoice::ParentBased(Box::new(root));
    Ok(match env.get(SAMPLER).unwrap_or_else(|| "parentbased_always_on".to_owned()).as_str() {
        "always_on" => SamplerChoice::AlwaysOn,
        "always_off" => SamplerChoice::AlwaysOff,
        "traceidratio" => SamplerChoice::Ratio(ratio()?),
        "parentbased_always_on" => parent_based(SamplerChoice::AlwaysOn),
        "parentbased_always_off" => parent_based(SamplerChoice::AlwaysOff),
        "parentbased_traceidratio" => parent_based(SamplerChoice::Ratio(ratio()?)),
        other => {
            return Err(invalid(
                SAMPLER,
                format!(
                    "{other:?}: expected always_on, always_off, traceidratio, parentbased_always_on, \
                         parentbased_always_off or parentbased_traceidratio"
                ),
            ));
        }
    })
}

fn env_credentials(env: &Env) -> Result<Option<Credentials>, ConfigError> {
    let id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID");
    let secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    let token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN").map(Secret::new);
    match (id, secret) {
        (Some(access_key_id), Some(secret)) => {
            Ok(Some(Credentials::from_parts(access_key_id, Secret::new(secret), token)))
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
    fn session_settings_and_the_cluster_hash_tag() {
        let c = config(&[]).unwrap();
        assert_eq!(c.sessions.store, StoreKind::Memory);
        assert!(!c.sessions.redis_cluster);
        let c = config(&[("SESSION_STORE", "redis://h:6379"), ("SESSION_REDIS_CLUSTER", "true")]).unwrap();
        assert!(c.sessions.redis_cluster);
        // A brace in the prefix would become the hash tag of every key.
        let e = error(&[("SESSION_REDIS_CLUSTER", "yes"), ("SESSION_KEY_PREFIX", "app{1}:")]);
        assert_eq!(e.variable, "SESSION_KEY_PREFIX");
        assert_eq!(error(&[("SESSION_REDIS_CLUSTER", "maybe")]).variable, "SESSION_REDIS_CLUSTER");
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.identity.endpoint.as_str(), "https://agentidentitydata.cn-beijing.aliyuncs.com/");
        assert_eq!(c.identity.user_source, UserSource::Auto);
        assert_eq!(c.identity.token_ttl, Duration::from_secs(300));
        assert_eq!(c.model.base_url.as_str(), DEFAULT_DASHSCOPE_BASE_URL);
        assert_eq!(c.model.model, "qwen-max");
        assert!(c.model.allowed_models.is_empty());
        assert_eq!(c.model.enable_thinking, None);
        assert!(c.mcp.servers.is_empty());
        assert_eq!(c.mcp.tool_timeout, Duration::from_secs(30));
        assert_eq!(c.agent.name, "Friday");
        assert_eq!(c.agent.system_prompt, DEFAULT_SYSTEM_PROMPT);
        assert_eq!(c.agent.max_iters, 10);
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
    fn the_model_key_comes_from_the_environment_or_the_vault_never_both() {
        let vault = config(&[("DASHSCOPE_API_KEY", ""), ("DASHSCOPE_API_KEY_PROVIDER", "dashscope-key")]).unwrap();
        assert_eq!(vault.model_key_provider.as_deref(), Some("dashscope-key"));
        assert!(vault.model.api_key.is_empty());
        assert_eq!(config(&[]).unwrap().model_key_provider, None);
        let both = error(&[("DASHSCOPE_API_KEY_PROVIDER", "dashscope-key")]);
        assert_eq!(both.variable, "DASHSCOPE_API_KEY");
        let shown = both.to_string();
        assert!(shown.contains("DASHSCOPE_API_KEY_PROVIDER") && !shown.contains("sk-test"), "{shown}");
    }

    #[test]
    fn urls_and_endpoints() {
        assert_eq!(error(&[("DASHSCOPE_BASE_URL", "not a url")]).variable, "DASHSCOPE_BASE_URL");
        assert_eq!(error(&[("DASHSCOPE_BASE_URL", "ftp://x/y")]).variable, "DASHSCOPE_BASE_URL");
        let c = config(&[("AI_GATEWAY_MCP_SERVER", "https://gw.example.com/mcp-servers/a, http://127.0.0.1:1/mcp")])
            .unwrap();
        assert_eq!(c.mcp.servers.len(), 2);
        assert_eq!(error(&[("AI_GATEWAY_MCP_SERVER", "https://ok/x,nope")]).variable, "AI_GATEWAY_MCP_SERVER");
        assert_eq!(
            config(&[("AGENT_IDENTITY_REGION_ID", "cn-hangzhou")]).unwrap().identity.endpoint.as_str(),
            "https://agentidentitydata.cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(error(&[("AGENT_IDENTITY_REGION_ID", "cn beijing")]).variable, "AGENT_IDENTITY_REGION_ID");
        assert_eq!(
            config(&[("AGENT_IDENTITY_DATA_ENDPOINT", "http://127.0.0.1:8123")]).unwrap().identity.endpoint.as_str(),
            "http://127.0.0.1:8123/"
        );
        assert_eq!(
            config(&[("AGENT_IDENTITY_DATA_ENDPOINT", "example.com:8443")]).unwrap().identity.endpoint.as_str(),
            "https://example.com:8443/"
        );
        assert_eq!(
            error(&[("AGENT_IDENTITY_DATA_ENDPOINT", "ftp://example.com")]).variable,
            "AGENT_IDENTITY_DATA_ENDPOINT"
        );
        assert_eq!(
            error(&[("AGENT_IDENTITY_DATA_ENDPOINT", "example.com/path")]).variable,
            "AGENT_IDENTITY_DATA_ENDPOINT"
        );
        assert_eq!(error(&[("ALIBABA_CLOUD_CREDENTIALS_URI", "::")]).variable, "ALIBABA_CLOUD_CREDENTIALS_URI");
        let c = config(&[("ALIBABA_CLOUD_CREDENTIALS_URI", "http://100.100.100.200/creds?token=T")]).unwrap();
        assert_eq!(c.credentials_uri.unwrap().as_str(), "http://100.100.100.200/creds?token=T");
    }

    #[test]
    fn oauth2_servers_and_their_settings() {
        const A: &str = "https://gw.example.com/mcp-servers/a";
        const B: &str = "https://gw.example.com/mcp-servers/cal?key=SENTINEL-QUERY";
        const KEY: &str = "SENTINEL-STATE-KEY-0123456789abcdef0123";
        let servers = format!("{A},{B}");
        let grant = format!("{B} calendar openid calendar.read");
        let base = [("AI_GATEWAY_MCP_SERVER", servers.as_str()), ("AI_GATEWAY_MCP_OAUTH2", grant.as_str())];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs: Vec<(&str, &str)> = base.to_vec();
            pairs.extend_from_slice(extra);
            config(&pairs)
        };
        let c = with(&[("AGENT_PUBLIC_URL", "https://agent.example.com/"), ("OAUTH2_STATE_KEY", KEY)]).unwrap();
        let want = OAuth2Grant { provider: "calendar".into(), scopes: vec!["openid".into(), "calendar.read".into()] };
        assert_eq!(c.mcp.grants, vec![None, Some(want)]);
        let oauth2 = c.oauth2.as_ref().unwrap();
        assert_eq!(oauth2.return_url.as_str(), "https://agent.example.com/oauth2/callback");
        assert_eq!((oauth2.poll_interval, oauth2.poll_limit), (Duration::from_secs(3), 20));
        assert!(!format!("{c:?}").contains("SENTINEL"), "{c:?}");
        let c = with(&[
            ("OAUTH2_RETURN_URL", "http://127.0.0.1:9000/oauth2/callback"),
            ("OAUTH2_STATE_KEY", KEY),
            ("OAUTH2_POLL_INTERVAL_MS", "50"),
            ("OAUTH2_POLL_LIMIT", "2"),
        ])
        .unwrap();
        let oauth2 = c.oauth2.unwrap();
        assert_eq!(oauth2.return_url.as_str(), "http://127.0.0.1:9000/oauth2/callback");
        assert_eq!((oauth2.poll_interval, oauth2.poll_limit), (Duration::from_millis(50), 2));
        // No OAuth2 server: nothing else is needed.
        assert!(config(&[("AI_GATEWAY_MCP_SERVER", A)]).unwrap().oauth2.is_none());

        assert_eq!(with(&[("OAUTH2_STATE_KEY", KEY)]).unwrap_err().variable, "OAUTH2_RETURN_URL");
        let e = with(&[("AGENT_PUBLIC_URL", "https://a.example"), ("OAUTH2_STATE_KEY", "short")]).unwrap_err();
        assert_eq!(e.variable, "OAUTH2_STATE_KEY");
        assert!(!e.to_string().contains("short"), "{e}");
        assert_eq!(with(&[("AGENT_PUBLIC_URL", "https://a.example")]).unwrap_err().variable, "OAUTH2_STATE_KEY");
        let public = [("AGENT_PUBLIC_URL", "https://a.example"), ("OAUTH2_STATE_KEY", KEY)];
        let bad = |entry: &str| {
            let mut pairs: Vec<(&str, &str)> = vec![("AI_GATEWAY_MCP_SERVER", servers.as_str())];
            pairs.extend_from_slice(&public);
            pairs.push(("AI_GATEWAY_MCP_OAUTH2", entry));
            config(&pairs).unwrap_err()
        };
        for entry in [A, "https://elsewhere.example/mcp calendar", "nope calendar", &format!("{A} p, {A} q")] {
            let e = bad(entry);
            assert_eq!(e.variable, "AI_GATEWAY_MCP_OAUTH2", "{entry}");
            assert!(!e.to_string().contains("SENTINEL"), "{e}");
        }
        assert_eq!(
            with(&[("AGENT_PUBLIC_URL", "https://a.example"), ("OAUTH2_STATE_KEY", KEY), ("OAUTH2_POLL_LIMIT", "0")])
                .unwrap_err()
                .variable,
            "OAUTH2_POLL_LIMIT"
        );
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
            ("AI_GATEWAY_MCP_SERVER", "https://gw.example.com/mcp?key=SENTINEL-QUERY"),
            ("ALIBABA_CLOUD_CREDENTIALS_URI", "http://u:SENTINEL-PW@127.0.0.1/creds"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SENTINEL"), "{dbg}");
        assert!(dbg.contains("LTAI") && dbg.contains("https://gw.example.com/mcp"), "{dbg}");
        let creds = c.env_credentials.unwrap();
        assert_eq!((creds.access_key_secret.expose(), creds.expiration), ("SENTINEL-AK-SECRET", None));
    }

    #[test]
    fn opentelemetry_is_off_unless_an_endpoint_is_set() {
        assert!(config(&[]).unwrap().telemetry.is_none());
        assert!(
            config(&[("OTEL_SERVICE_NAME", "svc"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
                .unwrap()
                .telemetry
                .is_none()
        );
        let disabled = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")];
        assert!(config(&disabled).unwrap().telemetry.is_none());
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn opentelemetry_endpoints_resource_and_sampler() {
        let t = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://arms.example.com/otlp/"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318/custom"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authentication=SENTINEL%2Dtoken, x-b = 2"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "authentication=SENTINEL-metrics,x-m=3"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "4000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "agent"),
            ("FC_FUNCTION_NAME", "fn"),
            ("FC_REGION", "cn-hangzhou"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .telemetry
        .unwrap();
        let (traces, metrics) = (t.traces.as_ref().unwrap(), t.metrics.as_ref().unwrap());
        assert_eq!(traces.endpoint.as_str(), "https://arms.example.com/otlp/v1/traces");
        assert_eq!(metrics.endpoint.as_str(), "http://m:4318/custom");
        let headers = |signal: &SignalExport| -> Vec<(String, String)> {
            signal.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(headers(traces), pairs(&[("Authentication", "SENTINEL-token"), ("x-b", "2")]));
        // A signal's own header replaces the general one of the same name (names are case-insensitive).
        assert_eq!(headers(metrics), pairs(&[("x-b", "2"), ("authentication", "SENTINEL-metrics"), ("x-m", "3")]));
        assert_eq!((traces.timeout, metrics.timeout, t.timeout), (ms(2500), ms(4000), ms(4000)));
        // Later wins: FC's function name, then the attributes, then OTEL_SERVICE_NAME.
        let service: Vec<&str> =
            t.resource.iter().filter(|(k, _)| k == "service.name").map(|(_, v)| v.as_str()).collect();
        assert_eq!(service, ["fn", "from-attrs", "agent"]);
        assert!(t.resource.contains(&("cloud.region".to_owned(), "cn-hangzhou".to_owned())));
        assert_eq!(t.sampler, SamplerChoice::ParentBased(Box::new(SamplerChoice::Ratio(0.25))));
        assert!(!format!("{t:?}").contains("SENTINEL"), "the headers are secrets");
    }

    #[test]
    fn opentelemetry_errors_name_the_variable() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign-SENTINEL"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "bad header=SENTINEL"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "soon"),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "maybe"),
        ] {
            let mut pairs = vec![on, (variable, value)];
            if variable == "OTEL_TRACES_SAMPLER_ARG" {
                pairs.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
            }
            let error = error(&pairs);
            assert_eq!(error.variable, variable, "{error}");
            assert!(!error.to_string().contains("SENTINEL"), "{error}");
        }
        assert!(error(&[on, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).to_string().contains("http/protobuf"));
    }
}
