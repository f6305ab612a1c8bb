//! One turn's tools: a live connection per server (the user's kept one, or a new one), tools merged under
//! model-safe names, and each call routed back to its server and the server's own name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, try_join_all};
use rmcp::model::{CallToolRequestParams, JsonObject, ProtocolVersion, Tool};

use crate::telemetry::names;
use serde_json::Value;
use tokio::time::Instant;

use super::McpClient;
use super::error::{ErrorScope, McpError};
use super::live::{Live, Round, Start, authorization};
use super::names::NameAllocator;
use super::output::ToolOutput;
use super::pool::UserKey;
use super::question::{self, Asking, Called, Resume};
use super::revision::{Learned, McpProtocol};
use super::server::ServerUrl;
use crate::secret::Secret;

/// Closing only waits for rmcp's worker to stop (and for a DELETE if enabled); never hold the turn longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the model is told when the gateway's policy refuses a `tools/call` (HTTP 403): enough to explain
/// to the user what it may not do, nothing about the token.
const DENIED: &str = "the gateway denied this tool for this user (HTTP 403): the user's access policy does not \
                      allow it. Tell the user you are not permitted to use this tool on their behalf.";

/// A tool as the model sees it. `name` is the model-facing name (`^[A-Za-z0-9_-]{1,64}$`, unique in the
/// session); [`ToolSession::call`] maps it back to the server and the server's own name.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// The tool's JSON Schema for its arguments, as the server sent it (rmcp's parsed copy, shared).
    pub input_schema: Arc<JsonObject>,
}

/// One server's tools as the session listed them, under their model-facing names: what the turn reports
/// (`TurnEvent::ToolsListed`) so a face can show the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The server's label ([`super::names::server_labels`]).
    pub server: String,
    /// Shared: every face that shows the listing reads the same copy.
    pub tools: Arc<[ToolDef]>,
}

struct Connection {
    index: usize,
    server: ServerUrl,
    /// This server's part of [`ToolSession::tools`], made once per session for the turn to report.
    listed: Arc<[ToolDef]>,
    live: Arc<Live>,
}

struct Route {
    connection: usize,
    original: String,
}

/// The MCP connections of one turn. `call` takes `&self`, so a step's tool calls can run concurrently.
/// Dropping a `call` future makes rmcp send `notifications/cancelled` for it. A user's connections stay in
/// the client's pool for the next turn; a session opened without a user ([`McpClient::open`]) is closed
/// by [`ToolSession::close`].
pub struct ToolSession {
    client: McpClient,
    user: Option<UserKey>,
    connections: Vec<Connection>,
    tools: Vec<ToolDef>,
    routes: HashMap<String, Route>,
    tool_timeout: Duration,
    deadline: Instant,
    /// Per connection, the bearer it was opened with: to report it refused, and to scrub it from upstream
    /// text that ends up in an error.
    bearers: Vec<Secret>,
}

impl fmt::Debug for ToolSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolSession")
            .field("servers", &self.connections.iter().map(|c| c.server.shown.as_str()).collect::<Vec<_>>())
            .field("tools", &self.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
            .field("tool_timeout", &self.tool_timeout)
            .finish_non_exhaustive()
    }
}

impl ToolSession {
    /// All servers' tools, in server order then each server's order.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// Each server's listing, in server order.
    pub fn listings(&self) -> Vec<Listing> {
        self.connections.iter().map(|c| Listing { server: c.server.label.clone(), tools: c.listed.clone() }).collect()
    }

    /// The revision each server is spoken to in, in server order.
    pub fn protocol_versions(&self) -> Vec<ProtocolVersion> {
        self.connections.iter().map(|c| c.live.version.clone()).collect()
    }

    /// Calls a tool by its model-facing name. A tool that reports `isError` is an `Ok` with
    /// `is_error: true`, and so is a call the gateway's policy refused (HTTP 403): the model hears why and
    /// the turn goes on. `Err` means the call itself failed (401, transport, JSON-RPC error, timeout).
    /// A tool's questions are declined (see [`ToolSession::call_with`]).
    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, McpError> {
        Ok(self.call_with(name, arguments, None, Asking::Decline).await?.into_output())
    }

