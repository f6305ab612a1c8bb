//! The agent loop (`agent::run_turn` + `mcp::Tools`) against the stand-ins over real sockets, and through the
//! whole function where the flow spans identity, tools and model.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Function, user_request};
use devstack::dashscope::{self, DashScopeStandIn};
use devstack::mcp_server::{self, McpStandIn};
use fc_identity_agent::agent::{self, Turn, TurnEnd, TurnEvent};
use fc_identity_agent::failure::{Failure, FailureCode};
use fc_identity_agent::llm::{ChatMessage, LlmClient, LlmSettings, Sampling};
use fc_identity_agent::mcp::{McpClient, McpError, McpSettings, TokenError, TokenSource, Tools};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

const KEY: &str = "sk-SENTINEL-agent-3c1d";
const WAT: &str = "wat-SENTINEL-first-9e2b";
const FRESH_WAT: &str = "wat-SENTINEL-fresh-5a7f";
const ONE_TOOL_TURN: [&str; 4] = ["initialize", "notifications/initialized", "tools/list", "tools/call"];
/// Long enough that a test only passes if something other than the next chunk ended the wait.
const STALLED: Duration = Duration::from_secs(60);

/// A DashScope stand-in, an MCP stand-in whose accepted bearers the test controls, and clients for both.
struct Rig {
    dashscope: DashScopeStandIn,
    mcp: McpStandIn,
    accepted: Arc<Mutex<HashSet<String>>>,
    refreshes: Arc<AtomicUsize>,
    llm: LlmClient,
    tools: McpClient,
}

impl Rig {
    async fn start() -> Rig {
        Rig::with_slow_interval(dashscope::StandInOptions::default().slow_interval).await
    }

    /// `[fault:slow]` pauses this long before every chunk.
    async fn with_slow_interval(slow_interval: Duration) -> Rig {
        let dashscope = DashScopeStandIn::start(dashscope::StandInOptions {
            slow_interval,
            ..dashscope::StandInOptions::with_key(KEY)
        })
        .await
        .expect("dashscope stand-in starts");
        let accepted = Arc::new(Mutex::new(HashSet::from([WAT.to_owned()])));
        let check = accepted.clone();
        let mcp =
            McpStandIn::start(mcp_server::StandInOptions::new(move |token| check.lock().unwrap().contains(token)))
                .await
                .expect("mcp stand-in starts");
        let llm = LlmClient::new(LlmSettings {
            base_url: Endpoint::parse(&dashscope.base_url()).expect("a valid base URL"),
            api_key: Secret::new(KEY),
            model: "qwen-max".into(),
            allowed_models: Vec::new(),
            enable_thinking: None,
        })
        .expect("llm client builds");
        let tools =
            McpClient::new(McpSettings::new(vec![Endpoint::parse(mcp.url()).unwrap()], Duration::from_secs(10)))
                .expect("mcp client builds");
        Rig { dashscope, mcp, accepted, refreshes: Arc::new(AtomicUsize::new(0)), llm, tools }
    }

    /// From now on the MCP stand-in accepts only `tokens` (as a gateway after a token expired).
    fn accept_only(&self, tokens: &[&str]) {
        *self.accepted.lock().unwrap() = tokens.iter().map(|t| (*t).to_owned()).collect();
    }

    fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// A token source that hands out `WAT`, then `FRESH_WAT` once `WAT` was refused, counting refreshes.
    fn source(&self) -> Arc<dyn TokenSource> {
        Arc::new(RigTokens { current: Mutex::new(WAT), refreshes: self.refreshes.clone(), refresh_fails: false })
    }

    async fn open_toolbox(&self) -> Result<Tools, McpError> {
        Tools::open(self.tools.clone(), self.source(), deadline()).await
    }

    async fn toolbox(&self) -> Tools {
        self.open_toolbox().await.expect("toolbox opens")
    }

    fn request(&self, index: usize) -> Value {
        self.dashscope.requests()[index].body.clone()
    }
}

struct RigTokens {
    current: Mutex<&'static str>,
    refreshes: Arc<AtomicUsize>,
    /// After a refusal, the source cannot give a token (Agent Identity failing during the refresh).
    refresh_fails: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("Agent Identity answered 500")]
