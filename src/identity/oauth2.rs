//! OAuth2 access tokens from the Agent Identity vault, for MCP servers that act on the user's third-party
//! account (`AI_GATEWAY_MCP_OAUTH2`), as the SDK's `requires_access_token` gets them: the user's WAT →
//! the role's STS credentials ([`Roles`]) → `GetResourceOAuth2Token` (`USER_FEDERATION`). When the vault
//! holds no token yet it answers an authorization URL: the turn shows it to the caller at once
//! ([`ConsentPrompt`]) and polls the session until the user has consented (and `GET /oauth2/callback` has
//! confirmed who did), within the poll limit and the turn's deadline.
//!
//! Tokens are cached per provider, user and scopes until shortly before `ExpiresIn`; misses are single
//! flight per key (a second turn of the same user waits for the first one's consent instead of starting
//! another); an MCP 401 drops the refused token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::client::{IdentityClient, OAuth2Answer, OAuth2TokenRequest};
use super::error::IdentityError;
use super::role::{Roles, TurnWat, lock};
use super::state::{ConsentClaims, ConsentUser, StateKey, jwt_identifier};
use super::subject::{Subject, jwt_subject};
use super::tokens::WorkloadTokens;
use crate::acs::CredentialsProvider;
use crate::mcp::{OAuth2Grant, TokenError, TokenSource};
use crate::secret::Secret;
use crate::upstream::Endpoint;

