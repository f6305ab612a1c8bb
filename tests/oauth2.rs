//! OAuth2 tokens from the Agent Identity vault for an MCP server that acts on the user's third-party
//! account (issue 16, part 2), end to end over real sockets: the function against the stand-ins, whose
//! second MCP server accepts only the stand-in provider's access tokens. The test is the user: it reads the
//! authorization URL from the stream, "clicks" Allow on the stand-in's consent page and follows the
//! redirect to the function's `GET /oauth2/callback`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Function, parse_sse, user_request};
use devstack::agent_identity::{RecordedRequest, StandInOptions};
use devstack::{OAUTH2_PROVIDER, Stack};
use fc_identity_agent::app::App;
use serde_json::{Value, json};

const GET_TOKEN: &str = "GetResourceOAuth2Token";
const COMPLETE: &str = "CompleteResourceTokenAuth";
const STATE_KEY: &str = "a-test-oauth2-state-key-of-enough-length";
/// Bounds every wait on the function (a hang fails the test instead of stalling it).
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Only the OAuth2 server (its tools are the ones the model calls), polling fast with room to click.
fn only_oauth2(stack_url: &str, limit: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("AI_GATEWAY_MCP_SERVER", stack_url.to_owned()),
        ("AI_GATEWAY_MCP_OAUTH2", format!("{stack_url} {OAUTH2_PROVIDER} openid calendar.read")),
        ("OAUTH2_STATE_KEY", STATE_KEY.to_owned()),
        ("OAUTH2_POLL_INTERVAL_MS", "25".to_owned()),
        ("OAUTH2_POLL_LIMIT", limit.to_owned()),
    ]
}

async fn start(overrides: impl Fn(&Stack) -> Vec<(&'static str, String)>) -> Function {
    let stack = Stack::start().await.unwrap();
    let owned = overrides(&stack);
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Function::with_stack(stack, &pairs).await
}

/// A streamed `/process` turn read frame by frame.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    events: Vec<Value>,
}

impl Stream {
    async fn open(f: &Function, user: &str) -> Stream {
        Stream::open_with(f, user, None).await
    }

    /// With `bearer` as the caller's `Authorization: Bearer` (a JWT user).
    async fn open_with(f: &Function, user: &str, bearer: Option<&str>) -> Stream {
        let mut body = user_request("Tell me the time in UTC");
        body["user_id"] = json!(user);
        let mut request = Function::client().post(f.url("/process")).json(&body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Stream { response, buffer: String::new(), events: Vec::new() }
    }

    /// Reads until an event matches `want` (returned) or the stream ends (None).
    async fn until(&mut self, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let mut seen = 0;
        loop {
            if let Some(hit) = self.events[seen..].iter().find(|e| want(e)) {
                return Some(hit.clone());
            }
            seen = self.events.len();
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk()).await.expect("the stream moves");
            let chunk = chunk.unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                self.events.extend(parse_sse(&frame));
            }
        }
    }

    /// The `{"type":"oauth2_authorization",…}` data content of the consent message.
    async fn authorization(&mut self) -> Value {
        let content = self.until(|e| e["object"] == "content" && e["data"]["type"] == "oauth2_authorization").await;
        content.unwrap_or_else(|| panic!("no authorization in {:?}", self.events))["data"].clone()
    }

    /// The final response object.
    async fn finish(mut self) -> (Value, Vec<Value>) {
        let last = self.until(|e| e["object"] == "response" && e["completed_at"].is_number()).await;
        (last.unwrap_or_else(|| panic!("no final response in {:?}", self.events)), self.events)
    }
}

fn of(f: &Function, action: &str) -> Vec<RecordedRequest> {
    f.stack.identity.requests().into_iter().filter(|r| r.action == action).collect()
}

/// The user: opens the consent page, clicks Allow, and lets the browser follow the redirect to the return
/// URL. Returns the final URL and the page it shows.
async fn consent(url: &str) -> (reqwest::Url, u16, String) {
    let browser = Function::client();
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("decision=allow"), "{page}");
    let answer = browser.get(format!("{url}&decision=allow")).header("accept", "text/html").send().await.unwrap();
    let (final_url, status) = (answer.url().clone(), answer.status().as_u16());
    (final_url, status, answer.text().await.unwrap())
}

