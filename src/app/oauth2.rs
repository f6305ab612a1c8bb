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

use fc_runtime::{Body, Request, RequestExt};
use http::{HeaderValue, Response, StatusCode, header};

use super::{App, invocation};
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
        if !self.pipeline.takes_consents() {
            return Err(Rejection::not_found(request.uri().path()));
        }
        let (session_uri, state) = parameters(request.uri().query())?;
        let context = invocation(request.fc_context(), "oauth2_callback");
        Ok(self.pipeline.complete_consent(&session_uri, &state, context.role, context.deadline).await?)
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

fn done_page(provider: &str) -> Response<Body> {
    let text = format!("You authorized {provider}. You can close this window: the conversation continues on its own.");
    let mut response = Response::new(Body::full(html_page("Authorization complete", &text)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
