//! Why a worker could not be started or adopted.

use std::ffi::OsString;
use std::fmt;
use std::io;

/// Why a worker could not be started or adopted.
///
/// ```no_run
/// use broadcast_process::broadcaster::{Broadcaster, SpawnError, Transport};
/// use std::process::Command;
///
/// match Broadcaster::spawn(Command::new("broadcast-worker"), Transport::Stdio) {
///     Ok(_b) => {} // drive it
///     Err(SpawnError::Spawn { program, source }) => eprintln!("cannot start {program:?}: {source}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// Starting the program failed (not found, not executable, ...).
    Spawn {
        /// The program that was to be run.
        program: OsString,
        /// The error from the OS.
        source: io::Error,
    },
    /// Creating or configuring the fds (socketpair, `O_NONBLOCK`, the
    /// stderr thread) failed.
    Setup(io::Error),
    /// The fd number asked for the child's socket end is 0, 1 or 2 (taken by
    /// stdio) or negative.
    ChildFd(i32),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Spawn { program, source } => {
                write!(
                    f,
                    "could not start worker {}: {source}",
                    program.to_string_lossy()
                )
            }
            SpawnError::Setup(e) => write!(f, "could not set up the worker's fds: {e}"),
            SpawnError::ChildFd(fd) => write!(
                f,
                "fd {fd} cannot carry the worker's socket: choose 3 or above (0-2 are stdio)"
            ),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Spawn { source, .. } => Some(source),
            SpawnError::Setup(e) => Some(e),
            SpawnError::ChildFd(_) => None,
        }
    }
}
