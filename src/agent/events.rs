//! What one agent turn reports, in order, to whoever renders it (a wire face's renderer).

use std::sync::Arc;

use crate::failure::Failure;
use crate::llm::Usage;
use crate::mcp::{QuestionForm, ToolDef, ToolOutput};

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
    /// An MCP server needs the user's OAuth2 token for `provider` and the vault holds none: the user must
    /// open `url` and consent; the turn waits (polling) and goes on once they have. Every face shows it as
    /// an assistant message with the link and as a machine-readable event of its own idiom.
    AuthorizationRequired { provider: String, url: String },
    /// A call that needs the user's approval (`TOOL_APPROVAL`) was not made: the face shows the request
    /// (`request_id`) in its own protocol, the session keeps it, and the turn ends after this step; the
    /// next invocation's answer runs it exactly as here, or tells the model it was declined.
    ApprovalRequested {
        request_id: String,
        call_id: String,
        server: String,
        name: String,
        arguments: String,
        expires_at: u64,
    },
    /// A tool asked the user a question (an MCP elicitation: a form to fill or a link to open) and its call
    /// waits for the answer: the face shows the question (`request_id`) in its own protocol, the session
    /// keeps it with the call and the server's `request_state`, and the turn ends after this step; the
    /// next invocation's answer repeats the call with it. One event per question; a call that asked
    /// several is retried once all are settled.
    ///
    /// Boxed: it is the largest event by far and the rarest; every event a turn sends (a text delta
    /// each) is moved and queued at the size of the largest.
    QuestionAsked(Box<AskedQuestion>),
    /// Token usage of one model call; consumers sum them.
    Usage(Usage),
    /// The last event of every turn.
    Finished(TurnEnd),
}

/// A tool's question to the user ([`TurnEvent::QuestionAsked`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AskedQuestion {
    pub request_id: String,
    pub call_id: String,
    pub server: String,
    pub name: String,
    pub arguments: String,
    /// The server's key for the question (its answer goes back under it).
    pub key: String,
    pub message: String,
    pub form: QuestionForm,
    /// The server's opaque state, echoed on the retry (never shown).
    pub request_state: Option<String>,
    pub expires_at: u64,
}

/// How the ids of [`TurnEvent::QuestionAsked`] begin: a face whose answers to approvals and to questions
/// share one list (AG-UI's `resume`) tells them apart by it.
pub const QUESTION_ID_PREFIX: &str = "mcpq_";

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    Completed,
    /// A bound was hit (`max_iterations`); what was produced so far stands.
    Incomplete(Failure),
    Failed(Failure),
}

/// The assistant text every face shows for [`TurnEvent::AuthorizationRequired`] (beside its machine-readable
/// event): what to do, the link, and that the turn goes on by itself.
pub fn authorization_message(provider: &str, url: &str) -> String {
    format!(
        "To use this tool I need your permission for {provider}. Please open this link and authorize access: \
         {url}\nI will continue as soon as you have."
    )
}
