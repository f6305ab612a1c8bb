//! One turn's tools: an MCP session opened with the token source's bearer, re-opened once with a fresh
//! token when a server answers 401.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::McpClient;
use super::error::McpError;
use super::output::ToolOutput;
use super::session::{Listing, ToolDef, ToolSession};
use super::token::TokenSource;

/// The tools of one turn. `call` takes `&self`: one step's calls run concurrently on the same session.
pub struct Tools {
    client: McpClient,
    source: Arc<dyn TokenSource>,
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
    /// Opens the session (initialize + tools/list) with the source's token. A 401 reports the token as
    /// refused and opens once more with a fresh one.
    pub async fn open(client: McpClient, source: Arc<dyn TokenSource>, deadline: Instant) -> Result<Tools, McpError> {
        let token = source.token().await.map_err(McpError::Token)?;
        let (session, refreshed) = match client.open(&token, deadline).await {
            Ok(session) => (session, false),
            Err(error) if error.is_unauthorized() => {
                tracing::info!(%error, "MCP refused the token; refreshing it once");
                source.refused(&token);
                let fresh = source.token().await.map_err(McpError::Token)?;
                (client.open(&fresh, deadline).await?, true)
            }
            Err(error) => return Err(error),
        };
        let current = Current { session: Arc::new(session), generation: 0, refreshed };
        Ok(Tools { client, source, deadline, current: Mutex::new(current) })
    }

    /// The tools as the model is offered them (the current session's; a re-opened session may differ).
    pub(crate) async fn definitions(&self) -> Vec<ToolDef> {
        self.current.lock().await.session.tools().to_vec()
    }

    /// Each server's listing (the current session's; a session re-opened mid-turn may list other tools).
    pub(crate) async fn listings(&self) -> Vec<Listing> {
        self.current.lock().await.session.listings()
    }

    /// Calls a tool. A 401 mid-turn gets the turn's one refresh and the call is made again.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, McpError> {
        let (session, generation) = {
            let current = self.current.lock().await;
            (current.session.clone(), current.generation)
        };
        match session.call(name, arguments.clone()).await {
            Err(error) if error.is_unauthorized() => match self.reauthorize(generation).await? {
                Some(session) => session.call(name, arguments).await,
                None => Err(error),
            },
            other => other,
        }
    }

    /// A session opened with a fresh token, or `None` if this turn already used its one refresh.
    async fn reauthorize(&self, seen_generation: u64) -> Result<Option<Arc<ToolSession>>, McpError> {
        let mut current = self.current.lock().await;
        if current.generation != seen_generation {
            return Ok(Some(current.session.clone()));
        }
        if current.refreshed {
            return Ok(None);
        }
        current.refreshed = true;
        tracing::info!("MCP refused the token mid-turn; refreshing it once");
        self.source.refused(current.session.bearer());
        let fresh = self.source.token().await.map_err(McpError::Token)?;
        let session = Arc::new(self.client.open(&fresh, self.deadline).await?);
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