    /// [`ToolSession::call`], resumed with the user's answers to the questions it asked last time
    /// (`resume`: the same `requestState`), and with the server's questions handed back ([`Asking::Relay`])
    /// or declined at once and the call retried ([`Asking::Decline`]; the model's text says so).
    pub async fn call_with(
        &self,
        name: &str,
        arguments: Value,
        resume: Option<&Resume>,
        asking: Asking,
    ) -> Result<Called, McpError> {
        let route = self.routes.get(name).ok_or_else(|| McpError::UnknownTool { name: name.to_owned() })?;
        let connection = &self.connections[route.connection];
        let mut params = CallToolRequestParams::new(route.original.clone());
        match arguments {
            Value::Null => {}
            Value::Object(map) => params = params.with_arguments(map),
            _ => {
                return Err(McpError::InvalidArguments { name: name.to_owned() });
            }
        }
        if let Some(resume) = resume {
            params.input_responses = Some(question::responses(&resume.answers));
            params.request_state = resume.request_state.clone();
        }
        let bearer = &self.bearers[route.connection];
        let scope = ErrorScope { server: &connection.server.shown, raw_url: &connection.server.url, bearer };
        let deadline =
            Instant::now().checked_add(self.tool_timeout).map_or(self.deadline, |limit| limit.min(self.deadline));
        let session_id = connection.live.session_id();
        let span = super::trace::client_span(
            "tools/call",
            Some(&route.original),
            &connection.server.url,
            &connection.live.version,
            session_id.as_deref(),
        );
        // The MCP conventions carry the trace context in `params._meta` (the HTTP header follows it).
        if let Some((traceparent, tracestate)) = span.trace_fields() {
            let meta = params.meta.get_or_insert_with(Default::default);
            meta.0.set_traceparent(traceparent);
            if let Some(tracestate) = tracestate {
                meta.0.set_tracestate(tracestate);
            }
        }
        let called = self.rounds(connection, params, &scope, asking, deadline).await;
        super::trace::end(&span, &called);
        match called {
            Err(McpError::Forbidden { .. }) => {
                tracing::info!(server = %connection.server.shown, tool = %route.original, "the gateway denied a tool call");
                span.set(names::TOOL_DENIED, true);
                crate::telemetry::mark_current(names::TOOL_DENIED, true);
                Ok(Called::Output(ToolOutput::error(DENIED)))
            }
            Err(error) => {
                // A timeout leaves a request in the worker, a transport error a dead connection: neither is
                // handed to the next turn.
                if matches!(error, McpError::Timeout { .. } | McpError::Transport { .. })
                    && let Some(user) = &self.user
                {
                    self.client.pool.forget(connection.index, user, &connection.live);
                }
                Err(error)
            }
            ok => ok,
        }
    }

    /// The `tools/call` rounds of one call: questions handed back or declined and retried, a state-only
    /// `input_required` (the server shedding load) retried as it asks, at most [`question::MAX_ROUNDS`].
    async fn rounds(
        &self,
        connection: &Connection,
        mut params: CallToolRequestParams,
        scope: &ErrorScope<'_>,
        asking: Asking,
        deadline: Instant,
    ) -> Result<Called, McpError> {
        let mut declined: Vec<String> = Vec::new();
        for _ in 0..question::MAX_ROUNDS {
            let result = match connection.live.call(params.clone(), scope, deadline).await? {
                Round::Output(output) if declined.is_empty() => return Ok(Called::Output(output)),
                Round::Output(output) => {
                    return Ok(Called::Output(question::with_note(output, &question::declined_note(&declined))));
                }
                Round::InputRequired(result) => result,
            };
            let asked = match question::questions_of(result) {
                Ok(asked) => asked,
                Err(refused) => return Ok(Called::Output(ToolOutput::error(&refused))),
            };
            if !asked.questions.is_empty() && asking == Asking::Relay {
                return Ok(Called::Asks(asked));
            }
            declined.extend(asked.questions.iter().map(|q| q.message.clone()));
            let answers = question::declined(&asked.questions);
            params.input_responses = (!answers.is_empty()).then(|| question::responses(&answers));
            params.request_state = asked.request_state;
        }
        Ok(Called::Output(ToolOutput::error(&format!(
            "the tool did not finish after {} rounds of questions and retries; it was given up",
            question::MAX_ROUNDS
        ))))
    }

