//! The parent's end of one worker, shared by the blocking and the tokio
//! handle: the I/O-free [`Link`] over the worker's non-blocking fds, and
//! the worker process itself. The handles differ only in how they wait.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use broadcast_wire::{ReadError, SubCommand};

use crate::link::{
    FlushError, FlushStatus, Incoming, Link, Phase, ReadSide, Restart, RestartCause, SendError, Supervision,
    Supervisor, Unflushed,
};

use super::fd_io::{FdReader, FdWriter};
use super::lifecycle::Worker;
use super::options::Options;
use super::spawn::{Transport, WorkerProcess};
use super::stderr::StderrTail;

/// Builds the `Command` of each worker a supervised handle spawns.
pub(crate) type CommandFactory = Box<dyn FnMut() -> Command + Send + Sync>;

/// What a supervised endpoint needs besides its link and process: the
/// policy, and how to spawn a replacement.
pub(crate) struct Supervised {
    pub(crate) sup: Supervisor,
    factory: CommandFactory,
    transport: Transport,
    opts: Options,
    /// The restart to report before anything of the new worker.
    event: Option<Restart>,
    /// The handle killed the worker, for this reason.
    kill_cause: Option<RestartCause>,
    /// What the dead worker wrote and the relay had not read yet, read to
    /// its end after the worker exited: reported before `event`.
    drained: VecDeque<Incoming>,
}

impl fmt::Debug for Supervised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervised")
            .field("sup", &self.sup)
            .field("transport", &self.transport)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// Why a worker that ended with `status` ended.
fn cause_of(status: ExitStatus) -> RestartCause {
    match status.signal() {
        Some(sig) => RestartCause::Signaled(sig),
        None => RestartCause::Exited(Some(status)),
    }
}

/// Most items read from a dead worker's fd after its death (besides those
/// already read ahead): its output ends at end-of-file, but a process it
/// left behind could hold the write end and keep writing.
const DRAIN_MAX_READS: usize = 1 << 16;

/// Why a supervised worker whose output could not be read is replaced,
/// and whether the handle must kill it: its exit status if it has
/// exited, else the error ([`RestartCause::ReadFailed`]).
fn read_failure(error: &io::Error, status: Option<ExitStatus>) -> (RestartCause, bool) {
    match status {
        Some(status) => (cause_of(status), false),
        None => (RestartCause::ReadFailed(error.to_string()), true),
    }
}

/// The [`Link`] core of a handle: over the worker's non-blocking fds.
pub type FdLink = Link<FdReader, FdWriter>;

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) link: FdLink,
    pub(crate) stderr: Option<StderrTail>,
    /// With supervision: the policy and the respawn.
    pub(crate) supervised: Option<Box<Supervised>>,
    /// Last, so it is dropped last: the fds above are closed by the time it
    /// waits for the worker to exit (see `lifecycle`).
    pub(crate) worker: Worker,
}

impl Endpoint {
    pub(crate) fn new(process: WorkerProcess, opts: &Options) -> Endpoint {
        let writer = FdWriter::new(process.write, process.write_kind);
        Endpoint {
            link: Link::new(
                FdReader::new(process.read),
                writer,
                opts.queue_limit(),
                opts.max_payload_len(),
            ),
            stderr: process.stderr,
            supervised: None,
            worker: process.worker,
        }
    }

    /// A supervised endpoint: spawns the first worker with `factory()`.
    pub(crate) fn spawn_supervised(
        mut factory: CommandFactory,
        transport: Transport,
        opts: &Options,
        supervision: Supervision,
    ) -> Result<Endpoint, super::SpawnError> {
        let process = WorkerProcess::spawn(factory(), transport, opts)?;
        let mut end = Endpoint::new(process, opts);
        end.supervised = Some(Box::new(Supervised {
            sup: Supervisor::new(supervision, Instant::now()),
            factory,
            transport,
            opts: opts.clone(),
            event: None,
            kill_cause: None,
            drained: VecDeque::new(),
        }));
        end.drive(Instant::now());
        Ok(end)
    }

    // ---- commands ---------------------------------------------------------

