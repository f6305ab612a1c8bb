//! An order-preserving view of JSON: `serde_json::Value` sorts keys, and key order is what the AgentScope
//! clients depend on, so conformance is checked on the raw text.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug)]
pub enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Str(String),
    Other,
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<J, E> {
                Ok(J::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<J, E> {
                Ok(J::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<J, E> {
                Ok(J::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<J, E> {
                Ok(J::Other)
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Other)
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = seq.next_element()? {
                    items.push(x);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    entries.push((k, v));
                }
                Ok(J::Obj(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Every object in `j`, classified (`response`, `message`, `content/text`, `content/data`, `data/call`,
/// `data/output`, …), with its keys in order.
pub fn key_lists(j: &J, into: &mut Vec<(String, Vec<String>)>) {
    match j {
        J::Obj(entries) => {
            let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
            let has = |k: &str| keys.iter().any(|x| x == k);
            let object = entries.iter().find(|(k, _)| k == "object").and_then(|(_, v)| match v {
                J::Str(s) => Some(s.as_str()),
                _ => None,
            });
            let class = match object {
                Some("content") if has("text") => "content/text".to_owned(),
                Some("content") if has("data") => "content/data".to_owned(),
                Some(o) => o.to_owned(),
                None if has("arguments") => "data/call".to_owned(),
                None if has("output") => "data/output".to_owned(),
                None if has("prompt_tokens") => "usage".to_owned(),
                None => format!("other:{keys:?}"),
            };
            into.push((class, keys));
            entries.iter().for_each(|(_, v)| key_lists(v, into));
        }
        J::Arr(items) => items.iter().for_each(|v| key_lists(v, into)),
        J::Str(_) | J::Other => {}
    }
}

/// One key list per class; panics if one class shows two different lists.
pub fn key_lists_by_class<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeMap<String, Vec<String>> {
    let mut by_class = BTreeMap::new();
    for line in lines {
        let j: J = serde_json::from_str(line).unwrap();
        let mut found = Vec::new();
        key_lists(&j, &mut found);
        for (class, keys) in found {
            let seen = by_class.entry(class.clone()).or_insert_with(|| keys.clone());
            assert_eq!(seen, &keys, "two key orders for {class} in {line}");
        }
    }
    by_class
}

/// `json` with every string and number replaced by its kind, keys in their order: two bodies with the same
/// shape give the same text whatever their ids, times and token counts.
pub fn shape(json: &str) -> String {
    fn walk(j: &J, out: &mut String) {
        match j {
            J::Obj(entries) => {
                out.push('{');
                for (k, v) in entries {
                    out.push_str(k);
                    out.push(':');
                    walk(v, out);
                    out.push(',');
                }
                out.push('}');
            }
            J::Arr(items) => {
                out.push('[');
                items.iter().for_each(|v| {
                    walk(v, out);
                    out.push(',');
                });
                out.push(']');
            }
            J::Str(_) => out.push_str("str"),
            J::Other => out.push('_'),
        }
    }
    let j: J = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let mut out = String::new();
    walk(&j, &mut out);
    out
}
