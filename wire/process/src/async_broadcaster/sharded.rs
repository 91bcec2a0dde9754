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
//! - **Supervised** ([`AsyncShardedBroadcaster::spawn_supervised`]) —
//!   as the blocking handle's: each shard is replaced on its own, only its
//!   state replayed, reported as [`ShardedIncoming::ShardRestarted`]; a
//!   shard waiting for its replacement stays live (its commands wait in its
//!   backlog), one whose supervisor gave up is down
//!   ([`SendError::SupervisionGaveUp`]) and then reported exited. `recv`
//!   also wakes at each shard's deadlines by itself.
//! - **Drop** — every shard's [`AsyncBroadcaster`] is dropped, each reaping
//!   its worker on its own background thread (so the grace periods run
//!   side by side), without blocking the runtime.
//!
//! # Example
//!
//! Two shards of a stand-in worker, `cat`, which echoes the commands back
//! on channel 1 (skipped by the parent) and ends when its input does:
//!
//! ```
//! use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
//! use broadcast_process::broadcaster::sharded::ShardedIncoming;
//! use broadcast_process::broadcaster::{Options, Transport};
//! use broadcast_wire::BcastFlags;
//! use std::num::NonZeroUsize;
//! use std::process::Command;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let k = NonZeroUsize::new(2).unwrap();
//! let mut b = AsyncShardedBroadcaster::spawn(k, |_| Command::new("cat"), Transport::Stdio, &Options::new())?;
//! b.on_connect(10, false).await?; // shard 0
//! b.on_connect(11, false).await?; // shard 1
//! b.fanout(r#"["EVENT",{}]"#, -1, BcastFlags::EMPTY).await?; // both, or neither
//! assert_eq!(b.conns_of(1), vec![11]);
//!
//! // End the command streams: each worker exits, and recv reports it.
//! b.flush().await?;
//! b.close_write()?;
//! let mut exited = Vec::new();
//! while exited.len() < 2 {
//!     match b.recv().await? {
//!         ShardedIncoming::ShardExited(exit) => exited.push((exit.shard, exit.conns)),
//!         other => panic!("cat writes no frames: {other:?}"),
//!     }
//! }
//! exited.sort();
//! assert_eq!(exited, [(0, vec![10]), (1, vec![11])]);
//! # Ok(())
//! # }
//! ```

use std::future::poll_fn;
use std::io;
use std::num::NonZeroUsize;
use std::process::{Command, ExitStatus};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use broadcast_wire::{ReadError, SubCommand};

use crate::broadcaster::sharded::{
    ShardError, ShardReads, ShardRouter, ShardState, ShardedIncoming, SharedFactory, Turn, gone,
};
use crate::broadcaster::{FlushError, Incoming, Options, SendError, SpawnError, Transport, Unflushed};
use crate::commands::relay_commands;
use crate::link::{Phase, Supervision};

use super::{AsyncBroadcaster, QueueError};

/// The parent's handle on K broadcast workers, for tokio: see the [module
/// docs](self). Create it inside a tokio runtime with I/O enabled.
///
/// ```no_run
/// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
/// use broadcast_process::broadcaster::{Options, Transport};
/// use std::num::NonZeroUsize;
/// use std::process::Command;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let k = NonZeroUsize::new(4).unwrap();
/// let mut b = AsyncShardedBroadcaster::spawn(k, |_| Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
/// b.on_connect(7, false).await?; // queued on shard 7 % 4 = 3
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncShardedBroadcaster {
    router: ShardRouter,
    shards: Vec<AsyncBroadcaster>,
}

