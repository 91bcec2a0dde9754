//! `AsyncBroadcaster` (feature `tokio`) against the echo worker, as the
//! `broadcaster_*` tests check the sync handle: every command on both
//! transports, backpressure with nothing lost (waiting and `try_`), a
//! chatty worker that cannot deadlock a waiting send, a cancellation-safe
//! `recv`, a worker that dies, and drop reaping the worker without blocking
//! the runtime.
#![cfg(target_os = "linux")]

use broadcast_testkit::broadcaster_support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use broadcast_process::async_broadcaster::{AsyncBroadcaster, QueueError};
use broadcast_process::broadcaster::{FlushError, Incoming, Options, SendError, Transport};
use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};
use broadcaster_support::*;
use bytes::Bytes;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::timeout;

/// Each fanout below is a 200-byte frame.
const EVENT_LEN: usize = 181;

fn spawn(transport: Transport, args: &[&str], opts: &Options) -> AsyncBroadcaster {
    AsyncBroadcaster::spawn_with(echo_worker(args), transport, opts)
        .unwrap_or_else(|e| panic!("spawning the echo worker over {transport:?}: {e}"))
}

fn stderr(b: &AsyncBroadcaster) -> Vec<String> {
    b.broadcaster()
        .stderr_tail()
        .map(|t| t.lines())
        .unwrap_or_default()
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

fn signal(b: &AsyncBroadcaster, sig: Signal) {
    kill(Pid::from_raw(b.pid().unwrap() as i32), sig).unwrap();
}

#[tokio::test]
async fn every_named_method_reaches_the_worker_exactly_on_both_transports() {
    for transport in TRANSPORTS {
        let mut b = spawn(transport, &[], &test_options());
        let req = r#"["REQ","s1",{"kinds":[1]}]"#;
        let event = r#"["EVENT",{"kind":1}]"#;
        let raw = SubCommand::Close {
            conn: 6,
            flags: ReservedFlags::from_bits(0x80),
        };
        // Half waiting, half `try_`: both queue the same commands.
        b.on_connect(5, true).await.unwrap();
        b.try_on_connect(6, false).unwrap();
        b.on_subscribe(5, "s1", req).await.unwrap();
        b.try_on_unsubscribe(5, "s1").unwrap();
        b.on_auth(6, [0xa5; 32]).await.unwrap();
        b.fanout(event, -1, BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE)
            .await
            .unwrap();
        b.try_fanout(event, 6, BcastFlags::MARMOT_OPEN).unwrap();
        b.on_disconnect(5).await.unwrap();
        b.try_on_subscribe(6, "s2", req).unwrap();
        b.on_unsubscribe(6, "s2").await.unwrap();
        b.try_on_auth(5, [1; 32]).unwrap();
        b.try_on_disconnect(6).unwrap();
        b.send(&raw).await.unwrap();
        b.try_send(&raw).unwrap();

        let sub = |id: &str| SubId::try_from(id).unwrap();
        let add = |conn, id: &str| SubCommand::Add {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id: sub(id),
            req: Bytes::from_static(req.as_bytes()),
        };
        let remove = |conn, id: &str| SubCommand::Remove {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id: sub(id),
        };
        let close = |conn| SubCommand::Close {
            conn,
            flags: ReservedFlags::EMPTY,
        };
        let expected = vec![
            SubCommand::New {
                conn: 5,
                flags: NewFlags::WHITELISTED,
            },
            SubCommand::New {
                conn: 6,
                flags: NewFlags::EMPTY,
            },
            add(5, "s1"),
            remove(5, "s1"),
            SubCommand::Auth {
                conn: 6,
                flags: ReservedFlags::EMPTY,
                pubkey: [0xa5; 32],
            },
            SubCommand::Bcast {
                sender: -1,
                flags: BcastFlags::from_bits(0b011),
                event: Bytes::from_static(event.as_bytes()),
            },
            SubCommand::Bcast {
                sender: 6,
                flags: BcastFlags::from_bits(0b100),
                event: Bytes::from_static(event.as_bytes()),
            },
            close(5),
            add(6, "s2"),
            remove(6, "s2"),
            SubCommand::Auth {
                conn: 5,
                flags: ReservedFlags::EMPTY,
                pubkey: [1; 32],
            },
            close(6),
            raw.clone(),
            raw,
        ];
        // Nothing is flushed explicitly: recv writes the queue as it waits.
        for want in &expected {
            let frame = next_frame(&mut b).await;
            assert_eq!(frame.conn, want.conn().max(0), "{transport:?}");
            assert_eq!(&echoed(&frame), want, "{transport:?}");
        }
        assert_eq!(b.broadcaster().sent_commands(), expected.len() as u64);
        b.close_write().unwrap();
        let status = exit_status(&mut b).await;
        assert!(status.success(), "{transport:?}: {status:?} {:?}", stderr(&b));
    }
}

#[tokio::test]
async fn invalid_commands_are_refused_with_a_typed_error_and_not_queued() {
    let mut b = spawn(Transport::Stdio, &[], &test_options().max_payload(1024));
    let bad_conn = SubCommand::New {
        conn: -1,
        flags: NewFlags::EMPTY,
    };
    assert!(matches!(
        b.send(&bad_conn).await,
        Err(QueueError::Refused(SendError::Invalid(_)))
    ));
    assert!(matches!(b.try_send(&bad_conn), Err(SendError::Invalid(_))));
    assert!(matches!(
        b.on_subscribe(1, "", "x").await,
        Err(QueueError::Refused(SendError::Invalid(_)))
    ));
    assert!(matches!(
        b.fanout(vec![b'x'; 2000], -1, BcastFlags::EMPTY).await,
        Err(QueueError::Refused(SendError::TooLarge(_)))
    ));
    assert!(matches!(
        b.try_fanout(vec![b'x'; 2000], -1, BcastFlags::EMPTY),
        Err(SendError::TooLarge(_))
    ));
    assert_eq!(b.broadcaster().queued_commands(), 0);
}

/// A stopped worker fills the pipe, then the queue: `try_fanout` refuses at
/// once and queues nothing; the waiting `fanout` waits (and, cancelled by a
/// timeout, queues nothing); once the worker runs again, the waiting
/// `fanout` goes through, and every accepted command arrives once, in
/// order, and no refused one.
#[tokio::test]
async fn backpressure_refuses_or_waits_and_nothing_is_lost() {
    const LIMIT: usize = 1 << 20;
    for transport in TRANSPORTS {
        let mut b = spawn(transport, &[], &test_options().max_queued_bytes(LIMIT));
        signal(&b, Signal::SIGSTOP);
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let mut n = 0;
        // try_: fill until refused. recv is not called, so flush by hand:
        // the pipe fills first, then the queue.
        loop {
            let tag = format!("cmd-{n}");
            n += 1;
            let before = b.broadcaster().queued_bytes();
            match b.try_fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY) {
                Ok(()) => accepted.push(tag),
                Err(SendError::Backpressure(e)) => {
                    assert_eq!(b.broadcaster().queued_bytes(), before, "{transport:?}");
                    assert_eq!((e.queued, e.needed, e.limit), (before, 200, LIMIT));
                    refused.push(tag);
                    // The pipe may still take some: flush and see.
                    let stuck = timeout(Duration::from_millis(50), b.flush()).await.is_err();
                    if stuck && b.broadcaster().queued_bytes() + 200 > LIMIT {
                        break;
                    }
                }
                Err(e) => panic!("{transport:?}: unexpected {e}"),
            }
        }
        assert!(accepted.len() > LIMIT / 200, "{transport:?}: {}", accepted.len());

        // The waiting fanout cannot complete while the worker is stopped;
        // cancelled, it leaves the queue as it was.
        let before = b.broadcaster().queued_bytes();
        let waited = timeout(
            Duration::from_millis(100),
            b.fanout(tagged_event("cancelled", EVENT_LEN), -1, BcastFlags::EMPTY),
        )
        .await;
        assert!(waited.is_err(), "{transport:?}: a full queue took a command");
        refused.push("cancelled".to_owned());
        assert_eq!(b.broadcaster().queued_bytes(), before);

        // Resumed: waiting sends go through as the worker reads. recv is
        // not polled meanwhile: the sends read its echoes ahead.
        signal(&b, Signal::SIGCONT);
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
}

/// The echo worker answers every command: with thousands queued and nobody
/// calling recv, it blocks writing its answers and stops reading. A
/// waiting send must keep reading them (into the stash) or it would wait
/// forever.
#[tokio::test]
async fn a_waiting_send_keeps_reading_so_a_chatty_worker_cannot_deadlock_it() {
    for transport in TRANSPORTS {
        let mut b = spawn(transport, &[], &test_options().max_queued_bytes(64 * 1024));
        let total = 20_000;
        let sending = async {
            for i in 0..total {
                b.fanout(tagged_event(&i.to_string(), EVENT_LEN), -1, BcastFlags::EMPTY)
                    .await
                    .unwrap();
            }
            b.flush().await.unwrap();
        };
        timeout(PATIENCE, sending)
            .await
            .unwrap_or_else(|_| panic!("{transport:?}: deadlocked"));
        for i in 0..total {
            assert_eq!(next_tag(&mut b).await, i.to_string(), "{transport:?}");
        }
    }
}

/// recv raced against a timer that often wins: a dropped recv future takes
/// no frame, so every echo still arrives exactly once, in order.
#[tokio::test]
async fn recv_is_cancellation_safe() {
    let mut b = spawn(Transport::SocketPair, &["--byte-at-a-time"], &test_options());
    let total = 300;
    for i in 0..total {
        b.try_fanout(tagged_event(&i.to_string(), EVENT_LEN), -1, BcastFlags::EMPTY)
            .unwrap();
    }
    let mut got = Vec::new();
    let mut cancelled = 0;
    let deadline = Instant::now() + PATIENCE;
    while got.len() < total {
        assert!(Instant::now() < deadline, "only {} of {total} arrived", got.len());
        tokio::select! {
            item = b.recv() => match item.unwrap() {
                Incoming::Frame(f) => got.push(tag_of(&echoed(&f))),
                other => panic!("unexpected {other:?}"),
            },
            _ = tokio::time::sleep(Duration::from_micros(200)) => cancelled += 1,
        }
    }
    let want: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    assert!(cancelled > 0, "the timer never won: the test proved nothing");
}

#[tokio::test]
async fn heartbeats_and_foreign_channels_are_skipped_and_a_bad_frame_is_reported() {
    let mut b = spawn(Transport::Stdio, &["--noise", "--invalid-first"], &test_options());
    b.on_connect(3, false).await.unwrap();
    match timeout(PATIENCE, b.recv()).await.unwrap().unwrap() {
        Incoming::InvalidFrame(_) => {}
        other => panic!("expected the invalid frame first, got {other:?}"),
    }
    let frame = next_frame(&mut b).await;
    assert_eq!(
        echoed(&frame),
        SubCommand::New {
            conn: 3,
            flags: NewFlags::EMPTY
        }
    );
}

/// The worker aborts after two answers: recv returns those two, then the
/// exit (with its signal), and again on every later call; commands are
/// refused as WorkerGone and flush counts what never arrived.
#[tokio::test]
async fn a_worker_that_crashes_is_a_typed_outcome_and_is_reaped() {
    for transport in TRANSPORTS {
        let mut b = spawn(transport, &["--crash-after", "2"], &test_options());
        let pid = b.pid().unwrap();
        for i in 0..5 {
            b.fanout(tagged_event(&i.to_string(), EVENT_LEN), -1, BcastFlags::EMPTY)
                .await
                .unwrap();
        }
        assert_eq!(next_tag(&mut b).await, "0");
        assert_eq!(next_tag(&mut b).await, "1");
        let status = exit_status(&mut b).await;
        assert_eq!(status.signal(), Some(Signal::SIGABRT as i32), "{transport:?}");
        assert!(matches!(
            timeout(PATIENCE, b.recv()).await.unwrap(),
            Ok(Incoming::WorkerExited(Some(_)))
        ));
        assert_reaped(pid);
        assert!(!b.is_alive());

        // Writing to the dead worker: typed errors, never SIGPIPE. The
        // flush that finds it gone counts what it did not deliver.
        b.fanout(tagged_event("late", EVENT_LEN), -1, BcastFlags::EMPTY)
            .await
            .unwrap();
        let flushed = timeout(PATIENCE, b.flush()).await.unwrap();
        assert!(
            matches!(
                flushed,
                Err(FlushError::WorkerGone {
                    unsent_commands: 1,
                    unsent_bytes: 200
                })
            ),
            "{transport:?}: {flushed:?}"
        );
        assert!(matches!(
            b.on_connect(1, false).await,
            Err(QueueError::Refused(SendError::WorkerGone))
        ));
        assert!(matches!(b.try_on_connect(1, false), Err(SendError::WorkerGone)));
    }
}

/// Drop never blocks the runtime for the grace period: a worker that
/// ignores end-of-file is killed and reaped after it in the background; a
/// well-behaved one exits by itself and is reaped.
#[tokio::test]
async fn drop_reaps_the_worker_in_the_background() {
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
        let polite_tail = polite.broadcaster().stderr_tail().unwrap().clone();

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
}

/// A runtime that shuts down right after the drop does not leave the worker
/// behind: the reap does not depend on the runtime.
#[test]
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
