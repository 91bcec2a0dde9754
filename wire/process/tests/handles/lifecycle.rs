//! The blocking `Broadcaster`'s worker, alive and dead: killed mid-stream,
//! crashing, exiting with a code, ignoring end-of-file at drop; always
//! reported, always reaped. Its status without reading (`exit_status`,
//! `wait_exit`), and its captured stderr.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{
    Broadcaster, FlushError, Incoming, Options, SendError, StderrMode, Transport,
};
use broadcast_wire::BcastFlags;
use nix::sys::signal::Signal;

use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        a_worker_killed_mid_stream_is_reported_by_flush_and_read_and_reaped,
        a_crash_reports_the_signal_and_the_last_stderr_lines,
        an_exit_code_is_reported,
        the_stderr_tail_keeps_only_the_last_lines,
        drop_kills_and_reaps_a_worker_that_ignores_eof_after_the_grace_period,
        drop_lets_a_well_behaved_worker_exit_by_itself,
        drop_does_not_hang_on_a_worker_blocked_writing_to_us,
        a_worker_that_exits_by_itself_is_reaped_by_the_handle,
        from_fds_adopts_a_child_and_reaps_it_at_drop,
        kill_ends_the_worker_and_reading_reports_it,
        wait_exit_returns_the_status_and_none_while_the_worker_runs,
        the_stderr_tail_exists_only_when_captured,
        the_stderr_tail_keeps_an_unfinished_last_line_and_cuts_long_ones,
    ]
}

fn a_worker_killed_mid_stream_is_reported_by_flush_and_read_and_reaped() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        let pid = b.pid().unwrap();
        for i in 0..50 {
            b.fanout(tagged_event(&i.to_string(), 181), -1, BcastFlags::EMPTY)
                .unwrap();
        }
        b.flush_blocking().unwrap();
        for _ in 0..10 {
            next_frame(&mut b);
        }
        // Killed from outside, as a crash would be.
        signal(pid, Signal::SIGKILL);

        // Writes now fail with EPIPE (once the kernel has torn the process
        // down); flush reports it with what was not delivered.
        let deadline = Instant::now() + PATIENCE;
        let (unsent_commands, unsent_bytes) = loop {
            b.fanout(tagged_event("late", 181), -1, BcastFlags::EMPTY)
                .unwrap();
            match b.flush() {
                Ok(_) => {
                    assert!(Instant::now() < deadline, "{transport:?}: flush never failed");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(FlushError::WorkerGone {
                    unsent_commands,
                    unsent_bytes,
                }) => break (unsent_commands, unsent_bytes),
                Err(e) => panic!("{transport:?}: unexpected {e}"),
            }
        };
        assert!(unsent_commands >= 1, "{transport:?}");
        assert_eq!(unsent_bytes, b.queued_bytes());
        assert_eq!(unsent_commands, b.queued_commands());
        // The same error again, and no more commands accepted.
        assert!(matches!(b.flush(), Err(FlushError::WorkerGone { .. })));
        assert_eq!(b.on_connect(1, false), Err(SendError::WorkerGone));

        // Reading drains what the worker wrote before dying, then reports
        // its death with the status.
        let status = loop {
            match b.read_frame_timeout(PATIENCE).unwrap() {
                Incoming::Frame(_) => {}
                Incoming::WorkerExited(Some(status)) => break status,
                Incoming::WorkerExited(None) => {
                    break b.wait_exit(PATIENCE).expect("status after exit");
                }
                other => panic!("{transport:?}: unexpected {other:?}"),
            }
        };
        assert_eq!(status.signal(), Some(9), "{transport:?}");
        assert!(!b.is_alive());
        // Reaped while the handle is still alive: no zombie.
        assert!(is_reaped(pid), "{transport:?}: pid {pid} is still our child");
    }
}

fn a_crash_reports_the_signal_and_the_last_stderr_lines() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &["--crash-after", "3"], &test_options());
        for conn in 0..5 {
            b.on_connect(conn, false).unwrap();
        }
        b.flush_blocking().unwrap();
        for conn in 0..3 {
            assert_eq!(next_frame(&mut b).conn, conn);
        }
        let status = wait_exited(&mut b);
        assert_eq!(status.signal(), Some(Signal::SIGABRT as i32), "{transport:?}");
        let tail = b.stderr_tail().unwrap();
        assert!(tail.wait_closed(PATIENCE));
        assert_eq!(
            tail.lines().last().map(String::as_str),
            Some("echo_worker: crashing on purpose after 3 commands"),
            "{transport:?}"
        );
    }
}

