//! Opening a worker's transport: stdio, or one inherited socketpair end.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;

use command_fds::inherited::{InheritedFdError, take_fd_ownership};

/// Where a worker reads commands and writes frames (PROTOCOL.md#transports).
///
/// ```
/// use broadcast_process::worker_io::WorkerTransport;
///
/// let args = ["--fd", "3"].map(String::from);
/// assert_eq!(WorkerTransport::from_args(args).unwrap(), WorkerTransport::Fd(3));
/// assert_eq!(WorkerTransport::from_args(Vec::<String>::new()).unwrap(), WorkerTransport::Stdio);
/// assert!(WorkerTransport::from_args(["--fd", "-1"].map(String::from)).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkerTransport {
    /// Commands on stdin (fd 0), frames on stdout (fd 1): the default.
    #[default]
    Stdio,
    /// One duplex `AF_UNIX` `SOCK_STREAM` socket, inherited as this fd and
    /// named on the command line as `--fd N`.
    Fd(RawFd),
}

/// Why a worker's transport cannot be opened. Each variant says what to fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// `--fd` has no value, or one that is not a descriptor number.
    BadArgument(String),
    /// [`init_inherited_fds`](super::init_inherited_fds) was not called
    /// before `--fd N` was opened.
    NotInitialised,
    /// `--fd N` names no descriptor this process inherited (closed, never
    /// passed, or one of 0, 1, 2).
    NotInherited(RawFd),
    /// `--fd N` was already taken by an earlier `open`.
    AlreadyTaken(RawFd),
    /// `--fd N` is open but is not a socket.
    NotASocket(RawFd),
    /// A system call failed while preparing the descriptors.
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::BadArgument(msg) => f.write_str(msg),
            TransportError::NotInitialised => {
                f.write_str("--fd needs init_inherited_fds() to be called first in main")
            }
            TransportError::NotInherited(fd) => {
                write!(f, "--fd {fd} is not an open inherited file descriptor")
            }
            TransportError::AlreadyTaken(fd) => write!(f, "--fd {fd} was already taken"),
            TransportError::NotASocket(fd) => write!(f, "--fd {fd} is not a socket"),
            TransportError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl WorkerTransport {
    /// Parses the value given to `--fd`: a non-negative descriptor number.
    pub fn from_fd_arg(value: &str) -> Result<WorkerTransport, TransportError> {
        value
            .parse::<RawFd>()
            .ok()
            .filter(|fd| *fd >= 0)
            .map(WorkerTransport::Fd)
            .ok_or_else(|| {
                TransportError::BadArgument(format!("--fd needs a non-negative fd number, got {value:?}"))
            })
    }

    /// The transport named by a worker's arguments when `--fd N` (or
    /// `--fd=N`) is the only one it takes: [`Stdio`](WorkerTransport::Stdio)
    /// without it. Any other argument is an error; a worker with more
    /// options parses them itself and calls [`from_fd_arg`](Self::from_fd_arg).
    pub fn from_args<I>(args: I) -> Result<WorkerTransport, TransportError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut transport = WorkerTransport::Stdio;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg.as_ref();
            transport = match (arg, arg.strip_prefix("--fd=")) {
                ("--fd", _) => match args.next() {
                    Some(value) => WorkerTransport::from_fd_arg(value.as_ref())?,
                    None => return Err(TransportError::BadArgument("--fd needs a value".into())),
                },
                (_, Some(value)) => WorkerTransport::from_fd_arg(value)?,
                _ => return Err(TransportError::BadArgument(format!("unknown argument {arg:?}"))),
            };
        }
        Ok(transport)
    }

    /// Opens the transport as a blocking input and output.
    ///
    /// The fd-safety policy, the same for every worker built on this crate:
    ///
    /// - stdio: fds 0 and 1 are duplicated (the process's `Stdin`/`Stdout`
    ///   keep theirs), so reads and writes bypass std's buffering;
    /// - `--fd N`: the descriptor is taken only if this process inherited
    ///   it (recorded by [`init_inherited_fds`](super::init_inherited_fds)
    ///   at start-up), only once, and only if it is a socket; it is made
    ///   blocking (a worker blocks rather than drop a frame,
    ///   PROTOCOL.md#flow-control) and close-on-exec. fds 0, 1 and 2 are
    ///   never taken.
    pub fn open(self) -> Result<(Input, Output), TransportError> {
        match self {
            WorkerTransport::Stdio => {
                let dup = |fd: BorrowedFd<'_>, what: &'static str| {
                    fd.try_clone_to_owned()
                        .map(File::from)
                        .map_err(|source| TransportError::Io { what, source })
                };
                Ok((
                    Input(Inner::File(dup(io::stdin().as_fd(), "duplicating stdin")?)),
                    Output(Inner::File(dup(io::stdout().as_fd(), "duplicating stdout")?)),
                ))
            }
            WorkerTransport::Fd(fd) => {
                let owned = take_fd_ownership(fd).map_err(|e| match e {
                    InheritedFdError::NotInitialized => TransportError::NotInitialised,
                    InheritedFdError::OwnershipTaken(fd) => TransportError::AlreadyTaken(fd),
                    InheritedFdError::FileDescriptorNotInherited(fd) => TransportError::NotInherited(fd),
                })?;
                let socket = socket_from(fd, owned)?;
                socket
                    .set_nonblocking(false)
                    .map_err(|source| TransportError::Io {
                        what: "making the socket blocking",
                        source,
                    })?;
                let writer = socket.try_clone().map_err(|source| TransportError::Io {
                    what: "duplicating the socket",
                    source,
                })?;
                Ok((Input(Inner::Socket(socket)), Output(Inner::Socket(writer))))
            }
        }
    }
}

