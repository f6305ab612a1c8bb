//! ACS3-HMAC-SHA256 as the server recomputes it, written from Alibaba Cloud's specification ("Signature
//! V3", the canonical form below) and not shared with the function's signer: a verifier built on the
//! signer's code would agree with every bug in it.
//!
//! ```text
//! CanonicalRequest = METHOD \n PATH \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexSha256(body)
//! StringToSign     = "ACS3-HMAC-SHA256\n" + HexSha256(CanonicalRequest)
//! Signature        = Hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The three parts of `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// Lowercase header names joined by `;`, as the client listed them.
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// `None` unless all three parts are there and nothing else is.
pub fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let parts = value.strip_prefix(ALGORITHM)?.trim_start();
    let (mut access_key_id, mut signed_headers, mut signature) = (None, None, None);
    for part in parts.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        let slot = match name {
            "Credential" => &mut access_key_id,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return None,
        };
        *slot = Some(value);
    }
    Some(Authorization { access_key_id: access_key_id?, signed_headers: signed_headers?, signature: signature? })
}

/// What the signature covers, as the server received it.
pub struct Received<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Decoded query parameters, in any order.
    pub query: &'a [(String, String)],
    /// `(lowercase name, value)` of every signed header, in any order.
    pub signed_headers: &'a [(&'a str, &'a str)],
    pub body_sha256: &'a str,
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Signed headers sorted by name, each as `name:trimmed-value\n`; the names again, joined by `;`.
pub fn canonical_request(received: &Received<'_>) -> String {
    let mut headers: Vec<(&str, &str)> = received.signed_headers.to_vec();
    headers.sort_unstable();
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
    let signed_names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    [
        received.method,
        received.path,
        &canonical_query(received.query),
        &canonical_headers,
        &signed_names.join(";"),
        received.body_sha256,
    ]
    .join("\n")
}

pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", hex_sha256(canonical_request.as_bytes()))
}

/// Lowercase hex, as clients send it.
pub fn signature(string_to_sign: &str, access_key_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(access_key_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Sorted by name (then value), each side RFC 3986 encoded, joined by `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_unstable();
    let encoded: Vec<String> =
        sorted.iter().map(|(name, value)| format!("{}={}", rfc3986(name), rfc3986(value))).collect();
    encoded.join("&")
}

/// Unreserved `A-Za-z0-9-_.~` as they are, every other byte of the UTF-8 as `%XX` (uppercase).
pub fn rfc3986(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` (and query string) decoding: `+` is a space, `%XX` a byte; a `%`
/// not followed by two hex digits stays as it is.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Checked digit by digit: `from_str_radix` alone would take `%+1` as byte 1.
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[i], escaped) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_needs_all_three_parts_and_nothing_else() {
        let parsed = parse_authorization("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=ab");
        let expected = Authorization { access_key_id: "AK", signed_headers: "host;x-acs-date", signature: "ab" };
        assert_eq!(parsed, Some(expected));
        assert_eq!(parse_authorization("ACS3-HMAC-SHA256 Credential=AK,Signature=ab"), None);
        assert_eq!(parse_authorization("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=h,Signature=ab,X=y"), None);
        assert_eq!(parse_authorization("HMAC-SHA1 Credential=AK,SignedHeaders=h,Signature=ab"), None);
    }

    #[test]
    fn form_decode_reads_plus_and_percent_escapes() {
        // The body of vector 03: the SDK's encoding of a UserId with every character that needs escaping.
        let body =
            "UserId=%E5%BC%A0%E4%B8%89+o%27Brien%2Ba%2Ab~c%2Fd%3De%26f%25g+%F0%9F%98%80&WorkloadIdentityName=fc-agent";
        let decoded = form_decode(body);
        assert_eq!(decoded[0], ("UserId".to_owned(), "张三 o'Brien+a*b~c/d=e&f%g 😀".to_owned()));
        assert_eq!(decoded[1], ("WorkloadIdentityName".to_owned(), "fc-agent".to_owned()));
        assert_eq!(form_decode("a=%zz&b=%4"), vec![("a".into(), "%zz".into()), ("b".into(), "%4".into())]);
        // Not the byte 0x01: the `%` stays and the `+` is a space.
        assert_eq!(form_decode("c=%+1"), vec![("c".into(), "% 1".into())]);
    }

    #[test]
    fn rfc3986_keeps_only_unreserved() {
        assert_eq!(rfc3986("a-_.~Z9"), "a-_.~Z9");
        assert_eq!(rfc3986("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
    }
}
