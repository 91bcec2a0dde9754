//! Arbitrary valid SubCommands and BroadcastFrames: encode, decode, equal.
//!
//! The property is `checks::check_roundtrip_structured` (fuzz/checks/wire.rs), shared with the
//! stable regression test wire/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/wire.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_roundtrip_structured(data));
