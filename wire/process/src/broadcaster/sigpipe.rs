//! Keeping `SIGPIPE` away from the parent.
//!
//! Writing to a pipe whose reader is gone fails with `EPIPE` *and* raises
//! `SIGPIPE`, whose default action kills the process. Rust binaries ignore
//! `SIGPIPE` at startup, but a host may not (a C program, a language runtime
//! that restored the default, a binary built with `-Zon-broken-pipe=kill`),
//! and a library must not change the process-wide disposition behind its
//! host's back. Sockets have `MSG_NOSIGNAL`; pipes have nothing like it.
//!
//! So, on Linux, writes to a pipe run with `SIGPIPE` blocked in the calling
//! thread only. Linux never discards a signal that is blocked, even one whose
//! disposition is "ignore" ("blocked signals are never ignored", because the
//! handler may change before they are unblocked), and a pipe's `SIGPIPE` is
//! sent to the writing thread. So after an `EPIPE` the signal is certainly
//! pending in this thread, and `sigwait` takes it at once, before the mask is
//! restored. If the thread already had `SIGPIPE` blocked, the host manages it
//! and the signal is left alone.
//!
//! Elsewhere the write is left as it is: the parent relies on `SIGPIPE`
//! being ignored, which Rust binaries do by default.

use std::io;

/// Runs `write`, a sequence of writes to a pipe that stops at the first
/// error, so that an `EPIPE` it meets does not deliver `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn shielded<T>(write: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};

    let mut pipe_only = SigSet::empty();
    pipe_only.add(Signal::SIGPIPE);
    let Ok(previous) = pipe_only.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        // pthread_sigmask cannot fail with a valid `how`; if it ever did,
        // writing unshielded is what every other library does.
        return write();
    };
    if previous.contains(Signal::SIGPIPE) {
        return write();
    }
    let result = write();
    if matches!(&result, Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EPIPE as i32)) {
        // Pending for sure (see the module docs), so this does not block.
        let _ = pipe_only.wait();
    }
    let _ = pipe_only.thread_unblock();
    result
}

/// Elsewhere: no shield (see the module docs).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn shielded<T>(write: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    write()
}