/// Clicks Allow without following the redirect: the callback URL the browser would open.
async fn callback_url(url: &str) -> String {
    let browser = fc_identity_agent::upstream::client_builder().redirect(reqwest::redirect::Policy::none()).build();
    let answer = browser.unwrap().get(format!("{url}&decision=allow")).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    answer.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_link_is_streamed_the_user_consents_and_the_turn_goes_on_with_the_oauth2_token() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "400")).await;
    let mut stream = Stream::open(&f, "u1").await;
    let authorization = stream.authorization().await;
    assert_eq!(authorization["provider"], OAUTH2_PROVIDER);
    let url = authorization["url"].as_str().unwrap().to_owned();
    // The assistant text message carries the same link before the machine-readable content.
    let text =
        stream.events.iter().find(|e| e["type"] == "text" && e["text"].as_str().is_some_and(|t| t.contains(&url)));
    assert!(text.is_some(), "{:?}", stream.events);
    assert!(f.stack.mcp_oauth2.methods().is_empty(), "nothing reaches the server before the token");

    let (landed, status, page) = consent(&url).await;
    assert_eq!(landed.path(), "/oauth2/callback");
    assert_eq!(landed.port(), Some(f.addr.port()), "the browser came back to the function");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You authorized calendar"), "{page}");

    let (last, events) = stream.finish().await;
    assert_eq!(last["status"], "completed", "{last}");
    let tool_output = events
        .iter()
        .find(|e| e["type"] == "plugin_call_output" && e["content"][0]["data"]["name"] == "calendar_getutctime");
    assert!(tool_output.is_some(), "the OAuth2 server's tool answered: {events:?}");

    // The server got the provider's token on every request, and it is u1's.
    let issued = f.stack.identity.oauth2_tokens();
    assert_eq!(issued.len(), 1);
    let bearers = f.stack.mcp_oauth2.bearers();
    assert!(!bearers.is_empty() && bearers.iter().all(|b| *b == issued[0]), "{bearers:?}");
    assert_eq!(f.stack.identity.oauth2_user_of(&issued[0]).as_deref(), Some("u1"));
    assert!(f.stack.mcp_oauth2.methods().contains(&"tools/call".to_owned()));

    // What the function asked Agent Identity, as the SDK asks it.
    let gets = of(&f, GET_TOKEN);
    let first = &gets[0].params;
    assert_eq!(first["ResourceCredentialProviderName"], OAUTH2_PROVIDER);
    assert_eq!(first["OAuth2Flow"], "USER_FEDERATION");
    assert_eq!(first["Scopes"], r#"["openid","calendar.read"]"#);
    assert_eq!(first["ResourceOAuth2ReturnURL"], f.url("/oauth2/callback"));
    assert_eq!(first["ForceAuthentication"], "False");
    assert!(!first["CustomState"].is_empty() && !first.contains_key("SessionURI"));
    assert_eq!(f.stack.identity.subject_of(&first["WorkloadAccessToken"]).as_deref(), Some("u1"));
    assert!(gets[1..].iter().all(|g| g.params.contains_key("SessionURI")), "the rest are polls");
    // Signed with the role's STS credentials (AssumeRoleForWorkloadIdentity), as GetResourceAPIKey is.
    assert!(gets.iter().all(|g| g.access_key_id.as_deref().is_some_and(|id| id.starts_with("STS.WorkloadRole"))));
    let completes = of(&f, COMPLETE);
    assert_eq!(completes.len(), 1);
    assert_eq!(completes[0].params["UserIdentifier"], r#"{"UserId":"u1"}"#);
    // The function's own credentials, not the role's.
    assert_eq!(completes[0].access_key_id.as_deref(), Some(StandInOptions::STS_ID));
    assert_eq!(f.stack.identity.oauth2_completions().len(), 1);
}

#[tokio::test]
async fn a_cached_token_is_reused_and_one_the_server_refuses_is_fetched_again() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "400")).await;
    let mut stream = Stream::open(&f, "u1").await;
    let url = stream.authorization().await["url"].as_str().unwrap().to_owned();
    consent(&url).await;
    assert_eq!(stream.finish().await.0["status"], "completed");
    let fetches = of(&f, GET_TOKEN).len();

    // Within its lifetime: no Agent Identity call for it, no consent.
    let (last, events) = Stream::open(&f, "u1").await.finish().await;
    assert_eq!(last["status"], "completed", "{last}");
    assert!(!events.iter().any(|e| e["data"]["type"] == "oauth2_authorization"), "{events:?}");
    assert_eq!(of(&f, GET_TOKEN).len(), fetches, "the cached token was used");

    // Another user needs their own consent.
    let mut other = Stream::open(&f, "u2").await;
    let url = other.authorization().await["url"].as_str().unwrap().to_owned();
    consent(&url).await;
    assert_eq!(other.finish().await.0["status"], "completed");

    // The provider expires u1's token; the vault refreshes it: one 401, then the fresh one, no consent.
    let old = f
        .stack
        .identity
        .oauth2_tokens()
        .into_iter()
        .find(|t| f.stack.identity.oauth2_user_of(t).as_deref() == Some("u1"))
        .unwrap();
    let fresh = f.stack.identity.expire_oauth2(&old).unwrap();
    let before = of(&f, GET_TOKEN).len();
    let (last, events) = Stream::open(&f, "u1").await.finish().await;
    assert_eq!(last["status"], "completed", "{last}");
    assert!(!events.iter().any(|e| e["data"]["type"] == "oauth2_authorization"));
    assert_eq!(of(&f, GET_TOKEN).len(), before + 1, "one fetch after the refusal");
    assert_eq!(f.stack.mcp_oauth2.bearers().last(), Some(&fresh));
}

