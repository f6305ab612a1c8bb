//! Attribute and metric names, exactly as the OpenTelemetry GenAI, MCP, RPC and database conventions spell
//! them (tests/telemetry.rs checks them against the official `opentelemetry-semantic-conventions` package), then the
//! few of ARMS' agent views, then our own under `fc_agent.`.

// GenAI.
pub(crate) const OPERATION_NAME: &str = "gen_ai.operation.name";
pub(crate) const PROVIDER_NAME: &str = "gen_ai.provider.name";
pub(crate) const AGENT_NAME: &str = "gen_ai.agent.name";
pub(crate) const CONVERSATION_ID: &str = "gen_ai.conversation.id";
pub(crate) const REQUEST_MODEL: &str = "gen_ai.request.model";
pub(crate) const REQUEST_STREAM: &str = "gen_ai.request.stream";
pub(crate) const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
pub(crate) const REQUEST_TOP_P: &str = "gen_ai.request.top_p";
pub(crate) const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub(crate) const RESPONSE_ID: &str = "gen_ai.response.id";
pub(crate) const RESPONSE_MODEL: &str = "gen_ai.response.model";
pub(crate) const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
pub(crate) const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
pub(crate) const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub(crate) const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub(crate) const TOKEN_TYPE: &str = "gen_ai.token.type";
pub(crate) const TOOL_NAME: &str = "gen_ai.tool.name";
pub(crate) const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
pub(crate) const TOOL_TYPE: &str = "gen_ai.tool.type";
pub(crate) const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
pub(crate) const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
pub(crate) const INPUT_MESSAGES: &str = "gen_ai.input.messages";
pub(crate) const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
pub(crate) const ERROR_TYPE: &str = "error.type";

// MCP.
pub(crate) const MCP_METHOD_NAME: &str = "mcp.method.name";
pub(crate) const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub(crate) const MCP_SESSION_ID: &str = "mcp.session.id";

// Generic client attributes.
pub(crate) const SERVER_ADDRESS: &str = "server.address";
pub(crate) const SERVER_PORT: &str = "server.port";
pub(crate) const RPC_SYSTEM: &str = "rpc.system";
pub(crate) const RPC_SERVICE: &str = "rpc.service";
pub(crate) const RPC_METHOD: &str = "rpc.method";
pub(crate) const DB_SYSTEM_NAME: &str = "db.system.name";
pub(crate) const DB_OPERATION_NAME: &str = "db.operation.name";
pub(crate) const FAAS_INVOCATION_ID: &str = "faas.invocation_id";

// ARMS / LoongSuite agent views.
pub(crate) const SPAN_KIND: &str = "gen_ai.span.kind";
pub(crate) const SESSION_ID: &str = "gen_ai.session.id";
pub(crate) const USER_ID: &str = "gen_ai.user.id";

// Ours: what no convention names.
/// The wire face a turn came in on: its route's name (`process`, `responses`, `chat_completions`, `a2a`,
/// `ag-ui`, `events`).
pub(crate) const FACE: &str = "fc_agent.face";
/// How a turn ended: `completed`, `incomplete`, `failed`, or `abandoned` (the client went away).
pub(crate) const OUTCOME: &str = "fc_agent.outcome";
/// The gateway's policy refused this tool call (HTTP 403); the model was told so.
pub(crate) const TOOL_DENIED: &str = "fc_agent.tool.denied";
/// A WorkloadAccessToken came from the instance's cache, without an Agent Identity call.
pub(crate) const CACHE_HIT: &str = "fc_agent.cache.hit";

// Values.
/// DashScope is not among the conventions' well-known providers; this is its name.
pub(crate) const PROVIDER_DASHSCOPE: &str = "dashscope";

// Metrics.
pub(crate) const METRIC_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
pub(crate) const METRIC_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
pub(crate) const METRIC_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
/// Turns by face and outcome (ours).
pub(crate) const METRIC_TURNS: &str = "fc_agent.turns";
