//! The caller's WorkloadAccessToken as the tool client's bearer: [`UserTokens`] is the
//! [`TokenSource`] the MCP client asks, so a refused token goes back to the cache, not to the app.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::subject::Subject;
use super::tokens::WorkloadTokens;
use crate::acs::CredentialsProvider;
use crate::mcp::{TokenError, TokenSource};
use crate::secret::Secret;

/// One turn's view of the token cache: this subject's token, fetched with these credentials, within
/// this deadline.
pub(crate) struct UserTokens {
    tokens: Arc<WorkloadTokens>,
    subject: Subject,
    credentials: Arc<dyn CredentialsProvider>,
    deadline: Instant,
}

impl UserTokens {
    pub(crate) fn new(
        tokens: Arc<WorkloadTokens>,
        subject: Subject,
        credentials: Arc<dyn CredentialsProvider>,
        deadline: Instant,
    ) -> Self {
        UserTokens { tokens, subject, credentials, deadline }
    }
}

impl TokenSource for UserTokens {
    fn token(&self) -> BoxFuture<'_, Result<Secret, TokenError>> {
        Box::pin(async move {
            let token = self.tokens.token(&self.subject, self.credentials.as_ref(), self.deadline).await?;
            Ok(token)
        })
    }

    fn refused(&self, token: &Secret) {
        self.tokens.invalidate_token(&self.subject, token);
    }
}
