//! The Broadcaster over real child processes: every named method on both
//! transports, validation, the receive rules (partial frames, heartbeats,
//! foreign channels, bad payloads, oversize frames) and the end of stream.
#![cfg(target_os = "linux")]

use broadcast_testkit::broadcaster_support;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{
    Broadcaster, FlushStatus, Incoming, Options, SendError, SpawnError, Transport,
};
use broadcast_wire::{
    BcastFlags, NewFlags, PayloadError, ReadError, ReservedFlags, SubCommand, SubId, SubIdProblem,
};
use broadcaster_support::*;
use bytes::Bytes;

fn sub(id: &str) -> SubId {
    SubId::try_from(id).unwrap()
}

#[test]
fn every_named_method_reaches_the_worker_exactly_on_both_transports() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        let req = r#"["REQ","s1",{"kinds":[1]}]"#;
        let event = r#"["EVENT",{"kind":1}]"#;
        b.on_connect(5, true).unwrap();
        b.on_connect(6, false).unwrap();
        b.on_subscribe(5, "s1", req).unwrap();
        b.on_unsubscribe(5, "s1").unwrap();
        b.on_auth(6, [0xa5; 32]).unwrap();
        b.fanout(event, -1, BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE)
            .unwrap();
        b.fanout(event, 6, BcastFlags::MARMOT_OPEN).unwrap();
        b.on_disconnect(5).unwrap();
        // `send` passes reserved flag bits through untouched.
        let raw = SubCommand::Close {
            conn: 6,
            flags: ReservedFlags::from_bits(0x80),
        };
        b.send(&raw).unwrap();
        let expected = vec![
            SubCommand::New {
                conn: 5,
                flags: NewFlags::WHITELISTED,
            },
            SubCommand::New {
                conn: 6,
                flags: NewFlags::EMPTY,
            },
            SubCommand::Add {
                conn: 5,
                flags: ReservedFlags::EMPTY,
                sub_id: sub("s1"),
                req: Bytes::from_static(req.as_bytes()),
            },
            SubCommand::Remove {
                conn: 5,
                flags: ReservedFlags::EMPTY,
                sub_id: sub("s1"),
            },
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
            SubCommand::Close {
                conn: 5,
                flags: ReservedFlags::EMPTY,
            },
            raw,
        ];
        assert_eq!(b.queued_commands(), expected.len());
        assert!(b.wants_write());
        b.flush_blocking().unwrap();
        assert!(!b.wants_write());
        assert_eq!(b.sent_commands(), expected.len() as u64);

        for want in &expected {
            let frame = next_frame(&mut b);
            assert_eq!(frame.conn, want.conn().max(0), "{transport:?}");
            assert_eq!(&echoed(&frame), want, "{transport:?}");
        }
        b.close_write().unwrap();
        let status = wait_exited(&mut b);
        assert!(status.success(), "{transport:?}: {status:?} {:?}", stderr_of(&b));
    }
}

