//! The one pump: runs a planned turn and hands its events, in order, to a wire face's [`Renderer`].
//! It owns every way a turn can end — the agent's own `Finished`, the client going away (the turn is
//! dropped, which cancels every upstream request at once), a shutdown cutting it off, or the turn's task
//! ending without saying how — so no face writes its own ending.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Pipeline;
use super::plan::Plan;
use super::trace::TurnTrace;
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::{Failure, FailureCode};
use crate::telemetry::in_scope;
use fc_runtime::{Body, BodySender, ClientGone};

/// Events a turn may run ahead of its renderer; the renderer's writes apply backpressure beyond it.
const EVENT_BUFFER: usize = 64;

/// How one wire face turns a turn's events into the bytes its clients read. The pump calls
/// [`Renderer::render`] for every event in order; the last one is always `TurnEvent::Finished`, exactly
/// once. A face whose body streams (SSE) is started with [`Pipeline::stream`]; a face that answers with
/// one body when the turn is over, with [`Pipeline::answer`]. Neither needs a pump of its own.
pub trait Renderer: Send + 'static {
    /// The response's `content-type`.
    fn content_type(&self) -> &'static str;

    /// Bytes the body starts with, known before the turn has produced anything. A streamed body sends
    /// them with the response head.
    fn opening(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    /// Appends the bytes for one event to `out` (none is fine).
    fn render(&mut self, event: &TurnEvent, out: &mut Vec<Bytes>);

    /// The response's status. A streamed body reads it before the turn starts; an answer reads it after
    /// `Finished`, so it can tell success from failure.
    fn status(&self) -> StatusCode {
        StatusCode::OK
    }
}

/// Where the pump puts each event.
pub(super) trait Sink: Send {
    fn accept(&mut self, event: &TurnEvent) -> impl Future<Output = Result<(), ClientGone>> + Send;
}

/// Renders each event and sends its bytes at once.
struct Streamed<R> {
    renderer: R,
    sender: BodySender,
    frames: Vec<Bytes>,
}

impl<R: Renderer> Sink for Streamed<R> {
    async fn accept(&mut self, event: &TurnEvent) -> Result<(), ClientGone> {
        self.renderer.render(event, &mut self.frames);
        for frame in self.frames.drain(..) {
            self.sender.send(frame).await?;
        }
        Ok(())
    }
}

/// Renders each event into one body, answered when the turn is over.
struct Collected<R> {
    renderer: R,
    body: Vec<Bytes>,
}

impl<R: Renderer> Sink for Collected<R> {
    async fn accept(&mut self, event: &TurnEvent) -> Result<(), ClientGone> {
        self.renderer.render(event, &mut self.body);
        Ok(())
    }
}

impl Pipeline {
    /// Starts the turn and answers at once with a body that carries the renderer's bytes as they are made.
    pub(crate) fn stream<R: Renderer>(self: &Arc<Self>, plan: Plan, renderer: R) -> Response<Body> {
        self.stream_until(plan, renderer, std::future::pending())
    }

