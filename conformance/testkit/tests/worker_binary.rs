//! The real `broadcast-worker` binary over real pipes (stdio) and over a
//! real socketpair (`--fd N`): framing on input, the probe (PROTOCOL.md#probe), ordering,
//! exit statuses and stderr.

use broadcast_testkit::events as common;

use std::io::Write;
use std::process::Command;

use broadcast_conformance::harness::probe::{PROBE_CONN, setup_commands};
use broadcast_testkit::worker_process::{
    self as process, Transport, Worker, encode, probe_delivery, raw_frame,
};
use broadcast_wire::{BcastFlags, Frame};
use common::*;

/// Runs each listed test body on both transports.
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {
        mod stdio {
            $( #[test] fn $name() { super::$name(super::Transport::Stdio) } )*
        }
        mod socketpair {
            $( #[test] fn $name() { super::$name(super::Transport::Socketpair) } )*
        }
    };
}

on_both_transports!(
    probe_synchronises_steps,
    commands_split_across_writes_one_byte_at_a_time,
    heartbeats_and_foreign_channels_are_skipped,
    garbage_payloads_are_dropped_and_the_worker_keeps_answering,
    oversize_length_is_fatal_exit_2,
    truncated_stream_is_fatal_exit_2,
    truncated_header_is_fatal_exit_2,
    clean_end_of_input_exits_0,
    frames_of_command_n_come_before_frames_of_n_plus_1,
    worker_blocks_instead_of_dropping_when_the_parent_does_not_read,
    invalid_event_is_logged_without_v_and_refusals_with_v,
);

fn spawn(t: Transport) -> Worker {
    let mut w = Worker::spawn(t, &[]);
    w.send(&setup_commands());
    w
}

fn probe_synchronises_steps(t: Transport) {
    let mut w = spawn(t);
    assert_eq!(w.step(&[new(5), req(5, "s", r#"{"kinds":[1]}"#)]), vec![]);
    let ev = Ev::new(1);
    assert_eq!(w.step(&[bcast(&ev)]), vec![(5, delivery("s", &ev))]);
    // The probe subscription itself sees only probe events.
    assert_eq!(w.step(&[bcast(&Ev::new(2).kind(2))]), vec![]);
    let (rest, status, err) = w.finish();
    assert!(rest.is_empty());
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "");
}

fn commands_split_across_writes_one_byte_at_a_time(t: Transport) {
    let mut w = spawn(t);
    let ev = Ev::new(3);
    let bytes = encode(&[new(5), req(5, "s", "{}"), bcast(&ev)]);
    for (i, b) in bytes.iter().enumerate() {
        w.write(&[*b]);
        if i % 16 == 0 {
            // Give the worker a chance to read a partial frame.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
    assert_eq!(w.step(&[]), vec![(5, delivery("s", &ev))]);
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(0), "{err}");
}

fn heartbeats_and_foreign_channels_are_skipped(t: Transport) {
    let mut w = spawn(t);
    let ev = Ev::new(4);
    let mut bytes = Vec::new();
    for chan in [0u8, 1, 2, 3, 255] {
        Frame::heartbeat(chan).encode(&mut bytes);
    }
    bytes.extend(raw_frame(0, b"reserved channel 0"));
    bytes.extend(raw_frame(2, &encode(&[new(6)])[5..])); // a valid SubCommand, but on channel 2
    bytes.extend(raw_frame(3, &[0xff; 300]));
    bytes.extend(encode(&[new(5), req(5, "s", "{}")]));
    bytes.extend(raw_frame(200, b"x"));
    bytes.extend(encode(&[bcast(&ev)]));
    w.write(&bytes);
    assert_eq!(w.step(&[]), vec![(5, delivery("s", &ev))]);
    // Conn 6 was never created: its New came on channel 2.
    assert_eq!(w.step(&[req(6, "s", "{}"), bcast(&Ev::new(5))]).len(), 1);
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "", "skipped frames are not errors");
}

fn garbage_payloads_are_dropped_and_the_worker_keeps_answering(t: Transport) {
    let mut w = spawn(t);
    let ev = Ev::new(6);
    let garbage: [&[u8]; 6] = [
        &[9],                                                    // truncated
        &[7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],             // unknown_op
        &[1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], // invalid_conn
        &[1, 0, 1, 0, 0, 0, 1, 0, 0, 0, b'x', 0, 0, 0, 0],       // invalid_sub_id
        &[2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],          // invalid_data
        &[2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],          // trailing_bytes
    ];
    for g in garbage {
        w.write(&raw_frame(1, g));
    }
    assert_eq!(
        w.step(&[new(5), req(5, "s", "{}"), bcast(&ev)]),
        vec![(5, delivery("s", &ev))]
    );
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(0), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 6, "{err}");
    for (line, class) in lines.iter().zip([
        "truncated",
        "unknown_op",
        "invalid_conn",
        "invalid_sub_id",
        "invalid_data",
        "trailing_bytes",
    ]) {
        assert!(line.contains("dropped") && line.contains(class), "{line}");
    }
}

fn oversize_length_is_fatal_exit_2(t: Transport) {
    let mut w = spawn(t);
    let ev = Ev::new(7);
    w.send(&[new(5), req(5, "s", "{}"), bcast(&ev)]);
    // A header announcing 16 MiB + 1: fatal, whatever follows.
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&(16 * 1024 * 1024 + 1u32).to_le_bytes());
    w.write(&bytes);
    let _ = w
        .input
        .as_mut()
        .unwrap()
        .write_all(&encode(&[bcast(&Ev::new(8))]));
    let (frames, status, err) = w.finish();
    // The frames owed for earlier commands are written before exiting.
    let texts: Vec<_> = frames
        .iter()
        .filter(|f| f.conn == 5)
        .map(|f| f.data.clone())
        .collect();
    assert_eq!(texts, vec![delivery("s", &ev).into_bytes()]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("frame_too_large"), "{err}");
}

fn truncated_stream_is_fatal_exit_2(t: Transport) {
    let mut w = spawn(t);
    let mut bytes = encode(&[new(5)]);
    bytes.extend(&encode(&[req(5, "s", "{}")])[..12]);
    w.write(&bytes);
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("truncated_stream"), "{err}");
}

fn truncated_header_is_fatal_exit_2(t: Transport) {
    let mut w = spawn(t);
    w.write(&[1, 14, 0]);
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("truncated_stream"), "{err}");
}

