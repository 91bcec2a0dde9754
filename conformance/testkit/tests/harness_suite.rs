//! The whole scenario suite against the reference worker, on both
//! transports, through the built `broadcast-conformance` binary: this is
//! the project's main job (`cargo run --release -p broadcast-conformance --
//! run`) as a test.

use broadcast_testkit::harness_run as harness_support;

use harness_support::*;

fn whole_suite_passes(transport: &str) {
    // The reference worker named explicitly: this package's copy of the
    // harness has no `broadcast-worker` beside it. Finding the worker next
    // to the harness is checked on the installed binaries by
    // .ci/package-check.
    // The payload-maximum cases move 16 MiB each way: see
    // WHOLE_SUITE_TIMEOUT_MS.
    let run = harness_with_worker(
        &[
            "run",
            "-q",
            "--transport",
            transport,
            "--timeout",
            WHOLE_SUITE_TIMEOUT_MS,
        ],
        &[worker_exe()],
    );
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
    let run = harness_with_worker(
        &[
            "run",
            "--jobs",
            "2",
            "--format",
            "json",
            "--timeout",
            WHOLE_SUITE_TIMEOUT_MS,
        ],
        &[worker_exe()],
    );
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

/// docs/CONFORMANCE.md, "Bounds": every case id in the table exists, and
/// every row names a case at the bound and one past it (or says `–` where
/// nothing can lie past it), so a missing case shows.
#[test]
fn bounds_table_names_existing_cases() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFORMANCE.md"))
        .expect("read docs/CONFORMANCE.md");
    let section = doc
        .split("\n## Bounds\n")
        .nth(1)
        .expect("a ## Bounds section")
        .split("\n## ")
        .next()
        .unwrap();
    let listed = harness(&["run", "--list"]).stdout;
    let ids: std::collections::BTreeSet<&str> = listed.lines().filter_map(|l| l.split(' ').next()).collect();
    let case_ids =
        |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut rows = 0;
    for line in section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| bound"))
    {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert_eq!(cells.len(), 4, "a bounds row has 4 columns: {line}");
        let at = case_ids(cells[2]);
        let past = case_ids(cells[3]);
        assert!(!at.is_empty(), "no case at the bound: {line}");
        assert!(
            !past.is_empty() || cells[3].contains("none possible"),
            "no case one past the bound: {line}"
        );
        for id in at.iter().chain(&past) {
            assert!(
                ids.contains(id.as_str()),
                "the bounds table names {id}, which is not in the suite"
            );
        }
        rows += 1;
    }
    assert!(rows >= 25, "the bounds table has {rows} rows");
}