struct RefreshFailed;

impl TokenSource for RigTokens {
    fn token(&self) -> BoxFuture<'_, Result<Secret, TokenError>> {
        let current = *self.current.lock().unwrap();
        let refreshed = current == FRESH_WAT;
        Box::pin(async move {
            if refreshed && self.refresh_fails {
                return Err(Box::new(RefreshFailed) as TokenError);
            }
            Ok(Secret::new(current))
        })
    }

    fn refused(&self, token: &Secret) {
        let mut current = self.current.lock().unwrap();
        if token.expose() == *current {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            *current = FRESH_WAT;
        }
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn turn(text: &str) -> Turn {
    Turn {
        messages: vec![
            ChatMessage::System { content: "You're a helpful assistant named Friday.".into() },
            ChatMessage::User { content: text.into() },
        ],
        model: None,
        sampling: Sampling::default(),
        max_iters: 10,
        deadline: deadline(),
        approvals: Default::default(),
    }
}

/// Runs the turn to its end, collecting every event; checks the invariants every turn has.
async fn run(llm: &LlmClient, tools: Option<&Tools>, turn: Turn) -> Vec<TurnEvent> {
    let (tx, mut rx) = mpsc::channel(4);
    let collect = async {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        events
    };
    let ((), events) = tokio::join!(agent::run_turn(llm, tools, turn, tx), collect);
    let finished = events.iter().filter(|e| matches!(e, TurnEvent::Finished(_))).count();
    assert_eq!(finished, 1, "exactly one Finished: {events:#?}");
    assert!(matches!(events.last(), Some(TurnEvent::Finished(_))), "Finished is last: {events:#?}");
    let shown = format!("{events:?}");
    for secret in [KEY, WAT, FRESH_WAT] {
        assert!(!shown.contains(secret), "secret in events: {shown}");
    }
    events
}

fn end(events: &[TurnEvent]) -> &TurnEnd {
    match events.last() {
        Some(TurnEvent::Finished(end)) => end,
        other => panic!("not finished: {other:?}"),
    }
}

fn failure(events: &[TurnEvent]) -> &Failure {
    match end(events) {
        TurnEnd::Failed(error) => error,
        other => panic!("expected a failure, got {other:?}: {events:#?}"),
    }
}

fn text(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// `(call_id, name, output)` of every ToolResult, in order.
fn tool_results(events: &[TurnEvent]) -> Vec<(String, String, Value)> {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolResult { call_id, name, output } => {
                Some((call_id.clone(), name.clone(), serde_json::to_value(&output.content).expect("content is JSON")))
            }
            _ => None,
        })
        .collect()
}