/// The SDK's poll loop: 20 polls, 3 s apart.
/// Why a consent callback completed nothing.
#[derive(Debug)]
pub(crate) enum ConsentRefused {
    /// The callback itself is not acceptable (a state this function did not seal, expired, or used before).
    Callback(String),
    /// The person completing is not (or cannot prove to be) the user the consent was asked for.
    NotTheUser(&'static str),
    /// Agent Identity refused or failed `CompleteResourceTokenAuth`.
    Upstream(IdentityError),
}

pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(3);
pub const DEFAULT_POLL_LIMIT: u32 = 20;
/// A token is dropped this long before `ExpiresIn` runs out, so it never expires on its way to the server.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// `ExpiresIn` missing: keep the token this long (an MCP 401 drops it sooner).
const TOKEN_FALLBACK_TTL: Duration = Duration::from_secs(300);
/// Tokens kept at once; a full cache drops the expired ones, then the one that expires soonest.
const TOKEN_CACHE_CAPACITY: usize = 1024;
/// Callbacks remembered at once (see [`OAuth2Tokens::first_use`]); beyond it the oldest are forgotten.
const SEEN_CAPACITY: usize = 4096;
/// Polling stops this long before the turn's deadline, so the turn can still say why it failed.
const DEADLINE_RESERVE: Duration = Duration::from_millis(500);
/// A state outlives the poll window by this much (clock skew between instances, a slow redirect).
const STATE_SLACK: Duration = Duration::from_secs(60);

/// The `OAUTH2_*` variables, as config.rs parses them (required once any server takes an OAuth2 token).
#[derive(Debug, Clone)]
pub struct OAuth2Settings {
    /// `OAUTH2_RETURN_URL`, else `AGENT_PUBLIC_URL` + `/oauth2/callback`: where Agent Identity sends the
    /// browser back (must be in the workload identity's allowed return URLs).
    pub return_url: Endpoint,
    /// `OAUTH2_POLL_INTERVAL_MS` (3000).
    pub poll_interval: Duration,
    /// `OAUTH2_POLL_LIMIT` (20).
    pub poll_limit: u32,
    /// `OAUTH2_STATE_KEY`: signs the `CustomState` the callback checks (the same on every instance).
    pub state_key: Secret,
    /// `AGENT_IDENTITY_USER_SOURCE=jwt`: a consent completes only at `POST /oauth2/complete`, by the user
    /// it was asked for, proving it with their JWT; the plain `GET /oauth2/callback` is refused.
    pub bound_to_jwt: bool,
}

/// Shows the caller the URL to authorize `provider` at (the turn streams it at once).
pub(crate) type ConsentPrompt = Arc<dyn Fn(String, String) -> BoxFuture<'static, ()> + Send + Sync>;

struct CachedToken {
    token: Secret,
    until: Instant,
}

type Key = [u8; 32];

/// The process's OAuth2 tokens.
pub(crate) struct OAuth2Tokens {
    client: IdentityClient,
    roles: Arc<Roles>,
    settings: OAuth2Settings,
    state: StateKey,
    cache: Mutex<HashMap<Key, CachedToken>>,
    /// One async mutex per key being fetched: concurrent misses for one key wait for the first.
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Callbacks this instance accepted: state nonce or session URI hash → the state's expiry (unix s).
    seen: Mutex<HashMap<Key, u64>>,
}

impl OAuth2Tokens {
    pub(crate) fn new(client: IdentityClient, roles: Arc<Roles>, settings: OAuth2Settings) -> Self {
        let state = StateKey::new(&settings.state_key);
        OAuth2Tokens {
            client,
            roles,
            settings,
            state,
            cache: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records a callback's state nonce and session URI; false when either was seen before on this
    /// instance (a replay, or the same callback still in flight). Entries live until their state expires,
    /// after which the state itself is refused. Another instance cannot know: there the upstream's own rule
    /// (a session URI completes once) refuses it.
    pub(crate) fn first_use(&self, nonce: &str, session_uri: &Secret, expires: u64, now: u64) -> bool {
        let keys = seen_keys(nonce, session_uri);
        let mut seen = lock(&self.seen);
        seen.retain(|_, until| *until > now);
        if keys.iter().any(|key| seen.contains_key(key)) {
            return false;
        }
        while seen.len() + keys.len() > SEEN_CAPACITY {
            let Some(oldest) = seen.iter().min_by_key(|(_, until)| **until).map(|(k, _)| *k) else { break };
            seen.remove(&oldest);
        }
        for key in keys {
            seen.insert(key, expires);
        }
        true
    }

    /// The callback recorded by [`OAuth2Tokens::first_use`] completed nothing (Agent Identity refused or
    /// failed): forget it, so a pairing of someone's session URI with another state cannot block the
    /// genuine callback, and the user can reload after a transient failure.
    pub(crate) fn not_used(&self, nonce: &str, session_uri: &Secret) {
        let mut seen = lock(&self.seen);
        for key in seen_keys(nonce, session_uri) {
            seen.remove(&key);
        }
    }

    /// Completes a consent at the plain callback (`GET /oauth2/callback`): the sealed `state` names the
    /// user, and whoever opens the link completes it for them — so it is refused when consent is bound to
    /// the user's JWT ([`OAuth2Settings::bound_to_jwt`]). The provider's name on success.
    pub(crate) async fn complete(
        &self,
        session_uri: &Secret,
        state: &Secret,
        credentials: &dyn CredentialsProvider,
        deadline: Instant,
    ) -> Result<String, ConsentRefused> {
        if self.settings.bound_to_jwt {
            return Err(ConsentRefused::NotTheUser(
                "with AGENT_IDENTITY_USER_SOURCE=jwt a consent completes only at POST /oauth2/complete, with the \
                 user's JWT",
            ));
        }
        let claims = self.state.open(state.expose()).map_err(|e| ConsentRefused::Callback(e.to_string()))?;
        let Some(identifier) = claims.user.identifier() else {
            return Err(ConsentRefused::NotTheUser(
                "this authorization is bound to its user: complete it at POST /oauth2/complete with their JWT",
            ));
        };
        self.confirm(&claims, session_uri, &identifier, credentials, deadline).await
    }

    /// Completes a consent for the user who proves to be the one it was asked for (`POST /oauth2/complete`,
    /// the application's return page calling with the signed-in user's JWT): the JWT's `sub` must be the
    /// one sealed in `state`, and `CompleteResourceTokenAuth` is told that JWT — so Agent Identity verifies
    /// it too, and a JWT made up with someone else's `sub` is refused there.
    pub(crate) async fn complete_as(
        &self,
        session_uri: &Secret,
        state: &Secret,
        user_jwt: &Secret,
        credentials: &dyn CredentialsProvider,
        deadline: Instant,
    ) -> Result<String, ConsentRefused> {
        let claims = self.state.open(state.expose()).map_err(|e| ConsentRefused::Callback(e.to_string()))?;
        let asked = match &claims.user {
            ConsentUser::Subject(subject) => Some(subject.clone()),
            ConsentUser::Jwt(jwt) => jwt_subject(jwt.expose()),
            ConsentUser::UserId(_) => {
                return Err(ConsentRefused::Callback(
                    "this authorization was asked for a user id, not a JWT user: it completes at GET /oauth2/callback"
                        .into(),
                ));
            }
        };
        if asked.is_none() || asked != jwt_subject(user_jwt.expose()) {
            return Err(ConsentRefused::NotTheUser(
                "the signed-in user is not the user this authorization was asked for",
            ));
        }
        self.confirm(&claims, session_uri, &jwt_identifier(user_jwt), credentials, deadline).await
    }

    /// The replay guard, then `CompleteResourceTokenAuth` for `identifier`, signed with the function's own
    /// `credentials`.
    async fn confirm(
        &self,
        claims: &ConsentClaims,
        session_uri: &Secret,
        identifier: &Secret,
        credentials: &dyn CredentialsProvider,
        deadline: Instant,
    ) -> Result<String, ConsentRefused> {
        let now = crate::clock::unix_now();
        if !self.first_use(&claims.nonce, session_uri, claims.expires, now) {
            return Err(ConsentRefused::Callback("this authorization callback was already used".into()));
        }
        let confirmed = async {
            let credentials = tokio::time::timeout_at(deadline, credentials.provide())
                .await
                .map_err(|_| IdentityError::Deadline)??;
            self.client.complete_resource_token_auth(session_uri, identifier, &credentials, deadline).await
        };
        if let Err(error) = confirmed.await {
            self.not_used(&claims.nonce, session_uri);
            tracing::warn!(provider = %claims.provider, code = error.code(), "OAuth2 consent not confirmed");
            return Err(ConsentRefused::Upstream(error));
        }
        tracing::info!(provider = %claims.provider, "OAuth2 consent confirmed");
        Ok(claims.provider.clone())
    }

    /// The cached token for `grant` and the turn's user, or a fresh one (asking the user's consent when the
    /// vault holds none).
    async fn token(
        &self,
        grant: &OAuth2Grant,
        wat: &TurnWat<'_>,
        prompt: &ConsentPrompt,
        deadline: Instant,
    ) -> Result<Secret, IdentityError> {
        let user = consent_user(wat.subject, &grant.provider, self.settings.bound_to_jwt)?;
        let key = cache_key(grant, wat.subject);
        if let Some(token) = self.cached(&key) {
            return Ok(token);
        }
        let flight = lock(&self.flights).entry(key).or_default().clone();
        let fetched = async {
            let _flight = flight.lock().await;
            if let Some(token) = self.cached(&key) {
                return Ok(token);
            }
            let (token, lifetime) = self.fetch(grant, user, wat, prompt, deadline).await?;
            if !lifetime.is_zero() {
                self.store(key, token.clone(), lifetime);
            }
            Ok(token)
        }
        .await;
        let mut flights = lock(&self.flights);
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight) && Arc::strong_count(f) <= 2) {
            flights.remove(&key);
        }
        fetched
    }

