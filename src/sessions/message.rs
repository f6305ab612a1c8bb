//! A session as the AgentScope runtime stores it (`../shared/spec/sessions.md` §2): the `Session` JSON
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

/// A fresh message id in the runtime's form.
pub(crate) fn new_message_id() -> String {
    format!("msg_{}", crate::ids::uuid())
}

/// What a new stored content item holds.
pub(crate) enum Part {
    Text(String),
    Data(Map<String, Value>),
}

impl StoredMessage {
    /// A completed message as the runtime stores one: `status:"completed"`, content items `index:0,
    /// delta:false, msg_id`, and `metadata:{original_id, original_name, metadata}` naming the agent-level
    /// message it came from (several runtime messages may share one `original_id`).
    pub(crate) fn completed(
        id: String,
        kind: &str,
        role: &str,
        parts: Vec<Part>,
        original_id: &str,
        original_name: &str,
    ) -> StoredMessage {
        let content = parts
            .into_iter()
            .map(|part| {
                let (kind, text, data) = match part {
                    Part::Text(text) => ("text", Some(text), None),
                    Part::Data(data) => ("data", None, Some(data)),
                };
                StoredContent {
                    sequence_number: None,
                    object: content_object(),
                    status: Some("completed".to_owned()),
                    error: None,
                    kind: kind.to_owned(),
                    index: Some(0),
                    delta: Some(false),
                    msg_id: Some(id.clone()),
                    text,
                    data,
                }
            })
            .collect();
        let metadata = serde_json::json!({
            "original_id": original_id,
            "original_name": original_name,
            "metadata": {},
        });
        StoredMessage {
            sequence_number: None,
            object: message_object(),
            status: Some("completed".to_owned()),
            error: None,
            id,
            kind: kind.to_owned(),
            role: Some(role.to_owned()),
            content: Some(content),
            code: None,
            message: None,
            usage: None,
            metadata: Some(metadata),
        }
    }

    /// The content items, none when `content` is null.
    pub(crate) fn items(&self) -> &[StoredContent] {
        self.content.as_deref().unwrap_or_default()
    }
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
        let m =
            StoredMessage::completed("msg_1".into(), "message", "user", vec![Part::Text("hi".into())], "o1", "user");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"sequence_number":null,"object":"message","status":"completed","error":null,"id":"msg_1","type":"message","role":"user","content":[{"sequence_number":null,"object":"content","status":"completed","error":null,"type":"text","index":0,"delta":false,"msg_id":"msg_1","text":"hi"}],"code":null,"message":null,"usage":null,"metadata":{"metadata":{},"original_id":"o1","original_name":"user"}}"#
        );
    }
}
