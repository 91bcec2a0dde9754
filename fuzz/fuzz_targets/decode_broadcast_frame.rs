//! Arbitrary bytes as a BroadcastFrame payload: decode and decode_from agree
//! with each other and with the spec; a decoded value encodes back to the input.
//!
//! The property is `checks::check_decode_broadcast_frame` (`broadcast_testkit::fuzz_checks::wire`), shared with the
//! stable regression test tests/fuzz_corpus_wire.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::wire as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_decode_broadcast_frame(data));
