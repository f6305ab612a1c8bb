//! The wire faces. Each is a parser (a request → the pipeline's [`crate::pipeline::Ask`]) and renderers
//! (the turn's events → its clients' bytes, implementing [`crate::pipeline::Renderer`]); none runs a
//! turn itself.
//!
//! - [`agentscope`]: `POST /process` (the AgentScope runtime protocol) and the answer to an event.
//! - [`a2a`]: `POST /a2a` (A2A 0.3 and 1.0 over JSON-RPC) and the agent card.
//! - [`agui`]: `POST /ag-ui` (AG-UI events over SSE).
//! - [`triggers`]: whatever an FC trigger delivers to `/invoke`, as an AgentScope request.
//! - [`responses`], [`chat`]: the OpenAI faces (Responses API, Chat Completions); `openai` is what they share.
//! - `reader`: the one reader of request bodies and the field rules the faces share.
//!
//! `app::face` joins each parser and renderer to the edge (the face contract); [`parse_body`] opens every
//! face's parser to the fuzz targets and the mutation test.

pub(crate) mod a2a;
pub mod agentscope;
pub(crate) mod agui;
pub(crate) mod chat;
pub(crate) mod openai;
pub(crate) mod reader;
pub(crate) mod responses;
pub mod triggers;

use crate::rejection::Rejection;

/// A face whose request body is parsed; see [`parse_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `POST /process` (`AgentRequest`).
    Process,
    /// `POST /a2a` without `A2A-Version` (0.3).
    A2aV03,
    /// `POST /a2a` with `A2A-Version: 1.0`.
    A2aV10,
    /// `POST /ag-ui` (`RunAgentInput`).
    Agui,
    /// `POST /compatible-mode/v1/responses`.
    Responses,
    /// `POST /compatible-mode/v1/chat/completions`.
    Chat,
}

/// Each face's own parser on `body`, behind one public door for the fuzz targets and the mutation test
/// (the parsers stay the crate's). `Ok`: the number of model messages the request became (0 for an A2A
/// task method). `Err`: the refusal's message as the face words it — a [`RequestError`], or for A2A the
/// JSON-RPC error's message; either way `<field path or body>: <reason>`.
pub fn parse_body(face: Wire, body: &[u8]) -> Result<usize, String> {
    let user = || crate::pipeline::UserClaim::Agent;
    match face {
        Wire::Process => agentscope::AgentRequest::from_slice(body).map(|r| r.to_ask(user()).messages.len()),
        Wire::Agui => agui::RunInput::from_slice(body).map(|r| r.to_ask(user()).messages.len()),
        // One server labelled `mcp`, as the stand-in's: a request's `mcp` tool may name it.
        Wire::Responses => {
            responses::ResponsesRequest::from_slice(body, &["mcp".to_owned()]).map(|r| r.turn.messages.len())
        }
        Wire::Chat => chat::CompletionsRequest::from_slice(body).map(|r| r.turn.messages.len()),
        Wire::A2aV03 | Wire::A2aV10 => return a2a_body(face == Wire::A2aV10, body),
    }
    .map_err(|error| error.to_string())
}

fn a2a_body(v10: bool, body: &[u8]) -> Result<usize, String> {
    let mut headers = http::HeaderMap::new();
    if v10 {
        headers.insert("a2a-version", http::HeaderValue::from_static("1.0"));
    }
    let rpc = a2a::RpcRequest::parse(body, &headers, false).map_err(|(_, _, error)| error.message)?;
    match rpc.method {
        a2a::Method::Send | a2a::Method::Stream => a2a::SendParams::parse(rpc.version, &rpc.params)
            .map(|send| send.to_ask(crate::pipeline::UserClaim::Agent).messages.len())
            .map_err(|error| error.message),
        a2a::Method::GetTask | a2a::Method::CancelTask | a2a::Method::Resubscribe => {
            a2a::TaskIdParams::parse(&rpc.params).map(|_| 0).map_err(|error| error.message)
        }
    }
}

/// A body that is not an acceptable request. `Display` names the field and why, never a value from
/// the body; it is the `message` of a 400 `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("body: not valid UTF-8 (at byte {at})")]
    NotUtf8 { at: usize },
    #[error("body: not valid JSON ({0})")]
    NotJson(String),
    #[error("body: nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
}

impl From<RequestError> for Rejection {
    fn from(error: RequestError) -> Rejection {
        Rejection::invalid_request(error.to_string())
    }
}

/// A refusal of one body field: `{field}: {reason}`. Shared by every face's parser, so they word it alike.
pub(crate) fn field(name: impl Into<String>, reason: impl Into<String>) -> RequestError {
    RequestError::Field { field: name.into(), reason: reason.into() }
}
