//! What the README's quickstart promises: `make dev` (the devstack binary, running the function as its
//! child) prints a curl line, that request streams a tool turn that completes with the tool's output in the
//! answer, and Ctrl-C stops the function along with the stand-ins.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fc-identity-agent");
/// The devstack binary is another package's, so cargo cannot hand its path to this test; it is run the way
/// `make dev` runs it.
const CARGO: &str = env!("CARGO");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `curl -N ... -d '<body>'` line of the banner: (url, body).
fn curl_line(line: &str) -> (String, String) {
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let body = line.split_once("-d '").unwrap().1.trim_end().trim_end_matches('\'').to_owned();
    (url, body)
}

#[tokio::test]
async fn quickstart_streams_a_tool_turn() {
    let port = free_port();
    let mut child = Command::new(CARGO)
        .args(["run", "--quiet", "--package", "devstack", "--", "--function", BIN])
        .env_remove("DASHSCOPE_API_KEY")
        .env_remove("AI_GATEWAY_MCP_SERVER")
        .env_remove("AGENT_IDENTITY_DATA_ENDPOINT")
        .env_remove("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN")
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let process_line = loop {
        // Long enough for cargo to build the devstack binary first when the test run did not.
        let line = rx.recv_timeout(Duration::from_secs(300)).expect("the banner's curl line");
        if line.contains("curl -N") {
            break line;
        }
    };
    // The README shows the same command (with the default port).
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let readme_line = process_line.trim().replace(&format!(":{port}/"), ":9000/");
    assert!(readme.contains(&readme_line), "README lacks the quickstart line:\n{readme_line}");

    let (url, body) = curl_line(&process_line);
    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    let mut response = client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut chunks = 0;
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(chunks > 1, "the turn arrived in one piece, not streamed");
    let events: Vec<Value> =
        text.split("\n\n").filter(|f| !f.is_empty()).map(|f| serde_json::from_str(&f[6..]).unwrap()).collect();
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    let output = last["output"].as_array().unwrap();
    let tool_output: Value = serde_json::from_str(output[1]["content"][0]["data"]["output"].as_str().unwrap()).unwrap();
    let answer = output[2]["content"][0]["text"].as_str().unwrap();
    assert!(answer.contains(tool_output[0]["text"].as_str().unwrap()), "{answer}");

    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "dev stack exit: {status:?}");
    // The function was a child of the dev stack: it must be gone too, not left holding the port.
    let still_listening = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(still_listening.is_err(), "the function still listens on {port} after Ctrl-C");
}
