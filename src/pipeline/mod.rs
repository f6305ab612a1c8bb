//! One turn, whatever face asked for it: plan (pure) → identity → tools → the agent loop → the pump →
//! the face's renderer.
//!
//! - [`plan`]: an [`Ask`] and the invocation's limits become a [`Plan`], or the 4xx refusing it.
//! - [`caller`]: who the caller says it is ([`UserClaim`]), per `AGENT_IDENTITY_USER_SOURCE`.
//! - [`pump`]: the one pump and the [`Renderer`] interface every wire face implements.
//!
//! Built once per process ([`Pipeline::new`]): one client per upstream, so connection pools and the token
//! cache survive between warm invocations.

mod approvals;
mod background;
mod caller;
mod memory;
mod plan;
mod pump;
mod questions;
mod record;
mod trace;
mod turns;
mod waiting;

pub(crate) use approvals::{ApprovalAnswer, ApprovalInput, ResentRequest};
pub(crate) use background::{EVENT_KEY, Journaled, Submission, Ticket, status_of};
pub(crate) use caller::{UserClaim, bearer, event_claim, http_claim};
pub(crate) use plan::{Ask, Plan, Planner, Platform, ResponseThread};
pub use pump::Renderer;
pub(crate) use pump::SSE_KEEP_ALIVE;
pub(crate) use questions::QuestionAnswer;
pub(crate) use turns::Stopped;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::acs::{ChainProvider, Credentials, CredentialsProvider, CredentialsUriProvider, StaticProvider};
use crate::agent::{self, TurnEnd, TurnEvent};
use crate::config::Config;
use crate::failure::{Failure, FailureCode, Fault};
use crate::identity::{
    ApiKeys, ConsentPrompt, ConsentRefused, IdentityClient, OAuth2Tokens, Roles, UserOAuth2, UserTokens, VaultKey,
    WorkloadTokens,
};
use crate::identity::{Subject, jwt_subject};
use crate::llm::{LlmClient, LlmError};
use crate::mcp::{McpClient, McpError, TokenSource, Tools, UserKey};
use crate::secret::Secret;
use crate::sessions::SessionMemory;
use crate::telemetry::{Span, SpanKind, within};

/// Everything a turn needs besides its plan: one client per upstream and the credential providers.
pub(crate) struct Pipeline {
    llm: LlmClient,
    mcp: McpClient,
    tokens: Arc<WorkloadTokens>,
    /// `DASHSCOPE_API_KEY_PROVIDER` set: the model key comes from the vault (cached for the process).
    api_keys: Option<Arc<ApiKeys>>,
    /// Some MCP server takes the user's OAuth2 token (`AI_GATEWAY_MCP_OAUTH2`): the vault's tokens.
    oauth2: Option<Arc<OAuth2Tokens>>,
    env_credentials: Arc<dyn CredentialsProvider>,
    uri_credentials: Arc<dyn CredentialsProvider>,
    /// `SESSION_STORE`; `None` for `none`.
    sessions: Option<SessionMemory>,
    /// `AGENT_NAME`: the name stored messages of the agent carry (`metadata.original_name`).
    agent_name: String,
    /// Where background turns are queued (FC's asynchronous invocation of this function).
    background: background::Background,
    /// `STREAM_HEARTBEAT_SECS`: a streamed body quiet this long gets its face's keep-alive; `None`: off.
    heartbeat: Option<std::time::Duration>,
    /// The turns running here, for [`Pipeline::cancel`].
    turns: turns::Turns,
}

