//! `GET /sessions/{session_id}` (the stored conversation) and `DELETE /sessions/{session_id}` (forget it),
//! for the caller's own sessions only: the user comes from the same source as a turn's (a bearer JWT
//! verified by Agent Identity, a header, or `?user_id=` — falling back to the session id, as the seed
//! does), so naming another user's `session_id` finds nothing: 404, the same answer as for no session at
//! all (a 403 would tell that the session exists).

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::{Method, Response, StatusCode};

use super::{App, invocation, json_response};
use crate::pipeline::http_claim;
use crate::rejection::Rejection;
use crate::sessions::check_session_id;

impl App {
    pub(super) async fn session(
        self: &Arc<Self>,
        request: Request,
        session_id: &str,
    ) -> Result<Response<Body>, Rejection> {
        check_session_id(session_id).map_err(Rejection::invalid_request)?;
        if session_id.is_empty() {
            return Err(Rejection::not_found(request.uri().path()));
        }
        if !self.pipeline.keeps_sessions() {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "session memory is off (SESSION_STORE=none)",
            ));
        }
        let user_id = query_user(request.uri().query());
        let claim = http_claim(&self.user_source, request.headers(), user_id.as_deref().or(Some(session_id)));
        let subject = self.planner.subject(claim)?;
        let context = invocation(request.fc_context(), "sessions");
        let unknown =
            || Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("no session {session_id:?} for this user"));
        if request.method() == Method::DELETE {
            let deleted = self.pipeline.forget_session(&subject, context.role, session_id, context.deadline).await?;
            return match deleted {
                true => Ok(json_response(serde_json::json!({ "id": session_id, "deleted": true }).to_string())),
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
        Ok(json_response(body))
    }
}

/// `?user_id=` of a sessions request (percent-decoded), when sent and non-empty.
fn query_user(query: Option<&str>) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://query/?{}", query?)).ok()?;
    url.query_pairs().find(|(k, _)| k == "user_id").map(|(_, v)| v.into_owned()).filter(|v| !v.is_empty())
}
