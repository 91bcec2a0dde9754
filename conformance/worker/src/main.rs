//! `broadcast-worker`: the reference broadcast worker of protocol v1.
//!
//! Reads SubCommand frames (channel 1) and writes BroadcastFrame frames
//! (channel 2), on stdin/stdout by default or on one duplex socketpair fd
//! with `--fd N`. stdout carries nothing but frames; stderr gets one line
//! per dropped command or invalid event (more with `-v`), and the reason
//! of a fatal error. Exit status: 0 at a clean end of input, 2 on a fatal
//! stream error or bad usage.
#![deny(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use broadcast_conformance::worker::{Outcome, Worker};
use broadcast_wire::{BroadcastFrame, FrameReader, FrameWriter, ReadError, ReadStatus, SubCommand};

const USAGE: &str = "\
usage: broadcast-worker [--fd N] [-v]

Runs the reference broadcast worker (protocol v1).

  --fd N         use the inherited duplex socketpair fd N for both directions
                 (default: commands on stdin, frames on stdout)
  -v, --verbose  also log commands that had no effect and refused REQs
  -h, --help     print this help

Exit status: 0 at a clean end of input, 2 on a fatal stream error or bad usage.";

/// Queued output above this size is written at once instead of waiting for
/// the next read, bounding memory when a burst of commands fans out widely.
const FLUSH_ABOVE: usize = 1 << 20;

/// A pause before retrying an fd that was handed over in non-blocking mode
/// and is not ready: the worker is a blocking program, this only avoids a
/// busy loop in that unusual setup.
const NOT_READY_PAUSE: Duration = Duration::from_millis(1);

struct Options {
    fd: Option<i32>,
    verbose: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        fd: None,
        verbose: false,
    };
    while let Some(arg) = args.next() {
        let fd_value = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-v" | "--verbose" => {
                opts.verbose = true;
                continue;
            }
            "--fd" => args.next().ok_or("--fd needs a value")?,
            other => match other.strip_prefix("--fd=") {
                Some(v) => v.to_owned(),
                None => return Err(format!("unknown argument {other:?}")),
            },
        };
        let fd = fd_value
            .parse::<i32>()
            .ok()
            .filter(|fd| *fd >= 0)
            .ok_or_else(|| format!("--fd needs a non-negative fd number, got {fd_value:?}"))?;
        opts.fd = Some(fd);
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("broadcast-worker: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match opts.fd {
        None => stdio().and_then(|(input, output)| run(input, output, opts.verbose)),
        Some(fd) => socketpair(fd).and_then(|(input, output)| run(input, output, opts.verbose)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("broadcast-worker: fatal: {reason}");
            ExitCode::from(2)
        }
    }
}

/// stdin and stdout as plain files: unbuffered (the frame reader and writer
/// do their own batching) and free of `Stdout`'s line buffering.
fn stdio() -> Result<(File, File), String> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>, name: &str| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| format!("cannot use {name}: {e}"))
    };
    Ok((
        dup(io::stdin().as_fd(), "stdin")?,
        dup(io::stdout().as_fd(), "stdout")?,
    ))
}

/// The inherited socketpair end `fd`, twice: one handle to read, one to write.
fn socketpair(fd: i32) -> Result<(UnixStream, UnixStream), String> {
    let owned = take_inherited_fd(fd)?;
    let file = File::from(owned);
    let is_socket = file
        .metadata()
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    if !is_socket {
        return Err(format!("--fd {fd} is not a socket"));
    }
    let stream = UnixStream::from(OwnedFd::from(file));
    // The worker blocks on reads and writes by design (§4: "if the parent
    // does not read, the worker blocks").
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("--fd {fd}: cannot make it blocking: {e}"))?;
    let writer = stream.try_clone().map_err(|e| format!("--fd {fd}: {e}"))?;
    Ok((stream, writer))
}

