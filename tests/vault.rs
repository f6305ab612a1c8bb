//! The model key from the Agent Identity vault (`DASHSCOPE_API_KEY_PROVIDER`), end to end over real sockets:
//! the function against the stand-ins, whose DashScope accepts only the key the vault holds.

mod common;

use common::{Function, user_request};
use devstack::agent_identity::RecordedRequest;
use devstack::{DASHSCOPE_KEY_PROVIDER, Stack};
use serde_json::{Value, json};

const ASSUME: &str = "AssumeRoleForWorkloadIdentity";
const API_KEY: &str = "GetResourceAPIKey";
const VAULT: [(&str, &str); 2] = [("DASHSCOPE_API_KEY", ""), ("DASHSCOPE_API_KEY_PROVIDER", DASHSCOPE_KEY_PROVIDER)];

fn vault_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    VAULT.iter().chain(extra).copied().collect()
}

/// `(status, error code, error message)` of the final response of a streamed turn.
async fn turn(f: &Function, user: &str, text: &str) -> (String, Option<String>, String) {
    // A session per turn: concurrent turns of one session would be refused (one turn per session).
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut body = user_request(text);
    body["user_id"] = json!(user);
    body["session_id"] = json!(format!("s-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let answer = f.post_process(&[], &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let last: Value = answer.events().pop().expect("events");
    assert_eq!(last["object"], "response", "{last}");
    (
        last["status"].as_str().unwrap_or_default().to_owned(),
        last["error"]["code"].as_str().map(str::to_owned),
        last["error"]["message"].as_str().unwrap_or_default().to_owned(),
    )
}

fn of(f: &Function, action: &str) -> Vec<RecordedRequest> {
    f.stack.identity.requests().into_iter().filter(|r| r.action == action).collect()
}

fn model_statuses(f: &Function) -> Vec<u16> {
    f.stack.dashscope.requests().iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn a_turn_without_dashscope_api_key_completes_with_the_vault_key() {
    let f = Function::start(&VAULT).await;
    let (status, code, message) = turn(&f, "u1", "Tell me the time in UTC").await;
    assert_eq!((status.as_str(), code), ("completed", None), "{message}");
    // The stand-in DashScope accepts only the vault's key: every model call was authorized with it.
    assert!(model_statuses(&f).iter().all(|s| *s == 200), "{:?}", model_statuses(&f));

    let assume = of(&f, ASSUME);
    assert_eq!(assume.len(), 1);
    assert_eq!(assume[0].access_key_id, None, "AssumeRoleForWorkloadIdentity is anonymous");
    assert_eq!(assume[0].params["DurationSeconds"], "3600");
    assert!(assume[0].params["RoleSessionName"].starts_with("AgentIdentitySessionRole-"));
    let wat = &assume[0].params["WorkloadAccessToken"];
    assert_eq!(f.stack.identity.subject_of(wat).as_deref(), Some("u1"), "the caller's WAT is exchanged");

    let get = of(&f, API_KEY);
    assert_eq!(get.len(), 1);
    assert_eq!(get[0].params["ResourceCredentialProviderName"], DASHSCOPE_KEY_PROVIDER);
    assert_eq!(&get[0].params["WorkloadAccessToken"], wat);
    // Signed with the role credentials AssumeRole issued, not the function's own.
    let signer = get[0].access_key_id.as_deref().unwrap_or_default();
    assert!(signer.starts_with("STS.WorkloadRole") && get[0].security_token_sent, "{signer}");
}

#[tokio::test]
async fn the_key_is_fetched_once_for_many_turns_and_many_users() {
    let f = Function::start(&vault_with(&[("AI_GATEWAY_MCP_SERVER", "")])).await;
    // Concurrent cold turns share one fetch (single flight), later turns hit the cache.
    let first = futures_util::future::join_all((0..4).map(|i| turn(&f, if i % 2 == 0 { "u1" } else { "u2" }, "hi")));
    for (status, code, message) in first.await {
        assert_eq!((status.as_str(), code), ("completed", None), "{message}");
    }
    for user in ["u1", "u3", "u4"] {
        let (status, code, message) = turn(&f, user, "hi").await;
        assert_eq!((status.as_str(), code), ("completed", None), "{message}");
    }
    assert_eq!(of(&f, API_KEY).len(), 1, "{:?}", f.stack.identity.requests());
    assert_eq!(of(&f, ASSUME).len(), 1);
    assert_eq!(model_statuses(&f).len(), 7);
}

#[tokio::test]
async fn a_rotated_key_is_refused_once_and_fetched_again_once() {
    let f = Function::start(&vault_with(&[("AI_GATEWAY_MCP_SERVER", "")])).await;
    let (status, _, message) = turn(&f, "u1", "hi").await;
    assert_eq!(status, "completed", "{message}");
    f.stack.rotate_dashscope_key("sk-rotated-devstack-key");

    let (status, code, message) = turn(&f, "u1", "hi again").await;
    assert_eq!((status.as_str(), code), ("completed", None), "{message}");
    assert_eq!(model_statuses(&f), [200, 401, 200], "one refusal, then the fresh key");
    assert_eq!(of(&f, API_KEY).len(), 2);
    // The same user's WAT is still cached, and so are the role credentials assumed with it.
    assert_eq!(of(&f, ASSUME).len(), 1);

    let (status, _, message) = turn(&f, "u1", "and again").await;
    assert_eq!(status, "completed", "{message}");
    assert_eq!(of(&f, API_KEY).len(), 2, "the fresh key is cached");
}

#[tokio::test]
async fn a_vault_key_dashscope_refuses_fails_after_exactly_one_refetch() {
    let stack = Stack::start().await.unwrap();
    stack.identity.set_api_key(DASHSCOPE_KEY_PROVIDER, "sk-not-what-dashscope-takes");
    let f = Function::with_stack(stack, &vault_with(&[("AI_GATEWAY_MCP_SERVER", "")])).await;
    let (status, code, message) = turn(&f, "u1", "hi").await;
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("model_unauthorized")), "{message}");
    assert_eq!(model_statuses(&f), [401, 401]);
    assert_eq!(of(&f, API_KEY).len(), 2);
    assert!(!message.contains("sk-not-what-dashscope-takes"), "{message}");
}

#[tokio::test]
async fn an_unknown_provider_fails_the_turn_clearly_before_the_model() {
    let f = Function::start(&[("DASHSCOPE_API_KEY", ""), ("DASHSCOPE_API_KEY_PROVIDER", "no-such-provider")]).await;
    let (status, code, message) = turn(&f, "u1", "Tell me the time in UTC").await;
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("identity_error")), "{message}");
    assert!(message.contains("EntityNotExists.APIKeyCredentialProvider"), "{message}");
    assert!(message.contains("GetResourceAPIKey"), "{message}");
    assert_eq!(f.stack.dashscope.request_count(), 0, "no model call without a key");
}

