//! One invocation's turn, end to end: token for the user → the user's tools → the agent loop.
//! Failures anywhere become the turn's final `Finished(Failed)` event, never a silent `completed`.

use std::sync::Arc;

use std::time::Duration;

use fc_runtime::{Context, Drain, RoleCredentials};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{App, Rejection};
use crate::acs::{ChainProvider, Credentials, CredentialsProvider, StaticProvider};
use crate::agent::{self, AgentEvent, FailureCode, Refresh, Toolbox, Turn, TurnEnd, TurnError};
use crate::identity::{IdentityError, Subject};
use crate::llm::{ChatMessage, Sampling, Stop};
use crate::protocol::{AgentRequest, ResponseBuilder, ResponseObject};
use crate::secret::Secret;

/// What an invocation asks for, resolved and validated before anything streams.
pub struct Plan {
    pub subject: Subject,
    /// The function role's credentials from this invocation's FC headers, if FC sent them.
    pub role: Option<RoleCredentials>,
    pub turn: Turn,
    /// When a shutdown in progress will cut the invocation off.
    pub drain: Drain,
}

impl App {
    /// The plan for a validated request: the model it may use, the turn, who it runs as.
    pub(super) fn plan(&self, request: &AgentRequest, subject: Subject, context: &Context) -> Result<Plan, Rejection> {
        let model = self.pick_model(request)?;
        Ok(Plan {
            subject,
            role: context.credentials().cloned(),
            turn: self.turn_for(request, model, context),
            drain: context.drain().clone(),
        })
    }

    /// The request's `model`, if the configuration allows callers to choose one.
    fn pick_model(&self, request: &AgentRequest) -> Result<Option<String>, Rejection> {
        let allowed = &self.config.model.allowed_models;
        match request.model.as_deref().filter(|m| !m.is_empty()) {
            None => Ok(None),
            Some(model) if allowed.iter().any(|m| m == model) => Ok(Some(model.to_owned())),
            Some(_) if allowed.is_empty() => Err(Rejection::invalid_request(
                "model: choosing a model is not enabled (DASHSCOPE_ALLOWED_MODELS is empty)",
            )),
            Some(_) => Err(Rejection::invalid_request(format!("model: must be one of {}", allowed.join(", ")))),
        }
    }

    /// Builds the model turn for a parsed request: system prompt + the conversation, sampling fields.
    pub(super) fn turn_for(&self, request: &AgentRequest, model: Option<String>, context: &Context) -> Turn {
        let deadline = turn_deadline(context);
        let mut messages = Vec::with_capacity(request.input.len() + 1);
        messages.push(ChatMessage::System { content: self.config.agent.system_prompt.clone() });
        messages.extend(request.to_chat_messages());
        Turn {
            messages,
            model,
            sampling: Sampling {
                temperature: request.temperature,
                top_p: request.top_p,
                max_tokens: request.max_tokens,
                seed: request.seed,
                stop: request.stop.clone().map(Stop::Many),
            },
            max_iters: self.config.agent.max_iters,
            deadline,
        }
    }

    /// Runs the plan, reporting on `events`; always ends with `Finished` unless the receiver is gone.
    pub(super) async fn run_plan(self: &Arc<Self>, plan: Plan, events: mpsc::Sender<AgentEvent>) {
        let deadline = plan.turn.deadline;
        let toolbox = match self.open_tools(&plan, deadline).await {
            Ok(toolbox) => toolbox,
            Err(error) => {
                tracing::warn!(code = %error.code, message = %error.message, "turn failed before the model");
                let _ = events.send(AgentEvent::Finished(TurnEnd::Failed(error))).await;
                return;
            }
        };
        agent::run_turn(&self.llm, toolbox.as_ref(), plan.turn, events).await;
        if let Some(toolbox) = toolbox {
            toolbox.close().await;
        }
    }

