//! The MCP tool client against the rmcp stand-in, over real sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use devstack::mcp_server::{McpStandIn, SessionMode, StandInOptions};
use fc_identity_agent::mcp::{McpClient, McpError, McpSettings, ToolSession};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use serde_json::json;
use tokio::time::Instant;

const TOKEN: &str = "wat-SENTINEL-7f3a9c";
const ONE_TOOL_TURN: [&str; 4] = ["initialize", "notifications/initialized", "tools/list", "tools/call"];

fn endpoint(url: &str) -> Endpoint {
    Endpoint::parse(url).expect("a valid endpoint")
}

fn client(servers: &[&McpStandIn], tool_timeout: Duration) -> McpClient {
    let endpoints = servers.iter().map(|s| endpoint(s.url())).collect();
    McpClient::new(McpSettings::new(endpoints, tool_timeout)).expect("valid settings")
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn start(options: StandInOptions) -> McpStandIn {
    McpStandIn::start(options).await.expect("stand-in starts")
}

async fn open(client: &McpClient, token: &str) -> Result<ToolSession, McpError> {
    client.open(&Secret::new(token), deadline()).await
}

fn tool_names(session: &ToolSession) -> Vec<&str> {
    session.tools().iter().map(|t| t.name.as_str()).collect()
}

fn assert_no_sentinel(error: &McpError) {
    let shown = format!("{error} | {error:?}");
    assert!(!shown.contains(TOKEN), "bearer leaked: {shown}");
}

/// One session: list, call, close — and exactly the four requests of a one-tool turn at the server.
async fn one_tool_turn(options: StandInOptions, negotiated: &str) {
    let server = start(options).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.expect("session opens");

    let mut names = tool_names(&session);
    names.sort_unstable();
    assert_eq!(names, ["broken", "getutctime", "helloworld", "rendezvous", "sleep"]);
    let hello = session.tools().iter().find(|t| t.name == "helloworld").unwrap();
    assert_eq!(hello.input_schema["properties"]["name"]["type"], "string", "{:?}", hello.input_schema);
    assert!(!hello.description.is_empty());

    let out = session.call("helloworld", json!({"name": "Ada"})).await.expect("call succeeds");
    assert_eq!(out.text, "Hello, Ada!");
    assert!(!out.is_error);
    let content = serde_json::to_value(&out.content).unwrap();
    assert_eq!(content, json!([{"type": "text", "text": "Hello, Ada!"}]));

    session.close().await;
    assert_eq!(server.methods(), ONE_TOOL_TURN);
    assert_eq!(server.protocol_versions(), [negotiated; 3]);
}

#[tokio::test]
async fn stateful_server_one_tool_turn_takes_four_requests() {
    one_tool_turn(StandInOptions::accepting(TOKEN), "2025-11-25").await;
}

#[tokio::test]
async fn stateless_json_server_one_tool_turn_takes_four_requests() {
    one_tool_turn(
        StandInOptions { sessions: SessionMode::StatelessJson, ..StandInOptions::accepting(TOKEN) },
        "2025-11-25",
    )
    .await;
}

#[tokio::test]
async fn server_limited_to_2025_03_26_works() {
    one_tool_turn(StandInOptions { only_2025_03_26: true, ..StandInOptions::accepting(TOKEN) }, "2025-03-26").await;
}

#[tokio::test]
async fn stateful_session_is_reused_for_every_call() {
    let server = start(StandInOptions::accepting(TOKEN)).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    let out = session.call("getutctime", json!({})).await.unwrap();
    assert!(out.text.ends_with('Z'), "{}", out.text);
    session.call("helloworld", json!({"name": "Bo"})).await.unwrap();
    session.close().await;

    let sessions = server.session_request_counts();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (id, count) = sessions.iter().next().unwrap();
    assert!(!id.is_empty(), "stateful server must assign a session id");
    assert_eq!(*count, 5);
}

#[tokio::test]
async fn delete_on_close_is_opt_in() {
    let server = start(StandInOptions::accepting(TOKEN)).await;
    let settings = McpSettings {
        delete_session_on_close: true,
        ..McpSettings::new(vec![endpoint(server.url())], Duration::from_secs(10))
    };
    let client = McpClient::new(settings).unwrap();
    let session = open(&client, TOKEN).await.unwrap();
    session.call("getutctime", json!(null)).await.unwrap();
    session.close().await;
    assert_eq!(server.methods(), [&ONE_TOOL_TURN[..], &["DELETE"]].concat());
}

#[tokio::test]
async fn no_servers_means_an_empty_session_and_no_requests() {
    let client = McpClient::new(McpSettings::new(Vec::new(), Duration::from_secs(1))).unwrap();
    assert!(!client.has_servers());
    let session = open(&client, TOKEN).await.unwrap();
    assert!(session.tools().is_empty());
    let err = session.call("anything", json!({})).await.unwrap_err();
    assert!(matches!(err, McpError::UnknownTool { .. }), "{err:?}");
    session.close().await;
}

#[tokio::test]
async fn two_servers_merge_and_colliding_names_map_back() {
    let first = start(StandInOptions::accepting(TOKEN)).await;
    let second =
        start(StandInOptions { sessions: SessionMode::StatelessJson, ..StandInOptions::accepting(TOKEN) }).await;
    let client = client(&[&first, &second], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();

    let mut names = tool_names(&session);
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "broken",
            "broken_1",
            "getutctime",
            "getutctime_1",
            "helloworld",
            "helloworld_1",
            "rendezvous",
            "rendezvous_1",
            "sleep",
            "sleep_1"
        ]
    );

    // One listing per server, in server order, each with its own tools under their model-facing names;
    // both stand-ins are at `…/mcp`, so the second label is made unique like a tool name.
    let listings = session.listings();
    let labels: Vec<&str> = listings.iter().map(|l| l.server.as_str()).collect();
    assert_eq!(labels, ["mcp", "mcp_1"]);
    let mut second_names: Vec<&str> = listings[1].tools.iter().map(|t| t.name.as_str()).collect();
    second_names.sort_unstable();
    assert_eq!(second_names, ["broken_1", "getutctime_1", "helloworld_1", "rendezvous_1", "sleep_1"]);
    assert_eq!(listings[0].tools.len() + listings[1].tools.len(), session.tools().len());

    assert_eq!(session.call("helloworld", json!({"name": "A"})).await.unwrap().text, "Hello, A!");
    assert_eq!(first.method_count("tools/call"), 1);
    assert_eq!(second.method_count("tools/call"), 0);
    assert_eq!(session.call("helloworld_1", json!({"name": "B"})).await.unwrap().text, "Hello, B!");
    assert_eq!(first.method_count("tools/call"), 1);
    assert_eq!(second.method_count("tools/call"), 1);
    session.close().await;
}