#[tokio::test]
async fn an_event_invocation_exchanges_the_agent_only_token() {
    let f = Function::start(&vault_with(&[("AI_GATEWAY_MCP_SERVER", "")])).await;
    let answer = f.invoke("vault-event", r#"{"bucket":"b","key":"k"}"#).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let assume = of(&f, ASSUME);
    assert_eq!(assume.len(), 1);
    let subject = f.stack.identity.subject_of(&assume[0].params["WorkloadAccessToken"]);
    assert_eq!(subject.as_deref(), Some("agent"));
    assert_eq!(of(&f, API_KEY).len(), 1);
}

#[tokio::test]
async fn both_key_variables_set_is_a_start_up_error_naming_both() {
    let stack = Stack::start().await.unwrap();
    let error = common::config(&stack, &[("DASHSCOPE_API_KEY_PROVIDER", DASHSCOPE_KEY_PROVIDER)]).unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("DASHSCOPE_API_KEY:") && shown.contains("DASHSCOPE_API_KEY_PROVIDER"), "{shown}");
}

#[tokio::test]
async fn a_wat_assume_role_refuses_is_dropped_so_the_next_turn_fetches_a_fresh_one() {
    let f = Function::start(&vault_with(&[("AI_GATEWAY_MCP_SERVER", "")])).await;
    let (status, _, message) = turn(&f, "u1", "hi").await;
    assert_eq!(status, "completed", "{message}");
    let first_wat = of(&f, ASSUME)[0].params["WorkloadAccessToken"].clone();
    // The WAT stops being accepted (expired, revoked), and the key must be fetched again.
    assert!(f.stack.identity.revoke(&first_wat));
    f.stack.rotate_dashscope_key("sk-rotated-devstack-key");

    // The cached role still signs; GetResourceAPIKey refuses the WAT, and the role is dropped.
    let (status, code, message) = turn(&f, "u1", "hi").await;
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("identity_error")), "{message}");
    // AssumeRole refuses the cached WAT: the WAT is dropped from the token cache with it.
    let (status, code, message) = turn(&f, "u1", "hi").await;
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("identity_error")), "{message}");
    assert!(message.contains(ASSUME), "{message}");
    // So the next turn starts from a fresh WAT instead of being refused with the same one forever.
    let (status, code, message) = turn(&f, "u1", "hi").await;
    assert_eq!((status.as_str(), code), ("completed", None), "{message}");
    let assumed: Vec<String> = of(&f, ASSUME).iter().map(|r| r.params["WorkloadAccessToken"].clone()).collect();
    assert_eq!(assumed.len(), 3, "{assumed:?}");
    assert_eq!(assumed[1], first_wat);
    assert_ne!(assumed[2], first_wat, "a fresh WAT");
    assert_eq!(f.stack.identity.subject_of(&assumed[2]).as_deref(), Some("u1"));
}
