//! `GET /sessions/{session_id}` (the stored conversation) and `DELETE /sessions/{session_id}` (forget it),
//! for the caller's own sessions only: the user comes from the same source as a turn's (a bearer JWT
//! verified by Agent Identity, a header, or `?user_id=` — falling back to the session id, as the seed
//! does), so naming another user's `session_id` finds nothing: 404, the same answer as for no session at
//! all (a 403 would tell that the session exists).

use std::sync::Arc;

use fc_runtime::{Body, Request, RequestExt};
use http::{Method, Response, StatusCode};

use super::{App, invocation, json_response};
use crate::failure::{Failure, FailureCode};
use crate::pipeline::http_claim;
use crate::rejection::Rejection;
use crate::sessions::{Session, SessionError, check_session_id};

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
        let Some(store) = self.pipeline.session_store() else {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "session memory is off (SESSION_STORE=none)",
            ));
        };
        let user_id = query_user(request.uri().query());
        let claim = http_claim(&self.user_source, request.headers(), user_id.as_deref().or(Some(session_id)));
        let subject = self.planner.subject(claim)?;
        let context = invocation(request.fc_context());
        let key =
            self.pipeline.session_key(&subject, context.role, session_id, context.deadline).await.map_err(rejection)?;
        let unknown =
            || Rejection::new(StatusCode::NOT_FOUND, "not_found", format!("no session {session_id:?} for this user"));
        let bounded = |error: tokio::time::error::Elapsed| store_rejection(&SessionError::from(error));
        if request.method() == Method::DELETE {
            let deleted = tokio::time::timeout_at(context.deadline, store.delete(&key)).await.map_err(bounded)?;
            return match deleted.map_err(|e| store_rejection(&e))? {
                true => Ok(json_response(serde_json::json!({ "id": session_id, "deleted": true }).to_string())),
                false => Err(unknown()),
            };
        }
        let loaded = tokio::time::timeout_at(context.deadline, store.load(&key)).await.map_err(bounded)?;
        let messages = loaded.map_err(|e| store_rejection(&e))?.ok_or_else(unknown)?;
        let session = Session { id: key.session_id, user_id: key.user_id, messages };
        let body =
            serde_json::to_string(&session).map_err(|e| store_rejection(&SessionError::Refused(e.to_string())))?;
        Ok(json_response(body))
    }
}

/// `?user_id=` of a sessions request (percent-decoded), when sent and non-empty.
fn query_user(query: Option<&str>) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://query/?{}", query?)).ok()?;
    url.query_pairs().find(|(k, _)| k == "user_id").map(|(_, v)| v.into_owned()).filter(|v| !v.is_empty())
}

/// Who the caller is could not be established: a JWT Agent Identity did not accept is a 401.
fn rejection(failure: Failure) -> Rejection {
    let status = match failure.code {
        FailureCode::IdentityError => StatusCode::UNAUTHORIZED,
        FailureCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        FailureCode::SessionError => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        _ => failure.code.as_str(),
    };
    Rejection::new(status, code, failure.message)
}

fn store_rejection(error: &SessionError) -> Rejection {
    let status = match error {
        SessionError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    Rejection::new(status, "session_error", error.to_string())
}
