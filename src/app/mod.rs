//! The edge: the route table (`routes.rs`) sends each request to a wire face or a handler. A face
//! (`face::Face`) parses its body into the pipeline's ask and writes its own refusals; `App::serve`
//! is the one driver of read → parse → plan → stream or answer. The one place where a request becomes a
//! [`Rejection`] or a turn.
//!
//! - `routes.rs`: the table of `(method, path) → endpoint`; the 405s and `GET /` come from it
//! - `face.rs`: the face contract and its driver
//! - `process.rs`: `POST /process` (AgentScope SSE, or one JSON answer)
//! - `invoke.rs`: event invocations (`/invoke`)
//! - `a2a.rs`: `POST /a2a` (A2A JSON-RPC) and the agent card
//! - `agui.rs`: `POST /ag-ui` (AG-UI SSE)
//! - `openai.rs`: the OpenAI faces under `/compatible-mode/v1` (Responses, Chat Completions, models);
//!   their refusals are in OpenAI's error shape
//! - `background.rs`: background turns: the async invocation that runs one, following a journaled stream
//!   (`starting_after`, `Last-Event-ID`), `GET`/cancel of a background response
//! - `sessions.rs`: `GET` / `DELETE /sessions/{session_id}` (session memory)
//! - `oauth2.rs`: `GET /oauth2/callback` (the OAuth2 consent's return URL) and `POST /oauth2/complete`
//!   (the same, proven by the signed-in user's JWT)

mod a2a;
mod agui;
mod background;
mod face;
mod invoke;
mod oauth2;
mod openai;
mod process;
mod routes;
mod sessions;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, BodyError, Context, Request, RequestExt, Runtime, Service, service_fn};
use http::Response;

use crate::acs::Credentials;
use crate::config::{Config, UserSource};
use crate::pipeline::{self, Pipeline, PipelineError, Planner};
use crate::rejection::Rejection;
use crate::respond;
use crate::secret::Secret;
use routes::{Endpoint, Found, Route, Shape};

/// Everything built once at start and shared by all invocations.
pub struct App {
    pipeline: Arc<Pipeline>,
    planner: Planner,
    user_source: UserSource,
    max_request_bytes: usize,
    options: fc_runtime::Options,
    /// `GET /`, made once from the route table: it names the agent (`AGENT_NAME`) and the endpoints.
    index: Bytes,
    faces: Faces,
}

/// Each face with its own state (A2A's tasks and card, the OpenAI faces' model list, the event
/// instruction); nothing in it is shared between faces.
struct Faces {
    process: process::ProcessFace,
    process_task: process::ProcessTaskFace,
    event: invoke::EventFace,
    a2a: a2a::A2aFace,
    agui: agui::AguiFace,
    responses: openai::ResponsesFace,
    chat: openai::ChatFace,
}

/// The function could not be built from its configuration.
pub(crate) type AppError = PipelineError;

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, AppError> {
        let pipeline = Arc::new(Pipeline::new(&config)?);
        Ok(Arc::new(App {
            pipeline: pipeline.clone(),
            planner: Planner::new(&config),
            user_source: config.identity.user_source.clone(),
            max_request_bytes: config.max_request_bytes,
            index: Bytes::from(routes::index(&config.agent.name)),
            faces: Faces {
                process: process::ProcessFace,
                process_task: process::ProcessTaskFace,
                event: invoke::EventFace::new(&config),
                a2a: a2a::A2aFace::new(&config, pipeline),
                agui: agui::AguiFace,
                responses: openai::ResponsesFace::new(&config),
                chat: openai::ChatFace::new(&config),
            },
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

    /// The route table's answer: the endpoint, a 405 naming what the route allows, or a 404.
    async fn handle(self: &Arc<Self>, request: Request) -> Response<Body> {
        if request.is_event() {
            return self.dispatch(routes::event_route(), request, None).await;
        }
        match routes::find(request.method(), request.uri().path()) {
            Found::Served { route, param } => self.dispatch(route, request, param).await,
            Found::WrongMethod(route) => refuse(route, Rejection::method_not_allowed(route.allow())),
            Found::Nowhere => Rejection::not_found(request.uri().path()).into_response(),
        }
    }

    async fn dispatch(self: &Arc<Self>, route: &Route, request: Request, param: Option<String>) -> Response<Body> {
        match route.endpoint {
            Endpoint::Event => self.serve(&self.faces.event, route, request).await,
            Endpoint::Process | Endpoint::Responses if request.headers().contains_key("last-event-id") => {
                match self.resumed(&request).await {
                    Some(response) => response,
                    None => refuse(
                        route,
                        Rejection::new(
                            http::StatusCode::NOT_FOUND,
                            "not_found",
                            "Last-Event-ID names no journaled turn (only background turns can be resumed, until they expire)",
                        ),
                    ),
                }
            }
            Endpoint::Process => self.serve(&self.faces.process, route, request).await,
            Endpoint::ProcessTask => self.serve(&self.faces.process_task, route, request).await,
            Endpoint::ProcessTaskStatus => {
                let id = param.unwrap_or_default();
                self.task_route(request, &id).await.unwrap_or_else(|rejection| refuse(route, rejection))
            }
            Endpoint::A2a => self.serve(&self.faces.a2a, route, request).await,
            Endpoint::Agui => self.serve(&self.faces.agui, route, request).await,
            Endpoint::Responses => self.serve(&self.faces.responses, route, request).await,
            Endpoint::Chat => self.serve(&self.faces.chat, route, request).await,
            Endpoint::Response => {
                let id = param.unwrap_or_default();
                self.response_route(request, &id).await.unwrap_or_else(|rejection| refuse(route, rejection))
            }
            Endpoint::AgentCard => self.faces.a2a.card(request.headers()),
            Endpoint::Models => self.faces.chat.models(),
            Endpoint::Session => {
                let session_id = param.unwrap_or_default();
                self.session(request, &session_id).await.unwrap_or_else(|rejection| refuse(route, rejection))
            }
            Endpoint::Stop => self.stop(request).await.unwrap_or_else(|rejection| refuse(route, rejection)),
            Endpoint::OAuth2Callback => self.oauth2_callback(request).await,
            Endpoint::OAuth2Complete => {
                self.oauth2_complete(request).await.unwrap_or_else(|rejection| refuse(route, rejection))
            }
            Endpoint::Health => respond::json(HEALTH),
            Endpoint::Index => respond::json(self.index.clone()),
        }
    }
}

/// A refusal of `route` before any face read the request, in the route's error shape.
fn refuse(route: &Route, rejection: Rejection) -> Response<Body> {
    match route.shape {
        Shape::Plain => rejection.into_response(),
        Shape::OpenAi => crate::protocol::openai::rejection_response(rejection),
    }
}

/// What the planner needs to know about an invocation on the route named `face` from FC's context.
fn platform(context: &Context, face: &'static str) -> pipeline::Platform {
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

/// The one reader of a request body: at most `limit` bytes (`MAX_REQUEST_BYTES`). Content-Type is not
/// checked: curl users forget it, and a body that parses is accepted.
async fn read_body(request: &mut Request, limit: usize) -> Result<Bytes, Rejection> {
    request.body_bytes(limit).await.map_err(|error| match error {
        BodyError::TooLarge { limit } => Rejection::payload_too_large(limit),
        other => Rejection::invalid_request(format!("body: {other}")),
    })
}

/// The first value of `name` in a query string, percent-decoded (`+` is a space).
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

const HEALTH: &str = r#"{"status":"healthy","runner":"ready"}"#;
