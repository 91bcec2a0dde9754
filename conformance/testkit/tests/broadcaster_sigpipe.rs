//! A write to a dead worker must be a typed error, never a `SIGPIPE` that
//! kills the parent, even in a host whose `SIGPIPE` disposition is the
//! default (terminate), unlike Rust binaries, which ignore it.
//!
//! This file is its own test binary because it changes the process-wide
//! disposition: if the shield failed, this whole binary would die of
//! `SIGPIPE` and the run would fail.
#![cfg(target_os = "linux")]

use broadcast_testkit::broadcaster_support;

use std::sync::Once;
use std::time::Duration;

use broadcast_process::broadcaster::{FlushError, Incoming};
use broadcaster_support::*;
use nix::sys::signal::{SigHandler, Signal, signal};

/// The SIGPIPE bit in the hex signal masks of /proc/.../status.
const SIGPIPE_BIT: u64 = 1 << (Signal::SIGPIPE as u32 - 1);

fn status_mask(path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} not in {path}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

fn restore_default_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installs no handler, only the default action; no other
        // code in this test binary depends on SIGPIPE being ignored.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
    });
    assert_eq!(status_mask("/proc/self/status", "SigIgn:") & SIGPIPE_BIT, 0);
}

#[test]
fn writing_to_a_dead_worker_is_worker_gone_even_with_default_sigpipe() {
    restore_default_sigpipe();
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &["--exit-after", "1:0"], &test_options());
        b.on_connect(1, false).unwrap();
        next_frame(&mut b);
        // Wait until the worker has exited, so its end is closed for sure.
        match b.read_frame_timeout(PATIENCE).unwrap() {
            Incoming::WorkerExited(_) => {}
            other => panic!("{transport:?}: unexpected {other:?}"),
        }
        assert!(b.wait_exit(PATIENCE).unwrap().success());

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
    }
}

#[test]
fn flush_blocking_reports_a_worker_that_dies_while_it_waits() {
    restore_default_sigpipe();
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
