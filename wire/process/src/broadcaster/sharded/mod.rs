//! One parent, K worker processes: a [`ShardedBroadcaster`] spreads the
//! connections over K [`Broadcaster`]s so that matching and frame building
//! use K cores.
//!
//! - **Routing** — every connection-scoped command (New, Close, Add,
//!   Remove, Auth) goes to the shard that owns its conn,
//!   `conn as u32 % K` ([`ShardRouter::shard_of`]); a Bcast goes to every
//!   shard.
//! - **Ordering** — per connection, exactly what one worker gives
//!   (PROTOCOL.md#ordering): a conn's commands all reach one shard in the
//!   order they were sent, and each shard gets the Bcasts in order,
//!   interleaved with its conn commands as they were sent. Frames of two
//!   different connections on two shards have no order between them (nor
//!   need they: each goes to its own socket). A probe (PROTOCOL.md#probe)
//!   must therefore go to every shard: one probe conn per shard.
//! - **All or none** — a Bcast is checked against every shard's queue
//!   ([`Broadcaster::check_send`]) before it is queued on any, so
//!   [`SendError::Backpressure`] never leaves an event on some shards only.
//! - **One reader** — [`ShardedBroadcaster::read_frame`] returns the frames
//!   of all shards, round-robin (one item per shard in turn, so a busy
//!   shard cannot starve the others), each tagged with its shard. Poll
//!   [`read_fds`](ShardedBroadcaster::read_fds) for readability and
//!   [`write_fds`](ShardedBroadcaster::write_fds) for writability.
//! - **A shard that dies** — is reported once, as
//!   [`ShardedIncoming::ShardExited`], with its exit status and the
//!   connections it owned (New adds a conn to its shard, Close removes
//!   it), after every frame it wrote before dying. From then on commands
//!   for its connections are refused with [`SendError::WorkerGone`] (in a
//!   [`ShardError`] naming the shard), and Bcasts go to the other shards.
//! - **Supervised** ([`ShardedBroadcaster::spawn_supervised`]) — each
//!   shard is a supervised worker of its own: a dead one is replaced and
//!   only its conns, auths and subscriptions are replayed (its own mirror
//!   holds exactly those), reported as [`ShardedIncoming::ShardRestarted`];
//!   the other shards are not touched. While a shard waits for its
//!   replacement it stays live: its commands, and its copy of each Bcast,
//!   wait in its backlog. Only a shard whose supervisor gave up is down
//!   (its conns' commands refused with [`SendError::SupervisionGaveUp`])
//!   and then reported exited, with its conns.
//!
//! The rules live in [`ShardRouter`], which does no I/O; this handle is the
//! router plus one blocking [`Broadcaster`] per shard. The tokio handle,
//! `async_broadcaster::AsyncShardedBroadcaster` (feature `tokio`), is the
//! same router plus one `AsyncBroadcaster` per shard, with the same
//! guarantees (and `async` waiting where this one says `Backpressure`).
//!
//! # When it pays
//!
//! Every shard reads and parses every event; only the subscriptions, the
//! matching and the frames are split. So the CPU per event grows with K,
//! and sharding raises throughput only with a free core per shard plus one
//! for the parent, and more so the more frames each event causes. On a
//! loaded 2-core machine K = 2 measured slower than K = 1. The figures and
//! the sizing arithmetic are in `docs/SCALING.md` and `docs/PERFORMANCE.md`
//! of the repository.
//!
//! # Configuration
//!
//! [`ShardedBroadcaster::spawn`] takes K, a function from the shard index
//! to the worker's [`Command`], the [`Transport`] and one [`Options`] used
//! for every shard (so each shard has its own queue of
//! [`Options::max_queued_bytes`], and the parent buffers up to K times
//! that).
//!
//! # Example
//!
//! Two shards of `cat`, which echoes commands back on channel 1 (skipped
//! by the parent):
//!
//! ```
//! use broadcast_process::broadcaster::sharded::{ShardedBroadcaster, ShardedIncoming};
//! use broadcast_process::broadcaster::{Options, Transport};
//! use broadcast_wire::BcastFlags;
//! use std::num::NonZeroUsize;
//! use std::process::Command;
//! use std::time::Duration;
//!
//! let k = NonZeroUsize::new(2).unwrap();
//! let mut b = ShardedBroadcaster::spawn(k, |_| Command::new("cat"), Transport::Stdio, &Options::new())?;
//! b.on_connect(10, false)?; // shard 0
//! b.on_connect(11, false)?; // shard 1
//! b.fanout(r#"["EVENT",{}]"#, -1, BcastFlags::EMPTY)?; // both
//! b.flush_blocking()?;
//! assert_eq!(b.conns_of(1), vec![11]);
//! assert_eq!(b.read_frame_timeout(Duration::from_millis(10))?, ShardedIncoming::Pending);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use broadcast_wire::{BroadcastFrame, PayloadError, ReadError, SubCommand};

