//! Replays the committed fuzz corpora of the codec and framing targets, and
//! every crash artifact kept under `fuzz/artifacts/`, through the same checks
//! the cargo-fuzz targets run (`broadcast_testkit::fuzz_checks::wire`). This is
//! how CI on stable catches a regression of a fixed fuzz finding without
//! nightly or libFuzzer. See docs/FUZZING.md.

use broadcast_testkit::fuzz_checks::wire as checks;

broadcast_testkit::replay_tests! {
    decode_subcommand => checks::check_decode_subcommand,
    decode_broadcast_frame => checks::check_decode_broadcast_frame,
    frame_reader_chunked => checks::check_frame_reader_chunked,
    frame_writer_partial => checks::check_frame_writer_partial,
    roundtrip_structured => checks::check_roundtrip_structured,
}
