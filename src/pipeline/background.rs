//! Background turns (docs/background.md): queued in the journal and handed to FC's asynchronous invocation
//! of this function; run when FC delivers them to `/invoke`, every frame journaled so a client can collect
//! the turn later or resume its stream; stopped through the journal from any instance.
//!
//! Nothing here runs for a foreground turn: the journal is touched only by a request that asked for
//! background work, the async invocation that runs it, and the clients that read or cancel it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::caller::UserClaim;
use super::memory::Refused;
use super::plan::Plan;
use super::pump::{Renderer, Sink};
use super::{Pipeline, PipelineError};
use crate::acs::Credentials;
use crate::acs::fc::{FcClient, MAX_ASYNC_EVENT_BYTES};
use crate::agent::{TurnEnd, TurnEvent};
use crate::config::{BackgroundSettings, Config};
use crate::failure::{Failure, FailureCode};
use crate::rejection::Rejection;
use crate::sessions::journal::{Pending, TurnOutcome, TurnRead, TurnRecord, TurnStatus};
use crate::sessions::{Journal, SessionError};
use fc_runtime::ClientGone;

/// The key of an async invocation's event that names the background turn it runs.
pub(crate) const EVENT_KEY: &str = "background_turn";

/// Frames wait at most this long before they are journaled (a resuming reader sees them this late), so a
/// turn streaming tokens costs the store a write per interval, not one per token.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often a running background turn asks the journal whether someone cancelled it while it has nothing
/// to write (a tool working for minutes); between, every write answers the same question for free.
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// A renderer whose frames are journaled, and that says how the turn ended in its face's own object.
pub(crate) trait Journaled: Renderer {
    /// After `Finished`: the final status and the face's final object.
    fn outcome(&self) -> Option<TurnOutcome>;
}

/// A background turn's id and when it was queued.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) id: String,
    pub(crate) created_at: u64,
}

impl Ticket {
    /// A new id: `prefix` and 128 bits from the kernel. Whoever knows the id can read and cancel the turn,
    /// so unlike the other ids (`crate::ids`) it must not be guessable.
    pub(crate) fn new(prefix: &str) -> Result<Ticket, Failure> {
        let mut bytes = [0u8; 16];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Failure::new(FailureCode::Internal, "no randomness for a background turn's id"))?;
        Ok(Ticket { id: format!("{prefix}_{}", hex::encode(bytes)), created_at: crate::clock::unix_now() })
    }
}

/// Where background turns are queued: the function's own FC endpoint and name.
pub(crate) struct Background {
    fc: Option<FcClient>,
    settings: BackgroundSettings,
}

impl Background {
    pub(crate) fn new(config: &Config) -> Result<Background, PipelineError> {
        let fc = match &config.background.endpoint {
            Some(endpoint) => {
                let http = crate::upstream::client_builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| PipelineError::HttpClient(e.to_string()))?;
                Some(FcClient::new(endpoint.clone(), http))
            }
            None => None,
        };
        Ok(Background { fc, settings: config.background.clone() })
    }
}

/// What a face hands over to queue a background turn.
pub(crate) struct Submission<'a> {
    pub(crate) ticket: &'a Ticket,
    /// The route that took it (`responses`, `process_task`): the same face runs it.
    pub(crate) face: &'static str,
    pub(crate) body: &'a [u8],
    pub(crate) claim: &'a UserClaim,
    /// The face's object for the queued turn.
    pub(crate) summary: String,
    pub(crate) role: Option<Credentials>,
    pub(crate) deadline: Instant,
}

impl Pipeline {
    fn journal(&self) -> Result<&Arc<dyn Journal>, Rejection> {
        self.sessions.as_ref().map(|memory| &memory.journal).ok_or_else(|| {
            Rejection::invalid_request(
                "background: needs a store to keep the turn in (SESSION_STORE is none)".to_owned(),
            )
        })
    }

