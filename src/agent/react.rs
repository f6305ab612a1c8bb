//! The ReAct loop: model step → concurrent tool calls → results back to the model, until it answers.

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::approval::{Approvals, cannot_ask_output};
use super::events::{QUESTION_ID_PREFIX, TurnEnd, TurnEvent};
use super::trace::{ChatTrace, ToolTrace};
use crate::failure::{Failure, FailureCode};
use crate::llm::{
    ChatMessage, ChatRequest, ChatStream, FinishReason, LlmClient, Sampling, StepResult, StreamItem, ToolCall, ToolSpec,
};
use crate::mcp::{Asking, Called, McpError, Resume, ToolOutput, Tools};
use crate::telemetry::within;

/// Everything one turn needs besides its clients.
#[derive(Debug, Clone)]
pub struct Turn {
    /// System prompt, prior turns and the user's message, in order.
    pub messages: Vec<ChatMessage>,
    /// `None`: the configured model.
    pub model: Option<String>,
    pub sampling: Sampling,
    /// Model calls allowed (`AGENT_MAX_ITERS`).
    pub max_iters: u32,
    pub deadline: Instant,
    /// Which calls wait for the user, and the calls they approved for this invocation.
    pub approvals: Approvals,
}

/// Why the loop stopped early.
enum LoopExit {
    /// Nobody listens any more (client gone): end at once, which drops every upstream request.
    Gone,
    End(TurnEnd),
}

impl From<Failure> for LoopExit {
    fn from(error: Failure) -> Self {
        LoopExit::End(TurnEnd::Failed(error))
    }
}

/// Runs one turn, reporting on `events`; the last event is always `Finished` unless the receiver is gone.
pub async fn run_turn(llm: &LlmClient, tools: Option<&Tools>, turn: Turn, events: mpsc::Sender<TurnEvent>) {
    let deadline = turn.deadline;
    let started = std::time::Instant::now();
    let bounded = tokio::time::timeout_at(deadline, steps(llm, tools, turn, &events));
    // A send only fails at the next event; a stalled model or tool would keep the turn alive until then.
    let result = tokio::select! {
        result = bounded => result,
        () = events.closed() => return,
    };
    let outcome = match result {
        Ok(Ok(())) => TurnEnd::Completed,
        Ok(Err(LoopExit::Gone)) => return,
        Ok(Err(LoopExit::End(end))) => end,
        Err(_elapsed) => {
            TurnEnd::Failed(Failure::new(FailureCode::DeadlineExceeded, "the function timeout was reached"))
        }
    };
    // One line per turn for operators: how it ended and how long it took.
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &outcome {
        TurnEnd::Completed => tracing::info!(elapsed_ms, "turn completed"),
        TurnEnd::Incomplete(error) => tracing::info!(code = %error.code, elapsed_ms, "turn incomplete"),
        TurnEnd::Failed(error) => {
            tracing::warn!(code = %error.code, message = %error.message, elapsed_ms, "turn failed")
        }
    }
    let _ = events.send(TurnEvent::Finished(outcome)).await;
}

