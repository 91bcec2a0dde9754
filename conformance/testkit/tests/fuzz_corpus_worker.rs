//! Replays the committed fuzz corpora of the worker targets, and every crash
//! artifact kept under `fuzz/artifacts/`, through the same checks the
//! cargo-fuzz targets run (`broadcast_testkit::fuzz_checks::worker`), so CI on
//! stable catches a regression without nightly or libFuzzer. See
//! docs/FUZZING.md.

use broadcast_testkit::fuzz_checks::replay::replay_committed as replay;
use broadcast_testkit::fuzz_checks::worker as checks;

#[test]
fn worker_commands() {
    replay("worker_commands", checks::check_worker_commands);
}

#[test]
fn req_filter_parse() {
    replay("req_filter_parse", checks::check_req_filter_parse);
}