    /// Journals the queued turn and hands it to FC's asynchronous invocation. A refusal when background
    /// work cannot be queued here (no store, no FC endpoint) or FC refused it.
    pub(crate) async fn submit(&self, submission: Submission<'_>) -> Result<(), Rejection> {
        let journal = self.journal()?;
        let background = &self.background;
        let (Some(fc), Some(function)) = (&background.fc, &background.settings.function_name) else {
            return Err(Rejection::invalid_request(
                "background: FC's asynchronous invocation is not configured (BACKGROUND_FC_ENDPOINT or \
                 FC_ACCOUNT_ID and FC_REGION, and BACKGROUND_FUNCTION_NAME or FC_FUNCTION_NAME)"
                    .to_owned(),
            ));
        };
        let Submission { ticket, face, body, claim, summary, role, deadline } = submission;
        let body =
            std::str::from_utf8(body).map_err(|_| Rejection::invalid_request("body: not UTF-8".to_owned()))?.to_owned();
        let record = TurnRecord {
            face: face.to_owned(),
            status: TurnStatus::Queued,
            created_at: ticket.created_at,
            summary,
            result: None,
            cancel: false,
            pending: Some(Pending {
                face: face.to_owned(),
                created_at: ticket.created_at,
                body,
                claim: claim.to_stored(),
            }),
        };
        journal.open(&ticket.id, &record).await.map_err(store_refusal)?;
        // The event names the turn and nothing else: the request (and the caller's JWT) stay in the store,
        // out of FC's task records and far under the async event limit.
        let event = serde_json::json!({ EVENT_KEY: ticket.id }).to_string();
        debug_assert!(event.len() < MAX_ASYNC_EVENT_BYTES);
        let credentials = self.credentials_for(role);
        let provided = crate::acs::CredentialsProvider::provide(&credentials).await;
        let queued = match provided {
            Ok(credentials) => fc
                .invoke_async(
                    function,
                    background.settings.qualifier.as_deref(),
                    event.as_bytes(),
                    &credentials,
                    deadline,
                )
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(format!("no credentials to call FC with: {error}")),
        };
        match queued {
            Ok(request_id) => {
                tracing::info!(turn = %ticket.id, fc_request_id = %request_id, "background turn queued");
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(turn = %ticket.id, reason = %reason, "FC did not queue the background turn");
                // Nothing will run it: the record says so rather than stay queued until its TTL.
                let _ = journal.cancel(&ticket.id).await;
                Err(Rejection::upstream(format!("background: FC did not queue the turn: {reason}")))
            }
        }
    }

    /// The async invocation's side: takes the queued turn (once, however often FC delivers it). `None`
    /// when it is not queued (already run, running, cancelled, expired).
    pub(crate) async fn take_background(&self, id: &str) -> Result<Option<(Pending, UserClaim)>, Failure> {
        let journal = self.journal().map_err(|r| Failure::new(FailureCode::SessionError, r.message))?;
        let pending = journal.start(id).await.map_err(|e| Failure::new(FailureCode::SessionError, e.to_string()))?;
        Ok(pending.map(|pending| {
            let claim = UserClaim::from_stored(&pending.claim);
            (pending, claim)
        }))
    }

    /// Ends a taken turn that cannot run (its stored request no longer plans) with `failure`'s object.
    pub(crate) async fn fail_background(&self, id: &str, result: String) {
        if let Ok(journal) = self.journal() {
            let outcome = TurnOutcome { status: TurnStatus::Failed, result };
            if let Err(error) = journal.append(id, Vec::new(), Some(outcome)).await {
                tracing::warn!(turn = %id, error = %error, "a background turn's failure was not journaled");
            }
        }
    }

    /// Runs a taken background turn to its end, journaling every frame `renderer` makes; no client waits
    /// on it, so only its deadline, a shutdown or a cancel (through the journal) stop it.
    pub(crate) async fn record(self: &Arc<Self>, id: &str, mut plan: Plan, renderer: Box<dyn Journaled>) -> TurnStatus {
        // The ticket is the turn's id: its lease token and the address the turn registry stops, so a
        // cancel (or `POST /stop`) on any instance reaches it at once; the journal flag stays the fallback.
        plan.turn_id = id.to_owned();
        let Ok(journal) = self.journal().cloned() else { return TurnStatus::Failed };
        let stop = Arc::new(Notify::new());
        let mut sink = JournalSink {
            renderer,
            journal: journal.clone(),
            id: id.to_owned(),
            waiting: Vec::new(),
            flushed: Instant::now(),
            stop: stop.clone(),
            status: TurnStatus::InProgress,
        };
        let mut opening = Vec::new();
        for bytes in sink.renderer.opening() {
            split_frames(&bytes, &mut opening);
        }
        sink.waiting = opening;
        let mut cancel = std::pin::pin!(self.turns.register(id, cancel_of(journal, id.to_owned(), stop)));
        // A background turn is a turn of its session: it takes the session's lease like any other. No
        // client waits on it, and FC delivering it again would find it taken, so a busy session is waited
        // for up to the turn's deadline rather than refused (docs/design-notes.md, "Background turns and
        // the session lease"); a cancel meanwhile ends it before it starts.
        let wait = plan.turn.deadline.saturating_duration_since(Instant::now());
        let begun = tokio::select! {
            begun = self.begin_waiting(plan, Some(wait)) => begun,
            () = &mut cancel => Err(Failure::cancelled().into()),
        };
        match begun {
            Ok(begun) => self.drive(begun, &mut sink, Box::pin(std::future::pending()), Box::pin(cancel)).await,
            Err(Refused { failure, .. }) => {
                tracing::info!(turn = %id, code = %failure.code, "a background turn ended before it began");
                let _ = sink.accept(&TurnEvent::Finished(TurnEnd::Failed(failure))).await;
            }
        }
        sink.status
    }

    /// Whether background turns can be kept here (a session store): a lookup of one is worth making.
    pub(crate) fn journaling(&self) -> bool {
        self.sessions.is_some()
    }

