//! Session memory around a turn: before it, the stored conversation is loaded and put before the request's
//! new messages (de-duplicated by message id, trimmed to the window); after it, the request's input and the
//! turn's completed output are appended — before the final event goes out, so a failed write is reported
//! in that event instead of a success. A failed turn stores nothing: the caller will send its message again.
//!
//! The pump records each event on its way to the renderer ([`Memory::record`]), in the same loop. It was
//! a relay between the agent and the pump: a second channel, each event handed on twice, and the body's
//! last frames split into more writes (16 `writev` per turn against 14 without a store).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use opentelemetry::KeyValue;
use tokio::time::Instant;

use super::Pipeline;
use super::approvals;
use super::plan::Plan;
use super::questions;
use super::record::Recorder;
use crate::acs::Credentials;
use crate::agent::{TurnEnd, TurnEvent};
use crate::clock::unix_now;
use crate::failure::{Failure, FailureCode, Fault};
use crate::identity::{Subject, jwt_subject};
use crate::rejection::Rejection;
use crate::sessions::lease::BUSY_POLL;
use crate::sessions::{Claim, LeaseSettings, Record, Session, SessionError, SessionKey, Store, StoredMessage, replay};
use crate::telemetry::{Span, SpanKind, names};

/// A turn's session: where to append, and what of the request's input is new.
pub(crate) struct Memory {
    store: Arc<dyn Store>,
    key: SessionKey,
    /// The Responses face's id for this turn's answer, noted in the store's response index on save.
    issues: Option<String>,
    input: Vec<Record>,
    recorder: Recorder,
    deadline: Instant,
    /// The session's run lease this turn holds (its token is the turn's id) until the append gives it
    /// back; `None` once released. Dropped while held (the caller left and the turn with it), it is
    /// released by a task of its own.
    lease: Option<Held>,
}

/// A lease held: whose, and for how long each renewal.
struct Held {
    token: String,
    settings: LeaseSettings,
}

/// What a store call does, as its span names it.
#[derive(Clone, Copy)]
enum StoreOp {
    Load,
    Append,
    Delete,
    Release,
}

impl StoreOp {
    /// `db.operation.name` and the span's name (static: no allocation when tracing is off).
    fn names(self) -> (&'static str, &'static str) {
        match self {
            StoreOp::Load => ("load", "session_store load"),
            StoreOp::Append => ("append", "session_store append"),
            StoreOp::Delete => ("delete", "session_store delete"),
            StoreOp::Release => ("release", "session_store release"),
        }
    }
}

/// A store call bounded by the turn's deadline, as a client span (`session_store {operation}`).
async fn bounded<T>(
    deadline: Instant,
    store: &dyn Store,
    operation: StoreOp,
    call: impl Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    let (operation, name) = operation.names();
    let span = Span::start(name, SpanKind::Client, || {
        vec![KeyValue::new(names::DB_SYSTEM_NAME, store.system()), KeyValue::new(names::DB_OPERATION_NAME, operation)]
    });
    let result = tokio::time::timeout_at(deadline, call).await.unwrap_or(Err(SessionError::Timeout));
    if let Err(error) = &result {
        // A store's errors never carry its password (sessions::SessionError).
        span.fail("session_error", &error.to_string());
    }
    span.end();
    result
}

