//! The parent-side handle on a broadcast worker for tokio relays (unix,
//! feature `tokio`).
//!
//! [`AsyncBroadcaster`] is a thin tokio driver over the same I/O-free
//! [`Link`](crate::link::Link) core as the blocking [`Broadcaster`]: the
//! same spawning (stdio pipes, or a socketpair passed as `--fd N`),
//! [`Options`], validation, bounded outbound queue, read-ahead rule,
//! `SIGPIPE` handling, error types and lifecycle; tokio's reactor only says
//! when to read and write (through duplicates of the fds registered as
//! tokio pipe ends or a tokio `UnixStream`, since tokio's safe types own
//! what they register).
//!
//! - **Commands** — the named methods come in two kinds.
//!   [`on_connect`](AsyncBroadcaster::on_connect),
//!   [`on_disconnect`](AsyncBroadcaster::on_disconnect),
//!   [`on_subscribe`](AsyncBroadcaster::on_subscribe),
//!   [`on_unsubscribe`](AsyncBroadcaster::on_unsubscribe),
//!   [`on_auth`](AsyncBroadcaster::on_auth), [`fanout`](AsyncBroadcaster::fanout)
//!   and [`send`](AsyncBroadcaster::send) are `async`: when the queue is full
//!   they write it out and wait until the command fits. `try_on_connect`
//!   and the other `try_` methods never wait: a full queue is
//!   [`SendError::Backpressure`] at once, with nothing queued. Nothing is
//!   ever dropped silently.
//! - **Frames** — [`recv`](AsyncBroadcaster::recv) waits for the next
//!   frame, an invalid frame, or the worker's exit
//!   ([`Incoming::WorkerExited`], a typed outcome, never a hang or a
//!   panic). It is cancellation safe: use it in `tokio::select!`. It also
//!   writes the queued commands while it waits, so a relay loop that keeps
//!   calling `recv` needs no separate flush; [`flush`](AsyncBroadcaster::flush)
//!   writes the queue out when nobody receives.
//! - **No deadlock** — while an `async` command waits for room it also reads
//!   the worker's frames ahead by the link's one rule
//!   ([`Link::read_ahead`](crate::link::Link::read_ahead): frames kept for
//!   `recv`, output after a framing error discarded), so a worker blocked
//!   writing its output (PROTOCOL.md#flow-control: it never drops a frame)
//!   keeps reading commands.
//! - **Lifecycle** — dropping the handle deregisters the fds and ends the
//!   worker on a background thread: the fds close, the worker gets
//!   its grace period, is killed if needed, and is always reaped, without
//!   blocking the runtime and even if the runtime stops first.
//!
//! The handle is used by one task (`&mut self`); connection tasks reach it
//! through a channel, as in `docs/ASYNC.md`.
//!
//! For K workers behind one handle, [`AsyncShardedBroadcaster`] (module
//! [`sharded`]) is one `AsyncBroadcaster` per shard around the
//! [`ShardRouter`](crate::broadcaster::sharded::ShardRouter) of the blocking
//! [`ShardedBroadcaster`](crate::broadcaster::sharded::ShardedBroadcaster).
//!
//! Why the fds and not `tokio::process`: the child is a
//! [`std::process::Child`] owned by the crate's one lifecycle, which reaps it
//! deterministically at drop; tokio's `kill_on_drop` reaps only on a best
//! effort basis while its runtime runs.
//!
//! # Example
//!
//! A stand-in worker that sends one frame to connection 5 and then echoes
//! its input back (on channel 1, which the parent skips):
//!
//! ```
//! use broadcast_process::async_broadcaster::AsyncBroadcaster;
//! use broadcast_process::broadcaster::{Incoming, Transport};
//! use std::process::Command;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut worker = Command::new("sh");
//! // chan 2, len 13, conn 5, data_len 5, "hello"; then echo stdin.
//! worker.args(["-c", r"printf '\002\015\0\0\0\005\0\0\0\005\0\0\0hello'; exec cat"]);
//! let mut b = AsyncBroadcaster::spawn(worker, Transport::Stdio)?;
//!
//! b.on_connect(5, false).await?;
//! b.on_subscribe(5, "feed", r#"["REQ","feed",{"kinds":[1]}]"#).await?;
//!
//! let Incoming::Frame(frame) = b.recv().await? else { panic!("expected a frame") };
//! assert_eq!((frame.conn, &frame.data[..]), (5, &b"hello"[..]));
//!
//! // End the command stream: the worker exits, and recv says so.
//! b.flush().await?;
//! b.close_write()?;
//! assert!(matches!(b.recv().await?, Incoming::WorkerExited(_)));
//! # Ok(())
//! # }
//! ```

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::process::{Command, ExitStatus};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use broadcast_wire::{ReadError, SubCommand};

