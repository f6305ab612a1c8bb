//! The one reader of request bodies, and the request rules the faces share.
//!
//! Every face reads its body the same way: bytes → UTF-8 → JSON (serde_json stops at 128 levels, so the
//! parser never runs off the stack) → our nesting bound ([`MAX_DEPTH`]) → its typed struct by
//! `#[derive(Deserialize)]`, with the field path tracked by `serde_path_to_error`. A refusal is a
//! [`RequestError`] whose text is `<field path>: <reason>` in our own words: serde's messages quote the
//! value they met (`invalid type: string "…"`), so [`typed`] keeps only the path and the part of the
//! message our own types wrote (their `expecting` text, or the error they raised). The byte-size bound is
//! the app's (`read_body`, before any face sees the body); the counts (messages, parts) are bounded here,
//! by [`seq_at_most`], before an element is read.
//!
//! The shared rules:
//! - **Optional strings** ([`opt_string`]): absent, `null`, `""` or only whitespace are all "not sent";
//!   any other string is kept as sent (not trimmed). A wrong type is refused (`expected a string`).
//!   Content text ([`opt_text`]) is not an optional setting: it is kept exactly as sent, empty included.
//! - **Stop sequences** ([`stop`]): a string or a list of strings.
//! - **Content parts to text** ([`parts_text`]): text parts joined by newlines, empty ones skipped, and
//!   media as a short bracketed note where the face gives one; each face names its part types.
//! - Lenient fields ([`Loose`]): a string when the body has one there, else nothing — for the ids and
//!   hints a face has always read without refusing.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{RequestError, field};
use crate::llm::StopSequences;

/// JSON nesting depth of a whole body (tool arguments and schemas included), on every face. serde_json
/// itself stops at 128, which keeps the parser off the stack limit; this tighter bound is ours.
pub const MAX_DEPTH: usize = 64;

/// A body as JSON within the nesting bound: not UTF-8, not JSON, and too deep are refused as `body: …`.
pub(crate) fn json(body: &[u8]) -> Result<Value, RequestError> {
    let text = std::str::from_utf8(body).map_err(|e| RequestError::NotUtf8 { at: e.valid_up_to() })?;
    let value: Value = serde_json::from_str(text).map_err(|e| RequestError::NotJson(e.to_string()))?;
    check_depth(&value)?;
    Ok(value)
}

/// [`json`], then the face's typed body ([`Obj`] refuses anything but an object: `body: expected …`).
pub(crate) fn read<T: DeserializeOwned + Expect>(body: &[u8]) -> Result<T, RequestError> {
    typed::<Obj<T>>(json(body)?).map(|obj| obj.0)
}

/// The nesting bound on an already parsed value (a request found inside an event envelope).
pub(crate) fn check_depth(value: &Value) -> Result<(), RequestError> {
    if depth(value) > MAX_DEPTH { Err(RequestError::TooDeep { max: MAX_DEPTH }) } else { Ok(()) }
}

/// Depth of nested arrays/objects, iteratively (a recursive walk is what the bound is there to avoid).
pub(crate) fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        if d > MAX_DEPTH {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// A typed value from JSON (owned or borrowed), the refusal naming the path in our words.
pub(crate) fn typed<'de, T: Deserialize<'de>>(
    from: impl Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(from).map_err(|error| {
        let mut path = path_of(error.path());
        let message = error.inner().to_string();
        let reason = match message.strip_prefix("missing field `").and_then(|f| f.strip_suffix('`')) {
            Some(name) => {
                path = if path == "body" { name.to_owned() } else { format!("{path}.{name}") };
                "required".to_owned()
            }
            None => reason_of(&message),
        };
        field(path, reason)
    })
}

/// `input[2].content[0].text`; the body itself is `body`.
fn path_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if out.is_empty() { "body".to_owned() } else { out }
}

