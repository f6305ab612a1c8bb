//! The AgentScope wire format: request parsing, history mapping, the event builder against the seed's
//! real output, and event-invocation envelopes against real trigger payloads.

// Only the JSON helper: the rest of `common` starts the stand-ins, and this file needs none.
#[path = "common/json_order.rs"]
mod json_order;

use fc_identity_agent::agent::{TurnEnd, TurnEvent};
use fc_identity_agent::failure::{Failure, FailureCode};
use fc_identity_agent::llm::{ChatMessage, ToolCall, Usage};
use fc_identity_agent::mcp::{Content, ToolOutput};
use fc_identity_agent::pipeline::Renderer;
use fc_identity_agent::protocol::RequestError;
use fc_identity_agent::protocol::agentscope::{
    AgentRequest, AgentScopeAnswer, AgentScopeStream, ContentItem, MAX_INPUT_MESSAGES, MessageType, ResponseBuilder,
    Role, StreamObject,
};
use fc_identity_agent::protocol::triggers::{TriggerKind, parse_event, request_from_event};
use fc_identity_agent::rejection::{ErrorBody, Rejection};
use json_order::{J, key_lists_by_class};
use serde_json::{Value, json};

const REFERENCE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference/seed-process-tool-call.normalized.jsonl");
const EVENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fc3/events");

// ---------------------------------------------------------------------------------------------------
// Request parsing

fn parse(v: Value) -> Result<AgentRequest, RequestError> {
    AgentRequest::from_slice(v.to_string().as_bytes())
}

fn user_input() -> Value {
    json!([{"role":"user","type":"message","content":[{"type":"text","text":"Tell me the time in UTC"}]}])
}

#[test]
fn every_field_is_parsed() {
    let req = parse(json!({
        "input": user_input(), "session_id": "s1", "user_id": "u1", "stream": false, "model": "qwen-plus",
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 256, "stop": ["\n\n", "END"], "seed": 42,
        "tools": [{"type":"function","function":{"name":"f"}}], "id": "req-1"
    }))
    .unwrap();
    assert_eq!(req.input.len(), 1);
    assert_eq!(req.input[0].role, Some(Role::User));
    assert_eq!(req.input[0].kind, MessageType::Message);
    assert_eq!(req.input[0].content, vec![ContentItem::Text("Tell me the time in UTC".into())]);
    assert_eq!(req.session_id(), Some("s1"));
    assert_eq!(req.user_id(), Some("u1"));
    assert!(!req.stream);
    assert_eq!(req.model.as_deref(), Some("qwen-plus"));
    assert_eq!(req.temperature, Some(0.5));
    assert_eq!(req.top_p, Some(0.9));
    assert_eq!(req.max_tokens, Some(256));
    assert_eq!(req.stop, Some(vec!["\n\n".to_owned(), "END".to_owned()]));
    assert_eq!(req.seed, Some(42));
    assert_eq!(req.tools.as_ref().map(Vec::len), Some(1));
    assert_eq!(req.id.as_deref(), Some("req-1"));
}

#[test]
fn defaults_nulls_and_unknown_fields() {
    let req = parse(json!({"input": user_input(), "frequency_penalty": 1, "whatever": {"x": [1]}})).unwrap();
    assert!(req.stream, "stream defaults to true");
    assert_eq!(req.session_id(), None);
    assert_eq!(req.user_id(), None);
    assert_eq!((req.model, req.temperature, req.top_p, req.max_tokens), (None, None, None, None));
    assert_eq!((req.stop, req.seed, req.tools, req.id), (None, None, None, None));

    // The spec's example body: every optional field explicitly null.
    let req = parse(json!({"input": user_input(), "session_id":"s1","user_id":"u1","stream":true,"model":null,
        "temperature":null,"top_p":null,"max_tokens":null,"stop":null,"seed":null,"tools":null,"id":null}))
    .unwrap();
    assert!(req.stream && req.model.is_none() && req.stop.is_none());

    let req = parse(json!({"input": user_input(), "stop": "END", "session_id": "", "user_id": ""})).unwrap();
    assert_eq!(req.stop, Some(vec!["END".to_owned()]), "a single stop string becomes a list");
    assert_eq!((req.session_id(), req.user_id()), (None, None), "empty ids count as absent");
    assert_eq!(req.session_id.as_deref(), Some(""), "the raw field stays as sent");
}

