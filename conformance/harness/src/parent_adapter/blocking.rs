//! The blocking handles, `Broadcaster` and `ShardedBroadcaster`, in one
//! `poll` event loop: stdin (the actions) and the worker's fds are polled
//! together; after every wake-up the loop reads frames until the handle
//! says `Pending` (PROTOCOL.md#parent-receiving: no frame is left in
//! memory while the loop sleeps), flushes what is queued, then serves the
//! complete action lines.
//!
//! Back-pressure policy (PROTOCOL.md#parent-flow-control): a command the
//! full queue cannot take is refused at once (`SendError::Backpressure`,
//! answered `refused`, nothing queued), as a relay on an event loop would
//! answer its client "busy"; nothing ever waits for room, so the loop
//! never stops reading the worker.

use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::process::{ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::sharded::{ShardState, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{Broadcaster, FlushError, FlushStatus, Incoming, Options, SendError};
use broadcast_wire::ReadError;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::contract::{Command, Out, Refusal, Session, Start, Step};
use super::{EXIT_GRACE, Input, Item, LOST_GRACE, SHUTDOWN_GRACE, relay_call, worker_command};

/// What the loop needs from a blocking handle.
trait BlockingParent {
    /// Sends `cmd` with the handle's named method.
    fn command(&mut self, cmd: &Command) -> Result<(), Refusal>;
    /// The next item, without waiting (but for a bounded wait for an exit
    /// status once a worker is gone).
    fn read(&mut self) -> Item;
    /// Writes what the fds take; `Err` once a write finds a worker gone.
    fn flush(&mut self) -> Result<FlushStatus, String>;
    /// Whether commands wait to be written.
    fn wants_write(&self) -> bool;
    /// The fds to poll: (readable, writable).
    fn fds(&self) -> (Vec<BorrowedFd<'_>>, Vec<BorrowedFd<'_>>);
    /// Ends the command stream(s).
    fn close_write(&mut self);
    /// Kills the worker(s).
    fn kill(&mut self);
    /// Waits for the worker(s) to exit, kills those that do not, reaps all.
    fn reap(&mut self);
}

/// `--handle blocking`.
pub fn single(start: &Start, input: Input, mut out: Out) -> ExitCode {
    match Broadcaster::spawn_with(worker_command(start), start.transport, &Options::new()) {
        Ok(b) => {
            out.started();
            Loop::new(Single(b), input, out).run()
        }
        Err(e) => {
            out.refused(0, &format!("cannot start the worker: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// `--handle sharded`: K workers, each running the `start` command.
pub fn sharded(start: &Start, shards: NonZeroUsize, input: Input, mut out: Out) -> ExitCode {
    let spawned = ShardedBroadcaster::spawn(
        shards,
        |_| worker_command(start),
        start.transport,
        &Options::new(),
    );
    match spawned {
        Ok(b) => {
            out.started();
            Loop::new(Sharded(b), input, out).run()
        }
        Err(e) => {
            out.refused(0, &format!("cannot start the workers: {e}"));
            ExitCode::FAILURE
        }
    }
}

struct Loop<P> {
    parent: P,
    session: Session,
    input: Input,
    /// Some worker may still write: its fds are polled.
    reading: bool,
}

impl<P: BlockingParent> Loop<P> {
    fn new(parent: P, input: Input, out: Out) -> Self {
        Loop {
            parent,
            session: Session::new(out),
            input,
            reading: true,
        }
    }

    fn run(&mut self) -> ExitCode {
        loop {
            self.handle_frames();
            self.flush_now();
            while let Some(line) = self.input.next_line() {
                match self.session.step(&line) {
                    Step::Command { seq, cmd, effect } => {
                        let result = self.parent.command(&cmd);
                        let lost = matches!(&result, Err(r) if r.worker_gone);
                        self.session.answer(seq, effect, result);
                        if lost {
                            self.lost_worker("the worker closed its input".into());
                        }
                    }
                    Step::Sync(seq) => {
                        self.write_all(None);
                        self.session.synced(seq);
                    }
                    Step::Shutdown(seq) => {
                        self.finish();
                        self.session.shut_down(seq);
                        return ExitCode::SUCCESS;
                    }
                    Step::Answered => {}
                }
            }
            if self.input.at_eof() {
                self.finish();
                return ExitCode::SUCCESS;
            }
            self.wait(true, None);
        }
    }

    /// Reads until the handle says `Pending`, handling every item.
    /// Returns how many items there were.
    fn handle_frames(&mut self) -> usize {
        let mut handled = 0;
        while self.reading {
            match self.parent.read() {
                Item::Pending => break,
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
            handled += 1;
        }
        handled
    }

    /// Writes what the fds take now.
    fn flush_now(&mut self) {
        if self.parent.wants_write()
            && let Err(message) = self.parent.flush()
        {
            self.lost_worker(message);
        }
    }

    /// Writes every accepted command (or finds the worker gone), reading
    /// and handling frames meanwhile, then handles every frame read: the
    /// `sync` barrier. With a `deadline`, gives up then.
    fn write_all(&mut self, deadline: Option<Instant>) {
        loop {
            self.handle_frames();
            if !self.parent.wants_write() {
                break;
            }
            match self.parent.flush() {
                Ok(FlushStatus::Flushed) => {}
                Ok(FlushStatus::WouldBlock) => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if left.is_some_and(|l| l.is_zero()) {
                        break;
                    }
                    self.wait(false, left);
                }
                Err(message) => self.lost_worker(message),
            }
        }
        self.handle_frames();
    }

    /// A write found the worker's input closed: its output ends next. Read
    /// it to the end (its last frames are still delivered), killing the
    /// worker if it keeps its output open, and report it gone.
    fn lost_worker(&mut self, message: String) {
        let mut deadline = Instant::now() + LOST_GRACE;
        let mut killed = false;
        while self.reading && !self.session.is_gone() {
            self.handle_frames();
            if !self.reading || self.session.is_gone() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if killed {
                    break;
                }
                self.parent.kill();
                killed = true;
                deadline = Instant::now() + EXIT_GRACE;
            }
            self.wait(false, Some(left));
        }
        self.session.worker_gone(false, &message, None, true);
    }

    /// The end of life: write what is queued (killing a worker that does
    /// not take it within SHUTDOWN_GRACE), end the command stream, deliver
    /// the worker's last frames until its output ends (killing it after
    /// SHUTDOWN_GRACE of silence), reap it.
    fn finish(&mut self) {
        self.session.ending();
        self.write_all(Some(Instant::now() + SHUTDOWN_GRACE));
        if self.parent.wants_write() {
            eprintln!("parent-adapter: the worker does not read its input: killing it");
            self.parent.kill();
        }
        self.parent.close_write();
        let mut deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut killed = false;
        while self.reading {
            if self.handle_frames() > 0 {
                deadline = Instant::now() + SHUTDOWN_GRACE;
            }
            if !self.reading {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if killed {
                    break;
                }
                eprintln!("parent-adapter: the worker did not exit after its input ended: killing it");
                self.parent.kill();
                killed = true;
                deadline = Instant::now() + EXIT_GRACE;
            }
            self.wait(false, Some(left));
        }
        self.parent.reap();
        self.session.release_gone();
    }

    /// Waits until stdin (with `actions`), a worker's output, or a wanted
    /// write fd is ready, or `timeout` passes. Reads stdin if it is ready.
    fn wait(&mut self, actions: bool, timeout: Option<Duration>) {
        let (reads, writes) = self.parent.fds();
        let mut fds = Vec::new();
        if actions && !self.input.at_eof() {
            fds.push(PollFd::new(self.input.fd(), PollFlags::POLLIN));
        }
        if self.reading {
            fds.extend(reads.into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        }
        fds.extend(writes.into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLOUT)));
        if fds.is_empty() {
            return; // nothing to wait for
        }
        let timeout = timeout.map_or(PollTimeout::NONE, |t| {
            PollTimeout::try_from(t.as_millis().clamp(1, i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => panic!("poll failed: {e}"),
        }
        let stdin_ready = actions
            && !self.input.at_eof()
            && fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR));
        drop(fds);
        if stdin_ready && let Err(e) = self.input.fill() {
            eprintln!("parent-adapter: reading stdin: {e}");
        }
    }
}

// ---- Broadcaster ------------------------------------------------------------

struct Single(Broadcaster);

impl Single {
    /// The status of a worker whose output has ended: it gets EXIT_GRACE to
    /// exit, then it is killed. Always reaped.
    fn end_status(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.0.wait_exit(EXIT_GRACE) {
            return Some(status);
        }
        let _ = self.0.kill();
        self.0.wait_exit(EXIT_GRACE)
    }
}

fn refusal(e: SendError) -> Refusal {
    Refusal {
        worker_gone: e == SendError::WorkerGone,
        message: e.to_string(),
    }
}

impl BlockingParent for Single {
    fn command(&mut self, cmd: &Command) -> Result<(), Refusal> {
        relay_call!(self.0, cmd).map_err(refusal)
    }

    fn read(&mut self) -> Item {
        match self.0.read_frame() {
            Ok(Incoming::Pending) => Item::Pending,
            // Only a supervised handle restarts its worker; this one is not.
            Ok(Incoming::WorkerRestarted(_)) => Item::Pending,
            Ok(Incoming::Frame(frame)) => Item::Frame(frame),
            Ok(Incoming::InvalidFrame(e)) => Item::Invalid(e.to_string()),
            Ok(Incoming::WorkerExited(status)) => Item::Gone {
                fatal: false,
                message: "the worker's output ended".into(),
                status: status.or_else(|| self.end_status()),
                last: true,
            },
            // PROTOCOL.md#parent-receiving: a framing error is fatal; the
            // stream is not read again, and the worker is ended.
            Err(e) => Item::Gone {
                fatal: matches!(e, ReadError::Framing(_)),
                message: e.to_string(),
                status: self.end_status(),
                last: true,
            },
        }
    }

    fn flush(&mut self) -> Result<FlushStatus, String> {
        self.0.flush().map_err(|e: FlushError| e.to_string())
    }

    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }

    fn fds(&self) -> (Vec<BorrowedFd<'_>>, Vec<BorrowedFd<'_>>) {
        let writes = if self.0.wants_write() {
            self.0.write_fd().into_iter().collect()
        } else {
            Vec::new()
        };
        (vec![self.0.read_fd()], writes)
    }

    fn close_write(&mut self) {
        if let Err(e) = self.0.close_write() {
            eprintln!("parent-adapter: {e}");
        }
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
    }

    fn reap(&mut self) {
        self.end_status();
    }
}

// ---- ShardedBroadcaster -------------------------------------------------------

/// A shard's frame for a conn of another shard names no connection that
/// shard's worker knows (PROTOCOL.md#parent-lifecycle): it is discarded.
pub(super) fn owned_by(owner: usize, shard: usize, frame: broadcast_wire::BroadcastFrame) -> Item {
    if owner == shard {
        Item::Frame(frame)
    } else {
        Item::Stray(format!(
            "discarded a frame of shard {shard} for conn {}, which shard {owner} owns",
            frame.conn
        ))
    }
}

struct Sharded(ShardedBroadcaster);

impl Sharded {
    /// Waits up to EXIT_GRACE for `shard` to exit, then kills it; reaped.
    fn end_status(&mut self, shard: usize) -> Option<ExitStatus> {
        for attempt in 0..2 {
            let deadline = Instant::now() + EXIT_GRACE;
            loop {
                if let Some(status) = self.0.exit_status(shard) {
                    return Some(status);
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            if attempt == 0 {
                let _ = self.0.kill_shard(shard);
            }
        }
        None
    }

    fn all_retired(&self) -> bool {
        (0..self.0.shard_count()).all(|s| self.0.router().state(s) == Some(ShardState::Retired))
    }
}

impl BlockingParent for Sharded {
    fn command(&mut self, cmd: &Command) -> Result<(), Refusal> {
        relay_call!(self.0, cmd).map_err(|e| Refusal {
            worker_gone: e.error == SendError::WorkerGone,
            message: e.to_string(),
        })
    }

    fn read(&mut self) -> Item {
        match self.0.read_frame() {
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
                status: exit.status.or_else(|| self.end_status(exit.shard)),
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

    fn flush(&mut self) -> Result<FlushStatus, String> {
        self.0.flush().map_err(|e| e.to_string())
    }

    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }

    fn fds(&self) -> (Vec<BorrowedFd<'_>>, Vec<BorrowedFd<'_>>) {
        (
            self.0.read_fds().map(|(_, fd)| fd).collect(),
            self.0.write_fds().map(|(_, fd)| fd).collect(),
        )
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

    fn reap(&mut self) {
        for shard in 0..self.0.shard_count() {
            self.end_status(shard);
        }
    }
}
