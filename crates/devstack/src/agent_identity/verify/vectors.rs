//! The official ACS3 vectors (`tests/fixtures/vectors/acs3`, made with Alibaba Cloud's Python SDK) through this
//! crate's own verifier: every intermediate step must match the SDK's, and the whole request must pass.

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::super::acs3::{self, Received};
use super::{KnownKey, Verifier};

/// Each signed vector has `signing_sdk_exact` and most have `signing_minimal` as well; the anonymous
/// AssumeRoleForWorkloadIdentity request has neither. Fewer would mean the files were not all read.
const SIGNINGS_IN_VECTORS: usize = 15;

fn vectors_dir() -> PathBuf {
    // The project root is two levels up from this crate.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vectors/acs3")
}

fn vectors() -> Vec<(String, Value)> {
    let dir = vectors_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut vectors: Vec<(String, Value)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    vectors.sort_by(|a, b| a.0.cmp(&b.0));
    vectors
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name].as_str().unwrap_or_else(|| panic!("{name} is not a string in {value}"))
}

/// The headers of one signing: its own list when it has one (`signing_minimal`), else the request's.
fn headers_sent(request: &Value, signing: &Value) -> HeaderMap {
    let listed = if signing["headers"].is_object() { &signing["headers"] } else { &request["headers"] };
    let mut headers = HeaderMap::new();
    for (name, value) in listed.as_object().unwrap() {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap();
        headers.insert(name, HeaderValue::from_str(value.as_str().unwrap()).unwrap());
    }
    headers.insert("authorization", HeaderValue::from_str(text(signing, "authorization")).unwrap());
    headers
}

/// The query as a client would send it (the vectors give it as a map).
fn query_sent(request: &Value) -> String {
    let pairs = request["query"].as_object().map(|q| q.iter()).into_iter().flatten();
    let encoded: Vec<String> = pairs
        .map(|(name, value)| format!("{}={}", acs3::rfc3986(name), acs3::rfc3986(value.as_str().unwrap())))
        .collect();
    encoded.join("&")
}

fn key(input: &Value) -> KnownKey {
    KnownKey {
        access_key_id: text(input, "access_key_id").to_owned(),
        access_key_secret: text(input, "access_key_secret").to_owned(),
        security_token: input["security_token"].as_str().map(str::to_owned),
    }
}

#[test]
fn every_step_matches_the_sdk() {
    let mut checked = 0;
    for (file, vector) in vectors() {
        let request = &vector["request"];
        for signing in
            ["signing_sdk_exact", "signing_minimal"].map(|name| &vector[name]).into_iter().filter(|s| s.is_object())
        {
            let headers = headers_sent(request, signing);
            let authorization = acs3::parse_authorization(text(signing, "authorization")).unwrap();
            assert_eq!(authorization.signed_headers, text(signing, "signed_headers"), "{file}");
            let signed: Vec<(&str, &str)> = authorization
                .signed_headers
                .split(';')
                .map(|name| (name, headers.get(name).unwrap().to_str().unwrap()))
                .collect();
            let body_sha256 = acs3::hex_sha256(text(request, "body").as_bytes());
            assert_eq!(body_sha256, text(signing, "hashed_payload"), "{file}");
            let query = acs3::form_decode(&query_sent(request));
            assert_eq!(acs3::canonical_query(&query), text(signing, "canonical_query_string"), "{file}");
            let received = Received {
                method: text(request, "method"),
                path: text(request, "path"),
                query: &query,
                signed_headers: &signed,
                body_sha256: &body_sha256,
            };
            let canonical_request = acs3::canonical_request(&received);
            assert_eq!(canonical_request, text(signing, "canonical_request"), "{file}");
            let string_to_sign = acs3::string_to_sign(&canonical_request);
            assert_eq!(string_to_sign, text(signing, "string_to_sign"), "{file}");
            let signature = acs3::signature(&string_to_sign, text(&vector["input"], "access_key_secret"));
            assert_eq!(signature, text(signing, "signature"), "{file}");
            checked += 1;
        }
    }
    assert_eq!(checked, SIGNINGS_IN_VECTORS);
}

#[test]
fn the_verifier_accepts_every_vector_and_refuses_a_wrong_secret() {
    // The vectors were signed at fixed dates long past; the clock is not what is under test here.
    let any_skew = Duration::MAX;
    let mut checked = 0;
    for (file, vector) in vectors() {
        let request = &vector["request"];
        for signing in
            ["signing_sdk_exact", "signing_minimal"].map(|name| &vector[name]).into_iter().filter(|s| s.is_object())
        {
            let headers = headers_sent(request, signing);
            let (method, path, query, body) =
                (text(request, "method"), text(request, "path"), query_sent(request), text(request, "body").as_bytes());
            let right = [key(&vector["input"])];
            let verifier = Verifier { keys: &right, max_skew: any_skew };
            let verified = verifier.verify(method, path, &query, &headers, body, |_| false);
            assert!(verified.is_ok(), "{file}: {:?}", verified.err());

            let wrong = [KnownKey { access_key_secret: "not-the-secret".into(), ..key(&vector["input"]) }];
            let verifier = Verifier { keys: &wrong, max_skew: any_skew };
            let refused = verifier.verify(method, path, &query, &headers, body, |_| false).unwrap_err();
            assert_eq!(refused.code, "SignatureDoesNotMatch", "{file}");
            assert!(refused.message.ends_with(text(signing, "string_to_sign")), "{file}: {}", refused.message);
            checked += 1;
        }
    }
    assert_eq!(checked, SIGNINGS_IN_VECTORS);
}
