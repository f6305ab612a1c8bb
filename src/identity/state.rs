//! The OAuth2 `CustomState`: a token this function seals when it starts a consent and opens when the
//! browser comes back to `GET /oauth2/callback` — on whichever instance that lands, so the check needs
//! nothing but the key (`OAUTH2_STATE_KEY`, the same on every instance).
//!
//! `v2.<base64url(nonce ‖ ChaCha20-Poly1305(claims JSON))>`, the AEAD key being SHA-256 of a label and
//! `OAUTH2_STATE_KEY` (ring, already in the tree for rustls). Sealed, not just signed: the claims name the
//! user `CompleteResourceTokenAuth` must be told — a user id, or for a JWT user the JWT itself (the API
//! wants `{"UserJWT": …}`, and a browser following a redirect carries no bearer) — besides the provider,
//! an expiry (unix seconds) and a random nonce (what a replay is recognised by). A state that does not open
//! was forged, altered or sealed with another key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::unix_now;
use crate::secret::Secret;

const VERSION: &str = "v2";
/// Bound to every sealed state (another use of the same key cannot produce one).
const AAD: &[u8] = b"fc-identity-agent oauth2 state v2";
/// The longest state accepted (a JWT user's is ~1.5 KB): a bound before any decoding.
pub(crate) const MAX_STATE_CHARS: usize = 8192;
/// Shortest `OAUTH2_STATE_KEY` accepted (bytes).
pub const MIN_STATE_KEY_BYTES: usize = 32;

/// Who a consent is for: what `CompleteResourceTokenAuth` is told (`UserIdentifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsentUser {
    /// `{"UserId": …}`: the WAT came from GetWorkloadAccessTokenForUserId.
    UserId(String),
    /// `{"UserJWT": …}`: the WAT came from this JWT (GetWorkloadAccessTokenForJWT), sealed for the plain
    /// `GET /oauth2/callback`, which carries no bearer.
    Jwt(Secret),
    /// A JWT user whose consent is bound to them (`AGENT_IDENTITY_USER_SOURCE=jwt`): only the JWT's `sub`
    /// is sealed; the user brings their JWT back to `POST /oauth2/complete`, whose subject must be this one.
    Subject(String),
}

impl ConsentUser {
    /// The `UserIdentifier` JSON (a secret: it may hold the JWT). None for [`ConsentUser::Subject`]: only
    /// the user's own JWT, presented at completion, identifies them.
    pub(crate) fn identifier(&self) -> Option<Secret> {
        let json = match self {
            ConsentUser::UserId(user) => serde_json::json!({ "UserId": user }),
            ConsentUser::Jwt(jwt) => serde_json::json!({ "UserJWT": jwt.expose() }),
            ConsentUser::Subject(_) => return None,
        };
        Some(Secret::new(json.to_string()))
    }
}

/// The `UserIdentifier` of a user who presented their own JWT.
pub(crate) fn jwt_identifier(jwt: &Secret) -> Secret {
    Secret::new(serde_json::json!({ "UserJWT": jwt.expose() }).to_string())
}

/// What a state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsentClaims {
    pub(crate) user: ConsentUser,
    pub(crate) provider: String,
    /// Unix seconds.
    pub(crate) expires: u64,
    pub(crate) nonce: String,
}

/// The sealed JSON (short keys: the state travels in URLs).
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "i", skip_serializing_if = "Option::is_none", default)]
    user_id: Option<String>,
    #[serde(rename = "j", skip_serializing_if = "Option::is_none", default)]
    jwt: Option<String>,
    #[serde(rename = "s", skip_serializing_if = "Option::is_none", default)]
    subject: Option<String>,
    #[serde(rename = "p")]
    provider: String,
    #[serde(rename = "e")]
    expires: u64,
    #[serde(rename = "n")]
    nonce: String,
}

/// Why a state was refused. None of these echo the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    #[error("the state is not one this function issued (malformed)")]
    Malformed,
    #[error("the state does not open with this function's key (forged, altered, or another OAUTH2_STATE_KEY)")]
    BadSeal,
    #[error("the state expired; start the turn again to get a new authorization link")]
    Expired,
    #[error("no randomness for the state's nonce")]
    Random,
}

/// Seals and opens states with `OAUTH2_STATE_KEY`.
#[derive(Clone)]
pub(crate) struct StateKey {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(***)")
    }
}

