//! Event invocations (`POST /invoke`): a trigger's payload becomes a turn; the answer is the final response.

use std::sync::Arc;

use fc_runtime::{Body, Event, PayloadError};
use http::{Response, StatusCode};

use super::rejection::{error_response, json_response};
use super::{App, Rejection, user};
use crate::protocol::{Status, trigger};

impl App {
    pub(super) async fn event(self: &Arc<Self>, event: Event) -> Response<Body> {
        // An event is a request body like any other; FC's own limit (32 MiB) is far above what a turn uses.
        let limit = self.config.max_request_bytes;
        let (context, payload) = match event.payload(limit).await {
            Ok(read) => read,
            Err(PayloadError::TooLarge { limit }) => {
                let message = format!("the event exceeds MAX_REQUEST_BYTES ({limit} bytes)");
                return Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message).into_response();
            }
            Err(error) => return Rejection::invalid_request(error.to_string()).into_response(),
        };
        let request_id = context.request_id();
        let instruction = &self.config.agent.event_instruction;
        let planned = trigger::request_from_event(&payload, instruction, request_id)
            .map_err(|error| Rejection::invalid_request(error.to_string()))
            .and_then(|request| {
                let session_id = request.session_id().unwrap_or(request_id).to_owned();
                Ok((self.plan(&request, user::event_subject(&request), &context)?, session_id))
            });
        let (plan, session_id) = match planned {
            Ok(planned) => planned,
            Err(rejection) => return rejection.into_response(),
        };
        let response = self.run_to_response(plan, Some(session_id)).await;
        match (response.status, &response.error) {
            (Status::Completed, _) => json_response(StatusCode::OK, response.to_json()),
            // FC only forwards the body; the status makes it record an InvocationError (and retry async calls).
            (_, Some(error)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &error.code, &error.message),
            (status, None) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("the turn ended {}", status.as_str()),
            ),
        }
    }
}
