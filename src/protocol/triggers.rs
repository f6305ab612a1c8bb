//! Event invocations (`POST /invoke`): whatever a trigger delivered, turned into an `AgentRequest`.
//!
//! - An `AgentRequest` JSON is used as it is (an invalid one is an error: the sender clearly meant one).
//! - A payload-carrying envelope (timer `payload`, MNS message, HTTP-trigger `body`) whose payload is an
//!   `AgentRequest` is used as that request; a timer's text payload is the user's message as it is.
//! - Other recognised envelopes (OSS/CDN `{"events":[…]}`, MNS, CloudEvents object or array, SLS,
//!   Tablestore, HTTP trigger) become one user message: the instruction, then `Event (<kind>): <JSON>`.
//! - Anything else is the user's message as it is: the body text (lossy UTF-8 when it is mostly text),
//!   else a note with the size and, for small bodies, base64.
//!
//! The session is the one an `AgentRequest` names; an event that names none has no session (the edge
//! answers it under FC's request id). Nothing here panics on any bytes.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::RequestError;
use super::agentscope::AgentRequest;

/// Longest event JSON put in a prompt; a larger one is cut with a note (the model has a context limit).
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 64 * 1024;
/// Largest non-text body quoted as base64; above it only the size is reported.
pub(crate) const MAX_BASE64_BYTES: usize = 8 * 1024;

/// What kind of event a body was recognised as (for logs and the prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    AgentRequest,
    Timer,
    Oss,
    Cdn,
    /// `{"events":[…]}` from another source.
    Events,
    Mns,
    CloudEvents,
    Http,
    Sls,
    Tablestore,
    Text,
    Binary,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::AgentRequest => "agent_request",
            TriggerKind::Timer => "timer",
            TriggerKind::Oss => "oss",
            TriggerKind::Cdn => "cdn",
            TriggerKind::Events => "events",
            TriggerKind::Mns => "mns",
            TriggerKind::CloudEvents => "cloudevents",
            TriggerKind::Http => "http",
            TriggerKind::Sls => "sls",
            TriggerKind::Tablestore => "tablestore",
            TriggerKind::Text => "text",
            TriggerKind::Binary => "binary",
        }
    }
}

/// An event body understood: its kind and the request to run.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInvocation {
    pub kind: TriggerKind,
    pub request: AgentRequest,
}

/// The request an event body asks for. Errors only for a body that is an invalid `AgentRequest`.
pub fn request_from_event(body: &[u8], instruction: &str) -> Result<AgentRequest, RequestError> {
    parse_event(body, instruction).map(|e| e.request)
}

/// [`request_from_event`], also saying what kind of event it was.
pub fn parse_event(body: &[u8], instruction: &str) -> Result<EventInvocation, RequestError> {
    let text_request = |kind, text: String| EventInvocation { kind, request: AgentRequest::from_text(text) };
    let Some(value) = parse_lenient(body) else {
        return Ok(match std::str::from_utf8(body) {
            Ok(text) if !text.trim().is_empty() => text_request(TriggerKind::Text, text.to_owned()),
            Ok(_) => text_request(TriggerKind::Text, describe(instruction, "empty", "(no payload)")),
            Err(_) => opaque(body, instruction),
        });
    };
    if let Some(obj) = value.as_object()
        && obj.contains_key("input")
    {
        let request = AgentRequest::from_value(&value)?;
        return Ok(EventInvocation { kind: TriggerKind::AgentRequest, request });
    }
    let Some(kind) = recognise(&value) else {
        let text = String::from_utf8_lossy(body).into_owned();
        return Ok(text_request(TriggerKind::Text, text));
    };
    if let Some(payload) = carried_payload(kind, &value) {
        if let Some(request) = embedded_request(&payload) {
            return Ok(EventInvocation { kind, request });
        }
        if kind == TriggerKind::Timer && !payload.trim().is_empty() {
            return Ok(text_request(kind, payload));
        }
    }
    let shown = if kind == TriggerKind::Http { http_summary(&value) } else { value };
    Ok(text_request(kind, describe(instruction, kind.as_str(), &shown.to_string())))
}

/// Strict JSON, else JSON with trailing commas removed (some real trigger samples carry them).
fn parse_lenient(body: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Some(v);
    }
    let text = std::str::from_utf8(body).ok()?;
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str(&strip_trailing_commas(text)).ok()
}

fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = text[i + 1..].trim_start().chars().next();
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn recognise(value: &Value) -> Option<TriggerKind> {
    if let Value::Array(items) = value {
        let all_cloud = !items.is_empty() && items.iter().all(|v| v.as_object().is_some_and(is_cloud_event));
        return all_cloud.then_some(TriggerKind::CloudEvents);
    }
    let obj = value.as_object()?;
    let has = |k: &str| obj.contains_key(k);
    if is_cloud_event(obj) {
        Some(TriggerKind::CloudEvents)
    } else if has("triggerTime") && has("triggerName") {
        Some(TriggerKind::Timer)
    } else if let Some(Value::Array(events)) = obj.get("events") {
        let source = events.first().and_then(|e| e.get("eventSource")).and_then(Value::as_str).unwrap_or("");
        Some(match source {
            "acs:oss" => TriggerKind::Oss,
            "cdn" => TriggerKind::Cdn,
            _ => TriggerKind::Events,
        })
    } else if is_mns(obj) {
        Some(TriggerKind::Mns)
    } else if has("rawPath") && has("requestContext") {
        Some(TriggerKind::Http)
    } else if obj.get("source").is_some_and(|s| s.get("logstoreName").is_some()) && has("jobName") {
        Some(TriggerKind::Sls)
    } else if obj.get("Records").is_some_and(Value::is_array) && has("Version") {
        Some(TriggerKind::Tablestore)
    } else {
        None
    }
}