use crate::broadcaster::{
    Broadcaster, Endpoint, FdLink, FlushError, FlushStatus, Incoming, Options, SendError, SpawnError,
    StderrTail, Transport, Unflushed, WorkerProcess,
};
use crate::commands::relay_commands;
use crate::link::{ReadAhead, Supervision, Supervisor};

mod error;
mod reaper;
mod registration;
pub mod sharded;

pub use error::QueueError;
pub use sharded::AsyncShardedBroadcaster;

use reaper::ReapInBackground;
use registration::Registration;

/// The parent's handle on one broadcast worker, for tokio: see the [module
/// docs](self). Create it inside a tokio runtime with I/O enabled (its
/// constructors panic otherwise, as tokio's own I/O types do).
///
/// ```no_run
/// use broadcast_process::async_broadcaster::AsyncBroadcaster;
/// use broadcast_process::broadcaster::Transport;
/// use std::process::Command;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut b = AsyncBroadcaster::spawn(Command::new("broadcast-worker"), Transport::SocketPair)?;
/// b.on_connect(7, true).await?; // queued
/// b.flush().await?; // written to the worker
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncBroadcaster {
    /// Declared before `end`: fields drop in order, and the fds must be
    /// deregistered before they are closed.
    registration: Registration,
    /// The worker generation ([`Endpoint::generation`]) whose fds are
    /// registered: a supervised endpoint that spawned a replacement has
    /// new fds to register.
    registered: u64,
    /// Supervised: wakes the task at the endpoint's next deadline (the end
    /// of a backoff, a probe's deadline), which no fd announces.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    end: ReapInBackground,
}

impl AsyncBroadcaster {
    /// Spawns `command` as a worker over `transport`, with default
    /// [`Options`] (see [`Broadcaster::spawn`]).
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::Transport;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let b = AsyncBroadcaster::spawn(Command::new("broadcast-worker"), Transport::Stdio)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(command: Command, transport: Transport) -> Result<AsyncBroadcaster, SpawnError> {
        Self::spawn_with(command, transport, &Options::default())
    }

    /// Spawns `command` as a worker over `transport` with `opts` (see
    /// [`Broadcaster::spawn_with`]).
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let opts = Options::new().max_queued_bytes(1 << 16);
    /// let b = AsyncBroadcaster::spawn_with(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_with(
        command: Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<AsyncBroadcaster, SpawnError> {
        let process = WorkerProcess::spawn(command, transport, opts)?;
        Self::from_process(process, opts).map_err(SpawnError::Setup)
    }

    /// Drives a [`WorkerProcess`] from tokio. On error the process is
    /// dropped, which ends and reaps its worker.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Options, WorkerProcess};
    /// use std::os::unix::net::UnixStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ours, _theirs) = UnixStream::pair().unwrap();
    /// let p = WorkerProcess::adopt(ours.into(), None, None, &Options::new()).unwrap();
    /// let b = AsyncBroadcaster::from_process(p, &Options::new()).unwrap();
    /// assert!(b.pid().is_none());
    /// # }
    /// ```
    pub fn from_process(process: WorkerProcess, opts: &Options) -> io::Result<AsyncBroadcaster> {
        Self::from_endpoint(Endpoint::new(process, opts))
    }

