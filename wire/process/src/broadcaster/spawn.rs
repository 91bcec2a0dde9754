//! Starting a worker over one of the two transports of PROTOCOL.md#transports, or
//! adopting fds a relay opened its own way, and making the parent's ends
//! non-blocking.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use command_fds::{CommandFdExt, FdMapping};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::error::SpawnError;
use super::fd_io::{self, FdKind};
use super::lifecycle::Worker;
use super::options::{Options, StderrMode};
use super::stderr::StderrTail;

/// How the parent and the worker are connected (PROTOCOL.md#transports).
///
/// ```
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::process::Command;
///
/// // `sh` ignores the appended `--fd 3` as extra positional arguments.
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "cat <&3 >&3"]);
/// let b = Broadcaster::spawn(cmd, Transport::SocketPair).unwrap();
/// assert_eq!(b.write_fd().map(|fd| std::os::fd::AsRawFd::as_raw_fd(&fd)),
///            Some(std::os::fd::AsRawFd::as_raw_fd(&b.read_fd())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Two pipes: the worker reads commands on its stdin and writes frames
    /// on its stdout. Its stderr follows [`StderrMode`].
    Stdio,
    /// One duplex `AF_UNIX` stream socket. The worker's end is inherited as
    /// fd [`Options::child_fd`] (3 by default) and `--fd N` is appended to
    /// its arguments. Its stdin and stdout are left as the `Command` says
    /// (inherited unless set), its stderr follows [`StderrMode`].
    SocketPair,
}

/// Everything a `Broadcaster` is built from.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) read: Arc<OwnedFd>,
    pub(crate) write: Arc<OwnedFd>,
    pub(crate) write_kind: FdKind,
    pub(crate) worker: Worker,
    pub(crate) stderr: Option<StderrTail>,
}

fn setup(e: impl Into<io::Error>) -> SpawnError {
    SpawnError::Setup(e.into())
}

fn stderr_stdio(mode: StderrMode) -> Stdio {
    match mode {
        StderrMode::Inherit => Stdio::inherit(),
        StderrMode::Null => Stdio::null(),
        StderrMode::Capture { .. } => Stdio::piped(),
    }
}

/// Spawns `command` connected over `transport`.
pub(crate) fn spawn(mut command: Command, transport: Transport, opts: &Options) -> Result<Parts, SpawnError> {
    let program = command.get_program().to_owned();
    command.stderr(stderr_stdio(opts.stderr_mode()));
    match transport {
        Transport::Stdio => {
            command.stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = command
                .spawn()
                .map_err(|source| SpawnError::Spawn { program, source })?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                // Cannot happen: both were set to piped above. Do not leave
                // the child behind if it somehow does.
                let _ = Worker::new(Some(child), Default::default());
                return Err(setup(io::Error::other(
                    "the child's stdin/stdout pipes are missing",
                )));
            };
            adopt(
                OwnedFd::from(stdout),
                Some(OwnedFd::from(stdin)),
                Some(child),
                opts,
            )
        }
        Transport::SocketPair => {
            let child_fd = opts.child_fd_number();
            if child_fd < 3 {
                return Err(SpawnError::ChildFd(child_fd));
            }
            // CLOEXEC on both ends: the child's end reaches only this child,
            // through the mapping, and never a process another thread spawns
            // meanwhile (which would keep the socket open after our worker
            // exits and hide its exit from us).
            let (ours, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(setup)?;
            command
                .fd_mappings(vec![FdMapping {
                    parent_fd: theirs,
                    child_fd,
                }])
                .map_err(|e| setup(io::Error::other(e)))?;
            command.arg("--fd").arg(child_fd.to_string());
            let child = command
                .spawn()
                .map_err(|source| SpawnError::Spawn { program, source })?;
            // The Command owns our copy of the child's end: close it now, so
            // the worker's exit shows up here as end-of-file.
            drop(command);
            adopt(ours, None, Some(child), opts)
        }
    }
}

/// Builds the parts from open fds: `write` is `None` for a socket that
/// carries both directions.
pub(crate) fn adopt(
    read: OwnedFd,
    write: Option<OwnedFd>,
    mut child: Option<Child>,
    opts: &Options,
) -> Result<Parts, SpawnError> {
    let stderr_pipe = match opts.stderr_mode() {
        StderrMode::Capture { max_lines } => child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .map(|s| (s, max_lines)),
        _ => None,
    };
    // From here on the worker is owned: an error below drops it, which
    // kills and reaps it (with no grace: it was never used).
    let mut worker = Worker::new(child, opts.grace());
    let result = (|| {
        let read = Arc::new(read);
        let write = match write {
            Some(w) => Arc::new(w),
            None => Arc::clone(&read),
        };
        fd_io::set_nonblocking(read.as_fd()).map_err(setup)?;
        if !Arc::ptr_eq(&read, &write) {
            fd_io::set_nonblocking(write.as_fd()).map_err(setup)?;
        }
        let write_kind = FdKind::of(write.as_fd()).map_err(setup)?;
        let stderr = match stderr_pipe {
            Some((pipe, max_lines)) => Some(StderrTail::capture(pipe, max_lines).map_err(setup)?),
            None => None,
        };
        Ok((read, write, write_kind, stderr))
    })();
    match result {
        Ok((read, write, write_kind, stderr)) => Ok(Parts {
            read,
            write,
            write_kind,
            worker,
            stderr,
        }),
        Err(e) => {
            worker.set_grace(Default::default());
            Err(e)
        }
    }
}