#[test]
fn content_forms_are_read() {
    let req = parse(json!({"input": [
        {"content": "plain string content"},
        {"role":"user","content":[{"type":"image","image_url":"https://x/y.png"},{"type":"file","filename":"a.pdf"},
            {"type":"audio","data":"…"},{"type":"video"},{"type":"text","text":null}]},
        {"role":"assistant","type":"mcp_list_tools","content":[]}
    ]}))
    .unwrap();
    assert_eq!(req.input[0].role, None);
    assert_eq!(req.input[0].content, vec![ContentItem::Text("plain string content".into())]);
    assert_eq!(req.input[2].kind, MessageType::Other("mcp_list_tools".into()));
    assert_eq!(
        req.to_chat_messages(),
        vec![
            ChatMessage::User { content: "plain string content".into() },
            ChatMessage::User {
                content: "[image: https://x/y.png]\n[file: a.pdf]\n[audio]\n[attachment: video]".into()
            },
        ]
    );
}

fn rejection(body: &[u8]) -> String {
    match AgentRequest::from_slice(body) {
        Ok(req) => panic!("accepted {req:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn each_rejection_names_the_field() {
    let with = |extra: Value| {
        let mut body = json!({"input": user_input()});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        rejection(body.to_string().as_bytes())
    };
    let cases: Vec<(String, &str)> = vec![
        (rejection(b"{not json"), "body: not valid JSON"),
        (rejection(b"{\"input\": \"\xff\"}"), "body: not valid UTF-8"),
        (rejection(b"[1,2]"), "body: expected a JSON object"),
        (rejection(b"{}"), "input: required"),
        (rejection(br#"{"input":null}"#), "input: required"),
        (rejection(br#"{"input":[]}"#), "input: must hold at least one message"),
        (rejection(br#"{"input":"hi"}"#), "input: expected a list"),
        (rejection(br#"{"input":[1]}"#), "input[0]: expected a message object"),
        (rejection(br#"{"input":[{"role":"robot"}]}"#), "input[0].role: expected one of"),
        (rejection(br#"{"input":[{"role":7}]}"#), "input[0].role: expected a string"),
        (rejection(br#"{"input":[{"type":false}]}"#), "input[0].type: expected a string"),
        (rejection(br#"{"input":[{"content":{}}]}"#), "input[0].content: expected a list"),
        (rejection(br#"{"input":[{"content":[{"text":"x"}]}]}"#), "input[0].content[0].type: required"),
        (
            rejection(br#"{"input":[{"content":[{"type":"text","text":1}]}]}"#),
            "input[0].content[0].text: expected a string",
        ),
        (
            rejection(br#"{"input":[{"content":[{"type":"data","data":[]}]}]}"#),
            "input[0].content[0].data: expected an object",
        ),
        (with(json!({"stream": "yes"})), "stream: expected true or false"),
        (with(json!({"session_id": 5})), "session_id: expected a string"),
        (with(json!({"user_id": ["u"]})), "user_id: expected a string"),
        (with(json!({"model": 1})), "model: expected a string"),
        (with(json!({"id": {}})), "id: expected a string"),
        (with(json!({"temperature": "hot"})), "temperature: must be a number"),
        (with(json!({"temperature": -1})), "temperature: must be a number"),
        (with(json!({"top_p": 1.5})), "top_p: must be a number in (0, 1]"),
        (with(json!({"max_tokens": 0})), "max_tokens: expected a positive integer"),
        (with(json!({"max_tokens": 1.5})), "max_tokens: expected a positive integer"),
        (with(json!({"stop": 3})), "stop: expected a string or a list"),
        (with(json!({"stop": ["a", 3]})), "stop[1]: expected a string"),
        (with(json!({"seed": -1})), "seed: expected a non-negative integer"),
        (with(json!({"tools": {}})), "tools: expected a list"),
        (with(json!({"tools": [1]})), "tools[0]: expected an object"),
    ];
    for (got, want) in cases {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn hostile_input_is_bounded() {
    let many = vec![json!({"role":"user","content":"x"}); MAX_INPUT_MESSAGES + 1];
    assert!(rejection(json!({"input": many}).to_string().as_bytes()).starts_with("input: more than 1000 messages"));

    let deep = format!(r#"{{"input":[{{"content":"x"}}],"tools":[{}{}]}}"#, "[".repeat(70), "]".repeat(70));
    assert_eq!(rejection(deep.as_bytes()), "body: nested deeper than 64 levels");

    // Far past serde_json's own recursion limit: an error, not a stack overflow.
    let very_deep = format!(r#"{{"input":{}}}"#, "[".repeat(100_000));
    assert!(rejection(very_deep.as_bytes()).starts_with("body: not valid JSON"));

    for bytes in [&b""[..], b"\0\0\0", b"\xff\xfe{", b"null", b"\"input\""] {
        assert!(AgentRequest::from_slice(bytes).is_err());
    }
}

#[test]
fn error_messages_do_not_echo_values() {
    let sentinel = "SENTINEL-SECRET-VALUE";
    let msg = rejection(json!({"input": user_input(), "session_id": {"k": sentinel}}).to_string().as_bytes());
    assert!(!msg.contains(sentinel), "{msg}");
    let msg = rejection(format!(r#"{{"input":[{{"role":"{sentinel}"}}]}}"#).as_bytes());
    assert!(!msg.contains(sentinel), "{msg}");
}

#[test]
fn error_bodies_are_code_then_message() {
    assert_eq!(
        ErrorBody::new("not_found", "no route").to_json(),
        r#"{"error":{"code":"not_found","message":"no route"}}"#
    );
    let rejection = Rejection::from(AgentRequest::from_slice(b"{}").unwrap_err());
    assert_eq!((rejection.status.as_u16(), rejection.code), (400, "invalid_request"));
    assert_eq!(
        ErrorBody::new(rejection.code, &rejection.message).to_json(),
        r#"{"error":{"code":"invalid_request","message":"input: required"}}"#
    );
}

// ---------------------------------------------------------------------------------------------------
// History mapping

fn data(v: Value) -> Value {
    json!({"type": "data", "data": v})
}

#[test]
fn two_turn_history_maps_to_model_messages() {
    let req = parse(json!({"input": [
        {"role":"system","type":"message","content":[{"type":"text","text":"Be brief."}]},
        {"role":"user","type":"message","content":[{"type":"text","text":"Tell me the time"},{"type":"text","text":"in UTC"}]},
        {"role":"assistant","type":"reasoning","content":[{"type":"text","text":"I should call the tool."}]},
        {"role":"assistant","type":"plugin_call","content":[data(json!({"call_id":"c1","name":"getutctime","arguments":""})),
                                                           data(json!({"call_id":"c1","name":"getutctime","arguments":"{}"}))]},
        {"role":"assistant","type":"function_call","content":[data(json!({"call_id":"c2","name":"helloworld","arguments":{"who":"x"}}))]},
        {"role":"tool","type":"plugin_call_output","content":[data(json!({"call_id":"c1","name":"getutctime","output":"[{\"type\": \"text\", \"text\": \"00:00\"}]"}))]},
        {"role":"tool","type":"function_call_output","content":[data(json!({"call_id":"c2","output":[{"type":"text","text":"hi"}]}))]},
        {"role":"assistant","type":"reasoning","content":[{"type":"text","text":"Report it."}]},
        {"role":"assistant","type":"message","content":[{"type":"text","text":"It is 00:00 UTC."}]},
        {"role":"user","type":"message","content":[{"type":"text","text":"Thanks. And now?"}]}
    ]}))
    .unwrap();
    assert_eq!(
        req.to_chat_messages(),
        vec![
            ChatMessage::System { content: "Be brief.".into() },
            ChatMessage::User { content: "Tell me the time\nin UTC".into() },
            ChatMessage::Assistant {
                content: None,
                tool_calls: vec![
                    ToolCall::new("c1", "getutctime", "{}"),
                    ToolCall::new("c2", "helloworld", r#"{"who":"x"}"#)
                ],
            },
            ChatMessage::Tool { tool_call_id: "c1".into(), content: r#"[{"type": "text", "text": "00:00"}]"#.into() },
            ChatMessage::Tool { tool_call_id: "c2".into(), content: r#"[{"text":"hi","type":"text"}]"#.into() },
            ChatMessage::Assistant { content: Some("It is 00:00 UTC.".into()), tool_calls: vec![] },
            ChatMessage::User { content: "Thanks. And now?".into() },
        ]
    );
}

#[test]
fn history_is_always_a_valid_conversation() {
    let call = |id: &str| json!({"role":"assistant","type":"plugin_call","content":[data(json!({"call_id":id,"name":"t","arguments":"{}"}))]});
    let output = |id: &str, out: &str| json!({"role":"tool","type":"plugin_call_output","content":[data(json!({"call_id":id,"output":out}))]});
    let req = parse(json!({"input": [
        {"role":"user","content":"q1"},
        output("orphan", "no call before me"),
        {"role":"assistant","content":"Let me look."},
        call("a"), call("unanswered"),
        {"role":"user","content":"interjection"},
        output("a", "A"),
        {"role":"tool","type":"message","content":"tool text without a call"},
        // Ids repeat across turns (stand-ins number calls per turn).
        call("a"), output("a", "A2"),
    ]}))
    .unwrap();
    assert_eq!(
        req.to_chat_messages(),
        vec![
            ChatMessage::User { content: "q1".into() },
            ChatMessage::Assistant {
                content: Some("Let me look.".into()),
                tool_calls: vec![ToolCall::new("a", "t", "{}")]
            },
            ChatMessage::Tool { tool_call_id: "a".into(), content: "A".into() },
            ChatMessage::User { content: "interjection".into() },
            ChatMessage::Assistant { content: None, tool_calls: vec![ToolCall::new("a", "t", "{}")] },
            ChatMessage::Tool { tool_call_id: "a".into(), content: "A2".into() },
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// Event builder

fn usage(p: u64, c: u64) -> TurnEvent {
    TurnEvent::Usage(Usage { prompt_tokens: p, completion_tokens: c, total_tokens: p + c })
}

fn tool_turn() -> Vec<TurnEvent> {
    vec![
        TurnEvent::ReasoningDelta("The user wants the time. ".into()),
        TurnEvent::ReasoningDelta("Call the tool.".into()),
        TurnEvent::ToolCallStarted { call_id: "c1".into(), name: "getutctime".into() },
        TurnEvent::ToolCallArgumentsDelta { call_id: "c1".into(), delta: "{".into() },
        TurnEvent::ToolCallArgumentsDelta { call_id: "c1".into(), delta: "}".into() },
        TurnEvent::ToolCallCompleted { call_id: "c1".into(), name: "getutctime".into(), arguments: "{}".into() },
        usage(100, 20),
        TurnEvent::ToolResult {
            call_id: "c1".into(),
            name: "getutctime".into(),
            output: text_output("2026-01-01T00:00:00Z"),
        },
        TurnEvent::ReasoningDelta("Report it.".into()),
        TurnEvent::TextDelta("The current ".into()),
        TurnEvent::TextDelta("UTC time is 2026-01-01T00:00:00Z.".into()),
        usage(150, 30),
        TurnEvent::Finished(TurnEnd::Completed),
    ]
}

/// A tool's answer of one text block, as an MCP server sends it.
fn text_output(text: &str) -> ToolOutput {
    ToolOutput { text: text.into(), content: vec![Content::text(text)], is_error: false }
}

/// Everything a renderer writes for `events`, opening included, as one string.
fn rendered(mut renderer: impl Renderer, events: &[TurnEvent]) -> String {
    let mut out = renderer.opening();
    for event in events {
        renderer.render(event, &mut out);
    }
    out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
}

/// The `stream:false` answer for `events`.
fn aggregate(session_id: Option<String>, events: &[TurnEvent]) -> String {
    rendered(AgentScopeAnswer::new(session_id), events)
}

fn run(builder: &mut ResponseBuilder, events: &[TurnEvent]) -> Vec<StreamObject> {
    let mut out = builder.start();
    for e in events {
        out.extend(builder.push(e));
    }
    out
}

fn pattern(events: &[StreamObject]) -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    events.iter().map(|e| (e.object(), e.kind(), e.status().as_str())).collect()
}

fn as_value(e: &StreamObject) -> Value {
    serde_json::from_str(&e.to_json()).unwrap()
}

#[test]
fn tool_turn_conforms_to_the_spec_sequence() {
    let mut builder = ResponseBuilder::new(Some("s1".into()));
    let events = run(&mut builder, &tool_turn());
    let r = ("response", None, "created");
    let msg = |t, s| ("message", Some(t), s);
    let text = |s| ("content", Some("text"), s);
    let data = |s| ("content", Some("data"), s);
    let expected = vec![
        r,
        ("response", None, "in_progress"),
        msg("reasoning", "in_progress"),
        text("in_progress"),
        text("in_progress"),
        text("completed"),
        msg("reasoning", "completed"),
        msg("plugin_call", "in_progress"),
        data("in_progress"),
        data("in_progress"),
        data("completed"),
        msg("plugin_call", "completed"),
        msg("plugin_call_output", "completed"),
        msg("reasoning", "in_progress"),
        text("in_progress"),
        text("completed"),
        msg("reasoning", "completed"),
        msg("message", "in_progress"),
        text("in_progress"),
        text("in_progress"),
        text("completed"),
        msg("message", "completed"),
        ("response", None, "completed"),
    ];
    assert_eq!(pattern(&events), expected);
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence_number().unwrap()).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());

    let v: Vec<Value> = events.iter().map(as_value).collect();
    // Content belongs to the message that opened it; the completed content carries the whole text.
    assert_eq!(v[3]["msg_id"], v[2]["id"]);
    assert_eq!((&v[3]["delta"], &v[3]["index"]), (&json!(true), &json!(0)));
    assert_eq!(v[5]["text"], "The user wants the time. Call the tool.");
    assert_eq!((&v[5]["delta"], &v[5]["index"]), (&json!(false), &json!(0)));
    assert_eq!(v[6]["content"], json!([v[5]]));
    assert_eq!(v[8]["data"], json!({"call_id":"c1","name":"getutctime","arguments":"{"}));
    assert_eq!(v[9]["data"]["arguments"], "}");
    assert_eq!(v[10]["data"], json!({"call_id":"c1","name":"getutctime","arguments":"{}"}));
    assert_eq!(v[11]["content"], json!([v[10]]));
    assert_eq!(v[11]["role"], "assistant");
    assert_eq!(v[12]["role"], "tool");
    assert_eq!(
        v[12]["content"][0]["data"],
        json!({"call_id":"c1","name":"getutctime","output":"[{\"type\": \"text\", \"text\": \"2026-01-01T00:00:00Z\"}]"})
    );
    assert_eq!(v[20]["text"], "The current UTC time is 2026-01-01T00:00:00Z.");

    let last = &v[22];
    assert_eq!(last["error"], Value::Null);
    assert_eq!(last["session_id"], "s1");
    assert_eq!(last["id"], v[0]["id"]);
    assert!(last["id"].as_str().unwrap().starts_with("response_"));
    assert!(v[2]["id"].as_str().unwrap().starts_with("msg_"));
    assert!(last["completed_at"].as_u64().unwrap() >= last["created_at"].as_u64().unwrap());
    assert_eq!(last["usage"], json!({"prompt_tokens":250,"completion_tokens":50,"total_tokens":300}), "usage summed");
    let completed: Vec<Value> = [6, 11, 12, 16, 21].iter().map(|&i| v[i].clone()).collect();
    assert_eq!(last["output"], Value::Array(completed), "output = every completed message in order");
    assert_eq!(builder.response().map(|r| r.to_json()), Some(events[22].to_json()));
}

#[test]
fn every_object_has_the_seed_key_order() {
    let reference = std::fs::read_to_string(REFERENCE).unwrap();
    let seed = key_lists_by_class(reference.lines().filter(|l| !l.trim().is_empty()));
    for class in ["response", "message", "content/text", "content/data", "data/call", "data/output"] {
        assert!(seed.contains_key(class), "the reference lacks {class}");
    }

    let mut builder = ResponseBuilder::new(Some("s1".into()));
    let frames: Vec<String> = run(&mut builder, &tool_turn()).iter().map(StreamObject::to_json).collect();
    let mut ours = key_lists_by_class(frames.iter().map(String::as_str));
    // The seed never reports usage; the spec fixes its keys.
    assert_eq!(ours.remove("usage").unwrap(), ["prompt_tokens", "completion_tokens", "total_tokens"]);
    assert_eq!(ours, seed);

    // The in-progress objects too: every key present, null when unset.
    let mut b = ResponseBuilder::new(None);
    let first = b.start();
    assert_eq!(
        first[0].to_json(),
        format!(
            r#"{{"sequence_number":0,"object":"response","status":"created","error":null,"id":"{}","created_at":{},"completed_at":null,"output":null,"usage":null,"session_id":null}}"#,
            b.response_id(),
            b.response().unwrap().created_at
        )
    );
}

#[test]
fn sse_frames_are_data_lines_only() {
    let mut builder = ResponseBuilder::new(Some("s1".into()));
    let events =
        run(&mut builder, &[TurnEvent::TextDelta("a\nb \"q\"".into()), TurnEvent::Finished(TurnEnd::Completed)]);
    for e in &events {
        let frame = e.sse_frame();
        assert_eq!(frame, format!("data: {}\n\n", e.to_json()));
        assert_eq!(frame.matches('\n').count(), 2, "newlines in text are escaped: {frame:?}");
    }
    let stream: String = events.iter().map(StreamObject::sse_frame).collect();
    assert!(!stream.contains("event:") && !stream.contains("id:") && !stream.contains("[DONE]"));
    assert_eq!(
        events[3].sse_frame(),
        format!(
            "data: {{\"sequence_number\":3,\"object\":\"content\",\"status\":\"in_progress\",\"error\":null,\"type\":\"text\",\"index\":0,\"delta\":true,\"msg_id\":\"{}\",\"text\":\"a\\nb \\\"q\\\"\"}}\n\n",
            as_value(&events[2])["id"].as_str().unwrap()
        )
    );
}

#[test]
fn failed_turn_closes_open_messages_and_carries_the_error() {
    let mut builder = ResponseBuilder::new(Some("s9".into()));
    let events = run(
        &mut builder,
        &[
            TurnEvent::ReasoningDelta("thinking".into()),
            TurnEvent::TextDelta("partial answer".into()),
            TurnEvent::ToolCallStarted { call_id: "c7".into(), name: "t".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "c7".into(), delta: "{\"a\":".into() },
            TurnEvent::Finished(TurnEnd::Failed(Failure::new(
                FailureCode::ModelThrottled,
                "DashScope 429 Throttling (request id r-1)",
            ))),
        ],
    );
    let last = as_value(events.last().unwrap());
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"], json!({"code":"model_throttled","message":"DashScope 429 Throttling (request id r-1)"}));
    let error_keys = serde_json::from_str::<J>(&events.last().unwrap().to_json()).unwrap();
    let J::Obj(entries) = error_keys else { panic!() };
    let Some((_, J::Obj(error))) = entries.iter().find(|(k, _)| k == "error") else { panic!() };
    assert_eq!(error.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["code", "message"]);

    let kinds: Vec<&str> = last["output"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "message", "plugin_call"]);
    assert_eq!(
        last["output"][2]["content"][0]["data"]["arguments"], "{\"a\":",
        "an open call closes with what arrived"
    );
    assert_eq!(last["usage"], Value::Null, "no Usage events → null");
    assert!(builder.is_finished());
    assert!(builder.push(&TurnEvent::TextDelta("late".into())).is_empty(), "nothing after Finished");
}

#[test]
fn incomplete_turn_reports_max_iterations() {
    let events = [
        TurnEvent::TextDelta("so far".into()),
        usage(1, 2),
        usage(3, 4),
        TurnEvent::Finished(TurnEnd::Incomplete(Failure::new(FailureCode::MaxIterations, "10 model calls"))),
    ];
    let v: Value = serde_json::from_str(&aggregate(Some("s".into()), &events)).unwrap();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["error"], json!({"code":"max_iterations","message":"10 model calls"}));
    assert_eq!(v["output"].as_array().unwrap().len(), 1);
    assert_eq!(v["usage"], json!({"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}));
}

#[test]
fn parallel_calls_get_one_message_each() {
    let mut builder = ResponseBuilder::new(None);
    let events = run(
        &mut builder,
        &[
            TurnEvent::ToolCallStarted { call_id: "a".into(), name: "ta".into() },
            TurnEvent::ToolCallStarted { call_id: "b".into(), name: "tb".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "a".into(), delta: "{}".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "b".into(), delta: "{}".into() },
            TurnEvent::ToolCallCompleted { call_id: "b".into(), name: "tb".into(), arguments: "{}".into() },
            TurnEvent::ToolCallCompleted { call_id: "a".into(), name: "ta".into(), arguments: "{}".into() },
            TurnEvent::ToolResult { call_id: "a".into(), name: "ta".into(), output: text_output("A") },
            TurnEvent::ToolResult { call_id: "b".into(), name: "tb".into(), output: text_output("B") },
            TurnEvent::Finished(TurnEnd::Completed),
        ],
    );
    let v: Vec<Value> = events.iter().map(as_value).collect();
    let (msg_a, msg_b) = (&v[2]["id"], &v[3]["id"]);
    assert_ne!(msg_a, msg_b);
    assert_eq!((&v[4]["msg_id"], &v[5]["msg_id"]), (msg_a, msg_b));
    assert_eq!((&v[4]["data"]["name"], &v[5]["data"]["name"]), (&json!("ta"), &json!("tb")));
    let output = v.last().unwrap()["output"].as_array().unwrap().clone();
    let calls: Vec<&Value> = output.iter().map(|m| &m["content"][0]["data"]["call_id"]).collect();
    assert_eq!(calls, [&json!("b"), &json!("a"), &json!("a"), &json!("b")]);
}

/// Ids and timestamps differ between two builders; everything else must not.
fn normalized(json: &str) -> Value {
    fn walk(v: &mut Value, ids: &mut Vec<String>) {
        match v {
            Value::String(s) if s.starts_with("msg_") || s.starts_with("response_") => {
                let i = ids.iter().position(|x| x == s).unwrap_or_else(|| {
                    ids.push(s.clone());
                    ids.len() - 1
                });
                *s = format!("<ID{i}>");
            }
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    if (k == "created_at" || k == "completed_at") && x.is_u64() {
                        *x = json!("<TS>");
                    } else {
                        walk(x, ids);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, ids)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(json).unwrap();
    walk(&mut v, &mut Vec::new());
    v
}

#[test]
fn non_streaming_answers_the_last_event_of_the_stream() {
    let stream = rendered(AgentScopeStream::new(Some("s1".into())), &tool_turn());
    let last = stream.trim_end().rsplit("\n\n").next().unwrap().strip_prefix("data: ").unwrap();
    let body = aggregate(Some("s1".into()), &tool_turn());
    assert_eq!(normalized(&body), normalized(last));
}

#[test]
fn an_answer_is_written_only_once_the_turn_has_finished() {
    // The pump always ends a turn with `Finished` (tests/faults.rs); before it the answer has nothing to say.
    assert_eq!(aggregate(None, &[TurnEvent::TextDelta("hi".into())]), "");
    let body = aggregate(None, &[TurnEvent::TextDelta("hi".into()), TurnEvent::Finished(TurnEnd::Completed)]);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["status"].as_str(), v["output"].as_array().map(Vec::len)), (Some("completed"), Some(1)));
}

// ---------------------------------------------------------------------------------------------------
// Event invocations

const INSTRUCTION: &str = "An event arrived; handle it.";

fn user_text(req: &AgentRequest) -> &str {
    match req.input.as_slice() {
        [m] => match m.content.as_slice() {
            [ContentItem::Text(t)] => t,
            other => panic!("content {other:?}"),
        },
        other => panic!("input {other:?}"),
    }
}

#[test]
fn real_trigger_payloads_are_recognised() {
    let expect = [
        ("cdn-CachedObjectsRefreshed.json", TriggerKind::Cdn, "33b430c57e7.mp4"),
        ("cdn-CdnDomainAdded.json", TriggerKind::Cdn, "chongshi.alicdn.com"),
        ("cdn-CdnDomainStarted.json", TriggerKind::Cdn, "online"),
        ("cdn-LogFileCreated.json", TriggerKind::Cdn, "LogFileCreated"),
        ("http.json", TriggerKind::Http, "haha"),
        ("mns-stream.json", TriggerKind::Mns, "hello topic"),
        ("mns-with-MessageAttributes.json", TriggerKind::Mns, "test-topic"),
        ("mns-without-MessageAttributes.json", TriggerKind::Mns, "hello topic"),
        ("oss.json", TriggerKind::Oss, "image/a.jpg"),
        ("sls.json", TriggerKind::Sls, "log-en"),
        ("tablestore.json", TriggerKind::Tablestore, "Records"),
    ];
    let mut files: Vec<String> = std::fs::read_dir(EVENTS_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files, expect.iter().map(|e| e.0).collect::<Vec<_>>(), "a new sample needs an expectation");
    for (file, kind, needle) in expect {
        let body = std::fs::read(format!("{EVENTS_DIR}/{file}")).unwrap();
        let event = parse_event(&body, INSTRUCTION).unwrap();
        assert_eq!(event.kind, kind, "{file}");
        let text = user_text(&event.request);
        assert!(text.starts_with(&format!("{INSTRUCTION}\n\nEvent ({}): ", kind.as_str())), "{file}: {text}");
        assert!(text.contains(needle), "{file}: {text}");
        assert_eq!(event.request.session_id(), None, "{file}: an envelope names no session");
        assert_eq!(event.request.input[0].role, Some(Role::User));
    }
    // The HTTP trigger's headers (Authorization, signatures) never reach the prompt.
    let http = request_from_event(&std::fs::read(format!("{EVENTS_DIR}/http.json")).unwrap(), INSTRUCTION).unwrap();
    assert!(!user_text(&http).contains("ACS3-HMAC-SHA256") && !user_text(&http).contains("Authorization"));
}

#[test]
fn agent_requests_arrive_directly_or_inside_envelopes() {
    let req = json!({"input": user_input(), "user_id": "u1"});
    let direct = parse_event(req.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert_eq!(direct.kind, TriggerKind::AgentRequest);
    assert_eq!(direct.request.session_id(), None, "no session unless the request names one");
    assert_eq!(direct.request.user_id(), Some("u1"));
    assert_eq!(user_text(&direct.request), "Tell me the time in UTC");

    let own_session = json!({"input": user_input(), "session_id": "mine"}).to_string();
    assert_eq!(request_from_event(own_session.as_bytes(), INSTRUCTION).unwrap().session_id(), Some("mine"));

    let invalid = br#"{"input": []}"#;
    assert_eq!(
        request_from_event(invalid, INSTRUCTION).unwrap_err().to_string(),
        "input: must hold at least one message"
    );

    let timer = json!({"triggerTime":"2026-01-01T00:00:00Z","triggerName":"hourly","payload": req.to_string()});
    let event = parse_event(timer.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert_eq!(event.kind, TriggerKind::Timer);
    assert_eq!(user_text(&event.request), "Tell me the time in UTC");
    assert_eq!((event.request.session_id(), event.request.user_id()), (None, Some("u1")));

    let mns = json!({"TopicOwner":"1","Message": req.to_string(),"TopicName":"t"});
    assert_eq!(
        user_text(&request_from_event(mns.to_string().as_bytes(), INSTRUCTION).unwrap()),
        "Tell me the time in UTC"
    );
}

#[test]
fn timer_text_payload_is_the_message() {
    let timer =
        json!({"triggerTime":"2026-01-01T00:00:00Z","triggerName":"daily","payload":"Summarise today's alerts"});
    let event = parse_event(timer.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert_eq!(event.kind, TriggerKind::Timer);
    assert_eq!(user_text(&event.request), "Summarise today's alerts");
    assert_eq!(event.request.session_id(), None);

    // A payload that looks like a request but is not one stays text.
    let timer = json!({"triggerTime":"t","triggerName":"n","payload":"{\"input\": 5}"});
    assert_eq!(user_text(&request_from_event(timer.to_string().as_bytes(), INSTRUCTION).unwrap()), "{\"input\": 5}");

    let empty = json!({"triggerTime":"t","triggerName":"n","payload":""});
    let text = request_from_event(empty.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert!(user_text(&text).starts_with(&format!("{INSTRUCTION}\n\nEvent (timer): ")));
}

#[test]
fn cloud_events_object_and_array() {
    let ce = json!({"id":"e1","source":"acs.oss","specversion":"1.0","type":"oss:ObjectCreated:PutObject",
        "subject":"acs:oss:cn-hangzhou:1:bucket/a.txt","time":"2026-01-01T00:00:00Z","data":{"key":"a.txt"},
        "aliyunaccountid":"1"});
    let one = parse_event(ce.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert_eq!(one.kind, TriggerKind::CloudEvents);
    assert!(user_text(&one.request).contains("oss:ObjectCreated:PutObject"));

    let batch =
        json!([ce, {"id":"e2","source":"acs.mns","specversion":"1.0","type":"mns:Queue:SendMessage","data":"x"}]);
    let many = parse_event(batch.to_string().as_bytes(), INSTRUCTION).unwrap();
    assert_eq!(many.kind, TriggerKind::CloudEvents);
    let text = user_text(&many.request);
    assert!(
        text.starts_with(&format!("{INSTRUCTION}\n\nEvent (cloudevents): [")) && text.contains("mns:Queue:SendMessage")
    );
}

#[test]
fn anything_else_is_passed_on_as_text() {
    let plain = parse_event(b"please check the backups", INSTRUCTION).unwrap();
    assert_eq!((plain.kind, user_text(&plain.request)), (TriggerKind::Text, "please check the backups"));

    let other_json = br#"{"hello":"world"}"#;
    assert_eq!(user_text(&request_from_event(other_json, INSTRUCTION).unwrap()), r#"{"hello":"world"}"#);

    let empty = request_from_event(b"", INSTRUCTION).unwrap();
    assert!(user_text(&empty).contains("Event (empty)"));

    let mostly_text = b"caf\xe9 ol\xe9 and a lot more plain ascii text around the two stray latin-1 bytes here";
    assert!(user_text(&request_from_event(mostly_text, INSTRUCTION).unwrap()).starts_with("caf\u{fffd} ol"));
}

#[test]
fn garbage_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(7);
    for len in [1usize, 2, 3, 17, 255, 4096, 20_000] {
        let body: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let event = parse_event(&body, INSTRUCTION).unwrap();
        assert_eq!(event.request.session_id(), None);
        assert!(!user_text(&event.request).is_empty());
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(600).collect();
    let event = parse_event(&binary, INSTRUCTION).unwrap();
    assert_eq!(event.kind, TriggerKind::Binary);
    assert!(user_text(&event.request).contains("600 bytes, base64: AAECAwQF"));
    let big: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    assert!(user_text(&request_from_event(&big, INSTRUCTION).unwrap()).contains("100000 bytes (not shown)"));

    for body in [
        "[".repeat(200_000),
        "{\"events\":".repeat(1000),
        r#"{"triggerTime":1,"triggerName":null,"payload":{"x":1}}"#.to_owned(),
        r#"{"events":"nope"}"#.to_owned(),
        r#"[{"specversion":"1.0"}]"#.to_owned(),
        r#"{"rawPath":"/","requestContext":null,"body":"%%%","isBase64Encoded":true}"#.to_owned(),
        "{,,,}".to_owned(),
        "{\"a\":\"\\\",}\",}".to_owned(),
    ] {
        let event = parse_event(body.as_bytes(), INSTRUCTION).unwrap();
        assert!(!user_text(&event.request).is_empty(), "{body:.40}");
    }
}