#[tokio::test]
async fn each_server_gets_its_own_bearer() {
    let f = start(|stack| {
        let mut env = stack.oauth2_env();
        env.extend([("OAUTH2_POLL_INTERVAL_MS", "25".to_owned()), ("OAUTH2_POLL_LIMIT", "400".to_owned())]);
        env
    })
    .await;
    let mut stream = Stream::open(&f, "u1").await;
    let url = stream.authorization().await["url"].as_str().unwrap().to_owned();
    consent(&url).await;
    assert_eq!(stream.finish().await.0["status"], "completed");
    let wats = f.stack.mcp.bearers();
    assert!(
        !wats.is_empty() && wats.iter().all(|b| f.stack.identity.subject_of(b).as_deref() == Some("u1")),
        "{wats:?}"
    );
    let oauth2 = f.stack.mcp_oauth2.bearers();
    assert!(!oauth2.is_empty() && oauth2.iter().all(|b| f.stack.identity.oauth2_user_of(b).as_deref() == Some("u1")));
}

#[tokio::test]
async fn consent_that_never_comes_fails_the_turn_with_consent_timeout() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "3")).await;
    let mut stream = Stream::open(&f, "u1").await;
    let url = stream.authorization().await["url"].as_str().unwrap().to_owned();
    let (last, _) = stream.finish().await;
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["error"]["code"], "consent_timeout", "{last}");
    let message = last["error"]["message"].as_str().unwrap();
    assert!(message.contains("calendar") && message.contains("OAUTH2_POLL_LIMIT"), "{message}");
    assert_eq!(of(&f, GET_TOKEN).len(), 1 + 3, "one request, then the poll limit");
    assert!(f.stack.mcp_oauth2.methods().is_empty());
    assert!(!message.contains(&url), "{message}");
}