    /// Whether a background turn can be queued here: a store to keep it in, and FC's async invocation.
    pub(crate) fn queues_background(&self) -> bool {
        self.journaling() && self.background.fc.is_some() && self.background.settings.function_name.is_some()
    }

    /// A journaled turn: its record and its frames from `from` on (`None`: unknown or expired).
    pub(crate) async fn read_background(&self, id: &str, from: usize) -> Result<Option<TurnRead>, Rejection> {
        self.journal()?.read(id, from).await.map_err(store_refusal)
    }

    /// `STREAM_HEARTBEAT_SECS`: how long a journal-served stream may be quiet before its keep-alive.
    pub(crate) fn heartbeat(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// Resolves when the journaled turn may have changed.
    pub(crate) async fn background_changed(&self, id: &str) {
        if let Ok(journal) = self.journal() {
            journal.changed(id).await;
        }
    }

    /// Asks the background turn to stop (a queued one never runs); its record afterwards.
    pub(crate) async fn cancel_background(&self, id: &str) -> Result<Option<TurnRecord>, Rejection> {
        let record = self.journal()?.cancel(id).await.map_err(store_refusal)?;
        // Running somewhere: stopped now through the turn registry (here, or the store's stop channel),
        // not at its next journal write or look; the flag just set still stops it if the stop is lost.
        if record.as_ref().is_some_and(|record| record.status == TurnStatus::InProgress)
            && let Err(failure) = self.cancel(id).await
        {
            tracing::warn!(turn = %id, message = %failure.message, "the stop was not sent; the journal flag stops it");
        }
        Ok(record)
    }
}

fn store_refusal(error: SessionError) -> Rejection {
    Rejection::upstream(format!("the session store: {error}"))
}

/// Resolves when the turn should stop: the sink heard of a cancel with a write, or a look at the journal
/// while the turn was quiet found one.
async fn cancel_of(journal: Arc<dyn Journal>, id: String, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = tokio::time::sleep(CANCEL_POLL) => {
                if let Ok(Some((record, _))) = journal.read(&id, usize::MAX).await
                    && record.cancel
                {
                    return;
                }
            }
        }
    }
}

/// Splits rendered bytes into SSE frames (each ends with its blank line), appended to `out`.
fn split_frames(bytes: &Bytes, out: &mut Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let mut rest: &str = &text;
    while let Some(end) = rest.find("\n\n") {
        out.push(rest[..end + 2].to_owned());
        rest = &rest[end + 2..];
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
}

/// The pump's sink for a background turn: frames go to the journal in batches.
struct JournalSink {
    renderer: Box<dyn Journaled>,
    journal: Arc<dyn Journal>,
    id: String,
    /// Frames not yet journaled.
    waiting: Vec<String>,
    flushed: Instant,
    stop: Arc<Notify>,
    status: TurnStatus,
}

impl JournalSink {
    async fn flush(&mut self, outcome: Option<TurnOutcome>) {
        let frames = std::mem::take(&mut self.waiting);
        self.flushed = Instant::now();
        match self.journal.append(&self.id, frames, outcome).await {
            Ok(true) => self.stop.notify_one(),
            Ok(false) => {}
            // The turn goes on (its session memory is written apart); a reader sees the gap end at its end.
            Err(error) => tracing::warn!(turn = %self.id, error = %error, "background frames not journaled"),
        }
    }
}

impl Sink for JournalSink {
    async fn accept(&mut self, event: &TurnEvent) -> Result<(), ClientGone> {
        let mut rendered = Vec::new();
        self.renderer.render(event, &mut rendered);
        for bytes in &rendered {
            split_frames(bytes, &mut self.waiting);
        }
        if let TurnEvent::Finished(end) = event {
            let outcome = self
                .renderer
                .outcome()
                .unwrap_or_else(|| TurnOutcome { status: status_of(end), result: String::new() });
            self.status = outcome.status;
            self.flush(Some(outcome)).await;
        } else if self.flushed.elapsed() >= FLUSH_INTERVAL {
            self.flush(None).await;
        }
        Ok(())
    }
}

/// The journal's status for how a turn ended.
pub(crate) fn status_of(end: &TurnEnd) -> TurnStatus {
    match end {
        TurnEnd::Completed => TurnStatus::Completed,
        TurnEnd::Incomplete(_) => TurnStatus::Incomplete,
        TurnEnd::Failed(failure) if failure.code == FailureCode::Cancelled => TurnStatus::Cancelled,
        TurnEnd::Failed(_) => TurnStatus::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_bytes_split_into_whole_frames() {
        let mut frames = Vec::new();
        split_frames(&Bytes::from_static(b"event: a\ndata: {}\n\nevent: b\ndata: {}\n\n"), &mut frames);
        assert_eq!(frames, ["event: a\ndata: {}\n\n", "event: b\ndata: {}\n\n"]);
    }

    #[test]
    fn tickets_are_unguessable_and_distinct() {
        let (a, b) = (Ticket::new("resp").unwrap(), Ticket::new("resp").unwrap());
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), "resp_".len() + 32);
    }
}