    /// Queues `cmd`: in the link, or while supervised and the worker is
    /// being replaced, in the supervisor's backlog.
    pub(crate) fn send(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        let Some(s) = self.supervised.as_deref_mut() else {
            return self.link.send(cmd);
        };
        s.sup.admit(cmd)?;
        if s.sup.direct() && !self.link.is_write_gone() {
            self.link.send(cmd)?;
            s.sup.queued(cmd);
            Ok(())
        } else {
            s.sup
                .push_backlog(cmd, self.link.queue_limit(), self.link.max_payload())
        }
    }

    /// Whether [`Endpoint::send`] would queue `cmd` now.
    pub(crate) fn check_send(&self, cmd: &SubCommand) -> Result<(), SendError> {
        match self.supervised.as_deref() {
            None => self.link.check_send(cmd),
            Some(s) => {
                s.sup.admit(cmd)?;
                if s.sup.direct() && !self.link.is_write_gone() {
                    self.link.check_send(cmd)
                } else {
                    s.sup
                        .check_backlog(cmd, self.link.queue_limit(), self.link.max_payload())
                }
            }
        }
    }

    /// Writes what the fd takes. Supervised: first the policy's due work
    /// (a restart after its backoff, the backlog, a probe); a dead worker
    /// is replaced rather than reported, and while none runs this says
    /// [`FlushStatus::WouldBlock`] (see [`Endpoint::next_deadline`]).
    pub(crate) fn flush(&mut self) -> Result<FlushStatus, FlushError> {
        match self.supervised.as_deref() {
            None => return self.link.flush(),
            // Closed on purpose: nothing is queued (close_write saw to it)
            // and nothing more can be.
            Some(s) if s.sup.is_write_closed() => {
                return if s.sup.phase() == Phase::Running {
                    self.link.flush()
                } else {
                    Ok(FlushStatus::Flushed)
                };
            }
            Some(_) => {}
        }
        let now = Instant::now();
        for _ in 0..3 {
            self.drive(now);
            let Some(s) = self.supervised.as_deref_mut() else {
                unreachable!()
            };
            match s.sup.phase() {
                Phase::Running => {}
                Phase::Backoff(_) => return Ok(FlushStatus::WouldBlock),
                Phase::GaveUp => {
                    return Err(FlushError::WorkerGone {
                        unsent_commands: 0,
                        unsent_bytes: 0,
                    });
                }
            }
            let result = self.link.flush();
            s.sup.written(self.link.sent_commands(), now);
            match result {
                Ok(FlushStatus::WouldBlock) => return Ok(FlushStatus::WouldBlock),
                Ok(FlushStatus::Flushed) => {
                    if !s.sup.has_backlog() && s.sup.want_probe(now).is_none() {
                        return Ok(FlushStatus::Flushed);
                    }
                }
                Err(FlushError::WorkerGone { .. }) => {
                    self.worker_died(RestartCause::WriteGone, true, now);
                    return Ok(FlushStatus::WouldBlock);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(if self.wants_write() {
            FlushStatus::WouldBlock
        } else {
            FlushStatus::Flushed
        })
    }

    /// Whether a flush has something to do now.
    pub(crate) fn wants_write(&self) -> bool {
        match self.supervised.as_deref() {
            None => self.link.wants_write(),
            Some(s) => s.sup.phase() == Phase::Running && (self.link.wants_write() || s.sup.has_backlog()),
        }
    }

    /// Supervised: when the handle must act without any fd being ready
    /// (the end of a backoff, a probe's deadline, an idle probe); `None`
    /// unsupervised.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.supervised
            .as_deref()
            .and_then(|s| s.sup.next_deadline(Instant::now()))
    }

    /// How long a blocking helper may wait for fds: at most `budget`, and
    /// supervised, no later than [`Endpoint::next_deadline`].
    pub(crate) fn wait_budget(&self, budget: Option<Duration>) -> Option<Duration> {
        match self.next_deadline() {
            None => budget,
            Some(at) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(budget.map_or(until, |b| b.min(until)))
            }
        }
    }

    /// Supervised: the policy's due work at `now`.
    fn drive(&mut self, now: Instant) {
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        if s.sup.is_write_closed() {
            // The worker is finishing on purpose: nothing to supervise.
            return;
        }
        if s.sup.unresponsive(now) {
            // Late only if its answer is not waiting to be read: take what
            // the worker wrote; frames the relay has not read yet leave the
            // verdict to a later read.
            let _ = self.link.read_ahead();
            if !self.link.has_buffered() {
                self.worker_died(RestartCause::Unresponsive, true, now);
                return;
            }
        }
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        if s.sup.respawn_due(now) {
            self.respawn(now);
        }
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        if s.sup.phase() != Phase::Running {
            return;
        }
        let link = &mut self.link;
        while s.sup.next_backlog(|cmd| link.send(cmd).is_ok()) {}
        if let Some(probe) = s.sup.want_probe(now)
            && self.link.send(&probe).is_ok()
        {
            s.sup.probe_queued(&probe, now);
        }
    }

    /// The worker is dead (or, with `kill`, is killed now): the policy
    /// decides on the restart.
    fn worker_died(&mut self, cause: RestartCause, kill: bool, now: Instant) {
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        if s.sup.phase() != Phase::Running {
            return;
        }
        let mut cause = cause;
        if cause == RestartCause::WriteGone
            && let Some(status) = self.worker.try_status()
        {
            // It had already exited: its status says more than the EPIPE.
            cause = cause_of(status);
        } else if kill {
            let _ = self.worker.kill();
            s.kill_cause = Some(cause.clone());
        }
        s.sup.died(cause, now);
        if s.sup.phase() == Phase::GaveUp {
            // No replacement will reap it: do it now (it is dead or killed).
            self.worker.kill_and_reap();
            self.drain_dead(now);
        }
    }

    /// After the worker has exited (reaped): reads what it wrote and was
    /// not read yet, from the link's stash and then from the fd until its
    /// end (end-of-file: the writer is dead; with a socketpair, ECONNRESET
    /// reads as end-of-file too), and keeps it for the relay in order,
    /// before the restart's report. Each frame goes through the
    /// supervisor as if read while it lived: a `CLOSED` answering an Add
    /// updates the mirror (so a refused Add is not replayed), the probe's
    /// frames are consumed. After a framing error nothing can be trusted:
    /// the rest is discarded, as before. Without blocking: the fd is
    /// non-blocking, and a `Pending` (a process it left behind holds the
    /// write end) ends the drain.
    fn drain_dead(&mut self, now: Instant) {
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        let mut reads = 0;
        loop {
            if !self.link.has_buffered() {
                if reads == DRAIN_MAX_READS {
                    break;
                }
                reads += 1;
            }
            match self.link.read() {
                Ok(Incoming::Frame(frame)) => {
                    if s.sup.on_frame(&frame, now) {
                        s.drained.push_back(Incoming::Frame(frame));
                    }
                }
                Ok(item @ Incoming::InvalidFrame(_)) => s.drained.push_back(item),
                // Its end, nothing more for now, or a broken stream.
                Ok(_) | Err(_) => break,
            }
        }
    }

    /// Reaps the dead worker and spawns the next.
    fn respawn(&mut self, now: Instant) {
        if self.supervised.is_none() {
            return;
        }
        let status = match self.worker.try_status() {
            Some(status) => Some(status),
            None => self.worker.kill_and_reap(),
        };
        // Its output is complete now: deliver what is left of it first.
        self.drain_dead(now);
        let Some(s) = self.supervised.as_deref_mut() else {
            return;
        };
        let cause = match (s.kill_cause.take(), status) {
            (Some(killed), _) => killed,
            (None, Some(st)) => cause_of(st),
            (None, None) => s.sup.cause().cloned().unwrap_or(RestartCause::Exited(None)),
        };
        match WorkerProcess::spawn((s.factory)(), s.transport, &s.opts) {
            Ok(process) => {
                let fresh = Endpoint::new(process, &s.opts);
                self.link = fresh.link;
                self.stderr = fresh.stderr;
                // The old worker is reaped: its drop does not wait.
                let _old = std::mem::replace(&mut self.worker, fresh.worker);
                s.event = Some(s.sup.respawned(Some(cause), now));
            }
            Err(e) => s.sup.died(RestartCause::SpawnFailed(e.to_string()), now),
        }
    }

    /// The worker's exit status once it has exited (reaping it), without
    /// blocking. Once it is known the link learns it too
    /// ([`Link::worker_exited`](crate::link::Link::worker_exited)): no
    /// command claims success after the death is known, even if a copy of
    /// the pipe's read end, in a child being spawned elsewhere, would let a
    /// write succeed.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self.worker.try_status();
        if status.is_some() {
            self.link.worker_exited();
        }
        status
    }

