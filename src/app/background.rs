//! Background turns at the edge (docs/background.md): the async invocation that runs one (`deliver`), the
//! stream of a journaled turn from any frame on (`follow`: `?stream=true&starting_after=N`, `Last-Event-ID`),
//! and the Responses API's `GET /compatible-mode/v1/responses/{id}` and `POST …/{id}/cancel`.

use std::sync::Arc;

use bytes::Bytes;
use fc_runtime::{Body, Request, RequestExt};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use tokio::time::Instant;

use super::App;
use super::face::{Caller, Face, Parsed};
use crate::agent::{TurnEnd, TurnEvent};
use crate::failure::{Failure, FailureCode};
use crate::pipeline::{Journaled, Pipeline, Ticket};
use crate::rejection::Rejection;
use crate::sessions::journal::{Pending, TurnRecord};

/// `x-fc-status: 404` on an event's answer makes FC count the invocation failed (and retry an async one).
const FC_STATUS: &str = "x-fc-status";

impl App {
    /// An async invocation naming a background turn: take it from the journal (once, however often FC
    /// delivers it) and run it to its end. Only a store that cannot answer fails the invocation, so FC
    /// retries it; a turn that ran (whatever its end) or cannot run is a success — retrying would not help.
    pub(super) async fn deliver(self: &Arc<Self>, id: &str, request: &Request) -> Response<Body> {
        let (pending, claim) = match self.pipeline.take_background(id).await {
            Ok(Some(taken)) => taken,
            Ok(None) => {
                tracing::info!(turn = %id, "a delivery of a background turn that is not queued; nothing to run");
                return delivered(id, "not_queued");
            }
            Err(failure) => {
                tracing::warn!(turn = %id, message = %failure.message, "a background turn could not be taken");
                let mut response =
                    Rejection::new(StatusCode::NOT_FOUND, "session_error", failure.message).into_response();
                response.headers_mut().insert(FC_STATUS, HeaderValue::from_static("404"));
                return response;
            }
        };
        let status = match pending.face.as_str() {
            "responses" => self.run_recorded(&self.faces.responses, "responses", pending, claim, id, request).await,
            "process_task" => {
                self.run_recorded(&self.faces.process_task, "process_task", pending, claim, id, request).await
            }
            "a2a" => self.run_recorded(&self.faces.a2a, "a2a", pending, claim, id, request).await,
            other => {
                tracing::warn!(turn = %id, face = %other, "a background turn of a face that has none");
                self.pipeline.fail_background(id, String::new()).await;
                "failed"
            }
        };
        delivered(id, status)
    }