/// serde's own messages quote the value (`invalid type: string "x", expected …`): keep only what follows
/// the last `, expected ` — the `expecting` text of one of our types. Anything else is a message one of
/// our types raised, which never quotes the body.
fn reason_of(message: &str) -> String {
    let serde_made = ["invalid type: ", "invalid value: ", "invalid length ", "unknown variant ", "unknown field "];
    if !serde_made.iter().any(|p| message.starts_with(p)) {
        return message.to_owned();
    }
    match message.rsplit_once(", expected ") {
        Some((_, wanted)) if wanted.starts_with("expected ") || wanted.starts_with("must ") => wanted.to_owned(),
        Some((_, wanted)) => format!("expected {wanted}"),
        None => "not accepted here".to_owned(),
    }
}

/// What a typed object is called in a refusal (`input[0]: expected a message object`).
pub(crate) trait Expect {
    const EXPECTING: &'static str;
}

/// A derived struct read only from a JSON object: serde's derive also reads a struct from an array
/// (field by position), which no face accepts.
#[derive(Debug)]
pub(crate) struct Obj<T>(pub(crate) T);

impl<'de, T: Deserialize<'de> + Expect> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Expect> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// One leaf visitor: `expecting` is the whole reason (`expected a string`), `null` is `None`.
macro_rules! leaf {
    ($name:ident, $out:ty, $why:expr, { $($body:tt)* }) => {
        struct $name;
        impl<'de> Visitor<'de> for $name {
            type Value = Option<$out>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str($why)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            $($body)*
        }
    };
}

leaf!(StrV, String, "expected a string", {
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Some(s))
    }
});

/// The optional-string rule (see the module docs): blank is absent.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(d.deserialize_any(StrV)?.filter(|s| !s.trim().is_empty()))
}

/// Content text: kept exactly as sent (`null` is absent).
pub(crate) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(StrV)
}

/// A required string (`null` is refused as `required`; a missing field is serde's `required`).
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(StrV)?.ok_or_else(|| de::Error::custom("required"))
}

leaf!(BoolV, bool, "expected true or false", {
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Some(b))
    }
});

pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(BoolV)
}

leaf!(U64V, u64, "expected a non-negative integer", {
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(n))
    }
});

/// `seed`.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(U64V)
}

leaf!(PositiveV, u32, "expected a positive integer", {
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        match u32::try_from(n) {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(E::custom("expected a positive integer")),
        }
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom("expected a positive integer"))
    }
});

/// `max_tokens` and its kin: an integer in `1..=u32::MAX`.
pub(crate) fn opt_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_any(PositiveV)
}

/// A number, refused with `why` when it is not one or `ok` says no.
fn number<'de, D: Deserializer<'de>>(d: D, ok: fn(f64) -> bool, why: &'static str) -> Result<Option<f64>, D::Error> {
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n as f64))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(n as f64))
        }
    }
    match d.deserialize_any(V(why))? {
        Some(n) if !ok(n) => Err(de::Error::custom(why)),
        n => Ok(n),
    }
}

/// `temperature` on `/process`: any number ≥ 0 (the model bounds it).
pub(crate) fn temperature_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    number(d, |t| t >= 0.0, "must be a number ≥ 0")
}

/// `temperature` on the OpenAI faces: [0, 2], as OpenAI bounds it.
pub(crate) fn temperature_openai<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    number(d, |t| (0.0..=2.0).contains(&t), "must be a number in [0, 2]")
}

/// `top_p` in (0, 1], on every face.
pub(crate) fn top_p<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    number(d, |p| p > 0.0 && p <= 1.0, "must be a number in (0, 1]")
}

/// A string that must be one of a face's words (a role); the refusal lists them, never the word sent.
pub(crate) fn one_of<'de, D: Deserializer<'de>, T: Copy>(
    d: D,
    words: &[(&str, T)],
    why: &'static str,
) -> Result<Option<T>, D::Error> {
    match d.deserialize_any(StrV)? {
        None => Ok(None),
        Some(word) => match words.iter().find(|(w, _)| *w == word) {
            Some((_, value)) => Ok(Some(*value)),
            None => Err(de::Error::custom(why)),
        },
    }
}

/// Stop sequences, on every face: a string or a list of strings.
pub(crate) fn stop<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StopSequences>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<StopSequences>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("expected a string or a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(StopSequences::One(s.to_owned())))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut stops = Vec::new();
            while let Some(Req(s)) = seq.next_element::<Req>()? {
                stops.push(s);
            }
            Ok(Some(StopSequences::Many(stops)))
        }
    }
    d.deserialize_any(V)
}

