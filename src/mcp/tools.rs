//! One turn's tools: an MCP session opened with each server's bearer from its token source, re-opened once
//! with a fresh token when a server answers 401.

use std::sync::Arc;

use futures_util::future::try_join_all;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::McpClient;
use super::error::McpError;
use super::output::ToolOutput;
use super::pool::UserKey;
use super::question::{Asking, Called, Resume};
use super::session::{Listing, ToolDef, ToolSession};
use super::token::TokenSource;
use crate::secret::Secret;

/// The tools of one turn. `call` takes `&self`: one step's calls run concurrently on the same session.
pub struct Tools {
    client: McpClient,
    /// Per server (same order as the client's servers): where its bearer comes from.
    sources: Vec<Arc<dyn TokenSource>>,
    /// Whose connections these are (kept in the client's pool between turns); `None`: nobody's.
    user: Option<UserKey>,
    deadline: Instant,
    current: Mutex<Current>,
}

struct Current {
    session: Arc<ToolSession>,
    /// Bumped when the session is replaced, so concurrent 401s refresh only once.
    generation: u64,
    /// The one refresh a turn gets has been spent.
    refreshed: bool,
}

impl Tools {
    /// Opens the session (initialize + tools/list) with the source's token for every server. A 401 reports
    /// the token as refused and opens once more with a fresh one.
    pub async fn open(client: McpClient, source: Arc<dyn TokenSource>, deadline: Instant) -> Result<Tools, McpError> {
        let sources = vec![source; client.servers.len().max(1)];
        Tools::open_each(client, sources, None, deadline).await
    }

    /// [`Tools::open`] with a token source per server (`sources[i]` for server `i`): a server that takes the
    /// user's OAuth2 token has a source of its own. A 401 is reported only to the refusing server's source.
    /// With a `user` (the verified subject the tokens are for, known once the sources gave their tokens),
    /// the user's connections are reused and kept for the next turn.
    pub async fn open_each(
        client: McpClient,
        sources: Vec<Arc<dyn TokenSource>>,
        user: Option<UserKey>,
        deadline: Instant,
    ) -> Result<Tools, McpError> {
        let placeholder = ToolSession::empty(&client);
        let tools = Tools {
            client,
            sources,
            user,
            deadline,
            current: Mutex::new(Current { session: Arc::new(placeholder), generation: 0, refreshed: false }),
        };
        let bearers = tools.bearers().await?;
        let user = tools.user.as_ref();
        let (session, refreshed) = match tools.client.open_each(&bearers, user, deadline).await {
            Ok(session) => (session, false),
            Err(error) if error.is_unauthorized() => {
                tracing::info!(%error, "MCP refused the token; refreshing it once");
                tools.report_refused(&error, &bearers);
                let fresh = tools.bearers().await?;
                (tools.client.open_each(&fresh, user, deadline).await?, true)
            }
            Err(error) => return Err(error),
        };
        *tools.current.lock().await = Current { session: Arc::new(session), generation: 0, refreshed };
        Ok(tools)
    }

    /// Every server's bearer, asked for concurrently (one source may wait for the user's consent).
    async fn bearers(&self) -> Result<Vec<Secret>, McpError> {
        let servers = self.client.servers.len();
        try_join_all(self.sources.iter().take(servers).map(|source| source.token())).await.map_err(McpError::Token)
    }

    /// Tells the refusing server's source (every server the error names) that its bearer was refused.
    fn report_refused(&self, error: &McpError, bearers: &[Secret]) {
        let Some(server) = error.unauthorized_server() else {
            return;
        };
        for index in self.client.servers_named(server) {
            if let (Some(source), Some(bearer)) = (self.sources.get(index), bearers.get(index)) {
                source.refused(bearer);
            }
        }
    }

    /// The tools as the model is offered them (the current session's; a re-opened session may differ).
    pub(crate) async fn definitions(&self) -> Vec<ToolDef> {
        self.current.lock().await.session.tools().to_vec()
    }

    /// Each server's listing (the current session's; a session re-opened mid-turn may list other tools).
    pub(crate) async fn listings(&self) -> Vec<Listing> {
        self.current.lock().await.session.listings()
    }

    /// Calls a tool, declining any question it asks. A 401 mid-turn gets the turn's one refresh and the
    /// call is made again.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, McpError> {
        Ok(self.call_with(name, arguments, None, Asking::Decline).await?.into_output())
    }

    /// [`Tools::call`] with the user's answers to the call's last questions, and its questions handed
    /// back or declined as `asking` says ([`ToolSession::call_with`]).
    pub async fn call_with(
        &self,
        name: &str,
        arguments: Value,
        resume: Option<&Resume>,
        asking: Asking,
    ) -> Result<Called, McpError> {
        let (session, generation) = {
            let current = self.current.lock().await;
            (current.session.clone(), current.generation)
        };
        match session.call_with(name, arguments.clone(), resume, asking).await {
            Err(error) if error.is_unauthorized() => match self.reauthorize(&error, generation).await? {
                Some(session) => session.call_with(name, arguments, resume, asking).await,
                None => Err(error),
            },
            other => other,
        }
    }

    /// A session opened with a fresh token, or `None` if this turn already used its one refresh.
    async fn reauthorize(&self, error: &McpError, seen_generation: u64) -> Result<Option<Arc<ToolSession>>, McpError> {
        let mut current = self.current.lock().await;
        if current.generation != seen_generation {
            return Ok(Some(current.session.clone()));
        }
        if current.refreshed {
            return Ok(None);
        }
        current.refreshed = true;
        tracing::info!("MCP refused the token mid-turn; refreshing it once");
        self.report_refused(error, current.session.bearers());
        if let Some(user) = current.session.user() {
            // The kept connections carry the refused token's session state; the fresh token opens new ones.
            self.client.pool.forget_user(user);
        }
        let fresh = self.bearers().await?;
        let session = Arc::new(self.client.open_each(&fresh, self.user.as_ref(), self.deadline).await?);
        let old = std::mem::replace(&mut current.session, session.clone());
        current.generation += 1;
        drop(current);
        if let Ok(old) = Arc::try_unwrap(old) {
            old.close().await;
        }
        Ok(Some(session))
    }

    /// Ends the MCP session(s) of the turn.
    pub async fn close(self) {
        let current = self.current.into_inner();
        if let Ok(session) = Arc::try_unwrap(current.session) {
            session.close().await;
        }
    }
}
