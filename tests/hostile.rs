//! Hostile input (issue 8): property tests that throw arbitrary, mutated and oversized input at every
//! parser that sees bytes from outside — the `/process` body, event-invocation bodies, the model's SSE
//! stream — and arbitrary event sequences at the response encoder. Each property names the invariant the
//! rest of the program relies on; "never panics" is implied by every one of them.
//!
//! Case counts are modest (64–256) so the file stays fast on a shared 2-core machine; raise them with
//! `PROPTEST_CASES=10000 cargo test --test hostile` for a longer soak. The cargo-fuzz targets in `fuzz/`
//! cover the same surfaces with coverage guidance (see docs/fuzzing.md).

mod hostile {
    pub mod arb;
    pub mod encoder;
    pub mod request;
    pub mod sse;
    pub mod trigger;
}
