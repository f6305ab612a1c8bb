//! The one pump: runs a planned turn and hands its events, in order, to a wire face's [`Renderer`].
//! It owns every way a turn can end — the agent's own `Finished`, the client going away (the turn is
//! dropped, which cancels every upstream request at once), a shutdown cutting it off, or the turn's task
//! ending without saying how — so no face writes its own ending.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::Pipeline;
use super::memory::{Memory, NotRecalled, Refused};
use super::plan::Plan;
use super::trace::TurnTrace;
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::{Failure, FailureCode};
use crate::telemetry::in_scope;
use fc_runtime::{Body, BodySender, ClientGone};

/// Something that resolves when a turn must stop (its client gone, a cancel), type-erased (see
/// [`Streamed`]).
type Signal<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

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

    /// Appends the face's keep-alive, sent when a streamed body has been quiet for
    /// `STREAM_HEARTBEAT_SECS` (a tool working, a model thinking): proxies, load balancers and browsers
    /// cut idle streams. An SSE comment line unless the protocol has something better; every SSE client
    /// skips comments.
    fn heartbeat(&mut self, out: &mut Vec<Bytes>) {
        out.push(Bytes::from_static(SSE_KEEP_ALIVE));
    }
}

/// An SSE comment line (the spec's way to keep a connection open; `sse-starlette` sends `: ping`).
pub(crate) const SSE_KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Where the pump puts each event.
pub(super) trait Sink: Send {
    fn accept(&mut self, event: &TurnEvent) -> impl Future<Output = Result<(), ClientGone>> + Send;

    /// When the body has been quiet long enough that a keep-alive is due; `None`: never (an answer sent
    /// whole has no bytes to keep a connection alive with).
    fn quiet_until(&self) -> Option<Instant> {
        None
    }

    /// Sends the face's keep-alive.
    fn keep_alive(&mut self) -> impl Future<Output = Result<(), ClientGone>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Renders each event and sends its bytes at once.
///
/// The pump's types hold the renderer and the stop signals type-erased (`Box<dyn Renderer>`, [`Signal`]):
/// generic, the whole turn loop was compiled once per face, sink and stop signal (25 copies of ~6 kB);
/// erased, once per sink. One virtual call per event and two small boxes per turn are the price.
struct Streamed {
    renderer: Box<dyn Renderer>,
    sender: BodySender,
    frames: Vec<Bytes>,
    /// `STREAM_HEARTBEAT_SECS`: a keep-alive after this long without a byte.
    heartbeat: Option<Duration>,
    last_sent: Instant,
}

impl Streamed {
    async fn flush(&mut self) -> Result<(), ClientGone> {
        if !self.frames.is_empty() {
            self.last_sent = Instant::now();
        }
        for frame in self.frames.drain(..) {
            self.sender.send(frame).await?;
        }
        Ok(())
    }
}

impl Sink for Streamed {
    async fn accept(&mut self, event: &TurnEvent) -> Result<(), ClientGone> {
        self.renderer.render(event, &mut self.frames);
        self.flush().await
    }

    fn quiet_until(&self) -> Option<Instant> {
        self.heartbeat.map(|every| self.last_sent + every)
    }