/// MNS topic: the JSON form `{TopicOwner, Message, …}` or the `{body, attrs}` form.
fn is_mns(obj: &Map<String, Value>) -> bool {
    let json_form = obj.contains_key("TopicOwner") && obj.contains_key("Message");
    let body_form = obj.get("body").is_some_and(Value::is_string) && obj.keys().all(|k| k == "body" || k == "attrs");
    json_form || body_form
}

fn is_cloud_event(obj: &Map<String, Value>) -> bool {
    obj.get("specversion").and_then(Value::as_str).is_some_and(|v| v.starts_with('1'))
        && obj.get("type").is_some_and(Value::is_string)
        && obj.get("source").is_some_and(Value::is_string)
}

/// The text an envelope carries for the function, when it carries one.
fn carried_payload(kind: TriggerKind, value: &Value) -> Option<String> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match kind {
        TriggerKind::Timer => text("payload"),
        TriggerKind::Mns => text("Message").or_else(|| text("body")),
        TriggerKind::Http => http_body(value),
        _ => None,
    }
}

fn http_body(value: &Value) -> Option<String> {
    let body = value.get("body").and_then(Value::as_str)?;
    if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
        return String::from_utf8(bytes).ok();
    }
    Some(body.to_owned())
}

/// What the model is told about an HTTP-trigger event. Headers are left out on purpose: they hold
/// `Authorization` and signatures.
fn http_summary(value: &Value) -> Value {
    let http = value.get("requestContext").and_then(|c| c.get("http"));
    json!({
        "method": http.and_then(|h| h.get("method")).cloned().unwrap_or(Value::Null),
        "path": value.get("rawPath").cloned().unwrap_or(Value::Null),
        "queryParameters": value.get("queryParameters").cloned().unwrap_or(Value::Null),
        "body": http_body(value).map(Value::String).unwrap_or(Value::Null),
    })
}

fn embedded_request(payload: &str) -> Option<AgentRequest> {
    let value: Value = serde_json::from_str(payload).ok()?;
    value.get("input")?;
    AgentRequest::from_value(&value).ok()
}

fn describe(instruction: &str, kind: &str, payload: &str) -> String {
    let payload = truncate(payload, MAX_DESCRIPTION_CHARS);
    let instruction = instruction.trim();
    if instruction.is_empty() {
        format!("Event ({kind}): {payload}")
    } else {
        format!("{instruction}\n\nEvent ({kind}): {payload}")
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… (truncated; {} bytes in all)", &text[..cut], text.len()),
    }
}

/// A body that is not UTF-8: lossy text when at most a tenth of it is undecodable, else size (and base64 when small).
fn opaque(body: &[u8], instruction: &str) -> EventInvocation {
    let lossy = String::from_utf8_lossy(body);
    let total = lossy.chars().count().max(1);
    let replaced = lossy.chars().filter(|c| *c == char::REPLACEMENT_CHARACTER).count();
    let (kind, text) = if replaced * 10 <= total {
        (TriggerKind::Text, lossy.into_owned())
    } else if body.len() <= MAX_BASE64_BYTES {
        let b64 = base64::engine::general_purpose::STANDARD.encode(body);
        (TriggerKind::Binary, describe(instruction, "binary", &format!("{} bytes, base64: {b64}", body.len())))
    } else {
        (TriggerKind::Binary, describe(instruction, "binary", &format!("{} bytes (not shown)", body.len())))
    };
    EventInvocation { kind, request: AgentRequest::from_text(text) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::agentscope::ContentItem;

    #[test]
    fn trailing_commas_go_but_commas_in_strings_stay() {
        assert_eq!(strip_trailing_commas(r#"{"a": [1, 2, ], "b": ",}",  }"#), r#"{"a": [1, 2 ], "b": ",}"  }"#);
        assert_eq!(strip_trailing_commas(r#"{"q": "\",]", }"#), r#"{"q": "\",]" }"#);
    }

    #[test]
    fn truncation_cuts_on_a_char_boundary_and_says_so() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "hé… (truncated; 6 bytes in all)");
    }

    #[test]
    fn descriptions_are_bounded() {
        let huge = format!(r#"{{"events":[{{"eventSource":"acs:oss","k":"{}"}}]}}"#, "x".repeat(200_000));
        let req = request_from_event(huge.as_bytes(), "i").unwrap();
        let [msg] = req.input.as_slice() else { panic!() };
        let [ContentItem::Text(text)] = msg.content.as_slice() else { panic!() };
        assert!(text.chars().count() < MAX_DESCRIPTION_CHARS + 100);
        assert!(text.ends_with("bytes in all)"));
    }
}
