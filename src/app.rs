//! The function's routes and the edge where every module's error becomes an HTTP status or a final event.

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::config::Config;
use crate::fc::{self, Body, Event, Invocation};

/// Everything built once at start and shared by all invocations.
pub struct App {
    config: Config,
}

impl App {
    pub fn new(config: Config) -> Arc<App> {
        Arc::new(App { config })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Options for the FC adapter derived from the configuration.
    pub fn run_options(&self) -> fc::RunOptions {
        fc::RunOptions {
            port: self.config.port,
            default_timeout: self.config.function_timeout,
            ..fc::RunOptions::default()
        }
    }

    /// Serves until SIGTERM/SIGINT.
    pub async fn run(self: Arc<App>) -> Result<(), fc::FcError> {
        let options = self.run_options();
        fc::run(options, move |invocation| {
            let app = self.clone();
            async move { app.handle(invocation).await }
        })
        .await
    }

    pub async fn handle(&self, invocation: Invocation) -> Response<Body> {
        match invocation {
            Invocation::Http(request) => self.route(request).await,
            Invocation::Event(event) => self.event(event).await,
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().trim_end_matches('/');
        let method = request.method().clone();
        match (path, method) {
            ("/health", Method::GET | Method::HEAD) => health(),
            ("", Method::GET | Method::HEAD) => index(),
            ("/health" | "", _) => method_not_allowed("GET"),
            _ => fc::error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!(
                    "no route for {}; see GET / for the endpoints",
                    request.uri().path()
                ),
            ),
        }
    }

    async fn event(&self, _event: Event) -> Response<Body> {
        fc::error_response(
            StatusCode::NOT_IMPLEMENTED,
            "internal",
            "event invocations are not wired yet",
        )
    }
}

fn health() -> Response<Body> {
    fc::json_response(StatusCode::OK, r#"{"status":"healthy","runner":"ready"}"#)
}

fn index() -> Response<Body> {
    let body = serde_json::json!({
        "service": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "process": "POST /process",
            "health": "GET /health",
            "events": "POST /invoke with x-fc-control-path: /invoke",
        },
    });
    fc::json_response(StatusCode::OK, body.to_string())
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = fc::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this endpoint accepts {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
