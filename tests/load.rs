//! Load and lifecycle: 200 concurrent `/process` streams in one process, and streams in flight when FC
//! stops the instance (SIGTERM, `/pre-stop`). Concurrency is proven with barriers, never with clocks.

mod common;
mod kit;

use std::sync::Arc;

use common::Function;
use devstack::Stack;
use kit::binary::{self, Binary};
use kit::{HANG_GUARD, Reply, completed, request};
use tokio::sync::Barrier;

const STREAMS: usize = 200;

/// Starts `/process` for `body` and returns the response once its head has arrived.
async fn open(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> reqwest::Response {
    let response = client.post(url).body(body.to_string()).send().await.expect("the function answers");
    assert_eq!(response.status(), 200);
    response
}

/// Reads the rest of a stream (hang guard included).
async fn finish(mut response: reqwest::Response, mut text: String) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("the stream is not cut") {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    };
    let text = tokio::time::timeout(HANG_GUARD, read).await.expect("the stream ends");
    Reply { status, headers, text }
}

/// Reads until the first SSE event has arrived (the turn is in flight), returning what was read.
async fn first_event(response: &mut reqwest::Response) -> String {
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = response.chunk().await.expect("readable").expect("a first event");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// `STREAMS` tool turns at once against `url`: all are sent together and all response heads are in before
/// any body is read, so every stream is open at the same time. Each must be a complete, well-formed
/// stream ending `completed` with the tool call, its output and the answer.
async fn concurrent_tool_turns(url: &str) {
    let client = Function::client();
    let start = Arc::new(Barrier::new(STREAMS));
    let all_open = Arc::new(Barrier::new(STREAMS));
    let streams = (0..STREAMS).map(|n| {
        let (client, url, start, all_open) = (client.clone(), url.to_owned(), start.clone(), all_open.clone());
        tokio::spawn(async move {
            // Twenty users: most turns reuse a cached WAT, some race for the same one. A session each: a
            // session runs one turn at a time.
            let mut body = request(&format!("load-user-{}", n % 20), "Tell me the time in UTC");
            body["session_id"] = serde_json::json!(format!("load-session-{n}"));
            start.wait().await;
            let response = open(&client, &url, &body).await;
            all_open.wait().await;
            finish(response, String::new()).await
        })
    });
    let replies = futures_util::future::join_all(streams).await;
    let mut errors = Vec::new();
    for (n, reply) in replies.into_iter().enumerate() {
        let reply = reply.expect("the stream task did not panic");
        let last = reply.last_event();
        if kit::ending(&last) != completed() {
            errors.push(format!("stream {n}: {last}"));
            continue;
        }
        let types: Vec<&str> = last["output"].as_array().unwrap().iter().map(|m| m["type"].as_str().unwrap()).collect();
        if types != ["plugin_call", "plugin_call_output", "message"] {
            errors.push(format!("stream {n}: output {types:?}"));
        }
    }
    assert!(errors.is_empty(), "{} of {STREAMS} streams went wrong: {errors:#?}", errors.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_streams_in_process_all_complete() {
    let f = Function::start(&[]).await;
    concurrent_tool_turns(&f.url("/process")).await;
    kit::assert_drained(&f).await;
    assert_eq!(f.stack.dashscope.request_count(), 2 * STREAMS, "two model calls per tool turn");
    let peak = binary::peak_rss_kib("/proc/self/status").unwrap_or_default();
    println!("peak RSS, test process (function + stand-ins + {STREAMS} clients): {} KiB", peak);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_streams_against_the_binary_and_its_peak_rss() {
    let stack = Stack::start().await.unwrap();
    let function = Binary::start(&stack, &[("RUST_LOG", "warn")]).await;
    concurrent_tool_turns(&function.url("/process")).await;
    let peak = function.peak_rss_kib().expect("VmHWM readable");
    println!("peak RSS, the function binary (debug build) serving {STREAMS} concurrent streams: {peak} KiB");
    function.terminate();
    let (status, output) = function.wait().await;
    assert!(status.success(), "{status}: {output}");
}

/// Slow streams (a pause before each model chunk) so they are surely in flight when the stop comes.
const SLOW: &str = "Tell me a story, no tools [fault:slow]";
const IN_FLIGHT: usize = 4;

/// Opens `IN_FLIGHT` slow streams and waits until each has its first event.
async fn slow_streams_in_flight(function: &Binary) -> Vec<(reqwest::Response, String)> {
    let client = Function::client();
    let opened = (0..IN_FLIGHT).map(|n| {
        let (client, url) = (client.clone(), function.url("/process"));
        async move {
            let mut response = open(&client, &url, &request(&format!("stop-user-{n}"), SLOW)).await;
            let text = first_event(&mut response).await;
            (response, text)
        }
    });
    futures_util::future::join_all(opened).await
}

async fn assert_all_complete(streams: Vec<(reqwest::Response, String)>) {
    let replies = futures_util::future::join_all(streams.into_iter().map(|(r, text)| finish(r, text))).await;
    for reply in replies {
        assert_eq!(reply.ending(), completed(), "{}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_streams_in_flight_finish_then_exits_zero() {
    let stack = Stack::start().await.unwrap();
    let function = Binary::start(&stack, &[]).await;
    let streams = slow_streams_in_flight(&function).await;
    function.terminate();
    assert_all_complete(streams).await;
    let (status, output) = function.wait().await;
    assert!(status.success(), "exit {status}: {output}");
    assert!(output.contains("draining in-flight requests"), "{output}");
    assert!(!output.contains("grace period over"), "nothing was abandoned: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_waits_for_streams_in_flight_then_sigterm_exits_zero() {
    let stack = Stack::start().await.unwrap();
    let function = Binary::start(&stack, &[]).await;
    let streams = slow_streams_in_flight(&function).await;
    let client = Function::client();
    let pre_stop = client.get(function.url("/pre-stop")).header("x-fc-control-path", "/pre-stop").send();
    let pre_stop = tokio::time::timeout(HANG_GUARD, pre_stop).await.expect("pre-stop answers").unwrap();
    assert_eq!(pre_stop.status(), 200);
    let answer: serde_json::Value = pre_stop.json().await.unwrap();
    assert_eq!(answer["status"], "drained", "pre-stop answered only once the streams were done");
    assert_all_complete(streams).await;
    // Still serving after the hook; FC stops the instance with SIGTERM next.
    let health = client.get(function.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    function.terminate();
    let (status, output) = function.wait().await;
    assert!(status.success(), "exit {status}: {output}");
}