async fn steps(
    llm: &LlmClient,
    tools: Option<&Tools>,
    turn: Turn,
    events: &mpsc::Sender<TurnEvent>,
) -> Result<(), LoopExit> {
    let emit = |event| async move { events.send(event).await.map_err(|_| LoopExit::Gone) };
    let mut servers: Vec<(String, String)> = Vec::new();
    if let Some(tools) = tools {
        for listing in tools.listings().await {
            servers.extend(listing.tools.iter().map(|tool| (tool.name.clone(), listing.server.clone())));
            emit(TurnEvent::ToolsListed { server: listing.server, tools: listing.tools }).await?;
        }
    }
    let mut messages = turn.messages;
    let approvals = turn.approvals;
    let asking = if approvals.can_question { Asking::Relay } else { Asking::Decline };
    let first: Vec<(ToolCall, Option<Resume>)> = approvals
        .approved
        .iter()
        .map(|call| (call.clone(), None))
        .chain(approvals.resumed.iter().map(|(call, resume)| (call.clone(), Some(resume.clone()))))
        .collect();
    if !first.is_empty() {
        // The user approved these, or answered their questions, in answer to the last turn's requests: they
        // run first, exactly as they were asked about, and the model goes on from their results.
        let tools = tools.ok_or_else(|| Failure::new(FailureCode::Internal, "an approved call, but no tools"))?;
        for (call, _) in &first {
            emit(TurnEvent::ToolCallStarted { call_id: call.id.clone(), name: call.function.name.clone() }).await?;
            emit(completed(call)).await?;
        }
        let results =
            join_all(first.iter().map(|(call, resume)| run(tools, call, resume.as_ref(), asking, turn.deadline))).await;
        let calls: Vec<ToolCall> = first.into_iter().map(|(call, _)| call).collect();
        messages.push(ChatMessage::Assistant { content: None, tool_calls: calls.clone() });
        let asked = report(calls, results, &servers, approvals.expires_at, &mut messages, events).await?;
        if asked {
            // A resumed call asked again: the turn ends with the new question.
            return Ok(());
        }
    }
    for _ in 0..turn.max_iters {
        let specs = match tools {
            Some(tools) => offered(tools).await,
            None => Vec::new(),
        };
        let request =
            ChatRequest { model: turn.model.clone(), messages, tools: specs, sampling: turn.sampling.clone() };
        let mut chat = ChatTrace::start(llm, &request);
        let started = within(chat.span(), llm.stream(&request, turn.deadline)).await;
        // The request's body is sent (and any retry is over): the conversation comes back instead of being
        // copied into every request and held twice for the length of the stream.
        messages = request.messages;
        let stream = match started {
            Ok(stream) => stream,
            Err(error) => {
                let failure = Failure::model(&error);
                chat.failed(&failure);
                return Err(failure.into());
            }
        };
        // A call that will wait for the user is not shown as a call: the face shows the request instead.
        let server_of = |name: &str| servers.iter().find(|(tool, _)| tool == name).map(|(_, server)| server.as_str());
        let needs = |name: &str| approvals.requires(name, || server_of(name));
        let held = |name: &str| approvals.can_ask && needs(name);
        let step = match model_step(stream, events, &held, &mut chat).await {
            Ok(step) => step,
            Err(exit) => {
                if let LoopExit::End(TurnEnd::Failed(failure)) = &exit {
                    chat.failed(failure);
                }
                return Err(exit);
            }
        };
        chat.done(&step);
        if let Some(usage) = step.usage {
            emit(TurnEvent::Usage(usage)).await?;
        }
        if step.finish_reason == Some(FinishReason::ContentFilter) {
            return Err(Failure::new(FailureCode::ContentFiltered, "the model service filtered the answer").into());
        }
        if step.tool_calls.is_empty() {
            return Ok(());
        }
        for call in step.tool_calls.iter().filter(|call| !held(&call.function.name)) {
            emit(completed(call)).await?;
        }
        let Some(tools) = tools else {
            return Err(
                Failure::new(FailureCode::ModelError, "the model called a tool although none was offered").into()
            );
        };
        // Calls that wait for the user are asked about (the turn ends after this step) or, where nobody can
        // be asked, declined with the reason as their output; the others run now.
        let mut waiting = false;
        let mut now = Vec::with_capacity(step.tool_calls.len());
        for call in step.tool_calls {
            if !needs(&call.function.name) {
                now.push(call);
                continue;
            }
            if approvals.can_ask {
                emit(TurnEvent::ApprovalRequested {
                    request_id: format!("mcpr_{}", crate::ids::uuid().simple()),
                    call_id: call.id,
                    server: server_of(&call.function.name).unwrap_or_default().to_owned(),
                    name: call.function.name,
                    arguments: call.function.arguments,
                    expires_at: approvals.expires_at,
                })
                .await?;
                waiting = true;
            } else {
                let output = ToolOutput::error(&cannot_ask_output(&call.function.name));
                emit(TurnEvent::ToolResult { call_id: call.id.clone(), name: call.function.name.clone(), output })
                    .await?;
                messages.push(ChatMessage::Assistant { content: None, tool_calls: vec![call.clone()] });
                messages
                    .push(ChatMessage::Tool { tool_call_id: call.id, content: cannot_ask_output(&call.function.name) });
            }
        }
        let results = join_all(now.iter().map(|call| run(tools, call, None, asking, turn.deadline))).await;
        messages.push(ChatMessage::Assistant {
            content: (!step.text.is_empty()).then_some(step.text),
            tool_calls: now.clone(),
        });
        let asked = report(now, results, &servers, approvals.expires_at, &mut messages, events).await?;
        if waiting || asked {
            // The turn ends here; the session keeps the requests and the calls, and the answer resumes it.
            return Ok(());
        }
    }
    Err(LoopExit::End(TurnEnd::Incomplete(Failure::new(
        FailureCode::MaxIterations,
        format!("stopped after {} model calls (AGENT_MAX_ITERS) without a final answer", turn.max_iters),
    ))))
}

/// The event that says a call's arguments are complete.
fn completed(call: &ToolCall) -> TurnEvent {
    TurnEvent::ToolCallCompleted {
        call_id: call.id.clone(),
        name: call.function.name.clone(),
        arguments: call.function.arguments.clone(),
    }
}

/// One call, its arguments parsed (arguments that are not JSON are the model's to fix), resumed with the
/// user's answers when it asked before. Each call is an `execute_tool` span, the MCP request's under it.
async fn run(
    tools: &Tools,
    call: &ToolCall,
    resume: Option<&Resume>,
    asking: Asking,
    deadline: Instant,
) -> Result<Called, Failure> {
    let trace = ToolTrace::start(&call.id, &call.function.name, &call.function.arguments);
    let result = match serde_json::from_str::<Value>(&call.function.arguments) {
        Ok(arguments) => {
            within(trace.span(), call_tool(tools, &call.function.name, arguments, resume, asking, deadline)).await
        }
        Err(error) => Ok(Called::Output(ToolOutput::error(&format!("the arguments are not valid JSON: {error}")))),
    };
    trace.done(&result);
    result
}

