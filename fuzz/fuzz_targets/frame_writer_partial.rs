//! Valid frames through FrameWriter into a sink taking arbitrary partial
//! writes, WouldBlock, Interrupted and Ok(0): the sink gets exactly their encodings.
//!
//! The property is `checks::check_frame_writer_partial` (fuzz/checks/wire.rs), shared with the
//! stable regression test wire/tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks/wire.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_frame_writer_partial(data));
