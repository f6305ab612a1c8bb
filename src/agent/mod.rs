//! One agent turn: the ReAct loop over the model and the tools.

mod event;

pub use event::{AgentEvent, FailureCode, TurnEnd, TurnError};
