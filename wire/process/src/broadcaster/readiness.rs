//! Waiting for the read and/or write fd with `poll`, for the blocking
//! helpers (`flush_blocking`, `read_frame_timeout`). Event loops do their
//! own waiting with the fds.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Which of the fds asked about can make progress. "Readable" includes
/// hang-up and error, which a read turns into end-of-file or an error;
/// "writable" likewise, which a write turns into `EPIPE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
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

/// Waits until `read` is readable or `write` is writable, or `timeout`
/// passes (then both are false; so they are after `EINTR`, and the caller
/// loops). The two may be the same fd (a socketpair).
pub(crate) fn wait(
    read: Option<BorrowedFd<'_>>,
    write: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let readable = PollFlags::POLLIN;
    let writable = PollFlags::POLLOUT;
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
    match (read, write) {
        (Some(r), Some(w)) if r.as_raw_fd() == w.as_raw_fd() => fds.push(PollFd::new(r, readable | writable)),
        (r, w) => {
            fds.extend(r.map(|r| PollFd::new(r, readable)));
            fds.extend(w.map(|w| PollFd::new(w, writable)));
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
}
