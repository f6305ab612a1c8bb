//! The stand-in's tools and its rmcp `ServerHandler`: which revisions it speaks, the 2026-07-28 cache hints
//! on `tools/list`, the tool that appears on [`McpStandIn::change_tools`](super::McpStandIn::change_tools)
//! and, on 2026-07-28, `subscriptions/listen` telling of that change.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler, tool, tool_router};
use tokio::sync::oneshot;

use super::notice::Notices;
use super::{Revisions, StandInOptions};

/// Served only after [`McpStandIn::change_tools`](super::McpStandIn::change_tools) (before that it is
/// neither listed nor callable), so a client that re-lists can be seen to have done so.
pub const LATE_TOOL: &str = "goodbyeworld";

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

/// The longest `sleep` the stand-in takes: long enough for several keep-alive intervals in a test, short
/// enough that a mistaken call cannot hold a test for long.
const MAX_SLEEP_SECS: f64 = 30.0;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SleepArgs {
    /// How long to work before answering, in seconds (at most 30).
    seconds: f64,
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
    notices: Arc<Notices>,
    /// [`LATE_TOOL`] with the prefix.
    late_tool: String,
    revisions: Revisions,
    only_2025_03_26: bool,
    phantom_tool: bool,
    page_size: Option<usize>,
    list_ttl_ms: Option<u64>,
    cache_scope: Option<CacheScope>,
}

impl StandInTools {
    pub(super) fn new(rendezvous: Arc<Rendezvous>, notices: Arc<Notices>, options: &StandInOptions) -> Self {
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
            notices,
            late_tool: format!("{prefix}{LATE_TOOL}"),
            revisions: options.revisions,
            only_2025_03_26: options.only_2025_03_26,
            phantom_tool: options.phantom_tool,
            page_size: options.page_size,
            list_ttl_ms: options.list_ttl_ms,
            cache_scope: options.cache_scope,
        }
    }

    fn served(&self, name: &str) -> bool {
        name != self.late_tool || self.notices.generation() > 0
    }

    fn listed_tools(&self) -> Vec<Tool> {
        let mut tools = self.tool_router.list_all();
        tools.retain(|tool| self.served(&tool.name));
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

    #[tool(description = "Says goodbye by name (listed only once the tool list has changed).")]
    fn goodbyeworld(&self, Parameters(HelloArgs { name }): Parameters<HelloArgs>) -> String {
        format!("Goodbye, {name}!")
    }

    #[tool(description = "Works silently for the given seconds (at most 30), then says so: a slow tool.")]
    async fn sleep(&self, Parameters(SleepArgs { seconds }): Parameters<SleepArgs>) -> String {
        let seconds = seconds.clamp(0.0, MAX_SLEEP_SECS);
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        format!("slept {seconds} s")
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

impl ServerHandler for StandInTools {
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.listed_tools();
        // Hints only where the revision has them; rmcp fills what is left unset on 2026-07-28 (0 ms, private).
        let hinted = |mut page: ListToolsResult| {
            if context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28) {
                page.ttl_ms = self.list_ttl_ms;
                page.cache_scope = self.cache_scope;
            }
            page
        };
        let Some(page_size) = self.page_size.filter(|&n| n > 0) else {
            return Ok(hinted(ListToolsResult::with_all_items(tools)));
        };
        let start = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor.parse::<usize>().map_err(|_| ErrorData::invalid_params("bad cursor", None))?,
            None => 0,
        };
        let end = (start + page_size).min(tools.len());
        let mut page = ListToolsResult::with_all_items(tools.get(start..end).unwrap_or_default().to_vec());
        page.next_cursor = (end < tools.len()).then(|| end.to_string());
        Ok(hinted(page))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.served(&request.name) {
            // The router's own answer for a tool it does not have.
            return Err(ErrorData::invalid_params("tool not found", None));
        }
        self.tool_router.call(ToolCallContext::new(self, request, context)).await
    }

    /// rmcp checks `Mcp-Param-*` headers of a 2026 `tools/call` against this schema.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).filter(|_| self.served(name)).cloned()
    }

    /// Tools whose list can change: 2025 clients are told on a response (`notice.rs`), 2026 ones on a
    /// `subscriptions/listen` stream.
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build();
        ServerConfig::new(capabilities).with_server_info(Implementation::from_build_env())
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.revisions.supported_versions(self.only_2025_03_26)
    }

    fn accepted_subscription_filter(&self, _requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    /// Sends `notifications/tools/list_changed` on the listen stream at each change until the client ends it.
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.notices.subscribe();
        changes.mark_unchanged();
        loop {
            tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if subscription.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
