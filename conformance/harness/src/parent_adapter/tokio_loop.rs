//! The tokio handles, `AsyncBroadcaster` and `AsyncShardedBroadcaster`, in
//! one `tokio::select!` loop over the action lines and the handle's
//! `recv()` (both cancellation safe). `recv` goes first (`biased`), so when
//! a line is taken no frame the handle has read is still waiting.
//!
//! Back-pressure policy (PROTOCOL.md#parent-flow-control): every command
//! is queued; while the queue is full the action waits for room, and its
//! answer comes once the command is queued. While it waits, the loop keeps
//! reading *and delivering* the worker's frames: it polls the handle's
//! `poll_recv` (which also writes the queue out) and retries the `try_`
//! method whenever either makes progress. (The handles' waiting methods,
//! `fanout(...).await` and the others, read frames ahead while they wait,
//! but hand them over only once the command is queued: a relay whose one
//! task awaits them delivers nothing to its clients while the worker
//! stalls.)

use std::future::poll_fn;
use std::io::Cursor;
use std::num::NonZeroUsize;
use std::process::{ExitCode, ExitStatus};
use std::task::{Context, Poll};

use broadcast_process::async_broadcaster::{AsyncBroadcaster, AsyncShardedBroadcaster};
use broadcast_process::broadcaster::sharded::{ShardError, ShardState, ShardedIncoming};
use broadcast_process::broadcaster::{Incoming, Options, SendError};
use broadcast_wire::ReadError;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, Lines};
use tokio::time::timeout;

use super::blocking::owned_by;
use super::contract::{Command, Out, Refusal, Session, Start, Step};
use super::{EXIT_GRACE, Input, Item, LOST_GRACE, SHUTDOWN_GRACE, relay_try_call, worker_command};

/// What the loop needs from an async handle.
trait AsyncParent {
    /// What `recv` returns.
    type Raw;
    /// The handle's `poll_recv`: the next item, writing the queue out
    /// meanwhile.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Self::Raw>;
    /// Turns what `recv` returned into an item (waiting, bounded, for an
    /// exit status when a worker is gone).
    async fn item(&mut self, raw: Self::Raw) -> Item;
    /// Sends `cmd` with the handle's `try_` method: `None` when the queue
    /// is full (nothing queued).
    fn try_command(&mut self, cmd: &Command) -> Option<Result<(), Refusal>>;
    /// Whether commands wait to be written.
    fn wants_write(&self) -> bool;
    /// Writes every queued command; `Err` once a write finds a worker gone.
    async fn flush(&mut self) -> Result<(), String>;
    /// Whether frames were read ahead into memory: `recv` returns them
    /// without waiting.
    fn has_buffered(&self) -> bool;
    /// Ends the command stream(s).
    fn close_write(&mut self);
    /// Kills the worker(s).
    fn kill(&mut self);
    /// Waits for the worker(s) to exit, kills those that do not, reaps all.
    async fn reap(&mut self);

