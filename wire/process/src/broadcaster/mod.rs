//! The parent-side handle on a broadcast worker (unix only).
//!
//! A [`Broadcaster`] spawns a worker (or adopts one), and hides the wire
//! behind named methods, so a relay never touches encoding:
//!
//! It is a thin blocking driver over the I/O-free [`Link`](crate::link::Link)
//! core: every rule about the queue, the frames and the states lives
//! there, and this handle only adds the fds, `poll` and the process.
//!
//! - **Commands** — [`on_connect`](Broadcaster::on_connect),
//!   [`on_disconnect`](Broadcaster::on_disconnect),
//!   [`on_subscribe`](Broadcaster::on_subscribe),
//!   [`on_unsubscribe`](Broadcaster::on_unsubscribe),
//!   [`on_auth`](Broadcaster::on_auth), [`fanout`](Broadcaster::fanout), or
//!   any [`SubCommand`] with [`send`](Broadcaster::send). Each is validated,
//!   then encoded into a bounded outbound queue; nothing is written until a
//!   flush.
//! - **No silent loss** — a command is either queued or refused with a
//!   [`SendError`] saying why ([`SendError::Backpressure`] when the queue is
//!   full: flush and send it again). If the worker dies, [`FlushError`]
//!   counts the queued commands that never reached it.
//! - **Event-loop integration** — register [`read_fd`](Broadcaster::read_fd)
//!   for readability and, while [`wants_write`](Broadcaster::wants_write),
//!   [`write_fd`](Broadcaster::write_fd) for writability; then call
//!   [`read_frame`](Broadcaster::read_frame) until it says
//!   [`Incoming::Pending`], and [`flush`](Broadcaster::flush). Both fds are
//!   non-blocking; with [`Transport::SocketPair`] they are the same fd.
//! - **Simple callers** — [`flush_blocking`](Broadcaster::flush_blocking) and
//!   [`read_frame_timeout`](Broadcaster::read_frame_timeout) wait with
//!   `poll`, and each keeps the other direction moving while it waits, so a
//!   worker blocked writing its output (PROTOCOL.md#flow-control: it never drops a
//!   frame) cannot deadlock them.
//! - **Lifecycle** — dropping the handle closes the fds, gives the worker a
//!   grace period ([`Options::grace_period`], 500 ms by default) to exit, then
//!   kills it, and always reaps it. A write to a dead worker is a typed
//!   error, never a `SIGPIPE` that kills the parent (see below).
//!
//! # Example
//!
//! A stand-in worker that sends one frame to connection 5 and then echoes
//! its input back (on channel 1, which the parent skips):
//!
//! ```
//! use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
//! use std::process::Command;
//! use std::time::Duration;
//!
//! let mut worker = Command::new("sh");
//! // chan 2, len 13, conn 5, data_len 5, "hello"; then echo stdin.
//! worker.args(["-c", r"printf '\002\015\0\0\0\005\0\0\0\005\0\0\0hello'; exec cat"]);
//! let mut b = Broadcaster::spawn(worker, Transport::Stdio)?;
//!
//! b.on_connect(5, false)?;
//! b.on_subscribe(5, "feed", r#"["REQ","feed",{"kinds":[1]}]"#)?;
//! b.flush_blocking()?;
//!
//! let Incoming::Frame(frame) = b.read_frame_timeout(Duration::from_secs(10))? else {
//!     panic!("expected a frame");
//! };
//! assert_eq!((frame.conn, &frame.data[..]), (5, &b"hello"[..]));
//!
//! // End the command stream: the worker exits, and reading says so.
//! b.close_write()?;
//! loop {
//!     match b.read_frame_timeout(Duration::from_secs(10))? {
//!         Incoming::WorkerExited(Some(status)) => break assert!(status.success()),
//!         Incoming::WorkerExited(None) => continue, // exiting, not reaped yet
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # `SIGPIPE`
//!
//! With a socketpair, writes use `send(MSG_NOSIGNAL)`. With pipes, on Linux,
//! each flush runs with `SIGPIPE` blocked in the calling thread and consumes
//! the one an `EPIPE` raises, so a dead worker is reported as
//! [`FlushError::WorkerGone`] whatever the host's `SIGPIPE` disposition (a
//! `SIGPIPE` handler the host installed is not called for it). On other
//! unixes the parent relies on `SIGPIPE` being ignored, which is the default
//! for Rust binaries.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use broadcast_wire::{ReadError, SubCommand};