/// Polls a condition on a stand-in's counters; panics if it does not hold within a generous bound.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn tool_turn_reports_call_result_answer_usage_in_order() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    let events = run(&rig.llm, Some(&toolbox), turn("What time is it in UTC?")).await;
    toolbox.close().await;

    // One Usage per model call, the last one right before Finished.
    let usages = events.iter().filter(|e| matches!(e, TurnEvent::Usage(_))).count();
    assert_eq!(usages, 2, "{events:#?}");
    assert!(matches!(events[events.len() - 2], TurnEvent::Usage(_)), "{events:#?}");

    let steps: Vec<&TurnEvent> = events.iter().filter(|e| !matches!(e, TurnEvent::Usage(_))).collect();
    // First the one server's listing, under the label its URL gives (`…/mcp`), with what the model is offered.
    let TurnEvent::ToolsListed { server, tools } = steps[0] else { panic!("first: {:?}", steps[0]) };
    assert_eq!(server, "mcp");
    let listed: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(events.iter().filter(|e| matches!(e, TurnEvent::ToolsListed { .. })).count(), 1, "once per server");
    let TurnEvent::ToolCallStarted { call_id, name } = steps[1] else { panic!("second: {:?}", steps[1]) };
    assert_eq!(name, "getutctime");
    let mut at = 2;
    let mut arguments = String::new();
    while let TurnEvent::ToolCallArgumentsDelta { call_id: id, delta } = steps[at] {
        assert_eq!(id, call_id);
        arguments.push_str(delta);
        at += 1;
    }
    assert!(at > 1, "argument deltas were forwarded: {events:#?}");
    assert_eq!(arguments, "{}");
    assert_eq!(
        steps[at],
        &TurnEvent::ToolCallCompleted { call_id: call_id.clone(), name: name.clone(), arguments: "{}".into() }
    );
    let TurnEvent::ToolResult { call_id: result_id, name: result_name, output } = steps[at + 1] else {
        panic!("after completion: {:?}", steps[at + 1])
    };
    assert_eq!((result_id, result_name), (call_id, name));
    let output = serde_json::to_value(&output.content).unwrap();
    let time = output[0]["text"].as_str().expect("text content").to_owned();
    assert_eq!(output, json!([{"type": "text", "text": time}]));
    let rest = &steps[at + 2..steps.len() - 1];
    assert!(!rest.is_empty() && rest.iter().all(|e| matches!(e, TurnEvent::TextDelta(_))), "{rest:#?}");
    assert_eq!(text(&events), format!("The tool said: {time}"));
    assert_eq!(end(&events), &TurnEnd::Completed);

    // The model got the tools, then its own call and the tool's answer back.
    assert_eq!(rig.dashscope.request_count(), 2);
    let first = rig.request(0);
    let offered: Vec<&str> =
        first["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(offered.contains(&"getutctime"), "{offered:?}");
    assert_eq!(listed, offered, "the listing names the tools as the model was offered them");
    let schema = &first["tools"][0]["function"]["parameters"];
    assert_eq!(Some(&*tools[0].input_schema), schema.as_object());
    let messages = rig.request(1)["messages"].as_array().unwrap().clone();
    let assistant = &messages[2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["tool_calls"][0]["id"], call_id.as_str());
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": call_id, "content": time}));
}

#[tokio::test]
async fn plain_turn_without_tools_streams_the_answer() {
    let rig = Rig::start().await;
    let events = run(&rig.llm, None, turn("Hello there")).await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    let n = events.len();
    assert!(matches!(events[n - 2], TurnEvent::Usage(_)), "{events:#?}");
    assert!(n > 2 && events[..n - 2].iter().all(|e| matches!(e, TurnEvent::TextDelta(_))), "{events:#?}");
    assert!(text(&events).contains("Hello there"), "{}", text(&events));
    assert!(rig.request(0).get("tools").is_none(), "no tools offered: {}", rig.request(0));
    assert_eq!(rig.mcp.request_count(), 0);

    // Through the function with no MCP server configured: no token is fetched, no tool is offered.
    let f = Function::start(&[("AI_GATEWAY_MCP_SERVER", "")]).await;
    let events = f.process(&user_request("Hello there")).await;
    assert_eq!(events.last().unwrap()["status"], "completed", "{:?}", events.last());
    assert!(f.stack.identity.requests().is_empty());
    assert_eq!(f.stack.mcp.request_count(), 0);
    assert!(f.stack.dashscope.requests()[0].body.get("tools").is_none());
}

#[tokio::test]
async fn reasoning_is_forwarded_before_the_answer() {
    let rig = Rig::start().await;
    let thinking = LlmClient::new(LlmSettings {
        base_url: Endpoint::parse(&rig.dashscope.base_url()).expect("a valid base URL"),
        api_key: Secret::new(KEY),
        model: "qwen-plus".into(),
        allowed_models: Vec::new(),
        enable_thinking: Some(true),
    })
    .unwrap();
    let events = run(&thinking, None, turn("Why is the sky blue?")).await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    let first_text = events.iter().position(|e| matches!(e, TurnEvent::TextDelta(_))).expect("an answer");
    let reasoning: String = events[..first_text]
        .iter()
        .map(|e| match e {
            TurnEvent::ReasoningDelta(r) => r.as_str(),
            other => panic!("before the answer: {other:?}"),
        })
        .collect();
    assert_eq!(reasoning, "Let me think about the question step by step.");
}