    /// The link's next item, with the exit status filled in when the
    /// output has ended. Supervised: the probe's frames are consumed, each
    /// `CLOSED` is applied to the mirror, a dead worker is replaced (reported
    /// once as [`Incoming::WorkerRestarted`]), and the output's end is
    /// reported only once supervision gave up.
    pub(crate) fn read(&mut self) -> Result<Incoming, ReadError> {
        if self.supervised.is_none() {
            let item = self.link.read()?;
            return Ok(item.with_status(|| self.exit_status()));
        }
        let now = Instant::now();
        self.drive(now);
        loop {
            let Some(s) = self.supervised.as_deref_mut() else {
                unreachable!()
            };
            if let Some(item) = s.drained.pop_front() {
                return Ok(item);
            }
            if let Some(restart) = s.event.take() {
                return Ok(Incoming::WorkerRestarted(restart));
            }
            match s.sup.phase() {
                Phase::Running => {}
                // Closed during a backoff: the dead worker is the last one.
                Phase::Backoff(_) if s.sup.is_write_closed() => {
                    return Ok(Incoming::WorkerExited(self.exit_status()));
                }
                Phase::Backoff(_) => return Ok(Incoming::Pending),
                Phase::GaveUp => {
                    return Ok(Incoming::WorkerExited(self.exit_status()));
                }
            }
            if s.sup.is_write_closed() {
                // The relay ended the stream: the worker's end, or a broken
                // stream, is reported as on an unsupervised handle, never
                // answered with a restart. The probe's frames are still
                // consumed.
                match self.link.read()? {
                    Incoming::Frame(frame) if !s.sup.on_frame(&frame, now) => continue,
                    item => return Ok(item.with_status(|| self.exit_status())),
                }
            }
            match self.link.read() {
                Ok(Incoming::Frame(frame)) => {
                    if s.sup.on_frame(&frame, now) {
                        return Ok(Incoming::Frame(frame));
                    }
                }
                Ok(Incoming::WorkerExited(_)) => {
                    let cause = match self.worker.try_status() {
                        Some(status) => cause_of(status),
                        None => RestartCause::Exited(None),
                    };
                    self.worker_died(cause, false, now);
                    self.drive(now);
                }
                Ok(item) => return Ok(item),
                Err(ReadError::Framing(e)) => {
                    self.worker_died(RestartCause::FramingBroken(e), true, now);
                    self.drive(now);
                }
                Err(ReadError::Io(e)) => {
                    // Another death: the worker is replaced, the error is
                    // not the relay's (a sharded handle would retire it).
                    let (cause, kill) = read_failure(&e, self.worker.try_status());
                    self.worker_died(cause, kill, now);
                    self.drive(now);
                }
            }
        }
    }