use crate::commands::relay_commands;
use crate::link::{ReadAhead, Supervision, Supervisor};

mod endpoint;
mod error;
mod fd_io;
mod lifecycle;
mod options;
mod readiness;
pub mod sharded;
mod sigpipe;
mod spawn;
mod stderr;

pub use crate::link::{Backpressure, FlushError, FlushStatus, Incoming, SendError, Unflushed};
pub use error::SpawnError;
pub use options::{DEFAULT_CHILD_FD, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_QUEUED_BYTES, Options, StderrMode};
pub use spawn::{Transport, WorkerProcess};
pub use stderr::StderrTail;

pub(crate) use endpoint::Endpoint;
pub use endpoint::FdLink;
pub use fd_io::{FdReader, FdWriter};
pub(crate) use readiness::wait as wait_fds;

/// The parent's handle on one broadcast worker: see the [module
/// docs](self) for an overview and an example. It is `Send` and `Sync`, so
/// it can live in whichever thread runs the relay's event loop.
///
/// ```no_run
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::process::Command;
///
/// let mut b = Broadcaster::spawn(Command::new("broadcast-worker"), Transport::Stdio)?;
/// b.on_connect(7, true)?; // queued
/// b.flush_blocking()?; // written to the worker
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Broadcaster {
    end: Endpoint,
}