use crate::commands::relay_commands;
use crate::link::{Phase, Restart, Supervision};

use super::{
    Broadcaster, FlushError, FlushStatus, Incoming, Options, SendError, SpawnError, Transport, Unflushed,
    wait_fds,
};

mod router;
mod turns;

pub(crate) use router::no_such_shard;
pub use router::{Route, ShardError, ShardRouter, ShardState};
pub(crate) use turns::{ShardReads, Turn};

/// The end of a shard, as [`ShardedBroadcaster::read_frame`] (and the tokio
/// handle's `recv`) reports it.
///
/// ```
/// use broadcast_process::broadcaster::sharded::ShardExit;
///
/// let exit = ShardExit { shard: 1, status: None, conns: vec![3, 5] };
/// assert_eq!(exit.conns.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardExit {
    /// The shard's index.
    pub shard: usize,
    /// Its worker's exit status, once reaped: `None` while it is still
    /// exiting (ask [`ShardedBroadcaster::exit_status`], or the tokio
    /// handle's `wait_exit`, later) or when the handle has no child.
    pub status: Option<ExitStatus>,
    /// The connections it owned (ascending): they get no more frames. The
    /// relay decides what to do with them (close them, typically).
    pub conns: Vec<i32>,
}

/// One factory of worker `Command`s shared by the supervised shards: shard
/// `i` builds each of its workers with `factory(i)`.
pub(crate) struct SharedFactory<F>(Arc<Mutex<F>>);

impl<F: FnMut(usize) -> Command + Send + 'static> SharedFactory<F> {
    pub(crate) fn new(factory: F) -> SharedFactory<F> {
        SharedFactory(Arc::new(Mutex::new(factory)))
    }

    /// The factory of shard `shard`'s workers.
    pub(crate) fn for_shard(&self, shard: usize) -> impl FnMut() -> Command + Send + Sync + 'static {
        let factory = Arc::clone(&self.0);
        move || (factory.lock().unwrap_or_else(PoisonError::into_inner))(shard)
    }
}

/// Whether a refusal means the shard takes no more commands.
pub(crate) fn gone(e: &SendError) -> bool {
    matches!(e, SendError::WorkerGone | SendError::SupervisionGaveUp)
}

impl ShardExit {
    /// Retires `shard` in `router` and reports its end, with the conns it
    /// owned: the one place either sharded handle builds a `ShardExit`.
    pub(crate) fn retire(router: &mut ShardRouter, shard: usize, status: Option<ExitStatus>) -> ShardExit {
        ShardExit {
            shard,
            status,
            conns: router.retire(shard),
        }
    }
}

/// One outcome of [`ShardedBroadcaster::read_frame`], or of the tokio
/// handle's `recv` (`async_broadcaster::AsyncShardedBroadcaster`).
///
/// ```
/// use broadcast_process::broadcaster::sharded::ShardedIncoming;
/// use broadcast_wire::BroadcastFrame;
///
/// let f = ShardedIncoming::Frame { shard: 0, frame: BroadcastFrame { conn: 4, data: "x".into() } };
/// assert!(!f.is_pending());
/// assert!(ShardedIncoming::Pending.is_pending());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardedIncoming {
    /// A frame for the parent to write to connection `frame.conn`.
    Frame {
        /// The shard that wrote it.
        shard: usize,
        /// The frame.
        frame: BroadcastFrame,
    },
    /// A channel-2 frame of `shard` whose payload does not decode (see
    /// [`Incoming::InvalidFrame`]).
    InvalidFrame {
        /// The shard that wrote it.
        shard: usize,
        /// Why it does not decode.
        error: PayloadError,
    },
    /// No shard has a complete frame: wait for a read fd.
    Pending,
    /// A supervised shard's worker was replaced (see
    /// [`ShardedBroadcaster::spawn_supervised`]): its conns, auths and
    /// subscriptions were replayed into the new one. Reported once per
    /// restart, before anything of the new worker.
    ShardRestarted {
        /// The shard whose worker was replaced.
        shard: usize,
        /// What the restart rebuilt, and why it happened.
        restart: Restart,
    },
    /// A shard's output ended (after all its frames), or it was killed
    /// after a read error. Reported once per shard.
    ShardExited(ShardExit),
}

