//! The harness's one write path. A case sends bytes no parent would:
//! truncated frames, bad lengths, a frame cut into 1-byte writes. So every
//! byte (the probe set-up, each step's bytes, each probe) is written here,
//! raw and exactly as given, on a duplicate of the worker's write end; the
//! [`Broadcaster`] built from the same [`WorkerProcess`] reads the worker's
//! frames, owns the process and closes the write side at an `end` step.
//!
//! A write that the worker does not take at once waits in `poll` for the
//! write end and, meanwhile, reads the worker's output into an inbox that
//! [`RawWriter::next_incoming`] hands out first: a worker blocked writing
//! its frames cannot deadlock the harness blocked writing its commands.
//!
//! Writing to a worker that is gone is `EPIPE` (or `ECONNRESET` on a
//! socket), reported as [`Written::Gone`]. That needs `SIGPIPE` ignored, as
//! it is in every Rust program (the `broadcast-conformance` binary and test
//! binaries alike).

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, Incoming, Options, Transport, WorkerProcess};
use broadcast_wire::ReadError;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Longest single wait, so an interrupt is noticed quickly.
const SLICE: Duration = Duration::from_millis(100);

/// How a write ended when nothing went wrong on the harness's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The worker took every byte.
    All,
    /// The worker is gone (`EPIPE`, `ECONNRESET`); some bytes may be
    /// unwritten.
    Gone,
}

/// Why a write did not end.
#[derive(Debug)]
pub enum WriteError {
    /// The worker did not take the bytes by the deadline.
    Timeout,
    /// The run was interrupted (Ctrl-C).
    Interrupted,
    /// Writing or waiting failed, or the write side was closed already.
    Io(io::Error),
}

/// A worker process with the harness's duplicate of its write end.
#[derive(Debug)]
pub struct RawWriter {
    /// The duplicate; `None` after [`RawWriter::close_input`]. Declared
    /// before `worker`, so it is closed first: when the [`Broadcaster`]
    /// drops and waits for the worker to exit, the worker has seen the end
    /// of its input.
    fd: Option<OwnedFd>,
    /// The worker's output read while a write waited, in order.
    inbox: VecDeque<Result<Incoming, ReadError>>,
    /// The inbox holds the end of the worker's output (or a read error):
    /// nothing more to read ahead.
    output_ended: bool,
    worker: Broadcaster,
}

impl RawWriter {
    /// Spawns `command` over `transport` and keeps a duplicate of the
    /// parent's write end (non-blocking, like the original, and
    /// close-on-exec) before the process goes to a [`Broadcaster`].
    pub fn spawn(command: Command, transport: Transport, opts: &Options) -> Result<RawWriter, String> {
        let process = WorkerProcess::spawn(command, transport, opts).map_err(|e| e.to_string())?;
        let fd = process
            .write_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot duplicate the worker's write end: {e}"))?;
        Ok(RawWriter {
            fd: Some(fd),
            inbox: VecDeque::new(),
            output_ended: false,
            worker: Broadcaster::from_process(process, opts),
        })
    }

    /// The worker's handle: its process and stderr.
    pub fn worker(&mut self) -> &mut Broadcaster {
        &mut self.worker
    }

    /// Writes all of `bytes`: one `write` when the worker takes them at
    /// once, so each chunk of a chunked step is its own write, and more only
    /// for the rest of a partial write. While it waits, the worker's output
    /// keeps flowing into the inbox.
    pub fn write(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        interrupt: &AtomicBool,
    ) -> Result<Written, WriteError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let fd = self
                .fd
                .as_ref()
                .ok_or_else(|| WriteError::Io(io::Error::other("the worker's input is closed already")))?;
            match nix::unistd::write(fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Ok(Written::Gone),
                Err(Errno::EAGAIN) => {
                    if interrupt.load(Ordering::SeqCst) {
                        return Err(WriteError::Interrupted);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WriteError::Timeout);
                    }
                    self.read_ahead();
                    self.wait(left).map_err(WriteError::Io)?;
                }
                Err(e) => return Err(WriteError::Io(e.into())),
            }
        }
        Ok(Written::All)
    }

    /// Ends the worker's input for real: the Broadcaster's write end is
    /// closed (a socket is shut down for writing) and so is the duplicate;
    /// with pipes the worker sees end of input only when both are.
    pub fn close_input(&mut self) {
        // Nothing is ever queued in the Broadcaster, so this cannot fail
        // for unwritten commands.
        let _ = self.worker.close_write();
        self.fd = None;
    }

    /// The next item of the worker's output: what was read while a write
    /// waited first, then [`Broadcaster::read_frame_timeout`].
    pub fn next_incoming(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
        match self.inbox.pop_front() {
            Some(item) => item,
            None => self.worker.read_frame_timeout(timeout),
        }
    }

    /// Reads whatever the worker has written so far into the inbox.
    fn read_ahead(&mut self) {
        while !self.output_ended {
            let item = self.worker.read_frame();
            match &item {
                Ok(Incoming::Pending) => return,
                Ok(Incoming::WorkerExited(_)) | Err(_) => self.output_ended = true,
                Ok(_) => {}
            }
            self.inbox.push_back(item);
        }
    }

    /// Waits up to `left` (at most [`SLICE`]) for the write end to take
    /// bytes or, while the output is open, for the worker's output.
    fn wait(&self, left: Duration) -> io::Result<()> {
        let Some(fd) = &self.fd else {
            return Ok(());
        };
        let mut fds = vec![PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLOUT)];
        if !self.output_ended {
            fds.push(PollFd::new(self.worker.read_fd(), PollFlags::POLLIN));
        }
        // Whole milliseconds, rounded up so the wait never ends early.
        let ms = left.min(SLICE).as_micros().div_ceil(1000);
        let timeout = PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
