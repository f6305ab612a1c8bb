//! One agent turn: the ReAct loop over the model and the tools, reported as [`TurnEvent`]s.

mod events;
mod react;
mod trace;

pub use events::{TurnEnd, TurnEvent, authorization_message};
pub use react::{Turn, run_turn};
