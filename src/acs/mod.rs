//! Alibaba Cloud access: credentials and their providers, the ACS3-HMAC-SHA256 signer, and a small RPC
//! client (action + form params → JSON or [`AcsError`]). Knows nothing about Agent Identity or FC.

mod credentials;
mod credentials_uri;
mod error;
mod rpc;
pub mod signer;

pub use credentials::{
    ChainProvider, Credentials, CredentialsError, CredentialsProvider, StaticProvider, parse_expiration,
};
pub use credentials_uri::CredentialsUriProvider;
pub use error::AcsError;
pub use rpc::{Param, RETRY_AFTER_HEADER, RetryPolicy, RpcClient, anonymous_query};
