//! The stand-in's tools and its rmcp `ServerHandler`.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams, ProtocolVersion, Tool};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tokio::sync::oneshot;

use super::StandInOptions;

const RENDEZVOUS_WAIT: Duration = Duration::from_secs(5);

/// Pairs two concurrent `rendezvous` calls.
#[derive(Default)]
pub(super) struct Rendezvous {
    waiting: Mutex<Option<oneshot::Sender<()>>>,
}

impl Rendezvous {
    async fn meet(&self) -> bool {
        let arrived = {
            let mut slot = self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // A sender whose caller gave up fails to send; then this call waits in its place.
            if let Some(partner) = slot.take()
                && partner.send(()).is_ok()
            {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            *slot = Some(tx);
            rx
        };
        matches!(tokio::time::timeout(RENDEZVOUS_WAIT, arrived).await, Ok(Ok(())))
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct HelloArgs {
    /// Who to greet.
    name: String,
}

#[derive(Clone)]
pub(super) struct StandInTools {
    tool_router: ToolRouter<Self>,
    rendezvous: Arc<Rendezvous>,
    only_2025_03_26: bool,
    phantom_tool: bool,
    page_size: Option<usize>,
}

impl StandInTools {
    pub(super) fn new(rendezvous: Arc<Rendezvous>, options: &StandInOptions) -> Self {
        let prefix = options.tool_prefix.as_str();
        let mut tool_router = Self::tool_router();
        if !prefix.is_empty() {
            let mut renamed = ToolRouter::new();
            for mut route in tool_router {
                route.attr.name = Cow::Owned(format!("{prefix}{}", route.attr.name));
                renamed.add_route(route);
            }
            tool_router = renamed;
        }
        StandInTools {
            tool_router,
            rendezvous,
            only_2025_03_26: options.only_2025_03_26,
            phantom_tool: options.phantom_tool,
            page_size: options.page_size,
        }
    }

    fn listed_tools(&self) -> Vec<Tool> {
        let mut tools = self.tool_router.list_all();
        if self.phantom_tool {
            let schema = serde_json::json!({"type": "object"});
            let schema = schema.as_object().cloned().unwrap_or_default();
            tools.push(Tool::new("phantom", "Listed but not served.", Arc::new(schema)));
        }
        tools
    }
}

#[tool_router]
impl StandInTools {
    #[tool(description = "Returns the current UTC time in RFC 3339 format.")]
    fn getutctime(&self) -> String {
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
    }

    #[tool(description = "Greets someone by name.")]
    fn helloworld(&self, Parameters(HelloArgs { name }): Parameters<HelloArgs>) -> String {
        format!("Hello, {name}!")
    }

    #[tool(description = "Always fails: returns a result with isError set.")]
    fn broken(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text("the broken tool always fails")])
    }

    #[tool(description = "Answers \"met\" once a second concurrent rendezvous call arrives (waits up to 5 s).")]
    async fn rendezvous(&self) -> CallToolResult {
        if self.rendezvous.meet().await {
            CallToolResult::success(vec![ContentBlock::text("met")])
        } else {
            CallToolResult::error(vec![ContentBlock::text("no concurrent call")])
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for StandInTools {
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.listed_tools();
        let Some(page_size) = self.page_size.filter(|&n| n > 0) else {
            return Ok(ListToolsResult::with_all_items(tools));
        };
        let start = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor.parse::<usize>().map_err(|_| ErrorData::invalid_params("bad cursor", None))?,
            None => 0,
        };
        let end = (start + page_size).min(tools.len());
        let mut page = ListToolsResult::with_all_items(tools.get(start..end).unwrap_or_default().to_vec());
        page.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(page)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.only_2025_03_26 {
            Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_03_26))
        } else {
            Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }
}
