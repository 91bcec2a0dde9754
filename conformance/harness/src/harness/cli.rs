//! The command line of `broadcast-conformance` (clap derive).

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::report::Format;

/// Conformance harness for broadcast workers (protocol v1): replays the
/// golden scenarios against a worker over real pipes or a socketpair, and
/// decodes/encodes captured frame streams.
#[derive(Debug, Parser)]
#[command(name = "broadcast-conformance", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scenario suite against a worker (the reference
    /// `broadcast-worker` next to this binary when no command is given).
    Run(RunArgs),
    /// Print one JSON object per frame of a captured byte stream.
    Decode(DecodeArgs),
    /// Turn `decode`'s JSON lines back into the exact bytes.
    Encode(EncodeArgs),
    /// Replay the codec and framing vectors through the broadcast-wire library.
    Vectors(VectorsArgs),
    /// Run the parent suite against an adapter around a parent (the
    /// reference `broadcast-parent-adapter` next to this binary when no
    /// command is given): the harness plays the worker.
    Parent(ParentArgs),
    /// The stand-in worker of the parent suite (started by the adapter,
    /// never by hand).
    #[command(hide = true)]
    ParentWorker(ParentWorkerArgs),
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TransportArg {
    /// Commands on the worker's stdin, frames on its stdout.
    #[default]
    Stdio,
    /// One AF_UNIX socketpair end, passed to the worker as `--fd N`.
    Socketpair,
}

/// Options shared by `run` and `vectors`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Vectors directory (default: the repository's vectors/, else the copy
    /// built into this binary).
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
    /// Run only cases whose id matches GLOB (`*` within a segment, `**`
    /// across segments); repeatable.
    #[arg(long = "case", value_name = "GLOB")]
    pub cases: Vec<String>,
    /// Do not run cases whose id matches GLOB; repeatable.
    #[arg(long = "skip", value_name = "GLOB")]
    pub skips: Vec<String>,
    /// List the selected case ids and exit.
    #[arg(long)]
    pub list: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Human format: print only failures and the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What `run` and `parent` share: the transport, the selection and
/// report, and how failures count and stop the run.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// How the worker is connected (with `parent`, the adapter is told in
    /// `start` and connects its worker so).
    #[arg(long, value_enum, default_value_t = TransportArg::Stdio)]
    pub transport: TransportArg,
    /// Selection, format and output.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Count SHOULD cases too (by default a failing SHOULD case is a warning).
    #[arg(long)]
    pub strict: bool,
    /// File of case ids expected to fail (one per line, `#` comments). The
    /// run fails if a listed case passes.
    #[arg(long, value_name = "FILE")]
    pub known_failing: Option<PathBuf>,
    /// Show, for each failure, the testee's stderr (the worker's, or the
    /// adapter's) and a trace of what crossed the wire.
    #[arg(short, long)]
    pub verbose: bool,
    /// Cases run in parallel, each with its own testee (default: the number
    /// of CPUs). Reports are in case order whatever N is.
    #[arg(long, value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// Stop at the first failing case; the cases not started are reported
    /// as not run.
    #[arg(long)]
    pub fail_fast: bool,
    /// Stop after N cases have failed as hangs; the cases not started are
    /// reported as not run.
    #[arg(long, value_name = "N")]
    pub max_hangs: Option<NonZeroUsize>,
}

impl From<TransportArg> for broadcast_process::broadcaster::Transport {
    fn from(arg: TransportArg) -> Self {
        match arg {
            TransportArg::Stdio => Self::Stdio,
            TransportArg::Socketpair => Self::SocketPair,
        }
    }
}

