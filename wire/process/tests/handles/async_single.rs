//! What is particular to `AsyncBroadcaster` (feature `tokio`): the waiting
//! and `try_` commands against a stopped worker (a cancelled wait queues
//! nothing), a cancellation-safe `recv`, and drop reaping the worker
//! without blocking the runtime, even when the runtime stops first; the
//! process accessors (`wait_exit`, `exit_status`, `is_alive`, the stderr
//! tail) and handles without a child. What every handle owes is in
//! `suite`.

use std::time::{Duration, Instant};

use broadcast_process::async_broadcaster::AsyncBroadcaster;
use broadcast_process::broadcaster::{
    Broadcaster, Incoming, Options, SendError, StderrMode, Transport, WorkerProcess,
};
use broadcast_wire::{BcastFlags, BroadcastFrame};
use nix::sys::signal::Signal;
use tokio::time::timeout;

use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        backpressure_refuses_or_waits_and_nothing_is_lost,
        recv_is_cancellation_safe,
        drop_reaps_the_worker_in_the_background,
        drop_reaps_even_when_the_runtime_stops_first,
        the_process_accessors_report_the_worker,
        a_handle_without_a_child_has_no_pid_and_keeps_what_was_queued,
    ]
}

/// Each fanout below is a 200-byte frame.
const EVENT_LEN: usize = 181;

fn spawn(transport: Transport, args: &[&str], opts: &Options) -> AsyncBroadcaster {
    AsyncBroadcaster::spawn_with(echo_worker(args), transport, opts)
        .unwrap_or_else(|e| panic!("spawning the echo worker over {transport:?}: {e}"))
}

fn stderr(b: &AsyncBroadcaster) -> Vec<String> {
    b.stderr_tail().map(|t| t.lines()).unwrap_or_default()
}

async fn next_frame(b: &mut AsyncBroadcaster) -> BroadcastFrame {
    match timeout(PATIENCE, b.recv()).await {
        Ok(Ok(Incoming::Frame(f))) => f,
        other => panic!("expected a frame, got {other:?}; worker stderr: {:?}", stderr(b)),
    }
}

async fn next_tag(b: &mut AsyncBroadcaster) -> String {
    tag_of(&echoed(&next_frame(b).await))
}

/// Reads until `recv` reports the exit, and returns the reaped status.
async fn exit_status(b: &mut AsyncBroadcaster) -> std::process::ExitStatus {
    match timeout(PATIENCE, b.recv()).await {
        Ok(Ok(Incoming::WorkerExited(Some(status)))) => status,
        Ok(Ok(Incoming::WorkerExited(None))) => b.wait_exit(PATIENCE).await.expect("the worker exits"),
        other => panic!("expected the exit, got {other:?}; worker stderr: {:?}", stderr(b)),
    }
}

fn signal_worker(b: &AsyncBroadcaster, sig: Signal) {
    signal(b.pid().unwrap(), sig);
}