#[test]
fn invalid_commands_are_refused_with_a_typed_error_and_not_queued() {
    let opts = test_options().max_payload(1024);
    let mut b = spawn_echo(Transport::Stdio, &[], &opts);
    let class = |r: Result<(), SendError>| match r {
        Err(SendError::Invalid(e)) => e.class(),
        other => panic!("expected SendError::Invalid, got {other:?}"),
    };
    assert_eq!(class(b.on_connect(-1, false)), "invalid_conn");
    assert_eq!(class(b.on_disconnect(-7)), "invalid_conn");
    assert_eq!(class(b.on_subscribe(1, "s", "")), "invalid_data");
    assert_eq!(class(b.on_unsubscribe(-1, "s")), "invalid_conn");
    assert_eq!(class(b.on_auth(i32::MIN, [0; 32])), "invalid_conn");
    assert_eq!(class(b.fanout("", -1, BcastFlags::EMPTY)), "invalid_data");
    assert_eq!(class(b.fanout("x", -2, BcastFlags::EMPTY)), "invalid_conn");
    assert_eq!(
        b.on_subscribe(1, "", "x"),
        Err(SendError::Invalid(PayloadError::InvalidSubId {
            problem: SubIdProblem::Missing
        }))
    );
    let long = "x".repeat(65);
    assert_eq!(
        b.on_unsubscribe(1, &long),
        Err(SendError::Invalid(PayloadError::InvalidSubId {
            problem: SubIdProblem::TooLong { len: 65 }
        }))
    );
    // 14 fixed bytes + 1011 = 1025 > 1024: the worker would kill the stream.
    match b.fanout(vec![b'e'; 1011], -1, BcastFlags::EMPTY) {
        Err(SendError::TooLarge(e)) => assert_eq!((e.len, e.max), (1025, 1024)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(b.queued_bytes(), 0);
    assert_eq!(b.queued_commands(), 0);
    assert!(!b.wants_write());

    // Exactly at the maximum is fine, and it is the only thing the worker got.
    b.fanout(vec![b'e'; 1010], -1, BcastFlags::EMPTY).unwrap();
    b.close_write().unwrap_err(); // still queued
    b.flush_blocking().unwrap();
    b.close_write().unwrap();
    // Its echo (8 + 1024 bytes) is over the parent's own maximum, so this
    // read is a fatal frame_too_large: proof that exactly one command went.
    match b.read_frame_timeout(PATIENCE) {
        Err(ReadError::Framing(e)) => assert_eq!(e.class(), "frame_too_large"),
        other => panic!("expected frame_too_large, got {other:?}"),
    }
}

#[test]
fn a_worker_frame_over_the_maximum_is_a_fatal_error_every_time() {
    for transport in TRANSPORTS {
        // New is 14 payload bytes, its echo 8 + 14 = 22 > 16.
        let mut b = spawn_echo(transport, &[], &test_options().max_payload(16));
        b.on_connect(1, false).unwrap();
        for _ in 0..2 {
            match b.read_frame_timeout(PATIENCE) {
                Err(ReadError::Framing(e)) => assert_eq!(e.class(), "frame_too_large", "{transport:?}"),
                other => panic!("{transport:?}: expected frame_too_large, got {other:?}"),
            }
        }
    }
}

#[test]
fn frames_written_one_byte_at_a_time_are_reassembled() {
    for transport in TRANSPORTS {
        let args = ["--byte-at-a-time", "--byte-delay-us", "300"];
        let mut b = spawn_echo(transport, &args, &test_options());
        let sent: Vec<SubCommand> = (0..4)
            .map(|i| SubCommand::Add {
                conn: i,
                flags: ReservedFlags::EMPTY,
                sub_id: sub(&format!("sub-{i}")),
                req: Bytes::from(format!(r#"["REQ","sub-{i}",{{}}]"#)),
            })
            .collect();
        for cmd in &sent {
            b.send(cmd).unwrap();
        }
        b.flush_blocking().unwrap();

        let mut got = Vec::new();
        let mut saw_partial = false;
        let deadline = Instant::now() + PATIENCE;
        while got.len() < sent.len() {
            assert!(Instant::now() < deadline, "{transport:?}: timed out");
            match b.read_frame().unwrap() {
                Incoming::Frame(f) => got.push(echoed(&f)),
                Incoming::Pending => {
                    // A partial frame is kept across calls, not lost.
                    saw_partial |= b.inbound_buffered() > 0;
                    wait_readable(&b, Duration::from_millis(100));
                }
                other => panic!("{transport:?}: unexpected {other:?}"),
            }
        }
        assert_eq!(got, sent, "{transport:?}");
        assert!(saw_partial, "{transport:?}: never saw a partial frame");
        assert_eq!(b.inbound_buffered(), 0);
    }
}

#[test]
fn heartbeats_and_foreign_channels_are_skipped() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &["--noise"], &test_options());
        for conn in [3, 4, 5] {
            b.on_connect(conn, false).unwrap();
        }
        b.flush_blocking().unwrap();
        // Each echo is preceded by a heartbeat on channel 2, frames on
        // channels 1, 0 and 255, and a heartbeat on channel 9: only the
        // echoes come out.
        for conn in [3, 4, 5] {
            let frame = next_frame(&mut b);
            assert_eq!(frame.conn, conn, "{transport:?}");
        }
        b.close_write().unwrap();
        let status = wait_exited(&mut b);
        assert!(status.success(), "{transport:?}");
    }
}

#[test]
fn an_undecodable_frame_is_reported_and_the_stream_goes_on() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &["--invalid-first"], &test_options());
        match b.read_frame_timeout(PATIENCE).unwrap() {
            Incoming::InvalidFrame(e) => assert_eq!(e.class(), "truncated", "{transport:?}"),
            other => panic!("{transport:?}: expected InvalidFrame, got {other:?}"),
        }
        b.on_connect(9, false).unwrap();
        assert_eq!(next_frame(&mut b).conn, 9, "{transport:?}");
    }
}

