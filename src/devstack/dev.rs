//! `fc-identity-agent dev` (`make dev`): the function on localhost wired to the stand-ins, so the whole
//! flow runs with no cloud account. Real upstreams can replace stand-ins one at a time (see README).

use super::Stack;
use crate::app::App;
use crate::config::{Config, ConfigError};

/// The tool turn of the Python sample's README.
pub const SAMPLE_BODY: &str = r#"{"input":[{"role":"user","type":"message","content":[{"type":"text","text":"Tell me the time in UTC"}]}],"session_id":"s1","user_id":"u1"}"#;

/// Why the dev stack could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("starting the stand-ins: {0}")]
    StandIns(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    App(#[from] crate::app::AppError),
    #[error("{0}")]
    Serve(#[from] fc_runtime::Error),
}

/// Starts the stand-ins and serves the function until Ctrl-C.
pub async fn run() -> Result<(), DevError> {
    let stack = Stack::start().await?;
    let real = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let config = dev_config(&stack, real)?;
    let port = config.port;
    let uses_real_model = real("DASHSCOPE_API_KEY").is_some();
    let app = App::new(config)?;
    print_banner(&stack, port, uses_real_model);
    app.run().await?;
    Ok(())
}

/// The stack's environment, except for upstreams the developer points elsewhere:
/// - a real `DASHSCOPE_API_KEY` replaces the model stand-in (`DASHSCOPE_*` then come from the environment,
///   the base URL defaulting to DashScope's);
/// - a real `AI_GATEWAY_MCP_SERVER` replaces the MCP stand-in;
/// - a real `AGENT_IDENTITY_DATA_ENDPOINT` or preset `AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN` replaces the
///   Agent Identity stand-in (`AGENT_IDENTITY_*` and `ALIBABA_CLOUD_*` then come from the environment).
///
/// Variables the stack does not set (port, limits, prompts, `RUST_LOG`) are read from the environment.
pub fn dev_config(stack: &Stack, real: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let env = stack.env();
    let replaced = |name: &str| {
        if name.starts_with("DASHSCOPE_") {
            real("DASHSCOPE_API_KEY").is_some()
        } else if name == "AI_GATEWAY_MCP_SERVER" {
            real(name).is_some()
        } else if name.starts_with("AGENT_IDENTITY_") || name.starts_with("ALIBABA_CLOUD_") {
            real("AGENT_IDENTITY_DATA_ENDPOINT").is_some() || real("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN").is_some()
        } else {
            true
        }
    };
    Config::from_lookup(|name| match env.iter().find(|(k, _)| *k == name) {
        Some((_, stand_in)) if !replaced(name) => Some(stand_in.clone()),
        _ => real(name),
    })
}

fn print_banner(stack: &Stack, port: u16, uses_real_model: bool) {
    let model =
        if uses_real_model { "your DASHSCOPE_API_KEY (real DashScope)".to_owned() } else { stack.dashscope.base_url() };
    println!(
        "\nfc-identity-agent dev stack\n\
         \x20 function          http://127.0.0.1:{port}  (POST /process, GET /health, POST /invoke)\n\
         \x20 Agent Identity    {identity}  (verifies ACS3 signatures)\n\
         \x20 MCP server        {mcp}  (getutctime, helloworld; requires the WorkloadAccessToken)\n\
         \x20 DashScope         {model}\n\n\
         Try the sample's tool turn (streamed):\n\
         \x20 curl -N http://127.0.0.1:{port}/process -H 'content-type: application/json' -d '{SAMPLE_BODY}'\n\n\
         And an event invocation, as a timer trigger would send it:\n\
         \x20 curl http://127.0.0.1:{port}/invoke -H 'x-fc-control-path: /invoke' -d '{{\"triggerTime\":\"2026-01-01T08:00:00Z\",\"triggerName\":\"daily\",\"payload\":\"say hello to Alice\"}}'\n\n\
         Ctrl-C stops everything.\n",
        identity = stack.identity.url(),
        mcp = stack.mcp.url(),
    );
}
