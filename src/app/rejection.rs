//! An answer given before any stream starts: `{"error":{"code","message"}}` with its HTTP status — the
//! function's one error-body shape (the FC adapter writes none of its own).

use bytes::Bytes;
use fc_runtime::Body;
use http::{HeaderValue, Response, StatusCode, header};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { status, code, message: message.into() }
    }

    pub fn invalid_request(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn into_response(self) -> Response<Body> {
        error_response(self.status, self.code, &self.message)
    }
}

/// A JSON response with the given body text.
pub(crate) fn json_response(status: StatusCode, json: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::full(json));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The error shape of DESIGN.md: `{"error":{"code":"…","message":"…"}}`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    json_response(status, body.to_string())
}