#[test]
fn the_two_transports_expose_their_fds_as_documented() {
    let b = spawn_echo(Transport::Stdio, &[], &test_options());
    let (r, w) = (b.read_fd().as_raw_fd(), b.write_fd().unwrap().as_raw_fd());
    assert_ne!(r, w);
    assert_eq!(b.as_raw_fd(), r);

    let b = spawn_echo(Transport::SocketPair, &[], &test_options());
    assert_eq!(b.read_fd().as_raw_fd(), b.write_fd().unwrap().as_raw_fd());

    // Both ends are non-blocking, so nothing in the handle can block.
    for fd in [b.read_fd().as_raw_fd(), r, w] {
        let flags = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = flags.lines().find(|l| l.starts_with("flags:")).unwrap();
        let bits = u32::from_str_radix(flags.split_whitespace().nth(1).unwrap(), 8).unwrap();
        assert_ne!(
            bits & nix::fcntl::OFlag::O_NONBLOCK.bits() as u32,
            0,
            "fd {fd}: {flags}"
        );
    }
}

#[test]
fn the_socket_goes_to_the_requested_fd_with_fd_n_appended() {
    let opts = test_options().child_fd(7);
    let mut b = spawn_echo(Transport::SocketPair, &[], &opts);
    b.on_connect(77, false).unwrap();
    assert_eq!(next_frame(&mut b).conn, 77);

    for bad in [0, 2, -1] {
        let err = Broadcaster::spawn_with(
            echo_worker(&[]),
            Transport::SocketPair,
            &opts.clone().child_fd(bad),
        );
        assert!(matches!(err, Err(SpawnError::ChildFd(fd)) if fd == bad));
    }
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    for transport in TRANSPORTS {
        let cmd = std::process::Command::new("/nonexistent/broadcast-worker");
        match Broadcaster::spawn(cmd, transport) {
            Err(SpawnError::Spawn { program, source }) => {
                assert_eq!(program, "/nonexistent/broadcast-worker");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{transport:?}: expected a spawn error, got {other:?}"),
        }
    }
}

#[test]
fn flush_blocking_keeps_reading_so_a_chatty_worker_cannot_deadlock_it() {
    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        // ~2.4 MB each way, far beyond the pipe and socket buffers: the
        // worker blocks writing its echoes unless the flush reads them.
        let n = 12_000;
        for i in 0..n {
            b.fanout(tagged_event(&i.to_string(), 181), -1, BcastFlags::EMPTY)
                .unwrap();
        }
        // flush_blocking with a deadline, so a deadlock fails instead of hanging.
        assert_eq!(
            b.flush_timeout(PATIENCE).unwrap(),
            FlushStatus::Flushed,
            "{transport:?}"
        );
        assert_eq!(b.sent_commands(), n as u64);
        for i in 0..n {
            let frame = next_frame(&mut b);
            assert_eq!(tag_of(&echoed(&frame)), i.to_string(), "{transport:?}");
        }
    }
}

#[test]
fn a_handle_without_a_child_reads_the_end_as_worker_exited_none() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let mut b = Broadcaster::from_socket(ours.into(), None, &Options::new()).unwrap();
    assert!(!b.has_child());
    assert!(b.is_alive());
    b.on_connect(1, false).unwrap();
    b.flush_blocking().unwrap();
    let mut got = [0u8; 19];
    theirs.read_exact(&mut got).unwrap();
    assert_eq!(got[0], 1);

    // The peer sends one frame and hangs up.
    let mut frame = Vec::new();
    broadcast_wire::Message::encode_framed(
        &broadcast_wire::BroadcastFrame {
            conn: 1,
            data: "hi".into(),
        },
        &mut frame,
    );
    theirs.write_all(&frame).unwrap();
    drop(theirs);
    assert_eq!(next_frame(&mut b).data, "hi");
    assert_eq!(
        b.read_frame_timeout(PATIENCE).unwrap(),
        Incoming::WorkerExited(None)
    );
    assert!(!b.is_alive());
}