/// Takes ownership of the descriptor the parent passed by number with `--fd`.
///
/// This is the binary's only `unsafe`: Rust cannot know that an fd number
/// given on the command line is open and owned by nobody else in the process.
/// Both hold here: the number is checked to be open, and it was inherited at
/// exec for the worker's exclusive use; nothing else in this program uses it.
#[allow(unsafe_code)]
fn take_inherited_fd(fd: i32) -> Result<OwnedFd, String> {
    let proc_fds = std::path::Path::new("/proc/self/fd");
    if proc_fds.is_dir() && std::fs::symlink_metadata(proc_fds.join(fd.to_string())).is_err() {
        return Err(format!("--fd {fd} is not an open file descriptor"));
    }
    // SAFETY: see the function comment.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The input side: before every read from the transport, which may block,
/// every queued frame is written, so the parent always has all the frames
/// of the commands the worker has finished; frames of commands already
/// buffered are coalesced into one write.
struct FlushBeforeRead<R, W> {
    input: R,
    output: FrameWriter<W>,
}

impl<R: Read, W: Write> FlushBeforeRead<R, W> {
    fn flush_output(&mut self) -> io::Result<()> {
        loop {
            match self.output.flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(NOT_READY_PAUSE),
                other => return other,
            }
        }
    }
}

impl<R: Read, W: Write> Read for FlushBeforeRead<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.flush_output()
            .map_err(|e| io::Error::new(e.kind(), format!("writing frames failed: {e}")))?;
        self.input.read(buf)
    }
}

fn run<R: Read, W: Write>(input: R, output: W, verbose: bool) -> Result<(), String> {
    let mut reader = FrameReader::new(FlushBeforeRead {
        input,
        output: FrameWriter::new(output),
    });
    let mut worker = Worker::new();
    let mut frames: Vec<BroadcastFrame> = Vec::new();
    let mut seq: u64 = 0;
    loop {
        let cmd = match reader.read_message::<SubCommand>() {
            Ok(ReadStatus::Ready(Ok(cmd))) => cmd,
            Ok(ReadStatus::Ready(Err(e))) => {
                seq += 1;
                eprintln!("broadcast-worker: command #{seq} dropped: {e}");
                continue;
            }
            Ok(ReadStatus::Pending) => {
                std::thread::sleep(NOT_READY_PAUSE);
                continue;
            }
            Ok(ReadStatus::Closed) => {
                return reader
                    .get_mut()
                    .flush_output()
                    .map_err(|e| format!("writing frames failed: {e}"));
            }
            Err(e) => {
                // Frames of the commands before the error are still owed.
                let _ = reader.get_mut().flush_output();
                return Err(match e {
                    ReadError::Framing(f) => f.to_string(),
                    ReadError::Io(io) => io.to_string(),
                });
            }
        };
        seq += 1;
        frames.clear();
        let outcome = worker.handle(&cmd, &mut frames);
        log_outcome(seq, &cmd, &outcome, verbose);
        let side = reader.get_mut();
        for frame in &frames {
            if let Err(e) = side.output.queue_message(frame) {
                // Only an event near the 16 MiB limit plus a long escaped
                // sub_id can get here; the parent could not accept it.
                eprintln!(
                    "broadcast-worker: command #{seq}: frame for conn {} not sent: {e}",
                    frame.conn
                );
            }
        }
        if side.output.pending() > FLUSH_ABOVE {
            side.flush_output()
                .map_err(|e| format!("writing frames failed: {e}"))?;
        }
    }
}

fn log_outcome(seq: u64, cmd: &SubCommand, outcome: &Outcome, verbose: bool) {
    let always = matches!(outcome, Outcome::InvalidEvent(_));
    let noteworthy = matches!(
        outcome,
        Outcome::UnknownConn | Outcome::UnknownSub | Outcome::Refused(_)
    );
    if always || (verbose && noteworthy) {
        eprintln!(
            "broadcast-worker: command #{seq} ({:?}, conn {}): {outcome}",
            cmd.op(),
            cmd.conn()
        );
    }
}
