//! The dev binary's policy: which of the stack's variables the function gets (the developer can swap a
//! stand-in for the real service), the banner, and how the function child is stopped (with this process,
//! whatever stops it). Part of the binary, not of the library.

use std::process::ExitStatus;
use std::time::Duration;

use devstack::Stack;
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The function drains in-flight turns on SIGTERM; after this it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// The tool turn of the Python sample's README.
pub const SAMPLE_BODY: &str = r#"{"input":[{"role":"user","type":"message","content":[{"type":"text","text":"Tell me the time in UTC"}]}],"session_id":"s1","user_id":"u1"}"#;

/// The stack's variables the function gets on top of the developer's environment, leaving out the upstreams
/// the developer points elsewhere (`real` is a non-blank variable of the developer's environment):
/// - a real `DASHSCOPE_API_KEY` replaces the model stand-in (`DASHSCOPE_*` then come from the environment,
///   the base URL defaulting to DashScope's);
/// - `DASHSCOPE_API_KEY_PROVIDER` (e.g. `dashscope-key`, the provider the stand-in vault holds) leaves the
///   stack's `DASHSCOPE_API_KEY` out: the function then takes the key from the Agent Identity vault;
/// - a real `AI_GATEWAY_MCP_SERVER` replaces the MCP stand-in;
/// - a real `AGENT_IDENTITY_DATA_ENDPOINT` or preset `AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN` replaces the
///   Agent Identity stand-in (`AGENT_IDENTITY_*` and `ALIBABA_CLOUD_*` then come from the environment).
///
/// Variables the stack does not set (port, limits, prompts, `RUST_LOG`) the function reads from the
/// environment it inherits.
pub fn stand_in_env(
    stack_env: Vec<(&'static str, String)>,
    real: impl Fn(&str) -> Option<String>,
) -> Vec<(&'static str, String)> {
    let real_model = real("DASHSCOPE_API_KEY").is_some();
    let vault_key = real("DASHSCOPE_API_KEY_PROVIDER").is_some();
    let real_mcp = real("AI_GATEWAY_MCP_SERVER").is_some();
    let real_identity =
        real("AGENT_IDENTITY_DATA_ENDPOINT").is_some() || real("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN").is_some();
    let replaced = |name: &str| {
        if name == "DASHSCOPE_API_KEY" && vault_key {
            true
        } else if name.starts_with("DASHSCOPE_") {
            real_model
        } else if name == "AI_GATEWAY_MCP_SERVER" {
            real_mcp
        } else if name.starts_with("AGENT_IDENTITY_") || name.starts_with("ALIBABA_CLOUD_") {
            real_identity
        } else {
            false
        }
    };
    stack_env.into_iter().filter(|(name, _)| !replaced(name)).collect()
}

/// `DEVSTACK_OAUTH2=1 make dev`: the stack's second MCP server (it takes the stand-in OAuth2 provider's
/// token) joins the first, and the function's return URL is its own `/oauth2/callback` on `port` — so the
/// first tool turn of a user streams an authorization link. Off by default (every new user's first turn
/// would wait for a consent), and when a real MCP server replaces the stand-ins.
pub fn oauth2_env(
    stack_oauth2_env: Vec<(&'static str, String)>,
    port: u16,
    real: impl Fn(&str) -> Option<String>,
) -> Vec<(&'static str, String)> {
    if real("DEVSTACK_OAUTH2").is_none() || real("AI_GATEWAY_MCP_SERVER").is_some() {
        return Vec::new();
    }
    let mut env = stack_oauth2_env;
    env.push(("AGENT_PUBLIC_URL", format!("http://127.0.0.1:{port}")));
    env
}

pub fn print_banner(stack: &Stack, port: u16, chat: &str, uses_real_model: bool, oauth2: bool) {
    let model =
        if uses_real_model { "your DASHSCOPE_API_KEY (real DashScope)".to_owned() } else { stack.dashscope.base_url() };
    println!(
        "\nfc-identity-agent dev stack\n\
         \x20 chat page         {chat}  (open it in a browser: the function's /process, streamed)\n\
         \x20 function          http://127.0.0.1:{port}  (POST /process, GET /health, POST /invoke)\n\
         \x20 Agent Identity    {identity}  (verifies ACS3 signatures)\n\
         \x20 MCP server        {mcp}  (getutctime, helloworld; requires the WorkloadAccessToken)\n\
         \x20 DashScope         {model}\n\n\
         Try the sample's tool turn (streamed):\n\
         \x20 curl -N http://127.0.0.1:{port}/process -H 'content-type: application/json' -d '{SAMPLE_BODY}'\n\n\
         And an event invocation, as a timer trigger would send it:\n\
         \x20 curl http://127.0.0.1:{port}/invoke -H 'x-fc-control-path: /invoke' -d '{{\"triggerTime\":\"2026-01-01T08:00:00Z\",\"triggerName\":\"daily\",\"payload\":\"say hello to Alice\"}}'\n\n\
         The model key from the Agent Identity vault instead: DASHSCOPE_API_KEY_PROVIDER={provider} make dev\n\
         The OAuth2 consent flow (an MCP server taking the user's third-party token): DEVSTACK_OAUTH2=1 make dev\n\n\
         Ctrl-C stops everything.\n",
        provider = devstack::DASHSCOPE_KEY_PROVIDER,
        identity = stack.identity.url(),
        mcp = stack.mcp.url(),
    );
    if oauth2 {
        println!(
            "OAuth2 MCP server {oauth2_mcp}  (calendar_* tools; requires the {provider} token)\n\
             The first tool turn of a user streams an authorization link (a content with type oauth2_authorization).\n\
             Open it in a browser and click Allow, or from a shell:\n\
             \x20 curl -sL \"<the link>&decision=allow\"     # follows the redirect to /oauth2/callback\n\
             The turn then goes on by itself; the same user's next turns reuse the token.\n",
            oauth2_mcp = stack.mcp_oauth2.url(),
            provider = devstack::OAUTH2_PROVIDER,
        );
    }
}

/// The signals that mean "the developer is done": SIGINT (Ctrl-C), SIGTERM (`kill`, a process manager, an
/// IDE's stop button) and SIGHUP (the terminal closed). Handled alike: left to their default action, any
/// of them would end this process at once and leave the function running, holding its port.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    pub fn listen() -> Result<StopSignals, String> {
        let listen = |kind: SignalKind, name: &str| signal(kind).map_err(|e| format!("listening for {name}: {e}"));
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            hangup: listen(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// The name of the first of them to arrive.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Stops the function because `signal` asked this process to stop.
pub async fn stop_on(signal: &str, child: &mut Child) -> Result<(), String> {
    let status = stop(child).await?;
    // SIGTERM is how FC stops it too, so anything but a clean exit is worth knowing about.
    if !status.success() {
        eprintln!("devstack: on {signal}, the function stopped with {status}");
    }
    Ok(())
}

/// SIGTERM (the function drains and exits), then SIGKILL if it is still there after [`STOP_LIMIT`].
async fn stop(child: &mut Child) -> Result<ExitStatus, String> {
    if let Some(pid) = child.id() {
        let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
        // SAFETY: kill(2) takes plain integers; the pid is our own child, not yet reaped (id() is Some).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
        Ok(exited) => exited.map_err(|e| format!("waiting for the function: {e}")),
        Err(_) => {
            eprintln!("devstack: the function did not stop within {STOP_LIMIT:?}; killing it");
            child.kill().await.map_err(|e| format!("killing the function: {e}"))?;
            child.wait().await.map_err(|e| format!("waiting for the function: {e}"))
        }
    }
}

/// Asks the kernel to send the function SIGTERM when this process dies, for the ways to stop it that no
/// handler sees (SIGKILL, a crash). Linux only: elsewhere there is no such call, and the handled signals
/// remain the way the function is stopped.
pub fn stop_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid(2) is a plain system call without preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: between fork and exec only async-signal-safe calls are allowed: prctl(2) and getppid(2)
        // are system calls, and the closure allocates nothing on its success path.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // This process died between fork and prctl: no signal will come, so do not start at all.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("devstack exited while starting the function"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_env() -> Vec<(&'static str, String)> {
        [
            "AGENT_IDENTITY_DATA_ENDPOINT",
            "AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME",
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "DASHSCOPE_API_KEY",
            "DASHSCOPE_BASE_URL",
            "AI_GATEWAY_MCP_SERVER",
        ]
        .map(|name| (name, format!("stand-in {name}")))
        .to_vec()
    }

    fn kept(real: &[(&str, &str)]) -> Vec<&'static str> {
        let lookup = |name: &str| real.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        stand_in_env(stack_env(), lookup).into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn the_oauth2_server_joins_only_when_asked_and_no_real_mcp_server_is_set() {
        let stack_oauth2 = || vec![("AI_GATEWAY_MCP_SERVER", "a,b".to_owned()), ("OAUTH2_STATE_KEY", "k".to_owned())];
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert!(oauth2_env(stack_oauth2(), 9000, env(&[])).is_empty());
        assert!(
            oauth2_env(stack_oauth2(), 9000, env(&[("DEVSTACK_OAUTH2", "1"), ("AI_GATEWAY_MCP_SERVER", "x")]))
                .is_empty()
        );
        let on = oauth2_env(stack_oauth2(), 9100, env(&[("DEVSTACK_OAUTH2", "1")]));
        assert!(on.contains(&("AGENT_PUBLIC_URL", "http://127.0.0.1:9100".to_owned())), "{on:?}");
        assert!(on.iter().any(|(k, _)| *k == "OAUTH2_STATE_KEY"));
    }

    #[test]
    fn with_nothing_real_every_stand_in_stays() {
        assert_eq!(kept(&[]), stack_env().into_iter().map(|(name, _)| name).collect::<Vec<_>>());
        // Only these variables count as "real": a developer's other settings replace nothing.
        assert_eq!(kept(&[("DASHSCOPE_BASE_URL", "https://x"), ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI")]).len(), 6);
    }

    #[test]
    fn each_real_upstream_replaces_only_its_stand_in() {
        let model = kept(&[("DASHSCOPE_API_KEY", "sk-real")]);
        assert!(!model.iter().any(|name| name.starts_with("DASHSCOPE_")), "{model:?}");
        assert_eq!(model.len(), 4);

        assert!(!kept(&[("AI_GATEWAY_MCP_SERVER", "https://gw/mcp")]).contains(&"AI_GATEWAY_MCP_SERVER"));

        let vault = kept(&[("DASHSCOPE_API_KEY_PROVIDER", "dashscope-key")]);
        assert!(!vault.contains(&"DASHSCOPE_API_KEY") && vault.contains(&"DASHSCOPE_BASE_URL"), "{vault:?}");
        assert_eq!(vault.len(), 5);

        for identity in ["AGENT_IDENTITY_DATA_ENDPOINT", "AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN"] {
            let kept = kept(&[(identity, "real")]);
            assert_eq!(kept, ["DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "AI_GATEWAY_MCP_SERVER"], "{identity}");
        }
    }
}
