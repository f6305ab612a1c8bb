//! The dev stack's chat page (`make dev`, `DEVSTACK_CHAT_PORT`): three static files compiled into this
//! binary (no build step, no CDN, nothing fetched at run time) and a same-origin proxy to the function's
//! real faces, so the page is a client of `POST /process` and `GET/DELETE /sessions/{id}` exactly as any
//! other client is, and the function needs no CORS and no page of its own (the binary FC runs stays as it
//! is). The proxy passes bodies through untouched and streams the answer chunk by chunk as it arrives.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::sync::oneshot;

const INDEX_HTML: &str = include_str!("chat/index.html");
const CHAT_CSS: &str = include_str!("chat/chat.css");
const CHAT_JS: &str = include_str!("chat/chat.js");

/// Above the function's own request bound (1 MiB, `MAX_REQUEST_BYTES`), so the function — not the proxy —
/// is the one that refuses an oversized body, with its own error.
const PROXY_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The request headers the page may send and the function reads (a bearer JWT or a user header when the
/// function takes its user from one); everything else is the proxy's own business.
const FORWARDED_REQUEST: [header::HeaderName; 3] = [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION];
/// The function's response headers the page needs; hop-by-hop ones (`transfer-encoding`) are the proxy's.
const FORWARDED_RESPONSE: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::CACHE_CONTROL];

struct Upstream {
    /// `http://127.0.0.1:PORT`, the function.
    function: String,
    client: reqwest::Client,
}

