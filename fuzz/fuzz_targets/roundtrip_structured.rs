//! Arbitrary valid SubCommands and BroadcastFrames: encode, decode, equal.
//!
//! The property is `checks::check_roundtrip_structured` (`broadcast_testkit::fuzz_checks::wire`), shared with the
//! stable regression test tests/fuzz_corpus_wire.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::wire as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_roundtrip_structured(data));
