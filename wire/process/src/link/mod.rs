//! The I/O-free core of one worker link: everything the parent knows about
//! one worker's two byte streams, and every rule about them, with no fd,
//! no `poll` and no process in sight.
//!
//! A [`Link`] owns
//!
//! - the bounded **outbound queue** and its admission rules
//!   ([`Link::send`], [`Link::check_send`]): validation, the payload
//!   maximum (PROTOCOL.md#maximum-payload), backpressure, and the counts of
//!   commands written and lost;
//! - the **inbound decoding** of the worker's output into [`Incoming`]
//!   items, with the **stash** of items read ahead;
//! - the one **read-ahead policy** ([`Link::read_ahead`]) that a driver
//!   follows while a command waits for room in a full pipe;
//! - the **gone/closed/ended states** of both directions.
//!
//! It reads from any [`io::Read`] and writes to any [`Outlet`] it is given:
//! the blocking handle ([`Broadcaster`](crate::broadcaster::Broadcaster))
//! and the tokio handle (`async_broadcaster::AsyncBroadcaster`) give it
//! non-blocking fds and only decide *when* to call it (`poll`, or tokio's
//! reactor); tests and fuzzers give it in-memory readers and writers, so
//! every rule here is tested without a process.
//!
//! # The read-ahead rule
//!
//! A worker never drops a frame (PROTOCOL.md#flow-control): when the
//! parent stops reading, the worker blocks on its output and stops reading
//! commands. So a parent that waits for room to write must keep reading.
//! [`Link::read_ahead`] takes at most [`MAX_FRAMES_PER_PASS`] items per
//! pass into the stash, which [`Link::read`] returns first, in order.
//! After the output breaks the framing rules ([`ReadSide::Broken`]) the
//! error is stashed in order after the frames before it, and everything
//! the worker writes afterwards is read and discarded, by `read_ahead` and
//! by `read` alike: a worker that goes on writing after breaking the
//! framing can never stall a waiting command. Once the output has ended
//! ([`ReadSide::Ended`]) there is nothing to wait for.
//!
//! ```
//! use broadcast_process::link::{FlushStatus, Incoming, Link};
//! use broadcast_wire::{BroadcastFrame, FrameWriter, NewFlags, SubCommand};
//!
//! // What the worker wrote: one frame for conn 7.
//! let mut out = FrameWriter::new(Vec::new());
//! out.queue_message(&BroadcastFrame { conn: 7, data: "[\"EOSE\",\"s\"]".into() }).unwrap();
//! out.flush().unwrap();
//! let output = out.get_ref().clone();
//!
//! let mut link = Link::new(&output[..], Vec::new(), 1 << 20, 1 << 24);
//! link.send(&SubCommand::New { conn: 7, flags: NewFlags::EMPTY }).unwrap();
//! assert_eq!(link.flush().unwrap(), FlushStatus::Flushed);
//! assert_eq!(link.writer().len(), 5 + 14); // the framed New
//! let Incoming::Frame(f) = link.read().unwrap() else { panic!() };
//! assert_eq!(f.conn, 7);
//! ```

use std::io;

use broadcast_wire::{ReadError, SubCommand};

mod error;
mod inbound;
mod incoming;
mod mirror;
mod outbound;
mod outlet;
mod supervisor;
#[cfg(test)]
mod tests;

pub use error::{Backpressure, FlushError, SendError, Unflushed};
pub use inbound::{MAX_FRAMES_PER_PASS, ReadAhead, ReadSide};
pub use incoming::Incoming;
pub use mirror::{Mirror, closed_sub_id};
pub use outbound::FlushStatus;
pub use outlet::Outlet;
pub use supervisor::{DEFAULT_PROBE_CONN, Phase, Replayed, Restart, RestartCause, Supervision, Supervisor};

use inbound::Inbound;
use outbound::Outbound;

/// One worker link, without I/O of its own: see the [module docs](self).
///
/// ```
/// use broadcast_process::link::{Link, SendError};
/// use broadcast_wire::{BcastFlags, SubCommand};
///
/// // A queue of 64 bytes: a second 55-byte Bcast does not fit.
/// let mut link = Link::new(&[][..], Vec::new(), 64, 1 << 20);
/// let ev = SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: vec![b'x'; 36].into() };
/// link.send(&ev).unwrap();
/// assert!(matches!(link.send(&ev), Err(SendError::Backpressure(_))));
/// assert_eq!(link.queued_commands(), 1);
/// ```
#[derive(Debug)]
pub struct Link<R, W> {
    inbound: Inbound<R>,
    outbound: Outbound<W>,
}

impl<R: io::Read, W: Outlet> Link<R, W> {
    /// A link reading the worker's output from `reader` and writing
    /// commands to `writer`, with an outbound queue of `max_queued_bytes`
    /// and `max_payload` as the payload maximum in both directions.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 4096, 1 << 20);
    /// assert_eq!((link.queue_limit(), link.max_payload()), (4096, 1 << 20));
    /// ```
    pub fn new(reader: R, writer: W, max_queued_bytes: usize, max_payload: u32) -> Link<R, W> {
        Link {
            inbound: Inbound::new(reader, max_payload),
            outbound: Outbound::new(writer, max_queued_bytes, max_payload),
        }
    }