    /// Ends the command stream. Supervised, it is refused while the
    /// backlog holds commands too, and the worker's end that follows is
    /// the expected one: it is reported as [`Incoming::WorkerExited`],
    /// never answered with a restart ([`Supervisor::close_write`]). Closed
    /// during a backoff, the dead worker is the last: it is reaped now.
    pub(crate) fn close_write(&mut self) -> Result<(), Unflushed> {
        let Some(phase) = self.supervised.as_deref().map(|s| s.sup.phase()) else {
            return self.link.close_write();
        };
        let queued = self.pending_bytes();
        if queued > 0 {
            return Err(Unflushed { queued_bytes: queued });
        }
        if phase == Phase::Running {
            self.link.close_write()?;
        } else if phase != Phase::GaveUp {
            // Dead (backoff): no replacement will reap it. What it wrote
            // is still delivered before its end.
            self.worker.kill_and_reap();
            self.drain_dead(Instant::now());
        }
        if let Some(s) = self.supervised.as_deref_mut() {
            s.sup.close_write();
        }
        Ok(())
    }

    /// Bytes of commands not yet written: the link's queue and, supervised,
    /// the backlog (while no worker runs, only the backlog: the dead
    /// worker's queue was carried over into it).
    pub(crate) fn pending_bytes(&self) -> usize {
        match self.supervised.as_deref() {
            None => self.link.queued_bytes(),
            Some(s) if s.sup.phase() == Phase::Running => self.link.queued_bytes() + s.sup.backlog_bytes(),
            Some(s) => s.sup.backlog_bytes(),
        }
    }

