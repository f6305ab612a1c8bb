//! Server-side ACS3 checks, as Agent Identity does them: recompute the signature over the headers the
//! client listed, check the body hash, the clock skew, the nonce and the STS token.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::acs::signer::{self, SigningInput};

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

/// `application/x-www-form-urlencoded` (and query string) decoding: `+` is a space, `%XX` a byte.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
        let (ak_id, signed_headers, signature) = signer::parse_authorization(authorization)
            .ok_or_else(|| reject(400, "IncompleteSignature", "The Authorization header is malformed."))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.access_key_id == ak_id)
            .ok_or_else(|| reject(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;

        let signed: HashSet<&str> = signed_headers.split(';').collect();
        for required in ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action"] {
            if !signed.contains(required) {
                return Err(reject(400, "IncompleteSignature", format!("{required} must be signed.")));
            }
        }
        for name in headers.keys().map(|n| n.as_str()).filter(|n| n.starts_with("x-acs-")) {
            if !signed.contains(name) {
                return Err(reject(400, "IncompleteSignature", format!("{name} must be signed.")));
            }
        }

        let sent_token = header(headers, "x-acs-security-token");
        if ak_id.starts_with("STS.") {
            match (sent_token, key.security_token.as_deref()) {
                (None, _) => {
                    return Err(reject(400, "MissingSecurityToken", "SecurityToken is mandatory for STS."));
                }
                (Some(sent), Some(known)) if sent == known => {}
                _ => {
                    return Err(reject(
                        400,
                        "InvalidSecurityToken.MismatchWithAccessKey",
                        "The security token does not match the access key.",
                    ));
                }
            }
        }

        let body_sha256 = signer::hex_sha256(body);
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
        for name in signed_headers.split(';') {
            let value = header(headers, name)
                .ok_or_else(|| reject(400, "IncompleteSignature", format!("signed header {name} was not sent.")))?;
            signed_values.push((name, value));
        }
        let query_pairs = form_decode(query);
        let query_refs: Vec<(&str, &str)> = query_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let canonical_query = signer::canonical_query(&query_refs);
        let input = SigningInput {
            method,
            path,
            canonical_query: &canonical_query,
            headers: &signed_values,
            body_sha256: &body_sha256,
        };
        let expected = signer::sign(&input, &key.access_key_id, &key.access_key_secret);
        if expected.signature != signature {
            // The real service echoes its string-to-sign; clients must not log it whole.
            return Err(reject(
                400,
                "SignatureDoesNotMatch",
                format!(
                    "The request signature does not conform to Aliyun standards. server string to sign is:{}",
                    expected.string_to_sign
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decode_inverts_form_body() {
        let params = [("UserId", "张三 o'Brien+a*b~c/d=e&f%g 😀"), ("W", "x")];
        let body = signer::form_body(&params);
        let decoded = form_decode(&body);
        assert_eq!(decoded[0], ("UserId".to_string(), params[0].1.to_string()));
        assert_eq!(form_decode("a=%zz&b=%4"), vec![("a".into(), "%zz".into()), ("b".into(), "%4".into())]);
    }
}
