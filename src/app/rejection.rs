//! An answer given before any stream starts: `{"error":{"code","message"}}` with its HTTP status.

use http::{Response, StatusCode};

use crate::fc::{self, Body};

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
        fc::error_response(self.status, self.code, &self.message)
    }
}
