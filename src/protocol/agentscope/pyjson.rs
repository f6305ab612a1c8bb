//! JSON text the way Python's `json.dumps` writes it (`", "` / `": "` separators, non-ASCII as `\uXXXX`):
//! the AgentScope runtime puts a tool's content list into `output` with `json.dumps`, and clients that
//! compare or display that string see the same text from us.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// `value` as Python's `json.dumps(value)` would print it.
pub(crate) fn to_python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = Serializer::with_formatter(&mut out, PythonFormatter);
    match value.serialize(&mut serializer) {
        // Only ASCII is written, so the bytes are valid UTF-8.
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "[]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps() {
        // json.dumps([{"text": "2026-01-01T00:00:00Z", "type": "text"}]) (serde_json::Value sorts keys)
        assert_eq!(
            to_python_json(&json!([{"type": "text", "text": "2026-01-01T00:00:00Z"}])),
            r#"[{"text": "2026-01-01T00:00:00Z", "type": "text"}]"#
        );
        // json.dumps({"a": ["é", "😀", "q\"\n"], "b": None, "c": 1.5})
        assert_eq!(
            to_python_json(&json!({"a": ["é", "😀", "q\"\n"], "b": null, "c": 1.5})),
            r#"{"a": ["\u00e9", "\ud83d\ude00", "q\"\n"], "b": null, "c": 1.5}"#
        );
        assert_eq!(to_python_json(&json!([])), "[]");
        assert_eq!(to_python_json(&json!({})), "{}");
    }
}
