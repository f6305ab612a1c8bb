//! Micro-benchmarks of the per-turn CPU paths (`make bench-micro`, divan): the ACS3 signature of an
//! Agent Identity call, decoding a DashScope SSE step, and encoding a turn's AgentScope events.
//! Figures are per call; `AllocProfiler` also counts the allocations each makes.

use std::time::Duration;

use divan::{AllocProfiler, Bencher, black_box};
use fc_identity_agent::acs::signer::{self, SigningInput};
use fc_identity_agent::agent::{TurnEnd, TurnEvent};
use fc_identity_agent::llm::{ChatStream, StreamItem, Usage};
use fc_identity_agent::mcp::{Content, ToolOutput};
use fc_identity_agent::protocol::agentscope::ResponseBuilder;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// One `GetWorkloadAccessTokenForUserId` signature, headers as the RPC client sends them.
#[divan::bench]
fn acs3_sign(bencher: Bencher) {
    let body = signer::form_body(&[("UserId", "user-0123456789"), ("WorkloadIdentityName", "fc-identity-agent")]);
    let body_sha = signer::hex_sha256(body.as_bytes());
    let headers = [
        ("host", "agentidentitydata.cn-beijing.aliyuncs.com".to_owned()),
        ("x-acs-action", "GetWorkloadAccessTokenForUserId".to_owned()),
        ("x-acs-version", "2025-09-01".to_owned()),
        ("x-acs-date", "2026-01-01T00:00:00Z".to_owned()),
        ("x-acs-signature-nonce", "3f1b6a0e-5c1d-4e55-9a8b-0c6f7d2e9a11".to_owned()),
        ("x-acs-content-sha256", body_sha.clone()),
        ("content-type", "application/x-www-form-urlencoded".to_owned()),
        ("x-acs-security-token", "CAIS".repeat(100)),
    ];
    bencher.bench(|| {
        let input = SigningInput {
            method: "POST",
            path: "/",
            canonical_query: "",
            headers: black_box(&headers[..]),
            body_sha256: &body_sha,
        };
        signer::sign(&input, black_box("STS.NUxxxxxxxx"), black_box("secret-secret-secret"))
    });
}

/// A DashScope step as its SSE events: `chunks` text deltas, a finish chunk, usage, `[DONE]`.
fn sse_events(chunks: usize) -> Vec<bytes::Bytes> {
    let head = r#"{"id":"chatcmpl-0f7c","object":"chat.completion.chunk","created":1735689600,"model":"qwen-max","system_fingerprint":null,"choices":[{"index":0,"#;
    let mut events: Vec<String> = (0..chunks)
        .map(|i| {
            let role = if i == 0 { r#""role":"assistant","# } else { "" };
            format!("data: {head}\"delta\":{{{role}\"content\":\"word{i} \"}},\"finish_reason\":null,\"logprobs\":null}}]}}\n\n")
        })
        .collect();
    events.push(format!(
        "data: {head}\"delta\":{{\"content\":\"\"}},\"finish_reason\":\"stop\",\"logprobs\":null}}]}}\n\n"
    ));
    events.push(
        "data: {\"id\":\"chatcmpl-0f7c\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,\"model\":\
         \"qwen-max\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":64,\"total_tokens\":184}}\n\n"
            .to_owned(),
    );
    events.push("data: [DONE]\n\n".to_owned());
    events.into_iter().map(bytes::Bytes::from).collect()
}

/// Reads one step to its end; the body arrives as the given pieces.
fn decode(runtime: &tokio::runtime::Runtime, pieces: Vec<bytes::Bytes>) -> usize {
    runtime.block_on(async {
        let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
        let response = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(reqwest::Body::wrap_stream(stream))
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut stream = ChatStream::from_response(reqwest::Response::from(response), deadline);
        let mut events = 0usize;
        while let Some(event) = stream.next().await {
            if let Ok(StreamItem::Done(step)) = event {
                black_box(step);
            }
            events += 1;
        }
        events
    })
}

/// Decoding one model step of `chunks` text chunks, each SSE event in its own read (as they stream).
#[divan::bench(args = [8, 64, 512])]
fn sse_decode_step(bencher: Bencher, chunks: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let events = sse_events(chunks);
    bencher.bench_local(|| decode(&runtime, events.clone()));
}

/// The same step arriving in one read (a reader that fell behind): the decoder's cost per event then grows
/// with the bytes still buffered.
#[divan::bench(args = [8, 64, 512])]
fn sse_decode_step_one_read(bencher: Bencher, chunks: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let body = bytes::Bytes::from(sse_events(chunks).concat());
    bencher.bench_local(|| decode(&runtime, vec![body.clone()]));
}

/// The agent events of a one-tool turn whose answer arrives in `deltas` fragments.
fn tool_turn_events(deltas: usize) -> Vec<TurnEvent> {
    let mut events = vec![
        TurnEvent::ToolCallStarted { call_id: "call_0".into(), name: "getutctime".into() },
        TurnEvent::ToolCallArgumentsDelta { call_id: "call_0".into(), delta: "{}".into() },
        TurnEvent::ToolCallCompleted { call_id: "call_0".into(), name: "getutctime".into(), arguments: "{}".into() },
        TurnEvent::ToolResult {
            call_id: "call_0".into(),
            name: "getutctime".into(),
            output: ToolOutput {
                text: "2026-01-01T00:00:00Z".into(),
                content: vec![Content::text("2026-01-01T00:00:00Z")],
                is_error: false,
            },
        },
    ];
    events.extend((0..deltas).map(|i| TurnEvent::TextDelta(format!("word{i} "))));
    events.push(TurnEvent::Usage(Usage { prompt_tokens: 120, completion_tokens: 64, total_tokens: 184 }));
    events.push(TurnEvent::Finished(TurnEnd::Completed));
    events
}

/// Encoding a whole tool turn as AgentScope SSE frames (what `/process` writes), `deltas` text fragments.
#[divan::bench(args = [8, 64, 512])]
fn encode_turn_events(bencher: Bencher, deltas: usize) {
    let events = tool_turn_events(deltas);
    bencher.bench(|| {
        let mut builder = ResponseBuilder::new(Some("session-1".into()));
        let mut bytes = 0usize;
        for event in builder.start() {
            bytes += event.sse_frame().len();
        }
        for agent_event in &events {
            for event in builder.push(agent_event) {
                bytes += event.sse_frame().len();
            }
        }
        bytes
    });
}
