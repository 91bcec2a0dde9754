//! One blocking-style face for the four handles, so that the behaviour
//! suite (`suite.rs`) is written once and run against each of them:
//! [`Broadcaster`], [`ShardedBroadcaster`] and, with the `tokio` feature,
//! `AsyncBroadcaster` and `AsyncShardedBroadcaster` (each driven by a
//! current-thread runtime its adapter owns).
//!
//! Commands go through the handles' named methods in two modes:
//! [`Mode::Now`] never waits (the blocking handles' methods, the tokio
//! handles' `try_` forms: a full queue is `Backpressure`), and
//! [`Mode::Wait`] waits for room (the tokio handles' `async` forms; for the
//! blocking handles, the same call again after each `flush_blocking`, as a
//! relay would). A single handle is shard 0 of 1.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::sharded::{ShardError, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{
    Broadcaster, FdLink, FlushError, FlushStatus, Incoming, Options, SendError, StderrTail, Transport,
};
use broadcast_wire::{BcastFlags, BroadcastFrame, PayloadError, ReadError, SubCommand};
use bytes::Bytes;

use super::sharded::k;
use super::{PATIENCE, echo_worker};

/// Which handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Blocking,
    BlockingSharded,
    #[cfg(feature = "tokio")]
    Async,
    #[cfg(feature = "tokio")]
    AsyncSharded,
}

impl Kind {
    /// Every handle this build has.
    pub fn all() -> Vec<Kind> {
        vec![
            Kind::Blocking,
            Kind::BlockingSharded,
            #[cfg(feature = "tokio")]
            Kind::Async,
            #[cfg(feature = "tokio")]
            Kind::AsyncSharded,
        ]
    }

    /// The sharded handles this build has.
    pub fn sharded() -> Vec<Kind> {
        Kind::all().into_iter().filter(|k| k.is_sharded()).collect()
    }

    /// Its name in test names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blocking => "blocking",
            Kind::BlockingSharded => "blocking_sharded",
            #[cfg(feature = "tokio")]
            Kind::Async => "async",
            #[cfg(feature = "tokio")]
            Kind::AsyncSharded => "async_sharded",
        }
    }

    pub fn is_sharded(self) -> bool {
        match self {
            Kind::Blocking => false,
            Kind::BlockingSharded => true,
            #[cfg(feature = "tokio")]
            Kind::Async => false,
            #[cfg(feature = "tokio")]
            Kind::AsyncSharded => true,
        }
    }

    /// Spawns the handle over echo workers: `shards` of them for a sharded
    /// handle, shard `i` with the echo worker arguments `args(i)`; one, with
    /// `args(0)`, for a single handle.
    pub fn spawn(
        self,
        transport: Transport,
        shards: usize,
        args: &dyn Fn(usize) -> Vec<String>,
        opts: &Options,
    ) -> Box<dyn Handle> {
        let failed =
            |e: &dyn std::fmt::Display| -> ! { panic!("spawning {} over {transport:?}: {e}", self.name()) };
        match self {
            Kind::Blocking => Box::new(
                Broadcaster::spawn_with(echo_worker(&args(0)), transport, opts)
                    .unwrap_or_else(|e| failed(&e)),
            ),
            Kind::BlockingSharded => Box::new(
                ShardedBroadcaster::spawn(k(shards), |i| echo_worker(&args(i)), transport, opts)
                    .unwrap_or_else(|e| failed(&e)),
            ),
            #[cfg(feature = "tokio")]
            Kind::Async => {
                let rt = runtime();
                let b = {
                    let _guard = rt.enter();
                    broadcast_process::async_broadcaster::AsyncBroadcaster::spawn_with(
                        echo_worker(&args(0)),
                        transport,
                        opts,
                    )
                    .unwrap_or_else(|e| failed(&e))
                };
                Box::new(tokio_handles::Async { b: Some(b), rt })
            }
            #[cfg(feature = "tokio")]
            Kind::AsyncSharded => {
                let rt = runtime();
                let b = {
                    let _guard = rt.enter();
                    broadcast_process::async_broadcaster::AsyncShardedBroadcaster::spawn(
                        k(shards),
                        |i| echo_worker(&args(i)),
                        transport,
                        opts,
                    )
                    .unwrap_or_else(|e| failed(&e))
                };
                Box::new(tokio_handles::AsyncSharded {
                    b: Some(b),
                    rt,
                    read_early: Default::default(),
                })
            }
        }
    }
}

