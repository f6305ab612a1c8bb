//! Folds stream chunks into caller events and the step's final result.
//!
//! Tool calls are keyed strictly by `index` (spec "Stream"): the first non-empty `id` and `name` win, later
//! chunks carry `"id":""`, `"function":{}` or no id at all, and arguments are concatenated. A call is
//! announced only once both id and name are known, and argument fragments that arrive before that are held
//! back, so every consumer sees `ToolCallStarted` before that call's first fragment.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;

use super::types::{FinishReason, StepResult, StreamItem, ToolCall, Usage};

/// One `data:` chunk of the stream (fields we do not use are ignored). `id`, `model` and `request_id`
/// repeat in every chunk and are kept once per step: they borrow from the chunk's text instead of being
/// copied out of each (one allocation per chunk saved, whether or not telemetry reads them).
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk<'a> {
    #[serde(default, borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    /// The model that answered (DashScope names the exact version).
    #[serde(default, borrow)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    #[serde(default)]
    pub(crate) error: Option<super::error::ErrorObject>,
    #[serde(default, borrow)]
    pub(crate) request_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default)]
    pub(crate) delta: Option<Delta>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) reasoning_content: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default)]
    pub(crate) index: Option<u32>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<String>,
}

#[derive(Debug, Default)]
struct CallState {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
    /// Fragments received before the call could be announced.
    held: String,
}

/// The state of one model step while its stream is read.
#[derive(Debug, Default)]
pub(crate) struct StepAccumulator {
    text: String,
    reasoning: String,
    calls: BTreeMap<u32, CallState>,
    /// For tool-call deltas that omit `index`: they continue the call seen last.
    last_index: u32,
    pub(crate) finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    /// The first non-empty `id` and `model` of the stream's chunks.
    response_id: Option<String>,
    model: Option<String>,
}

impl StepAccumulator {
    /// Applies the choices and usage of one chunk, queueing what the caller should see.
    pub(crate) fn apply(&mut self, chunk: Chunk<'_>, out: &mut VecDeque<StreamItem>) {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        if self.response_id.is_none() {
            self.response_id = chunk.id.filter(|id| !id.is_empty()).map(Cow::into_owned);
        }
        if self.model.is_none() {
            self.model = chunk.model.filter(|model| !model.is_empty()).map(Cow::into_owned);
        }
        // `n` is always 1 for us; other choices would be alternative answers, not parts of this one.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(reasoning) = delta.reasoning_content.filter(|s| !s.is_empty()) {
                self.reasoning.push_str(&reasoning);
                out.push_back(StreamItem::ReasoningDelta(reasoning));
            }
            if let Some(text) = delta.content.filter(|s| !s.is_empty()) {
                self.text.push_str(&text);
                out.push_back(StreamItem::TextDelta(text));
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.apply_call(call, out);
            }
            if let Some(reason) = choice.finish_reason.filter(|s| !s.is_empty()) {
                self.finish_reason = Some(FinishReason::from_wire(&reason));
            }
        }
    }

    fn apply_call(&mut self, delta: ToolCallDelta, out: &mut VecDeque<StreamItem>) {
        let index = delta.index.unwrap_or(self.last_index);
        self.last_index = index;
        let call = self.calls.entry(index).or_default();
        if let Some(id) = delta.id.filter(|s| !s.is_empty() && call.id.is_empty()) {
            call.id = id;
        }
        let function = delta.function.unwrap_or(FunctionDelta { name: None, arguments: None });
        if let Some(name) = function.name.filter(|s| !s.is_empty() && call.name.is_empty()) {
            call.name = name;
        }
        if let Some(fragment) = function.arguments.filter(|s| !s.is_empty()) {
            call.arguments.push_str(&fragment);
            if call.announced {
                out.push_back(StreamItem::ToolCallArguments { index, fragment });
            } else {
                call.held.push_str(&fragment);
            }
        }
        if !call.announced && !call.id.is_empty() && !call.name.is_empty() {
            announce(index, call, out);
        }
    }

    /// Ends the step: announces calls whose id never came (with a made-up id) and returns the result.
    /// Fails when a call never got a name — it could not be executed.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<StreamItem>) -> Result<StepResult, String> {
        for (index, call) in self.calls.iter_mut() {
            if call.announced {
                continue;
            }
            if call.name.is_empty() {
                return Err(format!("tool call at index {index} has no function name"));
            }
            call.id = format!("call_{}", crate::ids::uuid().simple());
            announce(*index, call, out);
        }
        let tool_calls = std::mem::take(&mut self.calls)
            .into_values()
            .map(|c| {
                let arguments = if c.arguments.trim().is_empty() { "{}".to_owned() } else { c.arguments };
                ToolCall::new(c.id, c.name, arguments)
            })
            .collect();
        Ok(StepResult {
            text: std::mem::take(&mut self.text),
            reasoning: std::mem::take(&mut self.reasoning),
            tool_calls,
            finish_reason: self.finish_reason.clone(),
            usage: self.usage,
            response_id: self.response_id.take(),
            model: self.model.take(),
        })
    }
}

fn announce(index: u32, call: &mut CallState, out: &mut VecDeque<StreamItem>) {
    call.announced = true;
    out.push_back(StreamItem::ToolCallStarted { index, id: call.id.clone(), name: call.name.clone() });
    if !call.held.is_empty() {
        out.push_back(StreamItem::ToolCallArguments { index, fragment: std::mem::take(&mut call.held) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(acc: &mut StepAccumulator, json: &str) -> Vec<StreamItem> {
        let mut out = VecDeque::new();
        acc.apply(serde_json::from_str(json).unwrap(), &mut out);
        out.into()
    }

    #[test]
    fn holds_fragments_until_id_and_name_are_known() {
        let mut acc = StepAccumulator::default();
        let early = feed(
            &mut acc,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"a\""}}]}}]}"#,
        );
        assert!(early.is_empty());
        let named = feed(
            &mut acc,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"","function":{"name":"f"}}]}}]}"#,
        );
        assert!(named.is_empty(), "no id yet: {named:?}");
        let later = feed(&mut acc, r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]}}]}"#);
        assert!(later.is_empty());
        let mut out = VecDeque::new();
        let result = acc.finish(&mut out).unwrap();
        let out: Vec<_> = out.into();
        let StreamItem::ToolCallStarted { index: 1, id, name } = &out[0] else { panic!("{out:?}") };
        assert!(id.starts_with("call_"));
        assert_eq!(name, "f");
        assert_eq!(out[1], StreamItem::ToolCallArguments { index: 1, fragment: "{\"a\":1}".into() });
        assert_eq!(result.tool_calls[0].function.arguments, "{\"a\":1}");
        assert_eq!(&result.tool_calls[0].id, id);
    }

    #[test]
    fn nameless_call_is_an_error() {
        let mut acc = StepAccumulator::default();
        feed(&mut acc, r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{}}]}}]}"#);
        assert!(acc.finish(&mut VecDeque::new()).is_err());
    }
}
