//! A write to a dead worker must be a typed error, never a `SIGPIPE` that
//! kills the parent, even in a host whose `SIGPIPE` disposition is the
//! default (terminate), unlike Rust binaries, which ignore it.
//!
//! The disposition is process-wide, so these tests do not change it in
//! this process (the other tests run beside them): each re-runs this
//! binary with [`DEFAULT_SIGPIPE_ENV`] set, on itself alone (`--exact`),
//! and that run restores the default disposition first thing in `main`.
//! If the shield failed, that run would die of `SIGPIPE` and the test fail.

use std::process::Command;
use std::time::Duration;

use broadcast_process::broadcaster::{FlushError, Incoming};
use nix::sys::signal::{SigHandler, Signal};

use crate::support::*;

/// Set (to anything) for a run of this binary whose `SIGPIPE` disposition
/// is the default, as a C host's would be.
const DEFAULT_SIGPIPE_ENV: &str = "BROADCAST_PROCESS_TEST_DEFAULT_SIGPIPE";

/// The SIGPIPE bit in the hex signal masks of /proc/.../status.
const SIGPIPE_BIT: u64 = 1 << (Signal::SIGPIPE as u32 - 1);

pub fn tests() -> Vec<libtest_mimic::Trial> {
    let cases: [(&str, fn()); 2] = [
        (
            "writing_to_a_dead_worker_is_worker_gone_even_with_default_sigpipe",
            writing_to_a_dead_worker_is_worker_gone_even_with_default_sigpipe,
        ),
        (
            "flush_blocking_reports_a_worker_that_dies_while_it_waits",
            flush_blocking_reports_a_worker_that_dies_while_it_waits,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, test)| {
            let name = format!("sigpipe::{name}");
            libtest_mimic::Trial::test(name.clone(), move || {
                if std::env::var_os(DEFAULT_SIGPIPE_ENV).is_some() {
                    test();
                } else {
                    run_with_default_sigpipe(&name);
                }
                Ok(())
            })
        })
        .collect()
}

/// Called first in `main` (test mode): in a run asked for by
/// [`run_with_default_sigpipe`], gives `SIGPIPE` its default action.
pub fn restore_default_if_asked() {
    if std::env::var_os(DEFAULT_SIGPIPE_ENV).is_none() {
        return;
    }
    // SAFETY: installs no handler, only the default action, before any
    // test runs; nothing in this run depends on SIGPIPE being ignored.
    #[allow(unsafe_code)]
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.expect("SIG_DFL for SIGPIPE");
}

/// Runs the test `name` alone in a new run of this binary whose `SIGPIPE`
/// disposition is the default.
fn run_with_default_sigpipe(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads", "1"])
        .env(DEFAULT_SIGPIPE_ENV, "1")
        .env_remove(WORKER_ENV)
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} with the default SIGPIPE action: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // It ran, rather than matching nothing.
    assert!(stdout.contains("1 passed"), "{name} did not run:\n{stdout}");
}

fn status_mask(path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} not in {path}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

fn assert_default_sigpipe() {
    assert_eq!(status_mask("/proc/self/status", "SigIgn:") & SIGPIPE_BIT, 0);
}

fn writing_to_a_dead_worker_is_worker_gone_even_with_default_sigpipe() {
    assert_default_sigpipe();
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &["--exit-after", "1:0"], &test_options());
        b.on_connect(1, false).unwrap();
        next_frame(&mut b);
        // Wait until the worker has exited, so its end is closed for sure,
        // without the handle learning it (it would write nothing more:
        // this test is about the write). This run has one thread, so no
        // child forked elsewhere holds a copy of the pipe.
        wait_dead(b.pid().expect("a child"));

        b.on_connect(2, false).unwrap();
        match b.flush() {
            Err(FlushError::WorkerGone {
                unsent_commands: 1,
                unsent_bytes: 19,
            }) => {}
            other => panic!("{transport:?}: expected WorkerGone, got {other:?}"),
        }
        // Still here; and no SIGPIPE left pending or blocked behind us, to
        // strike later.
        let thread_status = "/proc/thread-self/status";
        assert_eq!(
            status_mask(thread_status, "SigPnd:") & SIGPIPE_BIT,
            0,
            "{transport:?}"
        );
        assert_eq!(
            status_mask("/proc/self/status", "ShdPnd:") & SIGPIPE_BIT,
            0,
            "{transport:?}"
        );
        assert_eq!(
            status_mask(thread_status, "SigBlk:") & SIGPIPE_BIT,
            0,
            "{transport:?}"
        );
        match b.read_frame_timeout(PATIENCE).unwrap() {
            Incoming::WorkerExited(Some(status)) => assert!(status.success(), "{transport:?}"),
            other => panic!("{transport:?}: unexpected {other:?}"),
        }
    }
}

fn flush_blocking_reports_a_worker_that_dies_while_it_waits() {
    assert_default_sigpipe();
    for transport in TRANSPORTS {
        // The worker exits after 5 commands, with megabytes still to come.
        let mut b = spawn_echo(transport, &["--exit-after", "5:0"], &test_options());
        for i in 0..12_000 {
            b.fanout(tagged_event(&i.to_string(), 181), -1, Default::default())
                .unwrap();
        }
        match b.flush_blocking() {
            Err(FlushError::WorkerGone { unsent_commands, .. }) => {
                assert!(unsent_commands > 0, "{transport:?}");
            }
            other => panic!("{transport:?}: expected WorkerGone, got {other:?}"),
        }
        assert!(b.wait_exit(Duration::from_secs(20)).unwrap().success());
    }
}