#[cfg(feature = "tokio")]
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A call of one of the named methods (or `send`).
#[derive(Debug, Clone)]
pub enum Cmd {
    Connect(i32, bool),
    Disconnect(i32),
    Subscribe(i32, String, Bytes),
    Unsubscribe(i32, String),
    Auth(i32, [u8; 32]),
    Fanout(Bytes, i32, BcastFlags),
    Send(SubCommand),
}

impl Cmd {
    /// A Bcast from −1 of `event`, no flags.
    pub fn event(event: impl Into<Bytes>) -> Cmd {
        Cmd::Fanout(event.into(), -1, BcastFlags::EMPTY)
    }
}

/// Whether a command may wait for room (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Now,
    Wait,
}

pub const MODES: [Mode; 2] = [Mode::Now, Mode::Wait];

/// A command refused: nothing was queued. `shard` is `None` for a single
/// handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub shard: Option<usize>,
    pub error: SendError,
}

#[derive(Debug)]
pub struct FlushFailed {
    pub shard: Option<usize>,
    pub error: FlushError,
}

#[derive(Debug)]
pub struct ReadFailed {
    pub shard: usize,
    pub error: ReadError,
}

/// One outcome of reading, from any handle (shard 0 for a single one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Frame {
        shard: usize,
        frame: BroadcastFrame,
    },
    Invalid {
        shard: usize,
        error: PayloadError,
    },
    /// The worker's output ended (`WorkerExited` / `ShardExited`).
    Exited {
        shard: usize,
        status: Option<ExitStatus>,
        conns: Vec<i32>,
    },
    /// Nothing now (or, from [`Handle::next`], nothing within the timeout;
    /// from a tokio sharded handle, also "every shard has been reported").
    Pending,
}

/// The four handles, blocking style.
pub trait Handle: Send {
    fn kind(&self) -> Kind;
    fn shard_count(&self) -> usize;
    fn shard_of(&self, conn: i32) -> usize;
    /// Calls the named method `cmd` names, in `mode`.
    fn command(&mut self, cmd: &Cmd, mode: Mode) -> Result<(), Refused>;
    /// Writes every queue out, waiting as long as it takes.
    fn flush(&mut self) -> Result<(), FlushFailed>;
    /// Writes what the fds take now: `true` once every queue is empty.
    fn flush_now(&mut self) -> Result<bool, FlushFailed>;
    /// The next item, waiting up to `timeout` ([`Item::Pending`] then).
    fn next(&mut self, timeout: Duration) -> Result<Item, ReadFailed>;
    /// The next item without waiting: one non-blocking `read_frame`, or
    /// one poll of `recv`.
    fn read_now(&mut self) -> Result<Item, ReadFailed>;
    /// Ends every command stream; `Err(shard)` of a shard with commands
    /// queued.
    fn close_write(&mut self) -> Result<(), usize>;
    fn link(&self, shard: usize) -> &FdLink;
    fn pids(&self) -> Vec<u32>;
    fn kill(&mut self, shard: usize);
    /// The shard's exit status if its worker was reaped, without waiting.
    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus>;
    fn stderr_tail(&self, shard: usize) -> Option<StderrTail>;
}

impl<'a> dyn Handle + 'a {
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    pub fn is_sharded(&self) -> bool {
        self.kind().is_sharded()
    }

