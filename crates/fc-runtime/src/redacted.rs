//! A string that never shows in `Debug` output, for the credential parts of a [`crate::Context`].

use std::fmt;

/// Holds a secret (an AccessKey secret, an STS token). `Debug` prints `***`; the value is only reachable
/// through [`Redacted::expose`], so a `{:?}` of a context in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Redacted(String);

impl Redacted {
    pub(crate) fn new(value: &str) -> Redacted {
        Redacted(value.to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
