//! The DashScope client against the scripted stand-in, over real loopback sockets.

use std::collections::HashMap;
use std::time::Duration;

use devstack::dashscope::{DashScopeStandIn, StandInOptions};
use fc_identity_agent::llm::{
    ChatMessage, ChatRequest, ChatStream, FinishReason, LlmClient, LlmError, LlmSettings, Sampling, StepResult,
    StopSequences, StreamItem, ToolCall, ToolSpec,
};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use serde_json::json;
use tokio::time::Instant;

const KEY: &str = "sk-SENTINEL-7f3a9c-never-print";

async fn standin() -> DashScopeStandIn {
    DashScopeStandIn::start(StandInOptions::with_key(KEY)).await.expect("stand-in starts")
}

fn client_with(standin: &DashScopeStandIn, key: &str, thinking: Option<bool>) -> LlmClient {
    LlmClient::new(LlmSettings {
        base_url: Endpoint::parse(&standin.base_url()).expect("a valid base URL"),
        api_key: Secret::new(key),
        model: "qwen-max".into(),
        allowed_models: Vec::new(),
        enable_thinking: thinking,
    })
    .expect("client builds")
}

fn client(standin: &DashScopeStandIn) -> LlmClient {
    client_with(standin, KEY, None)
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::System { content: "You're a helpful assistant named Friday.".into() },
        ChatMessage::User { content: text.into() },
    ])
}

fn tools(names: &[&str]) -> Vec<ToolSpec> {
    names
        .iter()
        .map(|n| ToolSpec {
            name: (*n).into(),
            description: "a tool".into(),
            parameters: std::sync::Arc::new(serde_json::Map::from_iter([("type".to_owned(), json!("object"))])),
        })
        .collect()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Reads the stream to its end: the events before the end, and either the step result or the error.
async fn drain(mut stream: ChatStream) -> (Vec<StreamItem>, Result<StepResult, LlmError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamItem::Done(step)) => {
                assert!(stream.next().await.is_none(), "nothing after Done");
                return (events, Ok(step));
            }
            Ok(event) => events.push(event),
            Err(err) => {
                assert!(stream.next().await.is_none(), "nothing after an error");
                return (events, Err(err));
            }
        }
    }
    panic!("stream ended without Done or an error");
}

async fn run(client: &LlmClient, request: &ChatRequest) -> (Vec<StreamItem>, Result<StepResult, LlmError>) {
    match client.stream(request, deadline()).await {
        Ok(stream) => drain(stream).await,
        Err(err) => (Vec::new(), Err(err)),
    }
}

fn text_of(events: &[StreamItem]) -> String {
    events.iter().filter_map(|e| if let StreamItem::TextDelta(t) = e { Some(t.as_str()) } else { None }).collect()
}

#[tokio::test]
async fn plain_turn_streams_text_usage_and_sends_the_expected_body() {
    let standin = standin().await;
    let client = client(&standin);
    let mut request = ask("What is the capital of France?");
    request.sampling = Sampling {
        temperature: Some(0.7),
        seed: Some(1),
        stop: Some(StopSequences::One("END".into())),
        ..Sampling::default()
    };
    let (events, step) = run(&client, &request).await;
    let step = step.expect("plain turn succeeds");

    let deltas = events.iter().filter(|e| matches!(e, StreamItem::TextDelta(_))).count();
    assert!(deltas > 1, "answer arrives in several chunks: {events:?}");
    assert_eq!(text_of(&events), step.text);
    assert!(step.text.contains("What is the capital of France?"), "{}", step.text);
    assert_eq!(step.finish_reason, Some(FinishReason::Stop));
    assert!(step.tool_calls.is_empty() && step.reasoning.is_empty());
    let usage = step.usage.expect("usage chunk is read");
    assert!(usage.prompt_tokens > 0 && usage.total_tokens == usage.prompt_tokens + usage.completion_tokens);

    let sent = &standin.requests()[0].body;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["model"], "qwen-max");
    assert_eq!(
        (sent["temperature"].clone(), sent["seed"].clone(), sent["stop"].clone()),
        (json!(0.7), json!(1), json!("END"))
    );
    for absent in ["tools", "tool_choice", "parallel_tool_calls", "enable_thinking"] {
        assert!(sent.get(absent).is_none(), "{absent} must not be sent: {sent}");
    }
    assert_eq!(standin.cancelled(), 0, "a fully read stream is not an abandoned one");
}