impl AsyncShardedBroadcaster {
    /// Spawns `shards` workers, shard `i` running `command(i)`, all over
    /// `transport` with `opts` (each shard has its own queue of
    /// [`Options::max_queued_bytes`]). If one fails to start, those already
    /// started are dropped (and so reaped) and the error names the shard.
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::num::NonZeroUsize;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let k = NonZeroUsize::new(4).unwrap();
    /// let worker = |_shard| Command::new("broadcast-worker");
    /// match AsyncShardedBroadcaster::spawn(k, worker, Transport::SocketPair, &Options::new()) {
    ///     Ok(_b) => {} // drive it
    ///     Err(e) => eprintln!("shard {} did not start: {}", e.shard, e.error),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn(
        shards: NonZeroUsize,
        mut command: impl FnMut(usize) -> Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<AsyncShardedBroadcaster, ShardError<SpawnError>> {
        let (router, shards) = ShardRouter::spawn_each(shards, |i| {
            AsyncBroadcaster::spawn_with(command(i), transport, opts)
        })?;
        Ok(AsyncShardedBroadcaster { router, shards })
    }

    /// Spawns `shards` **supervised** workers, shard `i` building each of
    /// its workers with `factory(i)` (see
    /// [`ShardedBroadcaster::spawn_supervised`](crate::broadcaster::sharded::ShardedBroadcaster::spawn_supervised)
    /// for what that means per shard, and
    /// [`AsyncBroadcaster::spawn_supervised`] for the tokio side: each
    /// replacement's fds are registered, and `recv` wakes at each shard's
    /// deadlines).
    ///
    /// ```no_run
    /// use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use broadcast_process::link::Supervision;
    /// use std::num::NonZeroUsize;
    /// use std::process::Command;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let k = NonZeroUsize::new(2).unwrap();
    /// let factory = |_shard| Command::new("broadcast-worker");
    /// let mut b = AsyncShardedBroadcaster::spawn_supervised(k, factory, Transport::Stdio, &Options::new(), Supervision::new())?;
    /// b.on_connect(3, false).await?; // shard 1
    /// if let ShardedIncoming::ShardRestarted { shard, restart } = b.recv().await? {
    ///     eprintln!("shard {shard}: {restart}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn spawn_supervised(
        shards: NonZeroUsize,
        factory: impl FnMut(usize) -> Command + Send + Sync + 'static,
        transport: Transport,
        opts: &Options,
        supervision: Supervision,
    ) -> Result<AsyncShardedBroadcaster, ShardError<SpawnError>> {
        let factory = SharedFactory::new(factory);
        let (router, shards) = ShardRouter::spawn_each(shards, |i| {
            AsyncBroadcaster::spawn_supervised(factory.for_shard(i), transport, opts, supervision)
        })?;
        Ok(AsyncShardedBroadcaster { router, shards })
    }

    /// The earliest of the supervised shards' deadlines (see
    /// [`AsyncBroadcaster::next_deadline`]); `recv` wakes at it by itself.
    /// `None` unsupervised.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let wake_at = b.next_deadline(); // None: not supervised
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        (0..self.shards.len())
            .filter(|&s| self.router.state(s) != Some(ShardState::Retired))
            .filter_map(|s| self.shards[s].next_deadline())
            .min()
    }

    /// Marks down every shard whose supervisor gave up (see the blocking
    /// handle's).
    fn note_gave_up(&mut self) {
        for (shard, b) in self.shards.iter().enumerate() {
            if b.supervisor().is_some_and(|s| s.phase() == Phase::GaveUp) {
                self.router.give_up(shard);
            }
        }
    }

    // ---- routing ----------------------------------------------------------

    /// K, the number of shards.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let k = b.shard_count(); // 2
    /// # Ok(())
    /// # }
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard that owns `conn` ([`ShardRouter::shard_of`]).
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let shard = b.shard_of(17); // 17 % 2 = 1
    /// # Ok(())
    /// # }
    /// ```
    pub fn shard_of(&self, conn: i32) -> usize {
        self.router.shard_of(conn)
    }

    /// The routing state: which shards are live, which conns each owns.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardState;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// let live = (0..b.shard_count()).filter(|&s| b.router().state(s) == Some(ShardState::Live)).count();
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(&self) -> &ShardRouter {
        &self.router
    }

    /// The connections `shard` owns (opened and not closed), ascending.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.try_on_connect(8, false)?;
    /// b.try_on_connect(4, false)?;
    /// let conns = b.conns_of(0); // [4, 8]
    /// # Ok(())
    /// # }
    /// ```
    pub fn conns_of(&self, shard: usize) -> Vec<i32> {
        self.router.conns(shard).collect()
    }

    /// Shard `shard`'s own handle, to inspect it (queue, pid, stderr through
    /// [`AsyncBroadcaster::link`]); `None` for a bad index. Commands
    /// go through the sharded handle, so that routing and bookkeeping stay
    /// right.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// if let Some(shard) = b.shard(1) {
    ///     println!("shard 1: pid {:?}, {} bytes queued", shard.pid(), shard.link().queued_bytes());
    /// }
    /// # Ok(())
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
    /// ```no_run
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// b.send(&SubCommand::New { conn: 6, flags: NewFlags::EMPTY }).await?; // to shard 0
    /// if let Err(e) = b.send(&SubCommand::New { conn: -1, flags: NewFlags::EMPTY }).await {
    ///     // Refused (SendError::Invalid), naming the shard; queued nowhere.
    ///     eprintln!("shard {}: {}", e.shard, e.error);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(&mut self, cmd: &SubCommand) -> Result<(), ShardError<QueueError>> {
        self.note_gave_up();
        if let SubCommand::Bcast { .. } = cmd {
            return poll_fn(|cx| self.poll_queue_all(cx, cmd)).await;
        }
        let shard = self
            .router
            .shard_for_conn(cmd.conn())
            .map_err(|e| self.router.refused(e.shard, e.error))?;
        let outcome = self.shards[shard].send(cmd).await;
        self.router.settle(
            shard,
            Some(cmd),
            outcome,
            |e| matches!(e, QueueError::Refused(e) if gone(e)),
        )
    }

    fn refuse_waiting(&self, conn: i32, error: SendError) -> ShardError<QueueError> {
        self.router.refused(self.router.shard_of(conn), error)
    }

    relay_commands! {
        send: send,
        refuse: Self::refuse_waiting,
        error: ShardError<QueueError>,
        names: [on_connect, on_disconnect, on_subscribe, on_unsubscribe, on_auth, fanout],
        asyncness: (async, await),
        setup: "# #[tokio::main(flavor = \"current_thread\")]\n# async fn main() {\n# use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;\n# use broadcast_process::broadcaster::{Options, Transport};\n# let k = std::num::NonZeroUsize::new(2).unwrap();\n# let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new(\"broadcast-worker\"), Transport::Stdio, &Options::new()).unwrap();",
        call: ".await.unwrap()",
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
            let full = match self.try_send(cmd) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(ShardError {
                    shard,
                    error: SendError::Backpressure(_),
                }) => shard,
                Err(e) => return Poll::Ready(Err(self.router.refused(e.shard, e.error))),
            };
            // Room on a shard only grows while we wait (nothing else is
            // queued: we hold `&mut self`), so once the full one has room,
            // the next round admits it or finds the next full one.
            match self.shards[full].poll_queue(cx, &mut |link| link.check_send(cmd)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(QueueError::Refused(SendError::WorkerGone))) => self.router.mark_down(full),
                Poll::Ready(Err(QueueError::Refused(SendError::SupervisionGaveUp))) => {
                    self.router.give_up(full)
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(ShardError { shard: full, error })),
            }
        }
    }

    // ---- commands, without waiting ------------------------------------------

    /// [`AsyncShardedBroadcaster::send`] without waiting: a full queue is
    /// [`SendError::Backpressure`] at once, naming the shard, and `cmd` is
    /// queued nowhere (a Bcast is checked against every live shard first).
    ///
    /// ```no_run
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// b.try_send(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY })?; // queued on shard 1, or refused at once
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_send(&mut self, cmd: &SubCommand) -> Result<(), ShardError<SendError>> {
        self.note_gave_up();
        if let SubCommand::Bcast { .. } = cmd {
            return self
                .router
                .send_all(&mut self.shards, |b| b.check_send(cmd), |b| b.try_send(cmd));
        }
        let shards = &mut self.shards;
        self.router.send_on_conn(cmd, |s| shards[s].try_send(cmd), gone)
    }

    fn refuse_now(&self, conn: i32, error: SendError) -> ShardError<SendError> {
        self.router.refused(self.router.shard_of(conn), error)
    }

    relay_commands! {
        send: try_send,
        refuse: Self::refuse_now,
        error: ShardError<SendError>,
        names: [try_on_connect, try_on_disconnect, try_on_subscribe, try_on_unsubscribe, try_on_auth, try_fanout],
        setup: "# fn main() {\n# let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();\n# let _guard = rt.enter();\n# use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;\n# use broadcast_process::broadcaster::{Options, Transport};\n# let k = std::num::NonZeroUsize::new(2).unwrap();\n# let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new(\"broadcast-worker\"), Transport::Stdio, &Options::new()).unwrap();",
        call: ".unwrap()",
    }

    // ---- writing ------------------------------------------------------------

    /// Writes every live shard's queue out, waiting for the workers to take
    /// it (see [`AsyncBroadcaster::flush`]). The shards are written side by
    /// side, not one after the other, so a slow shard holds up no other and
    /// a future dropped early has written what every fd took. Every shard
    /// is flushed even if one fails; the first error is returned, and a
    /// shard found dead ([`FlushError::WorkerGone`]) is marked down.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// for conn in 0..1000 {
    ///     b.try_on_connect(conn, false)?;
    /// }
    /// b.flush().await?; // every shard's queue written
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&mut self) -> Result<(), ShardError<FlushError>> {
        self.note_gave_up();
        let mut first_error = None;
        let mut done = vec![false; self.shards.len()];
        poll_fn(|cx| {
            let mut waiting = false;
            for (shard, done) in done.iter_mut().enumerate() {
                if *done || self.router.state(shard) != Some(ShardState::Live) {
                    continue;
                }
                match self.shards[shard].poll_flush(cx) {
                    Poll::Pending => waiting = true,
                    Poll::Ready(outcome) => {
                        *done = true;
                        self.router.settle_flush(shard, outcome, &mut first_error);
                    }
                }
            }
            if waiting { Poll::Pending } else { Poll::Ready(()) }
        })
        .await;
        first_error.map_or(Ok(()), Err)
    }

    /// Bytes queued on all shards and not yet written.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.try_fanout("[1]", -1, Default::default())?;
    /// let bytes = b.queued_bytes(); // 2 * (5 + 14 + 3): one Bcast frame on each shard
    /// # Ok(())
    /// # }
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.link().queued_bytes()).sum()
    }

    /// Ends every live shard's command stream (see
    /// [`AsyncBroadcaster::close_write`]): all or none, refused (naming a
    /// shard with commands queued) unless every queue is empty. The
    /// workers then exit, and `recv` reports each.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.try_on_connect(1, false)?;
    /// b.flush().await?; // close_write refuses while a shard has commands queued
    /// b.close_write()?;
    /// // Each worker reads end-of-file and exits; recv reports each one's end.
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_write(&mut self) -> Result<(), ShardError<Unflushed>> {
        let shards = &mut self.shards;
        // Supervised, a shard's backlog counts too.
        let queued: Vec<usize> = shards.iter().map(|s| s.end.pending_bytes()).collect();
        self.router.close_live(|s| queued[s], |s| shards[s].close_write())
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
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// loop {
    ///     match b.recv().await? {
    ///         ShardedIncoming::Frame { shard, frame } => println!("shard {shard}: conn {}", frame.conn),
    ///         ShardedIncoming::InvalidFrame { shard, error } => eprintln!("shard {shard}: {error}"),
    ///         ShardedIncoming::ShardExited(exit) => eprintln!("shard {} gone; close {:?}", exit.shard, exit.conns),
    ///         ShardedIncoming::ShardRestarted { shard, restart } => eprintln!("shard {shard}: {restart}"), // supervised only
    ///         ShardedIncoming::Pending => break, // every shard has ended
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Result<ShardedIncoming, ShardError<ReadError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](AsyncShardedBroadcaster::recv): `Pending`
    /// registers `cx`'s waker with every shard not yet reported exited.
    ///
    /// ```no_run
    /// use std::future::poll_fn;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// let item = poll_fn(|cx| b.poll_recv(cx)).await?; // as b.recv().await
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ShardedIncoming, ShardError<ReadError>>> {
        self.note_gave_up();
        let mut io = Polling {
            shards: &mut self.shards,
            cx,
        };
        // Every shard is polled, none skipped: each must register the waker.
        match self.router.next_turn(&mut io, false) {
            Turn::Item(item) => Poll::Ready(item),
            Turn::Nothing => Poll::Pending,
            Turn::AllRetired => Poll::Ready(Ok(ShardedIncoming::Pending)),
        }
    }

    // ---- the processes ------------------------------------------------------

    /// Each shard's worker pid, by shard index.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// for (shard, pid) in b.pids().into_iter().enumerate() {
    ///     println!("shard {shard}: worker {pid:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.shards.iter().map(AsyncBroadcaster::pid).collect()
    }

    /// Waits up to `timeout` for shard `shard`'s worker to exit, and reaps
    /// it, without blocking the runtime (see
    /// [`AsyncBroadcaster::wait_exit`]): for a [`ShardExit`](crate::broadcaster::sharded::ShardExit) reported with
    /// no status yet. `None` if it is still running, or for a bad index.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// use std::time::Duration;
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// if let ShardedIncoming::ShardExited(exit) = b.recv().await? {
    ///     let status = match exit.status {
    ///         Some(status) => Some(status),
    ///         None => b.wait_exit(exit.shard, Duration::from_secs(1)).await,
    ///     };
    ///     eprintln!("shard {} ended: {status:?}", exit.shard);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_exit(&mut self, shard: usize, timeout: Duration) -> Option<ExitStatus> {
        self.shards.get_mut(shard)?.wait_exit(timeout).await
    }

    /// Kills shard `shard`'s worker now (`SIGKILL`); its end is then
    /// reported by [`recv`](AsyncShardedBroadcaster::recv) like any other
    /// (a supervised shard's worker is replaced instead, and reported as
    /// [`ShardedIncoming::ShardRestarted`]). A bad index is an
    /// `InvalidInput` error.
    ///
    /// ```no_run
    /// # use broadcast_process::async_broadcaster::AsyncShardedBroadcaster;
    /// # use broadcast_process::broadcaster::{Options, Transport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = AsyncShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.kill_shard(1)?;
    /// // b.recv() reports it as ShardedIncoming::ShardExited, with its conns.
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill_shard(&mut self, shard: usize) -> io::Result<()> {
        self.shards
            .get_mut(shard)
            .ok_or_else(crate::broadcaster::sharded::no_such_shard)?
            .kill()
    }
}

/// The fair read's polls ([`ShardRouter`]'s turns) with the task's context.
struct Polling<'a, 'b> {
    shards: &'a mut [AsyncBroadcaster],
    cx: &'a mut Context<'b>,
}

impl ShardReads for Polling<'_, '_> {
    fn read(&mut self, shard: usize) -> Poll<Result<Incoming, ReadError>> {
        self.shards[shard].poll_recv(self.cx)
    }

    fn has_buffered(&self, shard: usize) -> bool {
        self.shards[shard].has_buffered()
    }

    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        self.shards[shard].exit_status()
    }

    fn kill(&mut self, shard: usize) {
        // Already dead if this fails; the exit report says so.
        let _ = self.shards[shard].kill();
    }
}
