//! Every face's request parser under deterministic mutation, on stable (the cargo-fuzz targets in `fuzz/`
//! need nightly, so CI runs this instead; docs/fuzzing.md). The seeds are the fuzz corpus's
//! (`fuzz/corpus/<target>/seed-*`); a fixed-seed `fastrand` mutates their JSON (values of another type,
//! removed and added keys, long lists, deep nesting, values moved elsewhere) or their bytes, a few
//! thousand inputs per face. Every input must be answered without a panic: a refusal reads
//! `<field path or body>: <reason>` and never repeats a value the input carried; an accepted request
//! became at least one model message.

use std::panic::{AssertUnwindSafe, catch_unwind};

use fc_identity_agent::protocol::{Wire, parse_body};
use serde_json::{Map, Value};

/// Inputs per face: enough to reach every field of every seed many times, quick in a debug build.
const INPUTS_PER_FACE: usize = 3000;
/// Fixed so that a failure reproduces; `MUTATION_SEED=<n>` runs another sequence.
const DEFAULT_SEED: u64 = 24;
/// Deeper than the reader's nesting bound (64), so that bound is met.
const DEEP: usize = 70;
/// Longer than every face's count bounds (messages, parts: at most 1000).
const LONG: usize = 1001;

const FACES: &[(Wire, &str)] = &[
    (Wire::Process, "agent_request"),
    (Wire::A2aV03, "a2a_v03"),
    (Wire::A2aV10, "a2a_v10"),
    (Wire::Agui, "agui_request"),
    (Wire::Responses, "responses_request"),
    (Wire::Chat, "chat_request"),
];

/// A seed's file name says whether the face accepts it as it is (`seed-bad-*` is refused).
struct Seed {
    name: String,
    value: Value,
}