fn socket_from(fd: RawFd, owned: OwnedFd) -> Result<UnixStream, TransportError> {
    let file = File::from(owned);
    let is_socket = file
        .metadata()
        .map_err(|source| TransportError::Io {
            what: "inspecting the descriptor",
            source,
        })?
        .file_type()
        .is_socket();
    if !is_socket {
        return Err(TransportError::NotASocket(fd));
    }
    Ok(UnixStream::from(OwnedFd::from(file)))
}

#[derive(Debug)]
enum Inner {
    File(File),
    Socket(UnixStream),
}

/// The worker's command stream: stdin, or its socketpair end.
#[derive(Debug)]
pub struct Input(Inner);

/// The worker's frame stream: stdout, or its socketpair end.
#[derive(Debug)]
pub struct Output(Inner);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::File(f) => f.read(buf),
            Inner::Socket(s) => s.read(buf),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::File(f) => f.write(buf),
            Inner::Socket(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::File(f) => f.write_vectored(bufs),
            Inner::Socket(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Input {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Inner::File(f) => f.as_fd(),
            Inner::Socket(s) => s.as_fd(),
        }
    }
}

impl AsFd for Output {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Inner::File(f) => f.as_fd(),
            Inner::Socket(s) => s.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let parse = |args: &[&str]| WorkerTransport::from_args(args.iter().copied());
        assert_eq!(parse(&[]).unwrap(), WorkerTransport::Stdio);
        assert_eq!(parse(&["--fd", "7"]).unwrap(), WorkerTransport::Fd(7));
        assert_eq!(parse(&["--fd=9"]).unwrap(), WorkerTransport::Fd(9));
        for bad in [&["--fd"][..], &["--fd", "x"], &["--fd", "-2"], &["--verbose"]] {
            assert!(
                matches!(parse(bad), Err(TransportError::BadArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_fd_is_refused_without_init() {
        // This test binary never calls init_inherited_fds.
        let err = WorkerTransport::Fd(3).open().unwrap_err();
        assert!(matches!(err, TransportError::NotInitialised), "{err}");
    }
}
