//! Who the end user is, per `AGENT_IDENTITY_USER_SOURCE` (DESIGN.md, "Who the user is").

use http::{HeaderMap, header};

use super::Rejection;

use crate::config::UserSource;
use crate::identity::Subject;
use crate::protocol::AgentRequest;
use crate::secret::Secret;

/// The subject of an HTTP invocation.
pub fn http_subject(source: &UserSource, headers: &HeaderMap, request: &AgentRequest) -> Result<Subject, Rejection> {
    match source {
        UserSource::Auto => match bearer(headers) {
            Some(jwt) => Ok(Subject::Jwt(jwt)),
            None => body_user(request),
        },
        UserSource::Jwt => bearer(headers).map(Subject::Jwt).ok_or_else(|| {
            Rejection::unauthenticated(
                "Authorization: Bearer <end-user JWT> is required (AGENT_IDENTITY_USER_SOURCE=jwt)",
            )
        }),
        UserSource::Body => body_user(request),
        UserSource::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| Subject::UserId(v.to_owned()))
            .ok_or_else(|| Rejection::unauthenticated(format!("the {name} header identifying the user is missing"))),
    }
}

/// The subject of an event invocation: the request's `user_id`, else the agent itself.
pub fn event_subject(request: &AgentRequest) -> Subject {
    match request.user_id() {
        Some(user) => Subject::UserId(user.to_owned()),
        None => Subject::Agent,
    }
}

/// Body `user_id`, falling back to `session_id` as the Python sample does.
fn body_user(request: &AgentRequest) -> Result<Subject, Rejection> {
    request.user_id().or(request.session_id()).map(|u| Subject::UserId(u.to_owned())).ok_or_else(|| {
        Rejection::invalid_request(
            "user_id: required to identify the user (or session_id, or an Authorization: Bearer JWT)",
        )
    })
}

fn bearer(headers: &HeaderMap) -> Option<Secret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};

    fn request(json: &str) -> AgentRequest {
        AgentRequest::from_slice(json.as_bytes()).unwrap()
    }

    const WITH_USER: &str =
        r#"{"input":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"user_id":"u1","session_id":"s1"}"#;
    const SESSION_ONLY: &str =
        r#"{"input":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"session_id":"s1"}"#;
    const NOBODY: &str = r#"{"input":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#;

    fn with_auth(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn auto_prefers_the_bearer_jwt_then_the_body() {
        let jwt = http_subject(&UserSource::Auto, &with_auth("Bearer eyJ.x.y"), &request(WITH_USER)).unwrap();
        assert_eq!(jwt, Subject::Jwt(Secret::new("eyJ.x.y")));
        let body = http_subject(&UserSource::Auto, &HeaderMap::new(), &request(WITH_USER)).unwrap();
        assert_eq!(body, Subject::UserId("u1".into()));
        let session = http_subject(&UserSource::Auto, &HeaderMap::new(), &request(SESSION_ONLY)).unwrap();
        assert_eq!(session, Subject::UserId("s1".into()));
        let refused = http_subject(&UserSource::Auto, &HeaderMap::new(), &request(NOBODY)).unwrap_err();
        assert_eq!((refused.status, refused.code), (StatusCode::BAD_REQUEST, "invalid_request"));
    }

    #[test]
    fn jwt_source_requires_a_bearer() {
        let refused = http_subject(&UserSource::Jwt, &HeaderMap::new(), &request(WITH_USER)).unwrap_err();
        assert_eq!((refused.status, refused.code), (StatusCode::UNAUTHORIZED, "unauthenticated"));
        let basic = http_subject(&UserSource::Jwt, &with_auth("Basic abc"), &request(WITH_USER)).unwrap_err();
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        let ok = http_subject(&UserSource::Jwt, &with_auth("bearer  tok "), &request(NOBODY)).unwrap();
        assert_eq!(ok, Subject::Jwt(Secret::new("tok")));
    }

    #[test]
    fn body_source_ignores_the_bearer() {
        let s = http_subject(&UserSource::Body, &with_auth("Bearer eyJ"), &request(WITH_USER)).unwrap();
        assert_eq!(s, Subject::UserId("u1".into()));
    }

    #[test]
    fn header_source_reads_the_named_header() {
        let name = http::HeaderName::from_static("x-user-id");
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_static("alice"));
        let s = http_subject(&UserSource::Header(name.clone()), &headers, &request(WITH_USER)).unwrap();
        assert_eq!(s, Subject::UserId("alice".into()));
        let refused = http_subject(&UserSource::Header(name), &HeaderMap::new(), &request(WITH_USER)).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn events_use_the_user_id_or_the_agent() {
        assert_eq!(event_subject(&request(WITH_USER)), Subject::UserId("u1".into()));
        assert_eq!(event_subject(&request(SESSION_ONLY)), Subject::Agent);
    }
}