fn an_exit_code_is_reported() {
    let mut b = spawn_echo(Transport::Stdio, &["--exit-after", "2:7"], &test_options());
    for conn in 0..2 {
        b.on_connect(conn, false).unwrap();
    }
    b.flush_blocking().unwrap();
    next_frame(&mut b);
    next_frame(&mut b);
    assert_eq!(wait_exited(&mut b).code(), Some(7));
    assert!(!b.is_alive());
    assert_eq!(b.exit_status().unwrap().code(), Some(7));
}

fn the_stderr_tail_keeps_only_the_last_lines() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "for i in 1 2 3 4 5; do echo line $i >&2; done"]);
    let opts = Options::new().stderr(StderrMode::Capture { max_lines: 2 });
    let b = Broadcaster::spawn_with(cmd, Transport::Stdio, &opts).unwrap();
    let tail = b.stderr_tail().unwrap().clone();
    drop(b);
    // The handle outlives the Broadcaster.
    assert!(tail.wait_closed(PATIENCE));
    assert_eq!(tail.lines(), ["line 4", "line 5"]);
    assert_eq!(tail.dropped_lines(), 3);
}

fn drop_kills_and_reaps_a_worker_that_ignores_eof_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    for transport in TRANSPORTS {
        let opts = test_options().grace_period(grace);
        let mut b = spawn_echo(transport, &["--ignore-eof"], &opts);
        let pid = b.pid().unwrap();
        b.on_connect(1, false).unwrap();
        next_frame(&mut b); // it is up and running
        let tail = b.stderr_tail().unwrap().clone();

        let started = Instant::now();
        drop(b);
        let took = started.elapsed();
        // It saw end-of-file, ignored it, and was killed once the grace
        // period was over (the bounds are loose: this is not a timing test).
        assert!(took >= grace, "{transport:?}: drop returned after {took:?}");
        assert!(took < PATIENCE, "{transport:?}: drop took {took:?}");
        assert!(is_reaped(pid), "{transport:?}: pid {pid} left behind");
        assert!(tail.wait_closed(PATIENCE));
        assert!(
            tail.lines().iter().any(|l| l.contains("ignoring it")),
            "{transport:?}: {:?}",
            tail.lines()
        );
    }
}

fn drop_lets_a_well_behaved_worker_exit_by_itself() {
    for transport in TRANSPORTS {
        // A grace period far longer than the test's patience: if drop had
        // to wait it out, the bound below would catch it.
        let opts = test_options().grace_period(Duration::from_secs(60));
        let mut b = spawn_echo(transport, &[], &opts);
        let pid = b.pid().unwrap();
        b.on_connect(1, false).unwrap();
        next_frame(&mut b);
        let tail = b.stderr_tail().unwrap().clone();
        let started = Instant::now();
        drop(b);
        assert!(started.elapsed() < PATIENCE, "{transport:?}");
        assert!(is_reaped(pid));
        assert!(tail.wait_closed(PATIENCE));
        assert_eq!(
            tail.lines().last().map(String::as_str),
            Some("echo_worker: end of input after 1 commands"),
            "{transport:?}"
        );
    }
}

fn drop_does_not_hang_on_a_worker_blocked_writing_to_us() {
    for transport in TRANSPORTS {
        let opts = test_options().grace_period(Duration::from_secs(60));
        let mut b = spawn_echo(transport, &[], &opts);
        let pid = b.pid().unwrap();
        // Megabytes of echoes nobody reads: the worker blocks on its output.
        for i in 0..12_000 {
            b.fanout(tagged_event(&i.to_string(), 181), -1, BcastFlags::EMPTY)
                .unwrap();
        }
        let _ = b.flush_timeout(Duration::from_millis(200));
        let started = Instant::now();
        // Closing our read side hands it EPIPE, so it ends well before the
        // grace period.
        drop(b);
        assert!(started.elapsed() < PATIENCE, "{transport:?}");
        assert!(is_reaped(pid));
    }
}

fn a_worker_that_exits_by_itself_is_reaped_by_the_handle() {
    let mut b = spawn_echo(Transport::Stdio, &["--exit-after", "1:0"], &test_options());
    let pid = b.pid().unwrap();
    b.on_connect(1, false).unwrap();
    next_frame(&mut b);
    assert!(wait_exited(&mut b).success());
    // The handle is alive and the process is gone: no zombie in between.
    assert!(is_reaped(pid));
    assert!(!b.is_alive());
}

