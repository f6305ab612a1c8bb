//! The chat client's SSE decoding and tool-call accumulation, through the public client, against a tiny
//! HTTP server on 127.0.0.1:0 that answers 200 with chosen body bytes in chosen chunks (chunked transfer
//! encoding, one flush per chunk, then close). Valid streams split anywhere must decode to exactly what
//! was sent; damaged or random streams must end in events plus a typed error, never a panic or a hang.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fc_identity_agent::llm::{
    ChatMessage, ChatRequest, LlmClient, LlmError, LlmSettings, StepResult, StreamItem, ToolCall, decode_body,
};
use fc_identity_agent::secret::Secret;
use fc_identity_agent::upstream::Endpoint;
use proptest::prelude::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use super::arb;

/// Generous: a local stream of a few KiB takes milliseconds; only a hang comes near it.
const CLIENT_DEADLINE: Duration = Duration::from_secs(20);
const CASES: u32 = 96;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime")
    })
}

/// Serves every connection the body chunks currently in `script`.
struct Server {
    client: LlmClient,
    script: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Server {
    fn start() -> Server {
        let script: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let listener = runtime().block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = script.clone();
        runtime().spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let chunks = shared.lock().expect("script").clone();
                tokio::spawn(answer(conn, chunks));
            }
        });
        let client = LlmClient::new(LlmSettings {
            base_url: Endpoint::parse(&format!("http://{addr}/v1")).expect("a valid base URL"),
            api_key: Secret::new("sk-hostile"),
            model: "qwen-max".into(),
            allowed_models: Vec::new(),
            enable_thinking: None,
        })
        .expect("client");
        Server { client, script }
    }

    /// One model call answered with `chunks`: the events before the end, and the result or the error.
    fn call(&self, chunks: Vec<Vec<u8>>) -> (Vec<StreamItem>, Result<StepResult, LlmError>) {
        *self.script.lock().expect("script") = chunks;
        let request = ChatRequest::new(vec![ChatMessage::User { content: "hi".into() }]);
        let run = async {
            let deadline = tokio::time::Instant::now() + CLIENT_DEADLINE;
            let mut stream = match self.client.stream(&request, deadline).await {
                Ok(stream) => stream,
                Err(err) => return (Vec::new(), Err(err)),
            };
            let mut events = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(StreamItem::Done(step)) => {
                        assert!(stream.next().await.is_none(), "an event after Done");
                        return (events, Ok(step));
                    }
                    Ok(event) => events.push(event),
                    Err(err) => {
                        assert!(stream.next().await.is_none(), "an event after the error");
                        return (events, Err(err));
                    }
                }
            }
            panic!("the stream ended without Done or an error");
        };
        runtime().block_on(run)
    }
}

async fn answer(mut conn: TcpStream, chunks: Vec<Vec<u8>>) {
    if read_request(&mut conn).await.is_none() {
        return;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\
                connection: close\r\n\r\n";
    // Write errors only mean the client hung up early (it stops reading after an error): fine.
    let _ = conn.write_all(head.as_bytes()).await;
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() || conn.flush().await.is_err() {
            return;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let _ = conn.shutdown().await;
}

/// Reads the request head and its `content-length` body.
async fn read_request(conn: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut part = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut part).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&part[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut part).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&part[..n]);
    }
    Some(())
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

/// Serialises the SSE cases: they share one server whose script is "the current answer".
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------------------------
// A model of a valid DashScope stream (spec dashscope.md, "Stream").

#[derive(Debug, Clone)]
enum Piece {
    Reasoning(String),
    Text(String),
    Call { id: String, name: String, fragments: Vec<String> },
}

#[derive(Debug, Clone)]
struct ValidStream {
    pieces: Vec<Piece>,
    finish: &'static str,
    usage: Option<(u64, u64)>,
    done: bool,
    eol: &'static str,
    keepalives: bool,
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        1 => arb::any_text(8).prop_map(Piece::Reasoning),
        3 => arb::any_text(8).prop_map(Piece::Text),
        2 => ("[a-z0-9_]{1,8}", "[a-z_]{1,8}", prop::collection::vec(arb::any_text(5), 0..4))
            .prop_map(|(id, name, fragments)| Piece::Call { id: format!("call_{id}"), name, fragments }),
    ]
}

