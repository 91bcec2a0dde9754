//! The one error the async layer adds: waiting for room in the queue
//! writes to the worker, and that write can fail.

use std::fmt;
use std::io;

use crate::broadcaster::SendError;

/// Why an awaited command of an
/// [`AsyncBroadcaster`](super::AsyncBroadcaster) was not queued. In every
/// case nothing was queued.
///
/// ```
/// use broadcast_process::async_broadcaster::QueueError;
/// use broadcast_process::broadcaster::SendError;
///
/// let e = QueueError::from(SendError::WorkerGone);
/// assert!(matches!(e, QueueError::Refused(SendError::WorkerGone)));
/// assert!(e.to_string().contains("worker"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// Refused as the sync [`Broadcaster`](crate::broadcaster::Broadcaster)
    /// refuses it: invalid, too large, worker gone, stream closed (never
    /// [`SendError::Backpressure`]: the async methods wait instead).
    Refused(SendError),
    /// Writing the queue out to make room failed with an I/O error other
    /// than the worker going away (which is `Refused(WorkerGone)`).
    Io(io::Error),
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Refused(e) => e.fmt(f),
            QueueError::Io(e) => write!(
                f,
                "command not queued: writing to the worker to make room failed: {e}"
            ),
        }
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueueError::Refused(e) => Some(e),
            QueueError::Io(e) => Some(e),
        }
    }
}

impl From<SendError> for QueueError {
    fn from(e: SendError) -> Self {
        QueueError::Refused(e)
    }
}
