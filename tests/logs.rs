//! What an operator sees with the default log filter: the real binary, no `RUST_LOG`, JSON lines on stdout.
//! A failure the function handles (the gateway refuses a token once; it is refreshed and the turn completes)
//! must not page anyone: no line at ERROR.

mod common;
mod kit;

use devstack::Stack;
use devstack::mcp_server::Fault as McpFault;
use kit::binary::Binary;
use kit::request;

#[tokio::test]
async fn a_handled_mcp_401_logs_no_error_line_at_the_default_filter() {
    let stack = Stack::start().await.expect("stand-ins");
    let function = Binary::start(&stack, &[]).await;
    stack.mcp.inject("initialize", McpFault::Status { status: 401, retry_after: None });
    let client = fc_identity_agent::upstream::client_builder().build().unwrap();
    let body = request("u-logs-401", "Tell me the time").to_string();
    let text = client.post(function.url("/process")).body(body).send().await.unwrap().text().await.unwrap();
    let last = text.lines().rev().find(|l| l.starts_with("data: ")).expect("events");
    assert!(last.contains(r#""status":"completed""#), "{text}");
    assert_eq!(stack.mcp.method_count("initialize"), 2, "refused once, then opened with a fresh token");

    function.terminate();
    let (_, output) = function.wait().await;
    let lines: Vec<&str> = output.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.iter().any(|l| l.contains("refreshing it once")), "the refresh is logged:\n{output}");
    let errors: Vec<&&str> = lines.iter().filter(|l| l.contains(r#""level":"ERROR""#)).collect();
    assert!(errors.is_empty(), "ERROR lines for a handled refusal:\n{errors:#?}");
}
