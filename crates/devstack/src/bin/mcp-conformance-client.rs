//! The function's MCP client (`fc_identity_agent::mcp`) as a client under the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, run by tests/mcp-conformance/run.sh; what each scenario checks is in
//! docs/mcp-conformance.md).
//!
//! ```text
//! MCP_CONFORMANCE_SCENARIO=tools_call MCP_CONFORMANCE_PROTOCOL_VERSION=2025-11-25 \
//!     mcp-conformance-client http://localhost:PORT/mcp
//! ```
//!
//! The suite starts a scenario server, appends its URL to this command and sets `MCP_CONFORMANCE_SCENARIO`,
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (the wire revision the run is for) and, for some scenarios,
//! `MCP_CONFORMANCE_CONTEXT` (JSON). The client does what a turn does, through the module's public API:
//! `McpClient::open` (handshake or discovery, `tools/list`: what `Tools::open` does for a turn, less the one
//! token refresh after a 401, which no scenario here asks for), the tools the model would be offered
//! (`ToolSession::tools`), the `tools/call`s of the scenario, `ToolSession::close`. Only the choice of calls
//! is ours — the model's part: which tool, which arguments — and it comes from the scenario, as in the
//! suite's own example clients. Nothing here works around the module: what the module does not do is what
//! the suite should see.
//!
//! The revision is pinned to `MCP_CONFORMANCE_PROTOCOL_VERSION` (`McpProtocol::Pinned`), so each run tests
//! that wire. `AI_GATEWAY_MCP_PROTOCOL`, when set, wins, parsed as the function parses it: run.sh sets it to
//! `auto` for a second pass that tests the function's default (probe, then the wire the server speaks).
//! The bearer is a fixed string: the scenario servers ask for none (authorization is Agent Identity's part).
//!
//! Logs (`RUST_LOG`, default `info`) go to stderr, which the suite keeps as `stderr.txt`; each call's outcome
//! is a line on stdout. Exits non-zero when opening the tools or any call failed.

use std::process::ExitCode;
use std::time::Duration;

use fc_identity_agent::mcp::{McpClient, McpProtocol, McpSettings, ToolDef};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// Below the suite's per-scenario timeout (run.sh passes 20 s), so that the client ends on its own.
const TURN: Duration = Duration::from_secs(15);
/// One `tools/call`, as `AGENT_TOOL_TIMEOUT_SECS` bounds it in the function.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .try_init();

    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: mcp-conformance-client <server-url>   (MCP_CONFORMANCE_SCENARIO names the scenario)");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let protocol = ["AI_GATEWAY_MCP_PROTOCOL", "MCP_CONFORMANCE_PROTOCOL_VERSION"]
        .into_iter()
        .find_map(|variable| Some((variable, std::env::var(variable).ok()?)));
    let protocol = match protocol {
        None => McpProtocol::Auto,
        Some((variable, value)) => match McpProtocol::parse(&value) {
            Ok(protocol) => protocol,
            Err(reason) => {
                eprintln!("{variable}={value:?}: {reason}");
                return ExitCode::from(2);
            }
        },
    };
    let context: Value = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(raw) => match serde_json::from_str(&raw) {
            Ok(context) => context,
            Err(error) => {
                eprintln!("MCP_CONFORMANCE_CONTEXT is not JSON: {error}");
                return ExitCode::from(2);
            }
        },
        Err(_) => Value::Null,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let failures = runtime.block_on(run(&url, &scenario, protocol, &context));
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Opens the tools, makes the scenario's calls, closes. Returns how many steps failed.
async fn run(url: &str, scenario: &str, protocol: McpProtocol, context: &Value) -> usize {
    let endpoint = match Endpoint::parse(url) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("server URL {url:?}: {error}");
            return 1;
        }
    };
    tracing::info!(scenario, ?protocol, "conformance client");
    let mut settings = McpSettings::new(vec![endpoint], TOOL_TIMEOUT);
    settings.protocol = protocol;
    let client = match McpClient::new(settings) {
        Ok(client) => client,
        Err(error) => {
            println!("open: FAILED {error}");
            return 1;
        }
    };
    let bearer = Secret::new("conformance-client-token");
    let tools = match client.open(&bearer, Instant::now() + TURN).await {
        Ok(tools) => tools,
        Err(error) => {
            println!("open: FAILED {error}");
            return 1;
        }
    };
    let offered = tools.tools().to_vec();
    let revisions: Vec<String> = tools.protocol_versions().iter().map(ToString::to_string).collect();
    println!("open: revision {}; {} tool(s) offered: {}", revisions.join(", "), offered.len(), names(&offered));

    let mut failures = 0;
    for (name, arguments) in calls(scenario, context, &offered) {
        match tools.call(&name, arguments.clone()).await {
            Ok(output) => {
                let kind = if output.is_error { "tool error" } else { "ok" };
                println!("call {name} {arguments}: {kind}: {}", output.text);
            }
            Err(error) => {
                failures += 1;
                println!("call {name} {arguments}: FAILED {error}");
            }
        }
    }
    tools.close().await;
    failures
}

