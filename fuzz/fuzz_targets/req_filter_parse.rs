//! Arbitrary bytes as a REQ: no panic; malformed REQs refused as `invalid`;
//! an accepted REQ matches the fixed events the same way in the indexed and
//! linear matchers and the spec model.
//!
//! The property is `checks::check_req_filter_parse` (fuzz/checks/worker.rs), shared
//! with the stable regression test conformance/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/worker.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_req_filter_parse(data));
