//! `make dev`: the stand-ins on localhost and the function as a child process configured for them, so the
//! whole flow runs with no cloud account. Real upstreams can replace stand-ins one at a time (README).
//!
//! ```text
//! devstack [--function PATH] [--mcp-revisions legacy|modern|both] [--mcp-deny TOOL[,TOOL]]
//! ```
//!
//! The function is the binary FC would run, started the way FC starts it (bare, configured by
//! environment); its output is this process's output. However this process is asked to stop (Ctrl-C,
//! SIGTERM, SIGHUP), it stops the function first, then the stand-ins (`dev::StopSignals`).

mod dev;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use devstack::mcp_server::Revisions;
use devstack::{Stack, StackOptions};
use tokio::process::{Child, Command};

const DEFAULT_FUNCTION: &str = "target/debug/fc-identity-agent";
const USAGE: &str = "\
usage: devstack [--function PATH] [--mcp-revisions legacy|modern|both] [--mcp-deny TOOL[,TOOL]]
  --function PATH         the function binary (default target/debug/fc-identity-agent, what `make dev` builds)
  --mcp-revisions WHICH   the MCP revisions the MCP stand-ins speak: legacy (2025: initialize and sessions;
                          the default), modern (2026-07-28 only: server/discover, stateless; initialize is
                          refused) or both (whichever the client uses)
  --mcp-deny TOOL[,TOOL]  tools whose tools/call the MCP stand-ins answer with 403, as an AI Gateway policy
                          denying them to the user would (names as listed, e.g. helloworld)";