/// A stopped worker fills the pipe, then the queue: `try_fanout` refuses at
/// once and queues nothing; the waiting `fanout` waits (and, cancelled by a
/// timeout, queues nothing); once the worker runs again, the waiting
/// `fanout` goes through, and every accepted command arrives once, in
/// order, and no refused one.
fn backpressure_refuses_or_waits_and_nothing_is_lost() {
    const LIMIT: usize = 1 << 20;
    block_on(async {
        for transport in TRANSPORTS {
            let mut b = spawn(transport, &[], &test_options().max_queued_bytes(LIMIT));
            stop(b.pid().unwrap());
            let mut accepted = Vec::new();
            let mut refused = Vec::new();
            let mut n = 0;
            // try_: fill until refused. recv is not called, so flush by hand:
            // the pipe fills first, then the queue.
            loop {
                let tag = format!("cmd-{n}");
                n += 1;
                let before = b.link().queued_bytes();
                match b.try_fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY) {
                    Ok(()) => accepted.push(tag),
                    Err(SendError::Backpressure(e)) => {
                        assert_eq!(b.link().queued_bytes(), before, "{transport:?}");
                        assert_eq!((e.queued, e.needed, e.limit), (before, 200, LIMIT));
                        refused.push(tag);
                        // The pipe may still take some: flush and see.
                        let stuck = timeout(Duration::from_millis(50), b.flush()).await.is_err();
                        if stuck && b.link().queued_bytes() + 200 > LIMIT {
                            break;
                        }
                    }
                    Err(e) => panic!("{transport:?}: unexpected {e}"),
                }
            }
            assert!(accepted.len() > LIMIT / 200, "{transport:?}: {}", accepted.len());

            // The waiting fanout cannot complete while the worker is stopped;
            // cancelled, it leaves the queue as it was.
            let before = b.link().queued_bytes();
            let waited = timeout(
                Duration::from_millis(100),
                b.fanout(tagged_event("cancelled", EVENT_LEN), -1, BcastFlags::EMPTY),
            )
            .await;
            assert!(waited.is_err(), "{transport:?}: a full queue took a command");
            refused.push("cancelled".to_owned());
            assert_eq!(b.link().queued_bytes(), before);

            // Resumed: waiting sends go through as the worker reads. recv is
            // not polled meanwhile: the sends read its echoes ahead.
            signal_worker(&b, Signal::SIGCONT);
            for _ in 0..3000 {
                let tag = format!("cmd-{n}");
                n += 1;
                b.fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY)
                    .await
                    .unwrap();
                accepted.push(tag);
            }
            timeout(PATIENCE, b.flush()).await.unwrap().unwrap();
            let mut got = Vec::with_capacity(accepted.len());
            for _ in 0..accepted.len() {
                got.push(next_tag(&mut b).await);
            }
            assert_eq!(got, accepted, "{transport:?}");
            for tag in &refused {
                assert!(!got.contains(tag), "{transport:?}: refused {tag} was delivered");
            }
            b.close_write().unwrap();
            assert!(exit_status(&mut b).await.success(), "{:?}", stderr(&b));
        }
    });
}

