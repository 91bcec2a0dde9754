//! A byte stream read through FrameReader in arbitrary pieces, with WouldBlock
//! and Interrupted injected: same frames and end as one-shot decoding.
//!
//! The property is `checks::check_frame_reader_chunked` (`broadcast_testkit::fuzz_checks::wire`), shared with the
//! stable regression test tests/fuzz_corpus_wire.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::wire as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_frame_reader_chunked(data));
