//! `GET /sessions/{session_id}` (the stored conversation) and `DELETE /sessions/{session_id}` (forget it),
//! for the caller's own sessions only: the user comes from the same source as a turn's (a bearer JWT
//! verified by Agent Identity, a header, or `?user_id=` — falling back to the session id, as the seed
//! does), so naming another user's `session_id` finds nothing: 404, the same answer as for no session at
//! all (a 403 would tell that the session exists).
//!
//! `POST /stop` (the AgentScope runtime's interrupt, `stop_chat(user_id, session_id)`, which its
//! cookbook serves at `/stop` with an `AgentRequest` body): stops the turn running in the caller's
//! session, whichever instance runs it. The turn ends `cancelled` in its own face's shape; its session
//! keeps what was said so far.

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::{Method, Response, StatusCode};

use super::{App, platform, query_value, read_body};
use crate::pipeline::http_claim;
use crate::rejection::Rejection;
use crate::respond;
use crate::sessions::check_session_id;

impl App {
    pub(super) async fn session(
        self: &Arc<Self>,
        request: Request,
        session_id: &str,
    ) -> Result<Response<Body>, Rejection> {
        check_session_id(session_id).map_err(Rejection::invalid_request)?;
        if !self.pipeline.keeps_sessions() {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "session memory is off (SESSION_STORE=none)",
            ));
        }
        let user_id = query_value(request.uri().query(), "user_id").filter(|user| !user.is_empty());
        let claim = http_claim(&self.user_source, request.headers(), user_id.as_deref().or(Some(session_id)));
        let subject = self.planner.subject(claim)?;
        let context = platform(request.fc_context(), "sessions");
        let unknown =
            || Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("no session {session_id:?} for this user"));
        if request.method() == Method::DELETE {
            let deleted = self.pipeline.forget_session(&subject, context.role, session_id, context.deadline).await?;
            return match deleted {
                true => Ok(respond::json(serde_json::json!({ "id": session_id, "deleted": true }).to_string())),
                false => Err(unknown()),
            };
        }
        let session = self.pipeline.read_session(&subject, context.role, session_id, context.deadline).await?;
        let session = session.ok_or_else(unknown)?;
        let body = serde_json::to_string(&session).map_err(|e| {
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the session could not be written: {e}"),
            )
        })?;
        Ok(respond::json(body))
    }
}

impl App {
    pub(super) async fn stop(self: &Arc<Self>, mut request: Request) -> Result<Response<Body>, Rejection> {
        let body = read_body(&mut request, self.max_request_bytes).await?;
        let body: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Rejection::invalid_request(format!("body: not JSON ({e})")))?;
        let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str).filter(|v| !v.is_empty());
        let session_id =
            field("session_id").ok_or_else(|| Rejection::invalid_request("session_id: required, a string"))?.to_owned();
        check_session_id(&session_id).map_err(Rejection::invalid_request)?;
        if !self.pipeline.keeps_sessions() {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no turn runs in a session with session memory off (SESSION_STORE=none)",
            ));
        }
        // The user as a turn names it (the AgentRequest's `user_id`, falling back to the session id).
        let claim = http_claim(&self.user_source, request.headers(), field("user_id").or(Some(&session_id)));
        let subject = self.planner.subject(claim)?;
        let context = platform(request.fc_context(), "stop");
        let stopped = self.pipeline.stop_session(&subject, context.role, &session_id, context.deadline).await?;
        let answer = serde_json::json!({ "status": "ok", "session_id": session_id, "stopped": stopped.is_some() });
        Ok(respond::json(answer.to_string()))
    }
}
