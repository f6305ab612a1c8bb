//! The official client SDKs our users run, against the real function binary with the devstack stand-ins.
//! Each SDK is pinned in `tests/clients/requirements-<name>.txt` and installed from PyPI into its own
//! virtual environment under `target/clients/` (built once, rebuilt when the requirements change); its
//! checks are a Python script in `tests/clients/`, which exits non-zero naming the check that broke. This
//! file starts the function and runs each script, asserting its exit status. One function per SDK.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use std::path::PathBuf;
use std::time::Duration;

use devstack::mcp_server::Revisions;
use devstack::mcp_server::{McpStandIn, StandInOptions as McpOptions};
use devstack::{Stack, StackOptions};
use kit::binary::Binary;
use kit::venv::{clients_dir, text, venv};

/// A keep-alive after a second of quiet, so each script's slow tool (`sleep 3.5 seconds`) makes its
/// stream carry three or more, which the official client must read past.
const HEARTBEAT: (&str, &str) = ("STREAM_HEARTBEAT_SECS", "1");

/// A liveness bound for one script (venv building excluded), not a timing assertion.
const SCRIPT_GUARD: Duration = Duration::from_secs(180);

/// Runs `tests/clients/<script>` with the venv's Python against `binary`, asserting it passes.
async fn run_script(python: PathBuf, script: &str, binary: &Binary, env: &[(&str, &str)]) {
    let mut command = tokio::process::Command::new(python);
    command
        .arg(clients_dir().join(script))
        .env("FUNCTION_URL", binary.url(""))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_GUARD, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} hung"))
        .expect("the script starts");
    assert!(output.status.success(), "{script} failed:\n{}", text(&output));
}

/// The same function on `stack` whose only MCP server takes the stand-in provider's OAuth2 token, for each
/// script's consent check (`CONSENT_FUNCTION_URL`): it polls fast and long enough for a script's "click".
async fn consent_binary(stack: &Stack, extra: &[(&str, &str)]) -> Binary {
    let oauth2 = stack.mcp_oauth2.url();
    let grant = format!("{oauth2} {} {}", devstack::OAUTH2_PROVIDER, devstack::OAUTH2_SCOPES);
    let mut env = vec![
        ("AI_GATEWAY_MCP_SERVER", oauth2),
        ("AI_GATEWAY_MCP_OAUTH2", grant.as_str()),
        ("OAUTH2_STATE_KEY", "a-client-test-oauth2-state-key-0123456789"),
        ("OAUTH2_POLL_INTERVAL_MS", "25"),
        ("OAUTH2_POLL_LIMIT", "2400"),
    ];
    env.extend_from_slice(extra);
    Binary::start(stack, &env).await
}

/// A dev stack whose MCP server speaks 2026-07-28, where `book_table` asks the user (issue 26, questions).
async fn asking_stack() -> Stack {
    Stack::start_with(StackOptions { mcp_revisions: Revisions::Modern, ..StackOptions::default() }).await.unwrap()
}

/// An A2A SDK's script: the card, message/send, message/stream, tasks/get, tasks/cancel on a running
/// turn, a failing model, the JSON-RPC errors, an approval and a tool's question each answered in their
/// `input-required` task. The cancel must stop the model's stream, not just the task.
async fn a2a_client(requirements: &'static str, script: &str) {
    let python = tokio::task::spawn_blocking(move || venv(requirements)).await.unwrap();
    let stack = Stack::start().await.unwrap();
    // Keep-alives every second: each script's slow tool (3.5 s) makes the stream carry several.
    let binary = Binary::start(&stack, &[("AGENT_NAME", "Client Probe"), HEARTBEAT]).await;
    let consent = consent_binary(&stack, &[("AGENT_NAME", "Client Probe")]).await;
    let approving = Binary::start(&stack, &[("AGENT_NAME", "Client Probe"), ("TOOL_APPROVAL", "helloworld")]).await;
    let modern = asking_stack().await;
    let asking = Binary::start(&modern, &[("AGENT_NAME", "Client Probe")]).await;
    let env = [
        ("AGENT_NAME", "Client Probe"),
        ("CONSENT_FUNCTION_URL", &consent.url("")),
        ("APPROVAL_FUNCTION_URL", &approving.url("")),
        ("QUESTION_FUNCTION_URL", &asking.url("")),
    ];
    run_script(python, script, &binary, &env).await;
    assert!(
        stack.dashscope.wait_cancelled(1, Duration::from_secs(10)).await,
        "tasks/cancel did not stop the model's stream"
    );
}