    /// Runs the plan to its end and returns the final response object (`stream:false`, events).
    pub(super) async fn run_to_response(self: &Arc<Self>, plan: Plan, session_id: Option<String>) -> ResponseObject {
        let (tx, mut rx) = mpsc::channel(64);
        let mut builder = ResponseBuilder::silent(session_id);
        let drain = plan.drain.clone();
        let collect = async {
            while let Some(event) = rx.recv().await {
                builder.push(&event);
            }
        };
        tokio::select! {
            _ = async { tokio::join!(self.run_plan(plan, tx), collect) } => {}
            _ = drain.cutoff() => {
                builder.push(&AgentEvent::Finished(shutting_down()));
            }
        }
        builder.into_response()
    }

    /// The user's WorkloadAccessToken and an MCP session opened with it. No MCP server configured: no
    /// token is needed, so Agent Identity is not called at all.
    async fn open_tools(self: &Arc<Self>, plan: &Plan, deadline: Instant) -> Result<Option<Toolbox>, TurnError> {
        if !self.mcp.has_servers() {
            return Ok(None);
        }
        let credentials = Arc::new(self.credentials_for(plan.role.clone()));
        let token = self.tokens.token(&plan.subject, credentials.as_ref(), deadline).await.map_err(identity_failure)?;
        let refresh = self.refresher(plan.subject.clone(), token.clone(), credentials, deadline);
        Toolbox::open(self.mcp.clone(), token, refresh, deadline).await.map(Some)
    }

    /// After the gateway refused `rejected`: drop it from the cache and fetch once more.
    fn refresher(
        self: &Arc<Self>,
        subject: Subject,
        rejected: Secret,
        credentials: Arc<ChainProvider>,
        deadline: Instant,
    ) -> Refresh {
        let app = self.clone();
        Box::new(move || {
            let (app, subject, rejected, credentials) =
                (app.clone(), subject.clone(), rejected.clone(), credentials.clone());
            Box::pin(async move {
                app.tokens.invalidate_token(&subject, &rejected);
                app.tokens.token(&subject, credentials.as_ref(), deadline).await.map_err(identity_failure)
            })
        })
    }

    /// The credentials chain of DESIGN.md: this invocation's FC headers, then the environment, then the
    /// credentials URI (whose cache lives in the shared provider).
    fn credentials_for(&self, role: Option<RoleCredentials>) -> ChainProvider {
        let invocation = role.map(|r| Credentials {
            access_key_id: r.access_key_id().to_owned(),
            access_key_secret: Secret::new(r.access_key_secret()),
            security_token: r.security_token().map(Secret::new),
            expiration: None,
        });
        ChainProvider::new(vec![
            Arc::new(StaticProvider::invocation(invocation)) as Arc<dyn CredentialsProvider>,
            self.env_credentials.clone(),
            self.uri_credentials.clone(),
        ])
    }
}

/// Most of a turn's time a turn may use: FC's clock started before the request reached us, and a turn cut at
/// its deadline still has to write its `failed` event, so it ends a little before the invocation must.
const MAX_RESERVE: Duration = Duration::from_secs(1);

/// The invocation's deadline less a reserve of 5 % of its timeout (at most [`MAX_RESERVE`]).
fn turn_deadline(context: &Context) -> Instant {
    let reserve = (context.timeout() / 20).min(MAX_RESERVE);
    context.deadline().checked_sub(reserve).unwrap_or(context.deadline())
}

/// How a turn ends when the instance shuts down before it could finish.
pub(super) fn shutting_down() -> TurnEnd {
    TurnEnd::Failed(TurnError::new(
        FailureCode::DeadlineExceeded,
        "the function instance is shutting down; the turn was stopped before it finished",
    ))
}

fn identity_failure(error: IdentityError) -> TurnError {
    let code = if error.is_credentials_missing() {
        FailureCode::CredentialsMissing
    } else if error.is_deadline() {
        FailureCode::DeadlineExceeded
    } else {
        FailureCode::IdentityError
    };
    TurnError::new(code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(timeout_secs: u64) -> Context {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-fc-function-timeout", timeout_secs.to_string().parse().unwrap());
        Context::from_headers(&headers, Duration::from_secs(600))
    }

    #[test]
    fn the_turn_ends_before_the_invocation_must_answer() {
        let long = context(600);
        assert_eq!(long.deadline() - turn_deadline(&long), MAX_RESERVE);
        let short = context(1);
        assert_eq!(short.deadline() - turn_deadline(&short), Duration::from_millis(50));
    }
}
