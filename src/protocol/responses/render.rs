//! The Responses renderers: the SSE stream (`stream: true`) and the one Response object (`stream: false`),
//! both from one [`ResponsesBuilder`].

use bytes::Bytes;

use super::builder::{Mode, ResponsesBuilder};
use super::request::Echo;
use crate::agent::TurnEvent;
use crate::pipeline::{Journaled, Renderer, Ticket, status_of};
use crate::sessions::journal::TurnOutcome;

/// Room for the frames of a typical turn event (a delta is one frame of ~200 bytes); more grows the buffer.
const FRAMES_CAPACITY: usize = 512;

/// `stream: true`: every event as `event: <type>\ndata: <json>\n\n`, as it is made (no `[DONE]`, as OpenAI).
pub(crate) struct ResponsesStream {
    builder: ResponsesBuilder,
}

impl ResponsesStream {
    pub(crate) fn new(model: String, echo: Echo) -> Self {
        ResponsesStream { builder: ResponsesBuilder::new(model, echo, Mode::Stream) }
    }

    /// The stream of a background turn, journaled: the Response carries the ticket's id and time.
    pub(crate) fn recorded(model: String, echo: Echo, ticket: &Ticket) -> Self {
        let builder = ResponsesBuilder::new(model, echo, Mode::Stream).with_ticket(&ticket.id, ticket.created_at);
        ResponsesStream { builder }
    }
}

/// The Response of a background turn just queued: what `POST` answers and `GET` shows until it runs.
pub(crate) fn queued_response(model: String, echo: Echo, ticket: &Ticket) -> String {
    ResponsesBuilder::new(model, echo, Mode::Answer).with_ticket(&ticket.id, ticket.created_at).queued_body()
}

impl Journaled for ResponsesStream {
    fn outcome(&self) -> Option<TurnOutcome> {
        let status = status_of(self.builder.end()?);
        let result = String::from_utf8(self.builder.final_body()?.to_vec()).ok()?;
        Some(TurnOutcome { status, result })
    }
}

impl Renderer for ResponsesStream {
    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    /// `created` and `in_progress` leave with the response head.
    fn opening(&mut self) -> Vec<Bytes> {
        let mut frames = Vec::with_capacity(FRAMES_CAPACITY);
        self.builder.start(&mut frames);
        vec![Bytes::from(frames)]
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let mut frames = Vec::with_capacity(FRAMES_CAPACITY);
        self.builder.push(event, &mut frames);
        if !frames.is_empty() {
            out.push(Bytes::from(frames));
        }
    }
}

/// `stream: false`: the final Response object (completed, incomplete or failed) as the whole body, with
/// status 200 as OpenAI answers a response that failed while generating; `client.responses.create()`
/// parses it and the caller reads `status` and `error`.
pub(crate) struct ResponsesAnswer {
    builder: ResponsesBuilder,
}

impl ResponsesAnswer {
    pub(crate) fn new(model: String, echo: Echo) -> Self {
        ResponsesAnswer { builder: ResponsesBuilder::new(model, echo, Mode::Answer) }
    }
}

