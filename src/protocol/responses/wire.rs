//! The Responses API's objects as the builder writes them: borrowed, serialized straight into a frame's
//! bytes. Every object's keys are written in sorted order — the order the `serde_json::Value` renderer they
//! replaced wrote them in, so the wire is byte-for-byte what the SDK tests were checked against
//! (`testdata/wire.txt`). Keep new fields in that order.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::request::Echo;
use crate::failure::{Failure, FailureCode};
use crate::llm::Usage;
use crate::mcp::ToolDef;
use crate::protocol::openai::failure_type;

/// `[]`: serde writes an empty array for a zero-length array.
pub(super) const EMPTY: [(); 0] = [];

/// Which text item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TextKind {
    Reasoning,
    Message,
}

impl TextKind {
    pub(super) fn part_type(self) -> &'static str {
        match self {
            TextKind::Reasoning => "reasoning_text",
            TextKind::Message => "output_text",
        }
    }
}

/// A content part: `{annotations: [], text, type: output_text}` or `{text, type: reasoning_text}`.
#[derive(serde::Serialize)]
pub(super) struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a [UrlCitation]>,
    text: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> Part<'a> {
    pub(super) fn new(kind: TextKind, text: &'a str) -> Self {
        Part::annotated(kind, text, None)
    }

    /// An `output_text` part whose text carries `citation` (a reasoning part has no annotations).
    pub(super) fn annotated(kind: TextKind, text: &'a str, citation: Option<&'a UrlCitation>) -> Self {
        let annotations = (kind == TextKind::Message).then(|| citation.map_or(&[][..], std::slice::from_ref));
        Part { annotations, text, kind: kind.part_type() }
    }
}

/// A `url_citation` annotation: the link an `output_text` carries between two character indexes (the
/// consent link of an OAuth2 authorization).
pub(super) struct UrlCitation {
    pub(super) end_index: usize,
    pub(super) start_index: usize,
    pub(super) title: String,
    pub(super) url: String,
}

impl Serialize for UrlCitation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("end_index", &self.end_index)?;
        map.serialize_entry("start_index", &self.start_index)?;
        map.serialize_entry("title", &self.title)?;
        map.serialize_entry("type", "url_citation")?;
        map.serialize_entry("url", &self.url)?;
        map.end()
    }
}

/// One output item in its current state: the added shape while `open`, the final one once done.
pub(super) enum Item {
    Text {
        kind: TextKind,
        id: String,
        text: String,
        status: &'static str,
        open: bool,
        /// The link the text carries, when it is a consent prompt.
        citation: Option<UrlCitation>,
    },
    Call {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
        output: Option<String>,
        status: &'static str,
    },
    Listing {
        id: String,
        server_label: String,
        tools: Arc<[ToolDef]>,
        open: bool,
    },
    /// A call waiting for the user (`McpApprovalRequest`); the answer is an input item
    /// `mcp_approval_response` naming `id`.
    ApprovalRequest {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
    },
}

impl Item {
    pub(super) fn id(&self) -> &str {
        match self {
            Item::Text { id, .. }
            | Item::Call { id, .. }
            | Item::Listing { id, .. }
            | Item::ApprovalRequest { id, .. } => id,
        }
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Item::Text { kind, id, text, status, open, citation } => {
                let part = (!open).then(|| Part::annotated(*kind, text, citation.as_ref()));
                match kind {
                    TextKind::Reasoning => {
                        map.serialize_entry("content", part.as_slice())?;
                        map.serialize_entry("id", id)?;
                        map.serialize_entry("status", status)?;
                        map.serialize_entry("summary", &EMPTY)?;
                        map.serialize_entry("type", "reasoning")?;
                    }
                    TextKind::Message => {
                        map.serialize_entry("content", part.as_slice())?;
                        map.serialize_entry("id", id)?;
                        map.serialize_entry("role", "assistant")?;
                        map.serialize_entry("status", status)?;
                        map.serialize_entry("type", "message")?;
                    }
                }
            }
            Item::Call { id, server_label, name, arguments, output, status } => {
                map.serialize_entry("arguments", arguments)?;
                map.serialize_entry("error", &())?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("name", name)?;
                map.serialize_entry("output", output)?;
                map.serialize_entry("server_label", server_label)?;
                map.serialize_entry("status", status)?;
                map.serialize_entry("type", "mcp_call")?;
            }
            Item::Listing { id, server_label, tools, open } => {
                map.serialize_entry("error", &())?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("server_label", server_label)?;
                let tools = if *open { &[][..] } else { &tools[..] };
                map.serialize_entry("tools", &Tools(tools))?;
                map.serialize_entry("type", "mcp_list_tools")?;
            }
            Item::ApprovalRequest { id, server_label, name, arguments } => {
                map.serialize_entry("arguments", arguments)?;
                map.serialize_entry("id", id)?;
                map.serialize_entry("name", name)?;
                map.serialize_entry("server_label", server_label)?;
                map.serialize_entry("type", "mcp_approval_request")?;
            }
        }
        map.end()
    }
}

/// A listing's tools: `{description, input_schema, name}` each.
struct Tools<'a>(&'a [ToolDef]);

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Tool<'a> {
            description: &'a str,
            input_schema: &'a serde_json::Map<String, Value>,
            name: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|t| Tool {
            description: &t.description,
            input_schema: &t.input_schema,
            name: &t.name,
        }))
    }
}

/// One stream event. Only the fields its type has are set; `sequence_number` and `type` always are.
#[derive(serde::Serialize, Default)]
pub(super) struct Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) annotation: Option<&'a UrlCitation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) annotation_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) arguments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) item: Option<&'a Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) item_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) logprobs: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) part: Option<Part<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) response: Option<ResponseObject<'a>>,
    pub(super) sequence_number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) text: Option<&'a str>,
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
}