fn valid_stream() -> impl Strategy<Value = ValidStream> {
    (
        prop::collection::vec(piece(), 0..8),
        prop::sample::select(&["stop", "tool_calls", "length"][..]),
        prop::option::of((0..100_000u64, 0..100_000u64)),
        any::<bool>(),
        prop::sample::select(&["\n", "\r\n", "\r"][..]),
        any::<bool>(),
    )
        .prop_map(|(pieces, finish, usage, done, eol, keepalives)| ValidStream {
            pieces,
            finish,
            usage,
            // With or without `[DONE]` and whatever the line ends: a bare CR at the very end still
            // dispatches the last event.
            done,
            eol,
            keepalives,
        })
}

impl ValidStream {
    fn chunks(&self) -> Vec<serde_json::Value> {
        let delta =
            |d: serde_json::Value| json!({"id":"chatcmpl-1","choices":[{"index":0,"delta":d,"finish_reason":null}]});
        let mut out = vec![delta(json!({"role":"assistant","content":""}))];
        let mut index = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Reasoning(t) => out.push(delta(json!({"reasoning_content": t}))),
                Piece::Text(t) => out.push(delta(json!({"content": t}))),
                Piece::Call { id, name, fragments } => {
                    out.push(delta(json!({"tool_calls":[{"index":index,"id":id,"type":"function",
                        "function":{"name":name,"arguments":""}}]})));
                    for f in fragments {
                        out.push(delta(json!({"tool_calls":[{"index":index,"id":"","function":{"arguments":f}}]})));
                    }
                    index += 1;
                }
            }
        }
        out.push(json!({"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":self.finish}]}));
        if let Some((p, c)) = self.usage {
            out.push(json!({"id":"chatcmpl-1","choices":[],
                "usage":{"prompt_tokens":p,"completion_tokens":c,"total_tokens":p + c}}));
        }
        out
    }

    fn body(&self) -> Vec<u8> {
        let eol = self.eol;
        let mut body = String::new();
        for (i, chunk) in self.chunks().iter().enumerate() {
            if self.keepalives {
                body.push_str(&format!(": ping{eol}event: result{eol}id: {i}{eol}"));
            }
            let sep = if i % 2 == 0 { "data: " } else { "data:" };
            body.push_str(&format!("{sep}{chunk}{eol}{eol}"));
        }
        if self.done {
            body.push_str(&format!("data: [DONE]{eol}{eol}"));
        }
        body.into_bytes()
    }

    fn expected_calls(&self) -> Vec<ToolCall> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Call { id, name, fragments } => {
                    let args = fragments.concat();
                    let args = if args.trim().is_empty() { "{}".to_owned() } else { args };
                    Some(ToolCall::new(id, name, args))
                }
                _ => None,
            })
            .collect()
    }

    fn expected(&self, pick: impl Fn(&Piece) -> Option<&str>) -> String {
        self.pieces.iter().filter_map(pick).collect()
    }
}

/// Cuts `body` at the given points (taken modulo its length).
fn split(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c % body.len()).collect();
    at.extend([0, body.len()]);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| body[w[0]..w[1]].to_vec()).collect()
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..24)
}

/// What must hold whatever the stream was: each call announced once, before its fragments; the fragments
/// add up to the result's arguments; text and reasoning deltas add up to the result's.
fn check_events(events: &[StreamItem], result: &Result<StepResult, LlmError>) -> Result<(), TestCaseError> {
    let mut started: Vec<(u32, String)> = Vec::new();
    let mut args: std::collections::BTreeMap<u32, String> = Default::default();
    for event in events {
        match event {
            StreamItem::ToolCallStarted { index, id, name } => {
                prop_assert!(!id.is_empty() && !name.is_empty());
                prop_assert!(!started.iter().any(|(i, _)| i == index), "call {index} started twice");
                started.push((*index, id.clone()));
            }
            StreamItem::ToolCallArguments { index, fragment } => {
                prop_assert!(started.iter().any(|(i, _)| i == index), "fragment before start of {index}");
                args.entry(*index).or_default().push_str(fragment);
            }
            StreamItem::Done(_) => prop_assert!(false, "Done among the events"),
            _ => {}
        }
    }
    match result {
        Ok(step) => {
            let text: String = events
                .iter()
                .filter_map(|e| if let StreamItem::TextDelta(t) = e { Some(t.as_str()) } else { None })
                .collect();
            prop_assert_eq!(&text, &step.text);
            started.sort();
            prop_assert_eq!(started.len(), step.tool_calls.len());
            for ((index, id), call) in started.iter().zip(&step.tool_calls) {
                prop_assert_eq!(id, &call.id);
                let sent = args.get(index).cloned().unwrap_or_default();
                let sent = if sent.trim().is_empty() { "{}".to_owned() } else { sent };
                prop_assert_eq!(&sent, &call.function.arguments);
            }
        }
        Err(err) => {
            prop_assert!(
                matches!(
                    err,
                    LlmError::Truncated { .. }
                        | LlmError::Malformed { .. }
                        | LlmError::MidStream(_)
                        | LlmError::ContentFiltered(_)
                ),
                "unexpected error kind for a 200 stream: {err:?}"
            );
            prop_assert!(!err.to_string().contains("sk-hostile"));
        }
    }
    Ok(())
}

