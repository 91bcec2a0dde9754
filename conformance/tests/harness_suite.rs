//! The whole scenario suite against the reference worker, on both
//! transports, through the built `broadcast-conformance` binary: this is
//! the project's main job (`cargo run --release -p broadcast-conformance --
//! run`) as a test.

mod harness_support;

use harness_support::*;

fn whole_suite_passes(transport: &str) {
    // No worker command: the harness must find `broadcast-worker` next to
    // itself, as in the main job.
    // The payload-maximum cases move 16 MiB each way; an unoptimised build
    // under a parallel `cargo test` needs more than the default 2 s for that.
    let run = harness(&["run", "-q", "--transport", transport, "--timeout", "30000"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (passed, failed) = run.counts();
    assert_eq!(failed, 0);
    assert!(passed >= 150, "the suite has at least 150 cases, ran {passed}");
    // Every case of the suite ran.
    let listed = harness(&["run", "--list"]).stdout.lines().count();
    assert_eq!(passed, listed);
}

#[test]
fn reference_worker_passes_over_stdio() {
    whole_suite_passes("stdio");
}

#[test]
fn reference_worker_passes_over_a_socketpair() {
    whole_suite_passes("socketpair");
}

#[test]
fn parallel_jobs_give_the_same_verdicts() {
    let run = harness(&["run", "--jobs", "2", "--format", "json", "--timeout", "30000"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = run.cases();
    assert!(cases.values().all(|c| c["result"] == "passed"));
    assert_eq!(cases.len(), harness(&["run", "--list"]).stdout.lines().count());
}

#[test]
fn every_section_has_cases_and_every_id_is_unique() {
    let listed = harness(&["run", "--list"]);
    assert_eq!(listed.code, 0);
    let ids: Vec<&str> = listed
        .stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    for section in [
        "access",
        "auth",
        "bcast",
        "filter",
        "lifecycle",
        "ordering",
        "output",
        "req",
        "stream",
        "subscribe",
        "tags",
    ] {
        assert!(
            ids.iter().any(|id| id.starts_with(&format!("{section}/"))),
            "no case in section {section}"
        );
    }
}
