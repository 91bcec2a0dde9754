//! K broadcast workers behind one async handle: the async twin of
//! [`ShardedBroadcaster`](crate::broadcaster::sharded::ShardedBroadcaster).
//!
//! [`AsyncShardedBroadcaster`] is a [`ShardRouter`] plus one
//! [`AsyncBroadcaster`] per shard. The router makes every decision the
//! blocking handle makes, the same way: which shard owns a conn
//! (`conn as u32 % K`), the all-or-none admission of a Bcast, which conns
//! each shard owns, which shards still take commands. So the guarantees are
//! the blocking handle's (per connection, exactly what one worker gives,
//! PROTOCOL.md#ordering), with `async` waiting in place of
//! [`SendError::Backpressure`]:
//!
//! - **Commands** — `on_connect`, `on_disconnect`, `on_subscribe`,
//!   `on_unsubscribe`, `on_auth` and `send` wait for room on the conn's
//!   shard only. [`fanout`](AsyncShardedBroadcaster::fanout) waits until
//!   *every* live shard has room and then queues the Bcast on all of them
//!   at once: never on some only, even if the future is dropped while it
//!   waits. The `try_` methods never wait: a full queue is
//!   `Backpressure` at once (naming the shard), queued nowhere.
//! - **Frames** — [`recv`](AsyncShardedBroadcaster::recv) returns the next
//!   item of any shard as a [`ShardedIncoming`], fairly: each call starts
//!   polling at the shard after the one that produced the last item. It is
//!   cancellation safe, and writes every shard's queued commands while it
//!   waits.
//! - **A shard that dies** — is reported once, as
//!   [`ShardedIncoming::ShardExited`] with the conns it owned, after every
//!   frame it wrote; its conns' commands are then refused with
//!   [`SendError::WorkerGone`] and Bcasts go to the other shards.
//! - **Drop** — every shard's [`AsyncBroadcaster`] is dropped, each reaping
//!   its worker on its own background thread (so the grace periods run
//!   side by side), without blocking the runtime.

use std::future::poll_fn;
use std::io;
use std::num::NonZeroUsize;
use std::process::{Command, ExitStatus};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use crate::broadcaster::sharded::{ShardError, ShardExit, ShardRouter, ShardState, ShardedIncoming};
use crate::broadcaster::{FlushError, Options, SendError, SpawnError, Transport, Unflushed};
use broadcast_wire::ReadError;
use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags};
use broadcast_wire::{PUBKEY_LEN, SubCommand};

use super::{AsyncBroadcaster, QueueError};

/// The parent's handle on K broadcast workers, for tokio: see the [module
/// docs](self). Create it inside a tokio runtime with I/O enabled.
///
/// ```
/// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
/// use broadcast_process::broadcaster::sharded::ShardedIncoming;
/// use broadcast_process::broadcaster::{Options, Transport};
/// use broadcast_wire::BcastFlags;
/// use std::num::NonZeroUsize;
/// use std::process::Command;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two shards of a stand-in worker that ends when its input does.
/// let k = NonZeroUsize::new(2).unwrap();
/// let mut b = AsyncShardedBroadcaster::spawn(k, |_| Command::new("cat"), Transport::Stdio, &Options::new())?;
/// b.on_connect(10, false).await?; // shard 0
/// b.on_connect(11, false).await?; // shard 1
/// b.fanout(r#"["EVENT",{}]"#, -1, BcastFlags::EMPTY).await?; // both, or neither
/// assert_eq!(b.conns_of(1), vec![11]);
///
/// b.flush().await?;
/// b.close_write()?;
/// let mut exited = Vec::new();
/// while exited.len() < 2 {
///     match b.recv().await? {
///         ShardedIncoming::ShardExited(exit) => exited.push((exit.shard, exit.conns)),
///         other => panic!("cat writes no frames: {other:?}"),
///     }
/// }
/// exited.sort();
/// assert_eq!(exited, [(0, vec![10]), (1, vec![11])]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncShardedBroadcaster {
    router: ShardRouter,
    shards: Vec<AsyncBroadcaster>,
    /// A read error was returned for this shard and its worker killed: its
    /// exit is reported by the next `recv`.
    failed: Vec<bool>,
    /// Where the next `recv` starts polling.
    next: usize,
}