fn seeds(dir: &str) -> Vec<Seed> {
    let path = format!("{}/fuzz/corpus/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<Seed> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seed-"))
        .map(|p| Seed {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            value: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{p:?}: {e}")),
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(seeds.len() >= 2, "{path}: at least two seeds");
    seeds
}

/// The mutator: its random source, and every value string it wrote (a refusal must repeat none).
struct Mutator {
    rng: fastrand::Rng,
    written: Vec<String>,
    /// Every key of the face's seeds: added keys are mostly ones the parser reads.
    keys: Vec<String>,
}

impl Mutator {
    /// A string no parser could know: `zv` and 12 random letters or digits.
    fn token(&mut self) -> String {
        let token: String =
            std::iter::once('z').chain(std::iter::once('v')).chain((0..12).map(|_| self.rng.alphanumeric())).collect();
        self.written.push(token.clone());
        token
    }

    fn scalar(&mut self) -> Value {
        match self.rng.u8(0..12) {
            0 => Value::String(self.token()),
            1 => Value::String(String::new()),
            2 => Value::String(" \t".into()),
            3 => Value::from(self.rng.i64(..)),
            4 => Value::from(u64::MAX),
            5 => Value::from(-1),
            6 => Value::from(0),
            7 => Value::from(1e308),
            8 => Value::from(self.rng.f64()),
            9 => Value::Bool(self.rng.bool()),
            10 => Value::Null,
            _ => Value::String(format!("{} {}", self.token(), "ü\u{0}\u{202e}")),
        }
    }

    /// Any value: a scalar, or a small container of them.
    fn any(&mut self) -> Value {
        match self.rng.u8(0..6) {
            0 => Value::Array(vec![]),
            1 => Value::Object(Map::new()),
            2 => Value::Array((0..self.rng.usize(1..4)).map(|_| self.scalar()).collect()),
            3 => {
                let key = self.key();
                Value::Object(Map::from_iter([(key, self.scalar())]))
            }
            _ => self.scalar(),
        }
    }

    fn key(&mut self) -> String {
        match self.rng.u8(0..4) {
            0 => format!("zk{}", self.rng.u32(..)),
            _ => self.rng.choice(self.keys.iter()).cloned().unwrap_or_default(),
        }
    }

    /// One mutation at a random node of `doc`.
    fn mutate(&mut self, doc: &mut Value) {
        let mut pointers = Vec::new();
        walk(doc, String::new(), &mut pointers);
        let at = self.rng.choice(pointers.iter()).cloned().unwrap_or_default();
        let donor = self.rng.choice(pointers.iter()).and_then(|p| doc.pointer(p)).cloned().unwrap_or(Value::Null);
        let op = self.rng.u8(0..9);
        let Some(node) = doc.pointer_mut(&at) else { return };
        match op {
            0 | 1 => *node = self.scalar(),
            2 => *node = self.any(),
            3 => *node = donor,
            4 => {
                let mut deep = std::mem::take(node);
                for _ in 0..DEEP {
                    deep = Value::Array(vec![deep]);
                }
                *node = deep;
            }
            5 => match node {
                Value::Array(items) if !items.is_empty() => {
                    let one = items[self.rng.usize(..items.len())].clone();
                    items.extend(std::iter::repeat_n(one, LONG));
                }
                other => *other = Value::Array(vec![Value::Null; LONG]),
            },
            6 | 7 => match node {
                Value::Object(map) => {
                    let (key, value) = (self.key(), self.any());
                    map.insert(key, value);
                }
                Value::Array(items) => items.push(self.any()),
                other => *other = self.any(),
            },
            _ => remove(doc, &at),
        }
    }

    /// Damages bytes of the text: a flip, a cut, a byte put in or taken out.
    fn damage(&mut self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let i = self.rng.usize(..bytes.len());
        match self.rng.u8(0..4) {
            0 => bytes[i] ^= 1 << self.rng.u8(0..8),
            1 => bytes.truncate(i),
            2 => bytes.insert(i, self.rng.u8(..)),
            _ => {
                bytes.remove(i);
            }
        }
    }
}

/// JSON pointers of every node under `value`.
fn walk(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(child, format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate().take(32) {
                walk(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Removes the node at `pointer` from its parent (the root stays).
fn remove(doc: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return };
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = key.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn keys_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.push(key.clone());
                keys_of(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|child| keys_of(child, out)),
        _ => {}
    }
}

/// What one input showed.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
}

fn check(face: Wire, body: &[u8], written: &[String], tally: &mut Tally) {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
    let answer = catch_unwind(AssertUnwindSafe(|| parse_body(face, body)))
        .unwrap_or_else(|_| panic!("{face:?} panicked on {}", shown()));
    match answer {
        Ok(messages) => {
            tally.accepted += 1;
            let task = matches!(face, Wire::A2aV03 | Wire::A2aV10) && messages == 0;
            assert!(messages > 0 || task, "{face:?} accepted with no message: {}", shown());
        }
        Err(text) => {
            tally.refused += 1;
            let (field, reason) =
                text.split_once(": ").unwrap_or_else(|| panic!("{face:?}: not `field: reason`: {text}"));
            assert!(!field.is_empty() && !field.contains(char::is_whitespace), "{face:?}: no field named: {text}");
            assert!(!reason.trim().is_empty(), "{face:?}: no reason: {text}");
            assert!(!reason.contains("expected required"), "{face:?}: a reason worded twice: {text}");
            if let Some(value) = written.iter().find(|value| text.contains(value.as_str())) {
                panic!("{face:?} repeats the value {value:?} of the input: {text}\ninput: {}", shown());
            }
        }
    }
}

#[test]
fn every_face_refuses_mutated_requests_by_field_without_repeating_them() {
    let seed = std::env::var("MUTATION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    for (face, dir) in FACES {
        let seeds = seeds(dir);
        for s in &seeds {
            let answer = parse_body(*face, s.value.to_string().as_bytes());
            assert_eq!(answer.is_ok(), !s.name.starts_with("seed-bad"), "{face:?} {}: {answer:?}", s.name);
        }
        let mut keys = Vec::new();
        seeds.iter().for_each(|s| keys_of(&s.value, &mut keys));
        keys.sort();
        keys.dedup();
        let mut mutator = Mutator { rng: fastrand::Rng::with_seed(seed), written: Vec::new(), keys };
        let mut tally = Tally::default();
        for _ in 0..INPUTS_PER_FACE {
            mutator.written.clear();
            let mut doc = seeds[mutator.rng.usize(..seeds.len())].value.clone();
            for _ in 0..mutator.rng.usize(1..4) {
                mutator.mutate(&mut doc);
            }
            let mut body = doc.to_string().into_bytes();
            if mutator.rng.u8(0..5) == 0 {
                mutator.damage(&mut body);
            }
            check(*face, &body, &mutator.written, &mut tally);
        }
        // Mutations that never get past the parser, or never get refused, would test nothing.
        let share = |n: usize| n * 20 >= INPUTS_PER_FACE;
        assert!(
            share(tally.accepted) && share(tally.refused),
            "{face:?}: {} accepted, {} refused",
            tally.accepted,
            tally.refused
        );
    }
}