#[test]
fn raw_bytes_go_out_in_order_with_the_commands() {
    use broadcast_wire::Message;

    for transport in TRANSPORTS {
        let mut b = spawn_echo(transport, &[], &test_options());
        let mut new7 = Vec::new();
        SubCommand::New {
            conn: 7,
            flags: NewFlags::EMPTY,
        }
        .encode_framed(&mut new7);

        b.on_connect(1, false).unwrap();
        // A command split across two raw pieces, a heartbeat, a frame on
        // channel 2 (which the worker skips) and a channel-1 payload that
        // does not decode (which it drops, and logs).
        b.send_raw(&new7[..3]).unwrap();
        b.send_raw(&new7[3..]).unwrap();
        b.send_raw([1, 0, 0, 0, 0]).unwrap();
        b.send_raw([2, 1, 0, 0, 0, 0xff]).unwrap();
        b.send_raw([1, 2, 0, 0, 0, 9, 9]).unwrap();
        b.send_raw([]).unwrap(); // nothing
        b.on_connect(2, false).unwrap();
        assert_eq!(b.queued_commands(), 7);
        b.flush_blocking().unwrap();
        assert_eq!(b.sent_commands(), 7);

        let conns: Vec<i32> = (0..3).map(|_| next_frame(&mut b).conn).collect();
        assert_eq!(conns, [1, 7, 2], "{transport:?}");
        b.close_write().unwrap();
        assert!(wait_exited(&mut b).success());
        // The process is gone; its last lines may still be in the pipe.
        assert!(b.stderr_tail().unwrap().wait_closed(PATIENCE));
        let log = stderr_of(&b).join("\n");
        assert!(
            log.contains("dropped a command that does not decode"),
            "{transport:?}: {log}"
        );
    }
}

#[test]
fn raw_bytes_can_break_the_stream_on_purpose() {
    // A header announcing more than the worker's maximum: fatal, exit 2.
    let mut b = spawn_echo(Transport::Stdio, &[], &test_options());
    b.send_raw([1, 0xff, 0xff, 0xff, 0xff]).unwrap();
    b.flush_blocking().unwrap();
    assert_eq!(wait_exited(&mut b).code(), Some(2));
}

#[test]
fn raw_bytes_respect_the_queue_limit() {
    let mut b = spawn_echo(Transport::Stdio, &[], &test_options().max_queued_bytes(100));
    b.send_raw(vec![0u8; 60]).unwrap();
    match b.send_raw(vec![0u8; 60]) {
        Err(SendError::Backpressure(e)) => assert_eq!((e.queued, e.needed, e.limit), (60, 60, 100)),
        other => panic!("expected Backpressure, got {other:?}"),
    }
    assert_eq!(b.queued_bytes(), 60);
}

#[test]
fn the_handle_can_move_to_another_thread() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Broadcaster>();
    assert_send_sync::<broadcast_process::broadcaster::StderrTail>();

    let mut b = spawn_echo(Transport::Stdio, &[], &test_options());
    let conn = std::thread::spawn(move || {
        b.on_connect(42, false).unwrap();
        next_frame(&mut b).conn
    })
    .join()
    .unwrap();
    assert_eq!(conn, 42);
}

#[test]
fn a_flush_goes_on_after_the_worker_output_broke_the_framing() {
    for transport in TRANSPORTS {
        // Every echo (22 bytes) is over this maximum: the first one is a
        // fatal error, and megabytes more follow while the flush runs.
        let mut b = spawn_echo(transport, &[], &test_options().max_payload(16));
        for conn in 0..100_000 {
            b.on_connect(conn, false).unwrap();
        }
        // Without discarding the broken output the worker would block on it
        // and stop reading, and this would time out.
        assert_eq!(
            b.flush_timeout(PATIENCE).unwrap(),
            FlushStatus::Flushed,
            "{transport:?}"
        );
        match b.read_frame() {
            Err(ReadError::Framing(e)) => assert_eq!(e.class(), "frame_too_large"),
            other => panic!("{transport:?}: expected the framing error, got {other:?}"),
        }
    }
}
