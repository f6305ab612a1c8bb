//! Event invocations (`POST /invoke`): a trigger's payload becomes a turn; the answer is the final response.

use std::sync::Arc;

use http::{Response, StatusCode};

use super::{App, Rejection, user};
use crate::fc::{self, Body, Event};
use crate::protocol::{Status, trigger};

impl App {
    pub(super) async fn event(self: &Arc<Self>, event: Event) -> Response<Body> {
        let context = event.context;
        let instruction = &self.config.agent.event_instruction;
        let planned = trigger::request_from_event(&event.payload, instruction, &context.request_id)
            .map_err(|error| Rejection::invalid_request(error.to_string()))
            .and_then(|request| {
                let session_id = request.session_id().unwrap_or(&context.request_id).to_owned();
                Ok((self.plan(&request, user::event_subject(&request), &context)?, session_id))
            });
        let (plan, session_id) = match planned {
            Ok(planned) => planned,
            Err(rejection) => return rejection.into_response(),
        };
        let response = self.run_to_response(plan, Some(session_id)).await;
        match (response.status, &response.error) {
            (Status::Completed, _) => fc::json_response(StatusCode::OK, response.to_json()),
            // FC only forwards the body; the status makes it record an InvocationError (and retry async calls).
            (_, Some(error)) => fc::error_response(StatusCode::INTERNAL_SERVER_ERROR, &error.code, &error.message),
            (status, None) => fc::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("the turn ended {}", status.as_str()),
            ),
        }
    }
}
