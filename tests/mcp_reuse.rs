//! What a warm turn reuses of the MCP boundary, on both protocol lifecycles, counted at the server: a
//! user's connection and tool list are kept (one `tools/call` per warm tool turn), never handed to another
//! user, re-made when the server dropped the session, re-listed after `list_changed` or the list's time.

use std::time::Duration;

use devstack::mcp_server::{McpStandIn, Revisions, SessionMode, StandInOptions};
use fc_identity_agent::mcp::{McpClient, McpProtocol, McpSettings, PoolLimits, ToolSession, UserKey};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use serde_json::json;
use tokio::time::Instant;

const ALICE: &str = "wat-alice-SENTINEL";
const BOB: &str = "wat-bob-SENTINEL";
const HANDSHAKE_TURN: [&str; 4] = ["initialize", "notifications/initialized", "tools/list", "tools/call"];

fn settings(server: &McpStandIn) -> McpSettings {
    McpSettings::new(vec![Endpoint::parse(server.url()).unwrap()], Duration::from_secs(10))
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn stand_in(revisions: Revisions, sessions: SessionMode) -> McpStandIn {
    let options = StandInOptions {
        revisions,
        sessions,
        // A minute, as a gateway would say for a list that rarely changes (2026-07-28 only).
        list_ttl_ms: Some(60_000),
        ..StandInOptions::new(|token| token.starts_with(ALICE) || token == BOB)
    };
    McpStandIn::start(options).await.expect("stand-in starts")
}

async fn turn(client: &McpClient, user: &str, token: &str) -> ToolSession {
    let session = client.open_for(&UserKey::new(user), &Secret::new(token), deadline()).await.expect("opens");
    let out = session.call("helloworld", json!({"name": "Ada"})).await.expect("call succeeds");
    assert_eq!(out.text, "Hello, Ada!");
    session
}

/// The methods the server saw since `from`.
fn since(server: &McpStandIn, from: usize) -> Vec<String> {
    server.methods()[from..].to_vec()
}

#[tokio::test]
async fn on_2025_a_warm_turn_is_one_tools_call_on_the_kept_session() {
    for sessions in [SessionMode::Stateful, SessionMode::StatelessJson] {
        let server = stand_in(Revisions::Legacy, sessions).await;
        let client = McpClient::new(settings(&server)).unwrap();
        turn(&client, "alice", ALICE).await.close().await;
        assert_eq!(server.methods(), HANDSHAKE_TURN, "{sessions:?}");

        let mark = server.request_count();
        let session = client.open_for(&UserKey::new("alice"), &Secret::new(ALICE), deadline()).await.unwrap();
        assert_eq!(since(&server, mark), Vec::<String>::new(), "{sessions:?}: a warm open sends nothing");
        session.call("helloworld", json!({"name": "Ada"})).await.unwrap();
        session.close().await;
        assert_eq!(since(&server, mark), ["tools/call"], "{sessions:?}");
        if sessions == SessionMode::Stateful {
            // Both turns on one Mcp-Session-Id.
            let counts = server.session_request_counts();
            let ids: Vec<_> = counts.keys().filter(|id| !id.is_empty()).collect();
            assert_eq!(ids.len(), 1, "{counts:?}");
        }
    }
}

#[tokio::test]
async fn on_2026_a_new_user_lists_and_calls_and_a_warm_turn_only_calls() {
    let server = stand_in(Revisions::Modern, SessionMode::StatelessJson).await;
    let client = McpClient::new(settings(&server)).unwrap();
    let first = turn(&client, "alice", ALICE).await;
    assert_eq!(first.protocol_versions()[0].as_str(), "2026-07-28");
    first.close().await;
    // Auto offers the handshake first; the 2026-only server refuses it, and is discovered once.
    assert_eq!(server.methods(), ["initialize", "server/discover", "tools/list", "tools/call"]);

    // Another user on the same instance: the server's revision is known, no probe, no discovery.
    let mark = server.request_count();
    turn(&client, "bob", BOB).await.close().await;
    assert_eq!(since(&server, mark), ["tools/list", "tools/call"]);
    // Alice again: only the call.
    let mark = server.request_count();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(since(&server, mark), ["tools/call"]);

    // Every 2026 request carries the headers and the _meta its revision requires.
    for call in server.headers_of("tools/call") {
        assert_eq!(call.mcp_method.as_deref(), Some("tools/call"));
        assert_eq!(call.mcp_name.as_deref(), Some("helloworld"));
        assert_eq!(call.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(call.meta_protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(call.session, None);
    }
}

#[tokio::test]
async fn a_pinned_revision_is_spoken_from_the_first_request() {
    let server = stand_in(Revisions::Both, SessionMode::Stateful).await;
    let client =
        McpClient::new(McpSettings { protocol: McpProtocol::parse("2026-07-28").unwrap(), ..settings(&server) })
            .unwrap();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(server.methods(), ["server/discover", "tools/list", "tools/call"]);

    // Under auto a server that speaks both answers the handshake, and stays on 2025-11-25.
    let server = stand_in(Revisions::Both, SessionMode::Stateful).await;
    let client = McpClient::new(settings(&server)).unwrap();
    let session = turn(&client, "alice", ALICE).await;
    assert_eq!(session.protocol_versions()[0].as_str(), "2025-11-25");
    assert_eq!(server.methods(), HANDSHAKE_TURN);
}

#[tokio::test]
async fn another_user_never_gets_the_first_users_connection() {
    let server = stand_in(Revisions::Legacy, SessionMode::Stateful).await;
    let client = McpClient::new(settings(&server)).unwrap();
    turn(&client, "alice", ALICE).await.close().await;
    let mark = server.request_count();
    turn(&client, "bob", BOB).await.close().await;
    // Bob's turn made its own session and listing, all with Bob's token.
    assert_eq!(since(&server, mark), HANDSHAKE_TURN);
    assert!(server.bearers()[mark..].iter().all(|bearer| bearer == BOB), "{:?}", &server.bearers()[mark..]);
    // A refreshed token for the same user keeps the kept connection, and is what is sent from then on.
    let mark = server.request_count();
    let fresh = format!("{ALICE}-refreshed");
    turn(&client, "alice", &fresh).await.close().await;
    assert_eq!(since(&server, mark), ["tools/call"]);
    assert_eq!(server.bearers()[mark..], [fresh]);
    assert_eq!(client.kept().0, 2);
}

#[tokio::test]
async fn a_session_the_server_dropped_is_made_again_once_without_failing_the_turn() {
    let server = stand_in(Revisions::Legacy, SessionMode::Stateful).await;
    let client = McpClient::new(settings(&server)).unwrap();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(server.drop_sessions().await, 1);
    let mark = server.request_count();
    turn(&client, "alice", ALICE).await.close().await;
    // The call meets 404; rmcp initializes again and repeats the call; the list is still the one kept.
    assert_eq!(since(&server, mark), ["tools/call", "initialize", "notifications/initialized", "tools/call"]);
    let mark = server.request_count();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(since(&server, mark), ["tools/call"], "the new session is kept");
}

#[tokio::test]
async fn list_changed_makes_the_next_turn_list_again() {
    let server = stand_in(Revisions::Legacy, SessionMode::Stateful).await;
    let client = McpClient::new(settings(&server)).unwrap();
    let first = turn(&client, "alice", ALICE).await;
    let before: Vec<String> = first.tools().iter().map(|t| t.name.clone()).collect();
    first.close().await;
    server.change_tools();
    // The notice arrives with the next response the client reads (this turn's call).
    turn(&client, "alice", ALICE).await.close().await;
    let mark = server.request_count();
    let session = client.open_for(&UserKey::new("alice"), &Secret::new(ALICE), deadline()).await.unwrap();
    assert_eq!(since(&server, mark), ["tools/list"]);
    assert!(session.tools().len() > before.len(), "{:?} vs {before:?}", session.tools());
}

#[tokio::test]
async fn a_list_is_reused_only_as_long_as_the_server_says_on_2026() {
    let server = McpStandIn::start(StandInOptions {
        revisions: Revisions::Modern,
        sessions: SessionMode::StatelessJson,
        list_ttl_ms: Some(0),
        ..StandInOptions::new(|token| token == ALICE)
    })
    .await
    .unwrap();
    let client = McpClient::new(settings(&server)).unwrap();
    turn(&client, "alice", ALICE).await.close().await;
    let mark = server.request_count();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(since(&server, mark), ["tools/list", "tools/call"], "ttlMs 0: list every turn");

    // On 2025 revisions the configured time bounds it (and the kept connection with it).
    let server = stand_in(Revisions::Legacy, SessionMode::StatelessJson).await;
    let limits = PoolLimits { idle: Duration::from_millis(200), ..PoolLimits::default() };
    let client = McpClient::new(McpSettings { pool: limits, ..settings(&server) }).unwrap();
    turn(&client, "alice", ALICE).await.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = server.request_count();
    turn(&client, "alice", ALICE).await.close().await;
    assert_eq!(since(&server, mark), HANDSHAKE_TURN);
}

#[tokio::test]
async fn the_pool_is_bounded_least_recently_used_out() {
    let server = stand_in(Revisions::Legacy, SessionMode::StatelessJson).await;
    let limits = PoolLimits { entries: 2, ..PoolLimits::default() };
    let client = McpClient::new(McpSettings { pool: limits, ..settings(&server) }).unwrap();
    for user in ["a", "b", "c"] {
        turn(&client, user, ALICE).await.close().await;
    }
    assert_eq!(client.kept().0, 2);
    // "a" was the least recently used: it opens anew; "c" is still kept.
    let mark = server.request_count();
    turn(&client, "c", ALICE).await.close().await;
    assert_eq!(since(&server, mark), ["tools/call"]);
    let mark = server.request_count();
    turn(&client, "a", ALICE).await.close().await;
    assert_eq!(since(&server, mark), HANDSHAKE_TURN);

    // A byte budget smaller than one connection keeps only the newest.
    let limits = PoolLimits { bytes: 1, ..PoolLimits::default() };
    let client = McpClient::new(McpSettings { pool: limits, ..settings(&server) }).unwrap();
    for user in ["a", "b"] {
        turn(&client, user, ALICE).await.close().await;
    }
    assert_eq!(client.kept().0, 1);
}

#[tokio::test]
async fn a_denied_tool_is_an_error_output_for_the_model_on_both_revisions() {
    for revisions in [Revisions::Legacy, Revisions::Modern] {
        let server = stand_in(revisions, SessionMode::StatelessJson).await;
        server.deny_tool("helloworld");
        let client = McpClient::new(settings(&server)).unwrap();
        let session = client.open_for(&UserKey::new("alice"), &Secret::new(ALICE), deadline()).await.unwrap();
        let out = session.call("helloworld", json!({"name": "Ada"})).await.expect("a denial is an output");
        assert!(out.is_error, "{revisions:?}");
        assert!(out.text.contains("denied this tool for this user (HTTP 403)"), "{}", out.text);
        assert!(!out.text.contains(ALICE));
        // Other tools still work, on the same kept connection.
        let out = session.call("getutctime", json!({})).await.unwrap();
        assert!(!out.is_error, "{revisions:?}");
    }
}
