//! The test worker of this test binary, run when the binary is re-executed
//! with [`WORKER_ENV`](crate::support::WORKER_ENV) set (see `main.rs`). It is
//! not a broadcast worker (no filters, no subscriptions): it answers every
//! SubCommand with one BroadcastFrame whose `conn` is the command's conn (0
//! for a Bcast from −1) and whose data is the command's payload, byte for
//! byte, so a test can decode it and compare it with what it sent.
//!
//! Usage: `<test binary> [OPTION]...` with the environment variable set.
//!
//! - `--fd N`: socketpair transport, commands and frames on fd N (else stdio)
//! - `--discard`: read and throw away raw bytes until end of input
//! - `--byte-at-a-time`: write each output byte with its own `write` call
//! - `--byte-delay-us N`: with `--byte-at-a-time`, sleep N µs between bytes
//! - `--stall-ms N`: sleep N ms before reading the first command
//! - `--noise`: before each answer, send heartbeats and frames on channels
//!   0, 1 and 255, which the parent must skip
//! - `--invalid-first`: send one channel-2 frame whose payload does not
//!   decode before anything else
//! - `--quiet-new`: read New commands without answering them (the parent
//!   can fill the worker's input without getting output back)
//! - `--garbage-then-flood BYTES`: break the framing at once (a channel-2
//!   header announcing 0xFFFF_FFFF bytes, over any parent's maximum), then
//!   go on writing: 16 KiB of junk after each command read, BYTES in all,
//!   and only then read without writing. Reading and writing take turns in
//!   one thread on purpose: while its output is full the worker reads no
//!   command, as a real worker blocked on its output
//!   (PROTOCOL.md#flow-control). So a parent that stops reading after the
//!   framing error can never write the rest of its queue, and a waiting
//!   command hangs; one that discards the junk gets every command through.
//!   At end of input it logs how many commands it read and exits 0.
//! - `--ignore-eof`: at end of input, keep running until killed
//! - `--exit-after N:CODE`: exit with CODE after answering N commands
//! - `--crash-after N`: abort (`SIGABRT`) after answering N commands
//! - `--closed-adds`: answer every Add with a `CLOSED` message for its
//!   conn and sub_id (a refusal, PROTOCOL.md#add-failure) instead of its
//!   echo
//!
//! End of input on a frame boundary exits 0; a framing error exits 2 (as
//! PROTOCOL.md#exit-status asks of a worker); a payload that does not decode is
//! logged to stderr and skipped.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use broadcast_process::worker_io::WorkerTransport;
use broadcast_wire::{BroadcastFrame, Frame, FrameReader, ReadError, ReadStatus, SubCommand};
use bytes::Bytes;

/// The name in its log lines (tests look for them).
pub const NAME: &str = "echo_worker";

/// Junk written after each command read, with `--garbage-then-flood`.
const FLOOD_CHUNK: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Config {
    transport: WorkerTransport,
    discard: bool,
    byte_at_a_time: bool,
    byte_delay: Duration,
    stall: Duration,
    noise: bool,
    invalid_first: bool,
    quiet_new: bool,
    garbage_then_flood: Option<u64>,
    ignore_eof: bool,
    exit_after: Option<(u64, u8)>,
    crash_after: Option<u64>,
    closed_adds: bool,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

impl Config {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
        let mut cfg = Config::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--fd" => {
                    let value = args.next().ok_or("--fd needs a value")?;
                    cfg.transport = WorkerTransport::from_fd_arg(&value).map_err(|e| e.to_string())?;
                }
                "--discard" => cfg.discard = true,
                "--byte-at-a-time" => cfg.byte_at_a_time = true,
                "--byte-delay-us" => cfg.byte_delay = Duration::from_micros(number(&arg, args.next())?),
                "--stall-ms" => cfg.stall = Duration::from_millis(number(&arg, args.next())?),
                "--noise" => cfg.noise = true,
                "--invalid-first" => cfg.invalid_first = true,
                "--quiet-new" => cfg.quiet_new = true,
                "--garbage-then-flood" => cfg.garbage_then_flood = Some(number(&arg, args.next())?),
                "--ignore-eof" => cfg.ignore_eof = true,
                "--exit-after" => {
                    let value = args.next().ok_or("--exit-after needs N:CODE")?;
                    let (n, code) = value.split_once(':').ok_or("--exit-after needs N:CODE")?;
                    cfg.exit_after = Some((
                        number(&arg, Some(n.to_owned()))?,
                        number(&arg, Some(code.to_owned()))?,
                    ));
                }
                "--crash-after" => cfg.crash_after = Some(number(&arg, args.next())?),
                "--closed-adds" => cfg.closed_adds = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(cfg)
    }
}

struct Output<W> {
    inner: W,
    byte_at_a_time: bool,
    byte_delay: Duration,
}

impl<W: Write> Output<W> {
    fn send(&mut self, frame: &Frame) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(frame.encoded_len());
        frame.encode(&mut bytes);
        if !self.byte_at_a_time {
            return self.inner.write_all(&bytes);
        }
        for b in bytes {
            self.inner.write_all(&[b])?;
            if !self.byte_delay.is_zero() {
                thread::sleep(self.byte_delay);
            }
        }
        Ok(())
    }
}

fn noise() -> [Frame; 5] {
    [
        Frame::heartbeat(2),
        Frame::new(1, Bytes::from_static(b"channel 1 is for the worker")),
        Frame::new(0, Bytes::from_static(b"reserved channel 0")),
        Frame::new(255, Bytes::from_static(b"reserved channel 255")),
        Frame::heartbeat(9),
    ]
}

