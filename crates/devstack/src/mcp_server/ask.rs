//! The stand-in's tool that asks the user: `book_table` needs to know for how many guests. On 2026-07-28
//! (when the client declared `elicitation`) the first `tools/call` answers `resultType: "input_required"`
//! with a form-mode `elicitation/create` (`{guests: integer}`) and a `requestState` the stand-in made; the
//! retry must carry that same `requestState` (once) and an `inputResponses` entry under the question's key.
//! `sign_terms` asks the same way in URL mode (a link to open). On a 2025 revision, or for a client that
//! did not declare the capability, the tools say they cannot ask (an `isError` result) — this client does
//! not advertise elicitation there. Every retry is recorded ([`AskLog`]) so tests see what the server saw.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, ProtocolVersion, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

/// The tool that asks in form mode.
pub const ASKING_TOOL: &str = "book_table";
/// The tool that asks in URL mode.
pub const LINK_TOOL: &str = "sign_terms";
/// The key of the one question in `inputRequests`.
const KEY: &str = "guests";
/// Where `sign_terms` sends the user.
pub const TERMS_URL: &str = "https://terms.example.com/sign";

/// What the server saw on one retry.
#[derive(Debug, Clone, PartialEq)]
pub struct AskRetry {
    /// The tool retried.
    pub tool: String,
    /// The `requestState` was one this stand-in issued and not used before.
    pub state_valid: bool,
    /// The `action` of the answer under the question's key (`None`: no answer there).
    pub action: Option<String>,
    pub content: Option<Value>,
}

/// Issued states and the retries seen.
#[derive(Debug, Default)]
pub(super) struct AskLog {
    issued: Mutex<HashSet<String>>,
    retries: Mutex<Vec<AskRetry>>,
}

impl AskLog {
    pub(super) fn retries(&self) -> Vec<AskRetry> {
        self.retries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The two tools as listed.
pub(super) fn tools(prefix: &str) -> Vec<Tool> {
    let schema = json!({"type": "object", "properties": {}});
    let schema = Arc::new(schema.as_object().cloned().unwrap_or_default());
    vec![
        Tool::new(format!("{prefix}{ASKING_TOOL}"), "Books a table; asks the user how many guests.", schema.clone()),
        Tool::new(format!("{prefix}{LINK_TOOL}"), "Has the user sign the terms at a link.", schema),
    ]
}

/// Serves a call of one of the two tools (`form`: the form-mode one).
pub(super) fn call(
    log: &AskLog,
    tool: &str,
    form: bool,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> CallToolResponse {
    let modern = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    let declared = context.client_capabilities().and_then(|c| c.elicitation).is_some_and(|e| match form {
        true => e.form.is_some() || e.url.is_none(),
        false => e.url.is_some(),
    });
    if !modern || !declared {
        return error("this tool must ask the user, and the client cannot be asked (no elicitation capability)");
    }
    let Some(state) = &request.request_state else {
        return ask(log, form);
    };
    let state_valid = log.issued.lock().unwrap_or_else(|p| p.into_inner()).remove(state);
    let answer = request.input_responses.as_ref().and_then(|responses| responses.get(KEY));
    let action = answer.and_then(|a| a.get("action")).and_then(Value::as_str).map(str::to_owned);
    let content = answer.and_then(|a| a.get("content")).cloned();
    log.retries.lock().unwrap_or_else(|p| p.into_inner()).push(AskRetry {
        tool: tool.to_owned(),
        state_valid,
        action: action.clone(),
        content: content.clone(),
    });
    if !state_valid {
        return error("the requestState is not one this server issued (or it was used already)");
    }
    match (action.as_deref(), form) {
        (Some("accept"), true) => match content.as_ref().and_then(|c| c.get("guests")).and_then(Value::as_i64) {
            Some(guests) => ok(&format!("Booked a table for {guests} guests.")),
            None => error("the answer has no number of guests"),
        },
        (Some("accept"), false) => ok("The terms are signed."),
        (Some("decline"), _) => error("the user declined to answer; nothing was done"),
        (Some("cancel"), _) => error("the user dismissed the question; nothing was done"),
        _ => error("no answer to the question came back"),
    }
}

fn ask(log: &AskLog, form: bool) -> CallToolResponse {
    let state = format!("st-{}", uuid::Uuid::new_v4().simple());
    log.issued.lock().unwrap_or_else(|p| p.into_inner()).insert(state.clone());
    let params = match form {
        true => ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: "For how many guests?".to_owned(),
            requested_schema: ElicitationSchema::builder()
                .required_integer(KEY, 1, 20)
                .build()
                .unwrap_or_else(|_| ElicitationSchema::builder().build().expect("an empty schema builds")),
        },
        false => ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: "Please sign the terms.".to_owned(),
            url: TERMS_URL.to_owned(),
            elicitation_id: String::new(),
        },
    };
    let mut requests = InputRequests::new();
    requests.insert(KEY.to_owned(), InputRequest::Elicitation(ElicitRequest::new(params)));
    CallToolResponse::InputRequired(InputRequiredResult::new(Some(requests), Some(state)))
}

fn ok(text: &str) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn error(text: &str) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(text)]))
}
