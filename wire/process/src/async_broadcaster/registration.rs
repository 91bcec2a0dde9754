//! The worker's fds registered with tokio's reactor.
//!
//! The [`Broadcaster`] owns the fds and does the reading and writing (its
//! framing, queue and `SIGPIPE` handling are the ones to use); tokio only
//! has to say when to try. tokio's safe types own what they register, so
//! each side is registered through a duplicate of the fd, wrapped in the
//! tokio type for its kind (pipe end or socket). A duplicate shares the open
//! file description, so readiness is the same; it also keeps the file open,
//! so a registration is dropped before the `Broadcaster` closes the fd it
//! duplicates (or the worker would never see end-of-file).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::net::unix::pipe;

use crate::broadcaster::Broadcaster;

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

/// Readiness of a [`Broadcaster`]'s fds.
#[derive(Debug)]
pub(super) struct Registration {
    read: Side,
    /// `None` when the write side is the read fd (one socket), or once it
    /// was closed.
    write: Option<Side>,
    write_is_read: bool,
}

impl Registration {
    pub(super) fn new(b: &Broadcaster) -> io::Result<Registration> {
        let read_fd = b.read_fd();
        let write_fd = b.write_fd();
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

    pub(super) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.read.poll_read_ready(cx)
    }

    /// Runs a read attempt; `Err(WouldBlock)` from it clears the readiness.
    pub(super) fn try_read<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.read.try_io(Interest::READABLE, f)
    }

    fn write_side(&self) -> Option<&Side> {
        if self.write_is_read {
            Some(&self.read)
        } else {
            self.write.as_ref()
        }
    }

    /// `None` once the write side is closed.
    pub(super) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>> {
        self.write_side().map(|w| w.poll_write_ready(cx))
    }

    /// Runs a write attempt; `Err(WouldBlock)` from it clears the readiness.
    pub(super) fn try_write<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self.write_side() {
            Some(w) => w.try_io(Interest::WRITABLE, f),
            None => f(),
        }
    }

    /// Drops the separate write pipe's registration (and its duplicate fd),
    /// so that closing the `Broadcaster`'s write fd really closes the pipe.
    pub(super) fn forget_write_pipe(&mut self) {
        self.write = None;
    }
}
