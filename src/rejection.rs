//! A request refused before any turn runs, and the one writer of the plain error body (docs/design.md)
//! (`{"error":{"code":"…","message":"…"}}`). Like an axum rejection, a [`Rejection`] renders itself
//! ([`Rejection::into_response`]); handlers just return it.

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use fc_runtime::Body;

use crate::failure::{Failure, Fault};
use crate::respond::{self, respond};

/// A 4xx/5xx answered instead of a turn. `message` names the field or header and why, never a value
/// that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The `Allow` header of a 405 (the route table's methods of the path).
    allow: Option<String>,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { status, code, message: message.into(), allow: None }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// An upstream the function needs (the store, FC's queue) could not do its part: 502.
    pub(crate) fn upstream(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::BAD_GATEWAY, "upstream_error", message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub(crate) fn payload_too_large(limit: usize) -> Rejection {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds MAX_REQUEST_BYTES ({limit} bytes)"),
        )
    }

    pub(crate) fn not_found(path: &str) -> Rejection {
        Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {path}; see GET / for the endpoints"))
    }

    pub(crate) fn method_not_allowed(allow: String) -> Rejection {
        let message = format!("this endpoint accepts {allow}");
        Rejection {
            allow: Some(allow),
            ..Rejection::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message)
        }
    }

    /// `body` with this rejection's status (and `Allow`, for a 405): every face's refusal, whatever its
    /// error shape, is answered through here.
    pub(crate) fn respond_with(&self, content_type: &'static str, body: impl Into<bytes::Bytes>) -> Response<Body> {
        let mut response = respond(self.status, content_type, body);
        if let Some(allow) = self.allow.as_deref().and_then(|allow| HeaderValue::from_str(allow).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }

    /// The JSON error response.
    pub(crate) fn into_response(self) -> Response<Body> {
        self.respond_with(respond::JSON, ErrorBody::new(self.code, &self.message).to_json())
    }
}

/// A failure that answers a whole request (a session read, the consent callback): the status from the one
/// table ([`Failure::http_status`]); the code says the caller's part when it is theirs.
impl From<Failure> for Rejection {
    fn from(failure: Failure) -> Rejection {
        let code = match failure.fault {
            Fault::Credential => "unauthenticated",
            Fault::Permission => "forbidden",
            Fault::Request => "invalid_request",
            Fault::Upstream | Fault::Function => failure.code.as_str(),
        };
        Rejection::new(failure.http_status(), code, failure.message)
    }
}

impl Rejection {
    /// The same refusal as a small HTML page, for a browser (`GET /oauth2/callback`): code and message,
    /// escaped.
    pub(crate) fn into_html_response(self) -> Response<Body> {
        let body = html_page("Authorization failed", &format!("{} ({})", self.message, self.code));
        self.respond_with(respond::HTML, body)
    }
}

/// A minimal HTML page: a title and one paragraph, both escaped.
pub(crate) fn html_page(title: &str, text: &str) -> String {
    let (title, text) = (escape_html(title), escape_html(text));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>\n"
    )
}

/// Text made safe inside HTML elements and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `{"error":{"code","message"}}`: the body of a rejection, and of an event invocation whose turn failed.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> ErrorBody<'a> {
    pub fn new(code: &'a str, message: &'a str) -> Self {
        ErrorBody { error: ErrorFields { code, message } }
    }

    pub fn to_json(&self) -> String {
        // Two strings cannot fail to serialize; the fallback keeps the body JSON should that change.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"error":{"code":"internal","message":""}}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_body_escapes_and_keeps_its_key_order() {
        let json = ErrorBody::new("invalid_request", "input[0]: \"x\"\n").to_json();
        assert_eq!(json, r#"{"error":{"code":"invalid_request","message":"input[0]: \"x\"\n"}}"#);
    }

    #[test]
    fn the_html_page_escapes_everything() {
        let page = html_page("<t>", "a & b \"c\" 'd' <script>");
        assert!(page.contains("&lt;t&gt;") && page.contains("a &amp; b &quot;c&quot; &#39;d&#39; &lt;script&gt;"));
        assert!(!page.contains("<script>"), "{page}");
    }

    #[test]
    fn a_405_names_what_is_allowed() {
        let response = Rejection::method_not_allowed("POST".into()).into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
