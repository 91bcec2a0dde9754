//! What reading from the worker can produce, as one enum, so "nothing yet",
//! "a bad frame" and "the worker is gone" cannot be confused.

use std::process::ExitStatus;

use broadcast_wire::BroadcastFrame;
use broadcast_wire::PayloadError;

/// One outcome of [`Broadcaster::read_frame`](super::Broadcaster::read_frame).
///
/// Heartbeats and frames on channels other than 2 never appear here: the
/// receive rules skip them.
///
/// ```
/// use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
/// use std::process::Command;
/// use std::time::Duration;
///
/// // `true` exits at once without writing anything.
/// let mut b = Broadcaster::spawn(Command::new("true"), Transport::Stdio).unwrap();
/// let outcome = b.read_frame_timeout(Duration::from_secs(10)).unwrap();
/// assert!(matches!(outcome, Incoming::WorkerExited(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A frame for the parent to write to connection `frame.conn`.
    Frame(BroadcastFrame),
    /// A channel-2 frame whose payload does not decode. The stream is
    /// still in sync (PROTOCOL.md#payload-decode-failures: non-fatal); this one message is lost,
    /// and reported here so the caller can log it.
    InvalidFrame(PayloadError),
    /// No complete frame yet; the bytes of a partial frame are kept for the
    /// next call. Wait until the read fd is readable.
    Pending,
    /// The worker's output ended on a frame boundary: it exited or closed
    /// its output, and nothing more will come. Holds the exit status once
    /// the process has been reaped: `None` while it is still exiting (call
    /// again, or [`Broadcaster::wait_exit`](super::Broadcaster::wait_exit))
    /// or when the `Broadcaster` has no child handle. Every later call
    /// returns this again.
    WorkerExited(Option<ExitStatus>),
}

impl Incoming {
    /// The frame, if this is one.
    ///
    /// ```
    /// use broadcast_wire::BroadcastFrame;
    /// use broadcast_process::broadcaster::Incoming;
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
    /// assert!(broadcast_process::broadcaster::Incoming::Pending.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        matches!(self, Incoming::Pending)
    }
}
