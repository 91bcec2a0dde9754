//! The parent-side handle on a broadcast worker (unix only).
//!
//! A [`Broadcaster`] spawns a worker (or adopts one), and hides the wire
//! behind named methods, so a relay never touches encoding:
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

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use bytes::Bytes;

use broadcast_wire::BroadcastFrame;
use broadcast_wire::SubId;
use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags};
use broadcast_wire::{FrameReader, ReadStatus};
use broadcast_wire::{PUBKEY_LEN, SubCommand};
use broadcast_wire::{PayloadError, ReadError};

mod error;
mod fd_io;
mod incoming;
mod lifecycle;
mod options;
mod queue;
mod readiness;
pub mod sharded;
mod sigpipe;
mod spawn;
mod stderr;

pub use error::{Backpressure, FlushError, SendError, SpawnError, Unflushed};
pub use incoming::Incoming;
pub use options::{DEFAULT_CHILD_FD, DEFAULT_GRACE_PERIOD, DEFAULT_MAX_QUEUED_BYTES, Options, StderrMode};
pub use queue::FlushStatus;
pub use spawn::{Transport, WorkerProcess};
pub use stderr::StderrTail;

use fd_io::{FdReader, FdWriter};
use lifecycle::Worker;
use queue::Outbound;

/// The read side, as seen by a blocking flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// Frames are read into the stash.
    Open,
    /// A fatal framing error: bytes are read and discarded.
    Broken,
    /// End of stream or an I/O error: not polled any more.
    Ended,
}

/// Most frames one pass of reading takes while a blocking flush waits, so
/// that a worker that never stops writing cannot keep the flush from writing.
const MAX_FRAMES_PER_PUMP: usize = 1024;

/// The parent's handle on one broadcast worker: see the [module
/// docs](self) for an overview and an example. It is `Send` and `Sync`, so
/// it can live in whichever thread runs the relay's event loop.
///
/// ```
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::process::Command;
///
/// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
/// b.on_connect(7, true).unwrap();
/// assert!(b.wants_write());
/// b.flush_blocking().unwrap();
/// assert!(!b.wants_write());
/// assert!(b.is_alive());
/// ```
#[derive(Debug)]
pub struct Broadcaster {
    inbound: FrameReader<FdReader>,
    /// Items read while a blocking flush waited, returned first by
    /// `read_frame`.
    stash: VecDeque<Result<Incoming, ReadError>>,
    read_closed: bool,
    /// The worker's output broke the framing rules (sticky, like the
    /// decoder's state).
    read_failed: bool,
    outbound: Outbound,
    stderr: Option<StderrTail>,
    /// Last, so it is dropped last: the fds above are closed by the time it
    /// waits for the worker to exit (see `lifecycle`).
    worker: Worker,
}

impl Broadcaster {
    /// Spawns `command` as a worker over `transport`, with default
    /// [`Options`]. The `Command` is taken by value: with a socketpair it
    /// holds the worker's end of the socket until it is dropped, which must
    /// happen right after the spawn for the worker's exit to be seen.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// use std::process::Command;
    ///
    /// let b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.pid().is_some());
    /// ```
    pub fn spawn(command: Command, transport: Transport) -> Result<Broadcaster, SpawnError> {
        Self::spawn_with(command, transport, &Options::default())
    }

