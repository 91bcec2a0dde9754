//! What every test module of this binary shares: the echo worker (this
//! binary re-run as one, see `main.rs`), options, reading helpers, process
//! checks through `/proc`, and the [`trials!`] macro that lists a module's
//! tests for libtest-mimic.
#![allow(dead_code)] // each module uses a different subset

pub mod handle;
pub mod sharded;

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, Incoming, Options, StderrMode, Transport};
use broadcast_wire::{BroadcastFrame, SubCommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Set (to anything) in the environment of this binary to run it as the
/// echo worker (`echo_worker.rs`) on its arguments instead of the tests.
pub const WORKER_ENV: &str = "BROADCAST_PROCESS_TEST_WORKER";

/// Long enough never to fire on a slow, shared machine; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const TRANSPORTS: [Transport; 2] = [Transport::Stdio, Transport::SocketPair];

/// The name of a transport in test names.
pub fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Stdio => "stdio",
        Transport::SocketPair => "socketpair",
    }
}

/// Lists the test functions of the calling module as libtest-mimic trials
/// named `<module>::<function>` (the module path without the crate name).
macro_rules! trials {
    ($($test:ident),* $(,)?) => {{
        let path = module_path!();
        let module = path.split_once("::").map_or(path, |(_, module)| module);
        vec![$(
            libtest_mimic::Trial::test(format!("{module}::{}", stringify!($test)), || {
                $test();
                Ok(())
            })
        ),*]
    }};
}
pub(crate) use trials;

/// The echo worker: this test binary, with [`WORKER_ENV`] set, on `args`.
pub fn echo_worker<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.env(WORKER_ENV, "1").args(args);
    cmd
}

/// Echo worker arguments as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
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

/// The payload bytes of `cmd`, as the echo worker sends them back.
pub fn payload_of(cmd: &SubCommand) -> Vec<u8> {
    let mut data = Vec::with_capacity(cmd.encoded_len());
    cmd.encode(&mut data);
    data
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

/// Waits until `fd` is readable, or `timeout`.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, ms);
}

/// Bytes waiting to be read on `fd` (`FIONREAD`).
pub fn unread_bytes(fd: impl AsFd) -> u64 {
    rustix::io::ioctl_fionread(fd).expect("FIONREAD")
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

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// The state letter of process `pid` (`R`, `S`, `T`, `Z`...), from
/// /proc; `None` once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits until process `pid` has exited (a zombie, or reaped): its fds
/// are closed, everything it wrote is in the pipe or socket. A zombie's
/// handle does not know yet: it learns only when it reaps.
pub fn wait_dead(pid: u32) {
    let deadline = Instant::now() + PATIENCE;
    while !matches!(process_state(pid), Some('Z') | None) {
        assert!(Instant::now() < deadline, "worker {pid} did not die");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stops process `pid` (`SIGSTOP`) and waits until it is stopped, so that
/// it reads nothing more from here on.
pub fn stop(pid: u32) {
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let deadline = Instant::now() + PATIENCE;
    while process_state(pid) != Some('T') {
        assert!(
            Instant::now() < deadline,
            "worker {pid} did not stop: {:?}",
            process_state(pid)
        );
        std::thread::sleep(Duration::from_millis(1));
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

/// Runs `future` to completion on a new current-thread tokio runtime, as
/// `#[tokio::test]` does.
#[cfg(feature = "tokio")]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Runs `f` on its own thread and returns what it returns; a panic in it
/// is this caller's panic, and so is `f` still running after `limit` (a
/// hang fails the test instead of stalling the run; the stuck thread is
/// left behind, and its workers end with this process).
pub fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.chars().take(60).collect())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("a thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = thread.join();
            value
        }
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread ended without sending"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}: it hangs"),
    }
}
