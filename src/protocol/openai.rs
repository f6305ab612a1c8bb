//! What the two OpenAI faces (`responses`, `chat`) share: OpenAI's error body
//! `{"error":{"message","type","param","code"}}` (a [`Rejection`] before the turn, a [`Failure`] in a
//! Chat Completions stream), the ids of their objects, and what both requests hand the pipeline
//! ([`OpenAiTurn`]). Their request fields are read by the shared rules of `protocol::reader`.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::failure::{Failure, FailureCode};
use crate::llm::{ChatMessage, Sampling, Usage};
use crate::pipeline::{ApprovalInput, Ask, ResponseThread, UserClaim};
use crate::rejection::Rejection;
use fc_runtime::Body;

/// The part of an OpenAI request the turn is made of: the conversation as model messages, the model and
/// sampling asked for, who asks and which session. Each face reads its own fields into it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenAiTurn {
    /// Never empty of non-system messages (each face refuses a body without one).
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) model: Option<String>,
    pub(crate) sampling: Sampling,
    pub(crate) session_id: Option<String>,
    /// The user the body names (the first of the face's user fields that is set).
    pub(crate) user: Option<String>,
    /// Responses: it can show approval requests, and the answers the input carries. Chat: nobody to ask.
    pub(crate) approval: ApprovalInput,
    /// Responses: the stored response it continues and the one it issues. Chat: none.
    pub(crate) thread: ResponseThread,
}

impl OpenAiTurn {
    pub(crate) fn named_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The pipeline's ask, with the user the caller was resolved to.
    pub(crate) fn into_ask(self, user: UserClaim) -> Ask {
        Ask {
            messages: self.messages,
            model: self.model,
            sampling: self.sampling,
            user,
            // The session memory stores an OpenAI face's input as the model messages it became.
            records: Vec::new(),
            session_id: self.session_id,
            approval: self.approval,
            thread: self.thread,
        }
    }
}

/// A rejection in OpenAI's shape: the SDK raises `BadRequestError`, `AuthenticationError`… from the status
/// and shows `message`. `param` is the field the message names (our messages start with `field: `).
pub(crate) fn rejection_response(rejection: Rejection) -> Response<Body> {
    let kind = match rejection.status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::NOT_FOUND => "not_found_error",
        status if status.is_server_error() => "server_error",
        _ => "invalid_request_error",
    };
    let param = rejection
        .message
        .split_once(": ")
        .map(|(field, _)| field)
        .filter(|field| !field.is_empty() && !field.contains(char::is_whitespace) && *field != "body");
    let body = json!({"error": {"message": rejection.message, "type": kind, "param": param, "code": rejection.code}});
    rejection.respond_with(crate::respond::JSON, body.to_string())
}

/// A failed turn as OpenAI's error object; `code` is the failure code `/process` reports.
pub(crate) fn failure_error(failure: &Failure) -> Value {
    json!({"message": failure.message, "type": failure_type(failure.code), "param": null, "code": failure.code.as_str()})
}

/// OpenAI's error `type` for a failure: clients branch on it (retry on `rate_limit_error`, …).
pub(crate) fn failure_type(code: FailureCode) -> &'static str {
    match code {
        FailureCode::ModelThrottled => "rate_limit_error",
        FailureCode::ToolUnauthorized | FailureCode::ModelUnauthorized | FailureCode::CredentialsMissing => {
            "authentication_error"
        }
        FailureCode::ModelBadRequest | FailureCode::ContentFiltered => "invalid_request_error",
        FailureCode::ConsentTimeout => "permission_error",
        _ => "server_error",
    }
}

/// `<prefix>_<32 hex>`, OpenAI's id style.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", crate::ids::uuid().simple())
}

/// Sums the turn's model calls; `None` when the model reported none.
pub(crate) fn add_usage(total: &mut Option<Usage>, usage: Usage) {
    *total.get_or_insert_with(Usage::default) += usage;
}

/// `GET /compatible-mode/v1/models`: the configured model first, then the ones callers may choose.
pub(crate) fn model_list(default: &str, allowed: &[String], owned_by: &str) -> String {
    let mut ids: Vec<&str> = vec![default];
    ids.extend(allowed.iter().map(String::as_str).filter(|m| *m != default));
    let data: Vec<Value> =
        ids.iter().map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})).collect();
    json!({"object": "list", "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response<Body>) -> Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_rejection_has_openais_error_shape_naming_the_field() {
        let response = rejection_response(Rejection::invalid_request("input[0].content: expected a string"));
        assert_eq!(response.status(), 400);
        let body = body_of(response).await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "input[0].content");
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["error"]["message"], "input[0].content: expected a string");
        let unauthenticated =
            body_of(rejection_response(Rejection::unauthenticated("Authorization: Bearer required"))).await;
        assert_eq!(unauthenticated["error"]["type"], "authentication_error");
    }

    #[test]
    fn the_model_list_names_the_default_first_without_repeats() {
        let list: Value =
            serde_json::from_str(&model_list("qwen-max", &["qwen-plus".into(), "qwen-max".into()], "me")).unwrap();
        let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["qwen-max", "qwen-plus"]);
        assert_eq!(list["object"], "list");
    }
}
