//! The turn's model calls (`chat` spans, GenAI client metrics) and tool calls (`execute_tool` spans) as
//! OpenTelemetry records them. Nothing here runs without telemetry: every handle is empty then.

use std::time::{Duration, Instant};

use opentelemetry::{Array, KeyValue, StringValue, Value};

use crate::failure::Failure;
use crate::llm::{ChatRequest, LlmClient, StepResult};
use crate::mcp::Called;
use crate::telemetry::{self, ChatMeasure, Span, SpanKind, names};

/// One model call being recorded.
pub(super) struct ChatTrace {
    span: Span,
    chat: Option<Chat>,
}

struct Chat {
    model: String,
    host: String,
    started: Instant,
    first_chunk: Option<Duration>,
}

impl ChatTrace {
    /// A `chat {model}` client span under the turn's, for `request` to `llm`.
    pub(super) fn start(llm: &LlmClient, request: &ChatRequest) -> ChatTrace {
        if !telemetry::active() {
            return ChatTrace { span: Span::none(), chat: None };
        }
        let model = llm.model_name(request.model.as_deref()).to_owned();
        let (host, port) = llm.server();
        let span = Span::start(format!("chat {model}"), SpanKind::Client, || {
            let sampling = &request.sampling;
            let mut attributes = vec![
                KeyValue::new(names::OPERATION_NAME, "chat"),
                KeyValue::new(names::PROVIDER_NAME, names::PROVIDER_DASHSCOPE),
                KeyValue::new(names::SPAN_KIND, "LLM"),
                KeyValue::new(names::REQUEST_MODEL, model.clone()),
                KeyValue::new(names::REQUEST_STREAM, true),
                KeyValue::new(names::SERVER_ADDRESS, host.to_owned()),
                KeyValue::new(names::SERVER_PORT, i64::from(port)),
            ];
            if let Some(temperature) = sampling.temperature {
                attributes.push(KeyValue::new(names::REQUEST_TEMPERATURE, temperature));
            }
            if let Some(top_p) = sampling.top_p {
                attributes.push(KeyValue::new(names::REQUEST_TOP_P, top_p));
            }
            if let Some(max_tokens) = sampling.max_tokens {
                attributes.push(KeyValue::new(names::REQUEST_MAX_TOKENS, i64::from(max_tokens)));
            }
            if telemetry::captures_content() {
                let messages = serde_json::to_string(&request.messages).unwrap_or_default();
                attributes.push(KeyValue::new(names::INPUT_MESSAGES, messages));
            }
            attributes
        });
        let chat = Chat { model, host: host.to_owned(), started: Instant::now(), first_chunk: None };
        ChatTrace { span, chat: Some(chat) }
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// The stream gave its first item.
    pub(super) fn chunk(&mut self) {
        if let Some(chat) = &mut self.chat
            && chat.first_chunk.is_none()
        {
            chat.first_chunk = Some(chat.started.elapsed());
        }
    }

    /// The call answered: the response's id, model, finish reason and usage.
    pub(super) fn done(self, step: &StepResult) {
        let Some(chat) = self.chat else {
            return;
        };
        let span = &self.span;
        if let Some(id) = &step.response_id {
            span.set_with(names::RESPONSE_ID, || id.clone());
        }
        if let Some(model) = &step.model {
            span.set_with(names::RESPONSE_MODEL, || model.clone());
        }
        if let Some(reason) = &step.finish_reason {
            span.set_with(names::RESPONSE_FINISH_REASONS, || {
                Value::Array(Array::String(vec![StringValue::from(reason.as_wire().to_owned())]))
            });
        }
        if let Some(first_chunk) = chat.first_chunk {
            span.set(names::RESPONSE_TIME_TO_FIRST_CHUNK, first_chunk.as_secs_f64());
        }
        if let Some(usage) = step.usage {
            span.set(names::USAGE_INPUT_TOKENS, saturating_i64(usage.prompt_tokens));
            span.set(names::USAGE_OUTPUT_TOKENS, saturating_i64(usage.completion_tokens));
        }
        if telemetry::captures_content() {
            span.set_with(names::OUTPUT_MESSAGES, || output_messages(step));
        }
        span.end();
        ChatMeasure {
            request_model: &chat.model,
            response_model: step.model.as_deref(),
            server_address: &chat.host,
            input_tokens: step.usage.map(|usage| usage.prompt_tokens),
            output_tokens: step.usage.map(|usage| usage.completion_tokens),
            duration: chat.started.elapsed(),
            first_chunk: chat.first_chunk,
            error_type: None,
        }
        .record();
    }

    /// The call failed (before or during its stream).
    pub(super) fn failed(self, failure: &Failure) {
        let Some(chat) = self.chat else {
            return;
        };
        self.span.fail(failure.code.as_str(), &failure.message);
        self.span.end();
        ChatMeasure {
            request_model: &chat.model,
            response_model: None,
            server_address: &chat.host,
            input_tokens: None,
            output_tokens: None,
            duration: chat.started.elapsed(),
            first_chunk: chat.first_chunk,
            error_type: Some(failure.code.as_str()),
        }
        .record();
    }
}

/// The answer as the conventions' output message: its text and the tool calls it asked for.
fn output_messages(step: &StepResult) -> String {
    let mut parts = Vec::new();
    if !step.text.is_empty() {
        parts.push(serde_json::json!({"type": "text", "content": step.text}));
    }
    for call in &step.tool_calls {
        parts.push(serde_json::json!({
            "type": "tool_call", "id": call.id, "name": call.function.name, "arguments": call.function.arguments,
        }));
    }
    let finish = step.finish_reason.as_ref().map(|reason| reason.as_wire().to_owned());
    serde_json::json!([{"role": "assistant", "parts": parts, "finish_reason": finish}]).to_string()
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One tool call being recorded: an `execute_tool {name}` span, under which the MCP client span runs.
pub(super) struct ToolTrace(Span);

impl ToolTrace {
    pub(super) fn start(call_id: &str, name: &str, arguments: &str) -> ToolTrace {
        if !telemetry::active() {
            return ToolTrace(Span::none());
        }
        ToolTrace(Span::start(format!("execute_tool {name}"), SpanKind::Internal, || {
            let mut attributes = vec![
                KeyValue::new(names::OPERATION_NAME, "execute_tool"),
                KeyValue::new(names::SPAN_KIND, "TOOL"),
                KeyValue::new(names::TOOL_NAME, name.to_owned()),
                KeyValue::new(names::TOOL_CALL_ID, call_id.to_owned()),
                // Run by the agent against an external service (the MCP gateway), not by the model's host.
                KeyValue::new(names::TOOL_TYPE, "extension"),
            ];
            if telemetry::captures_content() {
                attributes.push(KeyValue::new(names::TOOL_CALL_ARGUMENTS, arguments.to_owned()));
            }
            attributes
        }))
    }

    pub(super) fn span(&self) -> &Span {
        &self.0
    }

    /// How the call ended: the tool's answer (an `isError` answer is the tool's, not ours), or the failure
    /// that ends the turn.
    pub(super) fn done(self, result: &Result<Called, Failure>) {
        match result {
            // The call waits for the user's answers: nothing to report of it yet.
            Ok(Called::Asks(_)) => {}
            Ok(Called::Output(output)) => {
                if output.is_error {
                    self.0.set(names::ERROR_TYPE, "tool_error");
                }
                if telemetry::captures_content() {
                    self.0.set_with(names::TOOL_CALL_RESULT, || output.text.clone());
                }
            }
            Err(failure) => self.0.fail(failure.code.as_str(), &failure.message),
        }
        self.0.end();
    }
}
