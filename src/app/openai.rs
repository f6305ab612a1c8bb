//! The OpenAI faces under `/compatible-mode/v1`: `POST /responses` (the Responses API), `POST
//! /chat/completions` (the agent as a model) and `GET /models`. Refusals are in OpenAI's error shape.

use bytes::Bytes;
use fc_runtime::Body;
use http::Response;

use super::face::{Caller, Face, Parsed, Reply};
use crate::config::Config;
use crate::pipeline::{Ask, Journaled, Plan, Ticket};
use crate::protocol::chat::{CompletionsAnswer, CompletionsRequest, CompletionsStream};
use crate::protocol::openai::{OpenAiTurn, model_list, rejection_response};
use crate::protocol::responses::{Echo, ResponsesAnswer, ResponsesRequest, ResponsesStream, queued_response};
use crate::rejection::Rejection;
use crate::respond;

/// The model an OpenAI answer names, worked out once for the plan and the renderer.
struct Models {
    /// `DASHSCOPE_MODEL`: what a request that names no model is answered by.
    default: String,
}

impl Models {
    /// The ask (its claim made from the body's user) and the model the answer names. OpenAI clients always
    /// send a `model` (the Chat SDK requires one), usually the one `/models` listed: naming the configured
    /// model is naming none, so it needs no `DASHSCOPE_ALLOWED_MODELS` entry. Any other is the planner's to
    /// allow or refuse, and the answer names it as asked.
    fn ask(&self, mut turn: OpenAiTurn, caller: &Caller<'_>) -> (Ask, String) {
        let named = match turn.model.take() {
            Some(model) if model != self.default => {
                turn.model = Some(model.clone());
                model
            }
            _ => self.default.clone(),
        };
        let claim = caller.claim(turn.named_user());
        (turn.into_ask(claim), named)
    }
}

/// The Responses face.
pub(super) struct ResponsesFace {
    models: Models,
    /// The function's MCP server labels: what a request's `mcp` tools may name.
    servers: Vec<String>,
}

/// What a Responses answer needs: the model it names, streamed or not, and what it repeats.
pub(super) struct ResponsesReply {
    model: String,
    stream: bool,
    echo: Echo,
}

impl ResponsesFace {
    pub(super) fn new(config: &Config) -> Self {
        ResponsesFace { models: Models { default: config.model.model.clone() }, servers: config.mcp.labels() }
    }
}

impl Face for ResponsesFace {
    type Request = ResponsesReply;
    type Stream = ResponsesStream;
    type Answer = ResponsesAnswer;

    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<ResponsesReply>, Rejection> {
        let ResponsesRequest { turn, stream, echo } = ResponsesRequest::from_slice(body, &self.servers)?;
        let (ask, model) = self.models.ask(turn, caller);
        Ok(Parsed::Turn(ask, ResponsesReply { model, stream, echo }))
    }

    fn reply(&self, reply: ResponsesReply, _: &Plan) -> Reply<ResponsesStream, ResponsesAnswer> {
        let ResponsesReply { model, stream, echo } = reply;
        match stream {
            true => Reply::stream(ResponsesStream::new(model, echo)),
            false => Reply::answer(ResponsesAnswer::new(model, echo)),
        }
    }

    fn refuse(&self, rejection: Rejection, _: Option<&ResponsesReply>) -> Response<Body> {
        rejection_response(rejection)
    }

    fn background(&self, reply: &ResponsesReply) -> bool {
        reply.echo.background
    }

    fn ticket_prefix(&self) -> &'static str {
        "resp"
    }

    fn queued(&self, reply: &ResponsesReply, ticket: &Ticket) -> String {
        queued_response(reply.model.clone(), reply.echo.clone(), ticket)
    }

    /// `background` with `stream`: the events as they are journaled, resumable (OpenAI's shape).
    fn follows(&self, reply: &ResponsesReply) -> bool {
        reply.stream
    }

    fn recorded(&self, reply: ResponsesReply, ticket: &Ticket) -> Option<Box<dyn Journaled>> {
        Some(Box::new(ResponsesStream::recorded(reply.model, reply.echo, ticket)))
    }
}

/// The Chat Completions face, and the model list both OpenAI faces' clients read.
pub(super) struct ChatFace {
    models: Models,
    /// The body of `GET /compatible-mode/v1/models`, made once: the configured model first.
    list: Bytes,
}

/// What a Chat Completions answer needs.
pub(super) struct ChatReply {
    model: String,
    stream: bool,
    /// `stream_options.include_usage`.
    include_usage: bool,
}

impl ChatFace {
    pub(super) fn new(config: &Config) -> Self {
        let default = config.model.model.clone();
        let list = model_list(&default, &config.model.allowed_models, &config.agent.name);
        ChatFace { models: Models { default }, list: Bytes::from(list) }
    }

    /// `GET /compatible-mode/v1/models`.
    pub(super) fn models(&self) -> Response<Body> {
        respond::json(self.list.clone())
    }
}

impl Face for ChatFace {
    type Request = ChatReply;
    type Stream = CompletionsStream;
    type Answer = CompletionsAnswer;

    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<ChatReply>, Rejection> {
        let CompletionsRequest { turn, stream, include_usage } = CompletionsRequest::from_slice(body)?;
        let (ask, model) = self.models.ask(turn, caller);
        Ok(Parsed::Turn(ask, ChatReply { model, stream, include_usage }))
    }

    fn reply(&self, reply: ChatReply, _: &Plan) -> Reply<CompletionsStream, CompletionsAnswer> {
        match reply.stream {
            true => Reply::stream(CompletionsStream::new(reply.model, reply.include_usage)),
            false => Reply::answer(CompletionsAnswer::new(reply.model)),
        }
    }

    fn refuse(&self, rejection: Rejection, _: Option<&ChatReply>) -> Response<Body> {
        rejection_response(rejection)
    }
}