impl ShardedIncoming {
    /// Whether this is [`ShardedIncoming::Pending`].
    ///
    /// ```
    /// assert!(broadcast_process::broadcaster::sharded::ShardedIncoming::Pending.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        matches!(self, ShardedIncoming::Pending)
    }

    /// What `incoming`, read from `shard`, is for either sharded handle:
    /// `None` for [`Incoming::Pending`]; the worker's end retires the shard
    /// in `router` ([`ShardExit::retire`]), with the status it was reported
    /// with, else `status_now()`.
    pub(crate) fn from_shard(
        router: &mut ShardRouter,
        shard: usize,
        incoming: Incoming,
        status_now: impl FnOnce() -> Option<ExitStatus>,
    ) -> Option<ShardedIncoming> {
        Some(match incoming {
            Incoming::Pending => return None,
            Incoming::WorkerRestarted(restart) => ShardedIncoming::ShardRestarted { shard, restart },
            Incoming::Frame(frame) => ShardedIncoming::Frame { shard, frame },
            Incoming::InvalidFrame(error) => ShardedIncoming::InvalidFrame { shard, error },
            Incoming::WorkerExited(status) => {
                ShardedIncoming::ShardExited(ShardExit::retire(router, shard, status.or_else(status_now)))
            }
        })
    }
}

/// The parent's handle on K broadcast workers: see the [module
/// docs](self).
///
/// ```no_run
/// use broadcast_process::broadcaster::sharded::ShardedBroadcaster;
/// use broadcast_process::broadcaster::{Options, Transport};
/// use std::num::NonZeroUsize;
/// use std::process::Command;
///
/// let k = NonZeroUsize::new(3).unwrap();
/// let mut b = ShardedBroadcaster::spawn(k, |_| Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
/// b.on_connect(7, false)?; // queued on shard 7 % 3 = 1
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ShardedBroadcaster {
    router: ShardRouter,
    shards: Vec<Broadcaster>,
}

impl ShardedBroadcaster {
    /// Spawns `shards` workers, shard `i` running `command(i)`, all over
    /// `transport` with `opts`. If one fails to start, those already
    /// started are dropped (and so reaped) and the error names the shard.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardedBroadcaster;
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use std::num::NonZeroUsize;
    /// use std::process::Command;
    ///
    /// let k = NonZeroUsize::new(4).unwrap();
    /// let worker = |_shard| Command::new("broadcast-worker");
    /// match ShardedBroadcaster::spawn(k, worker, Transport::SocketPair, &Options::new()) {
    ///     Ok(_b) => {} // drive it
    ///     Err(e) => eprintln!("shard {} did not start: {}", e.shard, e.error),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(
        shards: NonZeroUsize,
        mut command: impl FnMut(usize) -> Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<ShardedBroadcaster, ShardError<SpawnError>> {
        let (router, shards) =
            ShardRouter::spawn_each(shards, |i| Broadcaster::spawn_with(command(i), transport, opts))?;
        Ok(ShardedBroadcaster { router, shards })
    }

