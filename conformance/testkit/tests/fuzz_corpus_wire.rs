//! Replays the committed fuzz corpora of the codec and framing targets, and
//! every crash artifact kept under `fuzz/artifacts/`, through the same checks
//! the cargo-fuzz targets run (`broadcast_testkit::fuzz_checks::wire`). This is
//! how CI on stable catches a regression of a fixed fuzz finding without
//! nightly or libFuzzer. See docs/FUZZING.md.

use broadcast_testkit::fuzz_checks::replay::replay_committed as replay;
use broadcast_testkit::fuzz_checks::wire as checks;

#[test]
fn decode_subcommand() {
    replay("decode_subcommand", checks::check_decode_subcommand);
}

#[test]
fn decode_broadcast_frame() {
    replay("decode_broadcast_frame", checks::check_decode_broadcast_frame);
}

#[test]
fn frame_reader_chunked() {
    replay("frame_reader_chunked", checks::check_frame_reader_chunked);
}

#[test]
fn frame_writer_partial() {
    replay("frame_writer_partial", checks::check_frame_writer_partial);
}

#[test]
fn roundtrip_structured() {
    replay("roundtrip_structured", checks::check_roundtrip_structured);
}