#[tokio::test]
async fn invalid_tool_names_are_sanitized_and_called_by_their_original_name() {
    let server = start(StandInOptions { tool_prefix: "my.tools/".into(), ..StandInOptions::accepting(TOKEN) }).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    let mut names = tool_names(&session);
    names.sort_unstable();
    assert_eq!(
        names,
        ["my_tools_broken", "my_tools_getutctime", "my_tools_helloworld", "my_tools_rendezvous", "my_tools_sleep"]
    );

    let out = session.call("my_tools_helloworld", json!({"name": "Cy"})).await.unwrap();
    assert_eq!(out.text, "Hello, Cy!");
    let err = session.call("my.tools/helloworld", json!({"name": "Cy"})).await.unwrap_err();
    assert!(matches!(err, McpError::UnknownTool { .. }), "{err:?}");
    session.close().await;
}

#[tokio::test]
async fn is_error_result_is_an_ok_output_flagged_as_error() {
    let server = start(StandInOptions::accepting(TOKEN)).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    let out = session.call("broken", json!({})).await.expect("isError is not a call failure");
    assert!(out.is_error);
    assert_eq!(out.text, "the broken tool always fails");
    session.close().await;
}

#[tokio::test]
async fn bad_arguments_come_back_as_a_tool_error_for_the_model() {
    let server = start(StandInOptions::accepting(TOKEN)).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    let out = session.call("helloworld", json!({"nom": 1})).await.unwrap();
    assert!(out.is_error, "{out:?}");
    assert!(out.text.contains("name"), "{out:?}");
    let err = session.call("helloworld", json!("not an object")).await.unwrap_err();
    assert!(matches!(err, McpError::InvalidArguments { .. }), "{err:?}");
    session.close().await;
}