    /// The handle's `recv` (cancellation safe: it runs in `select!`).
    async fn recv(&mut self) -> Self::Raw {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// What one wait of a command for room ended with.
enum Waited<R> {
    /// The command was sent, or refused.
    Sent(Result<(), Refusal>),
    /// An item of the worker's output came first.
    Read(R),
}

/// `--handle async`.
pub fn single(start: &Start, input: Input, mut out: Out) -> ExitCode {
    let runtime = runtime();
    let code = runtime.block_on(async {
        match AsyncBroadcaster::spawn_with(worker_command(start), start.transport, &Options::new()) {
            Ok(b) => {
                out.started();
                Loop::new(Single(b), input, out).run().await
            }
            Err(e) => {
                out.refused(0, &format!("cannot start the worker: {e}"));
                ExitCode::FAILURE
            }
        }
    });
    // tokio reads stdin on a thread that cannot be interrupted: do not wait
    // for it.
    runtime.shutdown_background();
    code
}

/// `--handle async-sharded`: K workers, each running the `start` command.
pub fn sharded(start: &Start, shards: NonZeroUsize, input: Input, mut out: Out) -> ExitCode {
    let runtime = runtime();
    let code = runtime.block_on(async {
        let spawned = AsyncShardedBroadcaster::spawn(
            shards,
            |_| worker_command(start),
            start.transport,
            &Options::new(),
        );
        match spawned {
            Ok(b) => {
                out.started();
                Loop::new(Sharded(b), input, out).run().await
            }
            Err(e) => {
                out.refused(0, &format!("cannot start the workers: {e}"));
                ExitCode::FAILURE
            }
        }
    });
    runtime.shutdown_background();
    code
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

type ActionLines = Lines<BufReader<Box<dyn AsyncRead + Unpin>>>;

struct Loop<P> {
    parent: P,
    session: Session,
    lines: ActionLines,
    /// Some worker may still write.
    reading: bool,
}

impl<P: AsyncParent> Loop<P> {
    fn new(parent: P, input: Input, out: Out) -> Self {
        // What was read with `start` first, then the rest of stdin.
        let (read, _fd) = input.into_parts();
        let stdin: Box<dyn AsyncRead + Unpin> = Box::new(Cursor::new(read).chain(tokio::io::stdin()));
        Loop {
            parent,
            session: Session::new(out),
            lines: BufReader::new(stdin).lines(),
            reading: true,
        }
    }

    async fn run(&mut self) -> ExitCode {
        loop {
            tokio::select! {
                biased;
                raw = self.parent.recv(), if self.reading => {
                    let item = self.parent.item(raw).await;
                    self.handle(item);
                }
                line = self.lines.next_line() => {
                    let line = match line {
                        Ok(Some(line)) => line,
                        Ok(None) => break,
                        Err(e) => {
                            eprintln!("parent-adapter: reading stdin: {e}");
                            break;
                        }
                    };
                    match self.session.step(&line) {
                        Step::Command { seq, cmd, effect } => {
                            let result = self.command(&cmd).await;
                            let lost = matches!(&result, Err(r) if r.worker_gone);
                            self.session.answer(seq, effect, result);
                            if lost {
                                self.lost_worker("the worker closed its input".into()).await;
                            }
                        }
                        Step::Sync(seq) => {
                            self.write_all().await;
                            self.session.synced(seq);
                        }
                        Step::Shutdown(seq) => {
                            self.finish().await;
                            self.session.shut_down(seq);
                            return ExitCode::SUCCESS;
                        }
                        Step::Answered => {}
                    }
                }
            }
        }
        self.finish().await;
        ExitCode::SUCCESS
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::Pending => {}
            Item::Frame(frame) => self.session.frame(&frame),
            Item::Invalid(message) => self.session.dropped_frame(&message),
            Item::Stray(message) => eprintln!("parent-adapter: {message}"),
            Item::Gone {
                fatal,
                message,
                status,
                last,
            } => {
                self.session.worker_gone(fatal, &message, status, last);
                self.reading = !last;
            }
        }
    }

    /// The next item, waiting for it.
    async fn next(&mut self) {
        let raw = self.parent.recv().await;
        let item = self.parent.item(raw).await;
        self.handle(item);
    }

    /// Queues `cmd`, waiting for room while the queue is full, and handling
    /// the worker's frames meanwhile (PROTOCOL.md#parent-flow-control).
    async fn command(&mut self, cmd: &Command) -> Result<(), Refusal> {
        loop {
            let reading = self.reading;
            let parent = &mut self.parent;
            let waited = poll_fn(|cx| {
                if let Some(sent) = parent.try_command(cmd) {
                    return Poll::Ready(Waited::Sent(sent));
                }
                if reading && let Poll::Ready(raw) = parent.poll_recv(cx) {
                    return Poll::Ready(Waited::Read(raw));
                }
                // poll_recv wrote what the fd took: there may be room now.
                match parent.try_command(cmd) {
                    Some(sent) => Poll::Ready(Waited::Sent(sent)),
                    None if reading => Poll::Pending,
                    // Nothing left to read and no room: the worker is gone.
                    None => Poll::Ready(Waited::Sent(Err(Refusal {
                        message: "the worker is gone".into(),
                        worker_gone: true,
                    }))),
                }
            })
            .await;
            match waited {
                Waited::Sent(result) => return result,
                Waited::Read(raw) => {
                    let item = self.parent.item(raw).await;
                    self.handle(item);
                }
            }
        }
    }

    /// The `sync` barrier: every accepted command written (or the worker
    /// found gone), the worker's frames handled meanwhile, then every frame
    /// read ahead handled.
    async fn write_all(&mut self) {
        while self.reading && self.parent.wants_write() {
            let parent = &mut self.parent;
            let raw = poll_fn(|cx| match parent.poll_recv(cx) {
                Poll::Ready(raw) => Poll::Ready(Some(raw)),
                // poll_recv writes the queue out: done once it is empty.
                Poll::Pending if !parent.wants_write() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            if let Some(raw) = raw {
                let item = self.parent.item(raw).await;
                self.handle(item);
            }
        }
        // Reports a write that found the worker gone.
        if let Err(message) = self.parent.flush().await {
            self.lost_worker(message).await;
        }
        while self.reading && self.parent.has_buffered() {
            self.next().await;
        }
    }

    /// A write found the worker's input closed: read its output to the end
    /// (killing it if it keeps the output open) and report it gone.
    async fn lost_worker(&mut self, message: String) {
        let mut killed = false;
        while self.reading && !self.session.is_gone() {
            let grace = if killed { EXIT_GRACE } else { LOST_GRACE };
            match timeout(grace, self.parent.recv()).await {
                Ok(raw) => {
                    let item = self.parent.item(raw).await;
                    self.handle(item);
                }
                Err(_) if killed => break,
                Err(_) => {
                    self.parent.kill();
                    killed = true;
                }
            }
        }
        self.session.worker_gone(false, &message, None, true);
    }

    /// The end of life: write what is queued (killing a worker that does
    /// not take it within SHUTDOWN_GRACE), end the command stream, deliver
    /// the last frames until the output ends (killing the worker after
    /// SHUTDOWN_GRACE of silence), reap it.
    async fn finish(&mut self) {
        self.session.ending();
        if timeout(SHUTDOWN_GRACE, self.write_all()).await.is_err() {
            eprintln!("parent-adapter: the worker does not read its input: killing it");
            self.parent.kill();
        }
        self.parent.close_write();
        let mut killed = false;
        while self.reading {
            let grace = if killed { EXIT_GRACE } else { SHUTDOWN_GRACE };
            match timeout(grace, self.parent.recv()).await {
                Ok(raw) => {
                    let item = self.parent.item(raw).await;
                    self.handle(item);
                }
                Err(_) if killed => break,
                Err(_) => {
                    eprintln!("parent-adapter: the worker did not exit after its input ended: killing it");
                    self.parent.kill();
                    killed = true;
                }
            }
        }
        self.parent.reap().await;
        self.session.release_gone();
    }
}

// ---- AsyncBroadcaster ---------------------------------------------------------

struct Single(AsyncBroadcaster);

impl Single {
    /// The status of a worker whose output has ended: it gets EXIT_GRACE to
    /// exit, then it is killed. Always reaped.
    async fn end_status(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.0.wait_exit(EXIT_GRACE).await {
            return Some(status);
        }
        let _ = self.0.kill();
        self.0.wait_exit(EXIT_GRACE).await
    }
}

fn refusal(e: SendError) -> Refusal {
    Refusal {
        worker_gone: e == SendError::WorkerGone,
        message: e.to_string(),
    }
}

impl AsyncParent for Single {
    type Raw = Result<Incoming, ReadError>;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Self::Raw> {
        self.0.poll_recv(cx)
    }

    async fn item(&mut self, raw: Self::Raw) -> Item {
        match raw {
            Ok(Incoming::Pending) => Item::Pending,
            // Only a supervised handle restarts its worker; this one is not.
            Ok(Incoming::WorkerRestarted(_)) => Item::Pending,
            Ok(Incoming::Frame(frame)) => Item::Frame(frame),
            Ok(Incoming::InvalidFrame(e)) => Item::Invalid(e.to_string()),
            Ok(Incoming::WorkerExited(status)) => Item::Gone {
                fatal: false,
                message: "the worker's output ended".into(),
                status: match status {
                    Some(status) => Some(status),
                    None => self.end_status().await,
                },
                last: true,
            },
            // PROTOCOL.md#parent-receiving: a framing error is fatal; the
            // stream is not read again, and the worker is ended.
            Err(e) => Item::Gone {
                fatal: matches!(e, ReadError::Framing(_)),
                message: e.to_string(),
                status: self.end_status().await,
                last: true,
            },
        }
    }

    fn try_command(&mut self, cmd: &Command) -> Option<Result<(), Refusal>> {
        match relay_try_call!(self.0, cmd) {
            Err(SendError::Backpressure(_)) => None,
            result => Some(result.map_err(refusal)),
        }
    }

    fn wants_write(&self) -> bool {
        self.0.link().wants_write()
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.0.flush().await.map_err(|e| e.to_string())
    }

    fn has_buffered(&self) -> bool {
        self.0.link().has_buffered()
    }

    fn close_write(&mut self) {
        if let Err(e) = self.0.close_write() {
            eprintln!("parent-adapter: {e}");
        }
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
    }

    async fn reap(&mut self) {
        self.end_status().await;
    }
}

// ---- AsyncShardedBroadcaster ---------------------------------------------------

struct Sharded(AsyncShardedBroadcaster);

impl Sharded {
    /// Waits up to EXIT_GRACE for `shard` to exit, then kills it; reaped.
    async fn end_status(&mut self, shard: usize) -> Option<ExitStatus> {
        if let Some(status) = self.0.wait_exit(shard, EXIT_GRACE).await {
            return Some(status);
        }
        let _ = self.0.kill_shard(shard);
        self.0.wait_exit(shard, EXIT_GRACE).await
    }

    fn all_retired(&self) -> bool {
        (0..self.0.shard_count()).all(|s| self.0.router().state(s) == Some(ShardState::Retired))
    }
}

impl AsyncParent for Sharded {
    type Raw = Result<ShardedIncoming, ShardError<ReadError>>;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Self::Raw> {
        if self.all_retired() {
            // poll_recv would answer Pending at once, forever.
            return Poll::Pending;
        }
        self.0.poll_recv(cx)
    }

    async fn item(&mut self, raw: Self::Raw) -> Item {
        match raw {
            Ok(ShardedIncoming::Pending) => Item::Pending,
            // Only a supervised handle restarts a shard; this one is not.
            Ok(ShardedIncoming::ShardRestarted { .. }) => Item::Pending,
            Ok(ShardedIncoming::Frame { shard, frame }) => {
                owned_by(self.0.shard_of(frame.conn), shard, frame)
            }
            Ok(ShardedIncoming::InvalidFrame { shard, error }) => {
                Item::Invalid(format!("shard {shard}: {error}"))
            }
            Ok(ShardedIncoming::ShardExited(exit)) => Item::Gone {
                fatal: false,
                message: format!("shard {}'s output ended", exit.shard),
                status: match exit.status {
                    Some(status) => Some(status),
                    None => self.end_status(exit.shard).await,
                },
                last: self.all_retired(),
            },
            // The handle kills the shard; its exit is the next item.
            Err(e) => Item::Gone {
                fatal: matches!(e.error, ReadError::Framing(_)),
                message: e.to_string(),
                status: None,
                last: false,
            },
        }
    }

    fn try_command(&mut self, cmd: &Command) -> Option<Result<(), Refusal>> {
        match relay_try_call!(self.0, cmd) {
            Err(ShardError {
                error: SendError::Backpressure(_),
                ..
            }) => None,
            result => Some(result.map_err(|e| Refusal {
                worker_gone: e.error == SendError::WorkerGone,
                message: e.to_string(),
            })),
        }
    }

    fn wants_write(&self) -> bool {
        (0..self.0.shard_count()).any(|s| self.0.shard(s).is_some_and(|b| b.link().wants_write()))
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.0.flush().await.map_err(|e| e.to_string())
    }

    fn has_buffered(&self) -> bool {
        (0..self.0.shard_count()).any(|s| self.0.shard(s).is_some_and(|b| b.link().has_buffered()))
    }

    fn close_write(&mut self) {
        if let Err(e) = self.0.close_write() {
            eprintln!("parent-adapter: {e}");
        }
    }

    fn kill(&mut self) {
        for shard in 0..self.0.shard_count() {
            let _ = self.0.kill_shard(shard);
        }
    }

    async fn reap(&mut self) {
        for shard in 0..self.0.shard_count() {
            self.end_status(shard).await;
        }
    }
}
