//! The face contract: what a wire face gives the edge, and the one driver that runs every face's turn.
//!
//! A face is a parser (the body → the pipeline's [`Ask`], the caller's claim made inside it, plus what its
//! reply needs later), a reply maker (the planned turn → its renderer) and a refusal writer (its own
//! error shape). [`App::serve`] is the only code that reads a body, plans and starts a turn, so every
//! face reads, refuses and answers the same way; a face never sees the planner or the pipeline.
//!
//! The caller's claim flows one way: the face reads its user field and hands [`Caller::claim`]'s answer
//! to the planner inside the `Ask`; nothing goes back into the face's request after that.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fc_runtime::{Body, Context, Request, RequestExt};
use http::{HeaderMap, Response};

use super::App;
use super::routes::Route;
use crate::config::UserSource;
use crate::pipeline::{Ask, Journaled, Plan, Renderer, Submission, Ticket, UserClaim, http_claim};
use crate::rejection::Rejection;

/// One wire face at the edge.
pub(super) trait Face: Send + Sync {
    /// What the parser kept for the reply (its ids, what it echoes, streamed or not).
    type Request: Send;
    /// The renderer of a streamed reply.
    type Stream: Renderer;
    /// The renderer of a reply answered as one body.
    type Answer: Renderer;

    /// The body (already bounded by `MAX_REQUEST_BYTES`) → a turn to plan, or an answer that needs none
    /// (an A2A task lookup, a JSON-RPC error in the caller's version).
    fn read(&self, body: &[u8], caller: &Caller<'_>) -> Result<Parsed<Self::Request>, Rejection>;

    /// How the planned turn is answered: the plan settled the session and the model.
    fn reply(&self, request: Self::Request, plan: &Plan) -> Reply<Self::Stream, Self::Answer>;

    /// A refusal in the face's own error shape; `request` is what was read when the refusal came after it
    /// (the planner's), `None` before (the body, the parser).
    fn refuse(&self, rejection: Rejection, request: Option<&Self::Request>) -> Response<Body>;

    /// Headers a turn's response carries besides the renderer's content type.
    fn extra_headers(&self, _headers: &mut HeaderMap) {}

    /// Whether the request asks for background work (docs/background.md): queued, answered at once.
    fn background(&self, _request: &Self::Request) -> bool {
        false
    }

    /// The prefix of the face's background turn ids.
    fn ticket_prefix(&self) -> &'static str {
        "turn"
    }

    /// The face's object for a background turn just queued (what `POST` answers, `GET` shows until it runs).
    fn queued(&self, _request: &Self::Request, _ticket: &Ticket) -> String {
        String::new()
    }

    /// The body to keep for the invocation that runs a background turn, when it is not the body as sent (ids
    /// the parser generated, pinned so the second read makes the same ones).
    fn pinned(&self, _request: &Self::Request, _body: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// The answer to a request queued as `ticket` whose object is `summary` (what `queued` made).
    fn acknowledge(&self, _request: &Self::Request, _ticket: &Ticket, summary: String) -> Response<Body> {
        crate::respond::json(summary)
    }

    /// What the face must look up before the request is planned (an A2A message continuing a task another
    /// instance ran: the shared store says whether it waits for this answer). Most requests need nothing,
    /// and a face that needs nothing costs nothing.
    fn settle<'a>(&'a self, _request: &'a mut Self::Request) -> Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>> {
        None
    }

    /// Whether the queued answer is the turn's stream, followed from the journal, rather than the object.
    fn follows(&self, _request: &Self::Request) -> bool {
        false
    }

    /// The renderer that journals a background turn of this face; `None`: the face has none.
    fn recorded(&self, _request: Self::Request, _ticket: &Ticket) -> Option<Box<dyn Journaled>> {
        None
    }
}

/// What a face's parser made of a request.
// Not boxed although `Turn` is the largest by far: it is made once per request and taken apart at once, and
// boxing it would be an allocation on every turn to spare the rare answered request a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub(super) enum Parsed<R> {
    /// A turn: what to plan, and what the reply needs.
    Turn(Ask, R),
    /// Answered without a turn.
    Answered(Response<Body>),
    /// An async invocation delivering the background turn of this id.
    Deliver(String),
    /// Answered without a turn, once something else has answered (the shared store: an A2A task
    /// another instance ran).
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

/// A future that, when it resolves, stops the turn (A2A `tasks/cancel`).
pub(super) type Cancel = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a planned turn is answered.
pub(super) struct Reply<S, A> {
    how: How<S, A>,
    until: Option<Cancel>,
}

enum How<S, A> {
    Stream(S),
    Answer(A),
}

impl<S, A> Reply<S, A> {
    /// The body streams as the turn runs.
    pub(super) fn stream(renderer: S) -> Self {
        Reply { how: How::Stream(renderer), until: None }
    }

    /// One body when the turn is over.
    pub(super) fn answer(renderer: A) -> Self {
        Reply { how: How::Answer(renderer), until: None }
    }

    /// The turn may also be stopped by someone other than its client.
    pub(super) fn until(self, cancel: Cancel) -> Self {
        Reply { until: Some(cancel), ..self }
    }
}

