//! Arbitrary bytes as a BroadcastFrame payload: decode and decode_from agree
//! with each other and with the spec; a decoded value encodes back to the input.
//!
//! The property is `checks::check_decode_broadcast_frame` (fuzz/checks/wire.rs), shared with the
//! stable regression test wire/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/wire.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_decode_broadcast_frame(data));
