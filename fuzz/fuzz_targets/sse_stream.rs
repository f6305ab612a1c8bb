//! The chat client's SSE decoding and tool-call accumulation on any body, cut into chunks.
//!
//! Input: the first byte picks the chunk size (1–64 bytes), the rest is the HTTP body. Seeds are real
//! DashScope streams with a size byte in front.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use fc_identity_agent::llm::{StreamItem, decode_body};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, body)) = data.split_first() else { return };
    let size = usize::from(size % 64) + 1;
    let chunks: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
    let (events, result) = runtime().block_on(decode_body(chunks));
    let mut started: Vec<u32> = Vec::new();
    for event in &events {
        match event {
            StreamItem::ToolCallStarted { index, id, name } => {
                assert!(!id.is_empty() && !name.is_empty());
                assert!(!started.contains(index), "call {index} started twice");
                started.push(*index);
            }
            StreamItem::ToolCallArguments { index, .. } => assert!(started.contains(index), "fragment first"),
            StreamItem::Done(_) => panic!("Done before the end"),
            _ => {}
        }
    }
    if let Ok(step) = result {
        assert_eq!(step.tool_calls.len(), started.len());
        let text: String =
            events.iter().filter_map(|e| if let StreamItem::TextDelta(t) = e { Some(t.as_str()) } else { None }).collect();
        assert_eq!(text, step.text);
    }
});
