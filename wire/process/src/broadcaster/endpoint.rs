//! The parent's end of one worker, shared by the blocking and the tokio
//! handle: the I/O-free [`Link`] over the worker's non-blocking fds, and
//! the worker process itself. The handles differ only in how they wait.

use std::io;
use std::os::fd::BorrowedFd;

use broadcast_wire::ReadError;

use crate::link::{Incoming, Link, ReadSide};

use super::fd_io::{FdReader, FdWriter};
use super::lifecycle::Worker;
use super::options::Options;
use super::spawn::WorkerProcess;
use super::stderr::StderrTail;

/// The [`Link`] core of a handle: over the worker's non-blocking fds.
pub type FdLink = Link<FdReader, FdWriter>;

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) link: FdLink,
    pub(crate) stderr: Option<StderrTail>,
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
            worker: process.worker,
        }
    }

    /// The link's next item, with the exit status filled in when the
    /// output has ended.
    pub(crate) fn read(&mut self) -> Result<Incoming, ReadError> {
        let item = self.link.read()?;
        Ok(item.with_status(|| self.worker.try_status()))
    }

    pub(crate) fn read_fd(&self) -> BorrowedFd<'_> {
        self.link.reader().fd()
    }

    /// `None` once the command stream is closed.
    pub(crate) fn write_fd(&self) -> Option<BorrowedFd<'_>> {
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
        self.link.read_side() != ReadSide::Ended
    }

    /// Kills the worker now (`SIGKILL`).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        self.worker.kill()
    }
}
