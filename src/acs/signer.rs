//! ACS3-HMAC-SHA256 (Alibaba Cloud signature V3), written out so every step can be checked against the
//! vectors the official SDK made (`tests/identity.rs` signs them byte for byte).
//!
//! ```text
//! CanonicalRequest = METHOD \n PATH \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSha256(body)
//! StringToSign     = "ACS3-HMAC-SHA256\n" + HexSha256(CanonicalRequest)
//! Signature        = Hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub(crate) const ALGORITHM: &str = "ACS3-HMAC-SHA256";
pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `A-Za-z0-9-_.~` stay as they are in both encodings below.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn percent_encode_into(out: &mut String, value: &str, space_as_plus: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// RFC 3986 encoding for canonical query values: space is `%20`.
#[cfg(test)]
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    percent_encode_into(&mut out, value, false);
    out
}

fn join_sorted(pairs: &[(&str, &str)], space_as_plus: bool) -> String {
    let mut sorted: Vec<_> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
    let mut out = String::new();
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, name, space_as_plus);
        out.push('=');
        percent_encode_into(&mut out, value, space_as_plus);
    }
    out
}

/// `application/x-www-form-urlencoded` body with keys sorted (what the SDK sends): space → `+`.
pub fn form_body(params: &[(&str, &str)]) -> String {
    join_sorted(params, true)
}

/// Canonical query string (also the query we send): keys sorted, RFC 3986 encoded.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    join_sorted(params, false)
}

/// The headers to sign and send for one RPC call with a form body: `host`, `content-type` and every
/// `x-acs-*` (the security token only with STS credentials). Matches the vectors' `signing_minimal`.
pub struct RpcHeaders<'a> {
    pub host: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    pub date: &'a str,
    pub nonce: &'a str,
    pub body_sha256: &'a str,
    pub security_token: Option<&'a str>,
}

impl RpcHeaders<'_> {
    pub fn to_vec(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("host", self.host.to_owned()),
            ("x-acs-version", self.version.to_owned()),
            ("x-acs-action", self.action.to_owned()),
            ("x-acs-date", self.date.to_owned()),
            ("x-acs-signature-nonce", self.nonce.to_owned()),
            ("content-type", FORM_CONTENT_TYPE.to_owned()),
            ("x-acs-content-sha256", self.body_sha256.to_owned()),
        ];
        if let Some(token) = self.security_token {
            headers.push(("x-acs-security-token", token.to_owned()));
        }
        headers
    }
}

/// Every intermediate of one signature, so tests can compare each against the vectors.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    pub canonical_headers: String,
    pub signed_headers: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

// The canonical request embeds the security token, so it must not reach logs via Debug.
impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signature").field("signed_headers", &self.signed_headers).finish_non_exhaustive()
    }
}

/// One request to sign. `headers` are all the headers to sign (any case, any order); `query` is already
/// the canonical query string; `body_sha256` the lowercase hex digest of the exact body bytes.
pub struct SigningInput<'a, H: AsRef<str>, V: AsRef<str>> {
    pub method: &'a str,
    pub path: &'a str,
    pub canonical_query: &'a str,
    pub headers: &'a [(H, V)],
    pub body_sha256: &'a str,
}

/// Builds `(canonical_headers, signed_headers)` from headers: lowercase names, sorted, values trimmed.
pub(crate) fn canonical_headers<H: AsRef<str>, V: AsRef<str>>(headers: &[(H, V)]) -> (String, String) {
    let mut lowered: Vec<(String, &str)> =
        headers.iter().map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.as_ref().trim())).collect();
    lowered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical = String::new();
    let mut signed = String::new();
    for (i, (name, value)) in lowered.iter().enumerate() {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
        if i > 0 {
            signed.push(';');
        }
        signed.push_str(name);
    }
    (canonical, signed)
}

pub(crate) fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch is unreachable but must not panic.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

pub fn sign<H: AsRef<str>, V: AsRef<str>>(
    input: &SigningInput<'_, H, V>,
    access_key_id: &str,
    access_key_secret: &str,
) -> Signature {
    let (canonical_headers, signed_headers) = canonical_headers(input.headers);
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method, input.path, input.canonical_query, canonical_headers, signed_headers, input.body_sha256
    );
    let string_to_sign = format!("{ALGORITHM}\n{}", hex_sha256(canonical_request.as_bytes()));
    let signature = hmac_sha256_hex(access_key_secret.as_bytes(), string_to_sign.as_bytes());
    let authorization =
        format!("{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}");
    Signature { canonical_headers, signed_headers, canonical_request, string_to_sign, signature, authorization }
}

/// Splits an `Authorization` value into `(access_key_id, signed_headers, signature)`; None if malformed.
#[cfg(test)]
pub(crate) fn parse_authorization(value: &str) -> Option<(&str, &str, &str)> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => signature = Some(val),
            _ => return None,
        }
    }
    Some((credential?, signed?, signature?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_python_urlencode() {
        let body = form_body(&[("WorkloadIdentityName", "fc-agent"), ("UserId", "张三 o'Brien+a*b~c/d=e&f%g 😀")]);
        assert_eq!(
            body,
            "UserId=%E5%BC%A0%E4%B8%89+o%27Brien%2Ba%2Ab~c%2Fd%3De%26f%25g+%F0%9F%98%80&WorkloadIdentityName=fc-agent"
        );
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
    }

    #[test]
    fn authorization_round_trips() {
        let auth = "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=ab12";
        assert_eq!(parse_authorization(auth), Some(("AK", "host;x-acs-date", "ab12")));
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("ACS3-HMAC-SHA256 Credential=AK"), None);
    }
}
