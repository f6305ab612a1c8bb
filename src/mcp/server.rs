//! A configured MCP server as every part of the client refers to it.

use std::fmt;
use std::sync::Arc;

/// A configured MCP server: the URL we send to (rmcp takes it as a string), the redacted form every
/// error and log line uses, the label its tool listing is shown under ([`super::names::server_labels`]), and
/// what it takes as its bearer.
#[derive(Clone)]
pub(crate) struct ServerUrl {
    pub(crate) url: Arc<str>,
    pub(crate) shown: String,
    pub(crate) label: String,
    /// `None`: the WorkloadAccessToken is this server's bearer.
    pub(crate) grant: Option<OAuth2Grant>,
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// "Send this Agent Identity OAuth2 credential provider's access token, with these scopes": what a server
/// that acts on the user's third-party account (a calendar, a chat tool) takes as its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OAuth2Grant {
    /// The OAuth2 credential provider (`ResourceCredentialProviderName`).
    pub provider: String,
    /// Sent as `Scopes`, in this order.
    pub scopes: Vec<String>,
}
