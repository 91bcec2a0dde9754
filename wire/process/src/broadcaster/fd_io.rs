//! The parent's ends of the transport as `io::Read` / `io::Write` over
//! non-blocking fds, so the crate's [`FrameReader`](broadcast_wire::FrameReader) and
//! [`FrameWriter`](broadcast_wire::FrameWriter) do all the framing.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{MsgFlags, Shutdown, UnixAddr, send, sendmsg, shutdown};
use nix::sys::stat::{SFlag, fstat};
use nix::sys::uio::writev;

use super::sigpipe;
use crate::link::Outlet;

/// What an fd is, which decides how to write to it without `SIGPIPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A socket: `send` with `MSG_NOSIGNAL`, `shutdown` to end the stream.
    Socket,
    /// A pipe or FIFO: `write` inside the `SIGPIPE` shield.
    Pipe,
    /// Anything else (a file, a tty): plain `write`, it raises no `SIGPIPE`.
    Other,
}

impl FdKind {
    /// Asks the kernel what `fd` is.
    pub(crate) fn of(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
        let mode = fstat(fd)?.st_mode;
        let format = mode & SFlag::S_IFMT.bits();
        Ok(if format == SFlag::S_IFSOCK.bits() {
            FdKind::Socket
        } else if format == SFlag::S_IFIFO.bits() {
            FdKind::Pipe
        } else {
            FdKind::Other
        })
    }
}

/// Sets `O_NONBLOCK` on the open file description behind `fd`, keeping its
/// other status flags.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The parent's read end of a worker link, as an `io::Read` over a
/// non-blocking fd. Shares the fd with the [`FdWriter`] on a socketpair,
/// which is why both hold an `Arc`: the fd closes when both are dropped.
///
/// ```no_run
/// # use broadcast_process::broadcaster::{Broadcaster, Transport};
/// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
/// let reader = b.link().reader(); // the link reads the worker's frames through it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FdReader {
    fd: Arc<OwnedFd>,
}

impl FdReader {
    pub(crate) fn new(fd: Arc<OwnedFd>) -> FdReader {
        FdReader { fd }
    }

    /// The fd.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// let fd = b.link().reader().fd(); // the same fd as b.read_fd()
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Read for FdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(self.fd.as_fd(), buf) {
            Ok(n) => Ok(n),
            // An AF_UNIX stream socket whose peer closed with our commands
            // still unread in its buffer (a worker that crashed) reports
            // ECONNRESET once everything it sent has been read, where a
            // pipe reports end-of-file. It is the same end of the stream,
            // and must be told apart from "nothing yet" in the same way.
            Err(Errno::ECONNRESET) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// The parent's write end of a worker link, as an `io::Write` over a
/// non-blocking fd that never raises `SIGPIPE` (see the module docs of
/// [`broadcaster`](super)); its fd is gone once the command stream is
/// closed.
///
/// ```no_run
/// # use broadcast_process::broadcaster::{Broadcaster, Transport};
/// # let b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
/// let writer = b.link().writer(); // the link writes the queued commands through it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FdWriter {
    fd: Option<Arc<OwnedFd>>,
    kind: FdKind,
}

impl FdWriter {
    pub(crate) fn new(fd: Arc<OwnedFd>, kind: FdKind) -> FdWriter {
        FdWriter { fd: Some(fd), kind }
    }

    /// The fd, `None` once the command stream was closed.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Transport};
    /// # let mut b = Broadcaster::spawn(std::process::Command::new("broadcast-worker"), Transport::Stdio)?;
    /// b.close_write()?;
    /// let fd = b.link().writer().fd(); // None: the command stream is closed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_deref().map(AsFd::as_fd)
    }

    /// Ends the command stream so the worker reads end-of-file: `shutdown`
    /// for a socket (its read direction stays open), closing for a pipe.
    pub(crate) fn close(&mut self) {
        if let Some(fd) = self.fd.take() {
            if self.kind == FdKind::Socket {
                // Fails only if the peer is already gone, which is the same
                // end state.
                let _ = shutdown(fd.as_raw_fd(), Shutdown::Write);
            }
        }
    }
}

/// `MSG_NOSIGNAL` where the OS has it; elsewhere the parent relies on
/// `SIGPIPE` being ignored (see `sigpipe`).
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const NO_SIGNAL: MsgFlags = MsgFlags::MSG_NOSIGNAL;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
const NO_SIGNAL: MsgFlags = MsgFlags::empty();

impl FdWriter {
    fn open_fd(&self) -> io::Result<&OwnedFd> {
        self.fd
            .as_deref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the command stream was closed"))
    }
}

/// Each write gets the protection its kind needs against `SIGPIPE`: a
/// socket's `MSG_NOSIGNAL`, or a pipe's shield (see `sigpipe`).
impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.open_fd()?;
        Ok(match self.kind {
            FdKind::Socket => send(fd.as_raw_fd(), buf, NO_SIGNAL)?,
            FdKind::Pipe => sigpipe::shielded(|| Ok(nix::unistd::write(fd.as_fd(), buf)?))?,
            FdKind::Other => nix::unistd::write(fd.as_fd(), buf)?,
        })
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.open_fd()?;
        Ok(match self.kind {
            FdKind::Socket => sendmsg::<UnixAddr>(fd.as_raw_fd(), bufs, &[], NO_SIGNAL, None)?,
            FdKind::Pipe => sigpipe::shielded(|| Ok(writev(fd.as_fd(), bufs)?))?,
            FdKind::Other => writev(fd.as_fd(), bufs)?,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Outlet for FdWriter {
    fn close(&mut self) {
        FdWriter::close(self);
    }
}