    /// Spawns `command` as a worker over `transport`.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().max_queued_bytes(1 << 16).stderr(StderrMode::Null);
    /// let b = Broadcaster::spawn_with(Command::new("cat"), Transport::Stdio, &opts).unwrap();
    /// assert_eq!(b.queue_limit(), 1 << 16);
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
    /// socket). Both are made non-blocking. With `child`, the handle reports
    /// its exit status and reaps it (and kills it at drop, after the grace
    /// period); with [`StderrMode::Capture`] it also captures the child's
    /// stderr if that was piped.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Options};
    /// use std::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    /// let write = child.stdin.take().unwrap().into();
    /// let read = child.stdout.take().unwrap().into();
    /// let mut b = Broadcaster::from_fds(read, write, Some(child), &Options::new()).unwrap();
    /// b.on_disconnect(3).unwrap();
    /// b.flush_blocking().unwrap();
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
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Options, Transport, WorkerProcess};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().max_queued_bytes(4096);
    /// let p = WorkerProcess::spawn(Command::new("cat"), Transport::Stdio, &opts).unwrap();
    /// assert_eq!(Broadcaster::from_process(p, &opts).queue_limit(), 4096);
    /// ```
    pub fn from_process(parts: WorkerProcess, opts: &Options) -> Broadcaster {
        let writer = FdWriter::new(parts.write, parts.write_kind);
        Broadcaster {
            inbound: FrameReader::with_max_payload(FdReader::new(parts.read), opts.max_payload_len()),
            stash: VecDeque::new(),
            read_closed: false,
            read_failed: false,
            outbound: Outbound::new(writer, opts.queue_limit(), opts.max_payload_len()),
            stderr: parts.stderr,
            worker: parts.worker,
        }
    }

    // ---- commands -------------------------------------------------------

    /// Validates `cmd` and queues it. On error nothing was queued.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, SendError, Transport};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// use std::process::Command;
    ///
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// b.send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).unwrap();
    /// let bad = SubCommand::New { conn: -1, flags: NewFlags::EMPTY };
    /// assert!(matches!(b.send(&bad), Err(SendError::Invalid(_))));
    /// assert_eq!(b.queued_commands(), 1);
    /// ```
    pub fn send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        self.outbound.push(cmd)
    }

    /// Whether [`Broadcaster::send`] would queue `cmd` right now: `Ok` if
    /// it would, else the [`SendError`] it would return. Nothing is queued
    /// or changed, so a caller can check several handles before sending to
    /// any (as [`ShardedBroadcaster`](sharded::ShardedBroadcaster) does to
    /// admit a Bcast to every shard or to none).
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Options, SendError, Transport};
    /// use broadcast_wire::{BcastFlags, SubCommand};
    /// use std::process::Command;
    ///
    /// let opts = Options::new().max_queued_bytes(64);
    /// let mut b = Broadcaster::spawn_with(Command::new("cat"), Transport::Stdio, &opts).unwrap();
    /// let ev = SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: vec![b'x'; 40].into() };
    /// assert_eq!(b.check_send(&ev), Ok(()));
    /// b.send(&ev).unwrap();
    /// assert!(matches!(b.check_send(&ev), Err(SendError::Backpressure(_))));
    /// assert_eq!(b.queued_commands(), 1);
    /// ```
    pub fn check_send(&self, cmd: &SubCommand) -> Result<(), SendError> {
        self.outbound.check(cmd).map(|_| ())
    }

    /// Queues `bytes` exactly as given, in order with the commands: no
    /// frame header is added and nothing is checked. This is for test
    /// harnesses that must feed a worker malformed, oversize or split frames
    /// (a relay never needs it: a bad frame ends the worker's stream). The
    /// bytes count toward the queue limit and as one item in
    /// [`Broadcaster::queued_commands`] and [`Broadcaster::sent_commands`];
    /// empty `bytes` queue nothing.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// // `cat` echoes the bytes back: a channel-2 frame, sent in two pieces.
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// b.send_raw([2, 9, 0, 0, 0, 4, 0, 0, 0]).unwrap();
    /// b.send_raw(b"\x01\0\0\0!").unwrap();
    /// b.flush_blocking().unwrap();
    /// let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_secs(10)).unwrap() else { panic!() };
    /// assert_eq!((f.conn, &f.data[..]), (4, &b"!"[..]));
    /// ```
    pub fn send_raw(&mut self, bytes: impl AsRef<[u8]>) -> Result<(), SendError> {
        self.outbound.push_raw(bytes.as_ref())
    }

    /// Connection `conn` opened (New): `whitelisted` lets it see privileged
    /// and protected events.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_connect(12, false).unwrap();
    /// assert_eq!(b.queued_bytes(), 5 + 14);
    /// ```
    pub fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), SendError> {
        let flags = if whitelisted {
            NewFlags::WHITELISTED
        } else {
            NewFlags::EMPTY
        };
        self.send(&SubCommand::New { conn, flags })
    }

    /// Connection `conn` closed (Close): the worker forgets it and its
    /// subscriptions.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_disconnect(12).unwrap();
    /// assert_eq!(b.queued_commands(), 1);
    /// ```
    pub fn on_disconnect(&mut self, conn: i32) -> Result<(), SendError> {
        self.send(&SubCommand::Close {
            conn,
            flags: ReservedFlags::EMPTY,
        })
    }

    /// Subscription `sub_id` on `conn` (Add), with `req` the raw
    /// `["REQ", sub_id, filter...]` message.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, SendError, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_subscribe(12, "s1", r#"["REQ","s1",{"kinds":[1]}]"#).unwrap();
    /// // sub_ids are 1 to 64 bytes: refused, not queued.
    /// assert!(matches!(b.on_subscribe(12, "", "x"), Err(SendError::Invalid(_))));
    /// ```
    pub fn on_subscribe(&mut self, conn: i32, sub_id: &str, req: impl Into<Bytes>) -> Result<(), SendError> {
        let sub_id = Self::sub_id(sub_id)?;
        self.send(&SubCommand::Add {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id,
            req: req.into(),
        })
    }

    /// Subscription `sub_id` on `conn` closed by the client (Remove).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_unsubscribe(12, "s1").unwrap();
    /// assert_eq!(b.queued_bytes(), 5 + 14 + 2);
    /// ```
    pub fn on_unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), SendError> {
        let sub_id = Self::sub_id(sub_id)?;
        self.send(&SubCommand::Remove {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id,
        })
    }

    /// Connection `conn` authenticated `pubkey` (Auth, NIP-42), as 32 binary
    /// bytes.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_auth(12, [0xab; 32]).unwrap();
    /// assert_eq!(b.queued_bytes(), 5 + 14 + 32);
    /// ```
    pub fn on_auth(&mut self, conn: i32, pubkey: [u8; PUBKEY_LEN]) -> Result<(), SendError> {
        self.send(&SubCommand::Auth {
            conn,
            flags: ReservedFlags::EMPTY,
            pubkey,
        })
    }

    /// Fan out an accepted event (Bcast): `event_msg` is the raw
    /// `["EVENT", {...}]` message, `sender` the publishing connection or −1.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, SendError, Transport};
    /// use broadcast_wire::BcastFlags;
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.fanout(r#"["EVENT",{}]"#, -1, BcastFlags::NEED_FILTER).unwrap();
    /// assert!(matches!(b.fanout("", 3, BcastFlags::EMPTY), Err(SendError::Invalid(_))));
    /// ```
    pub fn fanout(
        &mut self,
        event_msg: impl Into<Bytes>,
        sender: i32,
        flags: BcastFlags,
    ) -> Result<(), SendError> {
        self.send(&SubCommand::Bcast {
            sender,
            flags,
            event: event_msg.into(),
        })
    }

    fn sub_id(sub_id: &str) -> Result<SubId, SendError> {
        SubId::try_from(sub_id).map_err(|problem| SendError::Invalid(PayloadError::InvalidSubId { problem }))
    }

    // ---- writing --------------------------------------------------------

    /// Writes as much of the queue as the write fd takes, without blocking:
    /// [`FlushStatus::Flushed`] once it is empty, [`FlushStatus::WouldBlock`]
    /// when the fd is full (wait for writability and call again). Frames are
    /// coalesced into as few writes as possible; a partial write is kept.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, FlushStatus, Transport};
    /// # use std::process::Command;
    ///
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_connect(1, false).unwrap();
    /// // A 19-byte command fits in an empty pipe.
    /// assert_eq!(b.flush().unwrap(), FlushStatus::Flushed);
    /// assert_eq!(b.sent_commands(), 1);
    /// ```
    pub fn flush(&mut self) -> Result<FlushStatus, FlushError> {
        self.outbound.flush()
    }

    /// Flushes the whole queue, waiting as long as it takes. While it waits
    /// it also reads the worker's frames (kept for
    /// [`Broadcaster::read_frame`]), so a worker blocked on its output
    /// cannot deadlock it (once its output has broken the framing rules,
    /// what it writes is read and discarded: the error waits for
    /// `read_frame`). Returns [`FlushError::WorkerGone`] if the worker dies
    /// first.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// for conn in 0..1000 {
    ///     b.on_connect(conn, false).unwrap();
    /// }
    /// b.flush_blocking().unwrap();
    /// assert_eq!(b.sent_commands(), 1000);
    /// ```
    pub fn flush_blocking(&mut self) -> Result<(), FlushError> {
        self.flush_until(None).map(|_| ())
    }

    /// Like [`Broadcaster::flush_blocking`], but gives up after `timeout`,
    /// returning [`FlushStatus::WouldBlock`] with the rest still queued.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, FlushStatus, Transport};
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// // A worker that never reads: the pipe fills up and the flush gives up.
    /// let mut sleeper = Command::new("sleep");
    /// sleeper.arg("30");
    /// let mut b = Broadcaster::spawn(sleeper, Transport::Stdio).unwrap();
    /// for _ in 0..2000 {
    ///     b.fanout(vec![b'x'; 100], -1, Default::default()).unwrap();
    /// }
    /// let status = b.flush_timeout(Duration::from_millis(50)).unwrap();
    /// assert_eq!(status, FlushStatus::WouldBlock);
    /// assert!(b.wants_write());
    /// ```
    pub fn flush_timeout(&mut self, timeout: Duration) -> Result<FlushStatus, FlushError> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<FlushStatus, FlushError> {
        let mut inbound = if self.read_closed {
            Inbound::Ended
        } else if self.read_failed {
            Inbound::Broken
        } else {
            Inbound::Open
        };
        loop {
            if self.outbound.flush()? == FlushStatus::Flushed {
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
            let read_fd = (inbound != Inbound::Ended).then(|| self.inbound.get_ref().fd());
            let ready = readiness::wait(read_fd, self.outbound.fd(), remaining).map_err(FlushError::Io)?;
            if ready.readable {
                inbound = match inbound {
                    Inbound::Open => self.pump_inbound(),
                    Inbound::Broken => self.discard_inbound(),
                    Inbound::Ended => Inbound::Ended,
                };
            }
        }
    }

    /// Reads what the worker has sent into the stash.
    fn pump_inbound(&mut self) -> Inbound {
        for _ in 0..MAX_FRAMES_PER_PUMP {
            match self.read_direct() {
                Ok(Incoming::Pending) => return Inbound::Open,
                Ok(Incoming::WorkerExited(_)) => return Inbound::Ended,
                Ok(item) => self.stash.push_back(Ok(item)),
                Err(e) => {
                    // Kept for read_frame, in order after the frames before it.
                    self.stash.push_back(Err(e));
                    return if self.read_failed {
                        Inbound::Broken
                    } else {
                        Inbound::Ended
                    };
                }
            }
        }
        Inbound::Open
    }

    /// After a fatal framing error the worker's output can no longer be
    /// split into frames, but a worker blocked writing it would stop reading
    /// our commands and hang the flush: read it and throw it away.
    fn discard_inbound(&mut self) -> Inbound {
        let mut scratch = [0u8; 16 * 1024];
        for _ in 0..64 {
            match self.inbound.get_mut().read(&mut scratch) {
                Ok(0) => return Inbound::Ended,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Inbound::Broken,
                Err(_) => return Inbound::Ended,
            }
        }
        Inbound::Broken
    }

    /// Whether commands are queued: register the write fd for writability
    /// and call [`Broadcaster::flush`] when it is.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(!b.wants_write());
    /// b.on_connect(1, false).unwrap();
    /// assert!(b.wants_write());
    /// ```
    pub fn wants_write(&self) -> bool {
        self.outbound.pending_bytes() > 0
    }

    /// Bytes queued and not yet written.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.queued_bytes(), 0);
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.outbound.pending_bytes()
    }

    /// Commands queued and not completely written.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_disconnect(4).unwrap();
    /// assert_eq!(b.queued_commands(), 1);
    /// ```
    pub fn queued_commands(&self) -> usize {
        self.outbound.pending_commands()
    }

    /// Commands completely written to the worker's fd so far (and raw
    /// pieces, see [`Broadcaster::send_raw`]). Written is not read: a worker
    /// that dies may leave the last of them unread in the pipe.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_disconnect(4).unwrap();
    /// b.flush_blocking().unwrap();
    /// assert_eq!(b.sent_commands(), 1);
    /// ```
    pub fn sent_commands(&self) -> u64 {
        self.outbound.sent_commands()
    }

    /// The outbound queue's byte limit ([`Options::max_queued_bytes`]).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.queue_limit(), 8 << 20);
    /// ```
    pub fn queue_limit(&self) -> usize {
        self.outbound.limit()
    }

    /// The payload maximum in both directions ([`Options::max_payload`]).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.max_payload(), 16 << 20);
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.outbound.max_payload()
    }

    /// Ends the command stream (closes the write pipe, or shuts down the
    /// socket's writing side): the worker reads end-of-file, finishes and
    /// exits; keep reading to get its last frames and its exit. Refused,
    /// with nothing closed, while commands are queued: flush first. Later
    /// commands are refused with [`SendError::WriteClosed`].
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, SendError, Transport};
    /// # use std::process::Command;
    ///
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_connect(1, false).unwrap();
    /// assert!(b.close_write().is_err()); // still queued
    /// b.flush_blocking().unwrap();
    /// b.close_write().unwrap();
    /// assert!(b.write_fd().is_none());
    /// assert_eq!(b.on_connect(2, false), Err(SendError::WriteClosed));
    /// ```
    pub fn close_write(&mut self) -> Result<(), Unflushed> {
        self.outbound.close()
    }

    // ---- reading --------------------------------------------------------

    /// The next frame from the worker, without blocking. Heartbeats and
    /// frames on other channels are skipped; a channel-2 payload that does
    /// not decode is [`Incoming::InvalidFrame`]; "nothing complete yet" is
    /// [`Incoming::Pending`], with a partial frame kept for the next call;
    /// the end of the worker's output is [`Incoming::WorkerExited`].
    ///
    /// A fatal stream error (a frame over the payload maximum, or the output
    /// ending inside a frame, as when the worker is killed mid-write) is
    /// `Err(ReadError::Framing(_))`, and so is every later call: the stream
    /// cannot be resynchronised. I/O errors are `Err(ReadError::Io(_))`.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
    /// # use std::process::Command;
    ///
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.read_frame().unwrap(), Incoming::Pending);
    /// ```
    pub fn read_frame(&mut self) -> Result<Incoming, ReadError> {
        match self.stash.pop_front() {
            Some(item) => item,
            None => self.read_direct(),
        }
    }

    fn read_direct(&mut self) -> Result<Incoming, ReadError> {
        let status = match self.inbound.read_message::<BroadcastFrame>() {
            Ok(status) => status,
            Err(e) => {
                self.read_failed |= matches!(e, ReadError::Framing(_));
                return Err(e);
            }
        };
        Ok(match status {
            ReadStatus::Ready(Ok(frame)) => Incoming::Frame(frame),
            ReadStatus::Ready(Err(e)) => Incoming::InvalidFrame(e),
            ReadStatus::Pending => Incoming::Pending,
            ReadStatus::Closed => {
                self.read_closed = true;
                Incoming::WorkerExited(self.worker.try_status())
            }
        })
    }

    /// Like [`Broadcaster::read_frame`], but waits up to `timeout` for
    /// something other than [`Incoming::Pending`]. While it waits it also
    /// flushes the queue, so a worker waiting for its next command gets it.
    /// (A flush error is not reported here; the next
    /// [`Broadcaster::flush`] reports it.)
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// let mut b = Broadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// let got = b.read_frame_timeout(Duration::from_millis(20)).unwrap();
    /// assert_eq!(got, Incoming::Pending); // cat sends nothing on channel 2
    /// ```
    pub fn read_frame_timeout(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut keep_writing = true;
        loop {
            let item = self.read_frame()?;
            if !item.is_pending() {
                return Ok(item);
            }
            if keep_writing && self.wants_write() && self.outbound.flush().is_err() {
                keep_writing = false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Incoming::Pending);
            }
            let write_fd = if keep_writing && self.wants_write() {
                self.outbound.fd()
            } else {
                None
            };
            readiness::wait(Some(self.inbound.get_ref().fd()), write_fd, Some(left))?;
        }
    }

    /// Bytes received from the worker and not yet returned as frames (a
    /// partial frame, or frames not yet read).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.inbound_buffered(), 0);
    /// ```
    pub fn inbound_buffered(&self) -> usize {
        self.inbound.decoder().buffered()
    }

    // ---- fds --------------------------------------------------------------

    /// The fd to watch for readability (the worker's frames).
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// use std::os::fd::AsRawFd;
    ///
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_ne!(b.read_fd().as_raw_fd(), b.write_fd().unwrap().as_raw_fd());
    /// ```
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.inbound.get_ref().fd()
    }

    /// The fd to watch for writability while [`Broadcaster::wants_write`];
    /// the same fd as [`Broadcaster::read_fd`] with a socketpair. `None`
    /// after [`Broadcaster::close_write`].
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.write_fd().is_some());
    /// ```
    pub fn write_fd(&self) -> Option<BorrowedFd<'_>> {
        self.outbound.fd()
    }

    // ---- the process ------------------------------------------------------

    /// Whether the worker is still there: with a child handle, whether the
    /// process runs (reaping it if it has exited); without one, whether its
    /// output is still open and no write has found it gone.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # use std::time::Duration;
    /// let mut b = Broadcaster::spawn(std::process::Command::new("true"), Transport::Stdio).unwrap();
    /// b.wait_exit(Duration::from_secs(10));
    /// assert!(!b.is_alive());
    /// ```
    pub fn is_alive(&mut self) -> bool {
        match self.worker.is_running() {
            Some(running) => running,
            None => !self.read_closed && !self.outbound.is_gone(),
        }
    }

    /// The worker's process id, if the handle has a child.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.pid().unwrap() > 0);
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.worker.pid()
    }

    /// The worker's exit status if it has exited (it is reaped), without
    /// blocking.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert_eq!(b.exit_status(), None); // cat waits for input
    /// ```
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.worker.try_status()
    }

    /// Waits up to `timeout` for the worker to exit, and reaps it. `None` if
    /// it is still running (or the handle has no child).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # use std::process::Command;
    /// # use std::time::Duration;
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "exit 4"]);
    /// let mut b = Broadcaster::spawn(cmd, Transport::Stdio).unwrap();
    /// assert_eq!(b.wait_exit(Duration::from_secs(10)).unwrap().code(), Some(4));
    /// ```
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.worker.wait_timeout(timeout)
    }

    /// Kills the worker now (`SIGKILL`); it is reaped by the next status
    /// check, or at drop.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # use std::time::Duration;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// let mut b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.kill().unwrap();
    /// assert_eq!(b.wait_exit(Duration::from_secs(10)).unwrap().signal(), Some(9));
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.worker.kill()
    }

    /// The captured stderr, with [`StderrMode::Capture`].
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.stderr_tail().is_none()); // inherited by default
    /// ```
    pub fn stderr_tail(&self) -> Option<&StderrTail> {
        self.stderr.as_ref()
    }

    /// Whether the handle owns a child process (spawned, or given to
    /// [`Broadcaster::from_fds`]).
    ///
    /// ```
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.has_child());
    /// ```
    pub fn has_child(&self) -> bool {
        self.worker.has_child()
    }
}

/// The read side: the fd an event loop always watches.
///
/// ```
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::os::fd::{AsFd, AsRawFd};
///
/// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
/// assert_eq!(b.as_fd().as_raw_fd(), b.read_fd().as_raw_fd());
/// ```
impl AsFd for Broadcaster {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read_fd()
    }
}

/// The read side's raw fd, for APIs that take one (mio's `SourceFd`).
///
/// ```
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::os::fd::AsRawFd;
///
/// let b = Broadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
/// assert!(b.as_raw_fd() > 2);
/// ```
impl AsRawFd for Broadcaster {
    fn as_raw_fd(&self) -> RawFd {
        self.read_fd().as_raw_fd()
    }
}