/// Upstreams given by name go through the process's resolver (`dns.rs`): concurrent first connections to
/// one host all connect (they share one lookup), and a name that does not resolve is a transport failure
/// saying so.
#[tokio::test]
async fn a_host_name_resolves_for_concurrent_first_connections_and_an_unknown_one_fails_clearly() {
    let standin = standin().await;
    let by_name = standin.base_url().replace("://127.0.0.1:", "://localhost:");
    let client = LlmClient::new(LlmSettings {
        base_url: Endpoint::parse(&by_name).expect("a valid base URL"),
        api_key: Secret::new(KEY),
        model: "qwen-max".into(),
        allowed_models: Vec::new(),
        enable_thinking: None,
    })
    .expect("client builds");
    let request = ask("Say hello");
    let turns = futures_util::future::join_all((0..8).map(|_| run(&client, &request))).await;
    for (_, step) in &turns {
        assert!(step.as_ref().is_ok_and(|s| !s.text.is_empty()), "{step:?}");
    }
    assert_eq!(standin.requests().len(), 8);

    let nowhere = LlmClient::new(LlmSettings {
        base_url: Endpoint::parse("http://nowhere.invalid/compatible-mode/v1").expect("a valid base URL"),
        api_key: Secret::new(KEY),
        model: "qwen-max".into(),
        allowed_models: Vec::new(),
        enable_thinking: None,
    })
    .expect("client builds");
    let (_, step) = run(&nowhere, &request).await;
    match step {
        Err(LlmError::Transport { detail }) => assert!(detail.contains("dns error"), "{detail}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn parallel_tool_calls_accumulate_by_index() {
    let standin = standin().await;
    let client = client(&standin);
    let mut request = ask("What time is it? Also say hello to Alice.");
    request.tools = tools(&["clock__getutctime", "clock__helloworld"]);
    let (events, step) = run(&client, &request).await;
    let step = step.expect("tool step succeeds");

    assert_eq!(step.finish_reason, Some(FinishReason::ToolCalls));
    let calls: Vec<(&str, &str)> =
        step.tool_calls.iter().map(|c| (c.function.name.as_str(), c.function.arguments.as_str())).collect();
    assert_eq!(calls, [("clock__getutctime", "{}"), ("clock__helloworld", r#"{"name":"Alice"}"#)]);
    assert!(step.tool_calls.iter().all(|c| c.id.starts_with("call_") && c.kind == "function"));
    assert_ne!(step.tool_calls[0].id, step.tool_calls[1].id, "later chunks' \"id\":\"\" must not overwrite ids");

    // Per call: one Started (with the final id and name) before any of its fragments; fragments rebuild it.
    let mut started: HashMap<u32, (String, String)> = HashMap::new();
    let mut fragments: HashMap<u32, String> = HashMap::new();
    for event in &events {
        match event {
            StreamItem::ToolCallStarted { index, id, name } => {
                assert!(started.insert(*index, (id.clone(), name.clone())).is_none(), "started twice: {index}");
            }
            StreamItem::ToolCallArguments { index, fragment } => {
                assert!(started.contains_key(index), "fragment of call {index} before it started");
                fragments.entry(*index).or_default().push_str(fragment);
            }
            other => panic!("unexpected event in a tool step: {other:?}"),
        }
    }
    for (index, call) in step.tool_calls.iter().enumerate() {
        let index = index as u32;
        assert_eq!(started[&index], (call.id.clone(), call.function.name.clone()));
        let streamed = fragments.get(&index).cloned().unwrap_or_default();
        assert_eq!(if streamed.is_empty() { "{}".to_owned() } else { streamed }, call.function.arguments);
    }

    let sent = &standin.requests()[0].body;
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["parallel_tool_calls"], true);
    assert_eq!(sent["tools"][1]["function"]["name"], "clock__helloworld");
}

#[tokio::test]
async fn tool_results_feed_the_answer() {
    let standin = standin().await;
    let client = client(&standin);
    let mut request = ask("What time is it?");
    request.tools = tools(&["getutctime"]);
    request
        .messages
        .push(ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("call_1", "getutctime", "{}")] });
    request.messages.push(ChatMessage::Tool { tool_call_id: "call_1".into(), content: "2025-01-01T12:00:00Z".into() });
    let (_, step) = run(&client, &request).await;
    let step = step.expect("answer step succeeds");
    assert!(step.tool_calls.is_empty());
    assert!(step.text.contains("The tool said: 2025-01-01T12:00:00Z"), "{}", step.text);
    assert_eq!(standin.requests()[0].body["messages"][3]["tool_call_id"], "call_1");
}

#[tokio::test]
async fn reasoning_precedes_the_answer() {
    let standin = standin().await;
    let client = client_with(&standin, KEY, Some(true));
    let (events, step) = run(&client, &ask("Why is the sky blue?")).await;
    let step = step.expect("thinking step succeeds");
    let first_text = events.iter().position(|e| matches!(e, StreamItem::TextDelta(_))).expect("some text");
    let reasoning: String = events[..first_text]
        .iter()
        .map(|e| match e {
            StreamItem::ReasoningDelta(r) => r.as_str(),
            other => panic!("only reasoning before the answer: {other:?}"),
        })
        .collect();
    assert!(!reasoning.is_empty());
    assert_eq!(reasoning, step.reasoning);
    assert!(!events[first_text..].iter().any(|e| matches!(e, StreamItem::ReasoningDelta(_))));
    assert_eq!(standin.requests()[0].body["enable_thinking"], true);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_before_the_stream() {
    let standin = standin().await;
    let client = client(&standin);
    for (fault, first_status) in [("[fault:429-once]", 429), ("[fault:500-once]", 500)] {
        let before = standin.request_count();
        let (_, step) = run(&client, &ask(&format!("Hi {fault}"))).await;
        assert!(step.is_ok(), "{fault}: {step:?}");
        let statuses: Vec<u16> = standin.requests()[before..].iter().map(|r| r.status).collect();
        assert_eq!(statuses, [first_status, 200], "{fault}");
    }
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_two_retries() {
    let standin = standin().await;
    let (_, step) = run(&client(&standin), &ask("Hi [fault:429]")).await;
    let Err(LlmError::Throttled(up)) = &step else { panic!("{step:?}") };
    assert_eq!((up.status, up.code.as_deref()), (429, Some("Throttling")));
    assert_eq!(standin.request_count(), 3);
}

#[tokio::test]
async fn retries_never_wait_past_the_deadline() {
    let standin = standin().await;
    let client = client(&standin);
    // Shorter than the smallest backoff: the first 429 must be final.
    let result = client.stream(&ask("Hi [fault:429]"), Instant::now() + Duration::from_millis(60)).await;
    assert!(matches!(result, Err(LlmError::Throttled(_) | LlmError::DeadlineExceeded)), "{result:?}");
    // On a loaded machine the first attempt itself may hit the deadline (0 recorded); never a retry.
    assert!(standin.request_count() <= 1, "{:?}", standin.requests());
}

#[tokio::test]
async fn quota_is_not_retried() {
    let standin = standin().await;
    let (_, step) = run(&client(&standin), &ask("Hi [fault:quota]")).await;
    let Err(LlmError::Quota(up)) = &step else { panic!("{step:?}") };
    assert_eq!(up.code.as_deref(), Some("insufficient_quota"));
    assert_eq!(standin.request_count(), 1);
}

#[tokio::test]
async fn an_error_after_the_first_delta_is_final() {
    let standin = standin().await;
    let (events, step) = run(&client(&standin), &ask("Hi [fault:midstream-error]")).await;
    assert!(!text_of(&events).is_empty(), "text came before the error");
    let Err(LlmError::MidStream(up)) = &step else { panic!("{step:?}") };
    assert_eq!((up.status, up.code.as_deref()), (200, Some("internal_error")));
    assert!(up.request_id.as_deref().is_some_and(|id| id.starts_with("standin-")), "{up:?}");
    assert_eq!(standin.request_count(), 1, "no retry once something was streamed");

    let (_, step) = run(&client(&standin), &ask("Hi [fault:midstream-filter]")).await;
    assert!(matches!(&step, Err(LlmError::ContentFiltered(up)) if up.status == 200), "{step:?}");
}

#[tokio::test]
async fn error_statuses_map_to_their_variants() {
    let standin = standin().await;
    let client = client(&standin);
    let cases = [
        ("[fault:401]", "Unauthorized", 401, "invalid_api_key", 1),
        ("[fault:filter]", "ContentFiltered", 400, "data_inspection_failed", 1),
        ("[fault:404]", "BadRequest", 404, "model_not_found", 1),
        ("[fault:500]", "Server", 500, "internal_error", 3),
        ("[fault:503]", "Server", 503, "ModelServingError", 3),
    ];
    for (fault, variant, status, code, attempts) in cases {
        let before = standin.request_count();
        let (_, step) = run(&client, &ask(&format!("Hi {fault}"))).await;
        let err = step.expect_err(fault);
        assert!(format!("{err:?}").starts_with(variant), "{fault}: {err:?}");
        let up = err.upstream().expect("carries the upstream error");
        assert_eq!((up.status, up.code.as_deref()), (status, Some(code)), "{fault}");
        assert!(up.request_id.is_some(), "{fault}: {up:?}");
        assert_eq!(standin.request_count() - before, attempts, "{fault}");
    }
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_printed() {
    let standin = standin().await;
    let wrong = "sk-WRONG-SENTINEL-5e1d";
    let (_, step) = run(&client_with(&standin, wrong, None), &ask("Hi")).await;
    let err = step.expect_err("wrong key");
    assert!(matches!(&err, LlmError::Unauthorized(up) if up.status == 401), "{err:?}");
    let printed = format!("{err} {err:?}");
    assert!(!printed.contains(wrong) && !printed.contains("SENTINEL"), "{printed}");
    assert_eq!(standin.request_count(), 1);
}

#[tokio::test]
async fn streams_that_end_early_are_truncated() {
    let standin = standin().await;
    let client = client(&standin);
    for fault in ["[fault:cut]", "[fault:eof]"] {
        let (events, step) = run(&client, &ask(&format!("Hi {fault}"))).await;
        assert!(!events.is_empty(), "{fault}: text came first");
        assert!(matches!(step, Err(LlmError::Truncated { .. })), "{fault}: {step:?}");
    }
}

#[tokio::test]
async fn a_malformed_chunk_is_an_error() {
    let standin = standin().await;
    let (_, step) = run(&client(&standin), &ask("Hi [fault:malformed]")).await;
    assert!(matches!(step, Err(LlmError::Malformed { .. })), "{step:?}");
}

#[tokio::test]
async fn the_deadline_ends_a_slow_stream() {
    let standin = standin().await;
    let client = client(&standin);
    let deadline = Instant::now() + Duration::from_millis(500);
    let result = match client.stream(&ask("Hi [fault:slow]"), deadline).await {
        Ok(stream) => drain(stream).await.1,
        Err(err) => Err(err),
    };
    assert!(matches!(result, Err(LlmError::DeadlineExceeded)), "{result:?}");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_connection() {
    let standin = standin().await;
    let client = client(&standin);
    let mut stream = client.stream(&ask("Tell me a long story [fault:slow]"), deadline()).await.expect("stream starts");
    let first = stream.next().await.expect("an event").expect("not an error");
    assert!(matches!(first, StreamItem::TextDelta(_)), "{first:?}");
    assert_eq!(standin.cancelled(), 0);
    drop(stream);
    assert!(standin.wait_cancelled(1, Duration::from_secs(5)).await, "the stand-in saw the client leave");
    assert!(standin.requests()[0].cancelled);
}

#[tokio::test]
async fn the_stream_also_works_as_a_futures_stream() {
    use futures_util::StreamExt;
    let standin = standin().await;
    let stream = client(&standin).stream(&ask("Hello there"), deadline()).await.expect("stream starts");
    let items: Vec<_> = stream.into_stream().collect().await;
    assert!(matches!(items.last(), Some(Ok(StreamItem::Done(_)))), "{items:?}");
}

#[tokio::test]
async fn no_error_or_client_debug_contains_the_key() {
    let standin = standin().await;
    let client = client(&standin);
    let mut printed = format!("{client:?}");
    for fault in ["401", "429", "quota", "filter", "404", "midstream-error", "cut", "eof", "malformed"] {
        let (_, step) = run(&client, &ask(&format!("Hi [fault:{fault}]"))).await;
        let err = step.expect_err(fault);
        printed.push_str(&format!("{err}\n{err:?}\n"));
    }
    let stream = client.stream(&ask("Hi [fault:slow]"), Instant::now() + Duration::from_millis(300)).await;
    printed.push_str(&format!("{stream:?}"));
    assert!(!printed.contains(KEY) && !printed.contains("SENTINEL"), "{printed}");
}

#[tokio::test]
async fn the_stand_in_script_picks_tools_by_suffix() {
    let standin = standin().await;
    let client = client(&standin);
    let offered = tools(&["s1__getutctime", "s1__helloworld", "s2__rendezvous", "s2__broken"]);
    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("Please say hello to Bob", &[("s1__helloworld", r#"{"name":"Bob"}"#)]),
        ("rendezvous now", &[("s2__rendezvous", "{}"), ("s2__rendezvous", "{}")]),
        ("use the broken tool", &[("s2__broken", "{}")]),
        ("anything else", &[("s1__getutctime", "{}")]),
    ];
    for (question, expected) in cases {
        let mut request = ask(question);
        request.tools = offered.clone();
        let step = run(&client, &request).await.1.expect(question);
        let calls: Vec<(&str, &str)> =
            step.tool_calls.iter().map(|c| (c.function.name.as_str(), c.function.arguments.as_str())).collect();
        assert_eq!(calls, expected, "{question}");
    }

    // "loop forever" keeps calling even after a result (for max-iteration tests).
    let mut request = ask("loop forever");
    request.tools = offered.clone();
    request
        .messages
        .push(ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("c1", "s1__getutctime", "{}")] });
    request.messages.push(ChatMessage::Tool { tool_call_id: "c1".into(), content: "noon".into() });
    let step = run(&client, &request).await.1.expect("loop step");
    assert_eq!(step.tool_calls.len(), 1);
}