/// A second instance of the function on the same stack (same configuration, its own process state): a
/// callback may land on any instance.
async fn second_instance(f: &Function) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let env = only_oauth2(f.stack.mcp_oauth2.url(), "400");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let public = format!("http://{}", f.addr);
    pairs.push(("AGENT_PUBLIC_URL", &public));
    let app: Arc<App> = App::new(common::config(&f.stack, &pairs).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (options, handler) = (app.run_options(), app.handler());
    tokio::spawn(async move {
        let _ = fc_runtime::Runtime::new(handler)
            .options(options)
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    (format!("http://{addr}"), stop)
}

#[tokio::test]
async fn forged_other_users_and_replayed_callbacks_are_refused_with_nothing_completed() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "400")).await;
    let client = Function::client();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let answer = client.get(url).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap())
        }
    };
    let mut alice = Stream::open(&f, "alice").await;
    let alice_url = alice.authorization().await["url"].as_str().unwrap().to_owned();
    let mut bob = Stream::open(&f, "bob").await;
    let bob_url = bob.authorization().await["url"].as_str().unwrap().to_owned();
    let alice_callback = callback_url(&alice_url).await;
    let bob_callback = callback_url(&bob_url).await;
    let query = |url: &str, name: &str| {
        let url = reqwest::Url::parse(url).unwrap();
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
    };
    let (alice_session, alice_state) = (query(&alice_callback, "session_uri"), query(&alice_callback, "state"));
    let bob_state = query(&bob_callback, "state");
    let callback = |session: &str, state: &str| {
        let mut url = reqwest::Url::parse(&f.url("/oauth2/callback")).unwrap();
        url.query_pairs_mut().append_pair("session_uri", session).append_pair("state", state);
        url.to_string()
    };

    // Missing parameters, a state altered by one bit, and one that is no sealed state at all.
    let (status, body) = get(f.url("/oauth2/callback?state=x")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("session_uri"), "{body}");
    let tampered = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut sealed = engine.decode(alice_state.strip_prefix("v2.").unwrap()).unwrap();
        sealed[20] ^= 1;
        format!("v2.{}", engine.encode(sealed))
    };
    let (status, body) = get(callback(&alice_session, &tampered)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not open"), "{body}");
    let (status, body) = get(callback(&alice_session, "v2.AAAA")).await;
    assert_eq!(status, 400, "{body}");
    assert!(of(&f, COMPLETE).is_empty(), "a state the function did not sign never reaches Agent Identity");

    // Bob's genuine state with alice's session: Agent Identity refuses to bind alice's consent to bob.
    let (status, body) = get(callback(&alice_session, &bob_state)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Forbidden.UserMismatch"), "{body}");
    assert!(f.stack.identity.oauth2_completions().is_empty(), "nothing completed");

    // The refused pairing did not use up alice's session URI: her own callback is accepted here.
    let (status, body) = get(alice_callback.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(f.stack.identity.oauth2_completions(), std::slice::from_ref(&alice_session));
    let (last, _) = alice.finish().await;
    assert_eq!(last["status"], "completed", "{last}");

    // Bob's callback lands on another instance than his waiting turn: the state alone is enough there.
    let (other, stop) = second_instance(&f).await;
    let (status, body) = get(bob_callback.replace(&format!("http://{}", f.addr), &other)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(f.stack.identity.oauth2_completions().len(), 2);
    let (last, _) = bob.finish().await;
    assert_eq!(last["status"], "completed", "{last}");

    // Replayed: on the instance that took it (its own memory), and on another one (the upstream's
    // once-only rule). Nothing is completed again.
    let (status, body) = get(alice_callback.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("already used"), "{body}");
    let (status, body) = get(alice_callback.replace(&format!("http://{}", f.addr), &other)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CompleteResourceTokenAuth"), "{body}");
    assert_eq!(f.stack.identity.oauth2_completions().len(), 2);
    let _ = stop.send(());
}

#[tokio::test]
async fn a_browser_gets_refusals_as_an_escaped_page_and_no_oauth2_config_means_no_route() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "400")).await;
    let answer =
        f.send("GET", "/oauth2/callback?session_uri=%3Cscript%3E&state=%3Cb%3E", &[("accept", "text/html")], "").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(!answer.text.contains("<script>") && !answer.text.contains("<b>"), "{}", answer.text);
    assert_eq!(f.send("POST", "/oauth2/callback", &[], "").await.status, 405);

    let plain = Function::start(&[]).await;
    let answer = plain.send("GET", "/oauth2/callback?session_uri=a&state=b", &[], "").await;
    assert_eq!(answer.status, 404, "{}", answer.text);
}

/// A JWT the Agent Identity stand-in reads (it checks claims, not the signature).
fn jwt(sub: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let claims = b64(json!({"sub": sub, "iss": "https://idp.example", "aud": "agent", "exp": 4_102_444_800u64}));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

#[tokio::test]
async fn a_jwt_users_consent_is_confirmed_with_that_users_jwt_sealed_in_the_state() {
    let f = start(|stack| only_oauth2(stack.mcp_oauth2.url(), "400")).await;
    let carol = jwt("carol");
    let mut stream = Stream::open_with(&f, "ignored", Some(&carol)).await;
    let url = stream.authorization().await["url"].as_str().unwrap().to_owned();
    let callback = callback_url(&url).await;
    // The browser carries no bearer; the state carries the JWT, sealed (not readable in the URL).
    let claims = carol.split('.').nth(1).unwrap();
    assert!(!callback.contains(claims) && !callback.contains("carol"), "{callback}");
    let answer = Function::client().get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let completes = of(&f, COMPLETE);
    assert_eq!(completes.len(), 1);
    assert_eq!(completes[0].params["UserIdentifier"], json!({ "UserJWT": carol }).to_string());
    let (last, _) = stream.finish().await;
    assert_eq!(last["status"], "completed", "{last}");
    let bearers = f.stack.mcp_oauth2.bearers();
    assert!(bearers.iter().all(|b| f.stack.identity.oauth2_user_of(b).as_deref() == Some("carol")), "{bearers:?}");
}

/// `AGENT_IDENTITY_USER_SOURCE=jwt` (issue 26, part 3): the consent is bound to the user it was asked for.
/// The plain callback completes nothing; the application's return page passes the redirect's parameters to
/// `POST /oauth2/complete` with its signed-in user's JWT, and only the JWT of the user who asked completes.
#[tokio::test]
async fn with_jwt_users_only_the_user_who_asked_completes_their_consent() {
    let f = start(|stack| {
        let mut vars = only_oauth2(stack.mcp_oauth2.url(), "400");
        vars.push(("AGENT_IDENTITY_USER_SOURCE", "jwt".to_owned()));
        vars
    })
    .await;
    let (carol, mallory) = (jwt("carol"), jwt("mallory"));
    let mut stream = Stream::open_with(&f, "ignored", Some(&carol)).await;
    let url = stream.authorization().await["url"].as_str().unwrap().to_owned();
    let callback = callback_url(&url).await;
    let query = |name: &str| {
        let url = reqwest::Url::parse(&callback).unwrap();
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
    };
    let (session_uri, state) = (query("session_uri"), query("state"));
    // Only the subject is sealed now: the state is far shorter than one holding the JWT, and names no one.
    assert!(!callback.contains("carol") && !state.contains(carol.split('.').nth(1).unwrap()), "{callback}");
    assert!(state.len() < carol.len(), "the JWT itself is not in the state");

    let client = Function::client();
    let answer = client.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 403, "the plain callback is refused under USER_SOURCE=jwt");
    assert!(answer.text().await.unwrap().contains("POST /oauth2/complete"));

    let complete = |bearer: Option<String>, body: Value| {
        let client = client.clone();
        let url = f.url("/oauth2/complete");
        async move {
            let mut request = client.post(url).json(&body);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap())
        }
    };
    let both = json!({ "session_uri": session_uri, "state": state });
    let (status, body) = complete(None, both.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = complete(Some(mallory.clone()), both.clone()).await;
    assert_eq!(status, 403, "another user's JWT: {body}");
    assert!(!body.contains(&mallory) && !body.contains(&carol), "{body}");
    let (status, body) = complete(Some(carol.clone()), json!({ "session_uri": session_uri })).await;
    assert_eq!((status, body.contains("state: required")), (400, true), "{body}");
    let (status, body) = complete(Some(carol.clone()), json!({ "session_uri": session_uri, "state": "v2.AAAA" })).await;
    assert_eq!(status, 400, "{body}");
    assert!(of(&f, COMPLETE).is_empty(), "nothing was completed by the refused attempts");

    let (status, body) = complete(Some(carol.clone()), both.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer, json!({ "completed": true, "provider": OAUTH2_PROVIDER }));
    let completes = of(&f, COMPLETE);
    assert_eq!(completes.len(), 1);
    assert_eq!(completes[0].params["UserIdentifier"], json!({ "UserJWT": carol }).to_string());
    let (status, body) = complete(Some(carol.clone()), both).await;
    assert_eq!(status, 400, "a replay: {body}");

    let (last, _) = stream.finish().await;
    assert_eq!(last["status"], "completed", "{last}");
    let bearers = f.stack.mcp_oauth2.bearers();
    assert!(bearers.iter().all(|b| f.stack.identity.oauth2_user_of(b).as_deref() == Some("carol")), "{bearers:?}");
}