#[tokio::test]
async fn a2a_sdk_0_3() {
    a2a_client("a2a03", "a2a03.py").await;
}

#[tokio::test]
async fn a2a_sdk_1() {
    a2a_client("a2a1", "a2a1.py").await;
}

/// An A2A SDK's background-task script (`a2a03_background.py`, `a2a1_background.py`): two instances of the
/// function on one real redis-server, tasks sent non-blocking to the first and delivered by the FC stand-in
/// to the second; resubscribed, read and cancelled on either. The cancel must stop the model's stream on the
/// instance running it, not just the task.
async fn a2a_background(requirements: &'static str, script: &str) {
    let python = tokio::task::spawn_blocking(move || venv(requirements)).await.unwrap();
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let stack = Stack::start().await.unwrap();
    let env = [("SESSION_STORE", url.as_str()), HEARTBEAT];
    let first = Binary::start(&stack, &env).await;
    let second = Binary::start(&stack, &env).await;
    stack.fc.deliver_to(&second.url(""));
    run_script(python, script, &first, &[("OTHER_FUNCTION_URL", &second.url(""))]).await;
    assert!(
        stack.dashscope.wait_cancelled(1, Duration::from_secs(10)).await,
        "the background task's cancel did not stop the model's stream"
    );
    let deliveries = stack.fc.deliveries();
    assert_eq!(deliveries.len(), 3, "each non-blocking send went through FC's async invocation once");
    assert!(deliveries.iter().all(|d| d.succeeded == Some(true) && d.attempts == 1), "{deliveries:?}");
}

#[tokio::test]
async fn a2a_sdk_0_3_background_tasks_resubscribe() {
    a2a_background("a2a03", "a2a03_background.py").await;
}

#[tokio::test]
async fn a2a_sdk_1_background_tasks_subscribe() {
    a2a_background("a2a1", "a2a1_background.py").await;
}

/// AG-UI with a reasoning model, so reasoning events are in the stream too; the approval interrupt and its
/// resume on a function with `TOOL_APPROVAL=helloworld`.
#[tokio::test]
async fn ag_ui_protocol() {
    let python = tokio::task::spawn_blocking(|| venv("agui")).await.unwrap();
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[("DASHSCOPE_ENABLE_THINKING", "true"), HEARTBEAT]).await;
    let consent = consent_binary(&stack, &[("DASHSCOPE_ENABLE_THINKING", "true")]).await;
    let approving = Binary::start(&stack, &[("TOOL_APPROVAL", "helloworld")]).await;
    let modern = asking_stack().await;
    let asking = Binary::start(&modern, &[]).await;
    let env = [
        ("CONSENT_FUNCTION_URL", consent.url("")),
        ("APPROVAL_FUNCTION_URL", approving.url("")),
        ("QUESTION_FUNCTION_URL", asking.url("")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(name, url)| (*name, url.as_str())).collect();
    run_script(python, "agui.py", &binary, &env).await;
}