/// A required string inside a list (`stop[1]: expected a string`).
struct Req(String);

impl<'de> Deserialize<'de> for Req {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d).map(Req)
    }
}

/// A list of at most `max` elements, refused by its length before an element is read (`input: more than
/// 1000 messages`); `null` is `None`, another type is refused with `why`.
pub(crate) fn seq_at_most<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    max: usize,
    what: &'static str,
    why: &'static str,
) -> Result<Option<Vec<T>>, D::Error> {
    d.deserialize_any(Bounded { max, what, why, out: PhantomData })
}

/// The visitor of [`seq_at_most`]: a list of at most `max` `T`s, or `null`.
struct Bounded<T> {
    max: usize,
    what: &'static str,
    why: &'static str,
    out: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
    type Value = Option<Vec<T>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.why)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let len = seq.size_hint().unwrap_or(0);
        if len > self.max {
            return Err(de::Error::custom(format!("more than {} {}", self.max, self.what)));
        }
        let mut out = Vec::with_capacity(len);
        while let Some(item) = seq.next_element()? {
            if out.len() == self.max {
                return Err(de::Error::custom(format!("more than {} {}", self.max, self.what)));
            }
            out.push(item);
        }
        Ok(Some(out))
    }
}

/// A field that is either one string or a list of at most `max` elements (a Chat message's `content`, a
/// Responses `input`).
pub(crate) enum TextOrList<T> {
    Text(String),
    List(Vec<T>),
}

/// Reads a [`TextOrList`]: `null` is `None`, a list longer than `max` is refused by its length (as
/// [`seq_at_most`]), another type is refused with `why`.
pub(crate) fn text_or_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    max: usize,
    what: &'static str,
    why: &'static str,
) -> Result<Option<TextOrList<T>>, D::Error> {
    /// [`Bounded`] that also takes a string.
    struct V<T>(Bounded<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<TextOrList<T>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            self.0.expecting(f)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(TextOrList::Text(s.to_owned())))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Ok(self.0.visit_seq(seq)?.map(TextOrList::List))
        }
    }
    d.deserialize_any(V(Bounded { max, what, why, out: PhantomData }))
}

