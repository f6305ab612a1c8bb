//! What every request-parser target asserts: a refusal is `<field path or body>: <reason>` (the field a
//! path, the reason not blank); an accepted request became at least one model message (an A2A task
//! method: none). A panic anywhere is the finding.

use fc_identity_agent::protocol::{Wire, parse_body};

pub fn check(face: Wire, body: &[u8]) {
    match parse_body(face, body) {
        Err(text) => {
            let (field, reason) = text.split_once(": ").unwrap_or_else(|| panic!("not `field: reason`: {text}"));
            assert!(!field.is_empty() && !field.contains(char::is_whitespace), "{text}");
            assert!(!reason.trim().is_empty(), "{text}");
        }
        Ok(messages) => {
            let task_method = matches!(face, Wire::A2aV03 | Wire::A2aV10) && messages == 0;
            assert!(messages > 0 || task_method, "{face:?}: accepted with no message");
        }
    }
}