    /// [`Pipeline::stream`] for a turn that someone other than its client may stop (A2A `tasks/cancel`):
    /// when `cancel` resolves the turn is dropped — every upstream request with it — and the renderer gets
    /// a `Finished` failing with `cancelled`.
    pub(crate) fn stream_until<R, C>(self: &Arc<Self>, plan: Plan, mut renderer: R, cancel: C) -> Response<Body>
    where
        R: Renderer,
        C: Future<Output = ()> + Send + 'static,
    {
        let content_type = renderer.content_type();
        let status = renderer.status();
        let (sender, body) = Body::channel_starting_with(renderer.opening());
        let pipeline = self.clone();
        let task = async move {
            let gone = sender.clone();
            let mut sink = Streamed { renderer, sender, frames: Vec::new() };
            pipeline.drive(plan, &mut sink, gone.closed(), cancel).await;
            // The caller has the whole answer; the body ends once the turn's spans are out (FC may freeze
            // the instance as soon as it does). Nothing to wait for without telemetry.
            crate::telemetry::turn_done().await;
            drop(sink);
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// Runs the turn to its end and answers with everything the renderer wrote, as one body.
    pub(crate) async fn answer<R: Renderer>(self: &Arc<Self>, plan: Plan, renderer: R) -> Response<Body> {
        self.answer_until(plan, renderer, std::future::pending()).await
    }

    /// [`Pipeline::answer`] for a turn that `cancel` may stop (see [`Pipeline::stream_until`]).
    pub(crate) async fn answer_until<R: Renderer>(
        self: &Arc<Self>,
        plan: Plan,
        renderer: R,
        cancel: impl Future<Output = ()>,
    ) -> Response<Body> {
        let mut sink = Collected { renderer, body: Vec::new() };
        self.drive(plan, &mut sink, std::future::pending(), cancel).await;
        let Collected { renderer, body } = sink;
        let whole = Bytes::from(body.concat());
        if !crate::telemetry::active() {
            return crate::respond::respond(renderer.status(), renderer.content_type(), whole);
        }
        // The answer goes out whole at once; only the body's end waits for the turn's spans to leave.
        let mut response = crate::respond::respond(renderer.status(), renderer.content_type(), Bytes::new());
        let (sender, streamed) = Body::channel_starting_with(vec![whole]);
        tokio::spawn(async move {
            crate::telemetry::turn_done().await;
            drop(sender);
        });
        *response.body_mut() = streamed;
        response
    }

    /// Runs the plan, giving every event to `sink`, and makes sure the sink sees exactly one `Finished`
    /// — unless the client is gone (`gone` resolved or a write failed), in which case the turn is dropped.
    /// `cancel` resolving drops the turn too, but the sink still hears how it ended.
    pub(super) async fn drive<S: Sink>(
        self: &Arc<Self>,
        plan: Plan,
        sink: &mut S,
        gone: impl Future<Output = ()>,
        cancel: impl Future<Output = ()>,
    ) {
        let model = self.llm.model_name(plan.turn.model.as_deref());
        let mut trace = TurnTrace::start(&plan, &self.agent_name, model);
        let scope = trace.span().scope();
        in_scope(scope, self.drive_traced(plan, sink, gone, cancel, &mut trace)).await;
        // Still open: the client went away and the turn was dropped.
        trace.end(None);
    }

    async fn drive_traced<S: Sink>(
        self: &Arc<Self>,
        mut plan: Plan,
        sink: &mut S,
        gone: impl Future<Output = ()>,
        cancel: impl Future<Output = ()>,
        trace: &mut TurnTrace,
    ) {
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_BUFFER);
        let drain = plan.drain.clone();
        let mut finished = false;
        let turn = async {
            // The session first: a store that cannot answer fails the turn before anything is spent on it.
            let mut memory = match self.recall(&mut plan).await {
                Ok(memory) => memory,
                Err(failure) => {
                    tracing::warn!(code = %failure.code, message = %failure.message, "turn failed before the model");
                    finished = true;
                    let event = TurnEvent::Finished(TurnEnd::Failed(failure));
                    trace.observe(&event);
                    return sink.accept(&event).await;
                }
            };
            let forward = async {
                while let Some(event) = events_rx.recv().await {
                    let event = match &mut memory {
                        Some(memory) => memory.record(event).await,
                        None => event,
                    };
                    finished |= matches!(event, TurnEvent::Finished(_));
                    trace.observe(&event);
                    sink.accept(&event).await?;
                }
                Ok::<_, ClientGone>(())
            };
            tokio::join!(self.run(plan, events_tx), forward).1
        };
        let cut_short = tokio::select! {
            forwarded = turn => match forwarded {
                Ok(()) => None,
                Err(ClientGone) => return,
            },
            // Client gone: dropping the turn here cancels every upstream request at once.
            () = gone => {
                tracing::info!("client disconnected; turn cancelled");
                return;
            }
            () = drain.cutoff() => Some(Failure::shutting_down()),
            () = cancel => {
                tracing::info!("turn cancelled on request");
                Some(Failure::cancelled())
            }
        };
        if !finished {
            // The turn's task ended without saying how: say so rather than stop silently.
            let failure =
                cut_short.unwrap_or_else(|| Failure::new(FailureCode::Internal, "the turn ended without a result"));
            let event = TurnEvent::Finished(TurnEnd::Failed(failure));
            trace.observe(&event);
            let _ = sink.accept(&event).await;
        }
    }
}