/// Runs the answers `make` generates through the client; only the universal checks apply.
fn run<S: Strategy<Value = Vec<Vec<u8>>>>(make: impl FnOnce() -> S + Send + 'static) {
    let _serial = exclusive();
    arb::check(CASES, make, |chunks| {
        let (events, result) = server().call(chunks);
        check_events(&events, &result)
    });
}

#[test]
fn valid_streams_split_anywhere_decode_to_what_was_sent() {
    let _serial = exclusive();
    arb::check(
        CASES,
        || (valid_stream(), cuts()),
        |(stream, cuts)| {
            let chunks = split(&stream.body(), &cuts);
            let direct = runtime().block_on(decode_body(chunks.iter().cloned().map(Into::into).collect()));
            let (events, result) = server().call(chunks);
            check_events(&events, &result)?;
            // The fuzzer's socket-free path must decode exactly like the real one.
            prop_assert_eq!(&direct, &(events.clone(), result.clone()));
            let step = result.map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(&step.text, &stream.expected(|p| if let Piece::Text(t) = p { Some(t) } else { None }));
            prop_assert_eq!(
                &step.reasoning,
                &stream.expected(|p| if let Piece::Reasoning(t) = p { Some(t) } else { None })
            );
            prop_assert_eq!(&step.tool_calls, &stream.expected_calls());
            prop_assert_eq!(step.usage.map(|u| u.total_tokens), stream.usage.map(|(p, c)| p + c));
            Ok(())
        },
    );
}

#[test]
fn truncated_streams_end_in_a_typed_error_or_a_finished_step() {
    run(|| {
        (valid_stream(), any::<usize>(), cuts()).prop_map(|(stream, cut, cuts)| {
            let body = stream.body();
            let cut = cut % (body.len() + 1);
            split(&body[..cut], &cuts)
        })
    });
}

#[test]
fn damaged_streams_end_in_a_typed_error_or_a_finished_step() {
    run(|| {
        (valid_stream(), arb::byte_edits(6), cuts()).prop_map(|(stream, edits, cuts)| {
            let mut body = stream.body();
            arb::damage(&mut body, &edits);
            split(&body, &cuts)
        })
    });
}

#[test]
fn random_bytes_end_in_a_typed_error_or_a_finished_step() {
    run(|| {
        let lines = prop::collection::vec(
            prop_oneof![
                arb::json().prop_map(|v| format!("data: {v}\n\n").into_bytes()),
                Just(b"data: [DONE]\n\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..32),
            ],
            0..8,
        );
        (lines, cuts()).prop_map(|(lines, cuts)| split(&lines.concat(), &cuts))
    });
}

#[test]
fn an_error_object_mid_stream_is_typed_and_final() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n\
                data: {\"error\":{\"code\":\"data_inspection_failed\",\"message\":\"no\"},\"request_id\":\"r\"}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n";
    let _serial = exclusive();
    let (events, result) = server().call(vec![body.as_bytes().to_vec()]);
    assert_eq!(events, vec![StreamItem::TextDelta("a".into())]);
    assert!(matches!(result, Err(LlmError::ContentFiltered(_))), "{result:?}");
}

#[test]
fn a_line_that_never_ends_fails_at_the_size_limit_not_the_deadline() {
    // 1 MiB is the most one event may hold; the stream sends 4 MiB of one line and would go on.
    let start = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"".to_vec();
    let mut chunks = vec![start];
    chunks.extend(std::iter::repeat_n(vec![b'x'; 64 * 1024], 64));
    let _serial = exclusive();
    let began = std::time::Instant::now();
    let (events, result) = server().call(chunks);
    assert!(events.is_empty(), "{events:?}");
    match result {
        Err(LlmError::Malformed { detail, .. }) => assert!(detail.contains("exceeds"), "{detail}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(began.elapsed() < CLIENT_DEADLINE, "ended by the deadline, not the limit");
}
