//! What the README's quickstart promises: `make dev` (the devstack binary, running the function as its
//! child) prints a curl line, that request streams a tool turn that completes with the tool's output in the
//! answer, and Ctrl-C stops the function along with the stand-ins — as do SIGTERM and SIGHUP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
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

/// devstack on `port` with the function as its child, once it printed the banner's curl line: (devstack,
/// that line, the chat page's URL). Its other output lines keep arriving on nobody's channel.
fn start_devstack(port: u16) -> (Child, String, String) {
    let mut child = Command::new(CARGO)
        .args(["run", "--quiet", "--package", "devstack", "--bin", "devstack", "--", "--function", BIN])
        .env_remove("DASHSCOPE_API_KEY")
        .env_remove("AI_GATEWAY_MCP_SERVER")
        .env_remove("AGENT_IDENTITY_DATA_ENDPOINT")
        .env_remove("AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN")
        .env("FC_CUSTOM_LISTEN_PORT", port.to_string())
        // Any free port: these tests run side by side, and a developer's `make dev` may hold 9001.
        .env("DEVSTACK_CHAT_PORT", "0")
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
    let mut chat = None;
    let process_line = loop {
        // Long enough for cargo to build the devstack binary first when the test run did not.
        let line = rx.recv_timeout(Duration::from_secs(300)).expect("the banner's curl line");
        if line.trim_start().starts_with("chat page") {
            chat = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned);
        }
        if line.contains("curl -N") {
            break line;
        }
    };
    (child, process_line, chat.expect("the banner names the chat page before the curl line"))
}

#[tokio::test]
async fn quickstart_streams_a_tool_turn() {
    let port = free_port();
    let (mut child, process_line, chat) = start_devstack(port);
    // The README shows the same command (with the default port).
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let readme_line = process_line.trim().replace(&format!(":{port}/"), ":9000/");
    assert!(readme.contains(&readme_line), "README lacks the quickstart line:\n{readme_line}");
    assert!(readme.contains("http://127.0.0.1:9001/"), "README lacks the chat page's default URL");

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

    // The chat page is served next to it (its browser test is tests/clients.rs::chat_page_in_a_real_browser).
    let page = client.get(&chat).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<script src=\"chat.js\">"), "{chat} serves the chat page");

    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "dev stack exit: {status:?}");
    // The function was a child of the dev stack: it must be gone too, not left holding the port.
    let still_listening = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(still_listening.is_err(), "the function still listens on {port} after Ctrl-C");
}

/// The processes below `pid` (children, grandchildren…), from `/proc/<pid>/stat`'s parent field.
fn descendants(pid: u32) -> Vec<u32> {
    let parent_of = |entry: std::fs::DirEntry| {
        let child: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so read after the last `)`.
        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        Some((child, ppid))
    };
    let pairs: Vec<(u32, u32)> =
        std::fs::read_dir("/proc").unwrap().filter_map(Result::ok).filter_map(parent_of).collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(pairs.iter().filter(|(_, ppid)| *ppid == parent).map(|(child, _)| *child));
        i += 1;
    }
    found.split_off(1)
}

/// The function binary among `pid`'s descendants.
fn function_under(pid: u32) -> u32 {
    let is_function = |child: &u32| {
        std::fs::read(format!("/proc/{child}/cmdline"))
            .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).next() == Some(BIN.as_bytes()))
    };
    descendants(pid).into_iter().find(is_function).expect("the function runs under devstack")
}

/// A process manager stops devstack with SIGTERM, a closed terminal with SIGHUP: neither may leave the
/// function running (SIGTERM used to end devstack at once, its child orphaned and holding the port).
#[test]
fn sigterm_and_sighup_stop_the_function_too() {
    for signal in ["-TERM", "-HUP"] {
        let port = free_port();
        let (mut devstack, _, _) = start_devstack(port);
        let function = function_under(devstack.id());
        let _ = Command::new("kill").args([signal, &devstack.id().to_string()]).status();
        let status = devstack.wait().unwrap();
        assert!(status.success(), "devstack on {signal}: {status:?}");
        assert!(!std::path::Path::new(&format!("/proc/{function}")).exists(), "the function survived {signal}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "{port} still served after {signal}");
    }
}
