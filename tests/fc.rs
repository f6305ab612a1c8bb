//! The FC adapter over real sockets: control-path dispatch, FcContext, x-fc-status, streaming, lifecycle.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fc_identity_agent::fc::{self, Body, FcContext, Invocation, RunOptions};
use http::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    release: Arc<Notify>,
}

fn context_json(ctx: &FcContext) -> Value {
    json!({
        "request_id": ctx.request_id,
        "access_key_id": ctx.credentials.as_ref().map(|c| c.access_key_id.clone()),
        "has_token": ctx.credentials.as_ref().map(|c| c.security_token.is_some()),
        "function_name": ctx.function_name,
        "region": ctx.region,
        "account_id": ctx.account_id,
        "qualifier": ctx.qualifier,
        "memory_mb": ctx.memory_mb,
        "timeout_secs": ctx.timeout.as_secs(),
    })
}

async fn handler(invocation: Invocation, release: Arc<Notify>) -> Response<Body> {
    match invocation {
        Invocation::Http(req) => {
            let ctx = req.extensions().get::<FcContext>().expect("FcContext in extensions").clone();
            match req.uri().path() {
                "/stream" => {
                    let (tx, body) = Body::channel();
                    tokio::spawn(async move {
                        let _ = tx.send("data: first\n\n").await;
                        // The handler cannot finish until the test has seen the first chunk.
                        release.notified().await;
                        let _ = tx.send("data: second\n\n").await;
                    });
                    Response::new(body)
                }
                "/slow" => {
                    release.notified().await;
                    fc::json_response(StatusCode::OK, r#"{"slow":"done"}"#)
                }
                _ => fc::json_response(
                    StatusCode::OK,
                    json!({"kind":"http","method":req.method().as_str(),"path":req.uri().path(),"ctx":context_json(&ctx)})
                        .to_string(),
                ),
            }
        }
        Invocation::Event(event) => {
            if event.payload.as_ref() == b"fail" {
                return fc::error_response(StatusCode::BAD_GATEWAY, "model_error", "upstream failed");
            }
            let body = json!({
                "kind": "event",
                "payload": String::from_utf8_lossy(&event.payload),
                "ctx": context_json(&event.context),
            });
            fc::json_response(StatusCode::OK, body.to_string())
        }
    }
}

async fn start(options: RunOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let done = tokio::spawn(async move {
        fc::serve(listener, options, move |inv| handler(inv, r.clone()), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server { base: format!("http://{addr}"), addr, stop: Some(stop), done, release }
}

fn options() -> RunOptions {
    RunOptions {
        header_read_timeout: Duration::from_millis(400),
        shutdown_grace: Duration::from_secs(5),
        default_timeout: Duration::from_secs(77),
        ..RunOptions::default()
    }
}

fn client() -> reqwest::Client {
    fc_identity_agent::upstream::client_builder().build().unwrap()
}

#[tokio::test]
async fn http_passthrough_with_and_without_control_path() {
    let server = start(options()).await;
    for control in [None, Some("/http-invoke")] {
        let mut req = client().post(format!("{}/some/path?q=1", server.base));
        if let Some(c) = control {
            req = req.header("x-fc-control-path", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["kind"], "http");
        assert_eq!(body["method"], "POST");
        assert_eq!(body["path"], "/some/path");
        assert!(body["ctx"]["request_id"].as_str().unwrap().starts_with("local-"));
        assert_eq!(body["ctx"]["timeout_secs"], 77);
    }
}

#[tokio::test]
async fn fc_context_comes_from_headers() {
    let server = start(options()).await;
    let resp = client()
        .get(format!("{}/ctx", server.base))
        .header("x-fc-control-path", "/http-invoke")
        .header("x-fc-request-id", "req-123")
        .header("x-fc-access-key-id", "STS.abc")
        .header("x-fc-access-key-secret", "secret")
        .header("x-fc-security-token", "token")
        .header("x-fc-function-name", "agent")
        .header("x-fc-region", "cn-beijing")
        .header("x-fc-account-id", "1234")
        .header("x-fc-qualifier", "LATEST")
        .header("x-fc-function-memory", "512")
        .header("x-fc-function-timeout", "300")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["ctx"],
        json!({"request_id":"req-123","access_key_id":"STS.abc","has_token":true,"function_name":"agent",
               "region":"cn-beijing","account_id":"1234","qualifier":"LATEST","memory_mb":512,"timeout_secs":300})
    );
}

#[tokio::test]
async fn events_report_success_and_failure_in_x_fc_status() {
    let server = start(options()).await;
    let ok = client()
        .post(format!("{}/invoke", server.base))
        .header("x-fc-control-path", "/invoke")
        .header("x-fc-request-id", "evt-1")
        .header("content-type", "application/octet-stream")
        .body("hello event")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-fc-status"], "200");
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["kind"], "event");
    assert_eq!(body["payload"], "hello event");
    assert_eq!(body["ctx"]["request_id"], "evt-1");

    let failed = client()
        .post(format!("{}/invoke", server.base))
        .header("x-fc-control-path", "/invoke")
        .body("fail")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 404);
    assert_eq!(failed.headers()["x-fc-status"], "404");
    assert_eq!(failed.headers()["content-type"], "application/json");
    let body: Value = failed.json().await.unwrap();
    assert_eq!(body, json!({"error":{"code":"model_error","message":"upstream failed"}}));

    let wrong_method =
        client().get(format!("{}/invoke", server.base)).header("x-fc-control-path", "/invoke").send().await.unwrap();
    assert_eq!(wrong_method.status(), 404);
    assert_eq!(wrong_method.headers()["x-fc-status"], "404");
}

#[tokio::test]
async fn oversized_event_is_refused() {
    let server = start(RunOptions { max_event_bytes: 16, ..options() }).await;
    let resp = client()
        .post(format!("{}/invoke", server.base))
        .header("x-fc-control-path", "/invoke")
        .body(vec![b'x'; 64])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-fc-status"], "404");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn lifecycle_hooks_answer_2xx() {
    let server = start(options()).await;
    let init =
        client().post(format!("{}/initialize", server.base)).header("x-fc-control-path", "/initialize").send().await;
    assert_eq!(init.unwrap().status(), 200);
    let stop = client().get(format!("{}/pre-stop", server.base)).header("x-fc-control-path", "/pre-stop").send().await;
    assert_eq!(stop.unwrap().status(), 200);
    let unknown = client().get(format!("{}/x", server.base)).header("x-fc-control-path", "/nope").send().await;
    assert_eq!(unknown.unwrap().status(), 400);
}

#[tokio::test]
async fn pre_stop_waits_for_in_flight_requests() {
    let server = start(options()).await;
    let slow = tokio::spawn(client().get(format!("{}/slow", server.base)).send());
    // Wait until the slow request is being handled.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pre_stop =
        tokio::spawn(client().get(format!("{}/pre-stop", server.base)).header("x-fc-control-path", "/pre-stop").send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pre_stop.is_finished(), "pre-stop answered while a request was still in flight");
    server.release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    let resp = pre_stop.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "drained");
}

#[tokio::test]
async fn streaming_chunks_arrive_before_the_handler_finishes() {
    let server = start(options()).await;
    let mut resp = client().get(format!("{}/stream", server.base)).send().await.unwrap();
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    assert!(resp.headers().get("content-length").is_none());
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("first chunk in time");
    assert_eq!(first.unwrap(), Some(Bytes::from_static(b"data: first\n\n")));
    // Only now may the handler produce the rest.
    server.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"data: second\n\n");
}

