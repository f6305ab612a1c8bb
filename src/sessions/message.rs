//! A session as the AgentScope runtime stores it (docs/sessions.md): the `Session` JSON
//! `{"id","user_id","messages":[…]}` whose messages are runtime `Message`s with their keys in the runtime's
//! order. A Python AgentScope app pointed at the same Redis reads what we write, and we read what it wrote
//! (every field but `id` may be missing or null on the way in).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) user_id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub(crate) messages: Vec<StoredMessage>,
}

/// One runtime `Message`. Key order is the runtime's: `sequence_number, object, status, error, id, type,
/// role, content, code, message, usage, metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredMessage {
    #[serde(default)]
    pub(crate) sequence_number: Option<u64>,
    #[serde(default = "message_object")]
    pub(crate) object: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
    pub(crate) id: String,
    #[serde(rename = "type", default = "message_type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) role: Option<String>,
    #[serde(default)]
    pub(crate) content: Option<Vec<StoredContent>>,
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) usage: Option<Value>,
    #[serde(default)]
    pub(crate) metadata: Option<Value>,
}

/// One content item: `sequence_number, object, status, error, type, index, delta, msg_id`, then `text` or
/// `data` (the only kinds a conversation needs; other kinds are kept as a text note by the face).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredContent {
    #[serde(default)]
    pub(crate) sequence_number: Option<u64>,
    #[serde(default = "content_object")]
    pub(crate) object: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) index: Option<u64>,
    #[serde(default)]
    pub(crate) delta: Option<bool>,
    #[serde(default)]
    pub(crate) msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Map<String, Value>>,
}

fn message_object() -> String {
    "message".to_owned()
}

fn message_type() -> String {
    "message".to_owned()
}

fn content_object() -> String {
    "content".to_owned()
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<StoredMessage>, D::Error> {
    Ok(Option::<Vec<StoredMessage>>::deserialize(d)?.unwrap_or_default())
}

impl StoredMessage {
    /// The content items, none when `content` is null.
    pub(crate) fn items(&self) -> &[StoredContent] {
        self.content.as_deref().unwrap_or_default()
    }
}

/// A fresh message id in the runtime's form, written in place (no formatting machinery: a turn makes a
/// dozen).
pub(crate) fn new_message_id() -> String {
    let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let mut id = String::with_capacity(4 + buffer.len());
    id.push_str("msg_");
    id.push_str(crate::ids::uuid().hyphenated().encode_lower(&mut buffer));
    id
}

/// A message as a store takes it: its `id`, by which appends skip what is stored, and its runtime
/// `Message` JSON, written once by [`Record::completed`] and kept or sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) json: String,
}