/// How the Response stands: `in_progress` (no output, no usage yet) or how the turn ended.
#[derive(Clone, Copy)]
pub(super) enum Standing<'a> {
    /// A background turn waiting for FC to deliver it.
    Queued,
    InProgress,
    /// A background turn someone stopped.
    Cancelled,
    Completed,
    Incomplete,
    Failed(&'a Failure),
}

/// The Response object: every field the SDK requires, unset ones as `null` like OpenAI.
pub(super) struct ResponseObject<'a> {
    pub(super) id: &'a str,
    pub(super) created_at: u64,
    pub(super) model: &'a str,
    pub(super) echo: &'a Echo,
    pub(super) output: &'a [Item],
    pub(super) usage: Option<Usage>,
    pub(super) standing: Standing<'a>,
}

impl Serialize for ResponseObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Format {
            #[serde(rename = "type")]
            kind: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Text {
            format: Format,
        }
        #[derive(serde::Serialize)]
        struct Id<'a> {
            id: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Error {
            code: &'static str,
            message: String,
            #[serde(rename = "type")]
            kind: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Reason {
            reason: &'static str,
        }
        let (status, error, incomplete) = match self.standing {
            Standing::Queued => ("queued", None, None),
            Standing::InProgress => ("in_progress", None, None),
            Standing::Cancelled => ("cancelled", None, None),
            Standing::Completed => ("completed", None, None),
            // The SDK's enum has no reason for an iteration bound; `max_output_tokens` is the nearest (the
            // turn's budget ran out), and strict clients accept it.
            Standing::Incomplete => ("incomplete", None, Some(Reason { reason: "max_output_tokens" })),
            // `code` is an enum in the SDK (`ResponseError.code`): a strict client rejects anything else, so
            // ours goes first in the message, and `type` is the error class the Chat face reports too.
            Standing::Failed(failure) => {
                let error = Error {
                    code: error_code(failure.code),
                    message: format!("{}: {}", failure.code.as_str(), failure.message),
                    kind: failure_type(failure.code),
                };
                ("failed", Some(error), None)
            }
        };
        let done = !matches!(self.standing, Standing::InProgress | Standing::Queued);
        let echo = self.echo;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("background", &echo.background)?;
        map.serialize_entry("conversation", &echo.conversation.as_deref().map(|id| Id { id }))?;
        map.serialize_entry("created_at", &self.created_at)?;
        map.serialize_entry("error", &error)?;
        map.serialize_entry("id", self.id)?;
        map.serialize_entry("incomplete_details", &incomplete)?;
        map.serialize_entry("instructions", &echo.instructions)?;
        map.serialize_entry("max_output_tokens", &echo.max_output_tokens)?;
        map.serialize_entry("metadata", &echo.metadata)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry("object", "response")?;
        map.serialize_entry("output", if done { self.output } else { &[] })?;
        map.serialize_entry("parallel_tool_calls", &true)?;
        map.serialize_entry("previous_response_id", &echo.previous_response_id)?;
        map.serialize_entry("status", status)?;
        map.serialize_entry("store", &echo.response_id.is_some())?;
        map.serialize_entry("temperature", &echo.temperature)?;
        map.serialize_entry("text", &Text { format: Format { kind: "text" } })?;
        map.serialize_entry("tool_choice", "auto")?;
        map.serialize_entry("tools", &EMPTY)?;
        map.serialize_entry("top_p", &echo.top_p)?;
        map.serialize_entry("usage", &self.usage.filter(|_| done).map(UsageObject))?;
        map.end()
    }
}

/// The value of the SDK's `ResponseError.code` enum nearest to a failure: `rate_limit_exceeded` tells a
/// client to retry later, `invalid_prompt` that the input itself was refused (DashScope's 400 or its
/// content inspection), and everything else is on the server's side. The enum has no code for a refused
/// credential, a tool or a deadline, so those are `server_error` with our code in the message.
fn error_code(code: FailureCode) -> &'static str {
    match code {
        FailureCode::ModelThrottled => "rate_limit_exceeded",
        // An approval answer that answers nothing waiting is the input's fault, like a refused prompt.
        FailureCode::ModelBadRequest
        | FailureCode::ContentFiltered
        | FailureCode::ApprovalInvalid
        | FailureCode::AnswerInvalid => "invalid_prompt",
        FailureCode::IdentityError
        | FailureCode::CredentialsMissing
        | FailureCode::ToolUnauthorized
        | FailureCode::ToolError
        | FailureCode::ModelUnauthorized
        | FailureCode::ModelError
        | FailureCode::DeadlineExceeded
        | FailureCode::MaxIterations
        | FailureCode::Cancelled
        | FailureCode::Internal
        | FailureCode::SessionError
        | FailureCode::SessionBusy
        | FailureCode::ConsentTimeout => "server_error",
    }
}

/// `usage` as the Responses API names it.
struct UsageObject(Usage);

impl Serialize for UsageObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct InputDetails {
            cache_write_tokens: u32,
            cached_tokens: u32,
        }
        #[derive(serde::Serialize)]
        struct OutputDetails {
            reasoning_tokens: u32,
        }
        let usage = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("input_tokens", &usage.prompt_tokens)?;
        map.serialize_entry("input_tokens_details", &InputDetails { cache_write_tokens: 0, cached_tokens: 0 })?;
        map.serialize_entry("output_tokens", &usage.completion_tokens)?;
        map.serialize_entry("output_tokens_details", &OutputDetails { reasoning_tokens: 0 })?;
        map.serialize_entry("total_tokens", &usage.total_tokens)?;
        map.end()
    }
}
