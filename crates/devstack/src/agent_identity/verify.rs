//! Server-side ACS3 checks, as Agent Identity does them: recompute the signature over the headers the
//! client listed, check the body hash, the clock skew, the nonce and the STS token.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::acs3::{self, Received};

/// A known AccessKey (with its STS token when the id starts with `STS.`).
#[derive(Debug, Clone)]
pub struct KnownKey {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: Option<String>,
}

/// A refusal: HTTP status, Code, Message (as the real service words them).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn reject(status: u16, code: &'static str, message: impl Into<String>) -> Rejection {
    Rejection { status, code, message: message.into() }
}

/// Headers a signature must cover whatever else it lists (the spec's minimum, less `content-type`, which a
/// request without a body does not send).
const ALWAYS_SIGNED: [&str; 5] =
    ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action"];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub struct Verifier<'a> {
    pub keys: &'a [KnownKey],
    pub max_skew: Duration,
}

impl Verifier<'_> {
    /// Checks one signed request; on success returns the key that signed it. `seen_nonce` records the
    /// nonce and says whether it was already used.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
        seen_nonce: impl FnOnce(&str) -> bool,
    ) -> Result<KnownKey, Rejection> {
        let authorization = header(headers, "authorization")
            .ok_or_else(|| reject(400, "MissingAuthorization", "Authorization header is required."))?;
        let authorization = acs3::parse_authorization(authorization)
            .ok_or_else(|| reject(400, "IncompleteSignature", "The Authorization header is malformed."))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.access_key_id == authorization.access_key_id)
            .ok_or_else(|| reject(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;

        let signed: HashSet<&str> = authorization.signed_headers.split(';').collect();
        let sent_acs_headers = headers.keys().map(|n| n.as_str()).filter(|n| n.starts_with("x-acs-"));
        for name in ALWAYS_SIGNED.into_iter().chain(sent_acs_headers) {
            if !signed.contains(name) {
                return Err(reject(400, "IncompleteSignature", format!("{name} must be signed.")));
            }
        }

        check_security_token(key, header(headers, "x-acs-security-token"))?;

        let body_sha256 = acs3::hex_sha256(body);
        if header(headers, "x-acs-content-sha256") != Some(body_sha256.as_str()) {
            return Err(reject(400, "InvalidContentSha256", "x-acs-content-sha256 does not match the body."));
        }

        let date = header(headers, "x-acs-date").unwrap_or_default();
        let at = humantime::parse_rfc3339(date)
            .map_err(|_| reject(400, "InvalidTimeStamp.Format", "x-acs-date must be yyyy-MM-ddTHH:mm:ssZ."))?;
        let now = SystemTime::now();
        let skew = now.duration_since(at).or_else(|_| at.duration_since(now)).unwrap_or_default();
        if skew > self.max_skew {
            return Err(reject(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
        }

        let mut signed_values = Vec::new();
        for name in authorization.signed_headers.split(';') {
            let value = header(headers, name)
                .ok_or_else(|| reject(400, "IncompleteSignature", format!("signed header {name} was not sent.")))?;
            signed_values.push((name, value));
        }
        let query = acs3::form_decode(query);
        let received =
            Received { method, path, query: &query, signed_headers: &signed_values, body_sha256: &body_sha256 };
        let string_to_sign = acs3::string_to_sign(&acs3::canonical_request(&received));
        if acs3::signature(&string_to_sign, &key.access_key_secret) != authorization.signature {
            // The real service echoes its string-to-sign; clients must not log it whole.
            return Err(reject(
                400,
                "SignatureDoesNotMatch",
                format!(
                    "The request signature does not conform to Aliyun standards. server string to sign is:{string_to_sign}"
                ),
            ));
        }

        let nonce = header(headers, "x-acs-signature-nonce").unwrap_or_default();
        if nonce.is_empty() || seen_nonce(nonce) {
            return Err(reject(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
        }
        Ok(key.clone())
    }
}

/// STS keys need their own token along; long-term keys need none.
fn check_security_token(key: &KnownKey, sent: Option<&str>) -> Result<(), Rejection> {
    if !key.access_key_id.starts_with("STS.") {
        return Ok(());
    }
    match (sent, key.security_token.as_deref()) {
        (None, _) => Err(reject(400, "MissingSecurityToken", "SecurityToken is mandatory for STS.")),
        (Some(sent), Some(known)) if sent == known => Ok(()),
        _ => Err(reject(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "The security token does not match the access key.",
        )),
    }
}

#[cfg(test)]
mod vectors;
