//! One agent turn: the ReAct loop over the model and the tools, reported as [`AgentEvent`]s.

mod event;
mod toolbox;
mod turn;

pub use event::{AgentEvent, FailureCode, TurnEnd, TurnError};
pub use toolbox::{Refresh, Toolbox};
pub use turn::{Turn, run_turn};
