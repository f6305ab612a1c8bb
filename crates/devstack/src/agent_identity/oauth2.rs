//! The stand-in's OAuth2 credential providers, as the SDK and the docs show the real service: a first
//! `GetResourceOAuth2Token` for a (provider, user, scopes) the vault holds no token for answers an
//! `AuthorizationURL` (this stand-in's consent page) and a `SessionURI`; the consent page's "Allow"
//! redirects the browser to the `ResourceOAuth2ReturnURL` with `session_uri` and `state`;
//! `CompleteResourceTokenAuth` marks the session authorized only if its `UserIdentifier` names the user
//! the WAT was minted for (and only once); polls with the `SessionURI` then answer `AccessToken` +
//! `ExpiresIn`, and later calls find the token in the vault.

use std::collections::{BTreeMap, HashMap};

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Answer, Inner, StandInOptions, error_answer, jwt_claims};

/// The consent page's path (`AuthorizationURL` points here).
pub const CONSENT_PATH: &str = "/oauth2/authorize";

/// One authorization in progress.
#[derive(Debug, Clone)]
struct Session {
    provider: String,
    user: String,
    scopes: String,
    return_url: String,
    state: String,
    /// The consent page's "Allow" was followed.
    consented: bool,
    /// `CompleteResourceTokenAuth` confirmed the user.
    completed: bool,
}

#[derive(Default)]
pub(super) struct Vault {
    /// Session URI → session.
    sessions: HashMap<String, Session>,
    /// The consent page's `request_uri` → session URI.
    pages: HashMap<String, String>,
    /// (provider, user, scopes) → the access token the vault holds.
    held: BTreeMap<(String, String, String), String>,
    /// Access token → (provider, user), for the MCP stand-in's check.
    issued: HashMap<String, (String, String)>,
    pub(super) completions: Vec<String>,
}

impl Vault {
    pub(super) fn accepts(&self, provider: &str, token: &str) -> bool {
        self.issued.get(token).is_some_and(|(p, _)| p == provider)
    }

    /// The provider expired `token` and the vault refreshed it (as with a refresh token): the old one is
    /// refused from now on, the vault hands out a new one without asking the user again.
    pub(super) fn expire(&mut self, options: &StandInOptions, counter: &mut u64, token: &str) -> Option<String> {
        let (provider, user) = self.issued.remove(token)?;
        *counter += 1;
        let fresh = format!("{}oauth2-{provider}-{user}-{counter}", options.token_prefix);
        self.issued.insert(fresh.clone(), (provider, user));
        for held in self.held.values_mut().filter(|held| *held == token) {
            *held = fresh.clone();
        }
        Some(fresh)
    }

    pub(super) fn tokens(&self) -> Vec<String> {
        self.issued.keys().cloned().collect()
    }

    /// The user an issued access token belongs to.
    pub(super) fn user_of(&self, token: &str) -> Option<String> {
        self.issued.get(token).map(|(_, user)| user.clone())
    }
}

pub(super) fn get_token(
    options: &StandInOptions,
    inner: &mut Inner,
    params: &BTreeMap<String, String>,
    host: &str,
    request_id: &str,
) -> Answer {
    let fail = |status, code: &str, message: &str| error_answer(host, request_id, status, code, message);
    let ok = |body: Value| Answer { status: 200, body, retry_after_ms: None, transport: None };
    let Some(provider) = params.get("ResourceCredentialProviderName").filter(|p| !p.is_empty()) else {
        return fail(
            400,
            "MissingParameter.ResourceCredentialProviderName",
            "ResourceCredentialProviderName is mandatory for this action.",
        );
    };
    let Some(user) = params.get("WorkloadAccessToken").and_then(|wat| inner.issued.get(wat)).cloned() else {
        return fail(403, "InvalidWorkloadAccessToken", "The workload access token is invalid.");
    };
    if !options.oauth2_providers.contains(provider) {
        return fail(
            404,
            "EntityNotExists.OAuth2CredentialProvider",
            &format!("The OAuth2 credential provider {provider} does not exist."),
        );
    }
    let scopes = params.get("Scopes").cloned().unwrap_or_default();
    if serde_json::from_str::<Vec<String>>(&scopes).is_err() {
        return fail(400, "MissingParameter.Scopes", "Scopes must be a JSON array string.");
    }
    if params.get("OAuth2Flow").is_some_and(|flow| flow != "USER_FEDERATION") {
        return fail(400, "InvalidParameter.OAuth2Flow", "Only USER_FEDERATION is served by this provider.");
    }
    let key = (provider.clone(), user.clone(), scopes.clone());
    if let Some(session_uri) = params.get("SessionURI") {
        let Some(session) = inner.oauth2.sessions.get(session_uri).cloned() else {
            return fail(400, "InvalidParameter.SessionURI", "The session does not exist or has expired.");
        };
        if session.user != user || &session.provider != provider {
            return fail(403, "Forbidden.SessionMismatch", "The session belongs to another user or provider.");
        }
        if !session.completed {
            return ok(json!({ "RequestId": request_id, "SessionURI": session_uri, "SessionStatus": "IN_PROGRESS" }));
        }
        inner.oauth2.sessions.remove(session_uri);
        let token = mint(options, inner, provider, &user);
        inner.oauth2.held.insert(key, token.clone());
        return ok(json!({ "RequestId": request_id, "AccessToken": token, "ExpiresIn": options.oauth2_expires_in }));
    }
    let forced = params.get("ForceAuthentication").is_some_and(|f| f == "True");
    if let Some(token) = inner.oauth2.held.get(&key).filter(|_| !forced) {
        return ok(json!({ "RequestId": request_id, "AccessToken": token, "ExpiresIn": options.oauth2_expires_in }));
    }
    let Some(return_url) = params.get("ResourceOAuth2ReturnURL").filter(|u| !u.is_empty()) else {
        return fail(
            400,
            "MissingParameter.ResourceOAuth2ReturnURL",
            "ResourceOAuth2ReturnURL is mandatory for this action.",
        );
    };
    inner.counter += 1;
    let session_uri = format!("urn:ietf:params:oauth:request_uri:{}session-{}", options.token_prefix, inner.counter);
    // The page's id is not the session URI: the URL the user sees does not carry the poll handle.
    let page = uuid::Uuid::new_v4().simple().to_string();
    inner.oauth2.pages.insert(page.clone(), session_uri.clone());
    inner.oauth2.sessions.insert(
        session_uri.clone(),
        Session {
            provider: provider.clone(),
            user,
            scopes,
            return_url: return_url.clone(),
            state: params.get("CustomState").cloned().unwrap_or_default(),
            consented: false,
            completed: false,
        },
    );
    ok(json!({
        "RequestId": request_id,
        "AuthorizationURL": format!("http://{host}{CONSENT_PATH}?request_uri={page}"),
        "SessionURI": session_uri,
        "SessionStatus": "IN_PROGRESS",
    }))
}