#[tokio::test]
async fn half_sent_request_head_is_cut_off_but_idle_keep_alive_is_not() {
    let server = start(options()).await;
    // Slow-loris: a head that never completes is closed after the header-read timeout.
    let mut loris = TcpStream::connect(server.addr).await.unwrap();
    loris.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), loris.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the stalled connection was not closed: {read:?}");

    // An idle keep-alive connection outlives the header-read timeout and serves the next request.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let request = b"GET /ctx HTTP/1.1\r\nHost: x\r\n\r\n";
    conn.write_all(request).await.unwrap();
    let first = read_response(&mut conn).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    conn.write_all(request).await.unwrap();
    let second = read_response(&mut conn).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[tokio::test]
async fn responses_leave_fc_reserved_headers_alone() {
    let server = start(options()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /ctx HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let response = read_response(&mut conn).await.to_ascii_lowercase();
    let head = response.split("\r\n\r\n").next().unwrap();
    for reserved in ["\r\ndate:", "\r\ncontent-length:", "\r\nserver:", "\r\nconnection:", "\r\nkeep-alive:"] {
        assert!(!head.contains(reserved), "{reserved:?} set in:\n{head}");
    }
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
}

async fn read_response(conn: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn shutdown_lets_in_flight_streams_finish() {
    let mut server = start(options()).await;
    let mut resp = client().get(format!("{}/stream", server.base)).send().await.unwrap();
    assert_eq!(resp.chunk().await.unwrap(), Some(Bytes::from_static(b"data: first\n\n")));
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // No new connections once draining.
    assert!(TcpStream::connect(server.addr).await.is_err(), "still accepting after shutdown");
    assert!(!server.done.is_finished(), "the server stopped while a stream was in flight");
    server.release.notify_one();
    assert_eq!(resp.chunk().await.unwrap(), Some(Bytes::from_static(b"data: second\n\n")));
    assert_eq!(resp.chunk().await.unwrap(), None);
    tokio::time::timeout(Duration::from_secs(5), &mut server.done).await.expect("server drained").unwrap();
}
