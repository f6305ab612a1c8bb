//! The turn's tools: one MCP session, re-opened once with a fresh token when the gateway says 401.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::event::{FailureCode, TurnError};
use crate::llm::ToolSpec;
use crate::mcp::{McpClient, McpError, ToolOutput, ToolSession};
use crate::secret::Secret;

/// Gets a fresh bearer after the cached one was refused (the app invalidates its token cache first).
pub type Refresh = Box<dyn Fn() -> BoxFuture<'static, Result<Secret, TurnError>> + Send + Sync>;

/// The tools of one turn. `call` takes `&self`: one step's calls run concurrently on the same session.
pub struct Toolbox {
    mcp: McpClient,
    refresh: Refresh,
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

impl Toolbox {
    /// Opens the session (initialize + tools/list). A 401 gets one token refresh and a second attempt.
    pub async fn open(
        mcp: McpClient,
        bearer: Secret,
        refresh: Refresh,
        deadline: Instant,
    ) -> Result<Toolbox, TurnError> {
        let (session, refreshed) = match mcp.open(&bearer, deadline).await {
            Ok(session) => (session, false),
            Err(error) if error.is_unauthorized() => {
                tracing::info!(%error, "MCP refused the token; refreshing it once");
                let fresh = refresh().await?;
                (mcp.open(&fresh, deadline).await.map_err(|e| fatal(e, deadline))?, true)
            }
            Err(error) => return Err(fatal(error, deadline)),
        };
        Ok(Toolbox {
            mcp,
            refresh,
            deadline,
            current: Mutex::new(Current { session: Arc::new(session), generation: 0, refreshed }),
        })
    }

    /// The tools as the model is offered them (the current session's; a re-opened session may differ).
    pub async fn specs(&self) -> Vec<ToolSpec> {
        let current = self.current.lock().await;
        current
            .session
            .tools()
            .iter()
            .map(|tool| ToolSpec {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool.input_schema.clone(),
            })
            .collect()
    }

    /// Calls a tool. Failures the model can act on (bad arguments, unknown tool, timeout, JSON-RPC error)
    /// come back as an `is_error` output for the model; auth and transport failures end the turn.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, TurnError> {
        let (session, generation) = {
            let current = self.current.lock().await;
            (current.session.clone(), current.generation)
        };
        let result = match session.call(name, arguments.clone()).await {
            Err(error) if error.is_unauthorized() => match self.reauthorize(generation).await? {
                Some(session) => session.call(name, arguments).await,
                None => Err(error),
            },
            other => other,
        };
        match result {
            Ok(output) => Ok(output),
            Err(error) if recoverable(&error) => Ok(error_output(&error.to_string())),
            Err(error) => Err(fatal(error, self.deadline)),
        }
    }

    /// A session opened with a fresh token, or `None` if this turn already used its one refresh.
    async fn reauthorize(&self, seen_generation: u64) -> Result<Option<Arc<ToolSession>>, TurnError> {
        let mut current = self.current.lock().await;
        if current.generation != seen_generation {
            return Ok(Some(current.session.clone()));
        }
        if current.refreshed {
            return Ok(None);
        }
        current.refreshed = true;
        tracing::info!("MCP refused the token mid-turn; refreshing it once");
        let fresh = (self.refresh)().await?;
        let session = Arc::new(self.mcp.open(&fresh, self.deadline).await.map_err(|e| fatal(e, self.deadline))?);
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

fn recoverable(error: &McpError) -> bool {
    matches!(
        error,
        McpError::Timeout { .. }
            | McpError::UnknownTool { .. }
            | McpError::InvalidArguments { .. }
            | McpError::Protocol { .. }
    )
}

fn fatal(error: McpError, deadline: Instant) -> TurnError {
    let code = if error.is_auth_failure() {
        FailureCode::ToolUnauthorized
    } else if matches!(error, McpError::Timeout { .. }) && Instant::now() >= deadline {
        // The function timeout cut the MCP exchange short: the server may be fine, time ran out.
        FailureCode::DeadlineExceeded
    } else {
        FailureCode::ToolError
    };
    TurnError::new(code, error.to_string())
}

/// An MCP text content block, keys in wire order.
#[derive(serde::Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// A tool answer that reports a failure to the model, shaped like an MCP content list.
pub(super) fn error_output(message: &str) -> ToolOutput {
    let text = format!("Error: {message}");
    ToolOutput {
        content_json: crate::mcp::to_python_json(&[TextBlock { kind: "text", text: &text }]),
        text,
        is_error: true,
    }
}