    /// An MCP server refused `token`: forget it if it is still the cached one.
    fn refused(&self, grant: &OAuth2Grant, subject: &Subject, token: &Secret) {
        let key = cache_key(grant, subject);
        let mut cache = lock(&self.cache);
        if cache.get(&key).is_some_and(|c| &c.token == token) {
            cache.remove(&key);
        }
    }

    fn cached(&self, key: &Key) -> Option<Secret> {
        lock(&self.cache).get(key).filter(|c| Instant::now() < c.until).map(|c| c.token.clone())
    }

    fn store(&self, key: Key, token: Secret, lifetime: Duration) {
        let mut cache = lock(&self.cache);
        super::cache::make_room(&mut cache, TOKEN_CACHE_CAPACITY, |c| c.until);
        cache.insert(key, CachedToken { token, until: Instant::now() + lifetime });
    }

    /// One `GetResourceOAuth2Token`, and when it answers an authorization URL: the prompt, then the polls.
    async fn fetch(
        &self,
        grant: &OAuth2Grant,
        user: ConsentUser,
        turn: &TurnWat<'_>,
        prompt: &ConsentPrompt,
        deadline: Instant,
    ) -> Result<(Secret, Duration), IdentityError> {
        let wat = turn.get().await?;
        let role = self.roles.credentials(&self.client, turn, &wat, deadline).await?;
        let scopes_json = serde_json::to_string(&grant.scopes).unwrap_or_else(|_| "[]".to_owned());
        let poll_window = self.settings.poll_interval.saturating_mul(self.settings.poll_limit);
        let state = self
            .state
            .issue(user, &grant.provider, poll_window + STATE_SLACK)
            .map_err(|e| IdentityError::State(e.to_string()))?;
        let mut request = OAuth2TokenRequest {
            provider: &grant.provider,
            workload_access_token: &wat,
            scopes_json: &scopes_json,
            return_url: self.settings.return_url.as_str(),
            custom_state: &state,
            session_uri: None,
        };
        let answer = match self.client.get_resource_oauth2_token(&request, &role, deadline).await {
            Ok(answer) => answer,
            Err(error) => {
                self.roles.forget(&wat);
                return Err(error);
            }
        };
        let (url, session_uri) = match answer {
            OAuth2Answer::Token { access_token, expires_in } => return Ok((access_token, lifetime(expires_in))),
            OAuth2Answer::Authorize { url, session_uri } => (url, session_uri),
            // The client answers `Pending` only to a poll; a first answer without either is malformed.
            OAuth2Answer::Pending => {
                return Err(IdentityError::MissingField {
                    action: "GetResourceOAuth2Token",
                    field: "AccessToken",
                    request_id: None,
                });
            }
        };
        tracing::info!(provider = %grant.provider, "the user must authorize the OAuth2 provider; polling");
        prompt(grant.provider.clone(), url.expose().to_owned()).await;
        request.session_uri = Some(&session_uri);
        let started = Instant::now();
        let mut last_error = None;
        let mut polls = 0;
        let why = loop {
            if polls >= self.settings.poll_limit {
                break "OAUTH2_POLL_LIMIT reached";
            }
            let wake = Instant::now() + self.settings.poll_interval;
            if wake + DEADLINE_RESERVE >= deadline {
                break "the turn's deadline is near";
            }
            tokio::time::sleep_until(wake).await;
            polls += 1;
            // As the SDK: a failed poll is not the end; the next one may find the token.
            match self.client.get_resource_oauth2_token(&request, &role, deadline).await {
                Ok(OAuth2Answer::Token { access_token, expires_in }) => {
                    tracing::info!(provider = %grant.provider, polls, "the user authorized the OAuth2 provider");
                    return Ok((access_token, lifetime(expires_in)));
                }
                Ok(_) => {}
                Err(error) => last_error = Some(error.to_string()),
            }
        };
        Err(IdentityError::ConsentTimeout {
            provider: grant.provider.clone(),
            polls,
            waited_secs: started.elapsed().as_secs(),
            why,
            last_error,
        })
    }
}

fn seen_keys(nonce: &str, session_uri: &Secret) -> [Key; 2] {
    [
        Sha256::digest([b"nonce\0".as_slice(), nonce.as_bytes()].concat()).into(),
        Sha256::digest([b"session\0".as_slice(), session_uri.expose().as_bytes()].concat()).into(),
    ]
}

fn lifetime(expires_in: Option<u64>) -> Duration {
    match expires_in {
        Some(secs) => Duration::from_secs(secs).saturating_sub(TOKEN_EXPIRY_MARGIN),
        None => TOKEN_FALLBACK_TTL,
    }
}

/// Who `CompleteResourceTokenAuth` will be told consented (bound into the state).
/// Who the consent is for, as the state seals it: a bound JWT user by the `sub` alone (they bring the JWT
/// back), any other JWT user by the JWT (the plain callback has nothing else to tell Agent Identity).
fn consent_user(subject: &Subject, provider: &str, bound_to_jwt: bool) -> Result<ConsentUser, IdentityError> {
    let no_user = || IdentityError::NoUser { provider: provider.to_owned() };
    match subject {
        Subject::UserId(user) => Ok(ConsentUser::UserId(user.clone())),
        Subject::Jwt(jwt) if bound_to_jwt => jwt_subject(jwt.expose()).map(ConsentUser::Subject).ok_or_else(no_user),
        Subject::Jwt(jwt) => Ok(ConsentUser::Jwt(jwt.clone())),
        Subject::Agent => Err(no_user()),
    }
}

/// Provider, user and scopes, hashed (the cache holds no user id or JWT). A JWT user is keyed by the whole
/// token: only that exact token was verified by Agent Identity when its WAT was made.
fn cache_key(grant: &OAuth2Grant, subject: &Subject) -> Key {
    let mut hash = Sha256::new();
    hash.update(grant.provider.as_bytes());
    hash.update([0]);
    match subject {
        Subject::UserId(user) => {
            hash.update(b"id\0");
            hash.update(user.as_bytes());
        }
        Subject::Jwt(jwt) => {
            hash.update(b"jwt\0");
            hash.update(jwt.expose().as_bytes());
        }
        Subject::Agent => hash.update(b"agent\0"),
    }
    for scope in &grant.scopes {
        hash.update([0]);
        hash.update(scope.as_bytes());
    }
    hash.finalize().into()
}

/// One turn's OAuth2 bearer for one MCP server: the [`TokenSource`] the tool client asks.
pub(crate) struct UserOAuth2 {
    tokens: Arc<OAuth2Tokens>,
    grant: OAuth2Grant,
    wats: Arc<WorkloadTokens>,
    subject: Subject,
    credentials: Arc<dyn CredentialsProvider>,
    prompt: ConsentPrompt,
    deadline: Instant,
}

impl UserOAuth2 {
    pub(crate) fn new(
        tokens: Arc<OAuth2Tokens>,
        grant: OAuth2Grant,
        wats: Arc<WorkloadTokens>,
        subject: Subject,
        credentials: Arc<dyn CredentialsProvider>,
        prompt: ConsentPrompt,
        deadline: Instant,
    ) -> Self {
        UserOAuth2 { tokens, grant, wats, subject, credentials, prompt, deadline }
    }
}

impl TokenSource for UserOAuth2 {
    fn token(&self) -> BoxFuture<'_, Result<Secret, TokenError>> {
        Box::pin(async move {
            let wat = TurnWat {
                tokens: &self.wats,
                subject: &self.subject,
                credentials: self.credentials.as_ref(),
                deadline: self.deadline,
            };
            let token = self.tokens.token(&self.grant, &wat, &self.prompt, self.deadline).await?;
            Ok(token)
        })
    }

    fn refused(&self, token: &Secret) {
        self.tokens.refused(&self.grant, &self.subject, token);
    }
}