fn answer(cmd: &SubCommand, closed_adds: bool) -> Frame {
    if let (true, SubCommand::Add { conn, sub_id, .. }) = (closed_adds, cmd) {
        // The test sub_ids are plain ASCII: Rust's quoting is JSON's.
        let data = format!(r#"["CLOSED",{:?},"invalid: refused by {NAME}"]"#, sub_id.as_str());
        return Frame::from_message(&BroadcastFrame {
            conn: *conn,
            data: data.into(),
        });
    }
    let mut data = Vec::with_capacity(cmd.encoded_len());
    cmd.encode(&mut data);
    Frame::from_message(&BroadcastFrame {
        conn: cmd.conn().max(0),
        data: data.into(),
    })
}

fn discard(mut input: impl Read) -> ExitCode {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("{NAME}: read failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
}

/// `--garbage-then-flood`: see the module docs.
fn garbage_then_flood(budget: u64, input: impl Read, mut output: impl Write) -> io::Result<ExitCode> {
    // Channel 2, length 0xFFFF_FFFF: a fatal frame_too_large for the parent.
    output.write_all(&[2, 0xff, 0xff, 0xff, 0xff])?;
    let junk = [0xa5u8; FLOOD_CHUNK];
    let mut left = budget;
    let mut reader = FrameReader::new(input);
    let mut read = 0u64;
    loop {
        match reader.read_message::<SubCommand>() {
            Ok(ReadStatus::Ready(_)) => read += 1,
            Ok(ReadStatus::Pending) => continue,
            Ok(ReadStatus::Closed) => break,
            Err(ReadError::Framing(e)) => {
                eprintln!("{NAME}: fatal: {e}");
                return Ok(ExitCode::from(2));
            }
            Err(ReadError::Io(e)) => return Err(e),
        }
        // The next command is read only once this is written.
        let n = left.min(FLOOD_CHUNK as u64) as usize;
        output.write_all(&junk[..n])?;
        left -= n as u64;
    }
    eprintln!(
        "{NAME}: end of input after {read} commands and {} bytes of junk",
        budget - left
    );
    Ok(ExitCode::SUCCESS)
}

fn run(cfg: &Config, input: impl Read, output: impl Write) -> ExitCode {
    if cfg.discard {
        return discard(input);
    }
    if let Some(budget) = cfg.garbage_then_flood {
        return garbage_then_flood(budget, input, output).unwrap_or_else(|e| {
            eprintln!("{NAME}: I/O error: {e}");
            ExitCode::from(1)
        });
    }
    let mut out = Output {
        inner: output,
        byte_at_a_time: cfg.byte_at_a_time,
        byte_delay: cfg.byte_delay,
    };
    let mut reader = FrameReader::new(input);
    let result = (|| -> io::Result<ExitCode> {
        if cfg.invalid_first {
            out.send(&Frame::new(2, Bytes::from_static(&[1, 2, 3])))?;
        }
        thread::sleep(cfg.stall);
        let mut answered = 0u64;
        loop {
            let cmd = match reader.read_message::<SubCommand>() {
                Ok(ReadStatus::Ready(Ok(cmd))) => cmd,
                Ok(ReadStatus::Ready(Err(e))) => {
                    eprintln!("{NAME}: dropped a command that does not decode: {e}");
                    continue;
                }
                Ok(ReadStatus::Pending) => continue,
                Ok(ReadStatus::Closed) if cfg.ignore_eof => {
                    eprintln!("{NAME}: end of input after {answered} commands; ignoring it");
                    loop {
                        thread::sleep(Duration::from_secs(3600));
                    }
                }
                Ok(ReadStatus::Closed) => {
                    eprintln!("{NAME}: end of input after {answered} commands");
                    return Ok(ExitCode::SUCCESS);
                }
                Err(ReadError::Framing(e)) => {
                    eprintln!("{NAME}: fatal: {e}");
                    return Ok(ExitCode::from(2));
                }
                Err(ReadError::Io(e)) => return Err(e),
            };
            if cfg.quiet_new && matches!(cmd, SubCommand::New { .. }) {
                continue;
            }
            if cfg.noise {
                for frame in noise() {
                    out.send(&frame)?;
                }
            }
            out.send(&answer(&cmd, cfg.closed_adds))?;
            answered += 1;
            if cfg.crash_after == Some(answered) {
                eprintln!("{NAME}: crashing on purpose after {answered} commands");
                std::process::abort();
            }
            if let Some((n, code)) = cfg.exit_after {
                if n == answered {
                    eprintln!("{NAME}: exiting with {code} after {answered} commands");
                    return Ok(ExitCode::from(code));
                }
            }
        }
    })();
    result.unwrap_or_else(|e| {
        eprintln!("{NAME}: I/O error: {e}");
        ExitCode::from(1)
    })
}

/// Runs the worker on `args` (the binary's arguments, without its name).
/// The caller has claimed the inherited fds first (`main.rs`).
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let cfg = match Config::parse(args) {
        Ok(cfg) => cfg,
        Err(msg) => {
            eprintln!("{NAME}: {msg}");
            return ExitCode::from(64);
        }
    };
    eprintln!("{NAME}: started");
    match cfg.transport.open() {
        Ok((input, output)) => run(&cfg, input, output),
        Err(e) => {
            eprintln!("{NAME}: {e}");
            ExitCode::from(64)
        }
    }
}
