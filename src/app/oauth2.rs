//! `GET /oauth2/callback?session_uri=…&state=…`: where Agent Identity sends the user's browser after they
//! authorized an OAuth2 provider (the `ResourceOAuth2ReturnURL` of the turn that asked). The turn waiting
//! for the token may run on another instance, so the check is the sealed state alone
//! (`identity::StateKey`): it names the user the consent is for, the provider, an expiry and a nonce.
//! Then `CompleteResourceTokenAuth` (signed with the function's own credentials) tells Agent Identity which
//! user authorized, and the waiting turn's next poll gets the token.
//!
//! Refused with 400 (nothing completed): a missing parameter, a state this function did not seal (forged,
//! altered, another key), an expired state, a state or session URI already used on this instance (a
//! replay; on another instance the upstream refuses a session URI used once). Browsers
//! (`Accept: text/html`) get the refusal as a page, other clients as the JSON error body.

use std::time::{SystemTime, UNIX_EPOCH};

use fc_runtime::{Body, Request, RequestExt};
use http::{HeaderValue, Response, StatusCode, header};

use super::{App, invocation};
use crate::acs::CredentialsProvider;
use crate::identity::IdentityError;
use crate::rejection::{Rejection, html_page};
use crate::secret::Secret;

/// Longest `session_uri` / `state` accepted (a JWT user's state is ~1.5 KB).
const MAX_PARAM_CHARS: usize = crate::identity::MAX_STATE_CHARS;

impl App {
    pub(super) async fn oauth2_callback(&self, request: Request) -> Response<Body> {
        let html = wants_html(&request);
        match self.complete_consent(request).await {
            Ok(provider) => done_page(&provider),
            Err(rejection) if html => rejection.into_html_response(),
            Err(rejection) => rejection.into_response(),
        }
    }

    /// Checks the callback and confirms the consent; the provider's name on success.
    async fn complete_consent(&self, request: Request) -> Result<String, Rejection> {
        let Some(oauth2) = self.pipeline.oauth2() else {
            return Err(Rejection::not_found(request.uri().path()));
        };
        let (session_uri, state) = parameters(request.uri().query())?;
        let claims = oauth2.state_key().open(state.expose()).map_err(|e| Rejection::invalid_request(e.to_string()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if !oauth2.first_use(&claims.nonce, &session_uri, claims.expires, now) {
            return Err(Rejection::invalid_request("this authorization callback was already used"));
        }
        let context = invocation(request.fc_context());
        let identifier = claims.user.identifier();
        let confirmed = async {
            let credentials = self.pipeline.credentials_for(context.role);
            let credentials = tokio::time::timeout_at(context.deadline, credentials.provide())
                .await
                .map_err(|_| IdentityError::Deadline)??;
            oauth2.confirm(&session_uri, &identifier, &credentials, context.deadline).await
        };
        if let Err(error) = confirmed.await {
            oauth2.not_used(&claims.nonce, &session_uri);
            tracing::warn!(provider = %claims.provider, code = error.code(), "OAuth2 consent not confirmed");
            return Err(upstream(&error));
        }
        tracing::info!(provider = %claims.provider, "OAuth2 consent confirmed");
        Ok(claims.provider)
    }
}

/// `session_uri` and `state`, both required and bounded (percent-decoded).
fn parameters(query: Option<&str>) -> Result<(Secret, Secret), Rejection> {
    let url = reqwest::Url::parse(&format!("http://query/?{}", query.unwrap_or_default()))
        .map_err(|_| Rejection::invalid_request("the query string is not valid"))?;
    let get = |name: &str| {
        let value = url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default();
        if value.is_empty() {
            return Err(Rejection::invalid_request(format!("missing query parameter {name}")));
        }
        if value.chars().count() > MAX_PARAM_CHARS {
            return Err(Rejection::invalid_request(format!("{name} is longer than {MAX_PARAM_CHARS} characters")));
        }
        Ok(Secret::new(value))
    };
    Ok((get("session_uri")?, get("state")?))
}

fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// Agent Identity refused or failed `CompleteResourceTokenAuth`: a refusal (4xx: e.g. the session belongs
/// to another user, or was completed already) is the callback's fault, anything else the upstream's.
fn upstream(error: &IdentityError) -> Rejection {
    let message = format!("the consent was not confirmed: {error}");
    match error {
        IdentityError::Upstream(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
            Rejection::invalid_request(message)
        }
        IdentityError::Credentials(_) => {
            Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "credentials_missing", message)
        }
        _ if error.is_deadline() => Rejection::new(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", message),
        _ => Rejection::new(StatusCode::BAD_GATEWAY, "identity_error", message),
    }
}

fn done_page(provider: &str) -> Response<Body> {
    let text = format!("You authorized {provider}. You can close this window: the conversation continues on its own.");
    let mut response = Response::new(Body::full(html_page("Authorization complete", &text)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