/// What a face may know about who is calling: the request's headers, the configured user source and FC's
/// context. The face names the body's user; the claim is made here, once.
pub(super) struct Caller<'a> {
    headers: &'a HeaderMap,
    source: &'a UserSource,
    context: &'a Context,
    /// The body is a background turn's stored request, read again where FC delivered it: checked when it
    /// was queued, and the headers are FC's, not the caller's.
    delivered: bool,
}

impl<'a> Caller<'a> {
    pub(super) fn new(headers: &'a HeaderMap, source: &'a UserSource, context: &'a Context) -> Caller<'a> {
        Caller { headers, source, context, delivered: false }
    }

    /// The same, reading a stored request an async invocation delivered.
    pub(super) fn delivering(self) -> Caller<'a> {
        Caller { delivered: true, ..self }
    }
}

impl Caller<'_> {
    /// The claim of an HTTP caller (`AGENT_IDENTITY_USER_SOURCE` over the headers and `named`, the user the
    /// body names after the face's own fallbacks).
    pub(super) fn claim(&self, named: Option<&str>) -> UserClaim {
        http_claim(self.source, self.headers, named)
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// FC's id of this invocation.
    pub(super) fn request_id(&self) -> &str {
        self.context.request_id()
    }

    /// Whether the body is a stored background request being run (see [`Caller::delivering`]).
    pub(super) fn delivered(&self) -> bool {
        self.delivered
    }

    /// When this invocation must have answered.
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.context.deadline()
    }
}

impl App {
    /// Read → parse (the claim inside) → plan → stream or answer; every refusal in `face`'s shape.
    /// `route` names the face (its key in the index: `process`, `responses`, `events`, …) for telemetry.
    pub(super) async fn serve<F: Face>(
        self: &Arc<Self>,
        face: &F,
        route: &Route,
        mut request: Request,
    ) -> Response<Body> {
        let body = match super::read_body(&mut request, self.max_request_bytes).await {
            Ok(body) => body,
            Err(rejection) => return face.refuse(rejection, None),
        };
        let caller = Caller::new(request.headers(), &self.user_source, request.fc_context());
        let (ask, mut read) = match face.read(&body, &caller) {
            Ok(Parsed::Turn(ask, read)) => (ask, read),
            Ok(Parsed::Answered(response)) => return response,
            Ok(Parsed::Deliver(id)) => return self.deliver(&id, &request).await,
            Ok(Parsed::Later(answer)) => return answer.await,
            Err(rejection) => return face.refuse(rejection, None),
        };
        if let Some(settling) = face.settle(&mut read) {
            settling.await;
        }
        // A background turn keeps the caller's claim for the invocation that will run it.
        let claim = face.background(&read).then(|| ask.user.clone());
        let platform = super::platform(request.fc_context(), route.name);
        // Only a background turn needs these after planning: a foreground turn copies nothing more.
        let queueing = claim.as_ref().map(|_| (platform.role.clone(), platform.deadline));
        let plan = match self.planner.plan(ask, platform) {
            Ok(plan) => plan,
            Err(rejection) => return face.refuse(rejection, Some(&read)),
        };
        if let (Some(claim), Some((role, deadline))) = (claim, queueing) {
            // A Responses `previous_response_id` this user was not issued is refused before it is queued
            // (a turn run now has it checked by its session's claim, in `begin`).
            let plan = match self.pipeline.check_continuation(plan).await {
                Ok(plan) => plan,
                Err(rejection) => return face.refuse(rejection, Some(&read)),
            };
            // Planned only to refuse now what could never run; the plan itself is made again when it runs.
            drop(plan);
            let ticket = match Ticket::new(face.ticket_prefix()) {
                Ok(ticket) => ticket,
                Err(failure) => return face.refuse(Rejection::upstream(failure.message), Some(&read)),
            };
            let summary = face.queued(&read, &ticket);
            let pinned = face.pinned(&read, &body);
            let submission = Submission {
                ticket: &ticket,
                face: route.name,
                body: pinned.as_deref().unwrap_or(&body),
                claim: &claim,
                summary: summary.clone(),
                role,
                deadline,
            };
            if let Err(rejection) = self.pipeline.submit(submission).await {
                return face.refuse(rejection, Some(&read));
            }
            return match face.follows(&read) {
                true => self.follow(ticket.id, 0, deadline),
                false => face.acknowledge(&read, &ticket, summary),
            };
        }
        // The session is claimed before any byte is answered: a busy one, or a `previous_response_id` this
        // user was not issued, is refused in the face's shape.
        let begun = match self.pipeline.begin(plan).await {
            Ok(begun) => begun,
            Err(refused) => return face.refuse(refused.rejection, Some(&read)),
        };
        let Reply { how, until } = face.reply(read, begun.plan());
        let mut response = match (how, until) {
            (How::Stream(renderer), None) => self.pipeline.stream(begun, renderer),
            (How::Stream(renderer), Some(cancel)) => self.pipeline.stream_until(begun, renderer, cancel),
            (How::Answer(renderer), None) => self.pipeline.answer(begun, renderer).await,
            (How::Answer(renderer), Some(cancel)) => self.pipeline.answer_until(begun, renderer, cancel).await,
        };
        face.extra_headers(response.headers_mut());
        response
    }
}
