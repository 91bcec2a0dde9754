//! Proof that the parent suite catches parent bugs: `parent-testee --bug
//! NAME` (a hand-written parent breaking one rule of
//! PROTOCOL.md#parent-semantics) fails, and the cases named here for its
//! bug are among the failures, with the failure kind named; the same cases
//! pass against the correct `parent-testee`, which also passes the whole
//! suite on both transports (a second correct parent next to the reference
//! adapter, tested in harness_parent.rs).

use broadcast_testkit::harness_run::{Run, WHOLE_SUITE_TIMEOUT_MS, harness, harness_with_worker};

fn testee() -> &'static str {
    broadcast_testkit::bin_str("parent-testee")
}

/// The parent suite's `cases` against `adapter`. A bug that keeps a frame
/// or an answer from coming costs the harness one timeout per case, so
/// these runs use 2 s: far more than any selected case needs (the harness
/// counts its timeout from the last progress, so moving large commands is
/// not a hang).
fn run_cases(cases: &[&str], adapter: &[&str]) -> Run {
    let mut args = vec!["parent", "--format", "json", "--timeout", "2000"];
    for case in cases {
        args.extend_from_slice(&["--case", case]);
    }
    harness_with_worker(&args, adapter)
}

/// `--bug bug` fails every case of `cases` with the failure kind `kind`;
/// the correct testee passes them.
fn caught(bug: &str, kind: &str, cases: &[&str]) {
    let run = run_cases(cases, &[testee(), "--bug", bug]);
    assert_eq!(
        run.code, 1,
        "bug {bug} went unnoticed: {}{}",
        run.stdout, run.stderr
    );
    let report = run.cases();
    for id in cases {
        let case = report
            .get(*id)
            .unwrap_or_else(|| panic!("bug {bug}: no case {id} in {report:?}"));
        assert_eq!(case["result"], "failed", "bug {bug} not caught by {id}: {case}");
        assert_eq!(case["failure"], kind, "bug {bug}, case {id}: {case}");
    }
    let run = run_cases(cases, &[testee()]);
    assert_eq!(
        run.code, 0,
        "without --bug {bug} the cases pass: {}{}",
        run.stdout, run.stderr
    );
}

#[test]
fn silent_drop_when_full() {
    caught(
        "silent-drop-when-full",
        "mismatch",
        &[
            "flow/no-silent-drop/fanouts-while-worker-stalled",
            "flow/order/subscribe-between-fanouts",
        ],
    );
}

#[test]
fn read_limit_no_repoll() {
    caught(
        "read-limit-no-repoll",
        "hang",
        &[
            "receiving/stranded/burst-5000",
            "receiving/stranded/burst-large-frames",
            "receiving/deliver/order-per-connection",
        ],
    );
}

#[test]
fn decode_error_loses_frame() {
    caught(
        "decode-error-loses-frame",
        "hang",
        &[
            "receiving/stranded/invalid-then-valid",
            "receiving/invalid/many-then-valid",
        ],
    );
}

#[test]
fn fd_reuse() {
    caught(
        "fd-reuse",
        "mismatch",
        &[
            "lifecycle/reuse/late-frame-for-old-conn",
            "lifecycle/reuse/barrier-before-reuse",
        ],
    );
}

#[test]
fn no_close_on_disconnect() {
    caught(
        "no-close-on-disconnect",
        "mismatch",
        &[
            "lifecycle/close-on-disconnect",
            "lifecycle/close/with-subscriptions",
            "sending/frame/close",
        ],
    );
}

#[test]
fn add_before_new() {
    caught(
        "add-before-new",
        "mismatch",
        &[
            "lifecycle/new-first/subscribe",
            "lifecycle/new-first/auth",
            "lifecycle/new-first/fanout-from-client",
            "lifecycle/new-first/everything-in-one-burst",
        ],
    );
}

#[test]
fn swapped_flag_bits() {
    caught(
        "swapped-flag-bits",
        "mismatch",
        &[
            "bcast/flags/need-filter",
            "bcast/flags/nip70-enforce",
            "bcast/flags/need-filter-applies",
            "bcast/flags/nip70-enforce-applies",
        ],
    );
}

#[test]
fn oversize_written() {
    caught(
        "oversize-written",
        "mismatch",
        &["sending/oversize/add-max-plus-1"],
    );
}

#[test]
fn worker_death_swallowed() {
    caught(
        "worker-death-swallowed",
        "hang",
        &[
            "death/exit/status-reported",
            "death/kill/sigkill",
            "death/close-output/eof",
            "death/after-exit/every-action-refused",
        ],
    );
}

fn the_correct_testee_passes_the_whole_suite(transport: &str) {
    let listed = harness(&["parent", "--list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let total = listed.stdout.lines().count();
    let run = harness_with_worker(
        &[
            "parent",
            "--timeout",
            WHOLE_SUITE_TIMEOUT_MS,
            "-q",
            "--transport",
            transport,
        ],
        &[testee()],
    );
    assert_eq!(run.code, 0, "{transport}:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.counts(), (total, 0), "{transport}:\n{}", run.stdout);
}

#[test]
fn the_correct_testee_passes_over_stdio() {
    the_correct_testee_passes_the_whole_suite("stdio");
}

#[test]
fn the_correct_testee_passes_over_a_socketpair() {
    the_correct_testee_passes_the_whole_suite("socketpair");
}