/// Reports each call's result and adds it to the conversation, in call order; a call that asked the user
/// is reported as its questions instead (true: the turn ends after this step).
async fn report(
    calls: Vec<ToolCall>,
    results: Vec<Result<Called, Failure>>,
    servers: &[(String, String)],
    expires_at: u64,
    messages: &mut Vec<ChatMessage>,
    events: &mpsc::Sender<TurnEvent>,
) -> Result<bool, LoopExit> {
    let mut asked = false;
    for (call, result) in calls.into_iter().zip(results) {
        let output = match result? {
            Called::Output(output) => output,
            Called::Asks(questions) => {
                asked = true;
                let server = servers.iter().find(|(name, _)| *name == call.function.name).map(|(_, s)| s.as_str());
                for question in questions.questions {
                    let event = TurnEvent::QuestionAsked(Box::new(super::AskedQuestion {
                        request_id: format!("{QUESTION_ID_PREFIX}{}", crate::ids::uuid().simple()),
                        call_id: call.id.clone(),
                        server: server.unwrap_or_default().to_owned(),
                        name: call.function.name.clone(),
                        arguments: call.function.arguments.clone(),
                        key: question.key,
                        message: question.message,
                        form: question.form,
                        request_state: questions.request_state.clone(),
                        expires_at,
                    }));
                    events.send(event).await.map_err(|_| LoopExit::Gone)?;
                }
                continue;
            }
        };
        let content = output.text.clone();
        let event = TurnEvent::ToolResult { call_id: call.id.clone(), name: call.function.name, output };
        events.send(event).await.map_err(|_| LoopExit::Gone)?;
        messages.push(ChatMessage::Tool { tool_call_id: call.id, content });
    }
    Ok(asked)
}

/// One streaming model call, forwarding its deltas as they arrive.
async fn model_step(
    mut stream: ChatStream,
    events: &mpsc::Sender<TurnEvent>,
    held: &(dyn Fn(&str) -> bool + Sync),
    chat: &mut ChatTrace,
) -> Result<StepResult, LoopExit> {
    // Call ids by the model's `index`, so argument fragments can be attributed; `None` for a held call.
    let mut call_ids: Vec<(u32, Option<String>)> = Vec::new();
    loop {
        let next = stream.next().await;
        if matches!(next, Some(Ok(_))) {
            chat.chunk();
        }
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(error)) => return Err(Failure::model(&error).into()),
            None => {
                return Err(Failure::new(FailureCode::ModelError, "the model stream ended without a result").into());
            }
        };
        let out = match event {
            StreamItem::Done(step) => return Ok(step),
            StreamItem::ReasoningDelta(text) => TurnEvent::ReasoningDelta(text),
            StreamItem::TextDelta(text) => TurnEvent::TextDelta(text),
            StreamItem::ToolCallStarted { index, id, name } => {
                if held(&name) {
                    call_ids.push((index, None));
                    continue;
                }
                call_ids.push((index, Some(id.clone())));
                TurnEvent::ToolCallStarted { call_id: id, name }
            }
            StreamItem::ToolCallArguments { index, fragment } => {
                let Some((_, Some(call_id))) = call_ids.iter().find(|(i, _)| *i == index) else {
                    continue;
                };
                TurnEvent::ToolCallArgumentsDelta { call_id: call_id.clone(), delta: fragment }
            }
        };
        events.send(out).await.map_err(|_| LoopExit::Gone)?;
    }
}

/// The tools as the model is offered them.
async fn offered(tools: &Tools) -> Vec<ToolSpec> {
    let definitions = tools.definitions().await;
    definitions
        .into_iter()
        .map(|tool| ToolSpec { name: tool.name, description: tool.description, parameters: tool.input_schema })
        .collect()
}

/// Calls a tool. Failures the model can act on (bad arguments, unknown tool, timeout, JSON-RPC error)
/// come back as an `is_error` output for the model; auth and transport failures end the turn.
async fn call_tool(
    tools: &Tools,
    name: &str,
    arguments: Value,
    resume: Option<&Resume>,
    asking: Asking,
    deadline: Instant,
) -> Result<Called, Failure> {
    match tools.call_with(name, arguments, resume, asking).await {
        Ok(called) => Ok(called),
        Err(error) if for_the_model(&error) => Ok(Called::Output(ToolOutput::error(&error.to_string()))),
        Err(error) => Err(Failure::tools(&error, deadline)),
    }
}

/// MCP failures the model is told about as the tool's answer (it can fix its call or do without).
fn for_the_model(error: &McpError) -> bool {
    matches!(
        error,
        McpError::Timeout { .. }
            | McpError::UnknownTool { .. }
            | McpError::InvalidArguments { .. }
            | McpError::Protocol { .. }
    )
}
