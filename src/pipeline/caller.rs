//! Who the caller says it is, per `AGENT_IDENTITY_USER_SOURCE` (docs/design.md, "Who the user is"). Every face
//! makes a [`UserClaim`] from its headers and its own body field; the planner decides what the claim is
//! worth (an unnamed caller is fine when no token is needed, a missing required credential never is).

use http::{HeaderMap, header};

use crate::config::UserSource;
use crate::secret::Secret;

/// What an invocation tells about its end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserClaim {
    /// A bearer JWT (Agent Identity verifies it).
    Jwt(Secret),
    /// A user id the caller asserts, or a header the trigger set.
    UserId(String),
    /// Nobody, on purpose: an event invocation without a user runs as the agent itself.
    Agent,
    /// The request names nobody; fine unless a token is needed. `reason` is the 400's message.
    Unnamed { reason: String },
    /// The configured source demands a credential the request lacks; `reason` is the 401's message.
    Unauthenticated { reason: String },
}

/// The claim of an HTTP invocation: the source's rule over the headers and the body's user field
/// (`body_user`, already with the face's fallback applied — the sample falls back to `session_id`).
pub(crate) fn http_claim(source: &UserSource, headers: &HeaderMap, body_user: Option<&str>) -> UserClaim {
    let from_body = || match body_user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(user) => UserClaim::UserId(user.to_owned()),
        None => UserClaim::Unnamed {
            reason: "user_id: required to identify the user (or session_id, or an Authorization: Bearer JWT)".into(),
        },
    };
    match source {
        UserSource::Auto => bearer(headers).map(UserClaim::Jwt).unwrap_or_else(from_body),
        UserSource::Jwt => bearer(headers).map(UserClaim::Jwt).unwrap_or_else(|| UserClaim::Unauthenticated {
            reason: "Authorization: Bearer <end-user JWT> is required (AGENT_IDENTITY_USER_SOURCE=jwt)".into(),
        }),
        UserSource::Body => from_body(),
        UserSource::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| UserClaim::UserId(v.to_owned()))
            .unwrap_or_else(|| UserClaim::Unauthenticated {
                reason: format!("the {name} header identifying the user is missing"),
            }),
    }
}

impl UserClaim {
    /// A caller that names nobody runs as the agent itself (the agent-only token) rather than being
    /// refused: what A2A callers get, since another agent calling has no end user to name.
    pub(crate) fn or_agent(self) -> UserClaim {
        match self {
            UserClaim::Unnamed { .. } => UserClaim::Agent,
            claim => claim,
        }
    }
}

impl UserClaim {
    /// The claim as a background turn keeps it until it runs (JSON; a [`Secret`], as it may hold the JWT).
    pub(crate) fn to_stored(&self) -> Secret {
        let value = match self {
            UserClaim::Jwt(jwt) => serde_json::json!({ "jwt": jwt.expose() }),
            UserClaim::UserId(user) => serde_json::json!({ "user_id": user }),
            UserClaim::Agent => serde_json::json!({ "agent": true }),
            UserClaim::Unnamed { reason } => serde_json::json!({ "unnamed": reason }),
            UserClaim::Unauthenticated { reason } => serde_json::json!({ "unauthenticated": reason }),
        };
        Secret::new(value.to_string())
    }

    /// [`UserClaim::to_stored`] read back; a text that is none of its forms claims nothing.
    pub(crate) fn from_stored(stored: &Secret) -> UserClaim {
        let value: serde_json::Value = serde_json::from_str(stored.expose()).unwrap_or_default();
        let text = |name: &str| value.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        if let Some(jwt) = text("jwt") {
            UserClaim::Jwt(Secret::new(jwt))
        } else if let Some(user) = text("user_id") {
            UserClaim::UserId(user)
        } else if value.get("agent").is_some() {
            UserClaim::Agent
        } else if let Some(reason) = text("unnamed") {
            UserClaim::Unnamed { reason }
        } else {
            UserClaim::Unauthenticated {
                reason: text("unauthenticated").unwrap_or_else(|| "the background turn's caller was not kept".into()),
            }
        }
    }
}

