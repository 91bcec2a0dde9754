//! `broadcast-worker`: the reference broadcast worker of protocol v1.
//!
//! Reads SubCommand frames (channel 1) and writes BroadcastFrame frames
//! (channel 2), on stdin/stdout by default or on one duplex socketpair fd
//! with `--fd N`. stdout carries nothing but frames; stderr gets one line
//! per dropped command or invalid event (more with `-v`), and the reason
//! of a fatal error. Exit status: 0 at a clean end of input, 2 on a fatal
//! stream error or bad usage.
#![deny(unsafe_code)]

use std::process::ExitCode;

use broadcast_process::worker_io::{self, WorkerChannel, WorkerTransport};
use broadcast_wire::{BroadcastFrame, OversizeFrame, ReadError, ReadStatus};
use broadcast_worker::{FrameSink, Outcome, Worker, event_data_parts};
use bytes::Bytes;

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

struct Options {
    transport: WorkerTransport,
    verbose: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        transport: WorkerTransport::Stdio,
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
        opts.transport = WorkerTransport::from_fd_arg(&fd_value).map_err(|e| e.to_string())?;
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    // SAFETY: the first statement of main: no descriptor has been taken by
    // anything yet, so the inherited ones can be claimed (for `--fd N`).
    #[allow(unsafe_code)]
    let claimed = unsafe { worker_io::init_inherited_fds() };
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
    if let (Err(e), WorkerTransport::Fd(_)) = (&claimed, opts.transport) {
        eprintln!("broadcast-worker: fatal: cannot list inherited descriptors: {e}");
        return ExitCode::from(2);
    }
    let result = opts
        .transport
        .open()
        .map_err(|e| e.to_string())
        .and_then(|(input, output)| run(WorkerChannel::new(input, output), opts.verbose));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("broadcast-worker: fatal: {reason}");
            ExitCode::from(2)
        }
    }
}

fn run<R: std::io::Read, W: std::io::Write>(
    mut channel: WorkerChannel<R, W>,
    verbose: bool,
) -> Result<(), String> {
    let mut worker = Worker::new();
    let mut seq: u64 = 0;
    loop {
        let cmd = match channel.read_command() {
            Ok(ReadStatus::Ready(Ok(cmd))) => cmd,
            Ok(ReadStatus::Ready(Err(e))) => {
                seq += 1;
                eprintln!("broadcast-worker: command #{seq} dropped: {e}");
                continue;
            }
            Ok(ReadStatus::Pending) => continue,
            Ok(ReadStatus::Closed) => {
                return channel.flush().map_err(|e| format!("writing frames failed: {e}"));
            }
            Err(e) => {
                // Frames of the commands before the error are still owed.
                let _ = channel.flush();
                return Err(match e {
                    ReadError::Framing(f) => f.to_string(),
                    ReadError::Io(io) => io.to_string(),
                });
            }
        };
        seq += 1;
        // Frames go straight into the output queue; an EVENT frame shares
        // the event's bytes instead of copying them per subscription.
        let outcome = worker.handle(
            &cmd,
            &mut Queue {
                channel: &mut channel,
                seq,
            },
        );
        log_outcome(seq, &cmd, &outcome, verbose);
        if channel.pending() > FLUSH_ABOVE {
            channel
                .flush()
                .map_err(|e| format!("writing frames failed: {e}"))?;
        }
    }
}

/// The worker's output: frames are queued on the channel as the worker
/// makes them.
struct Queue<'a, R, W> {
    channel: &'a mut WorkerChannel<R, W>,
    seq: u64,
}

impl<R: std::io::Read, W: std::io::Write> Queue<'_, R, W> {
    fn queued(&self, conn: i32, result: Result<(), OversizeFrame>) {
        if let Err(e) = result {
            // Only an event near the 16 MiB limit plus a long escaped
            // sub_id can get here; the parent could not accept it.
            eprintln!(
                "broadcast-worker: command #{}: frame for conn {conn} not sent: {e}",
                self.seq
            );
        }
    }
}

impl<R: std::io::Read, W: std::io::Write> FrameSink for Queue<'_, R, W> {
    fn frame(&mut self, frame: BroadcastFrame) {
        let result = self.channel.queue(&frame);
        self.queued(frame.conn, result);
    }

    fn event(&mut self, conn: i32, prefix: &[u8], raw_event: &Bytes) {
        let result = self
            .channel
            .queue_parts(conn, &event_data_parts(prefix, raw_event));
        self.queued(conn, result);
    }
}

fn log_outcome(seq: u64, cmd: &broadcast_wire::SubCommand, outcome: &Outcome, verbose: bool) {
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