#[tokio::test]
async fn one_steps_two_tool_calls_run_concurrently() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    let events = run(&rig.llm, Some(&toolbox), turn("Let's rendezvous")).await;
    toolbox.close().await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    let results = tool_results(&events);
    assert_eq!(results.len(), 2, "{events:#?}");
    assert_ne!(results[0].0, results[1].0, "distinct call ids");
    // Each call answers "met" only while the other one is in flight at the stand-in.
    for (_, name, output) in &results {
        assert_eq!(name, "rendezvous");
        assert_eq!(output, &json!([{"type": "text", "text": "met"}]));
    }
    assert_eq!(rig.mcp.method_count("tools/call"), 2);
}

#[tokio::test]
async fn failing_tool_goes_back_to_the_model_and_the_turn_completes() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    let events = run(&rig.llm, Some(&toolbox), turn("Use the broken tool")).await;
    toolbox.close().await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    let results = tool_results(&events);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].2, json!([{"type": "text", "text": "the broken tool always fails"}]));
    let tool_message = &rig.request(1)["messages"][3];
    assert_eq!(tool_message["role"], "tool");
    assert!(tool_message["content"].as_str().unwrap().contains("the broken tool always fails"), "{tool_message}");
    assert!(text(&events).contains("always fails"), "{}", text(&events));
}

#[tokio::test]
async fn max_iterations_ends_incomplete() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    let events = run(&rig.llm, Some(&toolbox), Turn { max_iters: 2, ..turn("Please loop forever") }).await;
    toolbox.close().await;
    let TurnEnd::Incomplete(error) = end(&events) else { panic!("{events:#?}") };
    assert_eq!(error.code, FailureCode::MaxIterations);
    assert_eq!(rig.dashscope.request_count(), 2);
    assert_eq!(tool_results(&events).len(), 2);
}

/// A plain turn with `question`; returns its events and how many requests the model stand-in saw.
async fn model_turn(question: &str) -> (Vec<TurnEvent>, usize) {
    let rig = Rig::start().await;
    let events = run(&rig.llm, None, turn(question)).await;
    (events, rig.dashscope.request_count())
}

#[tokio::test]
async fn throttled_once_is_retried_and_completes() {
    let (events, requests) = model_turn("Hi [fault:429-once]").await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    assert_eq!(requests, 2);
    assert!(!text(&events).is_empty());
}

#[tokio::test]
async fn midstream_error_fails_without_retry() {
    let (events, requests) = model_turn("Hi [fault:midstream-error]").await;
    let error = failure(&events);
    assert_eq!(error.code, FailureCode::ModelError);
    assert!(error.message.contains("standin-00000001"), "names the request id: {}", error.message);
    assert_eq!(requests, 1, "nothing is retried after the first delta");
    assert!(text(&events).starts_with("Partial answer"), "{events:#?}");
}

#[tokio::test]
async fn truncated_stream_fails_as_model_error() {
    let (events, requests) = model_turn("Hi [fault:cut]").await;
    assert_eq!(failure(&events).code, FailureCode::ModelError);
    assert_eq!(requests, 1);
}

#[tokio::test]
async fn persistent_throttling_fails_as_model_throttled() {
    let (events, requests) = model_turn("Hi [fault:429]").await;
    let error = failure(&events);
    assert_eq!(error.code, FailureCode::ModelThrottled);
    assert!(error.message.contains("Throttling"), "{}", error.message);
    assert_eq!(requests, 3, "first attempt and two retries");
}

#[tokio::test]
async fn server_error_fails_as_model_error() {
    let (events, requests) = model_turn("Hi [fault:500]").await;
    assert_eq!(failure(&events).code, FailureCode::ModelError);
    assert_eq!(requests, 3);
}

#[tokio::test]
async fn unauthorized_model_fails_without_retry() {
    let (events, requests) = model_turn("Hi [fault:401]").await;
    assert_eq!(failure(&events).code, FailureCode::ModelUnauthorized);
    assert_eq!(requests, 1);

    // A wrong key: same code, and the key is not in the message (`run` checks the sentinels).
    let rig = Rig::start().await;
    let wrong = LlmClient::new(LlmSettings {
        base_url: Endpoint::parse(&rig.dashscope.base_url()).expect("a valid base URL"),
        api_key: Secret::new(WAT),
        model: "qwen-max".into(),
        allowed_models: Vec::new(),
        enable_thinking: None,
    })
    .unwrap();
    let events = run(&wrong, None, turn("Hi")).await;
    assert_eq!(failure(&events).code, FailureCode::ModelUnauthorized);
}

