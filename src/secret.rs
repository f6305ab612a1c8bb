//! A string that must never reach a log line or an error body, and the one rule for text that might hold one.
//!
//! Upstream text (an error message a server sent, a library's error chain) is put into our errors only
//! through [`redact`]: every secret the caller knows about is replaced by `***` and the text is cut to
//! [`MAX_UPSTREAM_TEXT_CHARS`]. URLs are shown only through [`redact_url`].

use std::fmt;

use reqwest::Url;

/// The longest upstream text [`redact`] keeps, in characters. Long enough for a server's message plus a
/// transport error chain (hyper/rustls causes run to ~200 characters); short enough that an HTML error page
/// or a dumped request cannot flood a log line or a turn's failure event.
pub(crate) const MAX_UPSTREAM_TEXT_CHARS: usize = 512;

/// What a removed secret is replaced by (the same as `Secret`'s `Debug`/`Display`).
const MASK: &str = "***";

/// Holds a credential (AccessKey secret, STS token, WorkloadAccessToken, API key, end-user JWT).
/// `Debug` and `Display` print `***`; the value is only reachable through [`Secret::expose`], so every
/// place that sends it upstream is greppable.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one header or form field that carries it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// Makes upstream text safe to keep in an error: trims it, replaces every occurrence of each non-empty secret
/// in `secrets` with `***`, then cuts it to [`MAX_UPSTREAM_TEXT_CHARS`] (marked with `…`).
///
/// Longer secrets are replaced first, so one that contains another (a token embedding a key) leaves no
/// tail behind; and the cut comes after the replacement, so it can never leave a secret's prefix behind.
pub(crate) fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().map(|s| s.expose()).filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.trim().to_owned();
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, MASK);
        }
    }
    match text.char_indices().nth(MAX_UPSTREAM_TEXT_CHARS) {
        Some((cut, _)) => {
            text.truncate(cut);
            text.push('…');
            text
        }
        None => text,
    }
}

/// A URL as errors, logs and `Debug` may show it: scheme, host, port and path only, since gateways put keys in
/// query strings and userinfo (and a fragment has no business in a log line either).
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot carry credentials in the first place.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-sentinel-123");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "sk-sentinel-123");
    }

    #[test]
    fn redact_removes_every_secret_then_cuts() {
        let (key, token) = (Secret::new("sk-sentinel"), Secret::new("tok-sk-sentinel-2"));
        assert_eq!(
            redact("  bad key sk-sentinel, token tok-sk-sentinel-2 \n", &[&key, &token]),
            "bad key ***, token ***"
        );
        // An empty secret would otherwise match everywhere.
        assert_eq!(redact("as is", &[&Secret::default()]), "as is");
        let long = redact(&format!("{}sk-sentinel", "a".repeat(MAX_UPSTREAM_TEXT_CHARS - 2)), &[&key]);
        assert_eq!(long.chars().count(), MAX_UPSTREAM_TEXT_CHARS + 1);
        assert!(long.ends_with("a**…") && !long.contains("sk-"), "{long}");
        assert_eq!(redact(&"é".repeat(600), &[]).chars().count(), MAX_UPSTREAM_TEXT_CHARS + 1);
    }

    #[test]
    fn redact_url_drops_query_userinfo_and_fragment() {
        let url = Url::parse("https://user:pw@gw.example.com:8443/mcp-servers/time?key=SECRET#frag").unwrap();
        assert_eq!(redact_url(&url), "https://gw.example.com:8443/mcp-servers/time");
    }
}
