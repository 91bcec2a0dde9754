//! The parent-side handle on a broadcast worker for tokio relays (unix,
//! feature `tokio`).
//!
//! [`AsyncBroadcaster`] is the sync [`Broadcaster`] driven by tokio's
//! reactor: the same spawning (stdio pipes, or a socketpair passed as
//! `--fd N`), [`Options`], validation, bounded outbound queue, `SIGPIPE`
//! handling, error types and lifecycle; tokio's reactor only says when to
//! read and write (through duplicates of the fds registered as tokio pipe
//! ends or a tokio `UnixStream`, since tokio's safe types own what they
//! register, and this crate forbids `unsafe`).
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
//!   the worker's frames (kept for `recv`), so a worker blocked writing its
//!   output (PROTOCOL.md#flow-control: it never drops a frame) keeps reading commands.
//! - **Lifecycle** — dropping the handle deregisters the fds and drops the
//!   `Broadcaster` on a background thread: the fds close, the worker gets
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
//! [`std::process::Child`] owned by the sync lifecycle, which reaps it
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

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::process::{Command, ExitStatus};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;

use crate::broadcaster::{
    Broadcaster, FlushError, FlushStatus, Incoming, Options, SendError, SpawnError, Transport, Unflushed,
};
use broadcast_wire::BcastFlags;
use broadcast_wire::ReadError;
use broadcast_wire::{PUBKEY_LEN, SubCommand};

mod error;
mod reaper;
mod registration;
pub mod sharded;

pub use error::QueueError;
pub use sharded::AsyncShardedBroadcaster;

use reaper::ReapInBackground;
use registration::Registration;

/// Most frames one wait for room reads ahead into the stash before it
/// yields, so a worker that never stops writing cannot starve the writes.
const MAX_FRAMES_PER_PUMP: usize = 1024;

/// The parent's handle on one broadcast worker, for tokio: see the [module
/// docs](self). Create it inside a tokio runtime with I/O enabled (its
/// constructors panic otherwise, as tokio's own I/O types do).
///
/// ```
/// use broadcast_process::async_broadcaster::AsyncBroadcaster;
/// use broadcast_process::broadcaster::Transport;
/// use std::process::Command;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A stand-in worker over a socketpair: cat on the fd that `--fd 3` names.
/// let mut cat = Command::new("sh");
/// cat.args(["-c", "exec cat <&3 >&3", "sh"]); // "--fd" "3" follow as $1 $2
/// let mut b = AsyncBroadcaster::spawn(cat, Transport::SocketPair).unwrap();
/// b.on_connect(7, true).await.unwrap();
/// b.flush().await.unwrap();
/// assert_eq!(b.broadcaster().sent_commands(), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncBroadcaster {
    /// Items read ahead while a command waited for room, returned first by
    /// `recv`.
    stash: VecDeque<Result<Incoming, ReadError>>,
    /// The worker's output ended or broke: stop reading ahead (`recv`
    /// reports it, and keeps reporting it, from the `Broadcaster`).
    read_ahead_done: bool,
    /// Declared before `inner`: fields drop in order, and the fds must be
    /// deregistered before they are closed.
    registration: Registration,
    inner: ReapInBackground,
}

impl AsyncBroadcaster {
    /// Spawns `command` as a worker over `transport`, with default
    /// [`Options`] (see [`Broadcaster::spawn`]).
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::Transport;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = AsyncBroadcaster::spawn(Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.pid().is_some());
    /// # }
    /// ```
    pub fn spawn(command: Command, transport: Transport) -> Result<AsyncBroadcaster, SpawnError> {
        Self::spawn_with(command, transport, &Options::default())
    }

    /// Spawns `command` as a worker over `transport` with `opts` (see
    /// [`Broadcaster::spawn_with`]).
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let opts = Options::new().max_queued_bytes(1 << 16);
    /// let b = AsyncBroadcaster::spawn_with(Command::new("cat"), Transport::Stdio, &opts).unwrap();
    /// assert_eq!(b.broadcaster().queue_limit(), 1 << 16);
    /// # }
    /// ```
    pub fn spawn_with(
        command: Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<AsyncBroadcaster, SpawnError> {
        Self::from_broadcaster(Broadcaster::spawn_with(command, transport, opts)?).map_err(SpawnError::Setup)
    }

    /// Drives an existing [`Broadcaster`] (for a worker adopted with
    /// [`Broadcaster::from_fds`] or [`Broadcaster::from_socket`]) from tokio.
    /// Commands already queued in it stay queued. On error the broadcaster
    /// is dropped, which ends and reaps its worker.
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
        // Wrapped first, so that a failed registration drops `b` (ending
        // and reaping its worker) off the runtime's thread too.
        let inner = ReapInBackground::new(b);
        let registration = Registration::new(&inner)?;
        Ok(AsyncBroadcaster {
            stash: VecDeque::new(),
            read_ahead_done: false,
            registration,
            inner,
        })
    }

