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

use super::{App, platform, query_value, read_body};
use crate::pipeline::bearer;
use crate::rejection::{Rejection, html_page};
use crate::respond;
use crate::secret::Secret;

/// Longest `session_uri` / `state` accepted (a JWT user's state is ~1.5 KB).
const MAX_PARAM_CHARS: usize = crate::identity::MAX_STATE_CHARS;
/// A completion body holds the two parameters and a little JSON around them.
const MAX_COMPLETE_BODY: usize = 2 * MAX_PARAM_CHARS + 1024;

impl App {
    pub(super) async fn oauth2_callback(&self, request: Request) -> Response<Body> {
        let html = wants_html(&request);
        match self.complete_consent(request).await {
            Ok(provider) => done_page(&provider),
            Err(rejection) if html => rejection.into_html_response(),
            Err(rejection) => rejection.into_response(),
        }
    }

    /// `POST /oauth2/complete`: the application's own return page, where its user is signed in, passes on
    /// the `session_uri` and `state` of the redirect with the user's JWT as the bearer. The consent is
    /// completed only when that JWT's subject is the user it was asked for — a link forwarded (or phished)
    /// to someone else completes nothing. Body: JSON `{"session_uri": …, "state": …}`, or the same as a
    /// form. Answers `{"completed": true, "provider": …}`.
    pub(super) async fn oauth2_complete(&self, mut request: Request) -> Result<Response<Body>, Rejection> {
        if !self.pipeline.takes_consents() {
            return Err(no_consents());
        }
        let jwt = bearer(request.headers()).ok_or_else(|| {
            Rejection::unauthenticated("completing a consent needs the signed-in user's JWT (Authorization: Bearer)")
        })?;
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = read_body(&mut request, MAX_COMPLETE_BODY).await?;
        let (session_uri, state) = match form {
            true => parameters(Some(std::str::from_utf8(&body).unwrap_or_default()))?,
            false => completion(&body)?,
        };
        let context = platform(request.fc_context(), "oauth2_complete");
        let provider =
            self.pipeline.complete_consent_as(&session_uri, &state, &jwt, context.role, context.deadline).await?;
        Ok(respond::json(serde_json::json!({ "completed": true, "provider": provider }).to_string()))
    }

    /// Checks the callback and confirms the consent; the provider's name on success.
    async fn complete_consent(&self, request: Request) -> Result<String, Rejection> {
        if !self.pipeline.takes_consents() {
            return Err(no_consents());
        }
        let (session_uri, state) = parameters(request.uri().query())?;
        let context = platform(request.fc_context(), "oauth2_callback");
        Ok(self.pipeline.complete_consent(&session_uri, &state, context.role, context.deadline).await?)
    }
}

/// Both routes exist; without a server taking OAuth2 tokens there is nothing to complete, and the 404 says so.
fn no_consents() -> Rejection {
    Rejection::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no MCP server takes an OAuth2 token (AI_GATEWAY_MCP_OAUTH2 is unset)",
    )
}

/// The JSON body of `POST /oauth2/complete`: `session_uri` and `state`, both required strings, bounded.
fn completion(body: &[u8]) -> Result<(Secret, Secret), Rejection> {
    #[derive(serde::Deserialize)]
    struct Completion {
        session_uri: Option<String>,
        state: Option<String>,
    }
    let parsed: Completion = serde_json::from_slice(body).map_err(|_| {
        Rejection::invalid_request("body: expected a JSON object with the strings session_uri and state")
    })?;
    let check = |name: &str, value: Option<String>| {
        let value =
            value.filter(|v| !v.is_empty()).ok_or_else(|| Rejection::invalid_request(format!("{name}: required")))?;
        if value.chars().count() > MAX_PARAM_CHARS {
            return Err(Rejection::invalid_request(format!("{name}: longer than {MAX_PARAM_CHARS} characters")));
        }
        Ok(Secret::new(value))
    };
    Ok((check("session_uri", parsed.session_uri)?, check("state", parsed.state)?))
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
