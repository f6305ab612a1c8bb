//! Agent Identity: the data API client ([`IdentityClient`]) and the façade the app calls per invocation
//! ([`WorkloadTokens`]): who the user is ([`Subject`]) in, a WorkloadAccessToken out, cached per
//! workload + subject ([`TokenCache`]); [`UserTokens`] hands it to the MCP client as its token source.

mod cache;
mod client;
mod error;
mod oauth2;
mod role;
mod source;
mod state;
mod subject;
mod tokens;
mod vault;

pub use client::{API_VERSION, IdentityClient, default_endpoint};
pub use error::IdentityError;
pub(crate) use oauth2::ConsentRefused;
pub(crate) use oauth2::{ConsentPrompt, OAuth2Tokens, UserOAuth2};
pub use oauth2::{DEFAULT_POLL_INTERVAL, DEFAULT_POLL_LIMIT, OAuth2Settings};
pub(crate) use role::Roles;
pub(crate) use source::UserTokens;
pub(crate) use state::MAX_STATE_CHARS;
pub use state::MIN_STATE_KEY_BYTES;
pub(crate) use subject::jwt_subject;
pub use subject::{Subject, UserSource, jwt_expiry};
pub use tokens::{DEFAULT_TOKEN_TTL, IdentitySettings, WorkloadTokens};
pub(crate) use vault::{ApiKeys, VaultKey};