impl Broadcaster {
    /// Spawns `command` as a worker over `transport`, with default
    /// [`Options`]. The `Command` is taken by value: with a socketpair it
    /// holds the worker's end of the socket until it is dropped, which must
    /// happen right after the spawn for the worker's exit to be seen.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// use std::process::Command;
    ///
    /// let b = Broadcaster::spawn(Command::new("broadcast-worker"), Transport::Stdio)?;
    /// println!("worker {:?} started", b.pid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(command: Command, transport: Transport) -> Result<Broadcaster, SpawnError> {
        Self::spawn_with(command, transport, &Options::default())
    }

    /// Spawns `command` as a worker over `transport`.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().max_queued_bytes(1 << 16).stderr(StderrMode::Null);
    /// let b = Broadcaster::spawn_with(Command::new("broadcast-worker"), Transport::SocketPair, &opts)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_with(
        command: Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<Broadcaster, SpawnError> {
        Ok(Self::from_process(
            WorkerProcess::spawn(command, transport, opts)?,
            opts,
        ))
    }

    /// Adopts a worker started some other way: `read` carries its frames,
    /// `write` takes the commands (two pipe ends, or two descriptors of one
    /// socket); see [`WorkerProcess::adopt`].
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Options};
    /// use std::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("broadcast-worker").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    /// let write = child.stdin.take().unwrap().into();
    /// let read = child.stdout.take().unwrap().into();
    /// let mut b = Broadcaster::from_fds(read, write, Some(child), &Options::new())?;
    /// b.on_disconnect(3)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_fds(
        read: OwnedFd,
        write: OwnedFd,
        child: Option<Child>,
        opts: &Options,
    ) -> Result<Broadcaster, SpawnError> {
        Ok(Self::from_process(
            WorkerProcess::adopt(read, Some(write), child, opts)?,
            opts,
        ))
    }

    /// Adopts a worker connected through one duplex socket (both directions
    /// on `socket`); otherwise as [`Broadcaster::from_fds`].
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Options};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (ours, _theirs) = UnixStream::pair().unwrap();
    /// let b = Broadcaster::from_socket(ours.into(), None, &Options::new()).unwrap();
    /// assert!(b.pid().is_none());
    /// ```
    pub fn from_socket(
        socket: OwnedFd,
        child: Option<Child>,
        opts: &Options,
    ) -> Result<Broadcaster, SpawnError> {
        Ok(Self::from_process(
            WorkerProcess::adopt(socket, None, child, opts)?,
            opts,
        ))
    }

    /// Drives a [`WorkerProcess`] with `opts`' queue limit and payload
    /// maximum.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Options, Transport, WorkerProcess};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().max_queued_bytes(4096);
    /// let p = WorkerProcess::spawn(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// let b = Broadcaster::from_process(p, &opts); // with a 4096-byte queue
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_process(process: WorkerProcess, opts: &Options) -> Broadcaster {
        Broadcaster {
            end: Endpoint::new(process, opts),
        }
    }

    /// Spawns a **supervised** worker: `factory()` builds the `Command` of
    /// the first worker and of every replacement (a `Command` cannot be
    /// cloned, and with a socketpair it must be dropped right after its
    /// spawn). A worker that dies (its output ends, a write finds it gone,
    /// its output breaks the framing, or a probe goes unanswered past
    /// [`Supervision::liveness`]) is reaped and replaced after a backoff;
    /// the new one gets the probe set-up, then the state the relay built
    /// (its conns, auths and subscriptions, replayed from a
    /// [`Mirror`](crate::link::Mirror)), then the commands the dead one
    /// never got; [`Broadcaster::read_frame`] reports
    /// [`Incoming::WorkerRestarted`] once. After too many restarts within
    /// the window it gives up: reads say [`Incoming::WorkerExited`], sends
    /// [`SendError::SupervisionGaveUp`].
    ///
    /// The probe (PROTOCOL.md#probe) uses conn [`Supervision::probe`]
    /// (i32::MAX by default), which the relay must not use; its frames
    /// never reach the relay. An event loop drives a supervised handle as
    /// any other, and also wakes at [`Broadcaster::next_deadline`] (the
    /// end of a backoff, a probe's deadline) to call
    /// [`Broadcaster::read_frame`] and [`Broadcaster::flush`]; while no
    /// worker runs, [`Broadcaster::write_fd`] is `None` and the read fd is
    /// the dead worker's, which is not worth watching.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Incoming, Options, Transport};
    /// use broadcast_process::link::Supervision;
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// let mut b = Broadcaster::spawn_supervised(
    ///     || Command::new("broadcast-worker"),
    ///     Transport::SocketPair,
    ///     &Options::new(),
    ///     Supervision::new(),
    /// )?;
    /// b.on_connect(1, false)?;
    /// b.flush_blocking()?;
    /// if let Incoming::WorkerRestarted(r) = b.read_frame_timeout(Duration::from_secs(1))? {
    ///     eprintln!("{r}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_supervised(
        factory: impl FnMut() -> Command + Send + Sync + 'static,
        transport: Transport,
        opts: &Options,
        supervision: Supervision,
    ) -> Result<Broadcaster, SpawnError> {
        Ok(Broadcaster {
            end: Endpoint::spawn_supervised(Box::new(factory), transport, opts, supervision)?,
        })
    }

    /// The supervision policy of a handle made by
    /// [`Broadcaster::spawn_supervised`]: its mirror, phase and restarts.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Options, Transport};
    /// # use broadcast_process::link::Supervision;
    /// # let b = Broadcaster::spawn_supervised(|| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new(), Supervision::new())?;
    /// let subs = b.supervisor().map(|s| s.mirror().subscriptions());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn supervisor(&self) -> Option<&Supervisor> {
        self.end.supervisor()
    }

    /// When a supervised handle must be called again although no fd is
    /// ready (see [`Broadcaster::spawn_supervised`]); `None` unsupervised.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let wake_at = b.next_deadline(); // None: not supervised
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        self.end.next_deadline()
    }

    /// The [`Link`](crate::link::Link) core underneath: its state and
    /// counters.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.on_disconnect(4)?;
    /// let queued = b.link().queued_commands(); // 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn link(&self) -> &FdLink {
        &self.end.link
    }

    pub(crate) fn into_endpoint(self) -> Endpoint {
        self.end
    }

    // ---- commands -------------------------------------------------------

    /// Validates `cmd` and queues it. On error nothing was queued: see
    /// [`SendError`] ([`SendError::Backpressure`] when the queue is full:
    /// flush and send it again).
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY })?;
    /// let bad = SubCommand::New { conn: -1, flags: NewFlags::EMPTY };
    /// if let Err(SendError::Invalid(e)) = b.send(&bad) {
    ///     eprintln!("refused, nothing queued: {e}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        self.end.send(cmd)
    }

    /// Whether [`Broadcaster::send`] would queue `cmd` right now: `Ok` if
    /// it would, else the [`SendError`] it would return. Nothing changes.
    ///
    /// ```no_run
    /// use broadcast_wire::{BcastFlags, SubCommand};
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// let ev = SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: r#"["EVENT",{}]"#.into() };
    /// if b.check_send(&ev).is_ok() {
    ///     b.send(&ev)?; // queued: nothing changed in between
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_send(&self, cmd: &SubCommand) -> Result<(), SendError> {
        self.end.check_send(cmd)
    }

    fn refuse(&self, _conn: i32, e: SendError) -> SendError {
        e
    }

    relay_commands! {
        send: send,
        refuse: Self::refuse,
        error: SendError,
        names: [on_connect, on_disconnect, on_subscribe, on_unsubscribe, on_auth, fanout],
        setup: "# fn main() {\n# use broadcast_process::broadcaster::{Broadcaster, Transport};\n# let mut b = Broadcaster::spawn(std::process::Command::new(\"broadcast-worker\"), Transport::Stdio).unwrap();",
        call: ".unwrap()",
    }

    // ---- writing --------------------------------------------------------

    /// Writes as much of the queue as the write fd takes, without blocking:
    /// [`FlushStatus::Flushed`] once it is empty, [`FlushStatus::WouldBlock`]
    /// when the fd is full (wait for writability and call again). Frames are
    /// coalesced into as few writes as possible; a partial write is kept.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::FlushStatus;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.on_connect(1, false)?;
    /// if b.flush()? == FlushStatus::WouldBlock {
    ///     // The fd is full: wait until b.write_fd() is writable, and flush again.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) -> Result<FlushStatus, FlushError> {
        self.end.flush()
    }

    /// Flushes the whole queue, waiting as long as it takes. While it waits
    /// it reads ahead the worker's output by the link's one rule
    /// ([`Link::read_ahead`](crate::link::Link::read_ahead): frames are kept
    /// for [`Broadcaster::read_frame`], output after a framing error is
    /// discarded), so a worker blocked on its output cannot deadlock it.
    /// Returns [`FlushError::WorkerGone`] if the worker dies first.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// for conn in 0..1000 {
    ///     b.on_connect(conn, false)?;
    /// }
    /// b.flush_blocking()?; // all 1000 written
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_blocking(&mut self) -> Result<(), FlushError> {
        self.flush_until(None).map(|_| ())
    }

    /// Like [`Broadcaster::flush_blocking`], but gives up after `timeout`,
    /// returning [`FlushStatus::WouldBlock`] with the rest still queued.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::FlushStatus;
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.fanout(r#"["EVENT",{}]"#, -1, Default::default())?;
    /// if b.flush_timeout(Duration::from_millis(50))? == FlushStatus::WouldBlock {
    ///     // The worker did not take it all in time; the rest stays queued.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_timeout(&mut self, timeout: Duration) -> Result<FlushStatus, FlushError> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<FlushStatus, FlushError> {
        loop {
            if self.end.flush()? == FlushStatus::Flushed {
                return Ok(FlushStatus::Flushed);
            }
            let remaining = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(FlushStatus::WouldBlock);
                    }
                    Some(left)
                }
            };
            // An ended read side would be "ready" forever: stop polling it.
            let read_open = self.end.read_open();
            let reads = if read_open {
                vec![self.end.read_fd()]
            } else {
                Vec::new()
            };
            let writes: Vec<BorrowedFd<'_>> = self.end.write_fd().into_iter().collect();
            let remaining = self.end.wait_budget(remaining);
            let ready = wait_fds(&reads, &writes, remaining).map_err(FlushError::Io)?;
            if ready.readable {
                // WouldBlock, Limit and Ended all come back to the write.
                let _: ReadAhead = self.end.link.read_ahead();
            }
        }
    }

    /// Whether commands are queued: register the write fd for writability
    /// and call [`Broadcaster::flush`] when it is.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.on_connect(1, false)?;
    /// if b.wants_write() {
    ///     // Register b.write_fd() for writability, then call b.flush().
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wants_write(&self) -> bool {
        self.end.wants_write()
    }

    /// Bytes queued and not yet written.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.on_connect(12, false)?;
    /// let bytes = b.queued_bytes(); // 19: a 5-byte frame header and the 14-byte New
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.end.link.queued_bytes()
    }

    /// Commands queued and not completely written.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.on_disconnect(4)?;
    /// let commands = b.queued_commands(); // 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_commands(&self) -> usize {
        self.end.link.queued_commands()
    }

    /// Commands completely written to the worker's fd so far. Written is
    /// not read: a worker that dies may leave the last of them unread.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.on_disconnect(4)?;
    /// b.flush_blocking()?;
    /// let sent = b.sent_commands(); // 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sent_commands(&self) -> u64 {
        self.end.link.sent_commands()
    }

    /// The outbound queue's byte limit ([`Options::max_queued_bytes`]).
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let limit = b.queue_limit(); // 8 MiB by default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue_limit(&self) -> usize {
        self.end.link.queue_limit()
    }

    /// The payload maximum in both directions ([`Options::max_payload`]).
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let max = b.max_payload(); // 16 MiB by default (PROTOCOL.md#maximum-payload)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.end.link.max_payload()
    }

    /// Ends the command stream (closes the write pipe, or shuts down the
    /// socket's writing side): the worker reads end-of-file, finishes and
    /// exits; keep reading to get its last frames and its exit. Refused,
    /// with nothing closed, while commands are queued: flush first. Later
    /// commands are refused with [`SendError::WriteClosed`].
    ///
    /// Supervised ([`Broadcaster::spawn_supervised`]), it is also refused
    /// while commands wait for a replacement worker, and the worker's exit
    /// that follows is the expected end of its input: reported as
    /// [`Incoming::WorkerExited`], never answered with a restart.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::SendError;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.on_connect(1, false)?;
    /// b.flush_blocking()?; // close_write refuses while commands are queued
    /// b.close_write()?;
    /// // The worker reads end-of-file and exits; read on for its last frames.
    /// if let Err(SendError::WriteClosed) = b.on_connect(2, false) {
    ///     // From now on b.write_fd() is None, and every command is refused.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_write(&mut self) -> Result<(), Unflushed> {
        self.end.close_write()
    }

    // ---- reading --------------------------------------------------------

    /// The next frame from the worker, without blocking (see
    /// [`Link::read`](crate::link::Link::read)): heartbeats and other
    /// channels are skipped; a channel-2 payload that does not decode is
    /// [`Incoming::InvalidFrame`]; "nothing complete yet" is
    /// [`Incoming::Pending`]; the end of the worker's output is
    /// [`Incoming::WorkerExited`], with its exit status once reaped.
    ///
    /// A fatal stream error (a frame over the payload maximum, or the output
    /// ending inside a frame, as when the worker is killed mid-write) is
    /// `Err(ReadError::Framing(_))`, and so is every later call. I/O errors
    /// are `Err(ReadError::Io(_))`.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::Incoming;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// loop {
    ///     match b.read_frame()? {
    ///         Incoming::Frame(frame) => println!("{} bytes for conn {}", frame.data.len(), frame.conn),
    ///         Incoming::InvalidFrame(e) => eprintln!("one frame lost: {e}"),
    ///         Incoming::Pending => break, // wait until b.read_fd() is readable
    ///         Incoming::WorkerRestarted(r) => eprintln!("{r}"), // supervised handles only
    ///         Incoming::WorkerExited(status) => {
    ///             eprintln!("worker gone: {status:?}");
    ///             break;
    ///         }
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_frame(&mut self) -> Result<Incoming, ReadError> {
        self.end.read()
    }

    /// Like [`Broadcaster::read_frame`], but waits up to `timeout` for
    /// something other than [`Incoming::Pending`]. While it waits it also
    /// flushes the queue, so a worker waiting for its next command gets it.
    /// (A flush error is not reported here; the next
    /// [`Broadcaster::flush`] reports it.)
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::Incoming;
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// if let Incoming::Frame(frame) = b.read_frame_timeout(Duration::from_millis(20))? {
    ///     println!("conn {}: {} bytes", frame.conn, frame.data.len());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_frame_timeout(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut keep_writing = true;
        loop {
            let item = self.read_frame()?;
            if !item.is_pending() {
                return Ok(item);
            }
            if keep_writing && self.wants_write() && self.flush().is_err() {
                keep_writing = false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Incoming::Pending);
            }
            let writes: Vec<BorrowedFd<'_>> = if keep_writing && self.wants_write() {
                self.end.write_fd().into_iter().collect()
            } else {
                Vec::new()
            };
            let reads: Vec<BorrowedFd<'_>> = if self.end.read_open() {
                vec![self.end.read_fd()]
            } else {
                Vec::new()
            };
            wait_fds(&reads, &writes, self.end.wait_budget(Some(left)))?;
        }
    }

    /// Bytes received from the worker and not yet returned as frames (a
    /// partial frame, or frames not yet read).
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let partial = b.inbound_buffered(); // 0 until the worker writes
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inbound_buffered(&self) -> usize {
        self.end.link.inbound_buffered()
    }

    // ---- fds --------------------------------------------------------------

    /// The fd to watch for readability (the worker's frames).
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// let fd = b.read_fd().as_raw_fd(); // watch it for readability (poll, epoll, mio)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.end.read_fd()
    }

    /// The fd to watch for writability while [`Broadcaster::wants_write`];
    /// the same fd as [`Broadcaster::read_fd`] with a socketpair. `None`
    /// after [`Broadcaster::close_write`].
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// if let Some(fd) = b.write_fd() {
    ///     // Watch fd for writability while b.wants_write().
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_fd(&self) -> Option<BorrowedFd<'_>> {
        self.end.write_fd()
    }

    // ---- the process ------------------------------------------------------

    /// Whether the worker is still there: with a child handle, whether the
    /// process runs (reaping it if it has exited); without one, whether its
    /// output is still open and no write has found it gone.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// if !b.is_alive() {
    ///     eprintln!("worker gone: {:?}", b.exit_status());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&mut self) -> bool {
        self.end.is_alive()
    }

    /// The worker's process id, if the handle has a child.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// if let Some(pid) = b.pid() {
    ///     println!("worker {pid}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.end.worker.pid()
    }

    /// The worker's exit status if it has exited (it is reaped), without
    /// blocking.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// match b.exit_status() {
    ///     Some(status) => println!("worker exited: {status}"),
    ///     None => {} // still running
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.end.exit_status()
    }

    /// Waits up to `timeout` for the worker to exit, and reaps it. `None` if
    /// it is still running (or the handle has no child).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.close_write()?;
    /// match b.wait_exit(Duration::from_secs(5)) {
    ///     Some(status) => println!("worker exited: {status}"),
    ///     None => b.kill()?, // still running
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.end.worker.wait_timeout(timeout)?;
        self.end.exit_status()
    }

    /// Kills the worker now (`SIGKILL`); it is reaped by the next status
    /// check, or at drop.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.kill()?;
    /// let status = b.wait_exit(Duration::from_secs(5)); // killed by SIGKILL
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.end.kill()
    }

    /// The captured stderr, with [`StderrMode::Capture`].
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// let b = Broadcaster::spawn_with(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// // ... and once the worker has died:
    /// for line in b.stderr_tail().map(|tail| tail.lines()).unwrap_or_default() {
    ///     eprintln!("worker: {line}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr_tail(&self) -> Option<&StderrTail> {
        self.end.stderr.as_ref()
    }

    /// Whether the handle owns a child process.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let spawned = b.has_child(); // true: spawned, not adopted without its child
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn has_child(&self) -> bool {
        self.end.worker.has_child()
    }
}

/// The read side: the fd an event loop always watches.
///
/// ```no_run
/// use std::os::fd::AsFd;
/// # use broadcast_process::broadcaster::{Broadcaster, Transport};
/// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
///
/// let fd = b.as_fd(); // the read fd
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsFd for Broadcaster {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read_fd()
    }
}

/// The read side's raw fd, for APIs that take one (mio's `SourceFd`).
///
/// ```no_run
/// use std::os::fd::AsRawFd;
/// # use broadcast_process::broadcaster::{Broadcaster, Transport};
/// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
///
/// let raw = b.as_raw_fd(); // the read fd, for mio's SourceFd(&raw)
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl AsRawFd for Broadcaster {
    fn as_raw_fd(&self) -> RawFd {
        self.read_fd().as_raw_fd()
    }
}
