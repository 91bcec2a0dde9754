//! Replays the committed fuzz corpora of the worker targets, and every crash
//! artifact kept under `fuzz/artifacts/`, through the same checks the
//! cargo-fuzz targets run (`broadcast_testkit::fuzz_checks::worker`), so CI on
//! stable catches a regression without nightly or libFuzzer. See
//! docs/FUZZING.md.

use broadcast_testkit::fuzz_checks::worker as checks;

broadcast_testkit::replay_tests! {
    worker_commands => checks::check_worker_commands,
    req_filter_parse => checks::check_req_filter_parse,
}