/// A client that could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("DashScope client: {0}")]
    Model(#[from] LlmError),
    #[error("MCP client: {0}")]
    Tools(#[from] McpError),
    #[error("Agent Identity HTTP client: {0}")]
    HttpClient(String),
    /// `SESSION_STORE` names a store that cannot be built (a malformed Redis URL).
    #[error("session store: {0}")]
    Sessions(String),
}

impl Pipeline {
    pub(crate) fn new(config: &Config) -> Result<Pipeline, PipelineError> {
        // The config parser built each client's settings (URLs validated there): they are passed on as they are.
        let llm = LlmClient::new(config.model.clone())?;
        let mcp = McpClient::new(config.mcp.clone())?;
        let identity_http = crate::upstream::client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| PipelineError::HttpClient(e.to_string()))?;
        let tokens = WorkloadTokens::new(config.identity.clone(), identity_http.clone());
        let identity = IdentityClient::new(&config.identity.endpoint, identity_http.clone());
        // One role cache: the model key and the OAuth2 tokens are fetched with the same STS credentials.
        let roles = Arc::new(Roles::new());
        let api_keys = config
            .model_key_provider
            .as_ref()
            .map(|provider| Arc::new(ApiKeys::new(provider.clone(), identity.clone(), roles.clone())));
        let oauth2 = config
            .oauth2
            .as_ref()
            .map(|settings| Arc::new(OAuth2Tokens::new(identity.clone(), roles.clone(), settings.clone())));
        let sessions = SessionMemory::new(&config.sessions).map_err(|e| PipelineError::Sessions(e.to_string()))?;
        let turns = turns::Turns::default();
        if let Some(sessions) = &sessions {
            // Stop requests for turns running here may arrive at any instance: listen from the start.
            let running = turns.stopper();
            sessions.store.listen_stops(Arc::new(move |turn_id: &str| {
                running(turn_id);
            }));
        }
        Ok(Pipeline {
            llm,
            mcp,
            tokens: Arc::new(tokens),
            api_keys,
            oauth2,
            env_credentials: Arc::new(StaticProvider::environment(config.env_credentials.clone())),
            uri_credentials: Arc::new(CredentialsUriProvider::new(config.credentials_uri.clone(), identity_http)),
            sessions,
            agent_name: config.agent.name.clone(),
            background: background::Background::new(config)?,
            heartbeat: config.stream_heartbeat,
            turns,
        })
    }

    /// Runs the planned turn (its session already recalled), reporting on `events`; always ends with
    /// `Finished` unless the receiver is gone.
    async fn run(&self, plan: Plan, events: mpsc::Sender<TurnEvent>) {
        // The token, the connections and the listings: one span, whatever of it the warm caches spare.
        let opening = Span::start("open_tools", SpanKind::Internal, Vec::new);
        let opened = within(&opening, self.open_tools(&plan, &events)).await;
        if let Err(failure) = &opened {
            opening.fail(failure.code.as_str(), &failure.message);
        }
        opening.end();
        let tools = match opened {
            Ok(tools) => tools,
            Err(failure) => {
                tracing::warn!(code = %failure.code, message = %failure.message, "turn failed before the model");
                let _ = events.send(TurnEvent::Finished(TurnEnd::Failed(failure))).await;
                return;
            }
        };
        let llm = self.model_for(&plan);
        agent::run_turn(&llm, tools.as_ref(), plan.turn, events).await;
        if let Some(tools) = tools {
            tools.close().await;
        }
    }

    /// Whether some MCP server takes the user's OAuth2 token (else `GET /oauth2/callback` is no route).
    pub(crate) fn takes_consents(&self) -> bool {
        self.oauth2.is_some()
    }

    /// `GET /oauth2/callback`: completes the consent the sealed `state` names (see
    /// `identity::OAuth2Tokens::complete`), signed with this invocation's `role` through the chain. The
    /// provider's name, or why nothing was completed: the callback's fault (400), not the user's (403), or
    /// the upstream's.
    pub(crate) async fn complete_consent(
        &self,
        session_uri: &Secret,
        state: &Secret,
        role: Option<Credentials>,
        deadline: Instant,
    ) -> Result<String, Failure> {
        let oauth2 = self.consents()?;
        let credentials = self.credentials_for(role);
        oauth2.complete(session_uri, state, &credentials, deadline).await.map_err(consent_failure)
    }

    /// `POST /oauth2/complete`: the same for the user who proves with `user_jwt` to be the one the consent
    /// was asked for (see `identity::OAuth2Tokens::complete_as`).
    pub(crate) async fn complete_consent_as(
        &self,
        session_uri: &Secret,
        state: &Secret,
        user_jwt: &Secret,
        role: Option<Credentials>,
        deadline: Instant,
    ) -> Result<String, Failure> {
        let oauth2 = self.consents()?;
        let credentials = self.credentials_for(role);
        oauth2.complete_as(session_uri, state, user_jwt, &credentials, deadline).await.map_err(consent_failure)
    }

    fn consents(&self) -> Result<&OAuth2Tokens, Failure> {
        self.oauth2.as_deref().ok_or_else(|| Failure::new(FailureCode::Internal, "no MCP server takes an OAuth2 token"))
    }

    /// Whether session memory is on (`SESSION_STORE` is not `none`).
    pub(crate) fn keeps_sessions(&self) -> bool {
        self.sessions.is_some()
    }

    /// An MCP session opened with the user's WorkloadAccessToken, or for a server configured so, the user's
    /// OAuth2 token (whose consent prompt goes straight to `events`: it is for the caller now, not for the
    /// session's memory). No MCP server configured: no token is needed, so Agent Identity is not called at all.
    async fn open_tools(&self, plan: &Plan, events: &mpsc::Sender<TurnEvent>) -> Result<Option<Tools>, Failure> {
        if !self.mcp.has_servers() {
            return Ok(None);
        }
        let deadline = plan.turn.deadline;
        let credentials: Arc<dyn CredentialsProvider> = Arc::new(self.credentials_for(plan.role.clone()));
        let wat: Arc<dyn TokenSource> =
            Arc::new(UserTokens::new(self.tokens.clone(), plan.subject.clone(), credentials.clone(), deadline));
        let events = events.clone();
        let prompt: ConsentPrompt = Arc::new(move |provider, url| {
            let events = events.clone();
            Box::pin(async move {
                // A caller gone is noticed by the turn itself at its next event.
                let _ = events.send(TurnEvent::AuthorizationRequired { provider, url }).await;
            })
        });
        let sources = self
            .mcp
            .grants()
            .into_iter()
            .map(|grant| match (grant, &self.oauth2) {
                (Some(grant), Some(oauth2)) => Arc::new(UserOAuth2::new(
                    oauth2.clone(),
                    grant,
                    self.tokens.clone(),
                    plan.subject.clone(),
                    credentials.clone(),
                    prompt.clone(),
                    deadline,
                )) as Arc<dyn TokenSource>,
                _ => wat.clone(),
            })
            .collect();
        match Tools::open_each(self.mcp.clone(), sources, self.tools_user(&plan.subject), deadline).await {
            Ok(tools) => Ok(Some(tools)),
            Err(error) => Err(Failure::tools(&error, deadline)),
        }
    }

    /// Whose kept MCP connections a turn may use: the subject the WorkloadAccessToken is issued for, so one
    /// user's tools (the gateway filters them per token) never reach another. A JWT counts by its `sub`,
    /// read only once Agent Identity has accepted the JWT (the token sources ask before any connection is
    /// used); with a preset WorkloadAccessToken nothing verifies a JWT, so such callers keep nothing.
    fn tools_user(&self, subject: &Subject) -> Option<UserKey> {
        match subject {
            Subject::UserId(user) => Some(UserKey::new(&format!("user:{user}"))),
            Subject::Agent => Some(UserKey::new("agent")),
            Subject::Jwt(jwt) if self.tokens.verifies_jwts() => {
                jwt_subject(jwt.expose()).map(|sub| UserKey::new(&format!("jwt:{sub}")))
            }
            Subject::Jwt(_) => None,
        }
    }

    /// The chat client for this turn: with the configured key, or asking the vault (which is called only
    /// when its cached key is missing or was refused, with this turn's subject and credentials).
    fn model_for(&self, plan: &Plan) -> LlmClient {
        let Some(api_keys) = &self.api_keys else {
            return self.llm.clone();
        };
        let credentials = Arc::new(self.credentials_for(plan.role.clone()));
        let source =
            VaultKey::new(api_keys.clone(), self.tokens.clone(), plan.subject.clone(), credentials, plan.turn.deadline);
        self.llm.with_keys(Arc::new(source))
    }

    /// The credentials chain (docs/design.md): this invocation's FC headers, then the environment, then the
    /// credentials URI (whose cache lives in the shared provider).
    pub(crate) fn credentials_for(&self, role: Option<Credentials>) -> ChainProvider {
        ChainProvider::new(vec![
            Arc::new(StaticProvider::invocation(role)) as Arc<dyn CredentialsProvider>,
            self.env_credentials.clone(),
            self.uri_credentials.clone(),
        ])
    }
}

/// Why a consent completed nothing, as a failure: whose fault decides the status.
fn consent_failure(refused: ConsentRefused) -> Failure {
    match refused {
        ConsentRefused::Callback(message) => {
            Failure::new(FailureCode::IdentityError, message).with_fault(Fault::Request)
        }
        ConsentRefused::NotTheUser(message) => {
            Failure::new(FailureCode::IdentityError, message).with_fault(Fault::Permission)
        }
        ConsentRefused::Upstream(error) => Failure {
            message: format!("the consent was not confirmed: {error}"),
            ..Failure::identity_refusing(&error, Fault::Request)
        },
    }
}