    // ---- commands ---------------------------------------------------------

    /// Validates `cmd` and queues it. On error nothing was queued: the
    /// command is invalid, too large, the worker is gone, the stream was
    /// closed, or the queue is full ([`SendError::Backpressure`]: flush and
    /// send it again).
    ///
    /// ```
    /// use broadcast_process::link::{Link, SendError};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut link = Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// let bad = SubCommand::New { conn: -1, flags: NewFlags::EMPTY };
    /// assert!(matches!(link.send(&bad), Err(SendError::Invalid(_))));
    /// ```
    pub fn send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        self.outbound.push(cmd)
    }

    /// Whether [`Link::send`] would queue `cmd` right now: `Ok` if it would,
    /// else the error it would return. Nothing changes, so a caller can
    /// check several links before queueing on any (the all-or-none Bcast of
    /// the sharded handles).
    ///
    /// ```
    /// use broadcast_process::link::Link;
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let link = Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert!(link.check_send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).is_ok());
    /// assert_eq!(link.queued_commands(), 0);
    /// ```
    pub fn check_send(&self, cmd: &SubCommand) -> Result<(), SendError> {
        self.outbound.check(cmd).map(|_| ())
    }

    /// Writes as much of the queue as the writer takes, without blocking:
    /// [`FlushStatus::Flushed`] once it is empty, [`FlushStatus::WouldBlock`]
    /// when the writer is full. A writer that reports the worker gone
    /// (`BrokenPipe`, `ConnectionReset`) is [`FlushError::WorkerGone`],
    /// with the count of commands it never got, now and on every later
    /// flush.
    ///
    /// ```
    /// use broadcast_process::link::{FlushStatus, Link};
    ///
    /// let mut link = Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// link.send(&broadcast_wire::SubCommand::Close { conn: 2, flags: Default::default() }).unwrap();
    /// assert_eq!(link.flush().unwrap(), FlushStatus::Flushed);
    /// assert_eq!(link.sent_commands(), 1);
    /// ```
    pub fn flush(&mut self) -> Result<FlushStatus, FlushError> {
        self.outbound.flush()
    }

    /// Ends the command stream ([`Outlet::close`]): refused, with nothing
    /// closed, while commands are queued that can still be written (once
    /// the worker is gone, nothing can: it closes). Later commands are
    /// refused with [`SendError::WriteClosed`].
    ///
    /// ```
    /// use broadcast_process::link::{Link, SendError};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut link = Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// link.close_write().unwrap();
    /// let new = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
    /// assert_eq!(link.send(&new), Err(SendError::WriteClosed));
    /// ```
    pub fn close_write(&mut self) -> Result<(), Unflushed> {
        self.outbound.close()
    }

    // ---- reading ----------------------------------------------------------

    /// The next item of the worker's output, without blocking: the stash
    /// first, then the reader. Heartbeats and other channels are skipped; a
    /// payload that does not decode is [`Incoming::InvalidFrame`]; "nothing
    /// complete yet" is [`Incoming::Pending`]; the end of the output is
    /// [`Incoming::WorkerExited`] (with no status: a link knows no process),
    /// every time from then on.
    ///
    /// A fatal stream error (a frame over the maximum, or the output ending
    /// inside a frame) is `Err(ReadError::Framing(_))`, and so is every later
    /// call; the bytes the worker writes after it are discarded (see the
    /// [module docs](self)). I/O errors are `Err(ReadError::Io(_))`.
    ///
    /// ```
    /// use broadcast_process::link::{Incoming, Link};
    ///
    /// // A header announcing 3 bytes, then the end of the output.
    /// let mut link = Link::new(&[2u8, 3, 0, 0, 0, b'a'][..], Vec::new(), 1024, 1024);
    /// assert!(link.read().is_err());
    /// assert!(link.read().is_err()); // sticky
    /// ```
    pub fn read(&mut self) -> Result<Incoming, ReadError> {
        self.inbound.read()
    }

    /// One pass of the read-ahead policy (see the [module docs](self)):
    /// reads what the worker has written into the stash, at most
    /// [`MAX_FRAMES_PER_PASS`] items, and says what to wait for next. A
    /// driver calls it whenever it waits for the writer, so that a worker
    /// blocked on its output keeps reading commands.
    ///
    /// ```
    /// use broadcast_process::link::{Incoming, Link, ReadAhead};
    ///
    /// let output = [2u8, 9, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, b'x'];
    /// let mut link = Link::new(&output[..], Vec::new(), 1024, 1024);
    /// assert_eq!(link.read_ahead(), ReadAhead::Ended);
    /// assert!(link.has_buffered());
    /// assert!(matches!(link.read().unwrap(), Incoming::Frame(f) if f.conn == 3));
    /// ```
    pub fn read_ahead(&mut self) -> ReadAhead {
        self.inbound.read_ahead()
    }

    /// The state of the read side.
    ///
    /// ```
    /// use broadcast_process::link::{Link, ReadSide};
    ///
    /// let mut link = Link::new(&[][..], Vec::new(), 1024, 1024);
    /// let _ = link.read();
    /// assert_eq!(link.read_side(), ReadSide::Ended);
    /// ```
    pub fn read_side(&self) -> ReadSide {
        self.inbound.side()
    }

    /// Whether items of the worker's output were read ahead and wait in
    /// memory. No fd readiness announces these: a caller that waits on fds
    /// must first call [`Link::read`] until it says [`Incoming::Pending`].
    /// (A partial frame does not count: the bytes it still needs are
    /// announced by readiness.)
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert!(!link.has_buffered());
    /// ```
    pub fn has_buffered(&self) -> bool {
        self.inbound.has_buffered()
    }

    /// Bytes received from the worker and not yet returned as frames.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert_eq!(link.inbound_buffered(), 0);
    /// ```
    pub fn inbound_buffered(&self) -> usize {
        self.inbound.buffered_bytes()
    }

    // ---- state and counters -----------------------------------------------

    /// Whether commands are queued that a flush could write (a driver then
    /// watches for writability and flushes). False once the worker is gone:
    /// what is queued then can never be written (see
    /// [`Link::queued_commands`] for how much).
    ///
    /// ```
    /// let mut link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert!(!link.wants_write());
    /// ```
    pub fn wants_write(&self) -> bool {
        self.outbound.wants_write()
    }

    /// Bytes queued and not yet written.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert_eq!(link.queued_bytes(), 0);
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.outbound.pending_bytes()
    }

    /// Commands queued and not completely written.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert_eq!(link.queued_commands(), 0);
    /// ```
    pub fn queued_commands(&self) -> usize {
        self.outbound.pending_commands()
    }

    /// Commands completely written so far. Written is not read: a worker
    /// that dies may leave the last of them unread in the pipe.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert_eq!(link.sent_commands(), 0);
    /// ```
    pub fn sent_commands(&self) -> u64 {
        self.outbound.sent_commands()
    }

    /// The outbound queue's byte limit.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 4096, 1024);
    /// assert_eq!(link.queue_limit(), 4096);
    /// ```
    pub fn queue_limit(&self) -> usize {
        self.outbound.limit()
    }

    /// The payload maximum in both directions.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 4096, 1024);
    /// assert_eq!(link.max_payload(), 1024);
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.outbound.max_payload()
    }

    /// Whether a write found the worker's end closed: no command can reach
    /// it any more.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert!(!link.is_write_gone());
    /// ```
    pub fn is_write_gone(&self) -> bool {
        self.outbound.is_gone()
    }

    /// Tells the link that the worker has exited, as its driver learns it
    /// (a reaped process): from now on [`Link::is_write_gone`] holds, every
    /// command is refused with [`SendError::WorkerGone`] and a flush with
    /// commands queued fails with [`FlushError::WorkerGone`], counting them,
    /// as after an `EPIPE`. A write alone cannot be trusted to fail: a child
    /// another thread is spawning holds a copy of the pipe's read end until
    /// it execs, and a write then succeeds into a pipe nobody will read
    /// (PROTOCOL.md#parent-worker-death: no command may claim success
    /// after the death is known). After [`Link::close_write`] it changes
    /// nothing.
    ///
    /// ```
    /// use broadcast_process::link::{FlushError, Link, SendError};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut link = Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// let new = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
    /// link.send(&new).unwrap();
    /// link.worker_exited();
    /// assert!(link.is_write_gone());
    /// assert_eq!(link.send(&new), Err(SendError::WorkerGone));
    /// assert!(matches!(
    ///     link.flush(),
    ///     Err(FlushError::WorkerGone { unsent_commands: 1, .. })
    /// ));
    /// ```
    pub fn worker_exited(&mut self) {
        self.outbound.set_gone();
    }

    /// Whether [`Link::close_write`] ended the command stream.
    ///
    /// ```
    /// let mut link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// link.close_write().unwrap();
    /// assert!(link.is_write_closed());
    /// ```
    pub fn is_write_closed(&self) -> bool {
        self.outbound.is_closed()
    }

    /// Whether the worker's output reached end-of-file.
    ///
    /// ```
    /// let mut link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// let _ = link.read();
    /// assert!(link.output_ended());
    /// ```
    pub fn output_ended(&self) -> bool {
        self.inbound.saw_eof()
    }

    /// The reader it was given.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// let _: &std::io::Empty = link.reader();
    /// ```
    pub fn reader(&self) -> &R {
        self.inbound.reader()
    }

    /// The writer it was given.
    ///
    /// ```
    /// let link = broadcast_process::link::Link::new(std::io::empty(), Vec::new(), 1024, 1024);
    /// assert!(link.writer().is_empty());
    /// ```
    pub fn writer(&self) -> &W {
        self.outbound.writer()
    }
}