/// The official `openai` SDK on the OpenAI faces (`openai_faces.py`): Responses streamed (every event
/// parsed into the SDK's types, strictly), through the `stream()` helper and not streamed, a replayed
/// conversation, a throttled model and an MCP 401, Chat Completions streamed and not, the model list. The
/// SDK's `api_key` is the end user's JWT (it is sent as the bearer), so every WAT is minted for that user.
#[tokio::test]
async fn openai_sdk() {
    let python = tokio::task::spawn_blocking(|| venv("openai")).await.unwrap();
    // No DASHSCOPE_ALLOWED_MODELS: the SDK names the configured model, which needs no allow-list entry.
    let env = [("DASHSCOPE_ENABLE_THINKING", "true")];
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[env[0], HEARTBEAT]).await;
    let mut refusing_stack = Stack::start().await.unwrap();
    refusing_stack.mcp = McpStandIn::start(McpOptions::new(|_| false)).await.unwrap();
    let refusing = Binary::start(&refusing_stack, &env).await;
    let consent = consent_binary(&stack, &env).await;
    let approving =
        Binary::start(&stack, &[("DASHSCOPE_ENABLE_THINKING", "true"), ("TOOL_APPROVAL", "helloworld")]).await;
    let jwt = user_jwt("openai-user");
    let script_env = [
        ("REFUSING_FUNCTION_URL", refusing.url("")),
        ("APPROVAL_FUNCTION_URL", approving.url("")),
        ("USER_JWT", jwt),
        ("MODEL", "qwen-max".into()),
        ("CONSENT_FUNCTION_URL", consent.url("")),
    ];
    let script_env: Vec<(&str, &str)> = script_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_script(python, "openai_faces.py", &binary, &script_env).await;
    let minted = stack.identity.issued_tokens();
    assert!(!minted.is_empty(), "the tool turns fetched WATs");
    let consenting = |t: &String| stack.identity.subject_of(t).is_some_and(|s| s.starts_with("openai-consent-"));
    let users: Vec<String> =
        minted.iter().filter(|t| !consenting(t)).filter_map(|t| stack.identity.subject_of(t)).collect();
    assert!(!users.is_empty() && users.iter().all(|u| u == "openai-user"), "{users:?}");
    assert_eq!(stack.identity.oauth2_completions().len(), 2, "the two consent checks each consented once");
}

/// The AgentScope runtime 1.0.0 (`agentscope_sessions.py`) on the same real redis-server as the function:
/// with its own `RedisSessionHistoryService`, `Message` model, AgentScope memory adapter and DashScope
/// formatter it reads what two `/process` turns stored, then stores a tool turn the seed's way, which the
/// function continues. What the function sent the model for that turn is checked here.
#[tokio::test]
async fn agentscope_runtime_shares_sessions_through_redis() {
    let python = tokio::task::spawn_blocking(|| venv("agentscope")).await.unwrap();
    let redis = redis_server::RedisServer::start().await;
    let url = redis.url();
    let stack = Stack::start().await.unwrap();
    let binary = Binary::start(&stack, &[("SESSION_STORE", &url), ("TOOL_APPROVAL", "helloworld"), HEARTBEAT]).await;
    let modern = asking_stack().await;
    let asking = Binary::start(&modern, &[("SESSION_STORE", &url)]).await;
    let script_env = [("REDIS_URL", url.as_str()), ("QUESTION_FUNCTION_URL", &asking.url(""))];
    run_script(python, "agentscope_sessions.py", &binary, &script_env).await;
    let requests = stack.dashscope.requests();
    let carries_theirs = |body: &serde_json::Value| {
        body["messages"].as_array().is_some_and(|m| m.iter().any(|m| m["tool_call_id"] == "call_py_1"))
    };
    let continued = requests.iter().find(|r| carries_theirs(&r.body)).expect("a model call carried the Python turn");
    let messages = continued.body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant", "user"], "{messages:?}");
    assert_eq!(messages[1]["content"], "Tell me the time in UTC");
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_py_1");
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "getutctime");
    assert_eq!(messages[3]["content"], "2026-01-01T00:00:00Z", "the tool result's text, not its blocks");
    assert_eq!(messages[4]["content"], "The current UTC time is 2026-01-01T00:00:00Z.");
    assert_eq!(messages[5]["content"], "And once more, please");
}