/// The function's own default port (config.rs), unless the environment names one.
const DEFAULT_PORT: u16 = 9000;
/// The chat page's port unless `DEVSTACK_CHAT_PORT` names one (0: any free port): next to the function's.
const DEFAULT_CHAT_PORT: u16 = 9001;
/// A debug build starting on a busy machine; beyond this it is broken, not slow.
const START_LIMIT: Duration = Duration::from_secs(30);
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("devstack: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstack: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq)]
struct Args {
    function: PathBuf,
    mcp_revisions: Revisions,
    mcp_deny: HashSet<String>,
}

impl Args {
    /// `None` for `--help`.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            function: PathBuf::from(DEFAULT_FUNCTION),
            mcp_revisions: Revisions::default(),
            mcp_deny: HashSet::new(),
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--function" => parsed.function = args.next().ok_or("--function needs a path")?.into(),
                "--mcp-revisions" => {
                    let which = args.next().ok_or("--mcp-revisions needs legacy, modern or both")?;
                    parsed.mcp_revisions =
                        Revisions::parse(&which).ok_or(format!("--mcp-revisions {which:?}: legacy, modern or both"))?;
                }
                "--mcp-deny" => {
                    let tools = args.next().ok_or("--mcp-deny needs tool names")?;
                    parsed
                        .mcp_deny
                        .extend(tools.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
                }
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(parsed))
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before the child exists: a signal from here on is ours to handle, never the default "die now" that
    // would leave the function running and holding its port.
    let mut stop_signals = dev::StopSignals::listen()?;
    let Args { function, mcp_revisions, mcp_deny } = args;
    let options = StackOptions { mcp_revisions, mcp_deny_tools: mcp_deny, ..StackOptions::default() };
    let stack = Stack::start_with(options).await.map_err(|e| format!("starting the stand-ins: {e}"))?;
    let real = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let port = port(&real)?;
    let chat_port = chat_port(&real)?;
    // Bound before the function starts, so a busy port is said at once rather than after the build's wait.
    let chat = devstack::chat::ChatPage::start(([127, 0, 0, 1], chat_port).into(), &format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("the chat page cannot listen on 127.0.0.1:{chat_port} ({e}); set DEVSTACK_CHAT_PORT"))?;
    let oauth2 = dev::oauth2_env(stack.oauth2_env(), port, real);
    // FC's async invocation stand-in delivers background turns to this function's `/invoke`.
    stack.fc.deliver_to(&format!("http://127.0.0.1:{port}"));
    let mut command = Command::new(&function);
    dev::stop_with_parent(&mut command);
    let mut child = command
        .envs(dev::stand_in_env(stack.env(), real))
        // After the stack's: its AI_GATEWAY_MCP_SERVER (both servers) replaces the first one's.
        .envs(oauth2.iter().cloned())
        // Set, not inherited: the banner and the health check must use the port the function listens on.
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {} ({e}); build it first: cargo build", function.display()))?;
    tokio::select! {
        healthy = wait_healthy(&mut child, port) => healthy?,
        signal = stop_signals.next() => return dev::stop_on(signal, &mut child).await,
    }
    dev::print_banner(&stack, port, &chat.url(), real("DASHSCOPE_API_KEY").is_some(), !oauth2.is_empty());

    tokio::select! {
        signal = stop_signals.next() => dev::stop_on(signal, &mut child).await,
        exited = child.wait() => {
            let status = exited.map_err(|e| format!("waiting for the function: {e}"))?;
            Err(format!("the function exited on its own: {status}"))
        }
    }
}

/// `FC_CUSTOM_LISTEN_PORT`, else `FC_SERVER_PORT`, else 9000: the function's own order (config.rs).
fn port(real: &impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    let Some((name, text)) = ["FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT"].into_iter().find_map(|n| Some((n, real(n)?)))
    else {
        return Ok(DEFAULT_PORT);
    };
    text.trim().parse().map_err(|_| format!("{name}={text:?} is not a port"))
}

/// `DEVSTACK_CHAT_PORT`, else 9001.
fn chat_port(real: &impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    match real("DEVSTACK_CHAT_PORT") {
        None => Ok(DEFAULT_CHAT_PORT),
        Some(text) => text.trim().parse().map_err(|_| format!("DEVSTACK_CHAT_PORT={text:?} is not a port")),
    }
}

/// Polls `GET /health` until it answers 200; fails if the function exits first or takes too long.
async fn wait_healthy(child: &mut Child, port: u16) -> Result<(), String> {
    let client = devstack::client_builder().build().map_err(|e| format!("HTTP client: {e}"))?;
    let url = format!("http://127.0.0.1:{port}/health");
    let began = Instant::now();
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == 200
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the function exited before it was healthy: {status}"));
        }
        if began.elapsed() > START_LIMIT {
            return Err(format!("no 200 from {url} within {START_LIMIT:?}"));
        }
        tokio::time::sleep(HEALTH_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    fn function(list: &[&str]) -> Result<PathBuf, String> {
        args(list).map(|parsed| parsed.expect("not --help").function)
    }

    #[test]
    fn function_path_defaults_to_the_debug_build() {
        assert_eq!(function(&[]), Ok(PathBuf::from(DEFAULT_FUNCTION)));
        assert_eq!(function(&["--function", "target/release/f"]), Ok(PathBuf::from("target/release/f")));
        assert!(args(&["--function"]).is_err());
        assert!(args(&["dev"]).is_err());
        assert_eq!(args(&["--help"]), Ok(None));
    }

    #[test]
    fn mcp_flags_pick_revisions_and_denied_tools() {
        let parsed = args(&[]).unwrap().unwrap();
        assert_eq!((parsed.mcp_revisions, parsed.mcp_deny.len()), (Revisions::Legacy, 0));
        let parsed = args(&["--mcp-revisions", "both", "--mcp-deny", "helloworld, broken"]).unwrap().unwrap();
        assert_eq!(parsed.mcp_revisions, Revisions::Both);
        assert_eq!(parsed.mcp_deny, HashSet::from(["helloworld".to_owned(), "broken".to_owned()]));
        assert_eq!(args(&["--mcp-revisions", "modern"]).unwrap().unwrap().mcp_revisions, Revisions::Modern);
        assert!(args(&["--mcp-revisions", "2026"]).is_err());
        assert!(args(&["--mcp-deny"]).is_err());
        assert!(USAGE.contains("--mcp-revisions") && USAGE.contains("--mcp-deny"));
    }

    #[test]
    fn port_follows_the_function_s_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(port(&env(&[])), Ok(DEFAULT_PORT));
        assert_eq!(port(&env(&[("FC_SERVER_PORT", "8080")])), Ok(8080));
        assert_eq!(port(&env(&[("FC_SERVER_PORT", "8080"), ("FC_CUSTOM_LISTEN_PORT", "9100")])), Ok(9100));
        assert!(port(&env(&[("FC_CUSTOM_LISTEN_PORT", "70000")])).is_err());
        assert_eq!(chat_port(&env(&[])), Ok(DEFAULT_CHAT_PORT));
        assert_eq!(chat_port(&env(&[("DEVSTACK_CHAT_PORT", "0")])), Ok(0));
        assert!(chat_port(&env(&[("DEVSTACK_CHAT_PORT", "chat")])).is_err());
    }
}