fn from_fds_adopts_a_child_and_reaps_it_at_drop() {
    let mut child = echo_worker::<&str>(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let write = child.stdin.take().unwrap().into();
    let read = child.stdout.take().unwrap().into();
    let opts = Options::new()
        .stderr(StderrMode::Capture { max_lines: 8 })
        .grace_period(Duration::from_millis(100));
    let mut b = Broadcaster::from_fds(read, write, Some(child), &opts).unwrap();
    assert_eq!(b.pid(), Some(pid));
    b.on_auth(4, [1; 32]).unwrap();
    assert_eq!(next_frame(&mut b).conn, 4);
    let tail = b
        .stderr_tail()
        .expect("captured from the child's piped stderr")
        .clone();
    drop(b);
    assert!(is_reaped(pid));
    assert!(tail.wait_closed(PATIENCE));
    assert_eq!(
        tail.lines().first().map(String::as_str),
        Some("echo_worker: started")
    );
}

fn kill_ends_the_worker_and_reading_reports_it() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        assert!(b.is_alive());
        b.kill().unwrap();
        assert_eq!(wait_exited(&mut b).signal(), Some(9), "{transport:?}");
        assert!(!b.is_alive());
        // Killing a dead worker is not an error.
        b.kill().unwrap();
    }
}

fn wait_exit_returns_the_status_and_none_while_the_worker_runs() {
    // Exits with 4 once it has answered one command.
    let mut b = spawn_echo(Transport::Stdio, &["--exit-after", "1:4"], &test_options());
    assert!(b.has_child());
    assert!(b.is_alive());
    assert_eq!(b.exit_status(), None);
    // It waits for its command: still running when the wait gives up.
    assert_eq!(b.wait_exit(Duration::from_millis(20)), None);
    assert!(b.is_alive());
    b.on_connect(1, false).unwrap();
    b.flush_blocking().unwrap();
    // Reaped without reading its answer.
    let status = b.wait_exit(PATIENCE).expect("the worker exits");
    assert_eq!(status.code(), Some(4));
    assert_eq!(b.exit_status(), Some(status));
    assert!(!b.is_alive());

    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        let pid = b.pid().unwrap();
        b.kill().unwrap();
        let status = b.wait_exit(PATIENCE).expect("a killed worker exits");
        assert_eq!(status.signal(), Some(9), "{transport:?}");
        assert!(is_reaped(pid), "{transport:?}");
    }
}

fn the_stderr_tail_exists_only_when_captured() {
    // `cat` writes nothing on stderr, so inheriting it adds nothing to the
    // test output.
    let b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    assert!(b.stderr_tail().is_none(), "inherited by default");
    for (mode, captured) in [
        (StderrMode::Inherit, false),
        (StderrMode::Null, false),
        (StderrMode::Capture { max_lines: 4 }, true),
    ] {
        let opts = Options::new().stderr(mode);
        let mut b = Broadcaster::spawn_with(Command::new("cat"), Transport::Stdio, &opts).unwrap();
        assert_eq!(b.stderr_tail().is_some(), captured, "{mode:?}");
        if let Some(tail) = b.stderr_tail().cloned() {
            // Open while the worker runs, closed once it has exited.
            assert!(!tail.is_closed());
            b.close_write().unwrap();
            assert!(wait_exited(&mut b).success());
            assert!(tail.wait_closed(PATIENCE));
            assert!(tail.is_closed());
            assert!(tail.lines().is_empty());
        }
    }
}

fn the_stderr_tail_keeps_an_unfinished_last_line_and_cuts_long_ones() {
    // A line of 5000 bytes is cut at 4 KiB and marked; the last line has no
    // newline.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "printf 'a\\n' >&2; head -c 5000 /dev/zero | tr '\\0' x >&2; printf '\\nb' >&2",
    ]);
    let opts = Options::new().stderr(StderrMode::Capture { max_lines: 8 });
    let b = Broadcaster::spawn_with(cmd, Transport::Stdio, &opts).unwrap();
    let tail = b.stderr_tail().unwrap();
    assert!(tail.wait_closed(PATIENCE));
    let cut = format!("{} [line cut]", "x".repeat(4096));
    assert_eq!(tail.lines(), ["a", cut.as_str(), "b"]);
    assert_eq!(tail.dropped_lines(), 0);
}