    /// Spawns `shards` **supervised** workers (see
    /// [`Broadcaster::spawn_supervised`]), shard `i` building each of its
    /// workers with `factory(i)`, all over `transport` with `opts` and the
    /// same `supervision` (each shard has its own backoff, crash-loop count
    /// and probe conn on its own worker).
    ///
    /// A shard whose worker dies is replaced on its own: only its conns,
    /// auths and subscriptions are replayed, the commands its worker never
    /// got are carried over, and [`ShardedBroadcaster::read_frame`]
    /// reports [`ShardedIncoming::ShardRestarted`] naming it; the other
    /// shards go on untouched. During its backoff the shard stays live:
    /// commands for its conns, and its copy of each Bcast, queue in its
    /// backlog (so a Bcast still reaches every shard exactly once). A shard
    /// whose supervisor gives up is marked down (its conns' commands are
    /// refused with [`SendError::SupervisionGaveUp`]) and is then reported
    /// as [`ShardedIncoming::ShardExited`] with its conns. An event loop
    /// also wakes at [`ShardedBroadcaster::next_deadline`].
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::{ShardedBroadcaster, ShardedIncoming};
    /// use broadcast_process::broadcaster::{Options, Transport};
    /// use broadcast_process::link::Supervision;
    /// use std::num::NonZeroUsize;
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// let k = NonZeroUsize::new(2).unwrap();
    /// let factory = |_shard| Command::new("broadcast-worker");
    /// let mut b = ShardedBroadcaster::spawn_supervised(k, factory, Transport::SocketPair, &Options::new(), Supervision::new())?;
    /// b.on_connect(3, false)?; // shard 1
    /// b.flush_blocking()?;
    /// if let ShardedIncoming::ShardRestarted { shard, restart } = b.read_frame_timeout(Duration::from_secs(1))? {
    ///     eprintln!("shard {shard}: {restart}"); // only its own conns were replayed
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_supervised(
        shards: NonZeroUsize,
        factory: impl FnMut(usize) -> Command + Send + Sync + 'static,
        transport: Transport,
        opts: &Options,
        supervision: Supervision,
    ) -> Result<ShardedBroadcaster, ShardError<SpawnError>> {
        let factory = SharedFactory::new(factory);
        let (router, shards) = ShardRouter::spawn_each(shards, |i| {
            Broadcaster::spawn_supervised(factory.for_shard(i), transport, opts, supervision)
        })?;
        Ok(ShardedBroadcaster { router, shards })
    }