/// The claim of an event invocation: the request's `user_id`, else the agent itself.
pub(crate) fn event_claim(user_id: Option<&str>) -> UserClaim {
    match user_id.filter(|u| !u.is_empty()) {
        Some(user) => UserClaim::UserId(user.to_owned()),
        None => UserClaim::Agent,
    }
}

/// `Authorization: Bearer <token>`, when sent.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Secret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        h
    }

    fn is_unnamed(claim: &UserClaim) -> bool {
        matches!(claim, UserClaim::Unnamed { reason } if reason.contains("user_id"))
    }

    fn is_unauthenticated(claim: &UserClaim) -> bool {
        matches!(claim, UserClaim::Unauthenticated { .. })
    }

    #[test]
    fn a_stored_claim_reads_back_the_same() {
        for claim in [
            UserClaim::Jwt(Secret::new("eyJ.x.y")),
            UserClaim::UserId("u1".into()),
            UserClaim::Agent,
            UserClaim::Unnamed { reason: "r".into() },
            UserClaim::Unauthenticated { reason: "s".into() },
        ] {
            assert_eq!(UserClaim::from_stored(&claim.to_stored()), claim);
        }
        assert!(matches!(UserClaim::from_stored(&Secret::new("garbage")), UserClaim::Unauthenticated { .. }));
    }

    #[test]
    fn auto_prefers_the_bearer_jwt_then_the_body() {
        let jwt = http_claim(&UserSource::Auto, &with_auth("Bearer eyJ.x.y"), Some("u1"));
        assert_eq!(jwt, UserClaim::Jwt(Secret::new("eyJ.x.y")));
        assert_eq!(http_claim(&UserSource::Auto, &HeaderMap::new(), Some("u1")), UserClaim::UserId("u1".into()));
        assert!(is_unnamed(&http_claim(&UserSource::Auto, &HeaderMap::new(), None)));
        assert!(is_unnamed(&http_claim(&UserSource::Auto, &HeaderMap::new(), Some("  "))));
    }

    #[test]
    fn jwt_source_requires_a_bearer() {
        assert!(is_unauthenticated(&http_claim(&UserSource::Jwt, &HeaderMap::new(), Some("u1"))));
        assert!(is_unauthenticated(&http_claim(&UserSource::Jwt, &with_auth("Basic abc"), Some("u1"))));
        let ok = http_claim(&UserSource::Jwt, &with_auth("bearer  tok "), None);
        assert_eq!(ok, UserClaim::Jwt(Secret::new("tok")));
    }

    #[test]
    fn body_source_ignores_the_bearer() {
        let claim = http_claim(&UserSource::Body, &with_auth("Bearer eyJ"), Some("u1"));
        assert_eq!(claim, UserClaim::UserId("u1".into()));
    }

    #[test]
    fn header_source_reads_the_named_header() {
        let name = http::HeaderName::from_static("x-user-id");
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_static("alice"));
        let claim = http_claim(&UserSource::Header(name.clone()), &headers, Some("u1"));
        assert_eq!(claim, UserClaim::UserId("alice".into()));
        assert!(is_unauthenticated(&http_claim(&UserSource::Header(name), &HeaderMap::new(), Some("u1"))));
    }

    #[test]
    fn or_agent_replaces_only_an_unnamed_caller() {
        assert_eq!(http_claim(&UserSource::Auto, &HeaderMap::new(), None).or_agent(), UserClaim::Agent);
        let user = http_claim(&UserSource::Auto, &HeaderMap::new(), Some("u1")).or_agent();
        assert_eq!(user, UserClaim::UserId("u1".into()));
        assert!(is_unauthenticated(&http_claim(&UserSource::Jwt, &HeaderMap::new(), None).or_agent()));
    }

    #[test]
    fn events_use_the_user_id_or_the_agent() {
        assert_eq!(event_claim(Some("u1")), UserClaim::UserId("u1".into()));
        assert_eq!(event_claim(None), UserClaim::Agent);
        assert_eq!(event_claim(Some("")), UserClaim::Agent);
    }
}
