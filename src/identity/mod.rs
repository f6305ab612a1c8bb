//! Agent Identity: the data API client ([`IdentityClient`]) and the façade the app calls per invocation
//! ([`WorkloadTokens`]): who the user is ([`Subject`]) in, a WorkloadAccessToken out, cached per
//! workload + subject ([`TokenCache`]); [`UserTokens`] hands it to the MCP client as its token source.

mod cache;
mod client;
mod error;
mod source;
mod subject;
mod tokens;
mod vault;

pub use client::{API_VERSION, IdentityClient, default_endpoint};
pub use error::IdentityError;
pub(crate) use source::UserTokens;
pub(crate) use subject::jwt_subject;
pub use subject::{Subject, UserSource, jwt_expiry};
pub use tokens::{DEFAULT_TOKEN_TTL, IdentitySettings, WorkloadTokens};
pub(crate) use vault::{ApiKeys, VaultKey};
