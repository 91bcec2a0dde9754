//! Arbitrary command sequences through the reference worker with the indexed
//! and with the linear matcher: no panic, valid output frames, identical
//! deliveries, and agreement with the spec model.
//!
//! The property is `checks::check_worker_commands` (fuzz/checks/worker.rs), shared
//! with the stable regression test conformance/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/worker.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_worker_commands(data));