impl AsyncShardedBroadcaster {
    /// Spawns `shards` workers, shard `i` running `command(i)`, all over
    /// `transport` with `opts` (each shard has its own queue of
    /// [`Options::max_queued_bytes`]). If one fails to start, those already
    /// started are dropped (and so reaped) and the error names the shard.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::num::NonZeroUsize;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let k = NonZeroUsize::new(2).unwrap();
    /// let err = AsyncShardedBroadcaster::spawn(
    ///     k,
    ///     |i| Command::new(if i == 0 { "cat" } else { "/nonexistent/worker" }),
    ///     Transport::Stdio,
    ///     &Options::new(),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.shard, 1);
    /// # }
    /// ```
    pub fn spawn(
        shards: NonZeroUsize,
        mut command: impl FnMut(usize) -> Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<AsyncShardedBroadcaster, ShardError<SpawnError>> {
        let handles = (0..shards.get())
            .map(|shard| {
                AsyncBroadcaster::spawn_with(command(shard), transport, opts)
                    .map_err(|error| ShardError { shard, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AsyncShardedBroadcaster {
            router: ShardRouter::new(shards),
            failed: vec![false; shards.get()],
            shards: handles,
            next: 0,
        })
    }

    // ---- routing ----------------------------------------------------------

    /// K, the number of shards.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// assert_eq!(b.shard_count(), 2);
    /// # }
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard that owns `conn` ([`ShardRouter::shard_of`]).
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// assert_eq!(b.shard_of(17), 1);
    /// # }
    /// ```
    pub fn shard_of(&self, conn: i32) -> usize {
        self.router.shard_of(conn)
    }

    /// The routing state: which shards are live, which conns each owns.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{sharded::ShardState, Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// assert_eq!(b.router().state(1), Some(ShardState::Live));
    /// # }
    /// ```
    pub fn router(&self) -> &ShardRouter {
        &self.router
    }

    /// The connections `shard` owns (opened and not closed), ascending.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_connect(8, false).unwrap();
    /// b.try_on_connect(4, false).unwrap();
    /// assert_eq!(b.conns_of(0), vec![4, 8]);
    /// # }
    /// ```
    pub fn conns_of(&self, shard: usize) -> Vec<i32> {
        self.router.conns(shard).collect()
    }

    /// Shard `shard`'s own handle, to inspect it (queue, pid, stderr through
    /// [`AsyncBroadcaster::broadcaster`]); `None` for a bad index. Commands
    /// go through the sharded handle, so that routing and bookkeeping stay
    /// right.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_connect(3, false).unwrap();
    /// assert_eq!(b.shard(1).unwrap().broadcaster().queued_commands(), 1);
    /// assert!(b.shard(2).is_none());
    /// # }
    /// ```
    pub fn shard(&self, shard: usize) -> Option<&AsyncBroadcaster> {
        self.shards.get(shard)
    }

    // ---- commands, waiting for room -----------------------------------------

    /// Validates `cmd` and queues it on its shard, or on every live shard
    /// for a Bcast (see [`AsyncShardedBroadcaster::fanout`]), waiting for
    /// room. Cancellation safe: if the future is dropped before it
    /// completes, `cmd` was queued nowhere. On error it was queued nowhere
    /// either; the error names the shard.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::{AsyncShardedBroadcaster, QueueError};
    /// use broadcast_process::broadcaster::{Options, SendError, Transport};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.send(&SubCommand::New { conn: 6, flags: NewFlags::EMPTY }).await.unwrap();
    /// let bad = b.send(&SubCommand::New { conn: -1, flags: NewFlags::EMPTY }).await.unwrap_err();
    /// assert!(matches!(bad.error, QueueError::Refused(SendError::Invalid(_))));
    /// # }
    /// ```
    pub async fn send(&mut self, cmd: &SubCommand) -> Result<(), ShardError<QueueError>> {
        match cmd {
            SubCommand::Bcast { .. } => self.queue_all(cmd).await,
            other => self.queue_on_conn(other).await,
        }
    }

    /// Connection `conn` opened (New), on its shard, waiting for room; see
    /// [`AsyncBroadcaster::on_connect`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_connect(12, true).await.unwrap();
    /// assert_eq!(b.conns_of(0), vec![12]);
    /// # }
    /// ```
    pub async fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), ShardError<QueueError>> {
        self.send(&new_cmd(conn, whitelisted)).await
    }

    /// Connection `conn` closed (Close), on its shard, waiting for room;
    /// see [`AsyncBroadcaster::on_disconnect`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_connect(12, false).await.unwrap();
    /// b.on_disconnect(12).await.unwrap();
    /// assert!(b.conns_of(0).is_empty());
    /// # }
    /// ```
    pub async fn on_disconnect(&mut self, conn: i32) -> Result<(), ShardError<QueueError>> {
        self.send(&close_cmd(conn)).await
    }

    /// Subscription `sub_id` on `conn` (Add), on its shard, waiting for
    /// room; see [`AsyncBroadcaster::on_subscribe`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_subscribe(5, "s", r#"["REQ","s",{}]"#).await.unwrap();
    /// assert_eq!(b.shard(1).unwrap().broadcaster().queued_commands(), 1);
    /// # }
    /// ```
    pub async fn on_subscribe(
        &mut self,
        conn: i32,
        sub_id: &str,
        req: impl Into<Bytes>,
    ) -> Result<(), ShardError<QueueError>> {
        let shard = self.router.shard_for_conn(conn).map_err(refused)?;
        let outcome = self.shards[shard].on_subscribe(conn, sub_id, req).await;
        self.router.settle(shard, None, outcome, queue_error_is_gone)
    }

    /// Subscription `sub_id` on `conn` closed (Remove), on its shard,
    /// waiting for room; see [`AsyncBroadcaster::on_unsubscribe`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_unsubscribe(4, "s").await.unwrap();
    /// assert_eq!(b.shard(0).unwrap().broadcaster().queued_commands(), 1);
    /// # }
    /// ```
    pub async fn on_unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), ShardError<QueueError>> {
        let shard = self.router.shard_for_conn(conn).map_err(refused)?;
        let outcome = self.shards[shard].on_unsubscribe(conn, sub_id).await;
        self.router.settle(shard, None, outcome, queue_error_is_gone)
    }

    /// Connection `conn` authenticated `pubkey` (Auth), on its shard,
    /// waiting for room; see [`AsyncBroadcaster::on_auth`].
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_auth(9, [1; 32]).await.unwrap();
    /// assert_eq!(b.shard(1).unwrap().broadcaster().queued_commands(), 1);
    /// # }
    /// ```
    pub async fn on_auth(
        &mut self,
        conn: i32,
        pubkey: [u8; PUBKEY_LEN],
    ) -> Result<(), ShardError<QueueError>> {
        let shard = self.router.shard_for_conn(conn).map_err(refused)?;
        let outcome = self.shards[shard].on_auth(conn, pubkey).await;
        self.router.settle(shard, None, outcome, queue_error_is_gone)
    }

    /// Fans out an accepted event (Bcast) to every live shard, waiting
    /// until every one of them has room, then queueing it on all at once
    /// (checked with [`ShardRouter::admit_all`], as the blocking handle
    /// does): never on some shards only. While it waits for a full shard it
    /// writes that shard's queue and reads its frames ahead (kept for
    /// `recv`). Cancellation safe: dropped before it completes, it queued
    /// the event nowhere. A shard found dead is marked down and left out.
    ///
    /// ```
    /// use broadcast_wire::BcastFlags;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.fanout(r#"["EVENT",{}]"#, -1, BcastFlags::EMPTY).await.unwrap();
    /// assert_eq!(b.shard(0).unwrap().broadcaster().queued_commands(), 1);
    /// assert_eq!(b.shard(1).unwrap().broadcaster().queued_commands(), 1);
    /// # }
    /// ```
    pub async fn fanout(
        &mut self,
        event_msg: impl Into<Bytes>,
        sender: i32,
        flags: BcastFlags,
    ) -> Result<(), ShardError<QueueError>> {
        self.queue_all(&bcast_cmd(event_msg, sender, flags)).await
    }

    async fn queue_on_conn(&mut self, cmd: &SubCommand) -> Result<(), ShardError<QueueError>> {
        let shard = self.router.shard_for_conn(cmd.conn()).map_err(refused)?;
        let outcome = self.shards[shard].send(cmd).await;
        self.router.settle(shard, Some(cmd), outcome, queue_error_is_gone)
    }

    async fn queue_all(&mut self, cmd: &SubCommand) -> Result<(), ShardError<QueueError>> {
        poll_fn(|cx| self.poll_queue_all(cx, cmd)).await
    }

    /// Admits `cmd` to every live shard at once, or waits for room on the
    /// first full one and tries again. Queues only when every live shard
    /// has room, so a dropped future leaves nothing behind.
    fn poll_queue_all(
        &mut self,
        cx: &mut Context<'_>,
        cmd: &SubCommand,
    ) -> Poll<Result<(), ShardError<QueueError>>> {
        loop {
            let shards = &self.shards;
            let full = match self
                .router
                .admit_all(|shard| shards[shard].broadcaster().check_send(cmd))
            {
                Ok(()) => {
                    return Poll::Ready(self.try_send_all(cmd).map_err(refused));
                }
                Err(ShardError {
                    shard,
                    error: SendError::Backpressure(_),
                }) => shard,
                Err(e) => return Poll::Ready(Err(refused(e))),
            };
            // Room on a shard only grows while we wait (nothing else is
            // queued: we hold `&mut self`), so once the full one has room,
            // the next round admits it or finds the next full one.
            match self.shards[full].poll_queue(cx, &mut |b| b.check_send(cmd)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(QueueError::Refused(SendError::WorkerGone))) => self.router.mark_down(full),
                Poll::Ready(Err(error)) => return Poll::Ready(Err(ShardError { shard: full, error })),
            }
        }
    }

    // ---- commands, without waiting ------------------------------------------

    /// [`AsyncShardedBroadcaster::send`] without waiting: a full queue is
    /// [`SendError::Backpressure`] at once, naming the shard, and `cmd` is
    /// queued nowhere (a Bcast is checked against every live shard first).
    ///
    /// ```
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }).unwrap();
    /// assert_eq!(b.conns_of(1), vec![1]);
    /// # }
    /// ```
    pub fn try_send(&mut self, cmd: &SubCommand) -> Result<(), ShardError<SendError>> {
        match cmd {
            SubCommand::Bcast { .. } => {
                let shards = &self.shards;
                self.router
                    .admit_all(|shard| shards[shard].broadcaster().check_send(cmd))?;
                self.try_send_all(cmd)
            }
            other => self.try_on_conn(other.conn(), |b| b.try_send(other), Some(other)),
        }
    }

    /// [`AsyncShardedBroadcaster::on_connect`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_connect(3, false).unwrap();
    /// assert_eq!(b.conns_of(1), vec![3]);
    /// # }
    /// ```
    pub fn try_on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), ShardError<SendError>> {
        self.try_send(&new_cmd(conn, whitelisted))
    }

    /// [`AsyncShardedBroadcaster::on_disconnect`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_connect(3, false).unwrap();
    /// b.try_on_disconnect(3).unwrap();
    /// assert!(b.conns_of(1).is_empty());
    /// # }
    /// ```
    pub fn try_on_disconnect(&mut self, conn: i32) -> Result<(), ShardError<SendError>> {
        self.try_send(&close_cmd(conn))
    }

    /// [`AsyncShardedBroadcaster::on_subscribe`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_subscribe(3, "s", r#"["REQ","s",{}]"#).unwrap();
    /// # }
    /// ```
    pub fn try_on_subscribe(
        &mut self,
        conn: i32,
        sub_id: &str,
        req: impl Into<Bytes>,
    ) -> Result<(), ShardError<SendError>> {
        self.try_on_conn(conn, |b| b.try_on_subscribe(conn, sub_id, req), None)
    }

    /// [`AsyncShardedBroadcaster::on_unsubscribe`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_unsubscribe(3, "s").unwrap();
    /// # }
    /// ```
    pub fn try_on_unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), ShardError<SendError>> {
        self.try_on_conn(conn, |b| b.try_on_unsubscribe(conn, sub_id), None)
    }

    /// [`AsyncShardedBroadcaster::on_auth`] without waiting.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_auth(3, [7; 32]).unwrap();
    /// # }
    /// ```
    pub fn try_on_auth(&mut self, conn: i32, pubkey: [u8; PUBKEY_LEN]) -> Result<(), ShardError<SendError>> {
        self.try_on_conn(conn, |b| b.try_on_auth(conn, pubkey), None)
    }

    /// [`AsyncShardedBroadcaster::fanout`] without waiting: if any live
    /// shard's queue is full it is [`SendError::Backpressure`] naming that
    /// shard, and the event is queued on no shard.
    ///
    /// ```
    /// use broadcast_wire::BcastFlags;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_fanout(r#"["EVENT",{}]"#, -1, BcastFlags::EMPTY).unwrap();
    /// # }
    /// ```
    pub fn try_fanout(
        &mut self,
        event_msg: impl Into<Bytes>,
        sender: i32,
        flags: BcastFlags,
    ) -> Result<(), ShardError<SendError>> {
        self.try_send(&bcast_cmd(event_msg, sender, flags))
    }

    /// Queues an admitted Bcast on every live shard.
    fn try_send_all(&mut self, cmd: &SubCommand) -> Result<(), ShardError<SendError>> {
        for shard in self.router.live_shards() {
            // Cannot fail: every live shard just said it would take it, and
            // nothing was queued since. Reported all the same if it does.
            self.shards[shard]
                .try_send(cmd)
                .map_err(|error| ShardError { shard, error })?;
        }
        Ok(())
    }

    fn try_on_conn(
        &mut self,
        conn: i32,
        send: impl FnOnce(&mut AsyncBroadcaster) -> Result<(), SendError>,
        record: Option<&SubCommand>,
    ) -> Result<(), ShardError<SendError>> {
        let shard = self.router.shard_for_conn(conn)?;
        let outcome = send(&mut self.shards[shard]);
        self.router
            .settle(shard, record, outcome, |e| *e == SendError::WorkerGone)
    }

    // ---- writing ------------------------------------------------------------

    /// Writes every live shard's queue out, waiting for the workers to take
    /// it (see [`AsyncBroadcaster::flush`]). Every shard is flushed even if
    /// one fails; the first error is returned, and a shard found dead
    /// ([`FlushError::WorkerGone`]) is marked down.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// for conn in 0..1000 {
    ///     b.try_on_connect(conn, false).unwrap();
    /// }
    /// b.flush().await.unwrap();
    /// assert_eq!(b.queued_bytes(), 0);
    /// # }
    /// ```
    pub async fn flush(&mut self) -> Result<(), ShardError<FlushError>> {
        let mut first_error = None;
        for shard in 0..self.shards.len() {
            if self.router.state(shard) != Some(ShardState::Live) {
                continue;
            }
            if let Err(error) = self.shards[shard].flush().await {
                if matches!(error, FlushError::WorkerGone { .. }) {
                    self.router.mark_down(shard);
                }
                first_error.get_or_insert(ShardError { shard, error });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Bytes queued on all shards and not yet written.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_fanout("[1]", -1, Default::default()).unwrap();
    /// assert_eq!(b.queued_bytes(), 2 * (5 + 14 + 3));
    /// # }
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.broadcaster().queued_bytes()).sum()
    }

    /// Ends every live shard's command stream (see
    /// [`AsyncBroadcaster::close_write`]): all or none, refused (naming a
    /// shard with commands queued) unless every queue is empty. The
    /// workers then exit, and `recv` reports each.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.try_on_connect(1, false).unwrap();
    /// assert_eq!(b.close_write().unwrap_err().shard, 1);
    /// b.flush().await.unwrap();
    /// b.close_write().unwrap();
    /// # }
    /// ```
    pub fn close_write(&mut self) -> Result<(), ShardError<Unflushed>> {
        let live: Vec<usize> = self.router.live_shards().collect();
        if let Some(&shard) = live
            .iter()
            .find(|&&s| self.shards[s].broadcaster().queued_bytes() > 0)
        {
            return Err(ShardError {
                shard,
                error: Unflushed {
                    queued_bytes: self.shards[shard].broadcaster().queued_bytes(),
                },
            });
        }
        for shard in live {
            self.shards[shard]
                .close_write()
                .map_err(|error| ShardError { shard, error })?;
        }
        Ok(())
    }

    // ---- reading ------------------------------------------------------------

    /// The next item of any shard: a [`ShardedIncoming::Frame`] or
    /// [`ShardedIncoming::InvalidFrame`] naming its shard, or a shard's end
    /// ([`ShardedIncoming::ShardExited`], once per shard, after all its
    /// frames, with the conns it owned). It waits rather than return
    /// [`ShardedIncoming::Pending`], except once every shard has been
    /// reported exited: then nothing more can come, and it returns
    /// `Pending` at once rather than hang.
    ///
    /// Fair: each call polls the shards starting after the one that gave
    /// the last item, so a busy shard cannot starve the others. While it
    /// waits it writes every shard's queued commands. A read error (framing
    /// or I/O) is returned once, naming the shard; that worker is then
    /// killed (its stream cannot be trusted) and the next call reports it
    /// exited.
    ///
    /// Cancellation safe: if the future is dropped before it completes, no
    /// item was taken.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let k = std::num::NonZeroUsize::new(2).unwrap();
    /// let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("true"), Transport::Stdio, &Options::new()).unwrap();
    /// let mut exited = Vec::new();
    /// while exited.len() < 2 {
    ///     let ShardedIncoming::ShardExited(exit) = b.recv().await.unwrap() else { panic!() };
    ///     exited.push(exit.shard);
    /// }
    /// exited.sort();
    /// assert_eq!(exited, [0, 1]);
    /// assert_eq!(b.recv().await.unwrap(), ShardedIncoming::Pending);
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<ShardedIncoming, ShardError<ReadError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](AsyncShardedBroadcaster::recv): `Pending`
    /// registers `cx`'s waker with every shard not yet reported exited.
    ///
    /// ```
    /// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::future::poll_fn;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let k = std::num::NonZeroUsize::new(1).unwrap();
    /// let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("true"), Transport::Stdio, &Options::new()).unwrap();
    /// let got = poll_fn(|cx| b.poll_recv(cx)).await.unwrap();
    /// assert!(matches!(got, ShardedIncoming::ShardExited(e) if e.shard == 0));
    /// # }
    /// ```
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ShardedIncoming, ShardError<ReadError>>> {
        let k = self.shards.len();
        let mut waiting = false;
        for step in 0..k {
            let shard = (self.next + step) % k;
            if self.router.state(shard) == Some(ShardState::Retired) {
                continue;
            }
            if self.failed[shard] {
                self.next = (shard + 1) % k;
                let status = self.shards[shard].inner.exit_status();
                let exit = ShardExit::retire(&mut self.router, shard, status);
                return Poll::Ready(Ok(ShardedIncoming::ShardExited(exit)));
            }
            let incoming = match self.shards[shard].poll_recv(cx) {
                Poll::Pending => {
                    waiting = true;
                    continue;
                }
                Poll::Ready(Ok(incoming)) => incoming,
                Poll::Ready(Err(error)) => {
                    self.failed[shard] = true;
                    self.router.mark_down(shard);
                    // Already dead if this fails; the exit report says so.
                    let _ = self.shards[shard].kill();
                    self.next = shard;
                    return Poll::Ready(Err(ShardError { shard, error }));
                }
            };
            let b = &mut self.shards[shard];
            let status_now = || b.inner.exit_status();
            let Some(item) = ShardedIncoming::from_shard(&mut self.router, shard, incoming, status_now)
            else {
                // The shard's `recv` waits rather than say Pending; treated
                // as "nothing yet" all the same.
                waiting = true;
                continue;
            };
            self.next = (shard + 1) % k;
            return Poll::Ready(Ok(item));
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(Ok(ShardedIncoming::Pending)) // every shard retired
        }
    }

    // ---- the processes ------------------------------------------------------

    /// Each shard's worker pid, by shard index.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// assert!(b.pids().iter().all(|p| p.is_some()));
    /// # }
    /// ```
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.shards.iter().map(AsyncBroadcaster::pid).collect()
    }

    /// Waits up to `timeout` for shard `shard`'s worker to exit, and reaps
    /// it, without blocking the runtime (see
    /// [`AsyncBroadcaster::wait_exit`]): for a [`ShardExit`] reported with
    /// no status yet. `None` if it is still running, or for a bad index.
    ///
    /// ```
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let k = std::num::NonZeroUsize::new(2).unwrap();
    /// let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("true"), Transport::Stdio, &Options::new()).unwrap();
    /// assert!(b.wait_exit(1, Duration::from_secs(10)).await.unwrap().success());
    /// assert_eq!(b.wait_exit(2, Duration::ZERO).await, None);
    /// # }
    /// ```
    pub async fn wait_exit(&mut self, shard: usize, timeout: Duration) -> Option<ExitStatus> {
        self.shards.get_mut(shard)?.wait_exit(timeout).await
    }

    /// Kills shard `shard`'s worker now (`SIGKILL`); its end is then
    /// reported by [`recv`](AsyncShardedBroadcaster::recv) like any other.
    /// A bad index is an `InvalidInput` error.
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("cat"), Transport::Stdio, &Options::new()).unwrap();
    /// b.on_connect(3, false).await.unwrap();
    /// b.flush().await.unwrap();
    /// b.kill_shard(1).unwrap();
    /// let ShardedIncoming::ShardExited(exit) = b.recv().await.unwrap() else { panic!() };
    /// assert_eq!((exit.shard, exit.conns), (1, vec![3]));
    /// assert!(b.kill_shard(2).is_err());
    /// # }
    /// ```
    pub fn kill_shard(&mut self, shard: usize) -> io::Result<()> {
        match self.shards.get_mut(shard) {
            Some(b) => b.kill(),
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "no such shard")),
        }
    }
}

fn new_cmd(conn: i32, whitelisted: bool) -> SubCommand {
    SubCommand::New {
        conn,
        flags: if whitelisted {
            NewFlags::WHITELISTED
        } else {
            NewFlags::EMPTY
        },
    }
}

fn close_cmd(conn: i32) -> SubCommand {
    SubCommand::Close {
        conn,
        flags: ReservedFlags::EMPTY,
    }
}

fn bcast_cmd(event_msg: impl Into<Bytes>, sender: i32, flags: BcastFlags) -> SubCommand {
    SubCommand::Bcast {
        sender,
        flags,
        event: event_msg.into(),
    }
}

/// A refusal of the router or the admission check, as the awaited methods
/// report it.
fn refused(e: ShardError<SendError>) -> ShardError<QueueError> {
    ShardError {
        shard: e.shard,
        error: QueueError::Refused(e.error),
    }
}

fn queue_error_is_gone(e: &QueueError) -> bool {
    matches!(e, QueueError::Refused(SendError::WorkerGone))
}
