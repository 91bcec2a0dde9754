//! Replays the committed fuzz corpus of the link target, and every crash
//! artifact kept under `fuzz/artifacts/`, through the same check the
//! cargo-fuzz target runs (`broadcast_testkit::fuzz_checks::link`), so CI on
//! stable catches a regression without nightly or libFuzzer. See
//! docs/FUZZING.md.

use broadcast_testkit::fuzz_checks::link as checks;

broadcast_testkit::replay_tests! {
    link_worker_output => checks::check_link_worker_output,
}
