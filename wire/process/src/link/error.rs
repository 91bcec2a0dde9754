//! The errors of a [`Link`](super::Link) and of every handle built on it:
//! one type per operation, so a caller matches only the cases that
//! operation can produce.

use std::fmt;
use std::io;

use broadcast_wire::{OversizeFrame, PayloadError};

/// The outbound queue is full: the command was **not** queued.
///
/// Flush (when the write fd is writable) and send the same command again.
///
/// ```
/// use broadcast_process::link::Backpressure;
///
/// let b = Backpressure { queued: 100, needed: 40, limit: 128 };
/// assert!(b.to_string().contains("not queued"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backpressure {
    /// Bytes already waiting in the queue.
    pub queued: usize,
    /// Bytes the refused command needs (frame header included).
    pub needed: usize,
    /// The queue's byte limit.
    pub limit: usize,
}

impl fmt::Display for Backpressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backpressure: the command ({} bytes) was not queued: {} bytes are already waiting and the limit is {}",
            self.needed, self.queued, self.limit
        )
    }
}

impl std::error::Error for Backpressure {}

/// Why a command was not queued. In every case nothing was queued, so the
/// caller knows exactly which command did not go out.
///
/// ```
/// use broadcast_process::link::SendError;
/// use broadcast_wire::PayloadError;
///
/// let e = SendError::Invalid(PayloadError::InvalidConn { conn: -2, min: 0 });
/// assert!(!e.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The command breaks a rule of PROTOCOL.md#payload-error-classes (the worker would have
    /// to drop it): a negative conn, an empty REQ or EVENT, a bad sub_id.
    Invalid(PayloadError),
    /// The encoded command is larger than the maximum payload, which the
    /// worker treats as a fatal stream error.
    TooLarge(OversizeFrame),
    /// The queue is full; retry after a flush.
    Backpressure(Backpressure),
    /// A write already failed because the worker closed its end (it exited
    /// or crashed); nothing more can reach it.
    WorkerGone,
    /// [`Link::close_write`](super::Link::close_write) (or a handle's
    /// `close_write`) was called: the command stream has ended.
    WriteClosed,
    /// A supervised handle keeps this conn for its probe
    /// ([`Supervision::probe_conn`](super::Supervision::probe_conn)): the
    /// relay may not name it.
    ReservedConn {
        /// The reserved conn the command named.
        conn: i32,
    },
    /// A supervised handle's worker died too often within the window
    /// ([`Supervision::max_restarts_in`](super::Supervision::max_restarts_in)):
    /// there is no worker any more, and none will be started.
    SupervisionGaveUp,
}

impl SendError {
    /// Whether the same command can succeed later (only after
    /// [`SendError::Backpressure`], once the queue has drained).
    ///
    /// ```
    /// use broadcast_process::link::{Backpressure, SendError};
    /// let e = SendError::Backpressure(Backpressure { queued: 9, needed: 9, limit: 10 });
    /// assert!(e.is_retryable());
    /// assert!(!SendError::WorkerGone.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Backpressure(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Invalid(e) => write!(f, "invalid command, not queued: {e}"),
            SendError::TooLarge(e) => write!(f, "command not queued: {e}"),
            SendError::Backpressure(e) => e.fmt(f),
            SendError::WorkerGone => {
                write!(
                    f,
                    "command not queued: the worker has closed its end of the stream"
                )
            }
            SendError::WriteClosed => {
                write!(
                    f,
                    "command not queued: the command stream was closed with close_write"
                )
            }
            SendError::ReservedConn { conn } => {
                write!(f, "command not queued: conn {conn} is reserved for the probe")
            }
            SendError::SupervisionGaveUp => write!(
                f,
                "command not queued: the worker kept dying and supervision gave up"
            ),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Invalid(e) => Some(e),
            SendError::TooLarge(e) => Some(e),
            SendError::Backpressure(e) => Some(e),
            SendError::WorkerGone
            | SendError::WriteClosed
            | SendError::ReservedConn { .. }
            | SendError::SupervisionGaveUp => None,
        }
    }
}

/// Why the outbound queue could not be written.
///
/// ```
/// use broadcast_process::link::FlushError;
///
/// let e = FlushError::WorkerGone { unsent_commands: 2, unsent_bytes: 80 };
/// assert!(e.to_string().contains("2 command"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum FlushError {
    /// The worker closed its end (`EPIPE`/`ECONNRESET`): it exited or
    /// crashed. The queued commands that did not reach it are counted here;
    /// a command the worker received only part of counts as unsent.
    WorkerGone {
        /// Commands queued and not (completely) written.
        unsent_commands: usize,
        /// Bytes queued and not written.
        unsent_bytes: usize,
    },
    /// Another I/O error on the write fd (or from `poll`). The queue is kept.
    Io(io::Error),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::WorkerGone {
                unsent_commands,
                unsent_bytes,
            } => write!(
                f,
                "the worker has closed its end of the stream: {unsent_commands} command(s) ({unsent_bytes} bytes) were not delivered"
            ),
            FlushError::Io(e) => write!(f, "writing to the worker failed: {e}"),
        }
    }
}

impl std::error::Error for FlushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlushError::Io(e) => Some(e),
            FlushError::WorkerGone { .. } => None,
        }
    }
}

/// [`Link::close_write`](super::Link::close_write) (or a handle's `close_write`) refused to
/// end the command stream because commands are still queued; nothing was
/// closed. Flush first.
///
/// ```
/// use broadcast_process::link::Unflushed;
/// assert!(Unflushed { queued_bytes: 7 }.to_string().contains("7 bytes"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unflushed {
    /// Bytes still queued.
    pub queued_bytes: usize,
}

impl fmt::Display for Unflushed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot close the command stream: {} bytes are still queued (flush first)",
            self.queued_bytes
        )
    }
}

impl std::error::Error for Unflushed {}
