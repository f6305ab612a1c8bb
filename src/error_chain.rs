//! The one way an error and its causes are written as text, in the spirit of smithy-rs' `DisplayErrorContext`.
//!
//! Library errors keep the useful part in their sources: reqwest's Display is "error sending request for
//! url", the "connection refused" is two causes down. [`ErrorChain`] writes them all on one line. It does
//! not redact: text that may hold a secret goes through [`crate::secret::redact`] afterwards.

use std::error::Error;
use std::fmt;

/// Displays `outer: cause: cause…`. A cause whose message is empty, or already part of the message before it
/// (errors written as `"{context}: {source}"` repeat their source), is skipped.
#[derive(Clone, Copy)]
pub(crate) struct ErrorChain<'a>(pub &'a dyn Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let message = cause.to_string();
            if !message.is_empty() && !previous.contains(&message) {
                write!(f, ": {message}")?;
            }
            previous = message;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{Secret, redact};

    #[derive(Debug)]
    struct Layer {
        message: String,
        source: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|s| s as &(dyn Error + 'static))
        }
    }

    /// `messages[0]` caused by `messages[1]` caused by …
    fn chain(messages: &[&str]) -> Layer {
        let mut source = None;
        for message in messages.iter().rev() {
            source = Some(Box::new(Layer { message: (*message).to_owned(), source }));
        }
        *source.expect("at least one message")
    }

    #[test]
    fn writes_every_cause_once() {
        let error = chain(&["error sending request", "client error (Connect)", "tcp connect error", "refused"]);
        assert_eq!(
            ErrorChain(&error).to_string(),
            "error sending request: client error (Connect): tcp connect error: refused"
        );
        // "b: c" already says "c"; an empty message adds nothing.
        let error = chain(&["a", "b: c", "c", "", "d"]);
        assert_eq!(ErrorChain(&error).to_string(), "a: b: c: d");
        assert_eq!(ErrorChain(&chain(&["alone"])).to_string(), "alone");
    }

    #[test]
    fn a_secret_in_a_cause_never_shows_once_redacted() {
        let token = Secret::new("wat-SENTINEL-42");
        let error = chain(&["MCP request failed", "server said: bearer wat-SENTINEL-42 is unknown"]);
        let text = redact(&ErrorChain(&error).to_string(), &[&token]);
        assert_eq!(text, "MCP request failed: server said: bearer *** is unknown");
    }
}