/// A JWT the Agent Identity stand-in reads (it checks claims, not the signature).
fn user_jwt(sub: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    let claims =
        b64(serde_json::json!({"sub": sub, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// The dev stack's chat page in a real browser (`chat_page.py`): Debian's headless Chromium driven by
/// Selenium against `devstack` itself, started as `make dev` starts it (the function as its child, the page
/// on `DEVSTACK_CHAT_PORT`), with the consent stand-in (`DEVSTACK_OAUTH2`), a reasoning model, `broken`
/// denied by the gateway and `TOOL_APPROVAL=helloworld` (Approve and Decline clicked). Without chromium and chromium-driver installed (`.ci/run` installs
/// them) the script fails; it never skips. `CHAT_SCREENSHOT=<path>` also writes the README's picture there.
#[tokio::test]
async fn chat_page_in_a_real_browser() {
    let python = tokio::task::spawn_blocking(|| venv("browser")).await.unwrap();
    let (devstack, chat_url) = tokio::task::spawn_blocking(start_devstack_for_the_page).await.unwrap();
    let mut command = tokio::process::Command::new(python);
    command.arg(clients_dir().join("chat_page.py")).env("CHAT_URL", &chat_url).stdin(std::process::Stdio::null());
    if let Ok(path) = std::env::var("CHAT_SCREENSHOT") {
        command.env("SCREENSHOT", path);
    }
    let output = tokio::time::timeout(SCRIPT_GUARD, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("chat_page.py hung"))
        .expect("the script starts");
    let _ = std::process::Command::new("kill").args(["-INT", &devstack.0.id().to_string()]).status();
    assert!(output.status.success(), "chat_page.py failed:\n{}", text(&output));
}

/// Stops devstack (and with it the function) however the test ends.
struct Devstack(std::process::Child);

impl Drop for Devstack {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo run -p devstack` as `make dev` runs it (the devstack binary is another package's, so cargo cannot
/// hand this test its path), on free ports, the function's output thrown away; and the chat page's URL
/// from its banner.
fn start_devstack_for_the_page() -> (Devstack, String) {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let function = kit::binary::BIN;
    let mut child = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "devstack", "--bin", "devstack", "--"])
        // 2026-07-28 MCP stand-ins: their `book_table` and `sign_terms` ask the user (the page's questions).
        .args(["--function", function, "--mcp-deny", "broken", "--mcp-revisions", "modern"])
        // Nothing of the developer's real services: the stand-ins answer everything.
        .env_remove("DASHSCOPE_API_KEY")
        .env_remove("DASHSCOPE_API_KEY_PROVIDER")
        .env_remove("AI_GATEWAY_MCP_SERVER")
        .env_remove("AGENT_IDENTITY_DATA_ENDPOINT")
        .env_remove("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN")
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .env("DEVSTACK_CHAT_PORT", "0")
        .env("DEVSTACK_OAUTH2", "1")
        .env("DASHSCOPE_ENABLE_THINKING", "true")
        // The function inherits devstack's environment: its calls to helloworld wait for the page's Approve.
        .env("TOOL_APPROVAL", "helloworld")
        // The function asks the vault again this soon after the click, so the turn goes on at once.
        .env("OAUTH2_POLL_INTERVAL_MS", "50")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo runs devstack");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let devstack = Devstack(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // What cargo or devstack said, should the banner never come.
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    loop {
        // Long enough for cargo to build the devstack binary first when the test run did not.
        let Ok(line) = rx.recv_timeout(Duration::from_secs(300)) else {
            drop(devstack);
            panic!("devstack printed no chat page line:\n{}", errors.join().unwrap_or_default());
        };
        if line.trim_start().starts_with("chat page") {
            let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("the page's URL");
            return (devstack, url.to_owned());
        }
    }
}
