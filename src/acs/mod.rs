//! Alibaba Cloud access: credentials and their providers, the ACS3-HMAC-SHA256 signer, and a small RPC
//! client (action + form params → JSON or [`AcsError`]), and FC 3.0's asynchronous `InvokeFunction`
//! (`fc.rs`). Knows nothing about Agent Identity or turns.

mod credentials;
mod credentials_uri;
mod error;
pub mod fc;
mod rpc;
pub mod signer;

/// The retry schedule of [`RpcClient::with_retry`] (shared with the model client: `crate::retry`).
pub use crate::retry::RetryPolicy;
pub use credentials::{
    ChainProvider, Credentials, CredentialsError, CredentialsProvider, StaticProvider, parse_expiration,
};
pub use credentials_uri::CredentialsUriProvider;
pub use error::AcsError;
pub use rpc::{Param, RETRY_AFTER_HEADER, RpcClient, anonymous_query};
