//! Arbitrary worker output, split and interrupted any way, through the
//! parent's I/O-free link core while commands, flushes, `read` and
//! `read_ahead` calls interleave: the frames of an independent reading of
//! the stream, in order, then its end, sticky; the rest discarded after a
//! framing error; every call returns.
//!
//! The property is `checks::check_link_worker_output` (`broadcast_testkit::fuzz_checks::link`),
//! shared with the stable regression test tests/fuzz_corpus_link.rs of broadcast-testkit.
#![no_main]

use broadcast_testkit::fuzz_checks::link as checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_link_worker_output(data));
