//! A byte stream read through FrameReader in arbitrary pieces, with WouldBlock
//! and Interrupted injected: same frames and end as one-shot decoding.
//!
//! The property is `checks::check_frame_reader_chunked` (fuzz/checks/wire.rs), shared with the
//! stable regression test wire/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/wire.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_frame_reader_chunked(data));
