//! Arbitrary command sequences through the reference worker with the indexed
//! and with the linear matcher: no panic, valid output frames, identical
//! deliveries, and agreement with the spec model.
//!
//! The property is `checks::check_worker_commands` (`broadcast_testkit::fuzz_checks::worker`), shared
//! with the stable regression test tests/fuzz_corpus_worker.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::worker as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_worker_commands(data));