#[tokio::test]
async fn other_model_failures_map_to_their_codes() {
    let rig = Rig::start().await;
    let cases = [
        ("[fault:quota]", FailureCode::ModelThrottled),
        ("[fault:404]", FailureCode::ModelBadRequest),
        ("[fault:filter]", FailureCode::ContentFiltered),
        ("[fault:midstream-filter]", FailureCode::ContentFiltered),
        ("[fault:eof]", FailureCode::ModelError),
        ("[fault:malformed]", FailureCode::ModelError),
    ];
    for (fault, code) in cases {
        let before = rig.dashscope.request_count();
        let events = run(&rig.llm, None, turn(&format!("Hi {fault}"))).await;
        assert_eq!(failure(&events).code, code, "{fault}: {events:#?}");
        assert_eq!(rig.dashscope.request_count(), before + 1, "{fault} is not retried");
    }
    // Pre-stream failures name the upstream's code and request id.
    let events = run(&rig.llm, None, turn("Hi [fault:401]")).await;
    let message = &failure(&events).message;
    assert!(message.contains("invalid_api_key") && message.contains("standin-"), "{message}");
}

#[tokio::test]
async fn failed_token_refresh_ends_the_turn_with_its_error() {
    let rig = Rig::start().await;
    let source = RigTokens { current: Mutex::new(WAT), refreshes: rig.refreshes.clone(), refresh_fails: true };
    let toolbox = Tools::open(rig.tools.clone(), Arc::new(source), deadline()).await.unwrap();
    rig.accept_only(&[]);
    let events = run(&rig.llm, Some(&toolbox), turn("What time is it?")).await;
    toolbox.close().await;
    let error = failure(&events);
    assert_eq!((error.code, error.message.as_str()), (FailureCode::IdentityError, "Agent Identity answered 500"));
}

#[tokio::test]
async fn mcp_401_mid_turn_refreshes_once_for_concurrent_calls() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    rig.accept_only(&[FRESH_WAT]);
    let events = run(&rig.llm, Some(&toolbox), turn("Let's rendezvous")).await;
    toolbox.close().await;
    assert_eq!(end(&events), &TurnEnd::Completed, "{events:#?}");
    assert_eq!(rig.refreshes(), 1, "both refused calls share one refresh");
    for (_, _, output) in tool_results(&events) {
        assert_eq!(output, json!([{"type": "text", "text": "met"}]));
    }
}

#[tokio::test]
async fn mcp_401_after_refresh_fails_as_tool_unauthorized() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    rig.accept_only(&[]);
    let events = run(&rig.llm, Some(&toolbox), turn("What time is it?")).await;
    toolbox.close().await;
    assert_eq!(failure(&events).code, FailureCode::ToolUnauthorized);
    assert_eq!(rig.refreshes(), 1);
}

#[tokio::test]
async fn mcp_401_at_open_refreshes_once_and_only_once_per_turn() {
    // Refused, and the refreshed token is refused too.
    let rig = Rig::start().await;
    rig.accept_only(&[]);
    let error = rig.open_toolbox().await.err().expect("open fails");
    assert_eq!(Failure::tools(&error, deadline()).code, FailureCode::ToolUnauthorized);
    assert_eq!(rig.refreshes(), 1);

    // Refused, the refreshed token works; when that one is refused mid-turn there is no second refresh.
    let rig = Rig::start().await;
    rig.accept_only(&[FRESH_WAT]);
    let toolbox = rig.toolbox().await;
    assert_eq!(rig.refreshes(), 1);
    rig.accept_only(&[]);
    let events = run(&rig.llm, Some(&toolbox), turn("What time is it?")).await;
    toolbox.close().await;
    assert_eq!(failure(&events).code, FailureCode::ToolUnauthorized);
    assert_eq!(rig.refreshes(), 1);
}