/// The running chat page. Dropping it stops accepting connections.
pub struct ChatPage {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl ChatPage {
    /// Serves the page on `bind`, proxying to the function at `function` (`http://host:port`).
    pub async fn start(bind: SocketAddr, function: &str) -> std::io::Result<ChatPage> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        // No overall timeout: a turn lasts as long as the function lets it (its own deadline ends it).
        let client = super::client_builder().build().map_err(std::io::Error::other)?;
        let upstream = std::sync::Arc::new(Upstream { function: function.trim_end_matches('/').to_owned(), client });
        let app = Router::new()
            .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
            .route("/chat.css", get(|| async { asset("text/css; charset=utf-8", CHAT_CSS) }))
            .route("/chat.js", get(|| async { asset("text/javascript; charset=utf-8", CHAT_JS) }))
            .route("/process", post(process))
            .route("/sessions/{id}", get(session).delete(session))
            .layer(DefaultBodyLimit::max(PROXY_BODY_LIMIT))
            .with_state(upstream);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(super::no_delay(listener), app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "chat page stopped");
            }
        });
        Ok(ChatPage { addr, stop: Some(stop) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`, to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for ChatPage {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    // Embedded in this binary: a new build is a new page, so the browser must not keep an old one.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn process(State(upstream): State<std::sync::Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> Response {
    forward(&upstream, Method::POST, "/process".to_owned(), &headers, body).await
}

async fn session(
    State(upstream): State<std::sync::Arc<Upstream>>,
    method: Method,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // The id goes back out percent-encoded: the function judges it (a `:` or a control character is its 400).
    let mut path = format!("/sessions/{}", percent_encode(&id));
    if let Some(query) = query {
        path.push('?');
        path.push_str(&query);
    }
    forward(&upstream, method, path, &headers, Bytes::new()).await
}

/// One request to the function, its answer streamed back as it comes.
async fn forward(upstream: &Upstream, method: Method, path: String, headers: &HeaderMap, body: Bytes) -> Response {
    let mut request = upstream.client.request(method, format!("{}{path}", upstream.function)).body(body);
    for name in FORWARDED_REQUEST {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let response = match request.send().await {
        Ok(response) => response,
        // The function is down or restarting: say so in the function's own error shape, which the page shows.
        Err(error) => {
            let body = serde_json::json!({"error": {"code": "function_unreachable",
                "message": format!("the chat page could not reach the function at {}: {error}", upstream.function)}});
            return (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "application/json")], body.to_string())
                .into_response();
        }
    };
    let status = response.status();
    let mut out_headers = HeaderMap::new();
    for name in FORWARDED_RESPONSE {
        if let Some(value) = response.headers().get(&name) {
            out_headers.insert(name, value.clone());
        }
    }
    out_headers.insert(header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    // Each chunk goes on as soon as it arrives; when the browser goes away, the stream (and with it the
    // request to the function) is dropped, so the function sees its caller leave.
    let chunks = stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, reqwest::Error>(chunk), response)),
            Ok(None) => None,
            Err(error) => Some((Err(error), response)),
        }
    });
    (status, out_headers, Body::from_stream(chunks)).into_response()
}

/// Every byte but RFC 3986's unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_go_out_percent_encoded() {
        assert_eq!(percent_encode("chat-1a2b"), "chat-1a2b");
        assert_eq!(percent_encode("a/b c:d"), "a%2Fb%20c%3Ad");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    /// A function that sends the first SSE frame, then waits for the test's word before the last one, and
    /// answers `GET /sessions/{id}` with what it was asked.
    async fn function(go: oneshot::Receiver<()>) -> SocketAddr {
        use axum::extract::Request;
        let go = std::sync::Arc::new(std::sync::Mutex::new(Some(go)));
        let stream = move || {
            let go = go.lock().unwrap().take();
            // Sent once: a second request gets the last frame without waiting.
            let frames = stream::unfold((0, go), |(n, go)| async move {
                match n {
                    0 => Some((Ok::<_, std::io::Error>(Bytes::from("data: {\"n\":0}\n\n")), (1, go))),
                    1 => {
                        let _ = go?.await;
                        Some((Ok(Bytes::from("data: {\"n\":1}\n\n")), (2, None)))
                    }
                    _ => None,
                }
            });
            async move { ([(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")], Body::from_stream(frames)) }
        };
        let echo = |request: Request| async move {
            let auth = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
            (StatusCode::NOT_FOUND, format!("{} {} {auth:?}", request.method(), request.uri()))
        };
        let app = Router::new().route("/process", post(stream)).route("/sessions/{id}", get(echo).delete(echo));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn the_proxy_streams_each_frame_as_it_comes() {
        let (go, wait) = oneshot::channel();
        let upstream = function(wait).await;
        let page = ChatPage::start(([127, 0, 0, 1], 0).into(), &format!("http://{upstream}")).await.unwrap();
        let client = crate::client_builder().build().unwrap();
        let mut response = client.post(format!("{}process", page.url())).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream; charset=utf-8");
        // The first frame is here while the function still holds the last one back: not buffered.
        let first = response.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"data: {\"n\":0}\n\n");
        go.send(()).unwrap();
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(rest, b"data: {\"n\":1}\n\n");
    }

    #[tokio::test]
    async fn sessions_go_through_with_their_method_query_status_and_bearer() {
        let upstream = function(oneshot::channel().1).await;
        let page = ChatPage::start(([127, 0, 0, 1], 0).into(), &format!("http://{upstream}")).await.unwrap();
        let client = crate::client_builder().build().unwrap();
        let url = format!("{}sessions/chat%20one?user_id=u%3A1", page.url());
        let got = client.get(&url).bearer_auth("jwt").send().await.unwrap();
        assert_eq!(got.status(), 404);
        assert_eq!(got.text().await.unwrap(), r#"GET /sessions/chat%20one?user_id=u%3A1 Some("Bearer jwt")"#);
        let deleted = client.delete(&url).send().await.unwrap();
        assert_eq!(deleted.text().await.unwrap(), "DELETE /sessions/chat%20one?user_id=u%3A1 None");
    }

    #[tokio::test]
    async fn an_unreachable_function_is_a_502_in_the_function_s_error_shape() {
        let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let page = ChatPage::start(([127, 0, 0, 1], 0).into(), &format!("http://{nobody}")).await.unwrap();
        let client = crate::client_builder().build().unwrap();
        let response = client.post(format!("{}process", page.url())).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 502);
        let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "function_unreachable", "{body}");
    }

    #[tokio::test]
    async fn the_three_files_are_served() {
        let page = ChatPage::start(([127, 0, 0, 1], 0).into(), "http://127.0.0.1:9").await.unwrap();
        let client = crate::client_builder().build().unwrap();
        for (path, kind, body) in
            [("", "text/html", INDEX_HTML), ("chat.css", "text/css", CHAT_CSS), ("chat.js", "text/javascript", CHAT_JS)]
        {
            let response = client.get(format!("{}{path}", page.url())).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
            assert_eq!(response.text().await.unwrap(), body, "{path}");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        // No framework, no CDN: every script and style the page loads is one of the three embedded files.
        for needle in ["http://", "https://", "//cdn", "@import"] {
            assert!(!INDEX_HTML.contains(needle), "index.html loads {needle}");
            assert!(!CHAT_CSS.contains(needle), "chat.css loads {needle}");
        }
        assert!(INDEX_HTML.contains("src=\"chat.js\"") && INDEX_HTML.contains("href=\"chat.css\""));
    }
}