/// An object kept as sent (`tools[0]`, a `data` item); `null` is `None`.
pub(crate) fn opt_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Map<String, Value>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("expected an object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Map::new();
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

/// A lenient field: the string when the body has one there, else `None` (any other value is ignored,
/// never refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loose(pub(crate) Option<String>);

impl Loose {
    pub(crate) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The optional-string rule: blank is absent.
    pub(crate) fn non_blank(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.trim().is_empty())
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Loose, E> {
                Ok(Loose(Some(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Loose, E> {
                Ok(Loose(Some(s)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value read leniently: `T` when it reads as one, else `None` (the value is never refused).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lenient<T>(pub(crate) Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Lenient(T::deserialize(value).ok()))
    }
}

/// One content part, read leniently whatever its face: a non-object is a part with no type. `type` and
/// `kind` (A2A 0.3) are kept apart, so a face reads only its own tag.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Part {
    pub(crate) type_: Loose,
    pub(crate) kind: Loose,
    /// `None` when absent; `Some(Loose(None))` when present but not a string.
    pub(crate) text: Option<Loose>,
    pub(crate) refusal: Loose,
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Part;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
                let mut part = Part::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "type" => part.type_ = map.next_value()?,
                        "kind" => part.kind = map.next_value()?,
                        "text" => part.text = Some(map.next_value()?),
                        "refusal" => part.refusal = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(part)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Part, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Part::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Part, E> {
                Ok(Part::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Part, E> {
                Ok(Part::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Part, E> {
                Ok(Part::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Part, E> {
                Ok(Part::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Part, E> {
                Ok(Part::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Part, E> {
                Ok(Part::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// What a face makes of one content part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartRule {
    /// Its `text`, which must be a string.
    Text,
    /// Its `text` when it is a string, else nothing.
    TextIfAny,
    /// Its `refusal` when it is a string.
    Refusal,
    /// A short note the model can read (`[image]`).
    Note(&'static str),
    /// Not read.
    Skip,
    /// Refused: `<path>.type: <reason>` (the reason lists the types the face reads).
    Refuse(&'static str),
}

/// Content parts to text, on every face: each part's text by the face's `rule`, the non-empty ones
/// joined by newlines. `at` is the path of the list (`messages[0].content`).
pub(crate) fn parts_text(at: &str, parts: &[Part], rule: impl Fn(&Part) -> PartRule) -> Result<String, RequestError> {
    let mut texts: Vec<&str> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let text = match rule(part) {
            PartRule::Text => match &part.text {
                Some(Loose(Some(text))) => text.as_str(),
                _ => return Err(field(format!("{at}[{i}].text"), "expected a string")),
            },
            PartRule::TextIfAny => part.text.as_ref().and_then(Loose::as_str).unwrap_or_default(),
            PartRule::Refusal => part.refusal.as_str().unwrap_or_default(),
            PartRule::Note(note) => note,
            PartRule::Skip => "",
            PartRule::Refuse(why) => return Err(field(format!("{at}[{i}].type"), why)),
        };
        if !text.is_empty() {
            texts.push(text);
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[serde(default, deserialize_with = "opt_string")]
        name: Option<String>,
        #[serde(deserialize_with = "string")]
        needed: String,
    }

    impl Expect for Inner {
        const EXPECTING: &'static str = "expected an inner object";
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default)]
        items: Vec<Obj<Inner>>,
        #[serde(default, deserialize_with = "stop")]
        stop: Option<StopSequences>,
    }

    impl Expect for Outer {
        const EXPECTING: &'static str = "expected a JSON object";
    }

    fn refusal(body: &str) -> String {
        read::<Outer>(body.as_bytes()).map(|outer| outer.stop).unwrap_err().to_string()
    }

    #[test]
    fn refusals_name_the_path_in_our_words_and_never_the_value() {
        assert_eq!(refusal(r#"[1]"#), "body: expected a JSON object");
        assert_eq!(refusal(r#"{"items":[{"needed":"x","name":"SECRET"}, 7]}"#), "items[1]: expected an inner object");
        assert_eq!(refusal(r#"{"items":[{"needed":"SECRET","name":["SECRET"]}]}"#), "items[0].name: expected a string");
        assert_eq!(refusal(r#"{"items":[{}]}"#), "items[0].needed: required");
        assert_eq!(refusal(r#"{"stop":["a","b",{"SECRET":1}]}"#), "stop[2]: expected a string");
        let deep = format!("{{\"items\":{}{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(refusal(&deep), "body: nested deeper than 64 levels");
        assert!(refusal("{").starts_with("body: not valid JSON"));
    }

    #[test]
    fn the_optional_string_rule_drops_blank_and_keeps_the_rest_as_sent() {
        let outer = read::<Outer>(br#"{"items":[{"needed":"","name":"  "},{"needed":"x","name":" a "}]}"#).unwrap();
        assert_eq!(outer.items[0].0.name, None);
        assert_eq!(outer.items[1].0.name.as_deref(), Some(" a "));
        assert_eq!(outer.items[0].0.needed, "");
    }

    #[test]
    fn parts_join_their_text_and_notes() {
        let parts: Vec<Part> =
            serde_json::from_str(r#"[{"type":"text","text":"a"},{"type":"image"},7,{"type":"text","text":""}]"#)
                .unwrap();
        let rule = |p: &Part| match p.type_.as_str() {
            Some("text") => PartRule::Text,
            Some("image") => PartRule::Note("[image]"),
            _ => PartRule::Skip,
        };
        assert_eq!(parts_text("c", &parts, rule).unwrap(), "a\n[image]");
        let bad: Vec<Part> = serde_json::from_str(r#"[{"type":"text","text":1}]"#).unwrap();
        assert_eq!(parts_text("c", &bad, rule).unwrap_err().to_string(), "c[0].text: expected a string");
    }
}
