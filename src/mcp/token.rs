//! Where the tool client's bearer comes from. Like rmcp's `AuthClient`, the client does not know how a
//! token is made: it asks a [`TokenSource`] for one and tells it when a server refused it. `identity`
//! implements it with the caller's WorkloadAccessToken; a test can implement it with a fixed string.

use std::error::Error as StdError;

use futures_util::future::BoxFuture;

use crate::secret::Secret;

/// A token source could not give a token. The source's own error is kept whole (boxed), so the failure
/// table can classify it by its real type (`identity::IdentityError` → `identity_error`, …).
pub type TokenError = Box<dyn StdError + Send + Sync>;

/// The bearer for the MCP servers of one turn.
pub trait TokenSource: Send + Sync {
    /// The token to send now (a cached one when the source has it).
    fn token(&self) -> BoxFuture<'_, Result<Secret, TokenError>>;

    /// A server answered 401 to `token`: forget it, so the next [`TokenSource::token`] fetches a fresh
    /// one. Only `token` itself is dropped, so many requests refused with the same token cause one refresh.
    fn refused(&self, token: &Secret);
}