    /// The supervision policy, if supervised.
    pub(crate) fn supervisor(&self) -> Option<&Supervisor> {
        self.supervised.as_deref().map(|s| &s.sup)
    }

    /// Which worker the link's fds belong to: changes when a supervised
    /// endpoint spawns a replacement (a tokio handle then registers the
    /// new fds).
    #[cfg(feature = "tokio")]
    pub(crate) fn generation(&self) -> u64 {
        self.supervised.as_deref().map_or(0, |s| s.sup.restarts())
    }

    pub(crate) fn read_fd(&self) -> BorrowedFd<'_> {
        self.link.reader().fd()
    }

    /// `None` once the command stream is closed (or, supervised, while no
    /// worker runs).
    pub(crate) fn write_fd(&self) -> Option<BorrowedFd<'_>> {
        if self
            .supervised
            .as_deref()
            .is_some_and(|s| s.sup.phase() != Phase::Running)
        {
            return None;
        }
        self.link.writer().fd()
    }

    /// Whether the worker is still there: with a child handle, whether the
    /// process runs (reaping it if it has exited); without one, whether its
    /// output is still open and no write has found it gone.
    pub(crate) fn is_alive(&mut self) -> bool {
        match self.worker.is_running() {
            Some(running) => running,
            None => !self.link.output_ended() && !self.link.is_write_gone(),
        }
    }

    /// Whether the read fd is still worth waiting for.
    pub(crate) fn read_open(&self) -> bool {
        if self
            .supervised
            .as_deref()
            .is_some_and(|s| s.sup.phase() != Phase::Running)
        {
            return false;
        }
        self.link.read_side() != ReadSide::Ended
    }

    /// Whether items wait in memory that no fd readiness announces: read
    /// ahead in the link, or (supervised) a dead worker's last output and
    /// the restart's report.
    pub(crate) fn has_buffered(&self) -> bool {
        self.link.has_buffered()
            || self
                .supervised
                .as_deref()
                .is_some_and(|s| s.event.is_some() || !s.drained.is_empty())
    }

    /// Kills the worker now (`SIGKILL`).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        self.worker.kill()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::os::fd::OwnedFd;
    use std::os::unix::process::ExitStatusExt;
    use std::sync::Arc;

    use super::super::fd_io::FdKind;
    use super::*;

    #[test]
    fn a_read_error_is_a_restart_cause() {
        let e = io::Error::from_raw_os_error(nix::libc::EIO);
        assert_eq!(
            read_failure(&e, None),
            (RestartCause::ReadFailed(e.to_string()), true)
        );
        // Already exited: its status says more, and there is nothing to kill.
        let killed = ExitStatus::from_raw(9);
        assert_eq!(read_failure(&e, Some(killed)), (RestartCause::Signaled(9), false));
    }

    /// A supervised endpoint whose read fails with an I/O error (here
    /// `EBADF`: its link now reads a write-only `/dev/null`) replaces its
    /// worker and reports no error.
    #[test]
    fn a_supervised_read_error_restarts_the_worker() {
        let factory: CommandFactory = Box::new(|| {
            let mut c = Command::new("sh");
            c.args(["-c", "exec cat >/dev/null"]);
            c
        });
        let sup = Supervision::new().backoff(Duration::from_millis(10), Duration::from_millis(10));
        let mut end = Endpoint::spawn_supervised(factory, Transport::Stdio, &Options::new(), sup).unwrap();
        let pid = end.worker.pid().unwrap();
        let devnull = || {
            Arc::new(OwnedFd::from(
                OpenOptions::new().write(true).open("/dev/null").unwrap(),
            ))
        };
        end.link = Link::new(
            FdReader::new(devnull()),
            FdWriter::new(devnull(), FdKind::Other),
            1 << 20,
            1 << 20,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let restart = loop {
            assert!(Instant::now() < deadline, "no restart");
            match end.read().expect("a read error reaches the relay") {
                Incoming::WorkerRestarted(r) => break r,
                Incoming::Pending => std::thread::sleep(Duration::from_millis(2)),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(matches!(restart.cause, RestartCause::ReadFailed(_)), "{restart}");
        assert_ne!(end.worker.pid(), Some(pid));
    }
}