/// recv raced against a timer that often wins: a dropped recv future takes
/// no frame, so every echo still arrives exactly once, in order.
fn recv_is_cancellation_safe() {
    block_on(async {
        let mut b = spawn(Transport::SocketPair, &["--byte-at-a-time"], &test_options());
        let total = 300;
        for i in 0..total {
            b.try_fanout(tagged_event(&i.to_string(), EVENT_LEN), -1, BcastFlags::EMPTY)
                .unwrap();
        }
        let mut got = Vec::new();
        let mut cancelled = 0;
        let deadline = Instant::now() + PATIENCE;
        // Every recv is polled once and dropped unless that poll gave an
        // item (a recv racing a timer may always win on a loaded machine,
        // when the frames are all buffered before the first poll). The
        // worker is stopped for the first one, which so is cancelled
        // surely; with byte-at-a-time output, later ones are cancelled
        // mid-frame whenever a poll finds a frame in part.
        stop(b.pid().unwrap());
        while got.len() < total {
            assert!(Instant::now() < deadline, "only {} of {total} arrived", got.len());
            tokio::select! {
                biased;
                item = b.recv() => match item.unwrap() {
                    Incoming::Frame(f) => got.push(tag_of(&echoed(&f))),
                    other => panic!("unexpected {other:?}"),
                },
                () = std::future::ready(()) => {
                    cancelled += 1;
                    if cancelled == 1 {
                        signal_worker(&b, Signal::SIGCONT);
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
        let want: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert!(cancelled > 0, "the timer never won: the test proved nothing");
    });
}

/// Drop never blocks the runtime for the grace period: a worker that
/// ignores end-of-file is killed and reaped after it in the background; a
/// well-behaved one exits by itself and is reaped.
fn drop_reaps_the_worker_in_the_background() {
    block_on(async {
        for transport in TRANSPORTS {
            let grace = Duration::from_secs(3);
            let mut stubborn = spawn(transport, &["--ignore-eof"], &test_options().grace_period(grace));
            let mut polite = spawn(
                transport,
                &[],
                &test_options().grace_period(Duration::from_secs(60)),
            );
            let (stubborn_pid, polite_pid) = (stubborn.pid().unwrap(), polite.pid().unwrap());
            stubborn.on_connect(1, false).await.unwrap();
            polite.on_connect(1, false).await.unwrap();
            next_frame(&mut stubborn).await; // both are up and running
            next_frame(&mut polite).await;
            let polite_tail = polite.stderr_tail().unwrap().clone();

            let started = Instant::now();
            drop(stubborn);
            drop(polite);
            // Returned without waiting out the grace period (loose bound: this
            // only tells "did not wait for it" from "waited").
            assert!(
                started.elapsed() < grace,
                "{transport:?}: drop blocked {:?}",
                started.elapsed()
            );
            assert!(
                !is_reaped(stubborn_pid),
                "{transport:?}: killed before its grace period"
            );
            assert_reaped(polite_pid);
            assert!(polite_tail.wait_closed(PATIENCE));
            assert_eq!(
                polite_tail.lines().last().map(String::as_str),
                Some("echo_worker: end of input after 1 commands"),
                "{transport:?}"
            );
            assert_reaped(stubborn_pid);
        }
    });
}

/// A runtime that shuts down right after the drop does not leave the worker
/// behind: the reap does not depend on the runtime.
fn drop_reaps_even_when_the_runtime_stops_first() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pid = rt.block_on(async {
        let b = spawn(
            Transport::Stdio,
            &["--ignore-eof"],
            &test_options().grace_period(Duration::from_millis(200)),
        );
        b.pid().unwrap()
    });
    drop(rt);
    assert_reaped(pid);
}

/// `spawn_with` takes the options' limits; a running worker has no status,
/// and `wait_exit` gives up on it; it exits with its code once it has
/// answered, and `wait_exit` reaps it without a `recv`. The stderr tail
/// exists only when captured.
fn the_process_accessors_report_the_worker() {
    block_on(async {
        // Exits with 4 once it has answered one command.
        let opts = test_options().max_queued_bytes(1 << 16).max_payload(4096);
        let mut b = spawn(Transport::Stdio, &["--exit-after", "1:4"], &opts);
        assert_eq!((b.link().queue_limit(), b.link().max_payload()), (1 << 16, 4096));
        assert!(b.pid().is_some());
        assert!(b.stderr_tail().is_some(), "captured");
        assert!(b.is_alive());
        assert_eq!(b.exit_status(), None);
        assert_eq!(b.wait_exit(Duration::from_millis(20)).await, None);
        b.on_connect(1, false).await.unwrap();
        b.flush().await.unwrap();
        let status = b.wait_exit(PATIENCE).await.expect("the worker exits");
        assert_eq!(status.code(), Some(4));
        assert_eq!(b.exit_status(), Some(status));
        assert!(!b.is_alive());

        // The defaults: an 8 MiB queue, the spec's 16 MiB payload maximum
        // (PROTOCOL.md#maximum-payload), stderr inherited (`cat` writes
        // none).
        let b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
        assert_eq!(b.link().queue_limit(), 8 * 1024 * 1024);
        assert_eq!(b.link().max_payload(), 16 * 1024 * 1024);
        assert!(b.stderr_tail().is_none(), "inherited by default");
        let opts = Options::new().stderr(StderrMode::Null);
        let b =
            AsyncBroadcaster::spawn_with(std::process::Command::new("cat"), Transport::Stdio, &opts).unwrap();
        assert!(b.stderr_tail().is_none());
    });
}

/// Adopted without a child (one socket, as `WorkerProcess::adopt` or
/// `Broadcaster::from_socket` take it): no pid, no status. Commands queued
/// in a blocking handle stay queued when it becomes an async one, and go
/// out on its socket.
fn a_handle_without_a_child_has_no_pid_and_keeps_what_was_queued() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    block_on(async {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let p = WorkerProcess::adopt(ours.into(), None, None, &Options::new()).unwrap();
        let mut b = AsyncBroadcaster::from_process(p, &Options::new()).unwrap();
        assert_eq!(b.pid(), None);
        assert_eq!(b.exit_status(), None);
        assert_eq!(b.wait_exit(Duration::ZERO).await, None);
        assert!(b.is_alive(), "its output is still open");

        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut sync = Broadcaster::from_socket(ours.into(), None, &Options::new()).unwrap();
        sync.on_connect(7, true).unwrap();
        let mut b = AsyncBroadcaster::from_broadcaster(sync).unwrap();
        assert_eq!(b.pid(), None);
        assert_eq!(b.link().queued_commands(), 1);
        b.flush().await.unwrap();
        assert_eq!(b.link().sent_commands(), 1);
        // A New of conn 7, whitelisted: channel 1, len 14; op 1, flags 1,
        // conn 7, no sub_id, no data (PROTOCOL.md#subcommand-layout).
        let mut got = [0u8; 19];
        theirs.read_exact(&mut got).unwrap();
        #[rustfmt::skip]
        let want = [1, 14, 0, 0, 0, /* */ 1, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(got, want);
    });
}
