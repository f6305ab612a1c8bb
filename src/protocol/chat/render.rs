//! The Chat Completions renderers: `chat.completion.chunk` SSE ending in `data: [DONE]`, and one
//! `chat.completion`. The agent is the model: its reasoning is `reasoning_content` (DashScope's own
//! convention), its answer `content`. The tools the function ran are not client tool calls (a client would
//! try to run them), so they do not appear at all; their effect is in the answer. A turn cut by the
//! iteration bound ends with `finish_reason: "length"`.
//!
//! Failures: in a stream, one `data: {"error":{message,type,param,code}}` frame (the SDK raises `APIError`
//! with that message) and `[DONE]`; a non-streamed answer is the same error body with a failure status
//! (429 throttled, 504 deadline, 502 other upstream failures).

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::agent::{TurnEnd, TurnEvent};
use crate::clock::unix_now;
use crate::llm::Usage;
use crate::pipeline::Renderer;
use crate::protocol::openai::{add_usage, failure_error, new_id};

/// What both renderers know about the completion.
struct Completion {
    id: String,
    created: u64,
    model: String,
    usage: Option<Usage>,
}

impl Completion {
    fn new(model: String) -> Self {
        Completion { id: new_id("chatcmpl"), created: unix_now(), model, usage: None }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason});
        self.frame(json!([choice]), None)
    }

    fn frame(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": null, "choices": choices});
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        data(&chunk)
    }

    fn usage(&self) -> Value {
        let usage = self.usage.unwrap_or_default();
        json!({"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens})
    }
}

/// The consent prompt as chat content: the text (two newlines apart from the answer that follows, since a
/// completion has one content) and a `url_citation` annotation over the URL, as OpenAI annotates links in
/// `message.annotations`. `offset`: the characters of content before it.
fn authorization(provider: &str, url: &str, offset: usize) -> (String, Value) {
    let text = format!("{}\n\n", crate::agent::authorization_message(provider, url));
    let start = offset + text.find(url).map_or(0, |byte| text[..byte].chars().count());
    let annotation = json!({"type": "url_citation", "url_citation": {"url": url, "title": format!("Authorize {provider}"),
        "start_index": start, "end_index": start + url.chars().count()}});
    (text, annotation)
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn finish_reason(end: &TurnEnd) -> &'static str {
    match end {
        TurnEnd::Incomplete(_) => "length",
        _ => "stop",
    }
}

/// `stream: true`.
pub(crate) struct CompletionsStream {
    completion: Completion,
    include_usage: bool,
    /// Characters of `content` sent so far (an annotation's indexes count from the content's start).
    content_chars: usize,
}

impl CompletionsStream {
    pub(crate) fn new(model: String, include_usage: bool) -> Self {
        CompletionsStream { completion: Completion::new(model), include_usage, content_chars: 0 }
    }
}

impl Renderer for CompletionsStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// The role chunk leaves with the response head, as OpenAI's first chunk.
    fn opening(&mut self) -> Vec<Bytes> {
        vec![self.completion.chunk(json!({"role": "assistant", "content": ""}), None)]
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        match event {
            TurnEvent::ReasoningDelta(delta) => {
                out.push(self.completion.chunk(json!({"reasoning_content": delta}), None))
            }
            TurnEvent::TextDelta(delta) => {
                self.content_chars += delta.chars().count();
                out.push(self.completion.chunk(json!({"content": delta}), None))
            }
            TurnEvent::AuthorizationRequired { provider, url } => {
                let (text, annotation) = authorization(provider, url, self.content_chars);
                self.content_chars += text.chars().count();
                out.push(self.completion.chunk(json!({"content": text, "annotations": [annotation]}), None))
            }
            TurnEvent::Usage(usage) => add_usage(&mut self.completion.usage, *usage),
            TurnEvent::Finished(TurnEnd::Failed(failure)) => {
                out.push(data(&json!({"error": failure_error(failure)})));
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            TurnEvent::Finished(end) => {
                out.push(self.completion.chunk(json!({}), Some(finish_reason(end))));
                if self.include_usage {
                    out.push(self.completion.frame(json!([]), Some(self.completion.usage())));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            // The tools the function ran are not the client's to run: a `tool_calls` delta would ask it to.
            // Chat Completions has no place for a tool listing either.
            TurnEvent::ToolsListed { .. }
            | TurnEvent::ToolCallStarted { .. }
            | TurnEvent::ToolCallArgumentsDelta { .. }
            | TurnEvent::ToolCallCompleted { .. }
            | TurnEvent::ToolResult { .. }
            // Chat Completions has nobody to ask: such calls are declined in the loop and never reach here,
            // and a tool's questions are declined by the MCP client (the model is told).
            | TurnEvent::ApprovalRequested { .. }
            | TurnEvent::QuestionAsked(_) => {}
        }
    }
}

/// `stream: false`: one `chat.completion`, or the error body with a failure status.
pub(crate) struct CompletionsAnswer {
    completion: Completion,
    text: String,
    reasoning: String,
    annotations: Vec<Value>,
    status: StatusCode,
}

impl CompletionsAnswer {
    pub(crate) fn new(model: String) -> Self {
        CompletionsAnswer {
            completion: Completion::new(model),
            text: String::new(),
            reasoning: String::new(),
            annotations: Vec::new(),
            status: StatusCode::OK,
        }
    }
}

impl Renderer for CompletionsAnswer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        match event {
            TurnEvent::ReasoningDelta(delta) => self.reasoning.push_str(delta),
            TurnEvent::TextDelta(delta) => self.text.push_str(delta),
            TurnEvent::AuthorizationRequired { provider, url } => {
                let (text, annotation) = authorization(provider, url, self.text.chars().count());
                self.text.push_str(&text);
                self.annotations.push(annotation);
            }
            TurnEvent::Usage(usage) => add_usage(&mut self.completion.usage, *usage),
            TurnEvent::Finished(TurnEnd::Failed(failure)) => {
                self.status = failure.http_status();
                out.push(Bytes::from(json!({"error": failure_error(failure)}).to_string()));
            }
            TurnEvent::Finished(end) => {
                let mut message = json!({"role": "assistant", "content": self.text, "refusal": null});
                if !self.reasoning.is_empty() {
                    message["reasoning_content"] = json!(self.reasoning);
                }
                if !self.annotations.is_empty() {
                    message["annotations"] = json!(self.annotations);
                }
                let c = &self.completion;
                let body = json!({"id": c.id, "object": "chat.completion", "created": c.created, "model": c.model,
                    "system_fingerprint": null,
                    "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(end)}],
                    "usage": c.usage()});
                out.push(Bytes::from(body.to_string()));
            }
            // As in the stream: neither the listing nor the function's tool calls are the client's.
            TurnEvent::ToolsListed { .. }
            | TurnEvent::ToolCallStarted { .. }
            | TurnEvent::ToolCallArgumentsDelta { .. }
            | TurnEvent::ToolCallCompleted { .. }
            | TurnEvent::ToolResult { .. }
            // Chat Completions has nobody to ask: such calls are declined in the loop and never reach here,
            // and a tool's questions are declined by the MCP client (the model is told).
            | TurnEvent::ApprovalRequested { .. }
            | TurnEvent::QuestionAsked(_) => {}
        }
    }

    fn status(&self) -> StatusCode {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Failure, FailureCode};

    fn frames(renderer: &mut impl Renderer, events: &[TurnEvent]) -> Vec<String> {
        let mut out = renderer.opening();
        for event in events {
            renderer.render(event, &mut out);
        }
        out.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect()
    }

    fn json_of(frame: &str) -> Value {
        serde_json::from_str(frame.strip_prefix("data: ").unwrap().trim_end()).unwrap()
    }

    fn tool_turn() -> Vec<TurnEvent> {
        vec![
            TurnEvent::ReasoningDelta("thinking".into()),
            TurnEvent::ToolCallCompleted { call_id: "c1".into(), name: "getutctime".into(), arguments: "{}".into() },
            TurnEvent::Usage(Usage { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 }),
            TurnEvent::TextDelta("It is noon.".into()),
            TurnEvent::Usage(Usage { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 }),
            TurnEvent::Finished(TurnEnd::Completed),
        ]
    }

    #[test]
    fn a_tool_turn_streams_reasoning_and_text_then_usage_and_done() {
        let out = frames(&mut CompletionsStream::new("qwen-max".into(), true), &tool_turn());
        assert_eq!(out.last().unwrap(), "data: [DONE]\n\n");
        let chunks: Vec<Value> = out[..out.len() - 1].iter().map(|f| json_of(f)).collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["reasoning_content"], "thinking");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "It is noon.");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"], json!({"prompt_tokens": 16, "completion_tokens": 5, "total_tokens": 21}));
        assert_eq!(chunks.len(), 5, "the tool call is not a client tool call");
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"] && c["object"] == "chat.completion.chunk"));
    }

    #[test]
    fn without_include_usage_no_usage_chunk_and_incomplete_is_length() {
        let events = [
            TurnEvent::TextDelta("x".into()),
            TurnEvent::Finished(TurnEnd::Incomplete(Failure::new(FailureCode::MaxIterations, "bound"))),
        ];
        let out = frames(&mut CompletionsStream::new("m".into(), false), &events);
        assert_eq!(out.len(), 4);
        assert_eq!(json_of(&out[2])["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn a_failure_is_an_error_frame_in_the_stream_and_a_failure_status_in_the_answer() {
        let failed = [TurnEvent::Finished(TurnEnd::Failed(Failure::new(FailureCode::ModelThrottled, "429 upstream")))];
        let out = frames(&mut CompletionsStream::new("m".into(), true), &failed);
        assert_eq!(out.len(), 3);
        let error = json_of(&out[1]);
        assert_eq!(error["error"]["code"], "model_throttled");
        assert_eq!(error["error"]["message"], "429 upstream");
        assert_eq!(out[2], "data: [DONE]\n\n");

        let mut answer = CompletionsAnswer::new("m".into());
        let body = frames(&mut answer, &failed);
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(serde_json::from_str::<Value>(&body[0]).unwrap()["error"]["type"], "rate_limit_error");

        // Consent that never came is a permission not given, not a bad gateway.
        let mut answer = CompletionsAnswer::new("m".into());
        let timed_out = Failure::new(FailureCode::ConsentTimeout, "calendar: no consent within 3 polls");
        let body = frames(&mut answer, &[TurnEvent::Finished(TurnEnd::Failed(timed_out))]);
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        let error = serde_json::from_str::<Value>(&body[0]).unwrap();
        assert_eq!(
            (error["error"]["type"].as_str(), error["error"]["code"].as_str()),
            (Some("permission_error"), Some("consent_timeout"))
        );
    }

    #[test]
    fn the_answer_is_one_chat_completion() {
        let mut answer = CompletionsAnswer::new("qwen-max".into());
        let body = frames(&mut answer, &tool_turn());
        assert_eq!((body.len(), answer.status()), (1, StatusCode::OK));
        let completion: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(completion["object"], "chat.completion");
        assert_eq!(completion["choices"][0]["message"]["content"], "It is noon.");
        assert_eq!(completion["choices"][0]["message"]["reasoning_content"], "thinking");
        assert_eq!(completion["usage"]["total_tokens"], 21);
    }

    #[test]
    fn a_consent_prompt_is_content_with_a_url_citation_counted_over_the_whole_content() {
        let url = "https://c.example/authorize?r=1";
        let prompt = TurnEvent::AuthorizationRequired { provider: "calendar".into(), url: url.into() };
        let mut answer = CompletionsAnswer::new("qwen-max".into());
        let mut out = Vec::new();
        for event in [TurnEvent::TextDelta("Één ".into()), prompt, TurnEvent::Finished(TurnEnd::Completed)] {
            answer.render(&event, &mut out);
        }
        let body: Value = serde_json::from_slice(out.last().unwrap()).unwrap();
        let message = &body["choices"][0]["message"];
        let content: Vec<char> = message["content"].as_str().unwrap().chars().collect();
        let citation = &message["annotations"][0]["url_citation"];
        let (start, end) = (citation["start_index"].as_u64().unwrap(), citation["end_index"].as_u64().unwrap());
        assert_eq!(content[start as usize..end as usize].iter().collect::<String>(), url);
        assert_eq!(message["annotations"][0]["type"], "url_citation");
    }
}
