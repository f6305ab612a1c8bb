//! The edge: the function's routes, each a wire face's parser → the planner → the pipeline with the
//! face's renderer. The one place where a request becomes a [`Rejection`] or a turn.
//!
//! - `process.rs`: `POST /process` (AgentScope SSE, or one JSON answer)
//! - `invoke.rs`: event invocations (`/invoke`)
//! - `a2a.rs`: `POST /a2a` (A2A JSON-RPC) and the agent card
//! - `agui.rs`: `POST /ag-ui` (AG-UI SSE)
//! - `responses.rs`, `chat.rs`: the OpenAI faces under `/compatible-mode/v1` (Responses, Chat Completions,
//!   models); their refusals are in OpenAI's error shape
//! - `sessions.rs`: `GET` / `DELETE /sessions/{session_id}` (session memory)
//! - `oauth2.rs`: `GET /oauth2/callback` (the OAuth2 consent's return URL)

mod a2a;
mod agui;
mod chat;
mod invoke;
mod oauth2;
mod process;
mod responses;
mod sessions;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, BodyError, Context, Request, RequestExt, Runtime, Service, service_fn};
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::acs::Credentials;
use crate::config::{Config, UserSource};
use crate::pipeline::{self, Pipeline, PipelineError, Planner};
use crate::protocol::a2a::{CardSettings, Tasks};
use crate::rejection::Rejection;
use crate::secret::Secret;

/// Everything built once at start and shared by all invocations.
pub struct App {
    pipeline: Arc<Pipeline>,
    planner: Planner,
    user_source: UserSource,
    event_instruction: String,
    max_request_bytes: usize,
    options: fc_runtime::Options,
    /// `GET /`, made once: it names the agent (`AGENT_NAME`) and the endpoints.
    index: Bytes,
    /// The A2A tasks this instance ran or is running.
    tasks: Arc<Tasks>,
    card: CardSettings,
    openai: chat::OpenAiFaces,
}

/// The function could not be built from its configuration.
pub(crate) type AppError = PipelineError;

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, AppError> {
        Ok(Arc::new(App {
            pipeline: Arc::new(Pipeline::new(&config)?),
            planner: Planner::new(&config),
            user_source: config.identity.user_source.clone(),
            event_instruction: config.agent.event_instruction.clone(),
            max_request_bytes: config.max_request_bytes,
            index: index(&config.agent.name),
            tasks: Arc::new(Tasks::default()),
            card: CardSettings {
                name: config.agent.name.clone(),
                public_url: config.agent.a2a_public_url.clone(),
                user_source: config.identity.user_source.clone(),
            },
            openai: chat::OpenAiFaces::new(&config),
            options: fc_runtime::Options {
                port: config.port,
                default_timeout: config.function_timeout,
                ..fc_runtime::Options::default()
            },
        }))
    }

    /// Options for the FC adapter derived from the configuration.
    pub fn run_options(&self) -> fc_runtime::Options {
        self.options.clone()
    }

    /// Serves until SIGTERM/SIGINT.
    pub async fn run(self: Arc<App>) -> Result<(), fc_runtime::Error> {
        let options = self.run_options();
        // FC's pre-stop hook: the instance is about to go, so whatever telemetry is still queued leaves now.
        Runtime::new(self.handler())
            .options(options)
            .on_pre_stop(|_context| async {
                crate::telemetry::shutdown().await;
                Ok(())
            })
            .run()
            .await
    }

    /// The function as the FC runtime's service: what `fc_runtime::Runtime` calls per invocation. It
    /// never fails: every refusal is an answer in the face's own shape.
    pub fn handler(
        self: &Arc<App>,
    ) -> impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static {
        let app = self.clone();
        service_fn(move |request: Request| {
            let app = app.clone();
            async move { Ok(app.handle(request).await) }
        })
    }

    async fn handle(self: &Arc<Self>, request: Request) -> Response<Body> {
        let answer = if request.is_event() { self.event(request).await } else { self.route(request).await };
        answer.unwrap_or_else(Rejection::into_response)
    }

    async fn route(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let path = request.uri().path().trim_end_matches('/');
        match (path, request.method()) {
            ("/process", &Method::POST) => self.process(request).await,
            ("/a2a", &Method::POST) => self.a2a(request).await,
            ("/ag-ui", &Method::POST) => self.agui(request).await,
            ("/.well-known/agent-card.json" | "/.well-known/agent.json", &Method::GET | &Method::HEAD) => {
                Ok(self.agent_card(&request))
            }
            (OPENAI_RESPONSES, &Method::POST) => Ok(self.responses(request).await),
            (OPENAI_CHAT, &Method::POST) => Ok(self.chat_completions(request).await),
            (OPENAI_MODELS, &Method::GET | &Method::HEAD) => Ok(self.models()),
            (OPENAI_RESPONSES | OPENAI_CHAT, _) => {
                Ok(crate::protocol::openai::rejection_response(Rejection::method_not_allowed("POST")))
            }
            (OPENAI_MODELS, _) => Ok(crate::protocol::openai::rejection_response(Rejection::method_not_allowed("GET"))),
            ("/health", &Method::GET | &Method::HEAD) => Ok(health()),
            (crate::config::CALLBACK_PATH, &Method::GET) => Ok(self.oauth2_callback(request).await),
            (crate::config::CALLBACK_PATH, _) => Err(Rejection::method_not_allowed("GET")),
            ("", &Method::GET | &Method::HEAD) => Ok(json_response(self.index.clone())),
            (path, &Method::GET | &Method::DELETE) if path.starts_with("/sessions/") => {
                let session_id = path["/sessions/".len()..].to_owned();
                self.session(request, &session_id).await
            }
            (path, _) if path.starts_with("/sessions/") => Err(Rejection::method_not_allowed("GET, DELETE")),
            ("/process" | "/a2a" | "/ag-ui", _) => Err(Rejection::method_not_allowed("POST")),
            ("/.well-known/agent-card.json" | "/.well-known/agent.json", _) => {
                Err(Rejection::method_not_allowed("GET"))
            }
            ("/health" | "", _) => Err(Rejection::method_not_allowed("GET")),
            _ => Err(Rejection::not_found(request.uri().path())),
        }
    }
}

