//! The runtime as a user of the published crate meets it, through its public API only: a tower stack as
//! the function, a failing service, events, body limits, streaming to a client that leaves, and the drain
//! that lets a stream end with a last event of its own.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use fc_runtime::{
    Body, BodyError, BoxError, ClientGone, Context, Options, Request, RequestExt, Runtime, Service, service_fn,
};
use http::{HeaderValue, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tower::{ServiceBuilder, ServiceExt};

/// A running runtime: its base URL, the trigger of its shutdown, and its task.
struct Served {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve<S>(service: S, options: Options) -> Served
where
    S: Service<Request, Response = Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        Runtime::new(service).options(options).serve(listener, shutdown).await.unwrap();
    });
    Served { base, stop: Some(stop), done }
}

fn options() -> Options {
    Options { shutdown_grace: Duration::from_secs(2), ..Options::default() }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn text(text: impl Into<String>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::full(text.into())))
}

#[tokio::test]
async fn a_tower_stack_is_the_function_and_sees_the_fc_context() {
    let inner = service_fn(|request: Request| async move {
        let tagged = request.headers().get("x-tagged-by-layer").and_then(|v| v.to_str().ok()).unwrap_or("no");
        text(format!("{tagged} {}", request.fc_context().request_id()))
    });
    // Layers around the function, as a user stacks tower-http's: one rewrites the request (it reads the FC
    // context too), one the response.
    let stack = ServiceBuilder::new()
        .map_request(|mut request: Request| {
            let id = HeaderValue::from_str(request.fc_context().request_id()).unwrap();
            request.headers_mut().insert("x-tagged-by-layer", id);
            request
        })
        .map_response(|mut response: Response<Body>| {
            response.headers_mut().insert("x-layer", HeaderValue::from_static("out"));
            response
        })
        .service(inner);
    let served = serve(stack, options()).await;
    let response = client().get(format!("{}/", served.base)).header("x-fc-request-id", "r-7").send().await.unwrap();
    assert_eq!(response.headers()["x-layer"], "out");
    assert_eq!(response.text().await.unwrap(), "r-7 r-7");
}

#[tokio::test]
async fn a_service_error_is_answered_500_and_a_tower_timeout_is_one() {
    let slow = service_fn(|request: Request| async move {
        if request.uri().path() == "/fail" {
            return Err::<Response<Body>, BoxError>("the database is gone".into());
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Response::new(Body::empty()))
    });
    let stack = ServiceBuilder::new().timeout(Duration::from_millis(100)).service(slow);
    let served = serve(stack, options()).await;
    let failed = client().get(format!("{}/fail", served.base)).send().await.unwrap();
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(failed.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(failed.text().await.unwrap().contains("the database is gone"));
    let timed_out = client().get(format!("{}/slow", served.base)).send().await.unwrap();
    assert_eq!(timed_out.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(timed_out.text().await.unwrap().contains("timed out"));
}

/// The function answers HTTP calls and events alike; which one came is `is_event`, and an event's
/// non-2xx answer is FC's "invocation failed".
async fn echo(mut request: Request) -> Result<Response<Body>, Infallible> {
    let kind = if request.is_event() { "event" } else { "http" };
    match request.body_bytes(8).await {
        Ok(body) => text(format!("{kind}:{}", String::from_utf8_lossy(&body))),
        Err(BodyError::TooLarge { limit }) => {
            let mut response = Response::new(Body::full(format!("{kind}: over {limit}")));
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            Ok(response)
        }
        Err(error) => text(format!("{kind}: unreadable: {error}")),
    }
}

#[tokio::test]
async fn events_and_http_calls_reach_one_service_with_body_limits() {
    let served = serve(service_fn(echo), options()).await;
    let http = client().post(format!("{}/invoke", served.base)).body("abc").send().await.unwrap();
    assert_eq!(http.text().await.unwrap(), "http:abc", "a path of /invoke alone is not an event");
    let event = client()
        .post(format!("{}/invoke", served.base))
        .header("x-fc-control-path", "/invoke")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(event.headers()["x-fc-status"], "200");
    assert_eq!(event.text().await.unwrap(), "event:abc");
    let too_big = client()
        .post(format!("{}/invoke", served.base))
        .header("x-fc-control-path", "/invoke")
        .body("123456789")
        .send()
        .await
        .unwrap();
    assert_eq!((too_big.status().as_u16(), too_big.headers()["x-fc-status"].to_str().unwrap()), (404, "404"));
    assert_eq!(too_big.text().await.unwrap(), "event: over 8");
    let too_big = client().post(format!("{}/", served.base)).body("123456789").send().await.unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_service_is_testable_without_a_server() {
    let context = Context::from_headers(&http::HeaderMap::new(), Duration::from_secs(5));
    let request =
        http::Request::post("/invoke").body(Body::full("ping")).unwrap().with_fc_context(context).into_event();
    let response = service_fn(echo).oneshot(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(&body[..], b"event:ping");
    let bare = http::Request::get("/").body(Body::empty()).unwrap();
    assert!(bare.fc_context_ref().is_none() && !bare.is_event());
}

#[tokio::test]
async fn a_stream_flows_chunk_by_chunk_and_its_producer_learns_when_the_client_leaves() {
    let (gone_tx, mut gone_rx) = mpsc::channel::<Result<(), ClientGone>>(1);
    let producer = service_fn(move |_request: Request| {
        let gone = gone_tx.clone();
        async move {
            let (sender, body) = Body::channel();
            tokio::spawn(async move {
                let mut sent = Ok(());
                for n in 0..1000 {
                    sent = sender.send(format!("data: {n}\n\n")).await;
                    if sent.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let _ = gone.send(sent).await;
            });
            Ok::<_, Infallible>(Response::new(body))
        }
    });
    let served = serve(producer, options()).await;
    let mut response = client().get(format!("{}/", served.base)).send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().as_deref(), Some(&b"data: 0\n\n"[..]));
    assert_eq!(response.chunk().await.unwrap().as_deref(), Some(&b"data: 1\n\n"[..]), "one chunk per send");
    drop(response);
    let ended = tokio::time::timeout(Duration::from_secs(5), gone_rx.recv()).await.expect("the producer stopped");
    assert!(matches!(ended, Some(Err(ClientGone))), "the producer was told the client left: {ended:?}");
}

#[tokio::test]
async fn a_drain_lets_an_open_stream_end_with_a_last_event_before_the_grace_period_ends() {
    let draining = service_fn(|request: Request| async move {
        let (sender, body) = Body::channel_starting_with(vec!["data: started\n\n".into()]);
        let drain = request.fc_context().drain().clone();
        tokio::spawn(async move {
            drain.cutoff().await;
            let _ = sender.send("data: cut off by the shutdown\n\n").await;
        });
        Ok::<_, Infallible>(Response::new(body))
    });
    let mut served = serve(draining, options()).await;
    let mut response = client().get(format!("{}/", served.base)).send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().as_deref(), Some(&b"data: started\n\n"[..]));
    let began = Instant::now();
    served.stop.take().unwrap().send(()).unwrap();
    let last = tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.expect("the last event came");
    assert_eq!(last.unwrap().as_deref(), Some(&b"data: cut off by the shutdown\n\n"[..]));
    assert!(began.elapsed() < options().shutdown_grace, "the cut-off came before the grace period's end");
    assert_eq!(response.chunk().await.unwrap(), None, "the stream ended");
    tokio::time::timeout(Duration::from_secs(5), &mut served.done).await.expect("the runtime drained").unwrap();
}
