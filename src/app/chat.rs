//! `POST /compatible-mode/v1/chat/completions` (the agent as a model) and `GET /compatible-mode/v1/models`.
//! Refusals are in OpenAI's error shape.

use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, Context, Request, RequestExt};
use http::{HeaderMap, Response};

use super::{App, invocation, json_response, read_body};
use crate::config::Config;
use crate::pipeline::{Ask, Plan, http_claim};
use crate::protocol::chat::{CompletionsAnswer, CompletionsRequest, CompletionsStream};
use crate::protocol::openai::{OpenAiTurn, model_list, rejection_response};
use crate::rejection::Rejection;

/// What the OpenAI faces need from the configuration, taken once at start.
pub(super) struct OpenAiFaces {
    /// `DASHSCOPE_MODEL`: the `model` of an answer whose request named none.
    pub(super) default_model: String,
    /// The body of `GET /compatible-mode/v1/models`, made once.
    models: Bytes,
}

impl OpenAiFaces {
    /// OpenAI clients always send a `model` (the Chat SDK requires one), usually the one `/models` listed:
    /// naming the configured model is naming none, so it needs no `DASHSCOPE_ALLOWED_MODELS` entry.
    pub(super) fn ask(&self, mut ask: Ask) -> Ask {
        if ask.model.as_deref() == Some(self.default_model.as_str()) {
            ask.model = None;
        }
        ask
    }

    pub(super) fn new(config: &Config) -> Self {
        let default_model = config.model.model.clone();
        let models = model_list(&default_model, &config.model.allowed_models, &config.agent.name);
        OpenAiFaces { default_model, models: Bytes::from(models) }
    }
}

impl App {
    /// The plan of an OpenAI face's turn, and the model its answer names: the chosen one, else the
    /// configured one.
    pub(super) fn openai_plan(
        &self,
        headers: &HeaderMap,
        context: &Context,
        face: &'static str,
        turn: OpenAiTurn,
    ) -> Result<(Plan, String), Rejection> {
        let claim = http_claim(&self.user_source, headers, turn.named_user());
        let plan = self.planner.plan(self.openai.ask(turn.into_ask(claim)), invocation(context, face))?;
        let model = plan.turn.model.clone().unwrap_or_else(|| self.openai.default_model.clone());
        Ok((plan, model))
    }

    pub(super) async fn chat_completions(self: &Arc<Self>, request: Request) -> Response<Body> {
        self.chat_turn(request).await.unwrap_or_else(rejection_response)
    }

    pub(super) fn models(&self) -> Response<Body> {
        json_response(self.openai.models.clone())
    }

    async fn chat_turn(self: &Arc<Self>, request: Request) -> Result<Response<Body>, Rejection> {
        let mut request = request;
        let bytes = read_body(&mut request, self.max_request_bytes).await?;
        let CompletionsRequest { turn, stream, include_usage } = CompletionsRequest::from_slice(&bytes)?;
        let (plan, model) = self.openai_plan(request.headers(), request.fc_context(), "chat", turn)?;
        Ok(if stream {
            self.pipeline.stream(plan, CompletionsStream::new(model, include_usage))
        } else {
            self.pipeline.answer(plan, CompletionsAnswer::new(model)).await
        })
    }
}