impl SuiteArgs {
    /// `--jobs`, or the number of CPUs when it is not given (1 if that
    /// cannot be found out).
    pub fn jobs(&self) -> usize {
        self.jobs
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Transport, selection, report and failure handling.
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Per-step timeout in milliseconds: a probe (or an expected exit) that
    /// does not come in time is a hang. It is also how long a step waits for
    /// its expected frames before it sends the probe.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// The worker command and its arguments, after `--`.
    #[arg(last = true, value_name = "WORKER_CMD")]
    pub worker: Vec<OsString>,
}

/// `parent`.
#[derive(Debug, Clone, Args)]
pub struct ParentArgs {
    /// Transport, selection, report and failure handling.
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Timeout in milliseconds of every wait without progress: an answer, a
    /// delivery, a command, the adapter's exit (its start and its workers'
    /// connections get three times as long).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// The adapter command and its arguments, after `--`.
    #[arg(last = true, value_name = "ADAPTER_CMD")]
    pub adapter: Vec<OsString>,
}

/// `parent-worker` (hidden): the stand-in worker.
#[derive(Debug, Clone, Args)]
pub struct ParentWorkerArgs {
    /// The harness's session socket.
    #[arg(long, value_name = "PATH")]
    pub session: PathBuf,
    /// The inherited socketpair end (the parent appends it).
    #[arg(long, value_name = "N")]
    pub fd: Option<i32>,
}

/// `decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// Captured stream (stdin when absent or `-`).
    pub file: Option<PathBuf>,
    /// Maximum payload length; a longer frame is a fatal error.
    #[arg(long, value_name = "BYTES", default_value_t = broadcast_wire::DEFAULT_MAX_PAYLOAD)]
    pub max_payload: u32,
}

/// `encode`.
#[derive(Debug, Clone, Args)]
pub struct EncodeArgs {
    /// JSON lines (stdin when absent or `-`).
    pub file: Option<PathBuf>,
    /// Write the bytes to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `vectors`.
#[derive(Debug, Clone, Args)]
pub struct VectorsArgs {
    /// Selection, format and output.
    #[command(flatten)]
    pub report: ReportArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_run_line() {
        let cli = Cli::try_parse_from([
            "broadcast-conformance",
            "run",
            "--transport",
            "socketpair",
            "--case",
            "filter/**",
            "--case",
            "access/*",
            "--skip",
            "filter/x",
            "--strict",
            "--timeout",
            "500",
            "--format",
            "junit",
            "--jobs",
            "2",
            "--fail-fast",
            "--max-hangs",
            "3",
            "-v",
            "--",
            "./my-worker",
            "--flag",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else { panic!() };
        assert_eq!(r.suite.transport, TransportArg::Socketpair);
        assert_eq!(r.suite.report.cases, ["filter/**", "access/*"]);
        assert_eq!(r.suite.report.format, Format::Junit);
        assert_eq!(
            (r.timeout, r.suite.jobs(), r.suite.strict, r.suite.verbose),
            (500, 2, true, true)
        );
        assert!(r.suite.fail_fast);
        assert_eq!(r.suite.max_hangs.map(NonZeroUsize::get), Some(3));
        assert_eq!(
            r.worker,
            [OsString::from("./my-worker"), OsString::from("--flag")]
        );
    }

    #[test]
    fn parses_a_parent_line_and_the_stand_in() {
        let cli = Cli::try_parse_from([
            "broadcast-conformance",
            "parent",
            "--transport",
            "socketpair",
            "--case",
            "death/**",
            "--jobs",
            "3",
            "--",
            "python3",
            "adapter.py",
        ])
        .unwrap();
        let Command::Parent(p) = cli.command else { panic!() };
        assert_eq!(
            (p.suite.transport, p.suite.jobs(), p.timeout),
            (TransportArg::Socketpair, 3, 2000)
        );
        assert_eq!(
            p.adapter,
            [OsString::from("python3"), OsString::from("adapter.py")]
        );
        let cli =
            Cli::try_parse_from(["x", "parent-worker", "--session", "/tmp/s.sock", "--fd", "3"]).unwrap();
        let Command::ParentWorker(w) = cli.command else {
            panic!()
        };
        assert_eq!((w.session.to_str(), w.fd), (Some("/tmp/s.sock"), Some(3)));
    }

    #[test]
    fn defaults_and_rejections() {
        let Command::Run(r) = Cli::try_parse_from(["x", "run"]).unwrap().command else {
            panic!()
        };
        assert_eq!((r.timeout, r.suite.transport), (2000, TransportArg::Stdio));
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(
            (r.suite.jobs, r.suite.jobs()),
            (None, cpus),
            "--jobs defaults to the CPU count"
        );
        assert!(!r.suite.fail_fast && r.suite.max_hangs.is_none());
        assert!(r.worker.is_empty());
        assert!(Cli::try_parse_from(["x", "run", "--max-hangs", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "run", "--jobs", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "run", "--timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "run", "--format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["x", "run", "--transport", "tcp"]).is_err());
    }
}
