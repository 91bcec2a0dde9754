//! Waiting for fds with `poll`, for the blocking handles' helpers
//! (`flush_blocking`, `read_frame_timeout`, and the sharded handle's). Event
//! loops do their own waiting with the fds. The one wait of the crate.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Which of the fds asked about can make progress. "Readable" includes
/// hang-up and error, which a read turns into end-of-file or an error;
/// "writable" likewise, which a write turns into `EPIPE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    /// Some fd of `reads` is readable.
    pub(crate) readable: bool,
    /// Some fd of `writes` is writable.
    pub(crate) writable: bool,
}

/// `poll` timeouts are whole milliseconds: round up, so a wait never ends
/// early and then spins with a zero timeout.
fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    let Some(timeout) = timeout else {
        return PollTimeout::NONE;
    };
    let mut ms = timeout.as_millis();
    if timeout.subsec_nanos() % 1_000_000 != 0 {
        ms += 1;
    }
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

/// Waits until one of `reads` is readable or one of `writes` writable, or
/// `timeout` passes (then both are false; so they are after `EINTR`, and
/// the caller loops). An fd in both lists (a socketpair) is polled once
/// for both.
pub(crate) fn wait(
    reads: &[BorrowedFd<'_>],
    writes: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let readable = PollFlags::POLLIN;
    let writable = PollFlags::POLLOUT;
    let mut fds: Vec<PollFd<'_>> = reads.iter().map(|&r| PollFd::new(r, readable)).collect();
    for &w in writes {
        match fds.iter().position(|p| p.as_fd().as_raw_fd() == w.as_raw_fd()) {
            Some(i) => fds[i] = PollFd::new(w, readable | writable),
            None => fds.push(PollFd::new(w, writable)),
        }
    }
    match poll(&mut fds, poll_timeout(timeout)) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(Ready::default()),
        Err(e) => return Err(e.into()),
    }
    let mut ready = Ready::default();
    let trouble = PollFlags::POLLHUP | PollFlags::POLLERR;
    for pfd in &fds {
        let revents = pfd.revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLNVAL) {
            return Err(Errno::EBADF.into());
        }
        let asked = pfd.events();
        if asked.contains(readable) && revents.intersects(readable | trouble) {
            ready.readable = true;
        }
        if asked.contains(writable) && revents.intersects(writable | trouble) {
            ready.writable = true;
        }
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        assert_eq!(poll_timeout(Some(Duration::ZERO)), PollTimeout::ZERO);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_micros(1)))), 1);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_micros(2500)))), 3);
        assert_eq!(
            poll_timeout(Some(Duration::from_secs(u64::MAX))),
            PollTimeout::MAX
        );
    }

    #[test]
    fn one_socket_in_both_lists_is_polled_once_for_both() {
        let (a, b) = UnixStream::pair().unwrap();
        // Nothing to read yet, room to write: writable only.
        let ready = wait(&[a.as_fd()], &[a.as_fd()], Some(Duration::ZERO)).unwrap();
        assert_eq!(
            ready,
            Ready {
                readable: false,
                writable: true
            }
        );
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        let ready = wait(&[a.as_fd()], &[], Some(Duration::from_secs(5))).unwrap();
        assert!(ready.readable);
        // Several read fds: any one readable is enough.
        let (c, _d) = UnixStream::pair().unwrap();
        let ready = wait(&[c.as_fd(), a.as_fd()], &[], Some(Duration::from_secs(5))).unwrap();
        assert!(ready.readable);
    }
}
