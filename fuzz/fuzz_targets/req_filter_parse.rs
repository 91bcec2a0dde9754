//! Arbitrary bytes as a REQ: no panic; malformed REQs refused as `invalid`;
//! an accepted REQ matches the fixed events the same way in the indexed and
//! linear matchers and the spec model.
//!
//! The property is `checks::check_req_filter_parse` (`broadcast_testkit::fuzz_checks::worker`), shared
//! with the stable regression test tests/fuzz_corpus_worker.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::worker as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_req_filter_parse(data));