    /// When a supervised shard must be called again although no fd is
    /// ready: the earliest of the shards'
    /// [`Broadcaster::next_deadline`]s; `None` unsupervised.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let wake_at = b.next_deadline(); // None: not supervised
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        (0..self.shards.len())
            .filter(|&s| self.router.state(s) != Some(ShardState::Retired))
            .filter_map(|s| self.shards[s].next_deadline())
            .min()
    }

    /// Marks down every shard whose supervisor gave up, so that routing
    /// refuses its conns' commands with `SupervisionGaveUp` and Bcasts
    /// leave it out.
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
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let k = b.shard_count(); // 2
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard that owns `conn` ([`ShardRouter::shard_of`]).
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// let shard = b.shard_of(17); // 17 % 2 = 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shard_of(&self, conn: i32) -> usize {
        self.router.shard_of(conn)
    }

    /// The routing state: which shards are live, which conns each owns.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardState;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// let live = (0..b.shard_count()).filter(|&s| b.router().state(s) == Some(ShardState::Live)).count();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn router(&self) -> &ShardRouter {
        &self.router
    }

    /// The connections `shard` owns (opened and not closed), ascending.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.on_connect(8, false)?;
    /// b.on_connect(4, false)?;
    /// let conns = b.conns_of(0); // [4, 8]
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn conns_of(&self, shard: usize) -> Vec<i32> {
        self.router.conns(shard).collect()
    }

    /// Shard `shard`'s own handle, to inspect it (queue, pid, stderr); `None`
    /// for a bad index. Commands go through the sharded handle, so that
    /// routing and bookkeeping stay right.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// if let Some(shard) = b.shard(1) {
    ///     println!("shard 1: pid {:?}, {} bytes queued", shard.pid(), shard.queued_bytes());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shard(&self, shard: usize) -> Option<&Broadcaster> {
        self.shards.get(shard)
    }

    // ---- commands ---------------------------------------------------------

    /// Validates `cmd` and queues it on its shard, or on every live shard
    /// for a Bcast (all or none: see [`ShardedBroadcaster::fanout`]). On
    /// error nothing was queued anywhere.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// b.send(&SubCommand::New { conn: 6, flags: NewFlags::EMPTY })?; // to shard 0
    /// if let Err(e) = b.send(&SubCommand::New { conn: -1, flags: NewFlags::EMPTY }) {
    ///     // Refused (SendError::Invalid), naming the shard; queued nowhere.
    ///     eprintln!("shard {}: {}", e.shard, e.error);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&mut self, cmd: &SubCommand) -> Result<(), ShardError<SendError>> {
        self.note_gave_up();
        if let SubCommand::Bcast { .. } = cmd {
            return self.send_all(cmd);
        }
        let shards = &mut self.shards;
        self.router.send_on_conn(cmd, |s| shards[s].send(cmd), gone)
    }

    fn refuse(&self, conn: i32, error: SendError) -> ShardError<SendError> {
        self.router.refused(self.router.shard_of(conn), error)
    }

    relay_commands! {
        send: send,
        refuse: Self::refuse,
        error: ShardError<SendError>,
        names: [on_connect, on_disconnect, on_subscribe, on_unsubscribe, on_auth, fanout],
        setup: "# fn main() {\n# use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};\n# let k = std::num::NonZeroUsize::new(2).unwrap();\n# let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new(\"broadcast-worker\"), Transport::Stdio, &Options::new()).unwrap();",
        call: ".unwrap()",
    }

    fn send_all(&mut self, cmd: &SubCommand) -> Result<(), ShardError<SendError>> {
        self.router
            .send_all(&mut self.shards, |b| b.check_send(cmd), |b| b.send(cmd))
    }

    // ---- writing ----------------------------------------------------------

    /// Flushes every live shard without blocking (see
    /// [`Broadcaster::flush`]): [`FlushStatus::Flushed`] once all queues
    /// are empty. Every shard is flushed even if one fails; the first error
    /// is returned, and a shard found dead ([`FlushError::WorkerGone`],
    /// with its unsent commands) is marked down.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::FlushStatus;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// b.on_connect(1, false)?;
    /// if b.flush()? == FlushStatus::WouldBlock {
    ///     // Wait until the fds of b.write_fds() are writable, and flush again.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) -> Result<FlushStatus, ShardError<FlushError>> {
        self.flush_each(Broadcaster::flush)
    }

    /// Flushes every live shard completely, one after the other, waiting as
    /// long as it takes (see [`Broadcaster::flush_blocking`]; while a shard
    /// waits it reads that shard's frames, so no worker blocked on its
    /// output can deadlock it). Errors as [`ShardedBroadcaster::flush`].
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// for conn in 0..1000 {
    ///     b.on_connect(conn, false)?;
    /// }
    /// b.flush_blocking()?; // every shard's queue written
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_blocking(&mut self) -> Result<(), ShardError<FlushError>> {
        self.flush_each(|b| b.flush_blocking().map(|()| FlushStatus::Flushed))
            .map(|_| ())
    }

    fn flush_each(
        &mut self,
        mut flush: impl FnMut(&mut Broadcaster) -> Result<FlushStatus, FlushError>,
    ) -> Result<FlushStatus, ShardError<FlushError>> {
        self.note_gave_up();
        let mut status = FlushStatus::Flushed;
        let mut first_error = None;
        for shard in 0..self.shards.len() {
            if self.router.state(shard) != Some(ShardState::Live) {
                continue;
            }
            let outcome = flush(&mut self.shards[shard]);
            if let Some(FlushStatus::WouldBlock) = self.router.settle_flush(shard, outcome, &mut first_error)
            {
                status = FlushStatus::WouldBlock;
            }
        }
        first_error.map_or(Ok(status), Err)
    }

    /// Whether a live shard has commands queued: poll
    /// [`ShardedBroadcaster::write_fds`] for writability and flush.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.on_connect(1, false)?;
    /// if b.wants_write() {
    ///     // Register b.write_fds() for writability, then call b.flush().
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wants_write(&self) -> bool {
        self.write_fds().next().is_some()
    }

    /// Bytes queued on all shards and not yet written.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.fanout("[1]", -1, Default::default())?;
    /// let bytes = b.queued_bytes(); // 2 * (5 + 14 + 3): one Bcast frame on each shard
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.shards.iter().map(Broadcaster::queued_bytes).sum()
    }

    /// Ends every live shard's command stream (see
    /// [`Broadcaster::close_write`]): all or none, refused (naming a shard
    /// with commands queued) unless every queue is empty.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.on_connect(1, false)?;
    /// b.flush_blocking()?; // close_write refuses while a shard has commands queued
    /// b.close_write()?;
    /// // Each worker reads end-of-file and exits; read on for its last frames.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_write(&mut self) -> Result<(), ShardError<Unflushed>> {
        let shards = &mut self.shards;
        // Supervised, a shard's backlog counts too.
        let queued: Vec<usize> = shards.iter().map(|b| b.end.pending_bytes()).collect();
        self.router.close_live(|s| queued[s], |s| shards[s].close_write())
    }

    // ---- reading ----------------------------------------------------------

    /// The next item from any shard, without blocking, round-robin: each
    /// call starts after the shard that produced the last item, so every
    /// shard with frames gets its turn. A shard that had nothing is not
    /// asked again until every shard has had nothing or 64 items later
    /// (asking costs a `read`). Per shard it is
    /// [`Broadcaster::read_frame`] (heartbeats and other channels skipped),
    /// with the shard named; [`ShardedIncoming::Pending`] means no shard
    /// has a complete frame.
    ///
    /// A shard whose output ends is reported once as
    /// [`ShardedIncoming::ShardExited`] and not read again. A read error
    /// (a framing error, or I/O) is returned once, naming the shard; that
    /// shard's worker is then killed (its stream cannot be trusted) and the
    /// next call reports it as exited.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// loop {
    ///     match b.read_frame()? {
    ///         ShardedIncoming::Frame { shard, frame } => println!("shard {shard}: conn {}", frame.conn),
    ///         ShardedIncoming::InvalidFrame { shard, error } => eprintln!("shard {shard}: {error}"),
    ///         ShardedIncoming::ShardExited(exit) => eprintln!("shard {} gone; close {:?}", exit.shard, exit.conns),
    ///         ShardedIncoming::ShardRestarted { shard, restart } => eprintln!("shard {shard}: {restart}"), // supervised only
    ///         ShardedIncoming::Pending => break, // wait until a fd of b.read_fds() is readable
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_frame(&mut self) -> Result<ShardedIncoming, ShardError<ReadError>> {
        self.note_gave_up();
        match self.router.next_turn(&mut Blocking(&mut self.shards), true) {
            Turn::Item(item) => item,
            Turn::Nothing | Turn::AllRetired => Ok(ShardedIncoming::Pending),
        }
    }

    /// Like [`ShardedBroadcaster::read_frame`], but waits up to `timeout`
    /// for something other than [`ShardedIncoming::Pending`], flushing the
    /// live shards while it waits (a flush error is left for the next
    /// [`ShardedBroadcaster::flush`]). An error of `poll` itself, which
    /// belongs to no shard, is reported as `ReadError::Io` of shard 0.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::sharded::ShardedIncoming;
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// if let ShardedIncoming::Frame { shard, frame } = b.read_frame_timeout(Duration::from_millis(20))? {
    ///     println!("shard {shard}: {} bytes for conn {}", frame.data.len(), frame.conn);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_frame_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<ShardedIncoming, ShardError<ReadError>> {
        let deadline = Instant::now() + timeout;
        loop {
            let item = self.read_frame()?;
            if !item.is_pending() {
                return Ok(item);
            }
            if self.wants_write() {
                // A dead shard is marked down here and reported by a read.
                let _ = self.flush();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(ShardedIncoming::Pending);
            }
            self.wait(left).map_err(|e| ShardError {
                shard: 0,
                error: ReadError::Io(e),
            })?;
        }
    }

    /// Waits until a read fd is readable or a wanted write fd writable.
    fn wait(&self, timeout: Duration) -> io::Result<()> {
        let reads: Vec<BorrowedFd<'_>> = self.read_fds().map(|(_, fd)| fd).collect();
        let writes: Vec<BorrowedFd<'_>> = self.write_fds().map(|(_, fd)| fd).collect();
        // Supervised shards: no later than the first deadline.
        let timeout = match self.next_deadline() {
            Some(at) => timeout.min(at.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        wait_fds(&reads, &writes, Some(timeout)).map(|_| ())
    }

    // ---- fds --------------------------------------------------------------

    /// The read fds of every shard not yet reported exited, with the
    /// shard's index: watch each for readability, then call
    /// [`ShardedBroadcaster::read_frame`] until it says `Pending`. A
    /// supervised shard waiting for its replacement has none (its dead
    /// worker's fd would be readable forever): wake at
    /// [`ShardedBroadcaster::next_deadline`] for it.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// for (shard, fd) in b.read_fds() {
    ///     println!("watch fd {} (shard {shard}) for readability", fd.as_raw_fd());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> + '_ {
        self.shards
            .iter()
            .enumerate()
            .filter(|&(shard, b)| {
                self.router.state(shard) != Some(ShardState::Retired)
                    && (b.supervisor().is_none() || b.end.read_open())
            })
            .map(|(shard, b)| (shard, b.read_fd()))
    }

    /// The write fds of the live shards that have commands queued: watch
    /// each for writability, then call [`ShardedBroadcaster::flush`]. With
    /// a socketpair a shard's write fd is its read fd.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    ///
    /// b.on_connect(2, false)?;
    /// for (shard, fd) in b.write_fds() {
    ///     println!("watch fd {} (shard {shard}) for writability", fd.as_raw_fd());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> + '_ {
        self.shards
            .iter()
            .enumerate()
            .filter(|&(shard, b)| self.router.state(shard) == Some(ShardState::Live) && b.wants_write())
            .filter_map(|(shard, b)| b.write_fd().map(|fd| (shard, fd)))
    }

    // ---- the processes ----------------------------------------------------

    /// Each shard's worker pid, by shard index.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// for (shard, pid) in b.pids().into_iter().enumerate() {
    ///     println!("shard {shard}: worker {pid:?}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.shards.iter().map(Broadcaster::pid).collect()
    }

    /// Shard `shard`'s exit status if its worker has exited (reaping it),
    /// without blocking; `None` while it runs, or for a bad index.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// if let Some(status) = b.exit_status(0) {
    ///     println!("shard 0 exited: {status}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        self.shards.get_mut(shard)?.exit_status()
    }

    /// Kills shard `shard`'s worker now (`SIGKILL`); its end is then
    /// reported by [`ShardedBroadcaster::read_frame`] like any other (a
    /// supervised shard's worker is replaced instead, and reported as
    /// [`ShardedIncoming::ShardRestarted`]). A bad index is an
    /// `InvalidInput` error.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{sharded::ShardedBroadcaster, Options, Transport};
    /// # let k = std::num::NonZeroUsize::new(2).unwrap();
    /// # let mut b = ShardedBroadcaster::spawn(k, |_| std::process::Command::new("broadcast-worker"), Transport::Stdio, &Options::new())?;
    /// b.kill_shard(1)?;
    /// // b.read_frame() reports it as ShardedIncoming::ShardExited, with its conns.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill_shard(&mut self, shard: usize) -> io::Result<()> {
        self.shards.get_mut(shard).ok_or_else(no_such_shard)?.kill()
    }
}