    /// Parses the stored request again as its face, with the stored claim, and runs it journaled.
    async fn run_recorded<F: Face>(
        self: &Arc<Self>,
        face: &F,
        route: &'static str,
        pending: Pending,
        claim: crate::pipeline::UserClaim,
        id: &str,
        request: &Request,
    ) -> &'static str {
        let ticket = Ticket { id: id.to_owned(), created_at: pending.created_at };
        let caller = Caller::new(request.headers(), &self.user_source, request.fc_context()).delivering();
        let (mut ask, read) = match face.read(pending.body.as_bytes(), &caller) {
            Ok(Parsed::Turn(ask, read)) => (ask, read),
            Ok(_) | Err(_) => {
                self.pipeline.fail_background(id, String::new()).await;
                return "failed";
            }
        };
        ask.user = claim;
        let plan = self.planner.plan(ask, super::platform(request.fc_context(), route));
        let Some(mut renderer) = face.recorded(read, &ticket) else {
            self.pipeline.fail_background(id, String::new()).await;
            return "failed";
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(rejection) => {
                // Planned when it was queued; what changed since (an expired JWT) ends it in its face's shape.
                let failure = Failure::new(FailureCode::Internal, rejection.message);
                return self.fail_recorded(id, renderer.as_mut(), failure).await;
            }
        };
        self.pipeline.record(id, plan, renderer).await.as_str()
    }

    async fn fail_recorded(&self, id: &str, renderer: &mut dyn Journaled, failure: Failure) -> &'static str {
        let mut out = Vec::new();
        renderer.render(&TurnEvent::Finished(TurnEnd::Failed(failure)), &mut out);
        let result = renderer.outcome().map(|outcome| outcome.result).unwrap_or_default();
        self.pipeline.fail_background(id, result).await;
        "failed"
    }

    /// The journaled turn's frames from `from` on, then the live ones as they are journaled, each with its
    /// SSE `id:` (`{turn}/{n}`, what `Last-Event-ID` sends back), until the turn's end, the client leaving
    /// or `until`.
    pub(super) fn follow(self: &Arc<Self>, id: String, from: usize, until: Instant) -> Response<Body> {
        let turn = id.clone();
        follow(self.pipeline.clone(), id, from, until, move |n, frame| {
            Some(Bytes::from(format!("id: {turn}/{n}\n{frame}")))
        })
    }

    /// `GET /compatible-mode/v1/responses/{id}` (the Response as it stands, or `?stream=true` its events
    /// after `starting_after`) and `POST …/{id}/cancel`.
    pub(super) async fn response_route(
        self: &Arc<Self>,
        request: Request,
        param: &str,
    ) -> Result<Response<Body>, Rejection> {
        let (id, cancel) = match param.strip_suffix("/cancel") {
            Some(id) => (id, true),
            None => (param, false),
        };
        if id.is_empty() || id.contains('/') {
            return Err(Rejection::not_found(request.uri().path()));
        }
        match (request.method().clone(), cancel) {
            (Method::POST, true) => {
                self.journaled(id, "responses").await?;
                let record = self.pipeline.cancel_background(id).await?.ok_or_else(|| missing(id))?;
                Ok(crate::respond::json(current(&record)))
            }
            (Method::GET, false) => {
                let query = request.uri().query();
                let stream = super::query_value(query, "stream").is_some_and(|v| v == "true" || v == "1");
                if stream {
                    let from = match super::query_value(query, "starting_after") {
                        Some(raw) => raw
                            .parse::<usize>()
                            .map(|n| n + 1)
                            .map_err(|_| Rejection::invalid_request("starting_after: not a sequence number"))?,
                        None => resume_point(request.headers(), id).unwrap_or(0),
                    };
                    self.journaled(id, "responses").await?;
                    return Ok(self.follow(id.to_owned(), from, request.fc_context().deadline()));
                }
                let record = self.journaled(id, "responses").await?;
                Ok(crate::respond::json(current(&record)))
            }
            // The route serves GET and POST; each means something on one of the two paths only.
            (_, true) => Err(Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("POST {id}/cancel cancels"))),
            (_, false) => Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("GET {id} reads a background response; POST {id}/cancel cancels it"),
            )),
        }
    }

    /// `GET /process/task/{task_id}`: the AgentScope runtime's task state (`pending`, `running`, `finished`
    /// with the final response object as `result`, `error` with its message), or with
    /// `Accept: text/event-stream` / `?stream=true` the task's `/process` stream, resumable with
    /// `Last-Event-ID`.
    pub(super) async fn task_route(self: &Arc<Self>, request: Request, id: &str) -> Result<Response<Body>, Rejection> {
        let wants_stream = super::query_value(request.uri().query(), "stream").is_some_and(|v| v == "true" || v == "1")
            || request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/event-stream"));
        let record = self.journaled(id, "process_task").await?;
        if wants_stream {
            let from = resume_point(request.headers(), id).unwrap_or(0);
            return Ok(self.follow(id.to_owned(), from, request.fc_context().deadline()));
        }
        Ok(crate::respond::json(task_state(&record).to_string()))
    }

    /// A request carrying `Last-Event-ID: {turn}/{n}` from a journaled stream picks that stream up after
    /// frame `n` (`POST /process`, `POST /compatible-mode/v1/responses`), whatever its body says.
    pub(super) async fn resumed(self: &Arc<Self>, request: &Request) -> Option<Response<Body>> {
        let (id, from) = last_event(request.headers())?;
        let (record, _) = self.pipeline.read_background(&id, usize::MAX).await.ok()??;
        // An A2A task's journal holds steps, not a stream of these faces: it is resubscribed over A2A.
        (record.face != "a2a").then(|| self.follow(id, from, request.fc_context().deadline()))
    }

    /// The record of journaled turn `id` taken by `face`'s route; another face's turn is not found here.
    async fn journaled(&self, id: &str, face: &str) -> Result<TurnRecord, Rejection> {
        let (record, _) = self.pipeline.read_background(id, usize::MAX).await?.ok_or_else(|| missing(id))?;
        if record.face != face {
            return Err(missing(id));
        }
        Ok(record)
    }
}

