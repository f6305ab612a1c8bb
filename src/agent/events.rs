//! What one agent turn reports, in order, to whoever renders it (a wire face's renderer).

use std::sync::Arc;

use crate::failure::Failure;
use crate::llm::Usage;
use crate::mcp::{ToolDef, ToolOutput};

/// One step of a running turn. A turn emits any number of these and ends with exactly one `Finished`.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// The tools one MCP server listed for this turn (model-facing names), once per server, in server
    /// order, before the first model call. Only for display (the Responses face's `mcp_list_tools` item);
    /// a listing from a session re-opened mid-turn (401 refresh) is not reported again.
    ToolsListed { server: String, tools: Arc<[ToolDef]> },
    /// A fragment of the model's reasoning (`reasoning_content`).
    ReasoningDelta(String),
    /// A fragment of the model's answer text.
    TextDelta(String),
    /// The model began a tool call. `call_id` is unique within the turn.
    ToolCallStarted { call_id: String, name: String },
    /// A fragment of that call's JSON arguments.
    ToolCallArgumentsDelta { call_id: String, delta: String },
    /// The call's arguments are complete (the concatenation of every delta, or `{}` when there were none).
    ToolCallCompleted { call_id: String, name: String, arguments: String },
    /// The tool answered: its MCP content as the server sent it (or an error the model is told about).
    ToolResult { call_id: String, name: String, output: ToolOutput },
    /// Token usage of one model call; consumers sum them.
    Usage(Usage),
    /// The last event of every turn.
    Finished(TurnEnd),
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    Completed,
    /// A bound was hit (`max_iterations`); what was produced so far stands.
    Incomplete(Failure),
    Failed(Failure),
}