/// The blocking reads of the fair read ([`ShardRouter`]'s turns).
struct Blocking<'a>(&'a mut [Broadcaster]);

impl ShardReads for Blocking<'_> {
    fn read(&mut self, shard: usize) -> Poll<Result<Incoming, ReadError>> {
        match self.0[shard].read_frame() {
            Ok(Incoming::Pending) => Poll::Pending,
            other => Poll::Ready(other),
        }
    }

    fn has_buffered(&self, shard: usize) -> bool {
        // A supervised shard's due deadline (a backoff's end) is announced
        // by no fd either.
        self.0[shard].end.has_buffered()
            || self.0[shard]
                .next_deadline()
                .is_some_and(|at| at <= Instant::now())
    }

    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        self.0[shard].exit_status()
    }

    fn kill(&mut self, shard: usize) {
        // Already dead if this fails; the exit report says which.
        let _ = self.0[shard].kill();
    }
}

/// Dropping the handle ends every shard together: all their fds are closed
/// first, so every worker sees end-of-file at once; they then share one
/// grace period ([`Options::grace_period`]), so K workers that ignore
/// end-of-file cost one grace period, not K; those still running are
/// killed, and all are reaped.
impl Drop for ShardedBroadcaster {
    fn drop(&mut self) {
        let workers = self
            .shards
            .drain(..)
            .map(|b| {
                let end = b.into_endpoint();
                // The link (the fds) and the stderr tail go first.
                drop(end.link);
                drop(end.stderr);
                end.worker
            })
            .collect();
        super::lifecycle::end_together(workers);
    }
}