#[tokio::test]
async fn json_rpc_error_is_a_protocol_error_naming_the_server() {
    let server = start(StandInOptions { phantom_tool: true, ..StandInOptions::accepting(TOKEN) }).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    let err = session.call("phantom", json!({})).await.unwrap_err();
    assert_no_sentinel(&err);
    match &err {
        McpError::Protocol { server: shown, code, .. } => {
            assert_eq!(*code, -32602);
            assert_eq!(shown, server.url());
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    session.close().await;
}

#[tokio::test]
async fn tools_list_follows_cursors() {
    let server =
        start(StandInOptions { page_size: Some(4), phantom_tool: true, ..StandInOptions::accepting(TOKEN) }).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    assert_eq!(session.tools().len(), 6);
    assert_eq!(server.method_count("tools/list"), 2);
    session.close().await;
}

#[tokio::test]
async fn wrong_bearer_is_unauthorized_and_forbidden_token_is_forbidden() {
    let server = start(StandInOptions {
        forbidden_marker: Some("denied".into()),
        ..StandInOptions::accepting("the-right-token")
    })
    .await;
    let client = client(&[&server], Duration::from_secs(10));

    let err = open(&client, TOKEN).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert!(matches!(&err, McpError::Unauthorized { server: s } if s == server.url()), "{err:?}");
    assert_no_sentinel(&err);

    let forbidden_token = format!("{TOKEN}-denied");
    let err = open(&client, &forbidden_token).await.unwrap_err();
    assert!(matches!(err, McpError::Forbidden { .. }), "{err:?}");
    assert!(!err.is_unauthorized() && err.is_auth_failure());
    assert_no_sentinel(&err);

    // Both rejections happen at `initialize`; nothing else is attempted.
    assert_eq!(server.methods(), ["initialize", "initialize"]);
}

#[tokio::test]
async fn token_rejected_mid_session_makes_the_call_unauthorized() {
    let accepting = Arc::new(AtomicBool::new(true));
    let gate = accepting.clone();
    let server = start(StandInOptions::new(move |token| token == TOKEN && gate.load(Ordering::SeqCst))).await;
    let client = client(&[&server], Duration::from_secs(10));
    let session = open(&client, TOKEN).await.unwrap();
    accepting.store(false, Ordering::SeqCst);
    let err = session.call("getutctime", json!({})).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert_no_sentinel(&err);
    session.close().await;
}

#[tokio::test]
async fn two_concurrent_calls_on_one_session_meet() {
    for sessions in [SessionMode::Stateful, SessionMode::StatelessJson] {
        let server = start(StandInOptions { sessions, ..StandInOptions::accepting(TOKEN) }).await;
        let client = client(&[&server], Duration::from_secs(10));
        let session = open(&client, TOKEN).await.unwrap();
        let (a, b) = tokio::join!(session.call("rendezvous", json!({})), session.call("rendezvous", json!({})));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.text.as_str(), a.is_error), ("met", false), "{sessions:?}");
        assert_eq!((b.text.as_str(), b.is_error), ("met", false), "{sessions:?}");
        session.close().await;
    }
}

#[tokio::test]
async fn per_call_timeout_fails_the_call_and_cancels_the_request() {
    for sessions in [SessionMode::Stateful, SessionMode::StatelessJson] {
        let server = start(StandInOptions { sessions, ..StandInOptions::accepting(TOKEN) }).await;
        let client = client(&[&server], Duration::from_millis(300));
        let session = open(&client, TOKEN).await.unwrap();

        // A lone rendezvous waits for a partner that never comes.
        let err = session.call("rendezvous", json!({})).await.unwrap_err();
        assert!(matches!(&err, McpError::Timeout { operation: "tools/call", .. }), "{err:?}");
        assert_no_sentinel(&err);
        // The abandoned HTTP response is dropped, which the server sees (bounded wait, no timing assertion).
        // The server learns that the call was abandoned: with a session rmcp says so in
        // `notifications/cancelled` (the server then ends the response stream); without one the client drops
        // the pending HTTP response, which the server sees as a closed connection.
        match sessions {
            SessionMode::Stateful => wait_until(|| server.method_count("notifications/cancelled") == 1).await,
            SessionMode::StatelessJson => wait_until(|| server.cancelled_count() == 1).await,
        }

        // The session is still usable after a timed-out call.
        assert_eq!(session.call("helloworld", json!({"name": "D"})).await.unwrap().text, "Hello, D!");
        session.close().await;
    }
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error_without_secrets() {
    // Bound but never listening: connections are refused, and no stand-in of a parallel test can be given
    // the port (a released port can be, and would then answer).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/mcp?key=QUERY-SECRET", socket.local_addr().unwrap());
    let client = McpClient::new(McpSettings::new(vec![endpoint(&url)], Duration::from_secs(1))).unwrap();
    let err = open(&client, TOKEN).await.unwrap_err();
    assert!(matches!(err, McpError::Transport { .. }), "{err:?}");
    assert_no_sentinel(&err);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("QUERY-SECRET"), "{shown}");
    assert!(shown.contains("/mcp"), "names the server: {shown}");
    let settings = McpSettings::new(vec![endpoint("http://h/mcp?key=QUERY-SECRET")], Duration::from_secs(1));
    let debug = format!("{settings:?} {:?}", McpClient::new(settings.clone()).unwrap());
    assert!(!debug.contains("QUERY-SECRET"), "{debug}");
    drop(socket);
}

#[tokio::test]
async fn open_respects_the_deadline() {
    // Accepts connections but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let client = McpClient::new(McpSettings::new(vec![endpoint(&url)], Duration::from_secs(1))).unwrap();
    let err = client.open(&Secret::new(TOKEN), Instant::now() + Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, McpError::Timeout { operation: "initialize", .. }), "{err:?}");
    drop(listener);
}

async fn wait_until(condition: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < give_up, "condition not reached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