fn clean_end_of_input_exits_0(t: Transport) {
    let w = Worker::spawn(t, &[]);
    let (frames, status, err) = w.finish();
    assert!(frames.is_empty());
    assert_eq!(status.code(), Some(0));
    assert_eq!(err, "");
    // Also with frames still owed when the input ends: all are written.
    let mut w = Worker::spawn(t_again(), &[]);
    let ev = Ev::new(9);
    let mut cmds = vec![new(5), req(5, "s", "{}")];
    cmds.extend((0..100).map(|_| bcast(&ev)));
    w.send(&cmds);
    let (frames, status, _) = w.finish();
    assert_eq!(frames.len(), 100);
    assert_eq!(status.code(), Some(0));
}

/// The transport of the test that calls it, again (a `Transport` is not `Copy`).
fn t_again() -> Transport {
    if std::thread::current().name().unwrap_or("").contains("socketpair") {
        Transport::Socketpair
    } else {
        Transport::Stdio
    }
}

fn frames_of_command_n_come_before_frames_of_n_plus_1(t: Transport) {
    let mut w = spawn(t);
    w.send(&[
        new(1),
        new(2),
        req(1, "a", r#"{"kinds":[1]}"#),
        req(2, "b", r#"{"kinds":[2]}"#),
    ]);
    // One write with many commands whose frames interleave conns.
    let mut cmds = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200u32 {
        let ev = Ev::new((i % 250) as u8).kind(1 + i % 2);
        expected.push((if i % 2 == 0 { 1 } else { 2 }, ev.clone()));
        cmds.push(bcast(&ev));
        if i % 50 == 0 {
            cmds.push(add_raw(2, "bad", b"[")); // a CLOSED in between
            expected.push((2, Ev::new(0)));
        }
    }
    w.send(&cmds);
    let got = w.barrier();
    assert_eq!(got.len(), expected.len());
    for (f, (conn, ev)) in got.iter().zip(&expected) {
        assert_eq!(f.conn, *conn);
        if f.data.starts_with(b"[\"CLOSED\"") {
            assert_eq!(ev.id, Ev::new(0).id);
        } else {
            let sub = if *conn == 1 { "a" } else { "b" };
            assert_eq!(f.data, delivery(sub, ev).into_bytes());
        }
    }
    let (_, status, _) = w.finish();
    assert_eq!(status.code(), Some(0));
}

fn worker_blocks_instead_of_dropping_when_the_parent_does_not_read(t: Transport) {
    let mut w = spawn(t);
    // ~ 20,000 frames of ~ 400 bytes: far more than a pipe or socket buffer.
    let mut cmds = vec![new(5)];
    for s in 0..4 {
        cmds.push(req(5, &format!("s{s}"), "{}"));
    }
    let ev = Ev::new(10);
    cmds.extend((0..5_000).map(|_| bcast(&ev)));
    let bytes = encode(&cmds);
    let mut input = w.input.take().unwrap();
    let writer = std::thread::spawn(move || {
        input.write_all(&bytes).unwrap();
        input
    });
    // Do not read until the writer is stuck or done.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut count = 0;
    while count < 20_000 {
        let f = w.next_frame().unwrap();
        assert_eq!(f.conn, 5);
        count += 1;
    }
    w.input = Some(writer.join().unwrap());
    assert_eq!(w.step(&[]), vec![]);
    let (_, status, _) = w.finish();
    assert_eq!(status.code(), Some(0));
}

fn invalid_event_is_logged_without_v_and_refusals_with_v(t: Transport) {
    let quiet_err = {
        let mut w = spawn(t_again());
        w.step(&[new(5), add_raw(5, "s", b"["), remove(5, "zz")]);
        w.step(&[bcast_with(-1, BcastFlags::EMPTY, b"not an event")]);
        let (_, status, err) = w.finish();
        assert_eq!(status.code(), Some(0));
        err
    };
    assert_eq!(quiet_err.lines().count(), 1, "{quiet_err}");
    assert!(quiet_err.contains("invalid EVENT"), "{quiet_err}");

    let mut w = Worker::spawn(t, &["-v"]);
    w.send(&setup_commands());
    w.step(&[new(5), add_raw(5, "s", b"["), remove(5, "zz"), req(6, "s", "{}")]);
    w.step(&[bcast_with(-1, BcastFlags::EMPTY, b"not an event")]);
    let (_, status, err) = w.finish();
    assert_eq!(status.code(), Some(0));
    assert!(err.contains("REQ refused") && err.contains("invalid:"), "{err}");
    assert!(err.contains("unknown subscription"), "{err}");
    assert!(err.contains("unknown connection"), "{err}");
    assert!(err.contains("invalid EVENT"), "{err}");
}

#[test]
fn stdout_carries_only_frames() {
    // `finish` reads stdout strictly: every byte must belong to a channel-2
    // frame with a valid BroadcastFrame payload, up to a clean end. Logs
    // (with -v, for a refused REQ and an invalid event) go to stderr only.
    let ev = Ev::new(11);
    let mut cmds = vec![new(5), req(5, "s", "{}"), add_raw(5, "bad", b"x")];
    cmds.extend((0..50).map(|_| bcast(&ev)));
    cmds.push(bcast_with(-1, BcastFlags::EMPTY, b"junk"));
    let mut w = Worker::spawn(Transport::Stdio, &["-v"]);
    w.send(&cmds);
    let (frames, status, err) = w.finish();
    assert_eq!(status.code(), Some(0));
    assert_eq!(frames.len(), 51, "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn help_goes_to_stderr_and_exits_0() {
    let out = process::run_to_end(Command::new(process::worker_exe()).arg("--help"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fd N"));
}

#[test]
fn bad_usage_exits_2_with_a_reason() {
    for args in [
        &["--fd"][..],
        &["--fd", "x"],
        &["--fd", "-3"],
        &["--bogus"],
        &["--fd", "987654"],
    ] {
        let out = process::run_to_end(Command::new(process::worker_exe()).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("broadcast-worker: "), "{args:?}: {err}");
    }
}

/// The fd-safety policy of `broadcast_process::worker_io`: the worker takes
/// only a descriptor it inherited, never stdio, and only a socket.
#[test]
fn fd_that_is_not_an_inherited_socket_is_refused() {
    let refused = |cmd: &mut Command, reason: &str| {
        let out = process::run_to_end(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(reason), "expected {reason:?} in: {stderr}");
    };
    let worker = || Command::new(process::worker_exe());
    refused(
        worker().args(["--fd", "0"]),
        "--fd 0 is not an open inherited file descriptor",
    );
    refused(
        worker().args(["--fd", "9"]),
        "--fd 9 is not an open inherited file descriptor",
    );
    // An inherited pipe is open, but not a socket.
    let (read_end, _write_end) = std::io::pipe().unwrap();
    let mut cmd = worker();
    command_fds::CommandFdExt::fd_mappings(
        cmd.args(["--fd", "3"]),
        vec![command_fds::FdMapping {
            parent_fd: read_end.into(),
            child_fd: 3,
        }],
    )
    .unwrap();
    refused(&mut cmd, "--fd 3 is not a socket");
}

#[test]
fn sender_conn_does_not_change_delivery_over_the_wire() {
    let mut w = spawn(Transport::Stdio);
    let ev = Ev::new(12);
    w.step(&[new(5), req(5, "s", "{}")]);
    let a = w.step(&[bcast_with(5, BcastFlags::EMPTY, ev.msg().as_bytes())]);
    let b = w.step(&[bcast_with(-1, BcastFlags::from_bits(0xf8), ev.msg().as_bytes())]);
    assert_eq!(a, vec![(5, delivery("s", &ev))]);
    assert_eq!(a, b);
    let (_, status, _) = w.finish();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_probe_frames_are_exact_and_go_only_to_the_probe_conn() {
    let mut w = spawn(Transport::Stdio);
    w.step(&[new(5), req(5, "other", r#"{"kinds":[1]}"#)]);
    let probe = w.next_probe();
    w.send(std::slice::from_ref(&probe.command));
    let f = w.next_frame().unwrap();
    assert_eq!(f.conn, PROBE_CONN);
    assert_eq!(f.data, probe_delivery(&probe));
    let (_, status, _) = w.finish();
    assert_eq!(status.code(), Some(0));
}