impl StateKey {
    pub(crate) fn new(key: &Secret) -> Self {
        let mut derived = Sha256::new();
        derived.update(b"fc-identity-agent/oauth2-state\0");
        derived.update(key.expose().as_bytes());
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &derived.finalize()).expect("a 32-byte ChaCha20 key");
        StateKey { key: Arc::new(LessSafeKey::new(unbound)) }
    }

    /// A state for `user` and `provider`, valid for `lifetime` from now.
    pub(crate) fn issue(&self, user: ConsentUser, provider: &str, lifetime: Duration) -> Result<Secret, StateError> {
        let rng = SystemRandom::new();
        let mut nonce_id = [0u8; 16];
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce_id).map_err(|_| StateError::Random)?;
        rng.fill(&mut nonce).map_err(|_| StateError::Random)?;
        let (user_id, jwt, subject) = match user {
            ConsentUser::UserId(user) => (Some(user), None, None),
            ConsentUser::Jwt(jwt) => (None, Some(jwt.expose().to_owned()), None),
            ConsentUser::Subject(subject) => (None, None, Some(subject)),
        };
        let wire = Wire {
            user_id,
            jwt,
            subject,
            provider: provider.to_owned(),
            expires: unix_now().saturating_add(lifetime.as_secs().max(1)),
            nonce: URL_SAFE_NO_PAD.encode(nonce_id),
        };
        let mut sealed = serde_json::to_vec(&wire).map_err(|_| StateError::Malformed)?;
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut sealed)
            .map_err(|_| StateError::Malformed)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(Secret::new(format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// The claims of a state this key sealed and that has not expired.
    pub(crate) fn open(&self, state: &str) -> Result<ConsentClaims, StateError> {
        if state.len() > MAX_STATE_CHARS {
            return Err(StateError::Malformed);
        }
        let body = state.strip_prefix(VERSION).and_then(|rest| rest.strip_prefix('.')).ok_or(StateError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| StateError::Malformed)?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(StateError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StateError::Malformed)?;
        let mut sealed = sealed.to_vec();
        let json = self.key.open_in_place(nonce, Aad::from(AAD), &mut sealed).map_err(|_| StateError::BadSeal)?;
        let wire: Wire = serde_json::from_slice(json).map_err(|_| StateError::Malformed)?;
        let user = match (wire.user_id, wire.jwt, wire.subject) {
            (Some(user), None, None) => ConsentUser::UserId(user),
            (None, Some(jwt), None) => ConsentUser::Jwt(Secret::new(jwt)),
            (None, None, Some(subject)) => ConsentUser::Subject(subject),
            _ => return Err(StateError::Malformed),
        };
        if wire.expires <= unix_now() {
            return Err(StateError::Expired);
        }
        Ok(ConsentClaims { user, provider: wire.provider, expires: wire.expires, nonce: wire.nonce })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> StateKey {
        StateKey::new(&Secret::new(k))
    }

    const KEY: &str = "a-state-key-of-at-least-thirty-two-bytes";

    #[test]
    fn a_state_round_trips_and_carries_its_claims_sealed() {
        let k = key(KEY);
        let state = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60)).unwrap();
        let claims = k.open(state.expose()).unwrap();
        assert_eq!((claims.user, claims.provider.as_str()), (ConsentUser::UserId("u1".into()), "calendar"));
        let jwt = Secret::new("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYXJvbCJ9.SENTINEL-SIG");
        let sealed = k.issue(ConsentUser::Jwt(jwt.clone()), "calendar", Duration::from_secs(60)).unwrap();
        assert!(!sealed.expose().contains("SENTINEL") && !sealed.expose().contains("eyJ"), "the JWT is sealed");
        let claims = k.open(sealed.expose()).unwrap();
        assert_eq!(claims.user, ConsentUser::Jwt(jwt));
        assert!(!format!("{claims:?}").contains("SENTINEL"), "{claims:?}");
        let bound = k.issue(ConsentUser::Subject("carol".into()), "calendar", Duration::from_secs(60)).unwrap();
        assert!(!bound.expose().contains("carol"), "the subject is sealed too");
        let claims = k.open(bound.expose()).unwrap();
        assert_eq!((claims.user.identifier(), claims.user), (None, ConsentUser::Subject("carol".into())));
        let again = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60)).unwrap();
        assert_ne!(k.open(again.expose()).unwrap().nonce, k.open(state.expose()).unwrap().nonce);
    }

    #[test]
    fn forged_altered_foreign_and_malformed_states_are_refused() {
        let k = key(KEY);
        let state = k.issue(ConsentUser::UserId("u1".into()), "calendar", Duration::from_secs(60)).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&state.expose()[3..]).unwrap();
        let last = bytes.len() - 20;
        bytes[last] ^= 1;
        assert_eq!(k.open(&format!("v2.{}", URL_SAFE_NO_PAD.encode(&bytes))), Err(StateError::BadSeal));
        assert_eq!(key("another-key-another-key-another-key").open(state.expose()), Err(StateError::BadSeal));
        let plain = URL_SAFE_NO_PAD.encode(br#"{"i":"mallory","p":"calendar","e":99999999999,"n":"x"}"#);
        assert!(k.open(&format!("v2.{plain}")).is_err());
        for malformed in ["", "v2", "v2.", "v1.abc", "v2.%%%", "v2.AAAA", &"v".repeat(MAX_STATE_CHARS + 1)] {
            assert!(k.open(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn an_expired_state_is_refused() {
        let k = key(KEY);
        let wire = Wire {
            user_id: Some("u1".into()),
            jwt: None,
            subject: None,
            provider: "p".into(),
            expires: 1,
            nonce: "n".into(),
        };
        let mut sealed = serde_json::to_vec(&wire).unwrap();
        let nonce = [7u8; NONCE_LEN];
        k.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut sealed).unwrap();
        let state = format!("v2.{}", URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()));
        assert_eq!(k.open(&state), Err(StateError::Expired));
    }

    #[test]
    fn the_user_identifier_is_the_apis_json() {
        assert_eq!(ConsentUser::UserId("u\"1".into()).identifier().unwrap().expose(), r#"{"UserId":"u\"1"}"#);
        assert_eq!(ConsentUser::Jwt(Secret::new("a.b.c")).identifier().unwrap().expose(), r#"{"UserJWT":"a.b.c"}"#);
    }
}
