//! The FC adapter over real sockets: control-path dispatch, Context, x-fc-status, streaming, lifecycle.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fc_runtime::{Body, BodyError, BoxError, Context, Options, Request, RequestExt, Runtime, Service, service_fn};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

/// Events larger than this are refused by the test function (with its own 413).
const MAX_EVENT_BYTES: usize = 16;

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    release: Arc<Notify>,
}

fn context_json(ctx: &Context) -> Value {
    json!({
        "request_id": ctx.request_id(),
        "access_key_id": ctx.credentials().map(|c| c.access_key_id()),
        "has_token": ctx.credentials().map(|c| c.security_token().is_some()),
        "function_name": ctx.function_name(),
        "region": ctx.region(),
        "account_id": ctx.account_id(),
        "qualifier": ctx.qualifier(),
        "memory_mb": ctx.memory_mb(),
        "timeout_secs": ctx.timeout().as_secs(),
    })
}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn handler(mut req: Request, release: Arc<Notify>) -> Response<Body> {
    if !req.is_event() {
        return match req.uri().path() {
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
                json_response(StatusCode::OK, json!({"slow":"done"}))
            }
            _ => json_response(
                StatusCode::OK,
                json!({"kind":"http","method":req.method().as_str(),"path":req.uri().path(),"ctx":context_json(req.fc_context())}),
            ),
        };
    }
    let payload = match req.body_bytes(MAX_EVENT_BYTES).await {
        Ok(payload) => payload,
        Err(error @ BodyError::TooLarge { .. }) => {
            return json_response(StatusCode::PAYLOAD_TOO_LARGE, json!({"refused": error.to_string()}));
        }
        Err(error) => return json_response(StatusCode::BAD_REQUEST, json!({"refused": error.to_string()})),
    };
    if payload.as_ref() == b"fail" {
        return json_response(StatusCode::BAD_GATEWAY, json!({"error":"upstream failed"}));
    }
    let body = json!({
        "kind": "event",
        "payload": String::from_utf8_lossy(&payload),
        "ctx": context_json(req.fc_context()),
    });
    json_response(StatusCode::OK, body)
}

async fn start(options: Options) -> Server {
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let service = service_fn(move |req| {
        let release = r.clone();
        async move { Ok::<_, Infallible>(handler(req, release).await) }
    });
    start_with(Runtime::new(service).options(options), release).await
}

async fn start_with<S>(runtime: Runtime<S>, release: Arc<Notify>) -> Server
where
    S: Service<Request, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        runtime
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Server { base: format!("http://{addr}"), addr, stop: Some(stop), done, release }
}

fn options() -> Options {
    Options {
        header_read_timeout: Duration::from_millis(400),
        shutdown_grace: Duration::from_secs(5),
        default_timeout: Duration::from_secs(77),
        ..Options::default()
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
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
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
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
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
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
    let body: Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
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
    // The function's own body is kept as it was.
    let body: Value = serde_json::from_slice(&failed.bytes().await.unwrap()).unwrap();
    assert_eq!(body, json!({"error":"upstream failed"}));

    let wrong_method =
        client().get(format!("{}/invoke", server.base)).header("x-fc-control-path", "/invoke").send().await.unwrap();
    assert_eq!(wrong_method.status(), 404);
    assert_eq!(wrong_method.headers()["x-fc-status"], "404");
    assert!(wrong_method.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(wrong_method.text().await.unwrap().contains("POST /invoke"));
}

#[tokio::test]
async fn oversized_event_payload_is_reported_to_the_function() {
    let server = start(options()).await;
    let resp = client()
        .post(format!("{}/invoke", server.base))
        .header("x-fc-control-path", "/invoke")
        .body(vec![b'x'; 64])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-fc-status"], "404");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["refused"], format!("the body exceeds {MAX_EVENT_BYTES} bytes"));
}

#[tokio::test]
async fn lifecycle_hooks_answer_2xx() {
    let server = start(options()).await;
    let init =
        client().post(format!("{}/initialize", server.base)).header("x-fc-control-path", "/initialize").send().await;
    assert_eq!(init.unwrap().status(), 200);
    let stop = client().get(format!("{}/pre-stop", server.base)).header("x-fc-control-path", "/pre-stop").send().await;
    assert_eq!(stop.unwrap().status(), 200);
    let unknown = client().get(format!("{}/x", server.base)).header("x-fc-control-path", "/nope").send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(unknown.text().await.unwrap().contains("/nope"));
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
    assert_eq!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).unwrap()["status"], "drained");
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

/// A function with lifecycle hooks of its own: counts them, and fails `/initialize` when told to.
#[derive(Clone, Default)]
struct Hooked {
    initialized: Arc<AtomicUsize>,
    pre_stopped: Arc<AtomicUsize>,
    fail_initialize: bool,
}

impl Hooked {
    fn runtime(
        &self,
    ) -> Runtime<impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send> + Clone + use<>>
    {
        let called = service_fn(|_request: Request| async { Ok::<_, Infallible>(Response::new(Body::full("called"))) });
        let (initialized, pre_stopped, fail) =
            (self.initialized.clone(), self.pre_stopped.clone(), self.fail_initialize);
        Runtime::new(called)
            .options(options())
            .on_initialize(move |context: Context| {
                let initialized = initialized.clone();
                async move {
                    assert_eq!(context.request_id(), "init-1");
                    initialized.fetch_add(1, Ordering::SeqCst);
                    if fail { Err("no config".into()) } else { Ok(()) }
                }
            })
            .on_pre_stop(move |_context| {
                let pre_stopped = pre_stopped.clone();
                async move {
                    pre_stopped.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
    }
}

#[tokio::test]
async fn lifecycle_hooks_run_the_functions_code() {
    let hooked = Hooked::default();
    let server = start_with(hooked.runtime(), Arc::default()).await;
    let init = client()
        .post(format!("{}/initialize", server.base))
        .header("x-fc-control-path", "/initialize")
        .header("x-fc-request-id", "init-1")
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert_eq!(init.text().await.unwrap(), r#"{"status":"initialized"}"#);
    let stop = client()
        .get(format!("{}/pre-stop", server.base))
        .header("x-fc-control-path", "/pre-stop")
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 200);
    assert_eq!((hooked.initialized.load(Ordering::SeqCst), hooked.pre_stopped.load(Ordering::SeqCst)), (1, 1));
    let call = client().get(format!("{}/anything", server.base)).send().await.unwrap();
    assert_eq!(call.text().await.unwrap(), "called");
}

#[tokio::test]
async fn a_failed_initialize_hook_is_a_500() {
    let hooked = Hooked { fail_initialize: true, ..Hooked::default() };
    let server = start_with(hooked.runtime(), Arc::default()).await;
    let init = client()
        .post(format!("{}/initialize", server.base))
        .header("x-fc-control-path", "/initialize")
        .header("x-fc-request-id", "init-1")
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 500);
    assert!(init.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(init.text().await.unwrap().contains("no config"));
}
