//! AG-UI over HTTP POST + SSE (`POST /ag-ui`), as CopilotKit-style front ends speak it.
//! docs/faces.md ("AG-UI") has the wire facts.
//!
//! - [`request`]: a `RunAgentInput` → a [`crate::pipeline::Ask`] (threadId is the session).
//! - [`render`]: the turn as AG-UI events, in the order `@ag-ui/client` verifies.

mod render;
mod request;

pub(crate) use render::AguiStream;
pub(crate) use request::RunInput;