    /// Drives an existing [`Broadcaster`] (for a worker adopted with
    /// [`Broadcaster::from_fds`] or [`Broadcaster::from_socket`]) from tokio.
    /// Commands already queued in it stay queued, frames read ahead stay
    /// read. On error the broadcaster is dropped, which ends and reaps its
    /// worker.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Broadcaster, Options};
    /// use std::os::unix::net::UnixStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (ours, _theirs) = UnixStream::pair().unwrap();
    /// let sync = Broadcaster::from_socket(ours.into(), None, &Options::new()).unwrap();
    /// let b = AsyncBroadcaster::from_broadcaster(sync).unwrap();
    /// assert!(b.pid().is_none());
    /// # }
    /// ```
    pub fn from_broadcaster(b: Broadcaster) -> io::Result<AsyncBroadcaster> {
        Self::from_endpoint(b.into_endpoint())
    }

    fn from_endpoint(end: Endpoint) -> io::Result<AsyncBroadcaster> {
        // Wrapped first, so that a failed registration ends and reaps the
        // worker off the runtime's thread too.
        let end = ReapInBackground::new(end);
        let registration = Registration::new(end.read_fd(), end.link.writer().fd())?;
        Ok(AsyncBroadcaster {
            registration,
            registered: end.generation(),
            timer: None,
            end,
        })
    }

