//! The worker's fds registered with tokio's reactor.
//!
//! The [`Link`](crate::link::Link) core does the reading and writing
//! through the crate's own fd types (their framing, queue and `SIGPIPE`
//! handling are the ones to use); tokio only has to say when to try.
//! tokio's safe types own what they register, so each side is registered
//! through a duplicate of the fd, wrapped in the tokio type for its kind
//! (pipe end or socket). A duplicate shares the open file description, so
//! readiness is the same; it also keeps the file open, so a registration is
//! dropped before the link closes the fd it duplicates (or the worker would
//! never see end-of-file).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::net::unix::pipe;

/// One registered fd.
#[derive(Debug)]
enum Side {
    Reader(pipe::Receiver),
    Writer(pipe::Sender),
    Socket(UnixStream),
}

impl Side {
    fn new(fd: BorrowedFd<'_>, interest: Interest) -> io::Result<Side> {
        let dup = || fd.try_clone_to_owned();
        // A pipe end must be registered with the matching pipe type; anything
        // else (a socket) as a stream, which watches both directions.
        let pipe = if interest.is_readable() && !interest.is_writable() {
            pipe::Receiver::from_owned_fd(dup()?).map(Side::Reader)
        } else if interest.is_writable() && !interest.is_readable() {
            pipe::Sender::from_owned_fd(dup()?).map(Side::Writer)
        } else {
            Err(io::ErrorKind::InvalidInput.into())
        };
        match pipe {
            Ok(side) => Ok(side),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                let socket = std::os::unix::net::UnixStream::from(dup()?);
                Ok(Side::Socket(UnixStream::from_std(socket)?))
            }
            Err(e) => Err(e),
        }
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Side::Reader(r) => r.poll_read_ready(cx),
            Side::Socket(s) => s.poll_read_ready(cx),
            Side::Writer(_) => Poll::Ready(Err(io::ErrorKind::Unsupported.into())),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Side::Writer(w) => w.poll_write_ready(cx),
            Side::Socket(s) => s.poll_write_ready(cx),
            Side::Reader(_) => Poll::Ready(Err(io::ErrorKind::Unsupported.into())),
        }
    }

    /// Runs `f`; a `WouldBlock` from it clears the readiness it consumed.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Side::Reader(r) => r.try_io(f),
            Side::Writer(w) => w.try_io(f),
            Side::Socket(s) => s.try_io(interest, f),
        }
    }
}

/// Readiness of a link's fds.
#[derive(Debug)]
pub(super) struct Registration {
    read: Side,
    /// `None` when the write side is the read fd (one socket), or once it
    /// was closed.
    write: Option<Side>,
    write_is_read: bool,
}

impl Registration {
    pub(super) fn new(read_fd: BorrowedFd<'_>, write_fd: Option<BorrowedFd<'_>>) -> io::Result<Registration> {
        if write_fd.map(|fd| fd.as_raw_fd()) == Some(read_fd.as_raw_fd()) {
            return Ok(Registration {
                read: Side::new(read_fd.as_fd(), Interest::READABLE | Interest::WRITABLE)?,
                write: None,
                write_is_read: true,
            });
        }
        Ok(Registration {
            read: Side::new(read_fd.as_fd(), Interest::READABLE)?,
            write: match write_fd {
                Some(fd) => Some(Side::new(fd, Interest::WRITABLE)?),
                None => None,
            },
            write_is_read: false,
        })
    }

    fn write_side(&self) -> Option<&Side> {
        if self.write_is_read {
            Some(&self.read)
        } else {
            self.write.as_ref()
        }
    }

    /// Runs `attempt` until it gives a value: at once, then each time the
    /// read fd turns readable. `None` from it means "would block", which
    /// clears the readiness it consumed (tokio's `try_io`); `Pending` has
    /// `cx`'s waker registered for the next readiness.
    pub(super) fn poll_read_with<T>(
        &self,
        cx: &mut Context<'_>,
        attempt: impl FnMut() -> Option<T>,
    ) -> Poll<io::Result<T>> {
        poll_with(&self.read, Interest::READABLE, cx, attempt)
    }

    /// As [`Registration::poll_read_with`], for the write fd; `None` once
    /// the write side is closed (nothing can be written).
    pub(super) fn poll_write_with<T>(
        &self,
        cx: &mut Context<'_>,
        attempt: impl FnMut() -> Option<T>,
    ) -> Option<Poll<io::Result<T>>> {
        let side = self.write_side()?;
        Some(poll_with(side, Interest::WRITABLE, cx, attempt))
    }

    /// Drops the separate write pipe's registration (and its duplicate fd),
    /// so that closing the `Broadcaster`'s write fd really closes the pipe.
    pub(super) fn forget_write_pipe(&mut self) {
        self.write = None;
    }
}

/// The one readiness loop of both directions (see
/// [`Registration::poll_read_with`]).
fn poll_with<T>(
    side: &Side,
    interest: Interest,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> Option<T>,
) -> Poll<io::Result<T>> {
    if let Some(value) = attempt() {
        return Poll::Ready(Ok(value));
    }
    loop {
        let ready = if interest.is_readable() {
            side.poll_read_ready(cx)
        } else {
            side.poll_write_ready(cx)
        };
        if let Err(e) = std::task::ready!(ready) {
            return Poll::Ready(Err(e));
        }
        match side.try_io(interest, || {
            attempt().ok_or_else(|| io::ErrorKind::WouldBlock.into())
        }) {
            Ok(value) => return Poll::Ready(Ok(value)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}
