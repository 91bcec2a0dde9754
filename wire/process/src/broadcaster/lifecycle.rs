//! The worker process: its exit status, waiting with a deadline, killing,
//! and the end-of-life rule "grace period, then kill, always reap".
//!
//! [`Worker`] is the last field of the [`Broadcaster`](super::Broadcaster),
//! so by the time its `Drop` runs the fds have already been dropped: the
//! worker has seen end-of-file on its input (and `EPIPE` on its output), and
//! a well-behaved one is exiting.

use std::io;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// Longest sleep between two checks while waiting for an exit. Short enough
/// that a prompt exit is seen promptly, long enough not to spin.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub(crate) struct Worker {
    child: Option<Child>,
    status: Option<ExitStatus>,
    /// `waitpid` said the child is not ours to reap (the host set `SIGCHLD`
    /// to `SIG_IGN`, or reaped it itself): it is gone, status unknown.
    lost: bool,
    grace: Duration,
}

impl Worker {
    pub(crate) fn new(child: Option<Child>, grace: Duration) -> Worker {
        Worker {
            child,
            status: None,
            lost: false,
            grace,
        }
    }

    pub(crate) fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn has_child(&self) -> bool {
        self.child.is_some()
    }

    /// The exit status if the worker has exited (reaping it), without
    /// blocking.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_some() || self.lost {
            return self.status;
        }
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(status) => self.status = status,
            Err(_) => self.lost = true,
        }
        self.status
    }

    /// Whether the process is still running (`false` once reaped, or lost).
    /// Without a child handle this is `None`: the caller decides from the fds.
    pub(crate) fn is_running(&mut self) -> Option<bool> {
        self.child.as_ref()?;
        Some(self.try_status().is_none() && !self.lost)
    }

    /// Waits up to `timeout` for the worker to exit and reaps it.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(1);
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if self.lost || self.child.is_none() {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            thread::sleep(interval.min(deadline - now));
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// Sends `SIGKILL` (a no-op once the worker has exited).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.try_status().is_some() || self.lost {
            return Ok(());
        }
        match self.child.as_mut() {
            Some(child) => child.kill(),
            None => Ok(()),
        }
    }

    /// Kills the worker if needed and waits for it: it is reaped on return.
    pub(crate) fn kill_and_reap(&mut self) -> Option<ExitStatus> {
        // If kill fails the process is already dead (or not ours): `wait`
        // below settles which.
        let _ = self.kill();
        if self.status.is_none() && !self.lost {
            if let Some(child) = self.child.as_mut() {
                match child.wait() {
                    Ok(status) => self.status = Some(status),
                    Err(_) => self.lost = true,
                }
            }
        }
        self.status
    }
}

/// Ends several workers whose fds are already closed: they share one grace
/// period (the longest of theirs), so K hung workers cost one grace period,
/// not K; then the ones still running are killed, and all are reaped.
pub(crate) fn end_together(mut workers: Vec<Worker>) {
    let grace = workers.iter().map(|w| w.grace).max().unwrap_or_default();
    let deadline = Instant::now() + grace;
    let mut interval = Duration::from_millis(1);
    loop {
        let running = workers
            .iter_mut()
            .filter_map(|w| w.is_running())
            .filter(|&running| running)
            .count();
        let now = Instant::now();
        if running == 0 || now >= deadline {
            break;
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
    for w in &mut workers {
        if w.is_running() == Some(true) {
            w.kill_and_reap();
        }
    }
    // Each is reaped or known gone: their drops do not wait again.
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        // The fds are closed (see the module docs): give the worker its
        // grace period to notice and exit on its own, then make sure.
        if self.wait_timeout(self.grace).is_none() {
            self.kill_and_reap();
        }
    }
}
