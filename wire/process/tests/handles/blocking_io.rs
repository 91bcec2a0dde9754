//! The blocking `Broadcaster` over real child processes: the receive rules
//! (partial frames, oversize frames), the fds of both transports, spawning
//! (the socket's fd and `--fd N`, the options' limits), adopting fds
//! without a child, `check_send`, a chatty worker during `flush_timeout`,
//! raw bytes written beside the handle, and a flush after the worker's
//! output broke the framing. What
//! every handle owes (the named methods, validation, skipped channels, an
//! invalid frame) is in `suite`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{
    Backpressure, Broadcaster, FlushStatus, Incoming, Options, SendError, SpawnError, StderrMode, Transport,
    WorkerProcess,
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
        the_socket_is_fd_3_by_default_and_stdio_appends_no_argument,
        the_queue_limit_and_the_payload_maximum_come_from_the_options,
        check_send_says_what_send_would_do_and_changes_nothing,
        an_idle_worker_reads_as_pending,
        adopting_without_a_child_gives_no_pid_and_no_status,
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
    assert_eq!(b.as_fd().as_raw_fd(), r);
    // The link's reader and writer hold the same fds.
    assert_eq!(b.link().reader().fd().as_raw_fd(), r);
    assert_eq!(b.link().writer().fd().map(|fd| fd.as_raw_fd()), Some(w));

    let mut b = spawn_echo(Transport::SocketPair, &[], &test_options());
    assert_eq!(b.read_fd().as_raw_fd(), b.write_fd().unwrap().as_raw_fd());
    assert_eq!(
        b.link().writer().fd().map(|fd| fd.as_raw_fd()),
        Some(b.link().reader().fd().as_raw_fd())
    );

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

    // Closing the command stream takes the write fd away; the read fd stays.
    let read = b.read_fd().as_raw_fd();
    b.close_write().unwrap();
    assert!(b.write_fd().is_none());
    assert!(b.link().writer().fd().is_none());
    assert_eq!(b.read_fd().as_raw_fd(), read);
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