    async fn keep_alive(&mut self) -> Result<(), ClientGone> {
        self.renderer.heartbeat(&mut self.frames);
        // A renderer with nothing to send must not be asked again at once.
        self.last_sent = Instant::now();
        self.flush().await
    }
}

/// Renders each event into one body, answered when the turn is over.
struct Collected {
    renderer: Box<dyn Renderer>,
    body: Vec<Bytes>,
}

impl Sink for Collected {
    async fn accept(&mut self, event: &TurnEvent) -> Result<(), ClientGone> {
        self.renderer.render(event, &mut self.body);
        Ok(())
    }
}

/// A planned turn whose session is claimed and loaded (or whose failure to load waits to be reported in
/// the turn's own stream), its root span started: what [`Pipeline::begin`] hands the face.
pub(crate) struct Begun {
    plan: Plan,
    trace: TurnTrace,
    memory: Result<Option<Memory>, Failure>,
}

impl Begun {
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Pipeline {
    /// Starts the turn's trace and claims and loads its session, before any byte is answered: a session
    /// busy with another turn is refused here (`session_busy`, in the face's shape), and so is a Responses
    /// `previous_response_id` that is not the caller's (`previous_response_not_found`, checked by the same
    /// claim); every other failure to load goes into the turn's own stream as before. A turn without a
    /// session costs nothing here.
    pub(crate) async fn begin(self: &Arc<Self>, plan: Plan) -> Result<Begun, Refused> {
        self.begin_waiting(plan, None).await
    }

    /// [`Pipeline::begin`] waiting `busy_wait` for a busy session (`None`: `SESSION_BUSY_WAIT_SECS`).
    pub(super) async fn begin_waiting(
        self: &Arc<Self>,
        mut plan: Plan,
        busy_wait: Option<Duration>,
    ) -> Result<Begun, Refused> {
        let model = self.llm.model_name(plan.turn.model.as_deref());
        let mut trace = TurnTrace::start(&plan, &self.agent_name, model);
        let scope = trace.span().scope();
        let memory = match in_scope(scope, self.recall(&mut plan, busy_wait)).await {
            Ok(memory) => Ok(memory),
            Err(NotRecalled::Failed(failure)) => Err(failure),
            Err(NotRecalled::Refused(refused)) => {
                trace.observe(&TurnEvent::Finished(TurnEnd::Failed(refused.failure.clone())));
                return Err(refused);
            }
        };
        Ok(Begun { plan, trace, memory })
    }

    /// Starts the turn and answers at once with a body that carries the renderer's bytes as they are made.
    pub(crate) fn stream<R: Renderer>(self: &Arc<Self>, begun: Begun, renderer: R) -> Response<Body> {
        self.stream_erased(begun, Box::new(renderer), Box::pin(std::future::pending()))
    }

    /// [`Pipeline::stream`] for a turn that someone other than its client may stop (A2A `tasks/cancel`):
    /// when `cancel` resolves the turn is dropped — every upstream request with it — its session keeps
    /// what was said so far, and the renderer gets a `Finished` failing with `cancelled`.
    pub(crate) fn stream_until<R, C>(self: &Arc<Self>, begun: Begun, renderer: R, cancel: C) -> Response<Body>
    where
        R: Renderer,
        C: Future<Output = ()> + Send + 'static,
    {
        self.stream_erased(begun, Box::new(renderer), Box::pin(cancel))
    }

    fn stream_erased(
        self: &Arc<Self>,
        begun: Begun,
        mut renderer: Box<dyn Renderer>,
        cancel: Signal<'static>,
    ) -> Response<Body> {
        let content_type = renderer.content_type();
        let status = renderer.status();
        let (sender, body) = Body::channel_starting_with(renderer.opening());
        let pipeline = self.clone();
        let heartbeat = self.heartbeat;
        let task = async move {
            let gone = sender.clone();
            let mut sink = Streamed { renderer, sender, frames: Vec::new(), heartbeat, last_sent: Instant::now() };
            let cancel = pipeline.turns.register(&begun.plan.turn_id, cancel);
            pipeline.drive(begun, &mut sink, Box::pin(gone.closed()), Box::pin(cancel)).await;
            // The caller has the whole answer; the body ends once the turn's spans are out (FC may freeze
            // the instance as soon as it does). Nothing to wait for without telemetry.
            crate::telemetry::turn_done().await;
            drop(sink);
        };
        // Boxed: the turn's future is large (every await point of the loop, the sink, the trace), and tokio
        // copies a task's whole stage each time it moves it or marks it finished; boxed, that is a pointer.
        tokio::spawn(Box::pin(task).instrument(tracing::Span::current()));
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// Runs the turn to its end and answers with everything the renderer wrote, as one body.
    pub(crate) async fn answer<R: Renderer>(self: &Arc<Self>, begun: Begun, renderer: R) -> Response<Body> {
        self.answer_erased(begun, Box::new(renderer), Box::pin(std::future::pending())).await
    }

    /// [`Pipeline::answer`] for a turn that `cancel` may stop (see [`Pipeline::stream_until`]).
    pub(crate) async fn answer_until<R: Renderer>(
        self: &Arc<Self>,
        begun: Begun,
        renderer: R,
        cancel: impl Future<Output = ()> + Send + 'static,
    ) -> Response<Body> {
        self.answer_erased(begun, Box::new(renderer), Box::pin(cancel)).await
    }

    async fn answer_erased(
        self: &Arc<Self>,
        begun: Begun,
        renderer: Box<dyn Renderer>,
        cancel: Signal<'static>,
    ) -> Response<Body> {
        let mut sink = Collected { renderer, body: Vec::new() };
        let cancel = self.turns.register(&begun.plan.turn_id, cancel);
        self.drive(begun, &mut sink, Box::pin(std::future::pending()), Box::pin(cancel)).await;
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

    /// Runs the begun turn, giving every event to `sink`, and makes sure the sink sees exactly one
    /// `Finished` — unless the client is gone (`gone` resolved or a write failed), in which case the turn
    /// is dropped. `cancel` resolving stops the turn too, but it ends through the session (which keeps
    /// what was said so far) and the sink hears how it ended.
    pub(super) async fn drive<S: Sink>(
        self: &Arc<Self>,
        begun: Begun,
        sink: &mut S,
        gone: Signal<'_>,
        cancel: Signal<'_>,
    ) {
        let Begun { plan, mut trace, memory } = begun;
        let scope = trace.span().scope();
        in_scope(scope, self.drive_traced(plan, memory, sink, gone, cancel, &mut trace)).await;
        // Still open: the client went away and the turn was dropped.
        trace.end(None);
    }

    async fn drive_traced<S: Sink>(
        self: &Arc<Self>,
        plan: Plan,
        memory: Result<Option<Memory>, Failure>,
        sink: &mut S,
        gone: Signal<'_>,
        cancel: Signal<'_>,
        trace: &mut TurnTrace,
    ) {
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_BUFFER);
        let drain = plan.drain.clone();
        let mut finished = false;
        // The session first: a store that cannot answer fails the turn before anything is spent on it.
        let mut memory = match memory {
            Ok(memory) => memory,
            Err(failure) => {
                tracing::warn!(code = %failure.code, message = %failure.message, "turn failed before the model");
                let event = TurnEvent::Finished(TurnEnd::Failed(failure));
                trace.observe(&event);
                let _ = sink.accept(&event).await;
                return;
            }
        };
        let leased = match &memory {
            Some(memory) => Either::Left(memory.keep_leased()),
            None => Either::Right(std::future::pending::<()>()),
        };
        let turn = async {
            let stopper = events_tx.clone();
            let run = async move {
                tokio::select! {
                    () = self.run(plan, events_tx) => {}
                    () = cancel => {
                        // The agent is dropped here (every upstream request with it); the turn ends
                        // through the session, which keeps what was said so far.
                        tracing::info!("turn cancelled on request");
                        let _ = stopper.send(TurnEvent::Finished(TurnEnd::Failed(Failure::cancelled()))).await;
                    }
                }
            };
            let forward = async {
                // One timer per turn, moved only when it rings (never per event): when it rings the
                // stream may have been busy since, so the keep-alive goes only if it really was quiet.
                let mut alarm = sink.quiet_until().map(|at| Box::pin(tokio::time::sleep_until(at)));
                loop {
                    let event = tokio::select! {
                        // Events first: the alarm is polled (and its timer entry touched) only when no
                        // event is waiting, and no random branch order is drawn per event.
                        biased;
                        event = events_rx.recv() => event,
                        () = ring(&mut alarm) => {
                            if sink.quiet_until().is_some_and(|due| due <= Instant::now()) {
                                sink.keep_alive().await?;
                            }
                            if let (Some(alarm), Some(due)) = (alarm.as_mut(), sink.quiet_until()) {
                                alarm.as_mut().reset(due);
                            }
                            continue;
                        }
                    };
                    let Some(event) = event else { break };
                    let event = match &mut memory {
                        Some(memory) => memory.record(event).await,
                        None => event,
                    };
                    let last = matches!(event, TurnEvent::Finished(_));
                    finished |= last;
                    trace.observe(&event);
                    sink.accept(&event).await?;
                    if last {
                        // Exactly one ending: a cancel racing the agent's own end adds none.
                        break;
                    }
                }
                Ok::<_, ClientGone>(())
            };
            tokio::join!(run, forward).1
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
            () = leased => None,
        };
        if !finished {
            // The turn's task ended without saying how: say so rather than stop silently.
            let failure =
                cut_short.unwrap_or_else(|| Failure::new(FailureCode::Internal, "the turn ended without a result"));
            let event = TurnEvent::Finished(TurnEnd::Failed(failure));
            let event = match &mut memory {
                Some(memory) => memory.record(event).await,
                None => event,
            };
            trace.observe(&event);
            let _ = sink.accept(&event).await;
        }
    }
}

/// Resolves when the alarm rings; never without one.
async fn ring(alarm: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match alarm {
        Some(alarm) => alarm.as_mut().await,
        None => std::future::pending().await,
    }
}