/// The OpenAI faces' paths: `OpenAI(base_url=".../compatible-mode/v1")` appends `/responses` and so on.
const OPENAI_RESPONSES: &str = "/compatible-mode/v1/responses";
const OPENAI_CHAT: &str = "/compatible-mode/v1/chat/completions";
const OPENAI_MODELS: &str = "/compatible-mode/v1/models";

/// What the planner needs to know about an invocation on `face` from FC's context.
fn invocation(context: &Context, face: &'static str) -> pipeline::Platform {
    pipeline::Platform {
        origin: crate::telemetry::Origin::of(face, context),
        timeout: context.timeout(),
        deadline: context.deadline(),
        role: context.credentials().map(|role| {
            Credentials::from_parts(
                role.access_key_id().to_owned(),
                Secret::new(role.access_key_secret()),
                role.security_token().map(Secret::new),
            )
        }),
        drain: context.drain().clone(),
    }
}

/// A request body, at most `limit` bytes. Content-Type is not checked: curl users forget it, and a body
/// that parses is accepted.
async fn read_body(request: &mut Request, limit: usize) -> Result<Bytes, Rejection> {
    request.body_bytes(limit).await.map_err(|error| match error {
        BodyError::TooLarge { limit } => Rejection::payload_too_large(limit),
        other => Rejection::invalid_request(format!("body: {other}")),
    })
}

fn json_response(body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn health() -> Response<Body> {
    json_response(r#"{"status":"healthy","runner":"ready"}"#)
}

fn index(agent_name: &str) -> Bytes {
    let body = serde_json::json!({
        "service": env!("CARGO_PKG_NAME"),
        "agent": agent_name,
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "process": "POST /process",
            "a2a": "POST /a2a (card: GET /.well-known/agent-card.json)",
            "ag-ui": "POST /ag-ui",
            "health": "GET /health",
            "events": "POST /invoke with x-fc-control-path: /invoke",
            "sessions": "GET or DELETE /sessions/{session_id}",
            "oauth2_callback": "GET /oauth2/callback (the OAuth2 consent's return URL)",
            "responses": "POST /compatible-mode/v1/responses",
            "chat_completions": "POST /compatible-mode/v1/chat/completions",
            "models": "GET /compatible-mode/v1/models",
        },
    });
    Bytes::from(body.to_string())
}
