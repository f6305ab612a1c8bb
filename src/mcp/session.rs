//! One turn's MCP sessions: opened together, tools merged under model-safe names, closed together.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, try_join_all};
use http::{HeaderValue, header::AUTHORIZATION};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ServiceExt, model::JsonObject};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use super::error::{ErrorScope, McpError};
use super::http::{SessionHttp, SessionOwner};
use super::names::NameAllocator;
use super::output::ToolOutput;
use super::{McpClient, ServerUrl};
use crate::secret::Secret;

/// The revision gateways speak today; servers answer with theirs if older (2025-03-26 works too).
const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_06_18;

/// Closing only waits for rmcp's worker to stop (and for a DELETE if enabled); never hold the turn longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

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
    server: ServerUrl,
    /// This server's part of [`ToolSession::tools`], made once per session for the turn to report.
    listed: Arc<[ToolDef]>,
    service: RunningService<RoleClient, ClientConfig>,
    /// Dropped with the connection: whatever rmcp's worker still has in flight is abandoned.
    _owner: SessionOwner,
}

struct Route {
    connection: usize,
    original: String,
}

/// The MCP sessions of one turn. `call` takes `&self`, so a step's tool calls can run concurrently.
/// Dropping a `call` future makes rmcp send `notifications/cancelled` for it; dropping the session stops
/// its workers and their in-flight HTTP requests; [`ToolSession::close`]
/// does the same and waits for rmcp's workers to stop.
pub struct ToolSession {
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

    /// Calls a tool by its model-facing name. A tool that reports `isError` is an `Ok` with
    /// `is_error: true`; `Err` means the call itself failed (auth, transport, JSON-RPC error, timeout).
    pub async fn call(&self, name: &str, arguments: Value) -> Result<ToolOutput, McpError> {
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
        let bearer = &self.bearers[route.connection];
        let scope = ErrorScope { server: &connection.server.shown, raw_url: &connection.server.url, bearer };
        let deadline =
            Instant::now().checked_add(self.tool_timeout).map_or(self.deadline, |limit| limit.min(self.deadline));
        match timeout_at(deadline, connection.service.peer().call_tool(params)).await {
            Err(_elapsed) => Err(scope.timeout("tools/call")),
            Ok(Err(error)) => Err(scope.classify_service(error)),
            Ok(Ok(result)) => Ok(result.into()),
        }
    }

    /// A session with no servers (what a turn holds before its first one is open).
    pub(super) fn empty() -> ToolSession {
        ToolSession {
            connections: Vec::new(),
            tools: Vec::new(),
            routes: HashMap::new(),
            tool_timeout: Duration::ZERO,
            deadline: Instant::now(),
            bearers: Vec::new(),
        }
    }

    /// The bearers the session was opened with, per server (to report one refused).
    pub(super) fn bearers(&self) -> &[Secret] {
        &self.bearers
    }

    /// Ends the turn's sessions. Errors are of no use to the turn at this point and are dropped.
    pub async fn close(self) {
        join_all(self.connections.into_iter().map(|connection| async move {
            // The owner lives until the close is done: the optional DELETE goes out during it.
            let Connection { mut service, _owner, .. } = connection;
            let _ = service.close_with_timeout(CLOSE_TIMEOUT).await;
        }))
        .await;
    }
}

/// `bearers[i]` is server `i`'s bearer (the pipeline's token sources give one per server).
pub(super) async fn open(client: &McpClient, bearers: &[Secret], deadline: Instant) -> Result<ToolSession, McpError> {
    let mut session = ToolSession {
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
    let mut headers = Vec::with_capacity(bearers.len());
    for bearer in bearers {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", bearer.expose())).map_err(|_| McpError::InvalidBearer)?;
        // Sensitive values print as "Sensitive" in Debug, and rmcp's transport config derives Debug.
        authorization.set_sensitive(true);
        headers.push(authorization);
    }

    let opened = try_join_all(
        client
            .servers
            .iter()
            .zip(headers)
            .zip(bearers)
            .map(|((server, authorization), bearer)| open_one(client, server, authorization, bearer, deadline)),
    )
    .await?;

    let mut names = NameAllocator::default();
    for (index, (mut connection, tools)) in opened.into_iter().enumerate() {
        let first = session.tools.len();
        for tool in tools {
            let name = names.allocate(index, &tool.name);
            session.tools.push(ToolDef {
                name: name.clone(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: tool.input_schema,
            });
            session.routes.insert(name, Route { connection: index, original: tool.name.into_owned() });
        }
        connection.listed = Arc::from(&session.tools[first..]);
        session.connections.push(connection);
    }
    Ok(session)
}

async fn open_one(
    client: &McpClient,
    server: &ServerUrl,
    authorization: HeaderValue,
    bearer: &Secret,
    deadline: Instant,
) -> Result<(Connection, Vec<Tool>), McpError> {
    let scope = ErrorScope { server: &server.shown, raw_url: &server.url, bearer };
    // Dropped on any early return (failure, deadline): the handshake's requests end with it.
    let (http, owner) = SessionHttp::new(client.http.clone(), client.delete_session_on_close);
    let handshake = async {
        let config = StreamableHttpClientTransportConfig::with_uri(server.url.clone())
            .custom_headers(HashMap::from([(AUTHORIZATION, authorization)]));
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let service = client_config().serve(transport).await.map_err(|e| scope.classify_init(e))?;
        let tools = service.peer().list_all_tools().await.map_err(|e| scope.classify_service(e))?;
        Ok((service, tools))
    };
    let (service, tools) = timeout_at(deadline, handshake).await.map_err(|_| scope.timeout("session open"))??;
    let connection = Connection { server: server.clone(), listed: Arc::from([]), service, _owner: owner };
    Ok((connection, tools))
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(PROTOCOL_VERSION)
}
