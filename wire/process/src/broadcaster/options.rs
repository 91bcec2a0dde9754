//! Knobs of a [`Broadcaster`](super::Broadcaster), with defaults that suit a
//! relay: an 8 MiB outbound queue, the protocol's 16 MiB payload maximum, a
//! 500 ms grace period at drop, stderr inherited.

use std::time::Duration;

use broadcast_wire::DEFAULT_MAX_PAYLOAD;

/// Default byte limit of the outbound queue: 8 MiB.
///
/// ```
/// use broadcast_process::broadcaster::{DEFAULT_MAX_QUEUED_BYTES, Options};
/// assert_eq!(Options::new().queue_limit(), DEFAULT_MAX_QUEUED_BYTES);
/// ```
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// Default time a dropped worker gets to exit after its input is closed,
/// before it is killed: 500 ms.
///
/// ```
/// use broadcast_process::broadcaster::{DEFAULT_GRACE_PERIOD, Options};
/// assert_eq!(Options::new().grace(), DEFAULT_GRACE_PERIOD);
/// ```
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_millis(500);

/// Default fd number of the worker's socket end with
/// [`Transport::SocketPair`](super::Transport::SocketPair): 3, the first
/// after stdio.
///
/// ```
/// use broadcast_process::broadcaster::{DEFAULT_CHILD_FD, Options};
/// assert_eq!(Options::new().child_fd_number(), DEFAULT_CHILD_FD);
/// ```
pub const DEFAULT_CHILD_FD: i32 = 3;

/// What happens to the worker's stderr (its human-readable log).
///
/// ```
/// use broadcast_process::broadcaster::{Options, StderrMode};
///
/// let opts = Options::new().stderr(StderrMode::Capture { max_lines: 20 });
/// assert_eq!(opts.stderr_mode(), StderrMode::Capture { max_lines: 20 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StderrMode {
    /// The worker writes to the parent's stderr.
    #[default]
    Inherit,
    /// The worker's stderr is `/dev/null`.
    Null,
    /// A background thread reads the worker's stderr and keeps its last
    /// `max_lines` lines (see [`StderrTail`](super::StderrTail)), so a
    /// crashed worker's last words can be reported.
    Capture {
        /// How many of the most recent lines to keep.
        max_lines: usize,
    },
}

/// Settings for [`Broadcaster::spawn_with`](super::Broadcaster::spawn_with)
/// and [`Broadcaster::from_fds`](super::Broadcaster::from_fds).
///
/// ```
/// use broadcast_process::broadcaster::Options;
/// use std::time::Duration;
///
/// let opts = Options::new()
///     .max_queued_bytes(1 << 20)
///     .grace_period(Duration::from_millis(100));
/// assert_eq!(opts.queue_limit(), 1 << 20);
/// assert_eq!(opts.max_payload_len(), 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    max_queued_bytes: usize,
    max_payload: u32,
    grace: Duration,
    stderr: StderrMode,
    child_fd: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_payload: DEFAULT_MAX_PAYLOAD,
            grace: DEFAULT_GRACE_PERIOD,
            stderr: StderrMode::Inherit,
            child_fd: DEFAULT_CHILD_FD,
        }
    }
}

impl Options {
    /// The defaults.
    ///
    /// ```
    /// let o = broadcast_process::broadcaster::Options::new();
    /// assert_eq!(o.queue_limit(), 8 << 20);
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// Byte limit of the outbound queue (frame headers included). A command
    /// that would take the queue past it is refused with
    /// [`SendError::Backpressure`](super::SendError::Backpressure), except
    /// that an empty queue always takes one command, so a command larger
    /// than the limit (but within the payload maximum) can still be sent.
    ///
    /// ```
    /// let o = broadcast_process::broadcaster::Options::new().max_queued_bytes(4096);
    /// assert_eq!(o.queue_limit(), 4096);
    /// ```
    pub fn max_queued_bytes(mut self, bytes: usize) -> Options {
        self.max_queued_bytes = bytes;
        self
    }

    /// Largest payload in both directions: commands above it are refused
    /// ([`SendError::TooLarge`](super::SendError::TooLarge)), and a worker
    /// frame above it is a fatal `frame_too_large`. Both sides must agree.
    ///
    /// ```
    /// let o = broadcast_process::broadcaster::Options::new().max_payload(1 << 20);
    /// assert_eq!(o.max_payload_len(), 1 << 20);
    /// ```
    pub fn max_payload(mut self, bytes: u32) -> Options {
        self.max_payload = bytes;
        self
    }

    /// How long a dropped worker may take to exit once its input is closed
    /// before it is killed (`SIGKILL`). It is reaped either way.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = broadcast_process::broadcaster::Options::new().grace_period(Duration::ZERO);
    /// assert_eq!(o.grace(), Duration::ZERO);
    /// ```
    pub fn grace_period(mut self, grace: Duration) -> Options {
        self.grace = grace;
        self
    }

    /// What to do with the worker's stderr (spawned workers only; with
    /// [`Broadcaster::from_fds`](super::Broadcaster::from_fds), `Capture`
    /// takes the child's stderr if it was piped).
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Options, StderrMode};
    /// assert_eq!(Options::new().stderr(StderrMode::Null).stderr_mode(), StderrMode::Null);
    /// ```
    pub fn stderr(mut self, mode: StderrMode) -> Options {
        self.stderr = mode;
        self
    }

    /// The fd number the worker gets its socket end on with
    /// [`Transport::SocketPair`](super::Transport::SocketPair) (and the `N`
    /// of the `--fd N` appended to its arguments). 3 or above.
    ///
    /// ```
    /// let o = broadcast_process::broadcaster::Options::new().child_fd(7);
    /// assert_eq!(o.child_fd_number(), 7);
    /// ```
    pub fn child_fd(mut self, fd: i32) -> Options {
        self.child_fd = fd;
        self
    }

    /// The outbound queue's byte limit.
    ///
    /// ```
    /// assert_eq!(broadcast_process::broadcaster::Options::new().queue_limit(), 8 << 20);
    /// ```
    pub fn queue_limit(&self) -> usize {
        self.max_queued_bytes
    }

    /// The payload maximum.
    ///
    /// ```
    /// assert_eq!(broadcast_process::broadcaster::Options::new().max_payload_len(), 16 << 20);
    /// ```
    pub fn max_payload_len(&self) -> u32 {
        self.max_payload
    }

    /// The grace period at drop.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(broadcast_process::broadcaster::Options::new().grace(), Duration::from_millis(500));
    /// ```
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The stderr mode.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Options, StderrMode};
    /// assert_eq!(Options::new().stderr_mode(), StderrMode::Inherit);
    /// ```
    pub fn stderr_mode(&self) -> StderrMode {
        self.stderr
    }

    /// The worker's socket fd number.
    ///
    /// ```
    /// assert_eq!(broadcast_process::broadcaster::Options::new().child_fd_number(), 3);
    /// ```
    pub fn child_fd_number(&self) -> i32 {
        self.child_fd
    }
}
