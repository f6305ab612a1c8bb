//! The one maker of a whole (not streamed) HTTP response: a body, its status and its content type. Every
//! answer of the edge and every refusal is made here, so none forgets its content type.

use bytes::Bytes;
use fc_runtime::Body;
use http::{HeaderValue, Response, StatusCode, header};

pub(crate) const JSON: &str = "application/json";
pub(crate) const HTML: &str = "text/html; charset=utf-8";

/// `body` with `status` and `content_type`.
pub(crate) fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 200 JSON answer.
pub(crate) fn json(body: impl Into<Bytes>) -> Response<Body> {
    respond(StatusCode::OK, JSON, body)
}
