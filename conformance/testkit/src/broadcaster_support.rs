//! Shared helpers of the `broadcaster_*` tests: spawning the echo worker
//! (`src/bin/echo_worker.rs`) and reading its answers.
#![allow(dead_code)] // each test binary uses a different subset

use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, Incoming, Options, StderrMode, Transport};
use broadcast_wire::{BroadcastFrame, SubCommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The echo worker (`src/bin/echo_worker.rs`), built by cargo for every
/// integration test of this package.
pub fn echo_worker_exe() -> &'static str {
    crate::bin_str("echo_worker")
}

/// Long enough never to fire on a slow, shared machine; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const TRANSPORTS: [Transport; 2] = [Transport::Stdio, Transport::SocketPair];

pub fn echo_worker(args: &[&str]) -> Command {
    let mut cmd = Command::new(echo_worker_exe());
    cmd.args(args);
    cmd
}

/// Options for tests: stderr captured (so test output stays clean and a
/// failure can show the worker's last words).
pub fn test_options() -> Options {
    Options::new().stderr(StderrMode::Capture { max_lines: 64 })
}

pub fn spawn_echo(transport: Transport, args: &[&str], opts: &Options) -> Broadcaster {
    Broadcaster::spawn_with(echo_worker(args), transport, opts)
        .unwrap_or_else(|e| panic!("spawning the echo worker over {transport:?}: {e}"))
}

pub fn stderr_of(b: &Broadcaster) -> Vec<String> {
    b.stderr_tail().map(|t| t.lines()).unwrap_or_default()
}

/// The next frame, failing the test (with the worker's stderr) on anything
/// else or after [`PATIENCE`].
pub fn next_frame(b: &mut Broadcaster) -> BroadcastFrame {
    match b.read_frame_timeout(PATIENCE) {
        Ok(Incoming::Frame(f)) => f,
        other => panic!(
            "expected a frame, got {other:?}; worker stderr: {:?}",
            stderr_of(b)
        ),
    }
}

/// Decodes an echo: the frame's data is the command's payload.
pub fn echoed(frame: &BroadcastFrame) -> SubCommand {
    SubCommand::decode(frame.data.clone()).unwrap_or_else(|e| panic!("echo does not decode: {e}"))
}

/// Reads until the worker's output ends and its status is known.
pub fn wait_exited(b: &mut Broadcaster) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "worker did not exit; stderr: {:?}", stderr_of(b));
        match b.read_frame_timeout(left) {
            Ok(Incoming::WorkerExited(Some(status))) => return status,
            Ok(Incoming::WorkerExited(None)) => {
                if let Some(status) = b.wait_exit(left) {
                    // The next read must report the same status.
                    assert_eq!(b.read_frame().unwrap(), Incoming::WorkerExited(Some(status)));
                    return status;
                }
            }
            Ok(Incoming::Pending) => {}
            other => panic!(
                "expected the worker to exit, got {other:?}; stderr: {:?}",
                stderr_of(b)
            ),
        }
    }
}

/// Waits until the read fd is readable, or `timeout`.
pub fn wait_readable(b: &Broadcaster, timeout: Duration) {
    let fd = b.read_fd();
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, ms);
}

/// Whether process `pid` is gone, reaped: no /proc entry, or one that
/// belongs to a process that is not our child (the pid was reused). A
/// zombie or a live child is still our child.
pub fn is_reaped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // Fields after the command name, which is in parentheses and may
    // contain spaces: state, ppid, ...
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let mut fields = after_name.split_whitespace();
    let _state = fields.next();
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    ppid != std::process::id()
}

/// Polls [`is_reaped`] for up to [`PATIENCE`].
pub fn assert_reaped(pid: u32) {
    let deadline = Instant::now() + PATIENCE;
    while !is_reaped(pid) {
        assert!(
            Instant::now() < deadline,
            "worker {pid} was not reaped (still a child of ours)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An EVENT message of exactly `len` bytes that carries `tag`, so each
/// command of a stream can be recognised in its echo.
pub fn tagged_event(tag: &str, len: usize) -> Vec<u8> {
    let head = format!(r#"["EVENT",{{"content":"{tag}","pad":""#);
    let tail = r#""}]"#;
    assert!(head.len() + tail.len() <= len, "event too short for its tag");
    let mut v = head.into_bytes();
    v.resize(len - tail.len(), b'x');
    v.extend_from_slice(tail.as_bytes());
    v
}

/// The tag [`tagged_event`] put in an echoed Bcast.
pub fn tag_of(cmd: &SubCommand) -> String {
    let SubCommand::Bcast { event, .. } = cmd else {
        panic!("expected a Bcast echo, got {cmd:?}");
    };
    let text = std::str::from_utf8(event).expect("utf-8 event");
    let start = text.find(r#""content":""#).expect("tagged event") + r#""content":""#.len();
    let end = start + text[start..].find('"').expect("closing quote");
    text[start..end].to_owned()
}
