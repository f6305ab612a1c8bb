//! Response ids that name their session: `resp_<32 hex><session id in base64url, unpadded>`.
//!
//! `previous_response_id` must lead to the session the response was issued in. An id that names it lets
//! the store read the session and check its response index in one round trip (both keys are known at
//! once), where a bare random id would need a lookup first and a second read after — three store round
//! trips a turn instead of two. The id carries nothing secret: the session id is the client's own
//! `conversation`, or one the function made up for a request that named none. What proves that the id was
//! issued (and to whom, and not too long ago) is the store's response index, keyed by the verified user;
//! an id made up by a client names no entry there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::sessions::{MAX_SESSION_ID_CHARS, check_session_id};

const PREFIX: &str = "resp_";
/// The random part: a v4 uuid's 32 lowercase hex digits, as every other id of the face.
const RANDOM_HEX: usize = 32;
/// Longest id this function makes: the prefix, the random part and the longest session id encoded (four
/// characters per three bytes of UTF-8, up to four bytes a character). Longer is not ours.
const MAX_RESPONSE_ID_CHARS: usize = PREFIX.len() + RANDOM_HEX + (MAX_SESSION_ID_CHARS * 4).div_ceil(3) * 4;

/// A fresh response id for a turn in `session_id`.
pub(crate) fn issue(session_id: &str) -> String {
    let mut id = String::with_capacity(PREFIX.len() + RANDOM_HEX + session_id.len() * 4 / 3 + 4);
    id.push_str(PREFIX);
    id.push_str(crate::ids::uuid().simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
    URL_SAFE_NO_PAD.encode_string(session_id, &mut id);
    id
}

/// The session a response id of ours names; `None` for any other string (then no response is found).
pub(crate) fn session_of(response_id: &str) -> Option<String> {
    if response_id.len() > MAX_RESPONSE_ID_CHARS {
        return None;
    }
    let rest = response_id.strip_prefix(PREFIX)?;
    let (random, session) = (rest.get(..RANDOM_HEX)?, rest.get(RANDOM_HEX..)?);
    if !random.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) || session.is_empty() {
        return None;
    }
    let session = String::from_utf8(URL_SAFE_NO_PAD.decode(session).ok()?).ok()?;
    check_session_id(&session).ok()?;
    Some(session)
}

/// A session id for a request that names none: OpenAI keeps every response (`store` defaults to true),
/// so `previous_response_id` can continue any of them.
pub(crate) fn new_session_id() -> String {
    format!("responses-{}", crate::ids::uuid().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_session_and_nothing_else_passes() {
        for session in
            ["conv-1", "日本語 チャット", &"x".repeat(MAX_SESSION_ID_CHARS), &"語".repeat(MAX_SESSION_ID_CHARS)]
        {
            let id = issue(session);
            assert!(id.starts_with("resp_") && id.len() <= MAX_RESPONSE_ID_CHARS, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
            assert_eq!(session_of(&id).as_deref(), Some(session));
        }
        assert_ne!(issue("s"), issue("s"), "ids are unique");
        let made_up = [
            "resp_1",
            "",
            "resp_",
            "msg_0123456789abcdef0123456789abcdefczE",
            "resp_0123456789ABCDEF0123456789abcdefczE",
        ];
        for id in made_up {
            assert_eq!(session_of(id), None, "{id}");
        }
        // A session id the store could not take (a `:`) is not one.
        let colon = format!("resp_{}{}", "0".repeat(32), URL_SAFE_NO_PAD.encode("a:b"));
        assert_eq!(session_of(&colon), None);
        assert!(check_session_id(&new_session_id()).is_ok());
    }
}
