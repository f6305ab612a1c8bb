//! `protocol::parse_body(Wire::A2aV10, …)` on any bytes: the face's own parser, a clean refusal naming a
//! field (or `body`) or an accepted request (see `common::check`).
#![no_main]

mod common;

use fc_identity_agent::protocol::Wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| common::check(Wire::A2aV10, body));