/// The arguments the worker was started with, from /proc. `spawn` returns
/// once `exec` is past its point of no return, which can be before the
/// new program's arguments are in place (the file reads empty): wait for
/// them.
fn argv_of(pid: u32) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the worker's cmdline");
        if !cmdline.is_empty() {
            return cmdline
                .split(|&b| b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
        }
        assert!(Instant::now() < deadline, "worker {pid} has no arguments");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn the_socket_is_fd_3_by_default_and_stdio_appends_no_argument() {
    // The echo worker's own arguments, then what the transport appends.
    let b = spawn_echo(Transport::SocketPair, &["--noise"], &test_options());
    let pid = b.pid().unwrap();
    let argv = argv_of(pid);
    assert_eq!(argv[1..], ["--noise", "--fd", "3"], "{argv:?}");
    let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3")).expect("the worker's fd 3");
    assert!(fd3.to_string_lossy().starts_with("socket:"), "{fd3:?}");

    let b = spawn_echo(Transport::Stdio, &["--noise"], &test_options());
    let argv = argv_of(b.pid().unwrap());
    assert_eq!(argv[1..], ["--noise"], "{argv:?}");
}

fn the_queue_limit_and_the_payload_maximum_come_from_the_options() {
    // The defaults: an 8 MiB queue (Options), the spec's 16 MiB payload
    // maximum (PROTOCOL.md#maximum-payload). Stderr is inherited by
    // default, and `cat` writes none there.
    let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    assert_eq!(b.queue_limit(), 8 * 1024 * 1024);
    assert_eq!(b.max_payload(), 16 * 1024 * 1024);
    assert!(b.pid().is_some() && b.has_child());
    drop(b);

    let opts = test_options().max_queued_bytes(1 << 16).max_payload(4096);
    for transport in TRANSPORTS {
        let b = spawn_echo(transport, &[], &opts);
        assert_eq!(
            (b.queue_limit(), b.max_payload()),
            (1 << 16, 4096),
            "{transport:?}"
        );
        let p = WorkerProcess::spawn(echo_worker::<&str>(&[]), transport, &opts).unwrap();
        assert!(p.pid().is_some());
        let b = Broadcaster::from_process(p, &opts);
        assert_eq!(
            (b.queue_limit(), b.max_payload()),
            (1 << 16, 4096),
            "{transport:?}"
        );
    }
}

fn check_send_says_what_send_would_do_and_changes_nothing() {
    // A Bcast of 40 bytes is a 5 + 14 + 40 = 59-byte frame
    // (PROTOCOL.md#frame-layout, PROTOCOL.md#subcommand-layout).
    let mut b = spawn_echo(Transport::Stdio, &[], &test_options().max_queued_bytes(64));
    let ev = SubCommand::Bcast {
        sender: -1,
        flags: BcastFlags::EMPTY,
        event: vec![b'x'; 40].into(),
    };
    assert_eq!(b.check_send(&ev), Ok(()));
    assert_eq!((b.queued_bytes(), b.queued_commands()), (0, 0));
    b.send(&ev).unwrap();
    assert_eq!(b.queued_bytes(), 59);
    let full = Err(SendError::Backpressure(Backpressure {
        queued: 59,
        needed: 59,
        limit: 64,
    }));
    assert_eq!(b.check_send(&ev), full);
    assert_eq!(b.send(&ev), full);
    assert_eq!((b.queued_bytes(), b.queued_commands()), (59, 1));

    // A few bytes always fit an empty pipe: one non-blocking flush.
    assert!(b.wants_write());
    assert_eq!(b.flush().unwrap(), FlushStatus::Flushed);
    assert!(!b.wants_write());
    assert_eq!((b.queued_bytes(), b.sent_commands()), (0, 1));
    assert_eq!(b.check_send(&ev), Ok(()));
    assert_eq!(echoed(&next_frame(&mut b)), ev);
}

fn an_idle_worker_reads_as_pending() {
    for transport in TRANSPORTS {
        // The echo worker writes only answers: nothing comes unasked.
        let mut b = spawn_echo(transport, &[], &test_options());
        assert!(!b.wants_write());
        assert_eq!(b.read_frame().unwrap(), Incoming::Pending, "{transport:?}");
        let wait = Duration::from_millis(30);
        let started = Instant::now();
        assert_eq!(
            b.read_frame_timeout(wait).unwrap(),
            Incoming::Pending,
            "{transport:?}"
        );
        assert!(started.elapsed() >= wait, "{transport:?}: returned early");
        assert_eq!(b.inbound_buffered(), 0);
        assert!(b.is_alive());
    }
}

fn adopting_without_a_child_gives_no_pid_and_no_status() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    // One duplex socket, as `from_socket` and `WorkerProcess::adopt` with
    // no write fd take it; captured stderr asked for, but there is none.
    let opts = Options::new().stderr(StderrMode::Capture { max_lines: 4 });
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let p = WorkerProcess::adopt(ours.into(), None, None, &opts).unwrap();
    assert_eq!(p.pid(), None);
    assert_eq!(p.read_fd().as_raw_fd(), p.write_fd().as_raw_fd());
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let socket = Broadcaster::from_socket(ours.into(), None, &opts).unwrap();

    // Two one-way ends, as `from_fds` takes them.
    let (read, _their_write) = UnixStream::pair().unwrap();
    let (write, mut their_read) = UnixStream::pair().unwrap();
    let mut fds = Broadcaster::from_fds(read.into(), write.into(), None, &opts).unwrap();

    for mut b in [Broadcaster::from_process(p, &opts), socket] {
        assert_eq!(b.pid(), None);
        assert!(!b.has_child());
        assert_eq!(b.exit_status(), None);
        assert_eq!(b.wait_exit(Duration::ZERO), None);
        assert!(b.stderr_tail().is_none());
        assert!(b.is_alive(), "its output is still open");
    }
    assert_eq!(fds.pid(), None);
    assert!(!fds.has_child());
    assert_eq!(fds.exit_status(), None);
    assert!(fds.stderr_tail().is_none());
    assert_ne!(fds.read_fd().as_raw_fd(), fds.write_fd().unwrap().as_raw_fd());
    // Commands go out on the write end: a Close of conn 9 is one frame,
    // channel 1, len 14; op 2, flags 0, conn 9, no sub_id, no data
    // (PROTOCOL.md#frame-layout, PROTOCOL.md#subcommand-layout).
    fds.on_disconnect(9).unwrap();
    fds.flush_blocking().unwrap();
    let mut got = [0u8; 19];
    their_read.read_exact(&mut got).unwrap();
    #[rustfmt::skip]
    let want = [1, 14, 0, 0, 0, /* */ 2, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(got, want);
}