    /// The bearers the session was opened with, per server (to report one refused).
    pub(super) fn bearers(&self) -> &[Secret] {
        &self.bearers
    }

    /// The user the session's connections are kept for.
    pub(super) fn user(&self) -> Option<&UserKey> {
        self.user.as_ref()
    }

    /// A session with no servers (what a turn holds before its first one is open).
    pub(super) fn empty(client: &McpClient) -> ToolSession {
        ToolSession {
            client: client.clone(),
            user: None,
            connections: Vec::new(),
            tools: Vec::new(),
            routes: HashMap::new(),
            tool_timeout: Duration::ZERO,
            deadline: Instant::now(),
            bearers: Vec::new(),
        }
    }

    /// Ends the turn's use of its connections: kept ones stay in the pool for the user's next turn; a
    /// session without a user closes its own. Errors are of no use to the turn at this point.
    pub async fn close(self) {
        if self.user.is_some() {
            return;
        }
        join_all(
            self.connections.into_iter().filter_map(|c| Arc::into_inner(c.live)).map(|live| live.close(CLOSE_TIMEOUT)),
        )
        .await;
    }
}

/// `bearers[i]` is server `i`'s bearer (the pipeline's token sources give one per server). With a `user`,
/// each server's connection comes from (and goes back to) the pool.
pub(super) async fn open(
    client: &McpClient,
    bearers: &[Secret],
    user: Option<&UserKey>,
    deadline: Instant,
) -> Result<ToolSession, McpError> {
    let mut session = ToolSession {
        client: client.clone(),
        user: user.cloned(),
        connections: Vec::new(),
        tools: Vec::new(),
        routes: HashMap::new(),
        tool_timeout: client.tool_timeout,
        deadline,
        bearers: bearers.to_vec(),
    };
    if client.servers.is_empty() {
        return Ok(session);
    }
    if bearers.len() != client.servers.len() {
        return Err(McpError::InvalidBearer);
    }
    let opened = try_join_all(
        client
            .servers
            .iter()
            .zip(bearers)
            .enumerate()
            .map(|(index, (server, bearer))| connect(client, index, server, bearer, user, deadline)),
    )
    .await?;

    let mut names = NameAllocator::default();
    for (index, (live, tools)) in opened.into_iter().enumerate() {
        let first = session.tools.len();
        for tool in tools.iter() {
            let name = names.allocate(index, &tool.name);
            session.tools.push(ToolDef {
                name: name.clone(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: tool.input_schema.clone(),
            });
            session.routes.insert(name, Route { connection: index, original: tool.name.to_string() });
        }
        let server = client.servers[index].clone();
        session.connections.push(Connection { index, server, listed: Arc::from(&session.tools[first..]), live });
    }
    Ok(session)
}

/// One server's connection and tools for this turn: the user's kept connection when it still answers,
/// otherwise a new one (kept for the next turn when there is a user).
async fn connect(
    client: &McpClient,
    index: usize,
    server: &ServerUrl,
    bearer: &Secret,
    user: Option<&UserKey>,
    deadline: Instant,
) -> Result<(Arc<Live>, Arc<[Tool]>), McpError> {
    let scope = ErrorScope { server: &server.shown, raw_url: &server.url, bearer };
    let ttl = client.pool.limits().idle;
    if let Some(user) = user
        && let Some(live) = client.pool.get(index, user)
    {
        live.use_bearer(authorization(bearer)?);
        match live.tools(&scope, ttl, deadline).await {
            Ok((tools, listed_bytes)) => {
                if let Some(bytes) = listed_bytes {
                    client.pool.resize(index, user, &live, bytes);
                }
                return Ok((live, tools));
            }
            // The token is the problem, not the connection: the caller refreshes it and opens again.
            Err(error) if error.is_auth_failure() => {
                client.pool.forget(index, user, &live);
                return Err(error);
            }
            Err(error) => {
                tracing::info!(%error, "a kept MCP connection failed; opening a new one");
                client.pool.forget(index, user, &live);
            }
        }
    }
    let live = Arc::new(start(client, index, server, bearer, &scope, deadline).await?);
    let (tools, listed_bytes) = match live.tools(&scope, ttl, deadline).await {
        Ok(listed) => listed,
        Err(error) => {
            // A server that changed revision (redeployed behind the same URL) fails the first listing in the
            // one it had: probe it again next turn.
            if !error.is_auth_failure() {
                client.knowledge.forget(index);
            }
            return Err(error);
        }
    };
    if let Some(user) = user {
        client.pool.put(index, user, live.clone());
        client.pool.resize(index, user, &live, listed_bytes.unwrap_or(0));
    }
    Ok((live, tools))
}

/// A new connection in the revision the setting and what the instance learned call for (module docs of
/// [`super::revision`]): a known stateless server costs no request, a known or pinned 2025 server the
/// handshake, an unknown one the handshake first and discovery when the handshake is refused.
async fn start(
    client: &McpClient,
    index: usize,
    server: &ServerUrl,
    bearer: &Secret,
    scope: &ErrorScope<'_>,
    deadline: Instant,
) -> Result<Live, McpError> {
    let open = |start| async move {
        Live::open(
            &client.http,
            client.delete_session_on_close,
            server,
            authorization(bearer)?,
            bearer,
            start,
            deadline,
        )
        .await
    };
    let pinned = match &client.protocol {
        McpProtocol::Pinned(version) => Some(version.clone()),
        McpProtocol::Auto => None,
    };
    match (pinned, client.knowledge.get(index)) {
        (Some(version), _) if version.has_initialize() => open(Start::Handshake(version)).await,
        (_, Some(Learned::Stateless(info))) => match open(Start::Known(info)).await {
            Ok(live) => Ok(live),
            Err(error) => {
                client.knowledge.forget(index);
                Err(error)
            }
        },
        (Some(version), _) => learn(client, index, open(Start::Discover(version)).await),
        (None, Some(Learned::Handshake)) => open(Start::Handshake(ProtocolVersion::LATEST_WITH_INITIALIZE)).await,
        (None, None) => match open(Start::Handshake(ProtocolVersion::LATEST_WITH_INITIALIZE)).await {
            Ok(live) => learn(client, index, Ok(live)),
            Err(error) if refuses_handshake(&error) => {
                tracing::info!(server = %scope.server, "the MCP server refused initialize; trying 2026-07-28 discovery");
                match open(Start::Discover(ProtocolVersion::V_2026_07_28)).await {
                    Ok(live) => learn(client, index, Ok(live)),
                    Err(_) => Err(error),
                }
            }
            Err(error) => Err(error),
        },
    }
}

fn learn(client: &McpClient, index: usize, opened: Result<Live, McpError>) -> Result<Live, McpError> {
    if let Ok(live) = &opened {
        client.knowledge.set(index, live.learned());
    }
    opened
}

/// How a 2026-only server answers `initialize`: a JSON-RPC error (method not found, unsupported version) or
/// an HTTP client error for a request it does not take. 401/403 are the token's, not the revision's.
fn refuses_handshake(error: &McpError) -> bool {
    match error {
        McpError::Protocol { .. } => true,
        McpError::HttpStatus { status, .. } => matches!(status, 400 | 404 | 405 | 406 | 415 | 422),
        _ => false,
    }
}