    /// Spawns a **supervised** worker, as [`Broadcaster::spawn_supervised`]
    /// (one implementation of the policy: the same endpoint): `factory()`
    /// builds the `Command` of the first worker and of each replacement; a
    /// dead worker is reaped and replaced after a backoff, its state
    /// replayed, and [`recv`](AsyncBroadcaster::recv) reports
    /// [`Incoming::WorkerRestarted`] once; after too many restarts within
    /// the window, `recv` says [`Incoming::WorkerExited`] and commands are
    /// refused with [`SendError::SupervisionGaveUp`].
    ///
    /// The tokio handle registers each replacement's fds itself, and its
    /// waiting methods ([`recv`](AsyncBroadcaster::recv),
    /// [`flush`](AsyncBroadcaster::flush), the `async` commands) also wake
    /// at [`AsyncBroadcaster::next_deadline`], so a backoff ends and a
    /// stopped worker is found out without any fd turning ready.
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Incoming, Options, Transport};
    /// use broadcast_process::link::Supervision;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut b = AsyncBroadcaster::spawn_supervised(
    ///     || Command::new("broadcast-worker"),
    ///     Transport::SocketPair,
    ///     &Options::new(),
    ///     Supervision::new(),
    /// )?;
    /// b.on_connect(1, false).await?;
    /// loop {
    ///     match b.recv().await? {
    ///         Incoming::WorkerRestarted(r) => eprintln!("{r}"), // conn 1 is back
    ///         Incoming::WorkerExited(_) => break, // supervision gave up
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_supervised(
        factory: impl FnMut() -> Command + Send + Sync + 'static,
        transport: Transport,
        opts: &Options,
        supervision: Supervision,
    ) -> Result<AsyncBroadcaster, SpawnError> {
        let end = Endpoint::spawn_supervised(Box::new(factory), transport, opts, supervision)?;
        Self::from_endpoint(end).map_err(SpawnError::Setup)
    }

    /// The supervision policy of a handle made by
    /// [`AsyncBroadcaster::spawn_supervised`]: its mirror, phase and
    /// restarts; `None` unsupervised.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # use broadcast_process::link::Supervision;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let b = AsyncBroadcaster::spawn_supervised(|| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new(), Supervision::new())?;
    /// let restarts = b.supervisor().map(|s| s.restarts()); // Some(0)
    /// # Ok(())
    /// # }
    /// ```
    pub fn supervisor(&self) -> Option<&Supervisor> {
        self.end.supervisor()
    }

    /// When a supervised handle must act although no fd is ready (see
    /// [`Broadcaster::next_deadline`]); its waiting methods wake at it by
    /// themselves. `None` unsupervised.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let wake_at = b.next_deadline(); // None: not supervised
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        self.end.next_deadline()
    }

    /// After a supervised endpoint spawned a replacement: registers the
    /// new worker's fds (dropping the registration of the dead one's).
    fn refresh(&mut self) -> io::Result<()> {
        let generation = self.end.generation();
        if generation != self.registered {
            self.registration = Registration::new(self.end.read_fd(), self.end.link.writer().fd())?;
            self.registered = generation;
        }
        Ok(())
    }

    /// Supervised: has `cx` woken at the endpoint's next deadline. One
    /// already past was acted on by the attempt that just returned (or
    /// cannot be yet: a probe's answer read ahead and not yet read), so
    /// the task looks again a millisecond later rather than spin.
    fn arm_deadline(&mut self, cx: &mut Context<'_>) {
        let Some(at) = self.end.next_deadline() else {
            return;
        };
        let at = tokio::time::Instant::from_std(at.max(Instant::now() + Duration::from_millis(1)));
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                timer
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        if timer.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }

    /// Runs `attempt` on the endpoint until it gives a value, waiting for
    /// the current worker's fd to turn ready for `interest` (see
    /// `Registration::poll_read_with`). A replacement spawned during an
    /// attempt has its fds registered, and the attempt runs again;
    /// `Pending` also wakes at the next supervision deadline. `None`: the
    /// write side is closed.
    fn poll_end<T>(
        &mut self,
        cx: &mut Context<'_>,
        interest: tokio::io::Interest,
        mut attempt: impl FnMut(&mut Endpoint) -> Option<T>,
    ) -> Option<Poll<io::Result<T>>> {
        loop {
            if let Err(e) = self.refresh() {
                return Some(Poll::Ready(Err(e)));
            }
            let generation = self.registered;
            let end = &mut *self.end;
            let step = || match attempt(end) {
                // A new worker: its fds are not the registered ones.
                None if end.generation() != generation => Some(None),
                value => value.map(Some),
            };
            let polled = if interest.is_readable() {
                Some(self.registration.poll_read_with(cx, step))
            } else {
                self.registration.poll_write_with(cx, step)
            };
            match polled? {
                Poll::Ready(Ok(Some(value))) => return Some(Poll::Ready(Ok(value))),
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => {
                    self.arm_deadline(cx);
                    return Some(Poll::Pending);
                }
            }
        }
    }

    /// The [`Link`](crate::link::Link) core underneath: its state and
    /// counters ([`queued_bytes`](crate::link::Link::queued_bytes),
    /// [`sent_commands`](crate::link::Link::sent_commands), ...).
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.try_on_disconnect(4)?;
    /// let queued = b.link().queued_commands(); // 1
    /// # Ok(())
    /// # }
    /// ```
    pub fn link(&self) -> &FdLink {
        &self.end.link
    }

    // ---- commands, waiting for room ---------------------------------------

    /// Validates `cmd` and queues it, waiting (and writing the queue out)
    /// while the queue is full. Cancellation safe: if the future is dropped
    /// before it completes, `cmd` was not queued.
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::QueueError;
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).await?; // waits while the queue is full
    /// let bad = SubCommand::New { conn: -1, flags: NewFlags::EMPTY };
    /// if let Err(QueueError::Refused(SendError::Invalid(e))) = b.send(&bad).await {
    ///     eprintln!("refused, nothing queued: {e}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(&mut self, cmd: &SubCommand) -> Result<(), QueueError> {
        poll_fn(|cx| self.poll_queue(cx, &mut |end| end.send(cmd))).await
    }

    fn refuse_waiting(&self, _conn: i32, e: SendError) -> QueueError {
        QueueError::Refused(e)
    }

    relay_commands! {
        send: send,
        refuse: Self::refuse_waiting,
        error: QueueError,
        names: [on_connect, on_disconnect, on_subscribe, on_unsubscribe, on_auth, fanout],
        asyncness: (async, await),
        setup: "# #[tokio::main(flavor = \"current_thread\")]\n# async fn main() {\n# use broadcast_process::async_broadcaster::AsyncBroadcaster;\n# use broadcast_process::broadcaster::Transport;\n# let mut b = AsyncBroadcaster::spawn(std::process::Command::new(\"broadcast-worker\"), Transport::Stdio).unwrap();",
        call: ".await.unwrap()",
    }

    // ---- commands, never waiting ------------------------------------------

    /// Validates `cmd` and queues it, or refuses it at once
    /// ([`SendError::Backpressure`] when the queue is full); see
    /// [`Broadcaster::send`].
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// match b.try_send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }) {
    ///     Ok(()) => {}
    ///     Err(SendError::Backpressure(_)) => {} // full now: flush, or use the waiting `send`
    ///     Err(e) => eprintln!("refused: {e}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        self.end.send(cmd)
    }

    fn refuse_now(&self, _conn: i32, e: SendError) -> SendError {
        e
    }

    relay_commands! {
        send: try_send,
        refuse: Self::refuse_now,
        error: SendError,
        names: [try_on_connect, try_on_disconnect, try_on_subscribe, try_on_unsubscribe, try_on_auth, try_fanout],
        setup: "# fn main() {\n# let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();\n# let _guard = rt.enter();\n# use broadcast_process::async_broadcaster::AsyncBroadcaster;\n# use broadcast_process::broadcaster::Transport;\n# let mut b = AsyncBroadcaster::spawn(std::process::Command::new(\"broadcast-worker\"), Transport::Stdio).unwrap();",
        call: ".unwrap()",
    }

    /// Whether [`try_send`](AsyncBroadcaster::try_send) would queue `cmd`
    /// now (see [`Link::check_send`](crate::link::Link::check_send)).
    pub(crate) fn check_send(&self, cmd: &SubCommand) -> Result<(), SendError> {
        self.end.check_send(cmd)
    }

    /// Waits until `push` stops refusing with `Backpressure`, writing the
    /// queue out (and reading ahead) meanwhile. Also used by the sharded
    /// handle with a mere check, to wait for room without queueing.
    pub(crate) fn poll_queue(
        &mut self,
        cx: &mut Context<'_>,
        push: &mut impl FnMut(&mut Endpoint) -> Result<(), SendError>,
    ) -> Poll<Result<(), QueueError>> {
        loop {
            match push(&mut self.end) {
                Err(SendError::Backpressure(_)) => {}
                other => return Poll::Ready(other.map_err(QueueError::Refused)),
            }
            // Room may come from a plain write: try that first.
            let before = self.end.pending_bytes();
            match self.end.flush() {
                Ok(_) if self.end.pending_bytes() < before => continue,
                Ok(_) | Err(FlushError::WorkerGone { .. }) => {}
                Err(FlushError::Io(e)) => return Poll::Ready(Err(QueueError::Io(e))),
            }
            // None: wait for the fd. Keep the worker's output moving
            // meanwhile, or a worker blocked on it would never read more.
            self.read_ahead(cx);
            match self.poll_flush_queue(cx) {
                Poll::Ready(Ok(())) => {}
                // The next push reports it as SendError::WorkerGone.
                Poll::Ready(Err(FlushError::WorkerGone { .. })) => {}
                Poll::Ready(Err(FlushError::Io(e))) => return Poll::Ready(Err(QueueError::Io(e))),
                Poll::Pending if self.end.pending_bytes() < before => {} // some room: try again
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    // ---- writing ------------------------------------------------------------

    /// Writes the whole queue out, waiting for the worker to take it. While
    /// it waits it also reads frames ahead (kept for
    /// [`recv`](AsyncBroadcaster::recv)). A dead worker is
    /// [`FlushError::WorkerGone`], with the count of commands it never got.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// for conn in 0..1000 {
    ///     b.try_on_connect(conn, false)?;
    /// }
    /// b.flush().await?; // all 1000 written
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&mut self) -> Result<(), FlushError> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// The poll form of [`flush`](AsyncBroadcaster::flush).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), FlushError>> {
        let result = self.poll_flush_queue(cx);
        if result.is_pending() {
            self.read_ahead(cx);
        }
        result
    }

    /// Writes what the fd takes; `Pending` (with the waker registered) while
    /// commands remain and the fd is full.
    fn poll_flush_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), FlushError>> {
        let attempt = |end: &mut Endpoint| match end.flush() {
            Ok(FlushStatus::WouldBlock) => None,
            other => Some(other),
        };
        match self.poll_end(cx, tokio::io::Interest::WRITABLE, attempt) {
            None => Poll::Ready(Ok(())), // closed: nothing can be queued
            Some(Poll::Pending) => Poll::Pending,
            Some(Poll::Ready(Ok(result))) => Poll::Ready(result.map(|_| ())),
            Some(Poll::Ready(Err(e))) => Poll::Ready(Err(FlushError::Io(e))),
        }
    }

    /// One pass of the link's read-ahead rule, with the waker registered
    /// for more when it would block.
    fn read_ahead(&mut self, cx: &mut Context<'_>) {
        let attempt = |end: &mut Endpoint| match end.link.read_ahead() {
            ReadAhead::WouldBlock => None,
            other => Some(other),
        };
        let polled = self.poll_end(cx, tokio::io::Interest::READABLE, attempt);
        if let Some(Poll::Ready(Ok(ReadAhead::Limit))) = polled {
            // More may be waiting: come back rather than starve the writes.
            cx.waker().wake_by_ref();
        }
    }

    /// Ends the command stream, as [`Broadcaster::close_write`]: refused
    /// while commands are queued (flush first); the worker then reads
    /// end-of-file and exits, and [`recv`](AsyncBroadcaster::recv) reports
    /// its last frames and its exit.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::Incoming;
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.try_on_connect(1, false)?;
    /// b.flush().await?; // close_write refuses while commands are queued
    /// b.close_write()?;
    /// // The worker reads end-of-file and exits: recv gives its last frames, then its exit.
    /// while !matches!(b.recv().await?, Incoming::WorkerExited(_)) {}
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_write(&mut self) -> Result<(), Unflushed> {
        if self.end.pending_bytes() > 0 {
            return self.end.close_write(); // refuses, closes nothing
        }
        // A separate pipe is deregistered before it is closed.
        self.registration.forget_write_pipe();
        self.end.close_write()
    }

    // ---- reading ------------------------------------------------------------

    /// The next frame from the worker: [`Incoming::Frame`],
    /// [`Incoming::InvalidFrame`] (one message lost, the stream goes on), or
    /// [`Incoming::WorkerExited`] (returned again by every later call);
    /// never [`Incoming::Pending`]: it waits instead. A fatal stream error
    /// is `Err`, as in [`Broadcaster::read_frame`].
    ///
    /// While it waits it writes the queued commands (a write error is not
    /// reported here: the worker's exit is, and the next
    /// [`flush`](AsyncBroadcaster::flush) or command reports it).
    ///
    /// Cancellation safe: if the future is dropped before it completes, no
    /// frame was taken.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::Incoming;
    /// use std::time::Duration;
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// let mut tick = tokio::time::interval(Duration::from_secs(1));
    /// loop {
    ///     tokio::select! {
    ///         item = b.recv() => match item? {
    ///             Incoming::Frame(frame) => println!("conn {}: {} bytes", frame.conn, frame.data.len()),
    ///             Incoming::InvalidFrame(e) => eprintln!("one frame lost: {e}"),
    ///             Incoming::WorkerExited(status) => {
    ///                 eprintln!("worker gone: {status:?}");
    ///                 break;
    ///             }
    ///             Incoming::Pending => {} // never: recv waits instead
    ///             Incoming::WorkerRestarted(_) => {} // never: not supervised
    ///         },
    ///         _ = tick.tick() => {} // the relay's other work
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<Incoming, ReadError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](AsyncBroadcaster::recv), for hand-written
    /// futures and streams: `Pending` registers `cx`'s waker for the
    /// worker's output (and, while commands are queued, for writability).
    ///
    /// ```no_run
    /// use std::future::poll_fn;
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// let item = poll_fn(|cx| b.poll_recv(cx)).await?; // as b.recv().await
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        if self.end.wants_write() {
            // Errors are reported by flush and the commands (see above).
            let _ = self.poll_flush_queue(cx);
        }
        let attempt = |end: &mut Endpoint| match end.read() {
            Ok(Incoming::Pending) => None,
            other => Some(other),
        };
        match self.poll_end(cx, tokio::io::Interest::READABLE, attempt) {
            Some(Poll::Pending) | None => {
                // A supervised read may have queued commands (a probe, a
                // replay): write them, or nothing will.
                if self.end.supervisor().is_some() && self.end.wants_write() {
                    let _ = self.poll_flush_queue(cx);
                }
                Poll::Pending
            }
            Some(Poll::Ready(Ok(item))) => Poll::Ready(item),
            Some(Poll::Ready(Err(e))) => Poll::Ready(Err(ReadError::Io(e))),
        }
    }

    // ---- the process ----------------------------------------------------------

    /// The worker's process id, if the handle has a child.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// if let Some(pid) = b.pid() {
    ///     println!("worker {pid}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.end.worker.pid()
    }

    /// Whether the worker is still there (see [`Broadcaster::is_alive`]).
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// if !b.is_alive() {
    ///     eprintln!("worker gone: {:?}", b.exit_status());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_alive(&mut self) -> bool {
        self.end.is_alive()
    }

    /// The worker's exit status if it has exited (it is reaped), without
    /// blocking.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// match b.exit_status() {
    ///     Some(status) => println!("worker exited: {status}"),
    ///     None => {} // still running
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.end.exit_status()
    }

    /// Waits up to `timeout` for the worker to exit, and reaps it, without
    /// blocking the runtime. `None` if it is still running (or the handle
    /// has no child).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    ///
    /// b.close_write()?;
    /// match b.wait_exit(Duration::from_secs(5)).await {
    ///     Some(status) => println!("worker exited: {status}"),
    ///     None => b.kill()?, // still running
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Duration::from_millis(1);
        loop {
            if let Some(status) = self.end.exit_status() {
                return Some(status);
            }
            if !self.end.worker.has_child() || tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep_until((tokio::time::Instant::now() + interval).min(deadline)).await;
            interval = (interval * 2).min(Duration::from_millis(50));
        }
    }

    /// Kills the worker now (`SIGKILL`); [`recv`](AsyncBroadcaster::recv)
    /// then reports its exit.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.kill()?;
    /// // b.recv() reports Incoming::WorkerExited next.
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.end.kill()
    }

    /// The captured stderr, with
    /// [`StderrMode::Capture`](crate::broadcaster::StderrMode::Capture).
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Options, StderrMode, Transport};
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// let b = AsyncBroadcaster::spawn_with(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// // ... and once the worker has died:
    /// for line in b.stderr_tail().map(|tail| tail.lines()).unwrap_or_default() {
    ///     eprintln!("worker: {line}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn stderr_tail(&self) -> Option<&StderrTail> {
        self.end.stderr.as_ref()
    }

    /// Whether items wait in memory that no readiness will announce (for
    /// the sharded handle's fair read): read ahead in the link, or a dead
    /// supervised worker's last output and the restart's report.
    pub(crate) fn has_buffered(&self) -> bool {
        self.end.has_buffered()
    }
}