/// The `tools/call`s a scenario asks of a client (the model's part of a turn), in order. Tool names are the
/// servers' (all of these are already model-safe, so the model-facing name is the same).
fn calls(scenario: &str, context: &Value, offered: &[ToolDef]) -> Vec<(String, Value)> {
    let call = |name: &str, arguments: Value| (name.to_owned(), arguments);
    match scenario {
        "tools_call" => vec![call("add_numbers", json!({"a": 2, "b": 3}))],
        // The server closes the call's SSE stream after a priming event; the result comes on the resumed GET.
        "sse-retry" => vec![call("test_reconnection", json!({}))],
        "http-standard-headers" => {
            vec![call("test_headers", json!({})), call("my-hyphenated-tool", json!({}))]
        }
        // The suite names the calls and their arguments (every Mcp-Param-* encoding case, a null value).
        "http-custom-headers" => context["toolCalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some(call(c["name"].as_str()?, c.get("arguments").cloned().unwrap_or(json!({})))))
            .collect(),
        // Like a model, call every tool the module offers: one with an invalid `x-mcp-header` that was not
        // excluded gets called, and the suite sees it. Arguments: a value for each required property.
        "http-invalid-tool-headers" => offered.iter().map(|tool| call(&tool.name, arguments_for(tool))).collect(),
        // MRTR (SEP-2322): a tool answering `input_required` with requestState, an unrelated call, one
        // without requestState, one whose result has no resultType (the suite's example client's order).
        "sep-2322-client-request-state" => {
            ["test_mrtr_echo_state", "test_mrtr_unrelated", "test_mrtr_no_state", "test_mrtr_no_result_type"]
                .into_iter()
                .map(|name| call(name, json!({})))
                .collect()
        }
        // The focal tool's inputSchema as the module holds it (what the model is given), echoed back.
        "json-schema-2020-12-preservation" => {
            match offered.iter().find(|tool| tool.name == "json_schema_2020_12_tool") {
                Some(tool) => {
                    vec![call("json_schema_echo", json!({"schema": Value::Object((*tool.input_schema).clone())}))]
                }
                None => Vec::new(),
            }
        }
        // Not the suite's: the reference TypeScript server (`@modelcontextprotocol/server-everything`, run.sh
        // starts it). Text, a sum, structured content, an image and resource links: every content kind the
        // module turns into the model's text.
        "server-everything" => vec![
            call("echo", json!({"message": "hello from fc-identity-agent"})),
            call("get-sum", json!({"a": 2, "b": 3})),
            call("get-structured-content", json!({"location": "New York"})),
            call("get-tiny-image", json!({})),
            call("get-resource-links", json!({"count": 2})),
        ],
        // initialize, request-metadata, json-schema-ref-no-deref: opening (and listing) is the whole test.
        _ => Vec::new(),
    }
}

/// A value for each required property of a tool's input schema, by its declared type.
fn arguments_for(tool: &ToolDef) -> Value {
    let schema = &*tool.input_schema;
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut arguments = Map::new();
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let kind = properties.and_then(|p| p.get(name)).and_then(|p| p.get("type")).and_then(Value::as_str);
        let value = match kind {
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            Some("object") => json!({}),
            Some("array") => json!([]),
            Some("null") => Value::Null,
            _ => json!("us-west1"),
        };
        arguments.insert(name.to_owned(), value);
    }
    Value::Object(arguments)
}

fn names(tools: &[ToolDef]) -> String {
    tools.iter().map(|tool| tool.name.as_str()).collect::<Vec<_>>().join(", ")
}
