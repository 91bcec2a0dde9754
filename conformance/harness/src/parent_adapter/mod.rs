//! `broadcast-parent-adapter`: the reference adapter of the parent suite
//! (docs/CONFORMANCE.md, "Testing a parent"), and an example of a correct
//! parent (PROTOCOL.md#parent-semantics) built on each handle of
//! `broadcast-process`.
//!
//! `--handle` picks the handle: `blocking` ([`Broadcaster`] in a `poll`
//! loop), `async` ([`AsyncBroadcaster`] in a `tokio::select!` loop),
//! `sharded` and `async-sharded` (their K-worker forms, `--shards K`, 2 by
//! default). The contract plumbing, which is the same for all four, is
//! [`contract`]: JSON lines, the client ↔ conn map, answers. Each loop
//! ([`blocking`], [`tokio_loop`]) is written once over a small trait that
//! the plain and the sharded handle implement.
//!
//! How the adapter meets each rule:
//!
//! - PROTOCOL.md#parent-sending: every command goes through the handle's
//!   named methods, which validate and frame it; an invalid or oversize
//!   command is `SendError::Invalid`/`TooLarge`, answered `refused`.
//! - PROTOCOL.md#parent-bcast: events are passed on as they came, with the
//!   relay's flags; a fanout whose Bcast would come within
//!   [`BCAST_HEADROOM`](contract::BCAST_HEADROOM) bytes of the maximum is
//!   refused (the SHOULD), so no EVENT frame the worker writes is over it.
//! - PROTOCOL.md#parent-lifecycle: New is sent at `connect`, before
//!   anything can name the client; Close at `disconnect`, after which the
//!   client is unknown; conns come from a counter and are never reused;
//!   frames for conns not open are discarded.
//! - PROTOCOL.md#parent-receiving: frames are read until the handle says
//!   `Pending`, before any wait, and delivered verbatim, in order; invalid
//!   payloads are reported as `dropped_frame`; a framing error is
//!   `worker_gone` with `fatal: true`, and the worker is not read again.
//! - PROTOCOL.md#parent-flow-control: the blocking handles refuse a
//!   command the full queue cannot take (`SendError::Backpressure`,
//!   answered `refused` at once, nothing queued); the async handles wait
//!   for room, so the answer comes once the command is queued. Both keep
//!   reading the worker's output while they wait, and deliver it.
//! - PROTOCOL.md#parent-worker-death: the end of the output, a framing
//!   error, or a write that finds the worker gone is reported once as
//!   `worker_gone`; every later action is refused; the worker is reaped
//!   (killed first if it outlives its output), before `shutdown` is
//!   answered and before the adapter exits.
//!
//! [`Broadcaster`]: broadcast_process::broadcaster::Broadcaster
//! [`AsyncBroadcaster`]: broadcast_process::async_broadcaster::AsyncBroadcaster

use std::fs::File;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use broadcast_process::broadcaster::Transport;
use broadcast_wire::BroadcastFrame;
use clap::{Parser, ValueEnum};

pub mod blocking;
pub mod contract;
pub mod tokio_loop;

use contract::{Out, Start, parse_start};

/// How long a worker whose output has ended gets to exit before it is
/// killed, and how long the status of a killed one is waited for.
pub const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How long a worker that can no longer take commands (a write found its
/// input closed) gets to end its output before it is killed.
pub const LOST_GRACE: Duration = Duration::from_secs(1);

/// How long, at shutdown, a worker may stay silent after the end of its
/// command stream before it is killed. Each frame restarts the clock.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The command line of `broadcast-parent-adapter`.
#[derive(Debug, Parser)]
#[command(name = "broadcast-parent-adapter", version)]
#[command(
    about = "The reference adapter of the parent suite: a parent built on broadcast-process, \
                   driven by the adapter contract (JSON lines on stdin/stdout, docs/CONFORMANCE.md)"
)]
pub struct Args {
    /// The handle that plays the parent.
    #[arg(long, value_enum, default_value_t = Handle::Blocking)]
    pub handle: Handle,
    /// K, the number of workers of the sharded handles (each runs the
    /// worker command of `start`).
    #[arg(long, default_value = "2")]
    pub shards: NonZeroUsize,
}

/// `--handle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Handle {
    /// `Broadcaster`, in a `poll` loop.
    Blocking,
    /// `AsyncBroadcaster`, in a `tokio::select!` loop.
    Async,
    /// `ShardedBroadcaster`, in a `poll` loop.
    Sharded,
    /// `AsyncShardedBroadcaster`, in a `tokio::select!` loop.
    AsyncSharded,
}

/// One outcome of reading the worker(s), as the loops handle it.
#[derive(Debug)]
pub enum Item {
    /// A frame: deliver it, or discard it if its conn is not open.
    Frame(BroadcastFrame),
    /// A channel-2 payload that does not decode: dropped and reported.
    Invalid(String),
    /// A frame of a shard for a conn that shard does not own (it never got
    /// its New): discarded, with this log line.
    Stray(String),
    /// Nothing complete now.
    Pending,
    /// A worker is gone.
    Gone {
        /// A framing error, not an exit or a closed stream.
        fatal: bool,
        /// What happened.
        message: String,
        /// Its exit status, once reaped.
        status: Option<ExitStatus>,
        /// No worker is left to read.
        last: bool,
    },
}