    /// The sync handle underneath, for its counters and process queries
    /// ([`Broadcaster::queued_bytes`], [`Broadcaster::sent_commands`],
    /// [`Broadcaster::queue_limit`], [`Broadcaster::stderr_tail`], ...).
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_disconnect(4).unwrap();
    /// assert_eq!(b.broadcaster().queued_commands(), 1);
    /// # }
    /// ```
    pub fn broadcaster(&self) -> &Broadcaster {
        &self.inner
    }

    // ---- commands, waiting for room ---------------------------------------

    /// Validates `cmd` and queues it, waiting (and writing the queue out)
    /// while the queue is full. Cancellation safe: if the future is dropped
    /// before it completes, `cmd` was not queued.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::{AsyncBroadcaster, QueueError};
    /// use broadcast_process::broadcaster::{SendError, Transport};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).await.unwrap();
    /// let bad = SubCommand::New { conn: -1, flags: NewFlags::EMPTY };
    /// assert!(matches!(b.send(&bad).await, Err(QueueError::Refused(SendError::Invalid(_)))));
    /// # }
    /// ```
    pub async fn send(&mut self, cmd: &SubCommand) -> Result<(), QueueError> {
        self.queue(|b| b.send(cmd)).await
    }

    /// Connection `conn` opened (New), waiting for room; see
    /// [`Broadcaster::on_connect`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_connect(12, false).await.unwrap();
    /// # }
    /// ```
    pub async fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), QueueError> {
        self.queue(|b| b.on_connect(conn, whitelisted)).await
    }

    /// Connection `conn` closed (Close), waiting for room; see
    /// [`Broadcaster::on_disconnect`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_disconnect(12).await.unwrap();
    /// # }
    /// ```
    pub async fn on_disconnect(&mut self, conn: i32) -> Result<(), QueueError> {
        self.queue(|b| b.on_disconnect(conn)).await
    }

    /// Subscription `sub_id` on `conn` (Add), with `req` the raw `["REQ",
    /// ...]` message, waiting for room; see [`Broadcaster::on_subscribe`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_subscribe(12, "s1", r#"["REQ","s1",{"kinds":[1]}]"#).await.unwrap();
    /// assert!(b.on_subscribe(12, "", "x").await.is_err()); // sub_ids are 1 to 64 bytes
    /// # }
    /// ```
    pub async fn on_subscribe(
        &mut self,
        conn: i32,
        sub_id: &str,
        req: impl Into<Bytes>,
    ) -> Result<(), QueueError> {
        let req = req.into();
        self.queue(|b| b.on_subscribe(conn, sub_id, req.clone())).await
    }

    /// Subscription `sub_id` on `conn` closed by the client (Remove),
    /// waiting for room; see [`Broadcaster::on_unsubscribe`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_unsubscribe(12, "s1").await.unwrap();
    /// # }
    /// ```
    pub async fn on_unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), QueueError> {
        self.queue(|b| b.on_unsubscribe(conn, sub_id)).await
    }

    /// Connection `conn` authenticated `pubkey` (Auth, NIP-42), waiting for
    /// room; see [`Broadcaster::on_auth`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.on_auth(12, [0xab; 32]).await.unwrap();
    /// # }
    /// ```
    pub async fn on_auth(&mut self, conn: i32, pubkey: [u8; PUBKEY_LEN]) -> Result<(), QueueError> {
        self.queue(|b| b.on_auth(conn, pubkey)).await
    }

    /// Fan out an accepted event (Bcast), waiting for room; see
    /// [`Broadcaster::fanout`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// use broadcast_wire::BcastFlags;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.fanout(r#"["EVENT",{}]"#, 3, BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE).await.unwrap();
    /// # }
    /// ```
    pub async fn fanout(
        &mut self,
        event_msg: impl Into<Bytes>,
        sender: i32,
        flags: BcastFlags,
    ) -> Result<(), QueueError> {
        let event_msg = event_msg.into();
        self.queue(|b| b.fanout(event_msg.clone(), sender, flags)).await
    }

    // ---- commands, never waiting ------------------------------------------

    /// Validates `cmd` and queues it, or refuses it at once
    /// ([`SendError::Backpressure`] when the queue is full); see
    /// [`Broadcaster::send`].
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Options, SendError, Transport};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let opts = Options::new().max_queued_bytes(20);
    /// let mut b = AsyncBroadcaster::spawn_with(std::process::Command::new("cat"), Transport::Stdio, &opts).unwrap();
    /// b.try_send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).unwrap(); // 19 bytes
    /// let again = b.try_send(&SubCommand::New { conn: 2, flags: NewFlags::EMPTY });
    /// assert!(matches!(again, Err(SendError::Backpressure(_))));
    /// # }
    /// ```
    pub fn try_send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        self.inner.send(cmd)
    }

    /// [`AsyncBroadcaster::on_connect`] without waiting: a full queue is
    /// [`SendError::Backpressure`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_connect(12, false).unwrap();
    /// # }
    /// ```
    pub fn try_on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), SendError> {
        self.inner.on_connect(conn, whitelisted)
    }

    /// [`AsyncBroadcaster::on_disconnect`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_disconnect(12).unwrap();
    /// # }
    /// ```
    pub fn try_on_disconnect(&mut self, conn: i32) -> Result<(), SendError> {
        self.inner.on_disconnect(conn)
    }

    /// [`AsyncBroadcaster::on_subscribe`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_subscribe(12, "s1", r#"["REQ","s1",{}]"#).unwrap();
    /// # }
    /// ```
    pub fn try_on_subscribe(
        &mut self,
        conn: i32,
        sub_id: &str,
        req: impl Into<Bytes>,
    ) -> Result<(), SendError> {
        self.inner.on_subscribe(conn, sub_id, req)
    }

    /// [`AsyncBroadcaster::on_unsubscribe`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_unsubscribe(12, "s1").unwrap();
    /// # }
    /// ```
    pub fn try_on_unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), SendError> {
        self.inner.on_unsubscribe(conn, sub_id)
    }

    /// [`AsyncBroadcaster::on_auth`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_auth(12, [1; 32]).unwrap();
    /// # }
    /// ```
    pub fn try_on_auth(&mut self, conn: i32, pubkey: [u8; PUBKEY_LEN]) -> Result<(), SendError> {
        self.inner.on_auth(conn, pubkey)
    }

    /// [`AsyncBroadcaster::fanout`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// use broadcast_wire::BcastFlags;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_fanout(r#"["EVENT",{}]"#, -1, BcastFlags::NEED_FILTER).unwrap();
    /// # }
    /// ```
    pub fn try_fanout(
        &mut self,
        event_msg: impl Into<Bytes>,
        sender: i32,
        flags: BcastFlags,
    ) -> Result<(), SendError> {
        self.inner.fanout(event_msg, sender, flags)
    }

    /// Queues with `push`, writing the queue out while it refuses with
    /// `Backpressure`.
    async fn queue(
        &mut self,
        mut push: impl FnMut(&mut Broadcaster) -> Result<(), SendError>,
    ) -> Result<(), QueueError> {
        poll_fn(|cx| self.poll_queue(cx, &mut push)).await
    }

    fn poll_queue(
        &mut self,
        cx: &mut Context<'_>,
        push: &mut impl FnMut(&mut Broadcaster) -> Result<(), SendError>,
    ) -> Poll<Result<(), QueueError>> {
        loop {
            match push(&mut self.inner) {
                Err(SendError::Backpressure(_)) => {}
                other => return Poll::Ready(other.map_err(QueueError::Refused)),
            }
            // Room may come from a plain write: try that first.
            let before = self.inner.queued_bytes();
            match self.inner.flush() {
                Ok(_) if self.inner.queued_bytes() < before => continue,
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
                Poll::Pending if self.inner.queued_bytes() < before => {} // some room: try again
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
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// for conn in 0..1000 {
    ///     b.try_on_connect(conn, false).unwrap();
    /// }
    /// b.flush().await.unwrap();
    /// assert_eq!(b.broadcaster().sent_commands(), 1000);
    /// # }
    /// ```
    pub async fn flush(&mut self) -> Result<(), FlushError> {
        poll_fn(|cx| {
            let result = self.poll_flush_queue(cx);
            if result.is_pending() {
                self.read_ahead(cx);
            }
            result
        })
        .await
    }

    /// Writes what the fd takes; `Pending` (with the waker registered) while
    /// commands remain and the fd is full.
    fn poll_flush_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), FlushError>> {
        loop {
            if self.inner.flush()? == FlushStatus::Flushed {
                return Poll::Ready(Ok(()));
            }
            let Some(ready) = self.registration.poll_write_ready(cx) else {
                return Poll::Ready(Ok(())); // closed: nothing can be queued
            };
            ready!(ready).map_err(FlushError::Io)?;
            // Retried as a tokio I/O attempt: its WouldBlock clears the
            // readiness (and readiness that arrived meanwhile is kept).
            let inner = &mut self.inner;
            let attempt = self.registration.try_write(|| match inner.flush() {
                Ok(FlushStatus::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
                other => Ok(other),
            });
            match attempt {
                Ok(result) => {
                    result?;
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(FlushError::Io(e))),
            }
        }
    }

    /// Ends the command stream, as [`Broadcaster::close_write`]: refused
    /// while commands are queued (flush first); the worker then reads
    /// end-of-file and exits, and [`recv`](AsyncBroadcaster::recv) reports
    /// its last frames and its exit.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::{Incoming, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.try_on_connect(1, false).unwrap();
    /// assert!(b.close_write().is_err()); // still queued
    /// b.flush().await.unwrap();
    /// b.close_write().unwrap();
    /// assert!(matches!(b.recv().await.unwrap(), Incoming::WorkerExited(_)));
    /// # }
    /// ```
    pub fn close_write(&mut self) -> Result<(), Unflushed> {
        if self.inner.queued_bytes() > 0 {
            return self.inner.close_write(); // refuses, closes nothing
        }
        // A separate pipe is deregistered before it is closed.
        self.registration.forget_write_pipe();
        self.inner.close_write()
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
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Incoming, Transport};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// // cat sends nothing on channel 2: recv waits, and the timeout wins.
    /// let got = tokio::time::timeout(Duration::from_millis(20), b.recv()).await;
    /// assert!(got.is_err());
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<Incoming, ReadError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](AsyncBroadcaster::recv), for hand-written
    /// futures and streams: `Pending` registers `cx`'s waker for the
    /// worker's output (and, while commands are queued, for writability).
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// use broadcast_process::broadcaster::{Incoming, Transport};
    /// use std::future::poll_fn;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("true"), Transport::Stdio).unwrap();
    /// let got = poll_fn(|cx| b.poll_recv(cx)).await.unwrap();
    /// assert!(matches!(got, Incoming::WorkerExited(_)));
    /// # }
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        if let Some(item) = self.stash.pop_front() {
            return Poll::Ready(item);
        }
        if self.inner.wants_write() {
            // Errors are reported by flush and the commands (see above).
            let _ = self.poll_flush_queue(cx);
        }
        self.poll_read_frame(cx)
    }

    fn poll_read_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        loop {
            match self.inner.read_frame() {
                Ok(Incoming::Pending) => {}
                other => return Poll::Ready(other),
            }
            ready!(self.registration.poll_read_ready(cx))?;
            let inner = &mut self.inner;
            let attempt = self.registration.try_read(|| match inner.read_frame() {
                Ok(Incoming::Pending) => Err(io::ErrorKind::WouldBlock.into()),
                other => Ok(other),
            });
            match attempt {
                Ok(item) => return Poll::Ready(item),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(ReadError::Io(e))),
            }
        }
    }

    /// Reads what the worker has sent into the stash (the waker is
    /// registered for more when nothing is left).
    fn read_ahead(&mut self, cx: &mut Context<'_>) {
        for _ in 0..MAX_FRAMES_PER_PUMP {
            if self.read_ahead_done {
                return;
            }
            match self.poll_read_frame(cx) {
                Poll::Pending => return,
                Poll::Ready(item) => {
                    self.read_ahead_done =
                        !matches!(item, Ok(Incoming::Frame(_) | Incoming::InvalidFrame(_)));
                    self.stash.push_back(item);
                }
            }
        }
        // More may be waiting: come back rather than starve the writes.
        cx.waker().wake_by_ref();
    }

    // ---- the process ----------------------------------------------------------

    /// The worker's process id, if the handle has a child.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.pid().unwrap() > 0);
    /// # }
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }

    /// Whether the worker is still there (see [`Broadcaster::is_alive`]).
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// assert!(b.is_alive());
    /// # }
    /// ```
    pub fn is_alive(&mut self) -> bool {
        self.inner.is_alive()
    }

    /// Waits up to `timeout` for the worker to exit, and reaps it, without
    /// blocking the runtime. `None` if it is still running (or the handle
    /// has no child).
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::Transport;
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut cmd = std::process::Command::new("sh");
    /// cmd.args(["-c", "exit 4"]);
    /// let mut b = AsyncBroadcaster::spawn(cmd, Transport::Stdio).unwrap();
    /// assert_eq!(b.wait_exit(Duration::from_secs(10)).await.unwrap().code(), Some(4));
    /// # }
    /// ```
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Duration::from_millis(1);
        loop {
            if let Some(status) = self.inner.exit_status() {
                return Some(status);
            }
            if !self.inner.has_child() || tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep_until((tokio::time::Instant::now() + interval).min(deadline)).await;
            interval = (interval * 2).min(Duration::from_millis(50));
        }
    }

    /// Kills the worker now (`SIGKILL`); [`recv`](AsyncBroadcaster::recv)
    /// then reports its exit.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncBroadcaster;
    /// # use broadcast_process::broadcaster::{Incoming, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut b = AsyncBroadcaster::spawn(std::process::Command::new("cat"), Transport::Stdio).unwrap();
    /// b.kill().unwrap();
    /// assert!(matches!(b.recv().await.unwrap(), Incoming::WorkerExited(_)));
    /// # }
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }
}
