//! Starting a worker over one of the two transports of PROTOCOL.md#transports, or
//! adopting fds a relay opened its own way, and making the parent's ends
//! non-blocking.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
/// ```no_run
/// use broadcast_process::broadcaster::{Broadcaster, Transport};
/// use std::process::Command;
///
/// // The worker gets one duplex socket as its fd 3, and `--fd 3` after its
/// // own arguments; that one fd carries both directions.
/// let b = Broadcaster::spawn(Command::new("broadcast-worker"), Transport::SocketPair)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
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

/// A worker process connected to the parent: its child handle, the parent's
/// ends of the transport (non-blocking), and its captured stderr. Every
/// handle of this crate is built from one ([`Broadcaster::from_process`]);
/// build one yourself to drive the fds some other way, or to keep a
/// duplicate of an fd before handing it over.
///
/// Dropping it unused ends the worker: the fds close, the worker gets its
/// grace period ([`Options::grace_period`]), is killed if needed, and is
/// reaped.
///
/// ```no_run
/// use broadcast_process::broadcaster::{Broadcaster, Options, Transport, WorkerProcess};
/// use std::process::Command;
///
/// let opts = Options::new();
/// let p = WorkerProcess::spawn(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
/// let copy = p.write_fd().try_clone_to_owned()?; // kept before the handle takes the fd
/// let b = Broadcaster::from_process(p, &opts);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Broadcaster::from_process`]: super::Broadcaster::from_process
#[derive(Debug)]
pub struct WorkerProcess {
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

impl WorkerProcess {
    /// Spawns `command` connected over `transport`, with `opts`' stderr
    /// mode, child fd and grace period.
    ///
    /// ```no_run
    /// use broadcast_process::broadcaster::{Options, Transport, WorkerProcess};
    /// use std::process::Command;
    ///
    /// let p = WorkerProcess::spawn(Command::new("broadcast-worker"), Transport::SocketPair, &Options::new())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(
        command: Command,
        transport: Transport,
        opts: &Options,
    ) -> Result<WorkerProcess, SpawnError> {
        spawn(command, transport, opts)
    }

    /// Adopts a worker started some other way: `read` carries its frames,
    /// `write` takes the commands (two pipe ends, or two descriptors of one
    /// socket); with `write` `None`, `read` is one duplex socket. Both are
    /// made non-blocking. With `child`, its exit is reported and it is
    /// reaped (and killed after the grace period); with
    /// [`StderrMode::Capture`] its stderr is captured if it was piped.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Options, WorkerProcess};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (ours, _theirs) = UnixStream::pair().unwrap();
    /// let p = WorkerProcess::adopt(ours.into(), None, None, &Options::new()).unwrap();
    /// assert!(p.pid().is_none());
    /// ```
    pub fn adopt(
        read: OwnedFd,
        write: Option<OwnedFd>,
        child: Option<Child>,
        opts: &Options,
    ) -> Result<WorkerProcess, SpawnError> {
        adopt(read, write, child, opts)
    }

    /// The parent's read end (the worker's frames), non-blocking.
    ///
    /// ```no_run
    /// use std::os::fd::AsRawFd;
    /// # use broadcast_process::broadcaster::{Options, Transport, WorkerProcess};
    /// # let p = WorkerProcess::spawn(std::process::Command::new("broadcast-worker"), Transport::SocketPair, &Options::new())?;
    ///
    /// let fd = p.read_fd().as_raw_fd(); // over a socketpair, p.write_fd() too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The parent's write end (the commands), non-blocking; the read end
    /// itself for a socket.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Options, Transport, WorkerProcess};
    /// # let p = WorkerProcess::spawn(std::process::Command::new("broadcast-worker"), Transport::SocketPair, &Options::new())?;
    /// let copy = p.write_fd().try_clone_to_owned()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_fd(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }

    /// The worker's process id, if there is a child.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Options, Transport, WorkerProcess};
    /// # let p = WorkerProcess::spawn(std::process::Command::new("broadcast-worker"), Transport::SocketPair, &Options::new())?;
    /// if let Some(pid) = p.pid() {
    ///     println!("worker {pid}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.worker.pid()
    }
}

/// Spawns `command` connected over `transport`.
fn spawn(mut command: Command, transport: Transport, opts: &Options) -> Result<WorkerProcess, SpawnError> {
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
fn adopt(
    read: OwnedFd,
    write: Option<OwnedFd>,
    mut child: Option<Child>,
    opts: &Options,
) -> Result<WorkerProcess, SpawnError> {
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
        Ok((read, write, write_kind, stderr)) => Ok(WorkerProcess {
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
