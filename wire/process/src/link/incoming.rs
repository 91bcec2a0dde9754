//! What reading from the worker can produce, as one enum, so "nothing yet",
//! "a bad frame" and "the worker is gone" cannot be confused.

use std::process::ExitStatus;

use broadcast_wire::{BroadcastFrame, PayloadError};

use super::supervisor::Restart;

/// One outcome of reading a worker's output: [`Link::read`](super::Link::read)
/// and every handle's `read_frame`/`recv`.
///
/// Heartbeats and frames on channels other than 2 never appear here: the
/// receive rules skip them.
///
/// ```
/// use broadcast_process::link::{Incoming, Link};
///
/// // A worker's whole output: one frame for conn 5 ("hi"), then the end.
/// let output: &[u8] = &[2, 10, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, b'h', b'i'];
/// let mut link = Link::new(output, Vec::new(), 1 << 20, 1 << 20);
/// let Incoming::Frame(f) = link.read().unwrap() else { panic!() };
/// assert_eq!((f.conn, &f.data[..]), (5, &b"hi"[..]));
/// assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A frame for the parent to write to connection `frame.conn`.
    Frame(BroadcastFrame),
    /// A channel-2 frame whose payload does not decode. The stream is
    /// still in sync (PROTOCOL.md#payload-decode-failures: non-fatal); this
    /// one message is lost, and reported here so the caller can log it.
    InvalidFrame(PayloadError),
    /// No complete frame yet; the bytes of a partial frame are kept for the
    /// next call. Wait until the read fd is readable.
    Pending,
    /// The worker's output ended on a frame boundary: it exited or closed
    /// its output, and nothing more will come. Holds the exit status once
    /// the process has been reaped: `None` while it is still exiting (call
    /// again, or the handle's `wait_exit`), when the handle has no child,
    /// and always from a bare [`Link`](super::Link), which knows no process.
    /// Every later call returns this again.
    ///
    /// A supervised handle returns it only once it gave up (too many
    /// restarts within the window): until then a dead worker is replaced,
    /// and [`Incoming::WorkerRestarted`] says so.
    WorkerExited(Option<ExitStatus>),
    /// Supervised handles only: the worker died and was replaced, its state
    /// rebuilt; reported once per restart, before any frame of the new
    /// worker.
    WorkerRestarted(Restart),
}

impl Incoming {
    /// The frame, if this is one.
    ///
    /// ```
    /// use broadcast_wire::BroadcastFrame;
    /// use broadcast_process::link::Incoming;
    ///
    /// let f = BroadcastFrame { conn: 1, data: "x".into() };
    /// assert_eq!(Incoming::Frame(f.clone()).into_frame(), Some(f));
    /// assert_eq!(Incoming::Pending.into_frame(), None);
    /// ```
    pub fn into_frame(self) -> Option<BroadcastFrame> {
        match self {
            Incoming::Frame(f) => Some(f),
            _ => None,
        }
    }

    /// Whether this is [`Incoming::Pending`].
    ///
    /// ```
    /// assert!(broadcast_process::link::Incoming::Pending.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        matches!(self, Incoming::Pending)
    }

    /// Fills in the exit status of [`Incoming::WorkerExited`] from
    /// `status` when it has none; any other outcome is returned as it is.
    /// Each handle reports the process it owns this way.
    ///
    /// ```
    /// use broadcast_process::link::Incoming;
    ///
    /// assert_eq!(Incoming::Pending.with_status(|| unreachable!()), Incoming::Pending);
    /// assert_eq!(Incoming::WorkerExited(None).with_status(|| None), Incoming::WorkerExited(None));
    /// ```
    pub fn with_status(self, status: impl FnOnce() -> Option<ExitStatus>) -> Incoming {
        match self {
            Incoming::WorkerExited(None) => Incoming::WorkerExited(status()),
            other => other,
        }
    }
}
