//! The function's routes, and the edge where every module's error becomes an HTTP status or a final event.
//!
//! - `process.rs`: `POST /process` (SSE or JSON)
//! - `event.rs`: event invocations (`/invoke`)
//! - `turn.rs`: one turn end to end (identity → tools → agent), shared by both
//! - `user.rs`: who the end user is

mod event;
mod process;
mod rejection;
mod turn;
mod user;

pub use rejection::Rejection;
use rejection::{error_response, json_response};

use std::sync::Arc;

use fc_runtime::{Body, Invocation, Request};
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::acs::{Credentials, CredentialsProvider, CredentialsUriProvider, StaticProvider};
use crate::config::Config;
use crate::identity::{IdentityError, IdentitySettings, WorkloadTokens};
use crate::llm::{LlmClient, LlmError, LlmSettings};
use crate::mcp::{McpClient, McpError, McpSettings};

/// Everything built once at start and shared by all invocations: the configuration and one client per
/// upstream (their connection pools survive between warm invocations).
pub struct App {
    config: Config,
    llm: LlmClient,
    mcp: McpClient,
    tokens: WorkloadTokens,
    env_credentials: Arc<dyn CredentialsProvider>,
    uri_credentials: Arc<dyn CredentialsProvider>,
}

/// A client that could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Agent Identity client: {0}")]
    Identity(#[from] IdentityError),
    #[error("DashScope client: {0}")]
    Model(#[from] LlmError),
    #[error("MCP client: {0}")]
    Tools(#[from] McpError),
    #[error("Agent Identity HTTP client: {0}")]
    HttpClient(String),
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, AppError> {
        let llm = LlmClient::new(LlmSettings {
            base_url: config.model.base_url.to_string(),
            api_key: config.model.api_key.clone(),
            model: config.model.model.clone(),
            enable_thinking: config.model.enable_thinking,
        })?;
        let mcp = McpClient::new(McpSettings::new(
            config.mcp_servers.iter().map(ToString::to_string).collect(),
            config.agent.tool_timeout,
        ))?;
        let identity_http = crate::upstream::client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AppError::HttpClient(e.to_string()))?;
        let tokens = WorkloadTokens::new(
            IdentitySettings {
                endpoint: Some(config.identity.endpoint.clone()),
                region: config.identity.region.clone(),
                workload_identity_name: config.identity.workload_identity_name.clone(),
                token_ttl: config.identity.token_ttl,
                preset_token: config.identity.preset_token.clone(),
            },
            identity_http.clone(),
        )?;
        let env_credentials = config.env_credentials.clone().map(|c| Credentials {
            access_key_id: c.access_key_id,
            access_key_secret: c.access_key_secret,
            security_token: c.security_token,
            expiration: None,
        });
        Ok(Arc::new(App {
            llm,
            mcp,
            tokens,
            env_credentials: Arc::new(StaticProvider::environment(env_credentials)),
            uri_credentials: Arc::new(CredentialsUriProvider::new(
                config.credentials_uri.as_ref().map(ToString::to_string),
                identity_http,
            )),
            config,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Options for the FC adapter derived from the configuration.
    pub fn run_options(&self) -> fc_runtime::Options {
        fc_runtime::Options {
            port: self.config.port,
            default_timeout: self.config.function_timeout,
            ..fc_runtime::Options::default()
        }
    }

    /// Serves until SIGTERM/SIGINT.
    pub async fn run(self: Arc<App>) -> Result<(), fc_runtime::Error> {
        let options = self.run_options();
        fc_runtime::run_with(options, self.handler()).await
    }

    /// The FC handler: what `fc_runtime::run_with` / `fc_runtime::serve` call per invocation.
    pub fn handler(self: &Arc<App>) -> impl fc_runtime::Handler {
        let app = self.clone();
        move |invocation| {
            let app = app.clone();
            async move { app.handle(invocation).await }
        }
    }

    pub async fn handle(self: &Arc<Self>, invocation: Invocation) -> Response<Body> {
        match invocation {
            Invocation::Http(request) => self.route(request).await,
            Invocation::Event(event) => self.event(event).await,
        }
    }

    async fn route(self: &Arc<Self>, request: Request) -> Response<Body> {
        let path = request.uri().path().trim_end_matches('/');
        match (path, request.method()) {
            ("/process", &Method::POST) => self.process(request).await,
            ("/health", &Method::GET | &Method::HEAD) => health(),
            ("", &Method::GET | &Method::HEAD) => index(),
            ("/process", _) => method_not_allowed("POST"),
            ("/health" | "", _) => method_not_allowed("GET"),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no route for {}; see GET / for the endpoints", request.uri().path()),
            ),
        }
    }
}

fn health() -> Response<Body> {
    json_response(StatusCode::OK, r#"{"status":"healthy","runner":"ready"}"#)
}

fn index() -> Response<Body> {
    let body = serde_json::json!({
        "service": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "process": "POST /process",
            "health": "GET /health",
            "events": "POST /invoke with x-fc-control-path: /invoke",
        },
    });
    json_response(StatusCode::OK, body.to_string())
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response =
        error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &format!("this endpoint accepts {allow}"));
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