pub(super) fn complete(inner: &mut Inner, params: &BTreeMap<String, String>, host: &str, request_id: &str) -> Answer {
    let fail = |status, code: &str, message: &str| error_answer(host, request_id, status, code, message);
    let Some(session_uri) = params.get("SessionURI").filter(|s| !s.is_empty()) else {
        return fail(400, "MissingParameter.SessionURI", "SessionURI is mandatory for this action.");
    };
    let identifier: Value = match params.get("UserIdentifier").map(|u| serde_json::from_str(u)) {
        Some(Ok(value @ Value::Object(_))) => value,
        _ => return fail(400, "InvalidParameter.UserIdentifier", "UserIdentifier must be a JSON object string."),
    };
    let claimed =
        match (identifier.get("UserId").and_then(Value::as_str), identifier.get("UserJWT").and_then(Value::as_str)) {
            (Some(user), _) => user.to_owned(),
            (None, Some(jwt)) => {
                match jwt_claims(jwt).and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_owned)) {
                    Some(sub) => sub,
                    None => return fail(400, "InvalidParameter.UserJWT", "The UserJWT is not a valid JWT."),
                }
            }
            (None, None) => return fail(400, "InvalidParameter.UserIdentifier", "UserIdentifier names no user."),
        };
    let Some(session) = inner.oauth2.sessions.get_mut(session_uri) else {
        return fail(400, "InvalidParameter.SessionURI", "The session does not exist or has expired.");
    };
    if session.completed {
        return fail(400, "InvalidParameter.SessionURI", "The session was already completed.");
    }
    if !session.consented {
        return fail(400, "InvalidParameter.SessionURI", "The user has not authorized this session.");
    }
    if session.user != claimed {
        return fail(403, "Forbidden.UserMismatch", "The user identifier does not match the session's user.");
    }
    session.completed = true;
    inner.oauth2.completions.push(session_uri.clone());
    Answer { status: 200, body: json!({ "RequestId": request_id }), retry_after_ms: None, transport: None }
}

/// `GET /oauth2/authorize?request_uri=…`: a page with an "Allow" link; `&decision=allow` (the click) is a
/// 302 to the return URL with `session_uri` and `state`.
pub(super) fn consent_page(inner: &mut Inner, query: &str) -> Response {
    let params: BTreeMap<String, String> = super::acs3::form_decode(query).into_iter().collect();
    let page = params.get("request_uri").cloned().unwrap_or_default();
    let Some(session_uri) = inner.oauth2.pages.get(&page).cloned() else {
        return (http::StatusCode::BAD_REQUEST, "unknown or used authorization request").into_response();
    };
    let Some(session) = inner.oauth2.sessions.get_mut(&session_uri) else {
        return (http::StatusCode::BAD_REQUEST, "the authorization session has ended").into_response();
    };
    if params.get("decision").map(String::as_str) != Some("allow") {
        let body = format!(
            "<!doctype html><html><body><h1>Authorize {provider}</h1><p>The agent asks for {scopes}.</p>\
             <p><a href=\"{CONSENT_PATH}?request_uri={page}&amp;decision=allow\">Allow</a></p></body></html>",
            provider = session.provider,
            scopes = session.scopes,
        );
        return ([("content-type", "text/html; charset=utf-8")], body).into_response();
    }
    session.consented = true;
    inner.oauth2.pages.remove(&page);
    let separator = if session.return_url.contains('?') { '&' } else { '?' };
    let location = format!(
        "{}{separator}session_uri={}&state={}",
        session.return_url,
        super::acs3::rfc3986(&session_uri),
        super::acs3::rfc3986(&session.state),
    );
    (http::StatusCode::FOUND, [("location", location)]).into_response()
}

fn mint(options: &StandInOptions, inner: &mut Inner, provider: &str, user: &str) -> String {
    inner.counter += 1;
    let token = format!("{}oauth2-{provider}-{user}-{}", options.token_prefix, inner.counter);
    inner.oauth2.issued.insert(token.clone(), (provider.to_owned(), user.to_owned()));
    token
}