/// One content item of a new message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    Text(&'a str),
    /// A `data` item of string fields, written in the order given. Ours are given sorted by key, as
    /// `serde_json` writes a parsed map, so a record reads back and writes again byte for byte.
    Fields(&'a [(&'a str, &'a str)]),
    /// A client's `data` item, as it sent it.
    Data(&'a Map<String, Value>),
}

/// Fixed text of a record: keys, nulls and punctuation, about what it costs beyond its values.
const RECORD_FRAME: usize = 320;
const ITEM_FRAME: usize = 160;

impl Record {
    /// A new message of one `data` item that is an agent-level message of its own, named after its role (a
    /// tool result, a user's answer).
    pub(crate) fn own(kind: &str, role: &str, fields: &[(&str, &str)]) -> Record {
        let id = new_message_id();
        Record::completed(id.clone(), kind, role, &[Part::Fields(fields)], &id, role)
    }

    /// A completed message as the runtime stores one: `status:"completed"`, content items `index:0,
    /// delta:false, msg_id`, and `metadata:{original_id, original_name, metadata}` naming the agent-level
    /// message it came from (several runtime messages may share one `original_id`). Keys in the runtime's
    /// order ([`StoredMessage`]); the test below holds it to what serializing the parsed message writes.
    ///
    /// Written straight into one string: building a [`StoredMessage`] (a dozen small strings and a
    /// metadata map) to serialize it was most of what session memory cost a turn.
    pub(crate) fn completed(
        id: String,
        kind: &str,
        role: &str,
        parts: &[Part<'_>],
        original_id: &str,
        original_name: &str,
    ) -> Record {
        let values: usize = parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.len(),
                Part::Fields(fields) => fields.iter().map(|(k, v)| k.len() + v.len() + 6).sum(),
                Part::Data(_) => 64,
            })
            .sum();
        let mut json = String::with_capacity(
            RECORD_FRAME + parts.len() * (ITEM_FRAME + id.len()) + values + id.len() + original_id.len() + 32,
        );
        json.push_str(r#"{"sequence_number":null,"object":"message","status":"completed","error":null,"id":"#);
        push_json_str(&mut json, &id);
        json.push_str(r#","type":"#);
        push_json_str(&mut json, kind);
        json.push_str(r#","role":"#);
        push_json_str(&mut json, role);
        json.push_str(r#","content":["#);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(r#"{"sequence_number":null,"object":"content","status":"completed","error":null,"type":"#);
            json.push_str(if matches!(part, Part::Text(_)) { r#""text""# } else { r#""data""# });
            json.push_str(r#","index":0,"delta":false,"msg_id":"#);
            push_json_str(&mut json, &id);
            match part {
                Part::Text(text) => {
                    json.push_str(r#","text":"#);
                    push_json_str(&mut json, text);
                }
                Part::Fields(fields) => {
                    json.push_str(r#","data":{"#);
                    for (j, (key, value)) in fields.iter().enumerate() {
                        if j > 0 {
                            json.push(',');
                        }
                        push_json_str(&mut json, key);
                        json.push(':');
                        push_json_str(&mut json, value);
                    }
                    json.push('}');
                }
                Part::Data(data) => {
                    json.push_str(r#","data":"#);
                    // A map with string keys always serializes; `{}` keeps the record whole regardless.
                    json.push_str(&serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()));
                }
            }
            json.push('}');
        }
        json.push_str(r#"],"code":null,"message":null,"usage":null,"metadata":{"metadata":{},"original_id":"#);
        push_json_str(&mut json, original_id);
        json.push_str(r#","original_name":"#);
        push_json_str(&mut json, original_name);
        json.push_str("}}");
        Record { id, json }
    }

    /// The record as a parsed message (for the model's replay of a turn's input).
    pub(crate) fn message(&self) -> Option<StoredMessage> {
        serde_json::from_str(&self.json).ok()
    }
}

/// `text` as a JSON string, escaped exactly as `serde_json` escapes one: `"` and `\\`, the short forms
/// `\b \f \n \r \t`, other control characters as `\u00xx`; everything else as it is.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        let short = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte escaped is ASCII, so `i` is a character boundary.
        out.push_str(&text[plain..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(short);
        }
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_written_session_reads_with_nulls_and_missing_fields() {
        let json = r#"{"id":"s1","user_id":"u1","messages":[{"id":"m1","type":"message","role":"user",
            "content":[{"type":"text","text":"hi","index":null,"delta":null}],"metadata":null},
            {"id":"m2","content":null}]}"#;
        let session: Session = serde_json::from_str(json).unwrap();
        assert_eq!(session.messages.len(), 2);
        assert_eq!(session.messages[0].items()[0].text.as_deref(), Some("hi"));
        assert!(session.messages[1].items().is_empty());
        let empty: Session = serde_json::from_str(r#"{"id":"s","user_id":"u","messages":null}"#).unwrap();
        assert!(empty.messages.is_empty());
    }

    #[test]
    fn a_new_message_has_the_runtime_keys_in_order() {
        let m = Record::completed("msg_1".into(), "message", "user", &[Part::Text("hi")], "o1", "user");
        assert_eq!(
            m.json,
            r#"{"sequence_number":null,"object":"message","status":"completed","error":null,"id":"msg_1","type":"message","role":"user","content":[{"sequence_number":null,"object":"content","status":"completed","error":null,"type":"text","index":0,"delta":false,"msg_id":"msg_1","text":"hi"}],"code":null,"message":null,"usage":null,"metadata":{"metadata":{},"original_id":"o1","original_name":"user"}}"#
        );
    }

    #[test]
    fn a_record_is_what_serializing_its_parsed_message_writes() {
        let awkward = "quote \" backslash \\ slash / \n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é 漢 🦀";
        let data: Map<String, Value> =
            serde_json::from_str(r#"{"call_id":"c1","nested":{"a":[1,null,"x"]},"output":"[{\"t\":1}]"}"#).unwrap();
        let records = [
            Record::completed(new_message_id(), "message", "assistant", &[Part::Text(awkward)], "o\"1", awkward),
            Record::completed(
                new_message_id(),
                "plugin_call",
                "assistant",
                &[Part::Fields(&[("arguments", "{\"tz\":\"UTC\"}"), ("call_id", "c1"), ("name", "clock")])],
                "o",
                "Friday",
            ),
            Record::completed(new_message_id(), "plugin_call_output", "system", &[Part::Data(&data)], "o", "system"),
            Record::completed(
                new_message_id(),
                "message",
                "user",
                &[Part::Text("a"), Part::Text(""), Part::Data(&data)],
                "o",
                "u",
            ),
            Record::completed(new_message_id(), "message", "user", &[], "o", "u"),
        ];
        for record in &records {
            let parsed = record.message().expect("a record parses");
            assert_eq!(parsed.id, record.id);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), record.json, "byte for byte");
        }
        assert_eq!(records[0].message().unwrap().items()[0].text.as_deref(), Some(awkward));
        let fields = records[1].message().unwrap().items()[0].data.clone().unwrap();
        assert_eq!(fields["arguments"], "{\"tz\":\"UTC\"}");
    }

    #[test]
    fn message_ids_are_the_runtime_form() {
        let id = new_message_id();
        assert!(id.starts_with("msg_") && id.len() == 40, "{id}");
        assert!(uuid::Uuid::parse_str(&id[4..]).is_ok());
        assert_ne!(new_message_id(), id);
    }
}