/// Runs the adapter: reads `start`, spawns the worker with the chosen
/// handle, then serves the actions until `shutdown` or the end of stdin.
pub fn main(args: Args) -> ExitCode {
    let mut input = Input::stdin();
    let mut out = Out::stdout();
    let start = match input
        .first_line()
        .map_err(|e| e.to_string())
        .and_then(|l| parse_start(&l))
    {
        Ok(start) => start,
        Err(message) => {
            out.refused(0, &message);
            return ExitCode::FAILURE;
        }
    };
    match args.handle {
        Handle::Blocking => blocking::single(&start, input, out),
        Handle::Sharded => blocking::sharded(&start, args.shards, input, out),
        Handle::Async => tokio_loop::single(&start, input, out),
        Handle::AsyncSharded => tokio_loop::sharded(&start, args.shards, input, out),
    }
}

/// The worker's `Command` for `start`. With a socketpair the worker's
/// stdin and stdout are not the protocol's: they are the null device, so
/// that it can neither read the actions nor write into the adapter's
/// answers.
pub fn worker_command(start: &Start) -> std::process::Command {
    let mut cmd = std::process::Command::new(&start.worker[0]);
    cmd.args(&start.worker[1..]);
    if start.transport == Transport::SocketPair {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
    }
    cmd
}

/// The action lines on stdin, read straight from fd 0 (no hidden buffer,
/// so `poll` on fd 0 tells the truth about what is left to read).
#[derive(Debug)]
pub struct Input {
    fd: File,
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no newline: a long line is scanned once.
    scanned: usize,
    eof: bool,
}

impl Input {
    /// Fd 0.
    pub fn stdin() -> Input {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("stdin can be duplicated");
        Input {
            fd: File::from(fd),
            buf: Vec::new(),
            scanned: 0,
            eof: false,
        }
    }

    /// The fd to poll for more lines.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether stdin has ended.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// One `read` of fd 0 (it blocks only if nothing is there: poll first).
    pub fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.fd.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    return Err(e);
                }
            }
        }
    }

    /// The next complete line, if one has been read.
    pub fn next_line(&mut self) -> Option<String> {
        let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len();
            return None;
        };
        let end = self.scanned + at;
        self.scanned = 0;
        let line: Vec<u8> = self.buf.drain(..=end).collect();
        Some(String::from_utf8_lossy(&line[..end]).into_owned())
    }

    /// Waits for the first line (`start`).
    pub fn first_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(line) = self.next_line() {
                return Ok(line);
            }
            if self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stdin ended before start",
                ));
            }
            self.fill()?;
        }
    }

    /// What was read past the lines taken so far, and the fd: for a reader
    /// of its own (the tokio loop's).
    pub fn into_parts(self) -> (Vec<u8>, File) {
        (self.buf, self.fd)
    }
}

/// Calls the handle's named method for `cmd` (`$handle.on_connect(...)`
/// ... `$handle.fanout(...)`), with `.await` after it for the async
/// handles. The one place the adapter names them.
macro_rules! relay_call {
    ($handle:expr, $cmd:expr $(, $await:tt)?) => {
        match $cmd {
            $crate::parent_adapter::contract::Command::Connect { conn, whitelisted } => {
                $handle.on_connect(*conn, *whitelisted) $(.$await)?
            }
            $crate::parent_adapter::contract::Command::Disconnect { conn } => {
                $handle.on_disconnect(*conn) $(.$await)?
            }
            $crate::parent_adapter::contract::Command::Subscribe { conn, sub_id, req } => {
                $handle.on_subscribe(*conn, sub_id, req.clone()) $(.$await)?
            }
            $crate::parent_adapter::contract::Command::Unsubscribe { conn, sub_id } => {
                $handle.on_unsubscribe(*conn, sub_id) $(.$await)?
            }
            $crate::parent_adapter::contract::Command::Auth { conn, pubkey } => {
                $handle.on_auth(*conn, *pubkey) $(.$await)?
            }
            $crate::parent_adapter::contract::Command::Fanout { event, sender, flags } => {
                $handle.fanout(event.clone(), *sender, *flags) $(.$await)?
            }
        }
    };
}
pub(crate) use relay_call;

/// [`relay_call!`] with the async handles' `try_` methods, which never
/// wait (`try_on_connect` ... `try_fanout`).
macro_rules! relay_try_call {
    ($handle:expr, $cmd:expr) => {
        match $cmd {
            $crate::parent_adapter::contract::Command::Connect { conn, whitelisted } => {
                $handle.try_on_connect(*conn, *whitelisted)
            }
            $crate::parent_adapter::contract::Command::Disconnect { conn } => {
                $handle.try_on_disconnect(*conn)
            }
            $crate::parent_adapter::contract::Command::Subscribe { conn, sub_id, req } => {
                $handle.try_on_subscribe(*conn, sub_id, req.clone())
            }
            $crate::parent_adapter::contract::Command::Unsubscribe { conn, sub_id } => {
                $handle.try_on_unsubscribe(*conn, sub_id)
            }
            $crate::parent_adapter::contract::Command::Auth { conn, pubkey } => {
                $handle.try_on_auth(*conn, *pubkey)
            }
            $crate::parent_adapter::contract::Command::Fanout { event, sender, flags } => {
                $handle.try_fanout(event.clone(), *sender, *flags)
            }
        }
    };
}
pub(crate) use relay_try_call;