/// A journaled turn's frames from `from` on, then the live ones as they are journaled, each as `shape` makes
/// it of its number and the frame as journaled (`None`: skipped), until the turn's end, the client leaving or
/// `until`. A quiet turn (a tool working) still gets the SSE keep-alive comment, never journaled nor
/// numbered.
pub(super) fn follow(
    pipeline: Arc<Pipeline>,
    id: String,
    from: usize,
    until: Instant,
    shape: impl Fn(usize, &str) -> Option<Bytes> + Send + 'static,
) -> Response<Body> {
    let (sender, body) = Body::channel_starting_with(Vec::new());
    let heartbeat = pipeline.heartbeat();
    tokio::spawn(async move {
        let mut next = from;
        let mut last_sent = Instant::now();
        loop {
            let read = match pipeline.read_background(&id, next).await {
                Ok(Some(read)) => read,
                Ok(None) | Err(_) => return,
            };
            let (record, frames) = read;
            for frame in frames {
                let shaped = shape(next, &frame);
                next += 1;
                let Some(shaped) = shaped else { continue };
                if sender.send(shaped).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            if record.status.is_final() {
                return;
            }
            let quiet = heartbeat.map(|every| last_sent + every).unwrap_or(until).min(until);
            tokio::select! {
                () = pipeline.background_changed(&id) => {}
                () = sender.closed() => return,
                () = tokio::time::sleep_until(quiet) => {
                    if quiet >= until {
                        return;
                    }
                    if sender.send(Bytes::from_static(crate::pipeline::SSE_KEEP_ALIVE)).await.is_err() {
                        return;
                    }
                    last_sent = Instant::now();
                }
            }
        }
    });
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// What an async invocation answers (FC keeps it as the invocation's result).
fn delivered(id: &str, status: &str) -> Response<Body> {
    crate::respond::json(serde_json::json!({ crate::pipeline::EVENT_KEY: id, "status": status }).to_string())
}

fn missing(id: &str) -> Rejection {
    Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("no background response {id} (unknown or expired)"))
}

/// The face's object as the turn stands: its result once it ended, else the queued object with the
/// current status.
fn current(record: &TurnRecord) -> Bytes {
    if let Some(result) = record.result.as_ref().filter(|r| !r.is_empty()) {
        return Bytes::from(result.clone());
    }
    let mut summary: Value = serde_json::from_str(&record.summary).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(object) = summary.as_object_mut() {
        object.insert("status".into(), Value::from(record.status.as_str()));
    }
    Bytes::from(summary.to_string())
}

/// A task as the AgentScope runtime reports one.
fn task_state(record: &TurnRecord) -> Value {
    use crate::sessions::journal::TurnStatus;
    let result = record.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok());
    match record.status {
        TurnStatus::Queued => serde_json::json!({ "status": "pending", "result": null }),
        TurnStatus::InProgress => serde_json::json!({ "status": "running", "result": null }),
        TurnStatus::Completed | TurnStatus::Incomplete => serde_json::json!({ "status": "finished", "result": result }),
        TurnStatus::Failed | TurnStatus::Cancelled => {
            let message = result
                .as_ref()
                .and_then(|r| r["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("the task ended {}", record.status.as_str()));
            serde_json::json!({ "status": "error", "result": message })
        }
    }
}

/// `Last-Event-ID: {turn}/{n}` → (turn, first frame to send).
fn last_event(headers: &HeaderMap) -> Option<(String, usize)> {
    let value = headers.get("last-event-id")?.to_str().ok()?.trim();
    let (id, n) = value.rsplit_once('/')?;
    let n: usize = n.parse().ok()?;
    (!id.is_empty()).then(|| (id.to_owned(), n + 1))
}

/// Where a `GET …?stream=true` resumes when it sends `Last-Event-ID` for this turn (or a bare number).
fn resume_point(headers: &HeaderMap, id: &str) -> Option<usize> {
    if let Some((turn, from)) = last_event(headers) {
        return (turn == id).then_some(from);
    }
    let value = headers.get("last-event-id")?.to_str().ok()?.trim();
    value.parse::<usize>().ok().map(|n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_names_the_turn_and_the_frame() {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_static("resp_ab/7"));
        assert_eq!(last_event(&headers), Some(("resp_ab".into(), 8)));
        assert_eq!(resume_point(&headers, "resp_ab"), Some(8));
        assert_eq!(resume_point(&headers, "resp_other"), None);
        headers.insert("last-event-id", HeaderValue::from_static("12"));
        assert_eq!(last_event(&headers), None);
        assert_eq!(resume_point(&headers, "resp_ab"), Some(13));
    }
}
