//! Event invocations (`POST /invoke`): a trigger's payload becomes a turn; the answer is the final response.

use std::sync::Arc;

use http::{Response, StatusCode};

use super::App;
use super::turn::Plan;
use super::user;
use crate::fc::{self, Body, Event};
use crate::protocol::{Status, trigger};

impl App {
    pub(super) async fn event(self: &Arc<Self>, event: Event) -> Response<Body> {
        let context = event.context;
        let request = match trigger::request_from_event(
            &event.payload,
            &self.config.agent.event_instruction,
            &context.request_id,
        ) {
            Ok(request) => request,
            Err(error) => {
                return fc::error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &error.to_string(),
                );
            }
        };
        let model = match self.pick_model(&request) {
            Ok(model) => model,
            Err(message) => {
                return fc::error_response(StatusCode::BAD_REQUEST, "invalid_request", &message);
            }
        };
        let session_id = Some(
            request
                .session_id()
                .unwrap_or(&context.request_id)
                .to_owned(),
        );
        let plan = Plan {
            subject: user::event_subject(&request),
            role: context.credentials.clone(),
            turn: self.turn_for(&request, model, context.deadline),
        };
        let response = self.run_to_response(plan, session_id).await;
        match (response.status, &response.error) {
            (Status::Completed, _) => fc::json_response(StatusCode::OK, response.to_json()),
            // FC only forwards the body; the status makes it record an InvocationError (and retry async calls).
            (_, Some(error)) => fc::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.code,
                &error.message,
            ),
            (status, None) => fc::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("the turn ended {}", status.as_str()),
            ),
        }
    }
}
