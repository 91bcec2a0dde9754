//! The write half a [`Link`](super::Link) writes its commands to.

use std::io;

/// The parent's write half of a link: where the queued commands are
/// written, and how the command stream is ended.
///
/// A write that fails with [`io::ErrorKind::BrokenPipe`] or
/// [`io::ErrorKind::ConnectionReset`] means the worker closed its end;
/// [`io::ErrorKind::WouldBlock`] means "full, try again when writable".
/// The handles of this crate use non-blocking fds; tests and fuzzers use
/// in-memory writers.
///
/// ```
/// use broadcast_process::link::Outlet;
///
/// let mut out: Vec<u8> = Vec::new();
/// out.close(); // a Vec has no stream to end
/// ```
pub trait Outlet: io::Write {
    /// Ends the command stream, so the worker reads end-of-file. Called
    /// once, with nothing queued.
    fn close(&mut self);
}

/// An in-memory sink, for examples and tests: closing it does nothing.
impl Outlet for Vec<u8> {
    fn close(&mut self) {}
}
