//! The OAuth2 `CustomState`: a token this function signs when it starts a consent and checks when the
//! browser comes back to `GET /oauth2/callback` — on whichever instance that lands, so the check needs
//! nothing but the key (`OAUTH2_STATE_KEY`, the same on every instance).
//!
//! `v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "v1." + claims part))>`. The claims bind the
//! user the consent is for, the provider, an expiry (unix seconds) and a random nonce (what a replay is
//! recognised by). The claims are signed, not encrypted: they hold a user id (which the caller sent in the
//! clear anyway) or, for a JWT user, only a hash of the JWT's issuer and subject — never a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::subject::jwt_issuer_and_subject;
use crate::secret::Secret;

const VERSION: &str = "v1";
/// The longest state accepted (a real one is ~250 characters): a bound before any decoding.
const MAX_STATE_CHARS: usize = 2048;
/// Shortest `OAUTH2_STATE_KEY` accepted (bytes): an HMAC key shorter than its output is weak.
pub const MIN_STATE_KEY_BYTES: usize = 32;

/// Who a consent is for: what `CompleteResourceTokenAuth` will be told (`UserIdentifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", content = "v")]
pub(crate) enum ConsentUser {
    /// `{"UserId": …}`: the WAT came from GetWorkloadAccessTokenForUserId.
    #[serde(rename = "id")]
    UserId(String),
    /// `{"UserJWT": …}`: the WAT came from a JWT; the callback must present a JWT of this identity
    /// (hex SHA-256 of `iss` + newline + `sub`).
    #[serde(rename = "jwt")]
    Jwt(String),
}

impl ConsentUser {
    /// The identity of a JWT: a hash of its issuer and subject (read unverified; Agent Identity verifies
    /// the JWT the callback presents).
    pub(crate) fn of_jwt(jwt: &str) -> Option<ConsentUser> {
        let (issuer, subject) = jwt_issuer_and_subject(jwt)?;
        Some(ConsentUser::Jwt(hex::encode(Sha256::digest(format!("{issuer}\n{subject}").as_bytes()))))
    }
}

/// What a state token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConsentClaims {
    #[serde(rename = "u")]
    pub(crate) user: ConsentUser,
    #[serde(rename = "p")]
    pub(crate) provider: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub(crate) expires: u64,
    #[serde(rename = "n")]
    pub(crate) nonce: String,
}

/// Why a state was refused. None of these echo the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    #[error("the state is not one this function issued (malformed)")]
    Malformed,
    #[error("the state's signature does not match (forged, or signed with another OAUTH2_STATE_KEY)")]
    BadSignature,
    #[error("the state expired; start the turn again to get a new authorization link")]
    Expired,
}

/// Signs and checks states with `OAUTH2_STATE_KEY`.
#[derive(Clone)]
pub(crate) struct StateKey(Secret);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(***)")
    }
}

impl StateKey {
    pub(crate) fn new(key: Secret) -> Self {
        StateKey(key)
    }

    /// A state for `user` and `provider`, valid for `lifetime` from now.
    pub(crate) fn issue(&self, user: ConsentUser, provider: &str, lifetime: Duration) -> Secret {
        let claims = ConsentClaims {
            user,
            provider: provider.to_owned(),
            expires: unix_now().saturating_add(lifetime.as_secs().max(1)),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        };
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&signed));
        Secret::new(format!("{signed}.{mac}"))
    }

    /// The claims of a state this key signed and that has not expired.
    pub(crate) fn verify(&self, state: &str) -> Result<ConsentClaims, StateError> {
        if state.len() > MAX_STATE_CHARS {
            return Err(StateError::Malformed);
        }
        let (signed, mac) = state.rsplit_once('.').ok_or(StateError::Malformed)?;
        let (version, claims) = signed.split_once('.').ok_or(StateError::Malformed)?;
        if version != VERSION {
            return Err(StateError::Malformed);
        }
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| StateError::Malformed)?;
        let mut check = self.hmac();
        check.update(signed.as_bytes());
        // Constant-time comparison (hmac's verify).
        check.verify_slice(&mac).map_err(|_| StateError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(claims).map_err(|_| StateError::Malformed)?;
        let claims: ConsentClaims = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
        if claims.expires <= unix_now() {
            return Err(StateError::Expired);
        }
        Ok(claims)
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes()).expect("HMAC accepts any key length")
    }

    fn mac(&self, signed: &str) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> StateKey {
        StateKey::new(Secret::new(k))
    }

    #[test]
    fn a_state_round_trips_and_binds_its_claims() {
        let k = key("a-state-key-of-at-least-thirty-two-bytes");
        let state = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60));
        let claims = k.verify(state.expose()).unwrap();
        assert_eq!(claims.user, ConsentUser::UserId("u1".into()));
        assert_eq!(claims.provider, "calendar");
        let other = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60));
        assert_ne!(k.verify(other.expose()).unwrap().nonce, claims.nonce, "every state has its own nonce");
    }

    #[test]
    fn forged_tampered_foreign_and_expired_states_are_refused() {
        let k = key("a-state-key-of-at-least-thirty-two-bytes");
        let state = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60));
        let (signed, mac) = state.expose().rsplit_once('.').unwrap();
        // Someone else's claims under our signature.
        let forged_claims =
            URL_SAFE_NO_PAD.encode(br#"{"u":{"k":"id","v":"mallory"},"p":"calendar","e":99999999999,"n":"x"}"#);
        assert_eq!(k.verify(&format!("v1.{forged_claims}.{mac}")), Err(StateError::BadSignature));
        assert_eq!(key("another-key-another-key-another-key").verify(state.expose()), Err(StateError::BadSignature));
        assert_eq!(k.verify(&format!("{signed}.")), Err(StateError::BadSignature));
        for malformed in ["", "v1", "v1.x", "v2.a.b", "v1.%%%.abc", &"v".repeat(MAX_STATE_CHARS + 1)] {
            assert!(k.verify(malformed).is_err(), "{malformed}");
        }
        // Signed correctly but past its expiry.
        let claims = ConsentClaims {
            user: ConsentUser::UserId("u1".into()),
            provider: "calendar".into(),
            expires: unix_now() - 1,
            nonce: "n".into(),
        };
        let signed = format!("v1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()));
        let expired = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(k.mac(&signed)));
        assert_eq!(k.verify(&expired), Err(StateError::Expired));
    }

    #[test]
    fn a_jwt_user_is_bound_by_a_hash_of_issuer_and_subject() {
        let b64 = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let jwt =
            |sub: &str| format!("{}.{}.sig", b64("{}"), b64(&format!(r#"{{"iss":"https://idp","sub":"{sub}"}}"#)));
        let alice = ConsentUser::of_jwt(&jwt("alice")).unwrap();
        assert_eq!(alice, ConsentUser::of_jwt(&jwt("alice")).unwrap());
        assert_ne!(alice, ConsentUser::of_jwt(&jwt("bob")).unwrap());
        let ConsentUser::Jwt(hash) = &alice else { panic!() };
        assert!(!hash.contains("alice") && hash.len() == 64);
        assert_eq!(ConsentUser::of_jwt("not-a-jwt"), None);
    }
}