#[tokio::test]
async fn revoked_cached_token_is_refreshed_with_one_identity_call() {
    let f = Function::start(&[]).await;
    let events = f.process(&user_request("What time is it?")).await;
    assert_eq!(events.last().unwrap()["status"], "completed", "{:?}", events.last());
    assert_eq!(f.stack.identity.requests().len(), 1);
    // Warm cache: no identity call.
    let events = f.process(&user_request("What time is it now?")).await;
    assert_eq!(events.last().unwrap()["status"], "completed");
    assert_eq!(f.stack.identity.requests().len(), 1);

    for token in f.stack.identity.issued_tokens() {
        assert!(f.stack.identity.revoke(&token));
    }
    let events = f.process(&user_request("And what time is it now?")).await;
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(f.stack.identity.requests().len(), 2, "exactly one new Agent Identity call");
    assert_eq!(f.stack.identity.issued_tokens().len(), 1);
}

#[tokio::test]
async fn one_tool_turn_takes_at_most_four_mcp_requests() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    let events = run(&rig.llm, Some(&toolbox), turn("What time is it?")).await;
    toolbox.close().await;
    assert_eq!(end(&events), &TurnEnd::Completed);
    assert_eq!(rig.mcp.methods(), ONE_TOOL_TURN);

    // The same through the whole function.
    let f = Function::start(&[]).await;
    let events = f.process(&user_request("Say hello to Ada")).await;
    assert_eq!(events.last().unwrap()["status"], "completed");
    assert_eq!(f.stack.mcp.methods(), ONE_TOOL_TURN);
}

#[tokio::test]
async fn dropped_receiver_cancels_the_model_stream() {
    let rig = Rig::with_slow_interval(STALLED).await;
    let (tx, rx) = mpsc::channel(4);
    let (llm, question) = (rig.llm.clone(), turn("Hi [fault:slow]"));
    let task = tokio::spawn(async move { agent::run_turn(&llm, None, question, tx).await });
    eventually("the model call arrived", || rig.dashscope.request_count() == 1).await;
    drop(rx);
    assert!(rig.dashscope.wait_cancelled(1, Duration::from_secs(10)).await, "the stand-in saw the stream abandoned");
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the turn ends").unwrap();
}

#[tokio::test]
async fn dropped_tool_call_cancels_the_mcp_request() {
    let rig = Rig::start().await;
    let toolbox = rig.toolbox().await;
    // A lone rendezvous waits for a partner that never comes.
    tokio::select! {
        result = toolbox.call("rendezvous", json!({})) => panic!("a lone rendezvous answered: {result:?}"),
        () = eventually("the call arrived", || rig.mcp.method_count("tools/call") == 1) => {}
    }
    // MCP cancels a request by notification; the HTTP exchange itself may end normally.
    eventually("the stand-in was told the call is cancelled", || rig.mcp.method_count("notifications/cancelled") == 1)
        .await;
    toolbox.close().await;
}

#[tokio::test]
async fn dropped_http_client_cancels_the_turn_upstream() {
    use futures_util::StreamExt;

    let f = Function::start(&[]).await;
    let client = Function::client();
    let response =
        client.post(f.url("/process")).json(&user_request("No tools, just talk [fault:slow]")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    // The first frames are the response/message prologue; wait for the model's stream to be under way.
    body.next().await.expect("a first frame").unwrap();
    eventually("the model call arrived", || f.stack.dashscope.request_count() == 1).await;
    drop(body);
    drop(client);
    assert!(
        f.stack.dashscope.wait_cancelled(1, Duration::from_secs(10)).await,
        "the stand-in saw the model stream abandoned"
    );
}

#[tokio::test]
async fn deadline_during_a_slow_stream_fails_promptly() {
    let rig = Rig::with_slow_interval(STALLED).await;
    let question = Turn { deadline: Instant::now() + Duration::from_secs(1), ..turn("Hi [fault:slow]") };
    let events = tokio::time::timeout(Duration::from_secs(10), run(&rig.llm, None, question))
        .await
        .expect("the turn ends at its deadline, not at the stalled chunk");
    assert_eq!(failure(&events).code, FailureCode::DeadlineExceeded);
    assert!(rig.dashscope.wait_cancelled(1, Duration::from_secs(10)).await, "the model stream was dropped");
}
