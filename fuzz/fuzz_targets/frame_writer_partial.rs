//! Valid frames through FrameWriter into a sink taking arbitrary partial
//! writes, WouldBlock, Interrupted and Ok(0): the sink gets exactly their encodings.
//!
//! The property is `checks::check_frame_writer_partial` (`broadcast_testkit::fuzz_checks::wire`), shared with the
//! stable regression test tests/fuzz_corpus_wire.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::wire as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_frame_writer_partial(data));
