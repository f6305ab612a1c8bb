//! The real binary, started the way FC starts it: through `bootstrap`, configured by environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fc-identity-agent");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A copy of `bootstrap` with the binary next to it, as in FC's `/code`.
fn code_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fc-code-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("bootstrap"), dir.join("bootstrap")).unwrap();
    std::fs::copy(BIN, dir.join("fc-identity-agent")).unwrap();
    dir
}

fn base_env(cmd: &mut Command, port: u16) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .env("AGENT_IDENTITY_WORKLOAD_IDENTITY_NAME", "fc-agent")
        .env("DASHSCOPE_API_KEY", "sk-binary-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

async fn wait_healthy(port: u16) -> Value {
    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    for _ in 0..200 {
        if let Ok(resp) = client.get(format!("http://127.0.0.1:{port}/health")).send().await {
            return resp.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the binary never became healthy on port {port}");
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

async fn wait_exit(mut child: Child) -> std::process::Output {
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    panic!("the binary did not exit after SIGTERM");
}

#[tokio::test]
async fn bootstrap_starts_the_binary_which_serves_and_exits_cleanly_on_sigterm() {
    let dir = code_dir();
    let port = free_port();
    let mut cmd = Command::new(dir.join("bootstrap"));
    base_env(&mut cmd, port);
    let child = cmd.current_dir("/").spawn().unwrap();

    let health = wait_healthy(port).await;
    assert_eq!(health, serde_json::json!({"status":"healthy","runner":"ready"}));

    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    let index: Value = client.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap().json().await.unwrap();
    assert_eq!(index["service"], "fc-identity-agent");
    assert!(index["endpoints"]["process"].is_string());

    let missing = client.get(format!("http://127.0.0.1:{port}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "not_found");

    let wrong = client.post(format!("http://127.0.0.1:{port}/health")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "GET");
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");

    terminate(&child);
    let output = wait_exit(child).await;
    assert!(output.status.success(), "exit status {:?}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines() {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(parsed["level"].is_string());
        assert!(!line.contains("FC Invoke"), "{line}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn request_log_lines_carry_the_fc_request_id() {
    let port = free_port();
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd, port);
    cmd.env("RUST_LOG", "debug");
    let child = cmd.spawn().unwrap();
    wait_healthy(port).await;
    let resp = fc_identity_agent::upstream::client_builder()
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{port}/initialize"))
        .header("x-fc-control-path", "/initialize")
        .header("x-fc-request-id", "req-log-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    terminate(&child);
    let output = wait_exit(child).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hook_line = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "initialize hook")
        .unwrap_or_else(|| panic!("no hook log line in:\n{stdout}"));
    assert_eq!(hook_line["span"]["request_id"], "req-log-42");
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_variable() {
    for (var, value, expected) in [
        ("DASHSCOPE_API_KEY", "", "DASHSCOPE_API_KEY: required but not set"),
        ("FC_CUSTOM_LISTEN_PORT", "99999", "FC_CUSTOM_LISTEN_PORT"),
        ("AGENT_IDENTITY_USER_SOURCE", "cookie", "AGENT_IDENTITY_USER_SOURCE"),
        ("DASHSCOPE_BASE_URL", "not-a-url", "DASHSCOPE_BASE_URL"),
    ] {
        let mut cmd = Command::new(BIN);
        base_env(&mut cmd, free_port());
        cmd.env(var, value);
        let output = cmd.output().unwrap();
        assert!(!output.status.success(), "{var}={value} should fail");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {stdout}");
        assert!(lines[0].contains(expected), "{var}: {}", lines[0]);
    }
}