impl Renderer for ResponsesAnswer {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>) {
        let finished = matches!(event, TurnEvent::Finished(_));
        // Answer mode writes no frames: this stays empty and never allocates.
        self.builder.push(event, &mut Vec::new());
        if finished && let Some(body) = self.builder.final_body() {
            out.push(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TurnEnd;
    use crate::failure::{Failure, FailureCode};
    use crate::llm::Usage;
    use crate::mcp::{ToolDef, ToolOutput};
    use rmcp::model::ContentBlock;
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn stream(events: &[TurnEvent]) -> Vec<Value> {
        let mut renderer = ResponsesStream::new("qwen-max".into(), Echo::default());
        let mut frames = renderer.opening();
        for event in events {
            renderer.render(event, &mut frames);
        }
        let text: String = frames.iter().map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
        let frames = text.strip_suffix("\n\n").expect("every frame ends with a blank line").split("\n\n");
        frames
            .map(|frame| {
                let (head, data) = frame.split_once('\n').unwrap();
                let event: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(head, format!("event: {}", event["type"].as_str().unwrap()));
                event
            })
            .collect()
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    /// What every stream must hold: sequence numbers 0..n, items added in index order, each done once with
    /// the same id and type, and one terminal event, last, holding every done item.
    fn check_consistent(events: &[Value]) -> &Value {
        let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
        assert_eq!(types(&events[..2]), ["response.created", "response.in_progress"]);
        let added: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.added").collect();
        let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.output_item.done").collect();
        for (i, event) in added.iter().enumerate() {
            assert_eq!(event["output_index"], i);
        }
        assert_eq!(added.len(), done.len());
        let last = events.last().unwrap();
        let output = last["response"]["output"].as_array().unwrap();
        for event in &done {
            let index = event["output_index"].as_u64().unwrap() as usize;
            assert_eq!(event["item"]["id"], added[index]["item"]["id"]);
            assert_eq!(event["item"]["type"], added[index]["item"]["type"]);
            assert_eq!(&output[index], &event["item"]);
        }
        for event in events {
            if let Some(id) = event.get("item_id") {
                let index = event["output_index"].as_u64().unwrap() as usize;
                assert_eq!(id, &added[index]["item"]["id"], "{event}");
            }
        }
        let terminal = ["response.completed", "response.failed", "response.incomplete"];
        assert_eq!(events.iter().filter(|e| terminal.contains(&e["type"].as_str().unwrap())).count(), 1);
        assert!(terminal.contains(&last["type"].as_str().unwrap()));
        let id = &events[0]["response"]["id"];
        assert!(events.iter().filter_map(|e| e.get("response")).all(|r| &r["id"] == id));
        last
    }

    fn tool_turn() -> Vec<TurnEvent> {
        let output =
            ToolOutput { text: "12:00 UTC".into(), content: vec![ContentBlock::text("12:00 UTC")], is_error: false };
        let getutctime = ToolDef {
            name: "getutctime".into(),
            description: "The time in UTC".into(),
            input_schema: std::sync::Arc::new(json!({"type": "object", "properties": {}}).as_object().unwrap().clone()),
        };
        vec![
            TurnEvent::ToolsListed { server: "time".into(), tools: Arc::from([getutctime]) },
            TurnEvent::ToolsListed { server: "empty".into(), tools: Arc::from([]) },
            TurnEvent::ReasoningDelta("Let me ".into()),
            TurnEvent::ReasoningDelta("check".into()),
            TurnEvent::ToolCallStarted { call_id: "c1".into(), name: "getutctime".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "c1".into(), delta: "{}".into() },
            TurnEvent::ToolCallCompleted { call_id: "c1".into(), name: "getutctime".into(), arguments: "{}".into() },
            TurnEvent::ToolResult { call_id: "c1".into(), name: "getutctime".into(), output },
            TurnEvent::Usage(Usage { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 }),
            TurnEvent::TextDelta("It is ".into()),
            TurnEvent::TextDelta("noon.".into()),
            TurnEvent::Usage(Usage { prompt_tokens: 20, completion_tokens: 3, total_tokens: 23 }),
            TurnEvent::Finished(TurnEnd::Completed),
        ]
    }

    #[test]
    fn a_tool_turn_is_the_listings_reasoning_an_mcp_call_with_its_output_then_the_message() {
        let events = stream(&tool_turn());
        let last = check_consistent(&events);
        let listing = [
            "response.output_item.added",
            "response.mcp_list_tools.in_progress",
            "response.mcp_list_tools.completed",
            "response.output_item.done",
        ];
        assert_eq!(types(&events[2..10]), [listing, listing].concat());
        assert_eq!(
            types(&events[10..]),
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.mcp_call.in_progress",
                "response.mcp_call_arguments.delta",
                "response.mcp_call_arguments.done",
                "response.mcp_call.completed",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let response = &last["response"];
        assert_eq!((response["status"].as_str(), response["model"].as_str()), (Some("completed"), Some("qwen-max")));
        let output = response["output"].as_array().unwrap();
        assert_eq!(
            output[0],
            json!({"type": "mcp_list_tools", "id": output[0]["id"], "server_label": "time", "error": null,
                "tools": [{"name": "getutctime", "description": "The time in UTC",
                    "input_schema": {"type": "object", "properties": {}}}]})
        );
        assert_eq!(events[2]["item"]["tools"], json!([]), "added with no tools, done with them");
        assert_eq!(
            (output[1]["server_label"].as_str(), output[1]["tools"].as_array().map(Vec::len)),
            (Some("empty"), Some(0))
        );
        assert_eq!(output[2]["content"][0]["text"], "Let me check");
        assert_eq!(output[3]["type"], "mcp_call");
        assert_eq!((output[3]["name"].as_str(), output[3]["output"].as_str()), (Some("getutctime"), Some("12:00 UTC")));
        assert_eq!(
            (output[3]["status"].as_str(), output[3]["server_label"].as_str()),
            (Some("completed"), Some("time"))
        );
        assert_eq!(output[4]["content"][0]["text"], "It is noon.");
        assert_eq!(response["usage"]["input_tokens"], 30);
        assert_eq!(
            (response["usage"]["output_tokens"].as_u64(), response["usage"]["total_tokens"].as_u64()),
            (Some(5), Some(35))
        );
        let text_done = events.iter().find(|e| e["type"] == "response.output_text.done").unwrap();
        assert_eq!(text_done["text"], "It is noon.");
    }

    #[test]
    fn a_plain_turn_is_one_message_and_the_answer_is_the_final_response() {
        let turn = [TurnEvent::TextDelta("Hi".into()), TurnEvent::Finished(TurnEnd::Completed)];
        let events = stream(&turn);
        check_consistent(&events);
        assert_eq!(events.len(), 9);
        let mut answer = ResponsesAnswer::new("qwen-max".into(), Echo::default());
        let mut body = Vec::new();
        for event in &turn {
            answer.render(event, &mut body);
        }
        assert_eq!(body.len(), 1, "one body, at the end");
        let response: Value = serde_json::from_slice(&body[0]).unwrap();
        assert_eq!((response["object"].as_str(), response["status"].as_str()), (Some("response"), Some("completed")));
        assert_eq!(
            response["output"][0]["content"][0],
            json!({"type": "output_text", "text": "Hi", "annotations": []})
        );
        assert_eq!(response["usage"], Value::Null, "the model reported no usage");
    }

    #[test]
    fn a_failure_closes_open_items_and_ends_with_response_failed() {
        let events = stream(&[
            TurnEvent::TextDelta("Partial".into()),
            TurnEvent::Finished(TurnEnd::Failed(Failure::new(FailureCode::ModelThrottled, "429 from DashScope"))),
        ]);
        let last = check_consistent(&events);
        assert_eq!(last["type"], "response.failed");
        let error = json!({"code": "rate_limit_exceeded", "message": "model_throttled: 429 from DashScope", "type": "rate_limit_error"});
        assert_eq!(last["response"]["error"], error, "the SDK's enum value, our code in the message");
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        assert!(events.iter().all(|e| e.get("error").is_none()), "no top-level error: the SDK would raise");
    }

    #[test]
    fn the_iteration_bound_ends_incomplete_with_the_unanswered_call_closed() {
        let events = stream(&[
            TurnEvent::ToolCallStarted { call_id: "c1".into(), name: "loop".into() },
            TurnEvent::Finished(TurnEnd::Incomplete(Failure::new(FailureCode::MaxIterations, "3 iterations"))),
        ]);
        let last = check_consistent(&events);
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    }

    #[test]
    fn a_tool_error_is_a_failed_mcp_call_with_the_message_as_output() {
        let events = stream(&[
            TurnEvent::ToolCallCompleted { call_id: "c1".into(), name: "broken".into(), arguments: "{}".into() },
            TurnEvent::ToolResult { call_id: "c1".into(), name: "broken".into(), output: ToolOutput::error("boom") },
            TurnEvent::Finished(TurnEnd::Completed),
        ]);
        let last = check_consistent(&events);
        let call = &last["response"]["output"][0];
        assert_eq!((call["status"].as_str(), call["output"].as_str()), (Some("failed"), Some("Error: boom")));
        assert_eq!(call["server_label"], "mcp", "a tool no listing named");
        assert_eq!(call["error"], Value::Null);
        assert!(types(&events).contains(&"response.mcp_call.failed"));
    }

    /// Ids (`<prefix>_<32 hex>`) as `<prefix>_<n>` by first appearance, and `created_at` as 0, so a
    /// rendering can be compared byte for byte.
    fn normalized(text: &str) -> String {
        let mut ids: Vec<&str> = Vec::new();
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('_') {
            let (head, tail) = rest.split_at(at + 1);
            out.push_str(head);
            let hex = tail.get(..32).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            rest = match hex {
                Some(hex) => {
                    let n = ids.iter().position(|id| *id == hex).unwrap_or_else(|| {
                        ids.push(hex);
                        ids.len() - 1
                    });
                    out.push_str(&n.to_string());
                    &tail[32..]
                }
                None => tail,
            };
        }
        out.push_str(rest);
        let mut lines = Vec::new();
        for mut piece in out.split("\"created_at\":") {
            if !lines.is_empty() {
                lines.push("\"created_at\":0");
                piece = piece.trim_start_matches(|c: char| c.is_ascii_digit());
            }
            lines.push(piece);
        }
        lines.concat()
    }

    /// Every byte of the stream and of the answer for recorded turns, ids and clock aside: the wire the
    /// SDK tests were checked against. `BLESS=1 cargo test --lib responses` rewrites the file after a change
    /// that is meant to change the wire.
    #[test]
    fn the_wire_is_as_recorded() {
        let echo = Echo {
            instructions: Some("Be brief.".into()),
            metadata: serde_json::from_value(json!({"case": "golden", "a\"b": "é\n"})).unwrap(),
            conversation: Some("conv-1".into()),
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_output_tokens: Some(200),
            background: false,
            response_id: None,
            previous_response_id: None,
        };
        let failed = [
            TurnEvent::ReasoningDelta("hm".into()),
            TurnEvent::ToolCallStarted { call_id: "c1".into(), name: "getutctime".into() },
            TurnEvent::Finished(TurnEnd::Failed(Failure::new(FailureCode::ModelThrottled, "429 \"quoted\""))),
        ];
        let incomplete = [
            TurnEvent::TextDelta("partial".into()),
            TurnEvent::Finished(TurnEnd::Incomplete(Failure::new(FailureCode::MaxIterations, "bound"))),
        ];
        let mut text = String::new();
        for (name, turn, echo) in [
            ("tool turn", tool_turn(), echo.clone()),
            ("failed", failed.to_vec(), Echo::default()),
            ("incomplete", incomplete.to_vec(), echo),
        ] {
            let mut renderer = ResponsesStream::new("qwen-max".into(), echo.clone());
            let mut frames = renderer.opening();
            let mut answer = ResponsesAnswer::new("qwen-max".into(), echo);
            let mut body = Vec::new();
            for event in &turn {
                renderer.render(event, &mut frames);
                answer.render(event, &mut body);
            }
            text.push_str(&format!("## {name}: stream\n"));
            frames.iter().for_each(|f| text.push_str(std::str::from_utf8(f).unwrap()));
            text.push_str(&format!("## {name}: answer\n"));
            body.iter().for_each(|b| text.push_str(std::str::from_utf8(b).unwrap()));
            text.push('\n');
        }
        let text = normalized(&text);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/protocol/responses/testdata/wire.txt");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let recorded = std::fs::read_to_string(path).expect("the recorded wire (BLESS=1 writes it)");
        assert!(text == recorded, "the wire changed:\n{text}");
    }

    #[test]
    fn parallel_calls_keep_their_own_items() {
        let ok =
            |text: &str| ToolOutput { text: text.into(), content: vec![ContentBlock::text(text)], is_error: false };
        let events = stream(&[
            TurnEvent::ToolCallStarted { call_id: "a".into(), name: "t1".into() },
            TurnEvent::ToolCallStarted { call_id: "b".into(), name: "t2".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "a".into(), delta: "{".into() },
            TurnEvent::ToolCallArgumentsDelta { call_id: "b".into(), delta: "{}".into() },
            TurnEvent::ToolCallCompleted { call_id: "a".into(), name: "t1".into(), arguments: "{}".into() },
            TurnEvent::ToolCallCompleted { call_id: "b".into(), name: "t2".into(), arguments: "{}".into() },
            TurnEvent::ToolResult { call_id: "b".into(), name: "t2".into(), output: ok("B") },
            TurnEvent::ToolResult { call_id: "a".into(), name: "t1".into(), output: ok("A") },
            TurnEvent::Finished(TurnEnd::Completed),
        ]);
        let last = check_consistent(&events);
        let output = &last["response"]["output"];
        assert_eq!((output[0]["name"].as_str(), output[0]["output"].as_str()), (Some("t1"), Some("A")));
        assert_eq!((output[1]["name"].as_str(), output[1]["output"].as_str()), (Some("t2"), Some("B")));
    }

    #[test]
    fn a_consent_prompt_is_a_message_whose_url_citation_spans_the_link() {
        let url = "https://consent.example/authorize?request_uri=r-1";
        let events = stream(&[
            TurnEvent::AuthorizationRequired { provider: "calendar".into(), url: url.into() },
            TurnEvent::TextDelta("Done.".into()),
            TurnEvent::Finished(TurnEnd::Completed),
        ]);
        let last = check_consistent(&events);
        let prompt = &last["response"]["output"][0];
        assert_eq!((prompt["type"].as_str(), prompt["status"].as_str()), (Some("message"), Some("completed")));
        let part = &prompt["content"][0];
        let annotation = &part["annotations"][0];
        assert_eq!((annotation["type"].as_str(), annotation["url"].as_str()), (Some("url_citation"), Some(url)));
        let text: Vec<char> = part["text"].as_str().unwrap().chars().collect();
        let (start, end) = (annotation["start_index"].as_u64().unwrap(), annotation["end_index"].as_u64().unwrap());
        assert_eq!(text[start as usize..end as usize].iter().collect::<String>(), url);
        let added = events.iter().find(|e| e["type"] == "response.output_text.annotation.added").unwrap();
        assert_eq!(&added["annotation"], annotation);
        // The answer that follows is an item of its own.
        assert_eq!(last["response"]["output"][1]["content"][0]["text"], "Done.");
    }
}
