//! One agent turn: the ReAct loop over the model and the tools, reported as [`TurnEvent`]s.

mod approval;
mod events;
mod react;
mod trace;

pub use approval::{Approvals, DEFAULT_APPROVAL_TTL, RequireApproval, ToolApproval, cannot_ask_output};
pub use events::{AskedQuestion, QUESTION_ID_PREFIX, TurnEnd, TurnEvent, authorization_message};
pub use react::{Turn, run_turn};