    /// Every shard's captured stderr lines, for failure messages.
    pub fn stderr_all(&self) -> Vec<Vec<String>> {
        (0..self.shard_count())
            .map(|s| self.stderr_tail(s).map(|t| t.lines()).unwrap_or_default())
            .collect()
    }

    /// The next item that is not [`Item::Pending`], failing the test on a
    /// read error or after [`PATIENCE`].
    pub fn next_item(&mut self) -> Item {
        match self.next(PATIENCE) {
            Ok(Item::Pending) => panic!(
                "{}: nothing came within {PATIENCE:?}; stderr: {:?}",
                self.name(),
                self.stderr_all()
            ),
            Ok(item) => item,
            Err(e) => panic!(
                "{}: read failed: {e:?}; stderr: {:?}",
                self.name(),
                self.stderr_all()
            ),
        }
    }

    /// The shard's exit status: `reported`, else once it is reaped.
    pub fn status(&mut self, shard: usize, reported: Option<ExitStatus>) -> ExitStatus {
        if let Some(status) = reported {
            return status;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.exit_status(shard) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: shard {shard} was not reaped",
                self.name()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Bytes and commands queued, by shard.
    pub fn queues(&self) -> Vec<(usize, usize)> {
        (0..self.shard_count())
            .map(|s| (self.link(s).queued_bytes(), self.link(s).queued_commands()))
            .collect()
    }
}

fn refused<E>(e: ShardError<E>) -> (Option<usize>, E) {
    (Some(e.shard), e.error)
}

fn item(incoming: Incoming) -> Item {
    match incoming {
        Incoming::Frame(frame) => Item::Frame { shard: 0, frame },
        Incoming::InvalidFrame(error) => Item::Invalid { shard: 0, error },
        Incoming::WorkerExited(status) => Item::Exited {
            shard: 0,
            status,
            conns: Vec::new(),
        },
        Incoming::Pending => Item::Pending,
        // The suite's handles are not supervised (see `supervise.rs`).
        Incoming::WorkerRestarted(r) => panic!("an unsupervised handle restarted: {r}"),
    }
}

fn sharded_item(incoming: ShardedIncoming) -> Item {
    match incoming {
        ShardedIncoming::Frame { shard, frame } => Item::Frame { shard, frame },
        ShardedIncoming::InvalidFrame { shard, error } => Item::Invalid { shard, error },
        ShardedIncoming::ShardExited(exit) => Item::Exited {
            shard: exit.shard,
            status: exit.status,
            conns: exit.conns,
        },
        ShardedIncoming::Pending => Item::Pending,
        // The suite's handles are not supervised (see `supervise.rs`).
        ShardedIncoming::ShardRestarted { shard, restart } => {
            panic!("an unsupervised shard {shard} restarted: {restart}")
        }
    }
}

/// Calls the named method `$cmd` names on `$b`, with the method names of
/// one mode (`on_connect`... or `try_on_connect`...), and `$($await)?`
/// after the call.
macro_rules! call {
    ($b:expr, $cmd:expr, [$connect:ident, $disconnect:ident, $subscribe:ident, $unsubscribe:ident, $auth:ident, $fanout:ident, $send:ident] $(, $await:tt)?) => {
        match $cmd.clone() {
            Cmd::Connect(conn, whitelisted) => $b.$connect(conn, whitelisted) $(.$await)?,
            Cmd::Disconnect(conn) => $b.$disconnect(conn) $(.$await)?,
            Cmd::Subscribe(conn, sub_id, req) => $b.$subscribe(conn, &sub_id, req) $(.$await)?,
            Cmd::Unsubscribe(conn, sub_id) => $b.$unsubscribe(conn, &sub_id) $(.$await)?,
            Cmd::Auth(conn, pubkey) => $b.$auth(conn, pubkey) $(.$await)?,
            Cmd::Fanout(event, sender, flags) => $b.$fanout(event, sender, flags) $(.$await)?,
            Cmd::Send(cmd) => $b.$send(&cmd) $(.$await)?,
        }
    };
}

impl Handle for Broadcaster {
    fn kind(&self) -> Kind {
        Kind::Blocking
    }

    fn shard_count(&self) -> usize {
        1
    }

    fn shard_of(&self, _conn: i32) -> usize {
        0
    }

    fn command(&mut self, cmd: &Cmd, mode: Mode) -> Result<(), Refused> {
        loop {
            let result = call!(
                self,
                cmd,
                [
                    on_connect,
                    on_disconnect,
                    on_subscribe,
                    on_unsubscribe,
                    on_auth,
                    fanout,
                    send
                ]
            );
            match result {
                // Waiting, as a relay would: write the queue out and again.
                Err(SendError::Backpressure(_)) if mode == Mode::Wait => {
                    // A dead worker is reported by the next call.
                    let _ = self.flush_blocking();
                }
                other => return other.map_err(|error| Refused { shard: None, error }),
            }
        }
    }

    fn flush(&mut self) -> Result<(), FlushFailed> {
        self.flush_blocking()
            .map_err(|error| FlushFailed { shard: None, error })
    }

    fn flush_now(&mut self) -> Result<bool, FlushFailed> {
        Broadcaster::flush(self)
            .map(FlushStatus::is_flushed)
            .map_err(|error| FlushFailed { shard: None, error })
    }

    fn next(&mut self, timeout: Duration) -> Result<Item, ReadFailed> {
        self.read_frame_timeout(timeout)
            .map(item)
            .map_err(|error| ReadFailed { shard: 0, error })
    }

    fn read_now(&mut self) -> Result<Item, ReadFailed> {
        self.read_frame()
            .map(item)
            .map_err(|error| ReadFailed { shard: 0, error })
    }

    fn close_write(&mut self) -> Result<(), usize> {
        Broadcaster::close_write(self).map_err(|_| 0)
    }

    fn link(&self, _shard: usize) -> &FdLink {
        Broadcaster::link(self)
    }

    fn pids(&self) -> Vec<u32> {
        self.pid().into_iter().collect()
    }

    fn kill(&mut self, _shard: usize) {
        Broadcaster::kill(self).expect("kill");
    }

    fn exit_status(&mut self, _shard: usize) -> Option<ExitStatus> {
        Broadcaster::exit_status(self)
    }

    fn stderr_tail(&self, _shard: usize) -> Option<StderrTail> {
        Broadcaster::stderr_tail(self).cloned()
    }
}

impl Handle for ShardedBroadcaster {
    fn kind(&self) -> Kind {
        Kind::BlockingSharded
    }

    fn shard_count(&self) -> usize {
        ShardedBroadcaster::shard_count(self)
    }

    fn shard_of(&self, conn: i32) -> usize {
        ShardedBroadcaster::shard_of(self, conn)
    }

    fn command(&mut self, cmd: &Cmd, mode: Mode) -> Result<(), Refused> {
        loop {
            let result = call!(
                self,
                cmd,
                [
                    on_connect,
                    on_disconnect,
                    on_subscribe,
                    on_unsubscribe,
                    on_auth,
                    fanout,
                    send
                ]
            );
            match result {
                Err(ShardError {
                    error: SendError::Backpressure(_),
                    ..
                }) if mode == Mode::Wait => {
                    let _ = self.flush_blocking();
                }
                other => {
                    return other.map_err(|e| {
                        let (shard, error) = refused(e);
                        Refused { shard, error }
                    });
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), FlushFailed> {
        self.flush_blocking().map_err(|e| {
            let (shard, error) = refused(e);
            FlushFailed { shard, error }
        })
    }

    fn flush_now(&mut self) -> Result<bool, FlushFailed> {
        ShardedBroadcaster::flush(self)
            .map(FlushStatus::is_flushed)
            .map_err(|e| {
                let (shard, error) = refused(e);
                FlushFailed { shard, error }
            })
    }

    fn next(&mut self, timeout: Duration) -> Result<Item, ReadFailed> {
        self.read_frame_timeout(timeout)
            .map(sharded_item)
            .map_err(|e| ReadFailed {
                shard: e.shard,
                error: e.error,
            })
    }

    fn read_now(&mut self) -> Result<Item, ReadFailed> {
        self.read_frame().map(sharded_item).map_err(|e| ReadFailed {
            shard: e.shard,
            error: e.error,
        })
    }

    fn close_write(&mut self) -> Result<(), usize> {
        ShardedBroadcaster::close_write(self).map_err(|e| e.shard)
    }

    fn link(&self, shard: usize) -> &FdLink {
        self.shard(shard).expect("a shard").link()
    }

    fn pids(&self) -> Vec<u32> {
        ShardedBroadcaster::pids(self).into_iter().flatten().collect()
    }

    fn kill(&mut self, shard: usize) {
        self.kill_shard(shard).expect("kill");
    }

    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        ShardedBroadcaster::exit_status(self, shard)
    }

    fn stderr_tail(&self, shard: usize) -> Option<StderrTail> {
        self.shard(shard)?.stderr_tail().cloned()
    }
}

#[cfg(feature = "tokio")]
mod tokio_handles {
    use std::collections::VecDeque;
    use std::future::poll_fn;
    use std::process::ExitStatus;
    use std::task::Poll;
    use std::time::Duration;

    use broadcast_process::async_broadcaster::{AsyncBroadcaster, AsyncShardedBroadcaster, QueueError};
    use broadcast_process::broadcaster::sharded::{ShardError, ShardedIncoming};
    use broadcast_process::broadcaster::{FdLink, SendError, StderrTail};
    use tokio::runtime::Runtime;
    use tokio::time::timeout;

    use super::{
        Cmd, FlushFailed, Handle, Item, Kind, Mode, ReadFailed, Refused, item, refused, sharded_item,
    };

    /// An `AsyncBroadcaster` and the runtime that drives it. The handle is
    /// dropped first, inside the runtime's context.
    pub struct Async {
        pub b: Option<AsyncBroadcaster>,
        pub rt: Runtime,
    }

    /// An `AsyncShardedBroadcaster` and the runtime that drives it.
    pub struct AsyncSharded {
        pub b: Option<AsyncShardedBroadcaster>,
        pub rt: Runtime,
        /// Items `flush_now` received, returned first by the reads.
        pub read_early: VecDeque<Result<Item, ReadFailed>>,
    }

    impl Drop for Async {
        fn drop(&mut self) {
            let _guard = self.rt.enter();
            drop(self.b.take());
        }
    }

    impl Drop for AsyncSharded {
        fn drop(&mut self) {
            let _guard = self.rt.enter();
            drop(self.b.take());
        }
    }

    fn waited(e: QueueError) -> SendError {
        match e {
            QueueError::Refused(e) => e,
            other => panic!("waiting for room failed: {other}"),
        }
    }

    impl Async {
        fn b(&mut self) -> &mut AsyncBroadcaster {
            self.b.as_mut().expect("the handle")
        }
    }

    impl AsyncSharded {
        fn b(&mut self) -> &mut AsyncShardedBroadcaster {
            self.b.as_mut().expect("the handle")
        }
    }

    impl Handle for Async {
        fn kind(&self) -> Kind {
            Kind::Async
        }

        fn shard_count(&self) -> usize {
            1
        }

        fn shard_of(&self, _conn: i32) -> usize {
            0
        }

        fn command(&mut self, cmd: &Cmd, mode: Mode) -> Result<(), Refused> {
            let _guard = self.rt.enter();
            let b = self.b.as_mut().expect("the handle");
            let result = match mode {
                Mode::Now => call!(
                    b,
                    cmd,
                    [
                        try_on_connect,
                        try_on_disconnect,
                        try_on_subscribe,
                        try_on_unsubscribe,
                        try_on_auth,
                        try_fanout,
                        try_send
                    ]
                ),
                Mode::Wait => self
                    .rt
                    .block_on(async {
                        call!(
                            b,
                            cmd,
                            [
                                on_connect,
                                on_disconnect,
                                on_subscribe,
                                on_unsubscribe,
                                on_auth,
                                fanout,
                                send
                            ],
                            await
                        )
                    })
                    .map_err(waited),
            };
            result.map_err(|error| Refused { shard: None, error })
        }

        fn flush(&mut self) -> Result<(), FlushFailed> {
            let b = self.b.as_mut().expect("the handle");
            self.rt
                .block_on(b.flush())
                .map_err(|error| FlushFailed { shard: None, error })
        }

        fn flush_now(&mut self) -> Result<bool, FlushFailed> {
            let b = self.b.as_mut().expect("the handle");
            match self
                .rt
                .block_on(async { timeout(Duration::ZERO, b.flush()).await })
            {
                Err(_elapsed) => Ok(false),
                Ok(result) => result
                    .map(|()| true)
                    .map_err(|error| FlushFailed { shard: None, error }),
            }
        }

        fn next(&mut self, wait: Duration) -> Result<Item, ReadFailed> {
            let b = self.b.as_mut().expect("the handle");
            match self.rt.block_on(async { timeout(wait, b.recv()).await }) {
                Err(_elapsed) => Ok(Item::Pending),
                Ok(result) => result.map(item).map_err(|error| ReadFailed { shard: 0, error }),
            }
        }

        fn read_now(&mut self) -> Result<Item, ReadFailed> {
            let b = self.b.as_mut().expect("the handle");
            match self.rt.block_on(poll_fn(|cx| Poll::Ready(b.poll_recv(cx)))) {
                Poll::Pending => Ok(Item::Pending),
                Poll::Ready(result) => result.map(item).map_err(|error| ReadFailed { shard: 0, error }),
            }
        }

        fn close_write(&mut self) -> Result<(), usize> {
            self.b().close_write().map_err(|_| 0)
        }

        fn link(&self, _shard: usize) -> &FdLink {
            self.b.as_ref().expect("the handle").link()
        }

        fn pids(&self) -> Vec<u32> {
            self.b.as_ref().expect("the handle").pid().into_iter().collect()
        }

        fn kill(&mut self, _shard: usize) {
            self.b().kill().expect("kill");
        }

        fn exit_status(&mut self, _shard: usize) -> Option<ExitStatus> {
            self.b().exit_status()
        }

        fn stderr_tail(&self, _shard: usize) -> Option<StderrTail> {
            self.b.as_ref()?.stderr_tail().cloned()
        }
    }

    impl Handle for AsyncSharded {
        fn kind(&self) -> Kind {
            Kind::AsyncSharded
        }

        fn shard_count(&self) -> usize {
            self.b.as_ref().expect("the handle").shard_count()
        }

        fn shard_of(&self, conn: i32) -> usize {
            self.b.as_ref().expect("the handle").shard_of(conn)
        }

        fn command(&mut self, cmd: &Cmd, mode: Mode) -> Result<(), Refused> {
            let _guard = self.rt.enter();
            let b = self.b.as_mut().expect("the handle");
            let result: Result<(), ShardError<SendError>> = match mode {
                Mode::Now => call!(
                    b,
                    cmd,
                    [
                        try_on_connect,
                        try_on_disconnect,
                        try_on_subscribe,
                        try_on_unsubscribe,
                        try_on_auth,
                        try_fanout,
                        try_send
                    ]
                ),
                Mode::Wait => self
                    .rt
                    .block_on(async {
                        call!(
                            b,
                            cmd,
                            [
                                on_connect,
                                on_disconnect,
                                on_subscribe,
                                on_unsubscribe,
                                on_auth,
                                fanout,
                                send
                            ],
                            await
                        )
                    })
                    .map_err(|e| ShardError {
                        shard: e.shard,
                        error: waited(e.error),
                    }),
            };
            result.map_err(|e| {
                let (shard, error) = refused(e);
                Refused { shard, error }
            })
        }

        fn flush(&mut self) -> Result<(), FlushFailed> {
            let b = self.b.as_mut().expect("the handle");
            self.rt.block_on(b.flush()).map_err(|e| {
                let (shard, error) = refused(e);
                FlushFailed { shard, error }
            })
        }

        /// `flush` writes the shards one after the other, waiting on each:
        /// cut short, it may not have tried the later ones. `recv` writes
        /// every shard's queue before reading it, so one poll of it that
        /// finds nothing to read has written what every fd takes; an item
        /// it finds is kept for the next read. A write error is then
        /// reported by a `flush` cut short.
        fn flush_now(&mut self) -> Result<bool, FlushFailed> {
            let b = self.b.as_mut().expect("the handle");
            for _ in 0..10_000 {
                match self.rt.block_on(poll_fn(|cx| Poll::Ready(b.poll_recv(cx)))) {
                    Poll::Pending | Poll::Ready(Ok(ShardedIncoming::Pending)) => break,
                    Poll::Ready(result) => {
                        self.read_early
                            .push_back(result.map(sharded_item).map_err(|e| ReadFailed {
                                shard: e.shard,
                                error: e.error,
                            }))
                    }
                }
            }
            match self
                .rt
                .block_on(async { timeout(Duration::ZERO, b.flush()).await })
            {
                Err(_elapsed) => Ok(false),
                Ok(result) => result.map(|()| true).map_err(|e| {
                    let (shard, error) = refused(e);
                    FlushFailed { shard, error }
                }),
            }
        }

        fn next(&mut self, wait: Duration) -> Result<Item, ReadFailed> {
            if let Some(early) = self.read_early.pop_front() {
                return early;
            }
            let b = self.b.as_mut().expect("the handle");
            match self.rt.block_on(async { timeout(wait, b.recv()).await }) {
                Err(_elapsed) => Ok(Item::Pending),
                Ok(result) => result.map(sharded_item).map_err(|e| ReadFailed {
                    shard: e.shard,
                    error: e.error,
                }),
            }
        }

        fn read_now(&mut self) -> Result<Item, ReadFailed> {
            if let Some(early) = self.read_early.pop_front() {
                return early;
            }
            let b = self.b.as_mut().expect("the handle");
            match self.rt.block_on(poll_fn(|cx| Poll::Ready(b.poll_recv(cx)))) {
                Poll::Pending => Ok(Item::Pending),
                Poll::Ready(result) => result.map(sharded_item).map_err(|e| ReadFailed {
                    shard: e.shard,
                    error: e.error,
                }),
            }
        }

        fn close_write(&mut self) -> Result<(), usize> {
            self.b().close_write().map_err(|e| e.shard)
        }

        fn link(&self, shard: usize) -> &FdLink {
            self.b
                .as_ref()
                .expect("the handle")
                .shard(shard)
                .expect("a shard")
                .link()
        }

        fn pids(&self) -> Vec<u32> {
            self.b
                .as_ref()
                .expect("the handle")
                .pids()
                .into_iter()
                .flatten()
                .collect()
        }

        fn kill(&mut self, shard: usize) {
            self.b().kill_shard(shard).expect("kill");
        }

        fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
            let b = self.b.as_mut().expect("the handle");
            self.rt.block_on(b.wait_exit(shard, Duration::ZERO))
        }

        fn stderr_tail(&self, shard: usize) -> Option<StderrTail> {
            self.b.as_ref()?.shard(shard)?.stderr_tail().cloned()
        }
    }
}
