//! The blocking `Broadcaster` over real child processes: the receive rules
//! (partial frames, oversize frames), the fds of both transports, spawning,
//! a chatty worker during `flush_timeout`, raw bytes written beside the
//! handle, and a flush after the worker's output broke the framing. What
//! every handle owes (the named methods, validation, skipped channels, an
//! invalid frame) is in `suite`.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{
    Broadcaster, FlushStatus, Incoming, Options, SpawnError, Transport, WorkerProcess,
};
use broadcast_wire::{BcastFlags, NewFlags, ReadError, ReservedFlags, SubCommand, SubId};
use bytes::Bytes;

use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        a_worker_frame_over_the_maximum_is_a_fatal_error_every_time,
        frames_written_one_byte_at_a_time_are_reassembled,
        the_two_transports_expose_their_fds_as_documented,
        the_socket_goes_to_the_requested_fd_with_fd_n_appended,
        a_missing_program_is_a_spawn_error,
        flush_timeout_keeps_reading_so_a_chatty_worker_cannot_deadlock_it,
        a_handle_without_a_child_reads_the_end_as_worker_exited_none,
        raw_bytes_written_beside_the_handle_go_out_in_order_with_the_commands,
        raw_bytes_can_break_the_stream_on_purpose,
        the_handle_can_move_to_another_thread,
        a_flush_goes_on_after_the_worker_output_broke_the_framing,
    ]
}

fn sub(id: &str) -> SubId {
    SubId::try_from(id).unwrap()
}

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
                    wait_readable(b.read_fd(), Duration::from_millis(100));
                }
                other => panic!("{transport:?}: unexpected {other:?}"),
            }
        }
        assert_eq!(got, sent, "{transport:?}");
        assert!(saw_partial, "{transport:?}: never saw a partial frame");
        assert_eq!(b.inbound_buffered(), 0);
    }
}

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

fn the_socket_goes_to_the_requested_fd_with_fd_n_appended() {
    let opts = test_options().child_fd(7);
    let mut b = spawn_echo(Transport::SocketPair, &[], &opts);
    b.on_connect(77, false).unwrap();
    assert_eq!(next_frame(&mut b).conn, 77);

    for bad in [0, 2, -1] {
        let err = Broadcaster::spawn_with(
            echo_worker::<&str>(&[]),
            Transport::SocketPair,
            &opts.clone().child_fd(bad),
        );
        assert!(matches!(err, Err(SpawnError::ChildFd(fd)) if fd == bad));
    }
}

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

fn flush_timeout_keeps_reading_so_a_chatty_worker_cannot_deadlock_it() {
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

fn a_handle_without_a_child_reads_the_end_as_worker_exited_none() {
    use std::io::Read;
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

/// A worker spawned as a `WorkerProcess`, with a copy of its write fd kept
/// before the `Broadcaster` takes it over: raw bytes a test writes there
/// go to the worker between the commands the handle flushed before and
/// after (`send_raw` of 0.2, which is gone from the handle).
fn spawn_with_raw_writer(
    transport: Transport,
    args: &[&str],
    opts: &Options,
) -> (Broadcaster, std::fs::File) {
    let process = WorkerProcess::spawn(echo_worker(args), transport, opts).unwrap();
    let raw = std::fs::File::from(process.write_fd().try_clone_to_owned().unwrap());
    (Broadcaster::from_process(process, opts), raw)
}

/// Writes all of `bytes` on the (non-blocking) raw copy of the write fd.
fn write_raw(raw: &mut std::fs::File, mut bytes: &[u8]) {
    let deadline = Instant::now() + PATIENCE;
    while !bytes.is_empty() {
        match raw.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the worker does not read");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("raw write failed: {e}"),
        }
    }
}

fn raw_bytes_written_beside_the_handle_go_out_in_order_with_the_commands() {
    use broadcast_wire::Message;

    for transport in TRANSPORTS {
        let (mut b, mut raw) = spawn_with_raw_writer(transport, &[], &test_options());
        let mut new7 = Vec::new();
        SubCommand::New {
            conn: 7,
            flags: NewFlags::EMPTY,
        }
        .encode_framed(&mut new7);

        b.on_connect(1, false).unwrap();
        b.flush_blocking().unwrap();
        // A command split across two raw pieces, a heartbeat, a frame on
        // channel 2 (which the worker skips) and a channel-1 payload that
        // does not decode (which it drops, and logs).
        write_raw(&mut raw, &new7[..3]);
        write_raw(&mut raw, &new7[3..]);
        write_raw(&mut raw, &[1, 0, 0, 0, 0]);
        write_raw(&mut raw, &[2, 1, 0, 0, 0, 0xff]);
        write_raw(&mut raw, &[1, 2, 0, 0, 0, 9, 9]);
        write_raw(&mut raw, &[]); // nothing
        b.on_connect(2, false).unwrap();
        b.flush_blocking().unwrap();
        assert_eq!(b.sent_commands(), 2);

        let conns: Vec<i32> = (0..3).map(|_| next_frame(&mut b).conn).collect();
        assert_eq!(conns, [1, 7, 2], "{transport:?}");
        // Our copy of the pipe would keep the worker from seeing the end.
        drop(raw);
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

fn raw_bytes_can_break_the_stream_on_purpose() {
    // A header announcing more than the worker's maximum: fatal, exit 2.
    let (mut b, mut raw) = spawn_with_raw_writer(Transport::Stdio, &[], &test_options());
    write_raw(&mut raw, &[1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(wait_exited(&mut b).code(), Some(2));
}

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