impl Pipeline {
    /// The session's key for `subject`: the user the function trusts. A JWT's `sub` is used only after
    /// Agent Identity accepted the JWT (a cached WAT for it counts: it was minted from a verified token);
    /// a preset WAT verifies nothing, so JWT callers get no memory then. A caller without a user (an event
    /// naming none) is keyed by the session itself, as the seed does (`user_id := session_id`).
    async fn session_key(
        &self,
        subject: &Subject,
        role: Option<Credentials>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<SessionKey, Failure> {
        let user_id = match subject {
            Subject::UserId(user) => user.clone(),
            Subject::Agent => session_id.to_owned(),
            Subject::Jwt(jwt) => {
                if !self.tokens.verifies_jwts() {
                    return Err(Failure::new(
                        FailureCode::SessionError,
                        "session memory needs a verified user, and with AGENT_IDENTITY_WORKLOAD_ACCESS_TOKEN preset \
                         the bearer JWT is never verified",
                    ));
                }
                let credentials = self.credentials_for(role);
                self.tokens.token(subject, &credentials, deadline).await.map_err(|e| Failure::identity(&e))?;
                jwt_subject(jwt.expose()).ok_or_else(|| {
                    Failure::new(FailureCode::SessionError, "the bearer JWT has no sub claim to keep a session by")
                })?
            }
        };
        Ok(SessionKey { user_id, session_id: session_id.to_owned() })
    }

    /// `GET /sessions/{id}`: the caller's stored conversation, `None` when they have none by that id (or
    /// memory is off). A caller the function cannot key a session by is refused (403), as is a JWT
    /// Agent Identity did not accept (401).
    pub(crate) async fn read_session(
        &self,
        subject: &Subject,
        role: Option<Credentials>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<Option<Session>, Failure> {
        let Some(sessions) = &self.sessions else { return Ok(None) };
        let key = self.caller_key(subject, role, session_id, deadline).await?;
        let messages = bounded(deadline, sessions.store.as_ref(), StoreOp::Load, sessions.store.load(&key))
            .await
            .map_err(|e| Failure::session(&e))?;
        Ok(messages.map(|messages| Session { id: key.session_id, user_id: key.user_id, messages }))
    }

    /// `DELETE /sessions/{id}`: forgets the caller's session; false when they had none by that id.
    pub(crate) async fn forget_session(
        &self,
        subject: &Subject,
        role: Option<Credentials>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<bool, Failure> {
        let Some(sessions) = &self.sessions else { return Ok(false) };
        let key = self.caller_key(subject, role, session_id, deadline).await?;
        bounded(deadline, sessions.store.as_ref(), StoreOp::Delete, sessions.store.delete(&key))
            .await
            .map_err(|e| Failure::session(&e))
    }

    /// `POST /stop`: stops the turn running in the caller's session, wherever it runs; `None` when none
    /// runs there.
    pub(crate) async fn stop_session(
        &self,
        subject: &Subject,
        role: Option<Credentials>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<Option<super::Stopped>, Failure> {
        let key = self.caller_key(subject, role, session_id, deadline).await?;
        let Some(turn) = self.running_in(&key).await? else { return Ok(None) };
        self.cancel(&turn).await.map(Some)
    }

    /// [`Pipeline::session_key`] for a request that is not a turn: who may not have a session is the
    /// caller's part (403), a JWT refused by Agent Identity too (401).
    async fn caller_key(
        &self,
        subject: &Subject,
        role: Option<Credentials>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<SessionKey, Failure> {
        self.session_key(subject, role, session_id, deadline).await.map_err(callers_part)
    }

    /// Loads the plan's session into its conversation. `None`: no store, or the request names no session.
    /// A busy session is waited for `busy_wait` (`None`: `SESSION_BUSY_WAIT_SECS`), never past the deadline.
    /// A Responses `previous_response_id` is checked by the same claim (the response index), so a
    /// continued turn costs the store no more than another.
    pub(super) async fn recall(
        &self,
        plan: &mut Plan,
        busy_wait: Option<Duration>,
    ) -> Result<Option<Memory>, NotRecalled> {
        let continuing = plan.thread.continues.clone();
        let (Some(sessions), Some(session_id)) = (&self.sessions, plan.session_id.clone()) else {
            // An id that names no session (not ours), or no store to have issued it in.
            if let Some(response) = &continuing {
                return Err(NotRecalled::Refused(not_continuing(response)));
            }
            // Nowhere to keep an approval request: calls that need one are declined (the model is told).
            plan.turn.approvals.can_ask = false;
            plan.turn.approvals.can_question = false;
            if !plan.approval.questions.is_empty() {
                return Err(NotRecalled::Failed(
                    Failure::new(
                        FailureCode::AnswerInvalid,
                        "an answer to a tool's question needs the session it was asked in (name the session, and keep \
                         SESSION_STORE on)",
                    )
                    .with_fault(Fault::Request),
                ));
            }
            if !plan.approval.answers.is_empty() {
                return Err(NotRecalled::Failed(
                    Failure::new(
                        FailureCode::ApprovalInvalid,
                        "an approval answer needs the session its request was made in (name the session, and keep \
                         SESSION_STORE on)",
                    )
                    .with_fault(Fault::Request),
                ));
            }
            return Ok(None);
        };
        let deadline = plan.turn.deadline;
        let key = match self.session_key(&plan.subject, plan.role.clone(), &session_id, deadline).await {
            Ok(key) => key,
            // A session the face made up for a caller the function keeps none for: the turn runs without
            // one, as before (so no approval can be asked either).
            Err(_) if plan.thread.implicit_session => {
                plan.turn.approvals.can_ask = false;
                return Ok(None);
            }
            // A continued response is answered before anything streams, as OpenAI does: so is a caller
            // whose responses cannot be looked up.
            Err(failure) if continuing.is_some() => return Err(NotRecalled::Refused(callers_part(failure).into())),
            Err(failure) => return Err(NotRecalled::Failed(failure)),
        };
        let waiting = LeaseSettings { busy_wait: busy_wait.unwrap_or(sessions.lease.busy_wait), ..sessions.lease };
        let claim = Claiming { key: &key, turn: &plan.turn_id, continuing: continuing.as_deref(), lease: waiting };
        let stored = self.claim(sessions.store.as_ref(), claim, deadline).await?;
        let stored = stored.unwrap_or_default();
        // Requests the last turn left for the user are settled first: answered as the user says, the
        // others declined, so every call of the conversation has its output before the model sees it.
        let settled = match settle(&stored, plan) {
            Ok(settled) => settled,
            Err(failure) => {
                // Nothing runs: the lease just taken goes back before the refusal does.
                let release = sessions.store.release(&key, &plan.turn_id);
                let _ = bounded(deadline, sessions.store.as_ref(), StoreOp::Release, release).await;
                return Err(NotRecalled::Failed(failure));
            }
        };
        let records = std::mem::take(&mut plan.records);
        let sent = records.len();
        let mut known: HashSet<String> = stored.iter().map(|m| m.id.clone()).collect();
        let mut input: Vec<Record> = settled;
        input.extend(records.into_iter().filter(|m| known.insert(m.id.clone())));
        // A first turn whose input holds no repeat is exactly what the face mapped: leave it as it is.
        if !stored.is_empty() || input.len() != sent {
            let mut conversation = stored;
            conversation.extend(input.iter().filter_map(Record::message));
            let messages = replay::fit(replay::to_chat(&conversation), sessions.window);
            plan.turn.messages.truncate(1); // the system prompt the planner put first
            plan.turn.messages.extend(messages);
        }
        let recorder = Recorder::new(&self.agent_name);
        let lease = Some(Held { token: plan.turn_id.clone(), settings: sessions.lease });
        let issues = plan.thread.issues.clone();
        Ok(Some(Memory { store: sessions.store.clone(), key, issues, input, recorder, deadline, lease }))
    }

    /// Takes the session's lease for the turn and loads the session with it; a session busy with another
    /// turn is waited for up to `SESSION_BUSY_WAIT_SECS` (never past the deadline), then refused. A
    /// continued response the store's index does not hold for this user and session is refused at once.
    async fn claim(
        &self,
        store: &dyn Store,
        claim: Claiming<'_>,
        deadline: Instant,
    ) -> Result<Option<Vec<StoredMessage>>, NotRecalled> {
        let Claiming { key, turn, continuing, lease } = claim;
        let give_up = (Instant::now() + lease.busy_wait).min(deadline);
        loop {
            let claimed = bounded(deadline, store, StoreOp::Load, store.claim(key, turn, lease.ttl, continuing))
                .await
                .map_err(|e| match continuing {
                    Some(_) => NotRecalled::Refused(Failure::session(&e).into()),
                    None => NotRecalled::Failed(Failure::session(&e)),
                })?;
            match claimed {
                Claim::Held(stored) => return Ok(stored),
                Claim::NotIssued => {
                    return Err(NotRecalled::Refused(not_continuing(continuing.unwrap_or_default())));
                }
                Claim::Busy { holder } => {
                    if Instant::now() + BUSY_POLL > give_up {
                        tracing::info!(session = %key.session_id, holder = %holder, "session busy; turn refused");
                        let busy = Failure::session_busy(&key.session_id, lease.busy_wait);
                        return Err(NotRecalled::Refused(busy.into()));
                    }
                    tokio::time::sleep(BUSY_POLL).await;
                }
            }
        }
    }

    /// A request continuing a `previous_response_id` that is not run now (a background request being
    /// queued): the store's response index must hold that id for this user and the session it names, so
    /// an unknown, expired or another user's id is the 400 OpenAI answers (`previous_response_not_found`)
    /// at once rather than a turn failing later. A caller who cannot be keyed, or a store that fails, is
    /// refused too. A turn run now needs no such check: its lease claim makes it ([`Pipeline::recall`]).
    pub(crate) async fn check_continuation(&self, plan: Plan) -> Result<Plan, Rejection> {
        let Some(response) = plan.thread.continues.clone() else { return Ok(plan) };
        let (Some(sessions), Some(session_id)) = (&self.sessions, plan.session_id.clone()) else {
            return Err(not_continuing(&response).rejection);
        };
        let deadline = plan.turn.deadline;
        let key = self.caller_key(&plan.subject, plan.role.clone(), &session_id, deadline).await?;
        let store = sessions.store.as_ref();
        match bounded(deadline, store, StoreOp::Load, store.load_continuing(&key, &response)).await {
            Ok(Some(_)) => Ok(plan),
            Ok(None) => Err(not_continuing(&response).rejection),
            Err(error) => Err(Rejection::from(Failure::session(&error))),
        }
    }
}

/// What a turn's lease claim is for.
struct Claiming<'a> {
    key: &'a SessionKey,
    /// The claiming turn's id: the lease's token.
    turn: &'a str,
    /// The Responses `previous_response_id` the turn continues, checked by the claim.
    continuing: Option<&'a str>,
    lease: LeaseSettings,
}

/// A turn refused before anything is answered: the face answers `rejection` in its own shape; a turn no
/// client waits for (a background delivery) ends with `failure` instead.
pub(crate) struct Refused {
    pub(crate) rejection: Rejection,
    pub(crate) failure: Failure,
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Refused {
        Refused { rejection: Rejection::from(failure.clone()), failure }
    }
}

/// Why a turn's session was not recalled.
pub(super) enum NotRecalled {
    /// Before anything is answered: the session is busy, or the response `previous_response_id` names is
    /// not the caller's (or cannot be looked up).
    Refused(Refused),
    /// In the turn's own stream, as every other failure to load the session.
    Failed(Failure),
}

/// A session key failure of a request that is not (or not yet) a turn: who may not have a session is
/// the caller's part (403), a JWT refused by Agent Identity too (401).
fn callers_part(failure: Failure) -> Failure {
    match failure.code {
        FailureCode::SessionError => failure.with_fault(Fault::Permission),
        FailureCode::IdentityError => failure.with_fault(Fault::Credential),
        _ => failure,
    }
}

/// `previous_response_id` names no response of this user's: OpenAI's 400 for the face, the same text as a
/// failure for a background turn that finds it so when it runs.
fn not_continuing(response: &str) -> Refused {
    let failure = previous_response_failure(response);
    let rejection = Rejection::new(StatusCode::BAD_REQUEST, PREVIOUS_RESPONSE_NOT_FOUND, failure.message.clone());
    Refused { rejection, failure }
}

/// OpenAI's error code for a `previous_response_id` it does not have.
const PREVIOUS_RESPONSE_NOT_FOUND: &str = "previous_response_not_found";
/// Longest `previous_response_id` a refusal repeats (ours are at most 5 + 32 + 684 characters; what is
/// longer, or not plain ASCII, is no id of ours and is not echoed).
const MAX_ECHOED_RESPONSE_ID: usize = 800;

/// The response `previous_response_id` names is not this user's in this function's store.
fn previous_response_failure(response: &str) -> Failure {
    let shown = match response.len() <= MAX_ECHOED_RESPONSE_ID && response.bytes().all(|b| b.is_ascii_graphic()) {
        true => format!("{response:?}"),
        false => "(an id this function did not make)".to_owned(),
    };
    Failure::new(
        FailureCode::SessionError,
        format!(
            "previous_response_id: no response {shown} was found for this user (unknown, expired after \
             SESSION_TTL_SECS, issued to another user, or made with store: false)"
        ),
    )
    .with_fault(Fault::Request)
}

/// The records settling what the stored session waits for (approval requests, then tools' questions) with
/// this invocation's answers; the calls to run first go into the plan's turn. Refused: nothing settled.
fn settle(stored: &[StoredMessage], plan: &mut Plan) -> Result<Vec<Record>, Failure> {
    let mut settled = Vec::new();
    let waiting = approvals::pending(stored);
    if !waiting.is_empty() || !plan.approval.answers.is_empty() {
        let resolved = approvals::resolve(waiting, &plan.approval, unix_now())?;
        plan.turn.approvals.approved = resolved.approved;
        settled = resolved.records;
    }
    // Questions the last turn's tools asked, the same way: answered ones repeat their call.
    let asked = questions::pending(stored);
    if !asked.is_empty() || !plan.approval.questions.is_empty() {
        let resolved = questions::resolve(asked, &plan.approval.questions, unix_now())?;
        plan.turn.approvals.resumed = resolved.resumed;
        settled.extend(resolved.records);
    }
    Ok(settled)
}

impl Memory {
    /// Records `event` on its way to the caller. The final event is held until the session was written,
    /// and comes back saying so if it was not.
    pub(super) async fn record(&mut self, event: TurnEvent) -> TurnEvent {
        let TurnEvent::Finished(end) = event else {
            self.recorder.observe(&event);
            return event;
        };
        TurnEvent::Finished(self.save(end).await)
    }

    async fn save(&mut self, end: TurnEnd) -> TurnEnd {
        // A cancelled turn keeps what was said before the stop; any other failure stores nothing (the
        // caller will send its message again) and only gives the lease back.
        if matches!(&end, TurnEnd::Failed(failure) if failure.code != FailureCode::Cancelled) {
            if let Some(held) = self.lease.take() {
                let release = self.store.release(&self.key, &held.token);
                if let Err(error) = bounded(self.deadline, self.store.as_ref(), StoreOp::Release, release).await {
                    tracing::warn!(error = %error, "the session's lease was not released; it expires by itself");
                }
            }
            return end;
        }
        let mut messages = std::mem::take(&mut self.input);
        messages.extend(self.recorder.finish());
        let held = self.lease.take();
        let append = match &held {
            Some(held) => self.store.append_releasing(&self.key, messages, &held.token, self.issues.as_deref()),
            None => self.store.append(&self.key, messages),
        };
        match bounded(self.deadline, self.store.as_ref(), StoreOp::Append, append).await {
            Ok(()) => end,
            Err(error) => {
                tracing::warn!(error = %error, "the turn's messages were not saved to the session");
                TurnEnd::Failed(Failure::session_not_saved(&error))
            }
        }
    }
}

impl Memory {
    /// Renews the lease every third of its TTL for as long as it is polled (the turn runs); never ends.
    /// A lease found lost is logged: the turn goes on, and its append is refused (`Fenced`).
    pub(super) fn keep_leased(&self) -> impl Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let key = self.key.clone();
        let held = self.lease.as_ref().map(|held| (held.token.clone(), held.settings));
        async move {
            let Some((token, settings)) = held else { return std::future::pending().await };
            let mut every = tokio::time::interval(settings.renew_every());
            every.tick().await; // the first tick is now: the claim just set the TTL
            loop {
                every.tick().await;
                match store.renew(&key, &token, settings.ttl).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(session = %key.session_id, "the session's lease was lost mid-turn"),
                    Err(error) => tracing::warn!(error = %error, "the session's lease was not renewed"),
                }
            }
        }
    }
}

impl Drop for Memory {
    /// A turn dropped before it ended (its caller left) still gives its lease back, on a task of its own.
    fn drop(&mut self) {
        let Some(held) = self.lease.take() else { return };
        let (store, key) = (self.store.clone(), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let release = tokio::time::timeout(held.settings.ttl, store.release(&key, &held.token)).await;
                if !matches!(release, Ok(Ok(()))) {
                    tracing::warn!(session = %key.session_id, "the session's lease was not released; it expires by itself");
                }
            });
        }
    }
}
