//! The stand-in's tool that asks the user: `book_table` needs to know for how many guests. On 2026-07-28
//! (when the client declared `elicitation`) the first `tools/call` answers `resultType: "input_required"`
//! with a form-mode `elicitation/create` (`guests`, a required integer, and an optional choice, yes/no and
//! text) and a `requestState` the stand-in made; the retry must carry that same `requestState` (once) and
//! an `inputResponses` entry under the question's key.
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
        (Some("accept"), true) => match content.as_ref().and_then(|c| c.get(KEY)).and_then(Value::as_i64) {
            Some(guests) => ok(&booked(guests, content.as_ref().unwrap_or(&Value::Null))),
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
            requested_schema: booking_form(),
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

/// `book_table`'s form: the number of guests (required), and optional fields of every other kind a form
/// may hold — a choice from a list, a yes/no, a free text — so a client's form is exercised whole.
fn booking_form() -> ElicitationSchema {
    let schema = json!({
        "type": "object",
        "properties": {
            KEY: {"type": "integer", "title": "Guests", "minimum": 1, "maximum": 20},
            "seating": {"type": "string", "title": "Seating", "enum": ["indoors", "terrace"]},
            "high_chair": {"type": "boolean", "title": "A high chair", "default": false},
            "name": {"type": "string", "title": "Name for the booking", "maxLength": 60},
        },
        "required": [KEY],
    });
    serde_json::from_value(schema).unwrap_or_else(|_| ElicitationSchema::builder().build_unchecked())
}

/// What the booking says it did: the guests, then whatever else the form said.
fn booked(guests: i64, content: &Value) -> String {
    let mut said = format!("Booked a table for {guests} guests.");
    if let Some(seating) = content.get("seating").and_then(Value::as_str) {
        said.push_str(&format!(" Seating: {seating}."));
    }
    if content.get("high_chair").and_then(Value::as_bool) == Some(true) {
        said.push_str(" With a high chair.");
    }
    if let Some(name) = content.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        said.push_str(&format!(" Under the name {name}."));
    }
    said
}

fn ok(text: &str) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn error(text: &str) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(text)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booking_form_holds_every_kind_of_field_and_only_guests_is_required() {
        let form = serde_json::to_value(booking_form()).unwrap();
        let kinds: Vec<&str> = ["guests", "seating", "high_chair", "name"]
            .map(|k| form["properties"][k]["type"].as_str().unwrap())
            .to_vec();
        assert_eq!(kinds, ["integer", "string", "boolean", "string"], "{form}");
        assert_eq!(form["properties"]["seating"]["enum"], json!(["indoors", "terrace"]));
        assert_eq!(form["required"], json!(["guests"]));
        let content = json!({"guests": 4, "seating": "terrace", "high_chair": true, "name": "Ada"});
        assert_eq!(
            booked(4, &content),
            "Booked a table for 4 guests. Seating: terrace. With a high chair. Under the name Ada."
        );
        assert_eq!(booked(2, &json!({"guests": 2, "high_chair": false, "name": ""})), "Booked a table for 2 guests.");
    }
}
