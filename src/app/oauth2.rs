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
use http::{Response, StatusCode, header};

use super::{App, platform, query_value};
use crate::rejection::{Rejection, html_page};
use crate::respond;
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
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no MCP server takes an OAuth2 token (AI_GATEWAY_MCP_OAUTH2 is unset)",
            ));
        }
        let (session_uri, state) = parameters(request.uri().query())?;
        let context = platform(request.fc_context());
        Ok(self.pipeline.complete_consent(&session_uri, &state, context.role, context.deadline).await?)
    }
}

/// `session_uri` and `state`, both required and bounded (percent-decoded).
fn parameters(query: Option<&str>) -> Result<(Secret, Secret), Rejection> {
    let get = |name: &str| {
        let value = query_value(query, name).unwrap_or_default();
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
    respond::respond(StatusCode::OK, respond::HTML, html_page("Authorization complete", &text))
}
