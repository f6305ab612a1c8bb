//! Session memory over real sockets: the function against the stand-ins, with the in-memory store and with
//! a real `redis-server`. What reaches the model on a second turn is read from the DashScope stand-in.

mod common;
mod kit;
#[path = "sessions/redis_server.rs"]
mod redis_server;

use common::Function;
use kit::{completed, failed, process, send};
use redis_server::RedisServer;
use serde_json::{Value, json};

fn turn(user: &str, session: &str, text: &str) -> Value {
    json!({
        "input": [{"role": "user", "type": "message", "content": [{"type": "text", "text": text}]}],
        "session_id": session,
        "user_id": user,
    })
}

/// `(role, text or tool marker)` of every message of the `n`th DashScope request.
fn sent(f: &Function, n: usize) -> Vec<(String, String)> {
    let requests = f.stack.dashscope.requests();
    let messages = requests[n].body["messages"].as_array().unwrap().clone();
    messages
        .iter()
        .map(|m| {
            let role = m["role"].as_str().unwrap().to_owned();
            let what = match (&m["content"], &m["tool_calls"]) {
                (_, Value::Array(calls)) => format!("calls {}", calls[0]["function"]["name"].as_str().unwrap()),
                (Value::String(text), _) => text.clone(),
                (other, _) => other.to_string(),
            };
            (role, what)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(r, t)| ((*r).to_owned(), (*t).to_owned())).collect()
}

async fn get_session(f: &Function, session: &str, user: &str) -> kit::Reply {
    send(f, "GET", &format!("/sessions/{session}?user_id={user}"), &[], Vec::new()).await
}

/// The seed's golden second turn (docs/sessions.md): the stored tool turn, reasoning dropped,
/// before the new message.
async fn second_turn_remembers(f: &Function, second: &Function) {
    assert_eq!(process(f, &[], &turn("u1", "s1", "Tell me the time in UTC")).await.ending(), completed());
    let before = second.stack.dashscope.request_count();
    assert_eq!(process(second, &[], &turn("u1", "s1", "Tell me the time in UTC again")).await.ending(), completed());
    let messages = sent(second, before);
    let tool_result = &messages[3].1;
    assert_eq!(
        messages,
        pairs(&[
            ("system", "You're a helpful assistant named Friday."),
            ("user", "Tell me the time in UTC"),
            ("assistant", "calls getutctime"),
            ("tool", tool_result),
            ("assistant", &messages[4].1),
            ("user", "Tell me the time in UTC again"),
        ])
    );
    assert!(
        tool_result.contains("20") && !tool_result.starts_with('['),
        "the tool's text, not its JSON: {tool_result}"
    );
    let requests = second.stack.dashscope.requests();
    let body = &requests[before].body["messages"];
    assert_eq!(body[2]["tool_calls"][0]["id"], body[3]["tool_call_id"], "the call and its result stay paired");
}

#[tokio::test]
async fn memory_two_turns_remember_like_the_seed() {
    let f = Function::start(&[]).await;
    second_turn_remembers(&f, &f).await;
}

#[tokio::test]
async fn memory_none_is_stateless() {
    let f = Function::start(&[("SESSION_STORE", "none")]).await;
    process(&f, &[], &turn("u1", "s1", "hello")).await;
    let before = f.stack.dashscope.request_count();
    process(&f, &[], &turn("u1", "s1", "hello again")).await;
    assert_eq!(sent(&f, before).len(), 2, "system prompt and the new message only");
    assert_eq!(get_session(&f, "s1", "u1").await.status, 404);
}

#[tokio::test]
async fn another_users_session_is_neither_read_nor_extended() {
    let f = Function::start(&[]).await;
    process(&f, &[], &turn("alice", "shared", "my secret plan is X")).await;
    let before = f.stack.dashscope.request_count();
    process(&f, &[], &turn("mallory", "shared", "what was the plan?")).await;
    assert_eq!(sent(&f, before).len(), 2, "mallory's turn carries nothing of alice's: {:?}", sent(&f, before));
    let theirs = get_session(&f, "shared", "alice").await.json();
    let texts: Vec<&str> =
        theirs["messages"].as_array().unwrap().iter().filter_map(|m| m["content"][0]["text"].as_str()).collect();
    assert!(!texts.iter().any(|t| t.contains("what was the plan")), "alice's session was not extended: {texts:?}");
    let refused = send(&f, "DELETE", "/sessions/shared?user_id=mallory", &[], Vec::new()).await;
    assert_eq!(refused.status, 200, "mallory deletes only mallory's own: {}", refused.text);
    assert_eq!(get_session(&f, "shared", "alice").await.status, 200, "alice's session survives");
}

#[tokio::test]
async fn a_resent_message_id_is_stored_and_sent_once() {
    let f = Function::start(&[]).await;
    let first =
        json!({"id": "m-1", "role": "user", "type": "message", "content": [{"type": "text", "text": "hi there"}]});
    process(&f, &[], &json!({"input": [first.clone()], "session_id": "d", "user_id": "u"})).await;
    let second =
        json!({"id": "m-2", "role": "user", "type": "message", "content": [{"type": "text", "text": "and again"}]});
    let before = f.stack.dashscope.request_count();
    process(&f, &[], &json!({"input": [first, second], "session_id": "d", "user_id": "u"})).await;
    let messages = sent(&f, before);
    let his: Vec<&str> = messages.iter().filter(|(_, t)| t == "hi there").map(|(r, _)| r.as_str()).collect();
    assert_eq!(his, ["user"], "the resent message is sent once: {messages:?}");
    let stored = get_session(&f, "d", "u").await.json();
    let ids: Vec<&str> = stored["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().filter(|id| **id == "m-1").count(), 1, "{ids:?}");
    assert!(ids.contains(&"m-2"));
}

#[tokio::test]
async fn the_window_sends_the_newest_messages_only() {
    let f = Function::start(&[("SESSION_WINDOW_MESSAGES", "3"), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    for text in ["one", "two", "three"] {
        process(&f, &[], &turn("u", "w", text)).await;
    }
    let before = f.stack.dashscope.request_count();
    process(&f, &[], &turn("u", "w", "four")).await;
    let messages = sent(&f, before);
    assert_eq!(messages.len(), 4, "the system prompt and three messages: {messages:?}");
    assert_eq!(messages[3].1, "four");
    assert_eq!(messages[1], ("user".to_owned(), "three".to_owned()), "the oldest kept: {messages:?}");
}

/// The stored Session JSON has exactly the AgentScope runtime's Session / Message / content fields, in order.
#[tokio::test]
async fn get_returns_the_agentscope_session_and_delete_forgets_it() {
    let f = Function::start(&[]).await;
    process(&f, &[], &turn("u1", "s1", "Tell me the time in UTC")).await;
    let reply = get_session(&f, "s1", "u1").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    check_session_layout(&reply.text, "s1", "u1");
    let deleted = send(&f, "DELETE", "/sessions/s1?user_id=u1", &[], Vec::new()).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(get_session(&f, "s1", "u1").await.status, 404);
    let again = send(&f, "DELETE", "/sessions/s1?user_id=u1", &[], Vec::new()).await;
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (404, Some("not_found")));
    let bad = send(&f, "GET", "/sessions/a:b?user_id=u1", &[], Vec::new()).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

fn keys(object: &Value) -> Vec<&str> {
    object.as_object().unwrap().keys().map(String::as_str).collect()
}

fn check_session_layout(text: &str, session: &str, user: &str) {
    let session_json: Value = serde_json::from_str(text).unwrap();
    assert_eq!((session_json["id"].as_str(), session_json["user_id"].as_str()), (Some(session), Some(user)));
    let mut top: Vec<&str> = keys(&session_json);
    top.sort();
    assert_eq!(top, ["id", "messages", "user_id"]);
    let message_keys = [
        "sequence_number",
        "object",
        "status",
        "error",
        "id",
        "type",
        "role",
        "content",
        "code",
        "message",
        "usage",
        "metadata",
    ];
    let messages = session_json["messages"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> =
        messages.iter().map(|m| (m["type"].as_str().unwrap(), m["role"].as_str().unwrap())).collect();
    let tool_turn =
        [("message", "user"), ("plugin_call", "assistant"), ("plugin_call_output", "system"), ("message", "assistant")];
    assert!(!kinds.is_empty() && kinds.len().is_multiple_of(4), "{kinds:?}");
    for stored_turn in kinds.chunks(4) {
        assert_eq!(stored_turn, tool_turn, "the tool output is stored with role system, as the runtime stores it");
    }
    for message in messages {
        let mut got = keys(message);
        let mut want = message_keys.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{message}");
        assert_eq!(message["status"], "completed");
        assert!(message["id"].as_str().unwrap().starts_with("msg_"));
        let metadata = keys(&message["metadata"]);
        assert_eq!(metadata.len(), 3, "{message}");
        for item in message["content"].as_array().unwrap() {
            let mut got = keys(item);
            got.sort();
            let payload = if item["type"] == "data" { "data" } else { "text" };
            let mut want =
                vec!["sequence_number", "object", "status", "error", "type", "index", "delta", "msg_id", payload];
            want.sort();
            assert_eq!(got, want, "{item}");
            assert_eq!((item["index"].as_u64(), item["delta"].as_bool()), (Some(0), Some(false)));
            assert_eq!(item["msg_id"], message["id"]);
        }
    }
    // Key order as the runtime writes it (pydantic field order), checked on the raw text.
    let first_message = &text[text.find("\"messages\":[").unwrap() + 12..];
    let mut at = 0;
    for key in message_keys {
        let found = first_message[at..].find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} out of order"));
        at += found;
    }
}

fn redis_env(redis: &RedisServer) -> String {
    redis.url()
}

#[tokio::test]
async fn redis_two_instances_share_one_conversation() {
    let redis = RedisServer::start().await;
    let url = redis_env(&redis);
    let first = Function::start(&[("SESSION_STORE", &url), ("SESSION_KEY_PREFIX", "t1:")]).await;
    let second = Function::with_stack(
        devstack::Stack::start().await.unwrap(),
        &[("SESSION_STORE", &url), ("SESSION_KEY_PREFIX", "t1:")],
    )
    .await;
    second_turn_remembers(&first, &second).await;
    // The AgentScope layout, readable by a Python app on the same Redis.
    let record = redis.get("t1:session:u1:s1").await.expect("session:{user}:{session} holds the Session JSON");
    check_session_layout(&record, "s1", "u1");
    let members: Vec<String> = redis.query(redis::cmd("SMEMBERS").arg("t1:session_index:u1")).await;
    assert_eq!(members, ["s1"]);
    let ttl: i64 = redis.query(redis::cmd("TTL").arg("t1:session:u1:s1")).await;
    assert!(ttl > 0, "the TTL is set on write: {ttl}");
    let deleted = send(&second, "DELETE", "/sessions/s1?user_id=u1", &[], Vec::new()).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(redis.get("t1:session:u1:s1").await, None);
    let members: Vec<String> = redis.query(redis::cmd("SMEMBERS").arg("t1:session_index:u1")).await;
    assert!(members.is_empty());
}

#[tokio::test]
async fn redis_concurrent_turns_in_one_session_lose_no_message() {
    let redis = RedisServer::start().await;
    // Turns of one session run one at a time: these wait their turn (SESSION_BUSY_WAIT_SECS) instead of
    // being refused, and each appends to what the one before stored.
    let f = Function::start(&[
        ("SESSION_STORE", &redis.url()),
        ("AI_GATEWAY_MCP_SERVER", ""),
        ("SESSION_BUSY_WAIT_SECS", "60"),
    ])
    .await;
    let turns = (0..20).map(|i| {
        let body = json!({
            "input": [{"id": format!("in-{i}"), "role": "user", "type": "message",
                       "content": [{"type": "text", "text": format!("message {i}")}]}],
            "session_id": "busy", "user_id": "u",
        });
        let f = &f;
        async move { process(f, &[], &body).await.ending() }
    });
    let endings = futures_util::future::join_all(turns).await;
    assert!(endings.iter().all(|e| *e == completed()), "{endings:?}");
    let stored: Value = serde_json::from_str(&redis.get("session:u:busy").await.unwrap()).unwrap();
    let messages = stored["messages"].as_array().unwrap();
    for i in 0..20 {
        assert!(messages.iter().any(|m| m["id"] == format!("in-{i}")), "message {i} was lost");
    }
    assert_eq!(messages.len(), 40, "20 inputs and 20 answers");
}

#[tokio::test]
async fn redis_sessions_expire_after_their_ttl() {
    let redis = RedisServer::start().await;
    let f =
        Function::start(&[("SESSION_STORE", &redis.url()), ("SESSION_TTL_SECS", "1"), ("AI_GATEWAY_MCP_SERVER", "")])
            .await;
    process(&f, &[], &turn("u", "short", "remember me")).await;
    assert_eq!(get_session(&f, "short", "u").await.status, 200);
    // Not a timing assertion: Redis expires the key after its TTL; we only wait long enough for that.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(get_session(&f, "short", "u").await.status, 404);
    let before = f.stack.dashscope.request_count();
    process(&f, &[], &turn("u", "short", "do you remember?")).await;
    assert_eq!(sent(&f, before).len(), 2, "an expired session starts afresh");
}

#[tokio::test]
async fn redis_a_corrupt_record_fails_the_turn_and_is_left_untouched() {
    let redis = RedisServer::start().await;
    let f = Function::start(&[("SESSION_STORE", &redis.url()), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    redis.set("session:u:broken", "{\"id\":\"broken\",\"messages\":[{\"no\":").await;
    let before = f.stack.dashscope.request_count();
    let reply = process(&f, &[], &turn("u", "broken", "hello")).await;
    assert_eq!(reply.ending(), failed("session_error"));
    assert!(reply.last_event()["error"]["message"].as_str().unwrap().contains("broken"), "names the session");
    assert_eq!(f.stack.dashscope.request_count(), before, "no model call");
    assert_eq!(redis.get("session:u:broken").await.as_deref(), Some("{\"id\":\"broken\",\"messages\":[{\"no\":"));
    let read = get_session(&f, "broken", "u").await;
    assert_eq!((read.status, read.json()["error"]["code"].as_str()), (500, Some("session_error")));
}

#[tokio::test]
async fn redis_stopped_mid_run_fails_loudly_and_in_time() {
    let mut redis = RedisServer::start().await;
    let f = Function::start(&[
        ("SESSION_STORE", &redis.url()),
        ("SESSION_STORE_TIMEOUT_MS", "500"),
        ("AI_GATEWAY_MCP_SERVER", ""),
    ])
    .await;
    assert_eq!(process(&f, &[], &turn("u", "s", "first")).await.ending(), completed());
    redis.stop().await;
    let before = f.stack.dashscope.request_count();
    let reply = process(&f, &[], &turn("u", "s", "second")).await;
    assert_eq!(reply.ending(), failed("session_error"), "{}", reply.text);
    assert_eq!(f.stack.dashscope.request_count(), before, "the model is not called without the session");
    let read = get_session(&f, "s", "u").await;
    assert_eq!((read.status, read.json()["error"]["code"].as_str()), (503, Some("session_error")));
}

#[tokio::test]
async fn redis_a_write_that_fails_after_the_answer_says_so_in_the_final_event() {
    let redis = RedisServer::start().await;
    let f = Function::start(&[("SESSION_STORE", &redis.url()), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    // The user's index key holds a string: the load succeeds, the append's SADD is refused.
    redis.set("session_index:u", "not a set").await;
    let reply = process(&f, &[], &turn("u", "s", "hello")).await;
    let events = common::parse_sse(&reply.text);
    assert!(events.iter().any(|e| e["object"] == "message" && e["role"] == "assistant"), "the answer streamed");
    assert_eq!(reply.ending(), failed("session_error"));
    let message = reply.last_event()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("not saved"), "{message}");
    assert_eq!(redis.get("session:u:s").await, None, "nothing half-written");
}

/// A JWT the Agent Identity stand-in accepts (it reads the claims); `jti` makes two tokens of one user differ.
fn jwt(sub: &str, jti: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let claims =
        b64(json!({"sub": sub, "jti": jti, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.signature")
}

#[tokio::test]
async fn a_jwt_caller_is_keyed_by_its_verified_subject() {
    let f = Function::start(&[("AGENT_IDENTITY_USER_SOURCE", "jwt"), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    let first = format!("Bearer {}", jwt("alice", "1"));
    let reply = process(&f, &[("authorization", &first)], &turn("ignored", "j", "remember the number 7")).await;
    assert_eq!(reply.ending(), completed());
    // No tools are configured, yet Agent Identity verified the JWT before its subject keyed the session.
    let verified = f.stack.identity.requests().iter().filter(|r| r.action == "GetWorkloadAccessTokenForJWT").count();
    assert_eq!(verified, 1);
    let before = f.stack.dashscope.request_count();
    let another_token = format!("Bearer {}", jwt("alice", "2"));
    process(&f, &[("authorization", &another_token)], &turn("ignored", "j", "which number?")).await;
    assert_eq!(sent(&f, before).len(), 4, "alice's second token sees alice's session: {:?}", sent(&f, before));
    let before = f.stack.dashscope.request_count();
    let bob = format!("Bearer {}", jwt("bob", "3"));
    process(&f, &[("authorization", &bob)], &turn("alice", "j", "which number?")).await;
    assert_eq!(sent(&f, before).len(), 2, "bob naming alice's session sees nothing: {:?}", sent(&f, before));
    let read = send(&f, "GET", "/sessions/j", &[("authorization", &first)], Vec::new()).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json()["user_id"], "alice");
    let unauthenticated = send(&f, "GET", "/sessions/j?user_id=alice", &[], Vec::new()).await;
    assert_eq!(unauthenticated.status, 401, "the jwt source demands a bearer: {}", unauthenticated.text);
}

/// A Redis Cluster (Tair cluster instances too) refuses a script whose keys lie in two slots. Without
/// `SESSION_REDIS_CLUSTER` the runtime's layout puts `session:u:s` and `session_lease:u:s` (and
/// `session_index:u`) in two, and the turn fails before the model; with it, the user is the keys' hash tag and memory works.
#[tokio::test]
async fn redis_cluster_needs_and_gets_one_slot_per_user() {
    let redis = RedisServer::start_cluster().await;
    let url = redis.url();
    let plain = Function::start(&[("SESSION_STORE", &url), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    let reply = process(&plain, &[], &turn("u1", "s1", "hello")).await;
    assert_eq!(reply.ending(), failed("session_error"), "{}", reply.text);
    let message = reply.last_event()["error"]["message"].as_str().unwrap().to_owned();
    // The session's lease and the session are claimed and read in one script: refused before the turn.
    assert!(message.contains("CrossSlot"), "{message}");

    let f = Function::start(&[("SESSION_STORE", &url), ("SESSION_REDIS_CLUSTER", "true")]).await;
    second_turn_remembers(&f, &f).await;
    let record = redis.get("session:{u1}:s1").await.expect("the session key carries the user as its hash tag");
    check_session_layout(&record, "s1", "u1");
    assert_eq!(redis.slot("session:{u1}:s1").await, redis.slot("session_index:{u1}").await);
    let members: Vec<String> = redis.query(redis::cmd("SMEMBERS").arg("session_index:{u1}")).await;
    assert_eq!(members, ["s1"]);
    assert_eq!(get_session(&f, "s1", "u1").await.status, 200);
    let deleted = send(&f, "DELETE", "/sessions/s1?user_id=u1", &[], Vec::new()).await;
    assert_eq!(deleted.status, 200, "DEL and SREM in one transaction, one slot: {}", deleted.text);
    assert_eq!(redis.get("session:{u1}:s1").await, None);
    // A brace in the user id would move the hash tag; such a user is refused, not split over two slots.
    let braced = process(&f, &[], &turn("a}b", "s", "hello")).await;
    assert_eq!(braced.ending(), failed("session_error"), "{}", braced.text);
}

/// The in-memory store is bounded by bytes, not only by counts: a message larger than all of
/// `SESSION_MAX_BYTES` is refused — the turn says its answer was not saved — and smaller ones evict the
/// least recently used sessions instead of growing the instance.
#[tokio::test]
async fn memory_a_message_larger_than_the_store_is_refused_loudly() {
    let f = Function::start(&[("SESSION_MAX_BYTES", "8192"), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    assert_eq!(process(&f, &[], &turn("u", "small", "hello")).await.ending(), completed());
    let reply = process(&f, &[], &turn("u", "big", &"x".repeat(10_000))).await;
    assert_eq!(reply.ending(), failed("session_error"), "{}", reply.text);
    let message = reply.last_event()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("not saved") && message.contains("SESSION_MAX_BYTES"), "{message}");
    assert_eq!(get_session(&f, "big", "u").await.status, 404, "nothing of the turn was kept");
    assert_eq!(get_session(&f, "small", "u").await.status, 200, "the other session is untouched");
    // Three sessions of ~3 KiB do not fit in 8 KiB: the least recently used goes.
    for name in ["a", "b", "c"] {
        assert_eq!(process(&f, &[], &turn("u", name, &"y".repeat(2_000))).await.ending(), completed());
    }
    assert_eq!(get_session(&f, "small", "u").await.status, 404, "evicted, the least recently used");
    assert_eq!(get_session(&f, "c", "u").await.status, 200);
}

async fn responses(f: &Function, body: Value) -> kit::Reply {
    send(f, "POST", "/compatible-mode/v1/responses", &[("content-type", "application/json")], body.to_string().into())
        .await
}

/// A turn continuing a Responses `previous_response_id` costs the store what any turn does: the lease
/// claim (which checks the response index in the same script) and the append — two round trips, counted
/// with `MONITOR`. An id that is not the caller's is refused by that one claim, before anything streams,
/// and takes nothing.
#[tokio::test]
async fn redis_a_continued_response_costs_two_round_trips_like_any_turn() {
    let redis = RedisServer::start().await;
    let f = Function::start(&[("SESSION_STORE", &redis.url()), ("AI_GATEWAY_MCP_SERVER", "")]).await;
    let ask = |previous: Option<&str>, user: &str| {
        let mut body = json!({"model": "qwen-max", "input": "no tools: thanks", "user": user, "stream": true});
        if let Some(previous) = previous {
            body["previous_response_id"] = json!(previous);
        }
        body
    };
    let completed_id = |reply: &kit::Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let done = reply
            .text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .find(|event| event["type"] == "response.completed")
            .unwrap_or_else(|| panic!("no response.completed in {}", reply.text));
        done["response"]["id"].as_str().unwrap().to_owned()
    };
    let first = completed_id(&responses(&f, ask(None, "u1")).await);
    // Once continued before counting: the scripts are loaded (`SCRIPT LOAD`, once per process).
    let second = completed_id(&responses(&f, ask(Some(&first), "u1")).await);

    let monitor = redis.monitor().await;
    let third = completed_id(&responses(&f, ask(Some(&second), "u1")).await);
    assert_eq!(monitor.finish(&redis).await, ["EVALSHA", "EVALSHA"], "claim (with the index check) + append");
    assert_ne!(third, second);

    // Another user's id: refused by the claim alone, as OpenAI's 400, and no lease was taken.
    let monitor = redis.monitor().await;
    let refused = responses(&f, ask(Some(&third), "u2")).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.json()["error"]["code"], "previous_response_not_found");
    assert_eq!(monitor.finish(&redis).await, ["EVALSHA"], "one claim, refused");
    let leases: Vec<String> = redis.query(redis::cmd("KEYS").arg("session_lease:*")).await;
    assert!(leases.is_empty(), "nothing taken: {leases:?}");
    // The session busy with another turn: the caller's own id is checked first, then the lease.
    let session = third.clone();
    let key = {
        let owner: Vec<String> = redis.query(redis::cmd("KEYS").arg("response_session:u1:*")).await;
        assert_eq!(owner.len(), 3, "one index entry per response: {owner:?}");
        let session_id: String = redis.get(&format!("response_session:u1:{session}")).await.unwrap();
        format!("session_lease:u1:{session_id}")
    };
    redis.set(&key, "turn_elsewhere").await;
    let busy = responses(&f, ask(Some(&third), "u1")).await;
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert_eq!(redis.get(&key).await.as_deref(), Some("turn_elsewhere"), "the holder keeps its lease");
}
