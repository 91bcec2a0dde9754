//! A test worker for the `Broadcaster` tests, examples and benchmark. It is
//! not a broadcast worker (no filters, no subscriptions): it answers every
//! SubCommand with one BroadcastFrame whose `conn` is the command's conn
//! (0 for a Bcast from −1) and whose data is the command's payload, byte for
//! byte, so a test can decode it and compare it with what it sent.
//!
//! It lives in `src/bin` rather than `examples/` so that integration tests
//! and benches find it through `env!("CARGO_BIN_EXE_echo_worker")`, which
//! cargo sets (and builds the bin for) whenever a test or bench target is
//! built: an example is not built by `cargo test --test NAME`, and a test
//! binary re-running itself as the worker would have libtest's own output
//! mixed into the frame stream on stdout.
//!
//! Usage: `echo_worker [OPTION]...`
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
//! - `--ignore-eof`: at end of input, keep running until killed
//! - `--exit-after N:CODE`: exit with CODE after answering N commands
//! - `--crash-after N`: abort (`SIGABRT`) after answering N commands
//!
//! End of input on a frame boundary exits 0; a framing error exits 2 (as
//! PROTOCOL.md#exit-status asks of a worker); a payload that does not decode is
//! logged to stderr and skipped.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("echo_worker: unix only");
    std::process::exit(64);
}

#[cfg(unix)]
mod unix {
    use std::io::{self, Read, Write};
    use std::process::ExitCode;
    use std::thread;
    use std::time::Duration;

    use broadcast_process::worker_io::{self, WorkerTransport};
    use broadcast_wire::{BroadcastFrame, Frame, FrameReader, ReadError, ReadStatus, SubCommand};
    use bytes::Bytes;

    const NAME: &str = "echo_worker";

    #[derive(Debug, Default)]
    struct Config {
        transport: WorkerTransport,
        discard: bool,
        byte_at_a_time: bool,
        byte_delay: Duration,
        stall: Duration,
        noise: bool,
        invalid_first: bool,
        ignore_eof: bool,
        exit_after: Option<(u64, u8)>,
        crash_after: Option<u64>,
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

    fn answer(cmd: &SubCommand) -> Frame {
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

    fn run(cfg: &Config, input: impl Read, output: impl Write) -> ExitCode {
        if cfg.discard {
            return discard(input);
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
                if cfg.noise {
                    for frame in noise() {
                        out.send(&frame)?;
                    }
                }
                out.send(&answer(&cmd))?;
                answered += 1;
                if cfg.crash_after == Some(answered) {
                    eprintln!("{NAME}: crashing on purpose after {answered} commands");
                    std::process::abort();
                }
                if let Some((n, code)) = cfg.exit_after
                    && n == answered
                {
                    eprintln!("{NAME}: exiting with {code} after {answered} commands");
                    return Ok(ExitCode::from(code));
                }
            }
        })();
        result.unwrap_or_else(|e| {
            eprintln!("{NAME}: I/O error: {e}");
            ExitCode::from(1)
        })
    }

    pub(super) fn main() -> ExitCode {
        // SAFETY: the first statement of main, before anything takes a
        // descriptor (the fd-safety policy of broadcast_process::worker_io).
        #[allow(unsafe_code)]
        let _ = unsafe { worker_io::init_inherited_fds() };
        let cfg = match Config::parse(std::env::args().skip(1)) {
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
}
