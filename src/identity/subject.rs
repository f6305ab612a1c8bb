//! Who a WorkloadAccessToken is for.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::Secret;

/// The end user of an invocation, as the app determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The caller's IdP token; Agent Identity verifies it (GetWorkloadAccessTokenForJWT).
    Jwt(Secret),
    /// A user id the caller asserts (GetWorkloadAccessTokenForUserId).
    UserId(String),
    /// No user: the agent itself (GetWorkloadAccessToken).
    Agent,
}

/// Where the end user's identity comes from on HTTP invocations (`AGENT_IDENTITY_USER_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSource {
    /// Bearer JWT if present, else body `user_id`.
    Auto,
    /// A bearer JWT is required.
    Jwt,
    /// Body `user_id` (falling back to `session_id`).
    Body,
    /// A header set by the trigger (lowercase name), e.g. a JWT claim FC forwards.
    Header(http::HeaderName),
}

/// The `sub` claim of a JWT, read without verifying anything: only trust it once Agent Identity has accepted
/// the token (session memory keys by it after a GetWorkloadAccessTokenForJWT succeeded). None when absent.
pub(crate) fn jwt_subject(jwt: &str) -> Option<String> {
    let claims = jwt_claims(jwt)?;
    claims.get("sub")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim of a JWT, read without verifying anything (Agent Identity verifies; we only need to
/// not cache a WAT past the token it was minted from). None when absent or unreadable.
pub fn jwt_expiry(jwt: &str) -> Option<SystemTime> {
    let claims = jwt_claims(jwt)?;
    let exp = claims.get("exp")?.as_f64()?;
    if !(exp.is_finite() && exp >= 0.0) {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(exp.min(1e11)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_exp_without_verifying() {
        let exp = jwt_expiry(&jwt(r#"{"sub":"u","exp":1764577800}"#)).unwrap();
        assert_eq!(exp, SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_577_800));
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"u"}"#)), None);
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":-5}"#)), None);
        assert_eq!(jwt_subject(&jwt(r#"{"sub":"alice","exp":1}"#)).as_deref(), Some("alice"));
        assert_eq!(jwt_subject(&jwt(r#"{"sub":""}"#)), None);
    }
}
