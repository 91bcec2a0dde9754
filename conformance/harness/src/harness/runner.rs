//! Running cases against a worker: one fresh worker process per case, its
//! bytes written raw ([`RawWriter`]) and its frames read through the
//! [`Broadcaster`](broadcast_process::broadcaster::Broadcaster), with the
//! probe of PROTOCOL.md#probe as the barrier after every step. The probe is
//! sent only once the frames a step expects have come, or the timeout has
//! passed: they are owed before the worker waits for more input
//! (PROTOCOL.md#output-promptness), so a worker that holds them until the
//! next command fails even though the probe would release them.
//!
//! A hang (no probe frame, or no expected exit, within the timeout; or a
//! step's frames that came only after the probe) and a
//! crash (the worker exits or closes its output unexpectedly) are charged to
//! the case and step that was running; the worker is killed and reaped when
//! its `Broadcaster` is dropped, and the run goes on.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Incoming, Options, StderrMode, Transport};
use broadcast_wire::{BroadcastFrame, Message, PayloadError, ReadError, SubCommand};

use super::matching::{Observed, compare, render_data, render_expected, render_observed};
use super::outcome::{Failure, FailureKind, Verdict};
use super::probe::{PROBE_CONN, PROBE_REQ, PROBE_SUB_ID, Prober};
use super::raw_writer::{RawWriter, WriteError, Written};
use super::scenario::{Case, SendItem, Step};

/// Lines of the worker's stderr kept for failure reports.
const STDERR_LINES: usize = 200;

/// Longest single wait, so an interrupt is noticed quickly.
const SLICE: Duration = Duration::from_millis(100);

/// How to start and time a worker.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Program and arguments.
    pub worker: Vec<OsString>,
    /// Pipes or a socketpair.
    pub transport: Transport,
    /// Per-step timeout.
    pub timeout: Duration,
}

/// The result of running one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRun {
    /// It ran to a verdict.
    Done {
        /// Pass or fail.
        verdict: Verdict,
        /// Wall time.
        duration: Duration,
    },
    /// The run was interrupted while this case ran; no verdict.
    Interrupted,
}

/// Everything written and read during a case, for `-v`.
struct Trace {
    start: Instant,
    lines: Vec<String>,
}

impl Trace {
    fn new() -> Trace {
        Trace {
            start: Instant::now(),
            lines: Vec::new(),
        }
    }

    fn push(&mut self, line: String) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        self.lines.push(format!("{ms:9.3} ms {line}"));
    }
}

/// A command for the trace: its op and fields, data as text or hex.
pub(crate) fn describe_command(cmd: &SubCommand) -> String {
    let mut s = format!(
        "{} conn={} flags={:#04x}",
        cmd.op().name(),
        cmd.conn(),
        cmd.flags_bits()
    );
    if let Some(sub_id) = cmd.sub_id() {
        s.push_str(&format!(" sub_id={:?}", sub_id.as_str()));
    }
    match cmd {
        SubCommand::Auth { pubkey, .. } => s.push_str(&format!(" pubkey={}", hex::encode(pubkey))),
        _ if !cmd.data().is_empty() => {
            let data = render_data(cmd.data());
            if data.len() > 300 {
                s.push_str(&format!(
                    " data=({} bytes) {}…",
                    cmd.data().len(),
                    truncate(&data, 300)
                ));
            } else {
                s.push_str(&format!(" data={data}"));
            }
        }
        _ => {}
    }
    s
}

/// The last 8 hex digits of a probe id: the part that differs between
/// probes (the rest is a fixed prefix and zeros).
fn short_id(id: &str) -> &str {
    &id[id.len().saturating_sub(8)..]
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        None => "exit status not known yet".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s}"),
        },
    }
}

/// One case in progress.
struct Session<'a> {
    case: &'a Case,
    cfg: &'a RunConfig,
    interrupt: &'a AtomicBool,
    link: RawWriter,
    prober: Prober,
    trace: Trace,
}

/// Why a case stopped early.
enum Stop {
    Fail(Box<Failure>),
    Interrupted,
}

impl Session<'_> {
    fn failure(&self, kind: FailureKind, step: usize, message: String) -> Stop {
        Stop::Fail(Box::new(Failure {
            kind,
            step: Some(step),
            at: if step == 0 {
                "probe set-up".to_string()
            } else {
                format!("step {step}")
            },
            message,
            expected: Vec::new(),
            actual: Vec::new(),
            stderr_tail: Vec::new(),
            trace: Vec::new(),
        }))
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Writes `bytes` in one write (more only if the worker takes part of
    /// them), keeping the worker's output flowing. Returns `Ok(false)` if
    /// the worker went away (for an `end` step that is not necessarily a
    /// failure).
    fn write(&mut self, bytes: &[u8], step: usize) -> Result<bool, Stop> {
        let deadline = Instant::now() + self.cfg.timeout;
        match self.link.write(bytes, deadline, self.interrupt) {
            Ok(Written::All) => Ok(true),
            Ok(Written::Gone) => Ok(false),
            Err(WriteError::Interrupted) => Err(Stop::Interrupted),
            Err(WriteError::Timeout) => Err(self.failure(
                FailureKind::Hang,
                step,
                format!(
                    "the worker did not read the step's bytes within {} ms",
                    self.cfg.timeout.as_millis()
                ),
            )),
            Err(WriteError::Io(e)) => {
                Err(self.failure(FailureKind::Harness, step, format!("writing failed: {e}")))
            }
        }
    }

    /// Writes a step's items: all in one write, or in `chunk`-byte writes
    /// with `pause_ms` between them.
    fn write_step(&mut self, step: &Step, index: usize) -> Result<bool, Stop> {
        for item in &step.send {
            match item {
                SendItem::Command(cmd) => self.trace.push(format!("> {}", describe_command(cmd))),
                SendItem::Raw(bytes) => {
                    // Long raw items (large frames) are cut: the trace is for
                    // reading, and their first bytes hold the header.
                    let shown = &bytes[..bytes.len().min(128)];
                    let more = if shown.len() < bytes.len() { "…" } else { "" };
                    self.trace.push(format!(
                        "> raw {} byte(s): {}{more}",
                        bytes.len(),
                        hex::encode(shown)
                    ))
                }
            }
        }
        let bytes = step.bytes();
        let chunk = step.chunk.unwrap_or(bytes.len().max(1));
        let pieces: Vec<&[u8]> = bytes.chunks(chunk).collect();
        if step.chunk.is_some() {
            self.trace.push(format!(
                "> (written in {} write(s) of up to {chunk} byte(s), {} ms apart)",
                pieces.len(),
                step.pause_ms
            ));
        }
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 && step.pause_ms > 0 {
                std::thread::sleep(Duration::from_millis(step.pause_ms));
            }
            if !self.write(piece, index)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Collects frames, after those in `observed`, until the probe
    /// `probe_id` reaches the probe connection.
    fn await_probe(
        &mut self,
        probe_id: &str,
        step: usize,
        mut observed: Vec<Observed>,
    ) -> Result<Vec<Observed>, Stop> {
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            if self.interrupted() {
                return Err(Stop::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut stop = self.failure(
                    FailureKind::Hang,
                    step,
                    format!(
                        "the probe frame did not arrive within {} ms",
                        self.cfg.timeout.as_millis()
                    ),
                );
                if let Stop::Fail(f) = &mut stop {
                    f.actual = observed.iter().map(render_observed).collect();
                }
                return Err(stop);
            }
            match self.link.next_incoming(left.min(SLICE)) {
                Ok(Incoming::Frame(frame)) => match self.prober.probe_id_of(&frame.data) {
                    Some(id) => {
                        self.trace
                            .push(format!("< conn {} probe …{}", frame.conn, short_id(&id)));
                        if frame.conn == PROBE_CONN && id == probe_id {
                            return Ok(observed);
                        }
                    }
                    None => observed.push(self.observe_frame(frame)),
                },
                Ok(Incoming::InvalidFrame(e)) => observed.push(self.observe_invalid(&e)),
                // The harness's link is not supervised: it never restarts.
                Ok(Incoming::Pending | Incoming::WorkerRestarted(_)) => {}
                Ok(Incoming::WorkerExited(status)) => {
                    let status = status.or_else(|| self.link.worker().wait_exit(SLICE));
                    let mut stop =
                        self.crash_with_status(step, status, "the worker closed its output before the probe");
                    if let Stop::Fail(f) = &mut stop {
                        f.actual = observed.iter().map(render_observed).collect();
                    }
                    return Err(stop);
                }
                Err(e) => return Err(self.read_failure(e, step)),
            }
        }
    }

    fn crash(&mut self, step: usize, what: &str) -> Stop {
        let status = self.link.worker().wait_exit(SLICE);
        self.crash_with_status(step, status, what)
    }

    fn crash_with_status(&mut self, step: usize, status: Option<ExitStatus>, what: &str) -> Stop {
        self.trace
            .push(format!("< worker gone: {}", describe_status(status)));
        self.failure(
            FailureKind::Crash,
            step,
            format!("{what} ({})", describe_status(status)),
        )
    }

    fn read_failure(&mut self, e: ReadError, step: usize) -> Stop {
        match e {
            ReadError::Framing(f) => {
                // A worker killed in the middle of a frame looks like a
                // truncated stream: if it is gone, call it a crash.
                if let Some(status) = self.link.worker().wait_exit(SLICE) {
                    let what = format!("the worker's output ended inside a frame ({})", f.class());
                    return self.crash_with_status(step, Some(status), &what);
                }
                self.trace.push(format!("< fatal framing error: {f}"));
                self.failure(
                    FailureKind::Protocol,
                    step,
                    format!("the worker's output broke the framing rules: {f}"),
                )
            }
            ReadError::Io(e) => self.failure(
                FailureKind::Harness,
                step,
                format!("reading the worker's output failed: {e}"),
            ),
        }
    }

    /// Collects the `owed` frames a step expects before anything more is
    /// sent (PROTOCOL.md#output-promptness: they are written before the
    /// worker waits for more input), up to the step timeout. Returns what
    /// came, which is fewer than `owed` if the time ran out: the caller
    /// sends the probe anyway and the comparison tells why.
    fn await_owed(&mut self, owed: usize, step: usize) -> Result<Vec<Observed>, Stop> {
        let deadline = Instant::now() + self.cfg.timeout;
        let mut observed = Vec::new();
        while observed.len() < owed {
            if self.interrupted() {
                return Err(Stop::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.trace.push(format!(
                    "< ({} of the {owed} expected frame(s) within {} ms; sending the probe)",
                    observed.len(),
                    self.cfg.timeout.as_millis()
                ));
                break;
            }
            match self.link.next_incoming(left.min(SLICE)) {
                Ok(Incoming::Frame(frame)) => match self.prober.probe_id_of(&frame.data) {
                    // A late frame of an earlier probe, to a scenario's own
                    // subscription: not the step's.
                    Some(id) => self
                        .trace
                        .push(format!("< conn {} probe …{}", frame.conn, short_id(&id))),
                    None => observed.push(self.observe_frame(frame)),
                },
                Ok(Incoming::InvalidFrame(e)) => observed.push(self.observe_invalid(&e)),
                // The harness's link is not supervised: it never restarts.
                Ok(Incoming::Pending | Incoming::WorkerRestarted(_)) => {}
                Ok(Incoming::WorkerExited(status)) => {
                    let status = status.or_else(|| self.link.worker().wait_exit(SLICE));
                    let mut stop = self.crash_with_status(
                        step,
                        status,
                        "the worker closed its output before the step's frames",
                    );
                    if let Stop::Fail(f) = &mut stop {
                        f.actual = observed.iter().map(render_observed).collect();
                    }
                    return Err(stop);
                }
                Err(e) => return Err(self.read_failure(e, step)),
            }
        }
        Ok(observed)
    }

    /// The end of a step: waits for the `owed` frames it expects, then
    /// sends a probe and waits for that. Returns every frame of the step
    /// and how many of them came before the probe was sent.
    fn barrier(&mut self, step: usize, owed: usize) -> Result<(Vec<Observed>, usize), Stop> {
        let early = if owed > 0 {
            self.await_owed(owed, step)?
        } else {
            Vec::new()
        };
        let before_probe = early.len();
        let probe = self.prober.next_probe();
        self.trace.push(format!("> probe …{}", short_id(&probe.id)));
        if !self.write(&framed(&[&probe.command]), step)? {
            return Err(self.crash(step, "the worker went away before the probe could be written"));
        }
        Ok((self.await_probe(&probe.id, step, early)?, before_probe))
    }

    fn setup(&mut self) -> Result<(), Stop> {
        let [new, add] = super::probe::setup_commands();
        debug_assert_eq!(add.data(), PROBE_REQ.as_bytes());
        debug_assert_eq!(add.sub_id().map(|s| s.as_str()), Some(PROBE_SUB_ID));
        self.trace.push(format!("> {}", describe_command(&new)));
        self.trace.push(format!("> {}", describe_command(&add)));
        if !self.write(&framed(&[&new, &add]), 0)? {
            return Err(self.crash(0, "the worker went away while the probe set-up was written"));
        }
        let (observed, _) = self.barrier(0, 0)?;
        if !observed.is_empty() {
            let mut stop = self.failure(
                FailureKind::Mismatch,
                0,
                "the probe set-up (New and Add on conn 2147483647) must send nothing".into(),
            );
            if let Stop::Fail(f) = &mut stop {
                f.actual = observed.iter().map(render_observed).collect();
            }
            return Err(stop);
        }
        Ok(())
    }

    fn run_step(&mut self, step: &Step, index: usize) -> Result<(), Stop> {
        self.trace.push(format!("-- step {index}"));
        let written = self.write_step(step, index)?;
        let result = match step.end {
            None if !written => {
                Err(self.crash(index, "the worker went away while the step's bytes were written"))
            }
            None => self
                .barrier(index, step.expect.len())
                .and_then(|(observed, before_probe)| {
                    self.check_frames(step, index, &observed, Some(before_probe))
                }),
            Some(end) => self.run_end(step, index, end.close_input, end.exit),
        };
        // A hang or a crash also shows what the step was waiting for.
        result.map_err(|mut stop| {
            if let Stop::Fail(f) = &mut stop
                && f.expected.is_empty()
            {
                f.expected = step.expect.iter().map(render_expected).collect();
            }
            stop
        })
    }

    /// Compares a step's frames with its `expect`. `before_probe`, for a
    /// step that ends with a probe, is how many of them came before the
    /// probe was sent: frames that match but came only after it were held
    /// by the worker until more input arrived (PROTOCOL.md#output-promptness).
    fn check_frames(
        &mut self,
        step: &Step,
        index: usize,
        observed: &[Observed],
        before_probe: Option<usize>,
    ) -> Result<(), Stop> {
        let owed = step.expect.len();
        let late = before_probe.filter(|n| *n < owed);
        let failure = match (compare(&step.expect, observed, step.ordered), late) {
            (Ok(()), None) => return Ok(()),
            (Ok(()), Some(n)) => self.failure(
                FailureKind::Hang,
                index,
                format!(
                    "{n} of the step's {owed} expected frame(s) came within {} ms; the rest came only after the probe \
                     Bcast. A worker must write the frames its commands cause before it waits for more input \
                     (PROTOCOL.md#output-promptness)",
                    self.cfg.timeout.as_millis()
                ),
            ),
            (Err(m), None) => self.failure(FailureKind::Mismatch, index, m.summary),
            (Err(m), Some(n)) => self.failure(
                FailureKind::Mismatch,
                index,
                format!(
                    "{} ({n} frame(s) came in the {} ms the harness waited before the probe)",
                    m.summary,
                    self.cfg.timeout.as_millis()
                ),
            ),
        };
        let mut stop = failure;
        if let Stop::Fail(f) = &mut stop {
            f.expected = step.expect.iter().map(render_expected).collect();
            f.actual = observed.iter().map(render_observed).collect();
        }
        Err(stop)
    }

    /// A last step that ends the worker: read until its output closes,
    /// then check the frames and the exit status.
    fn run_end(&mut self, step: &Step, index: usize, close_input: bool, exit: i32) -> Result<(), Stop> {
        if close_input {
            self.trace.push("> (close input)".into());
            self.link.close_input();
        }
        let deadline = Instant::now() + self.cfg.timeout;
        let mut observed = Vec::new();
        let status = loop {
            if self.interrupted() {
                return Err(Stop::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut stop = self.failure(
                    FailureKind::Hang,
                    index,
                    format!(
                        "expected the worker to exit with status {exit}, but it did not exit within {} ms",
                        self.cfg.timeout.as_millis()
                    ),
                );
                if let Stop::Fail(f) = &mut stop {
                    f.expected = step.expect.iter().map(render_expected).collect();
                    f.actual = observed.iter().map(render_observed).collect();
                }
                return Err(stop);
            }
            match self.link.next_incoming(left.min(SLICE)) {
                Ok(Incoming::Frame(frame)) => {
                    if self.prober.probe_id_of(&frame.data).is_some() {
                        self.trace
                            .push(format!("< conn {} (late probe frame)", frame.conn));
                        continue;
                    }
                    observed.push(self.observe_frame(frame));
                }
                Ok(Incoming::InvalidFrame(e)) => observed.push(self.observe_invalid(&e)),
                // The harness's link is not supervised: it never restarts.
                Ok(Incoming::Pending | Incoming::WorkerRestarted(_)) => {}
                Ok(Incoming::WorkerExited(status)) => match status {
                    Some(s) => break s,
                    None => {
                        if let Some(s) = self.link.worker().wait_exit(left.min(SLICE)) {
                            break s;
                        }
                    }
                },
                Err(e) => return Err(self.read_failure(e, index)),
            }
        };
        self.trace
            .push(format!("< worker exited: {}", describe_status(Some(status))));
        self.check_frames(step, index, &observed, None)?;
        if status.code() != Some(exit) {
            return Err(self.failure(
                FailureKind::ExitStatus,
                index,
                format!(
                    "expected exit status {exit}, got {}",
                    describe_status(Some(status))
                ),
            ));
        }
        Ok(())
    }

    /// A frame of the step (not a probe's): traced, then kept for matching.
    fn observe_frame(&mut self, frame: BroadcastFrame) -> Observed {
        self.trace
            .push(format!("< conn {}: {}", frame.conn, render_data(&frame.data)));
        Observed::Frame {
            conn: frame.conn,
            data: frame.data,
        }
    }

    /// A channel-2 payload that does not decode: traced, then kept so the
    /// step fails on it like on any unexpected frame.
    fn observe_invalid(&mut self, e: &PayloadError) -> Observed {
        self.trace
            .push(format!("< undecodable channel-2 payload ({}): {e}", e.class()));
        Observed::Invalid {
            class: e.class(),
            detail: e.to_string(),
        }
    }

    fn stderr_lines(&mut self) -> Vec<String> {
        self.link
            .worker()
            .stderr_tail()
            .map(|t| t.lines())
            .unwrap_or_default()
    }
}

/// Why [`preflight`] stops a run before any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightError {
    /// The worker command cannot be started at all: a setup error.
    CannotStart(String),
    /// The worker started but did not answer the probe set-up within the
    /// timeout: every case would hang the same way, so the run stops.
    Silent(String),
}

impl std::fmt::Display for PreflightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreflightError::CannotStart(m) | PreflightError::Silent(m) => f.write_str(m),
        }
    }
}

/// Starts the worker once and runs the probe set-up against it (PROTOCOL.md#probe
/// and PROTOCOL.md#output-promptness), so that a command that cannot be
/// executed, or a worker that never answers, is one clear error instead of
/// a failure charged to every case. A worker that answers but gets the
/// set-up wrong otherwise (a crash, an extra frame) is left to the cases,
/// which report it in detail.
pub fn preflight(cfg: &RunConfig) -> Result<(), PreflightError> {
    let empty = Case {
        id: "preflight".into(),
        section: "preflight".into(),
        level: super::scenario::Level::Must,
        spec: "PROTOCOL.md#probe-setup".into(),
        requirement: String::new(),
        comment: String::new(),
        steps: Vec::new(),
    };
    match run_case(&empty, cfg, &AtomicBool::new(false)) {
        CaseRun::Done {
            verdict: Verdict::Fail(f),
            ..
        } => match f.kind {
            FailureKind::Harness => Err(PreflightError::CannotStart(f.message)),
            FailureKind::Hang => Err(PreflightError::Silent(format!(
                "the worker did not answer the first probe: {}. Every case would hang the same way, so \
                 the run stops here. A worker must write a command's frames before it waits for the \
                 next command (PROTOCOL.md#output-promptness); check that it flushes its output.{}",
                f.message,
                if f.stderr_tail.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\nLast lines of the worker's stderr:\n  {}",
                        f.stderr_tail.join("\n  ")
                    )
                }
            ))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Runs one case against a fresh worker.
pub fn run_case(case: &Case, cfg: &RunConfig, interrupt: &AtomicBool) -> CaseRun {
    let start = Instant::now();
    let Some((program, args)) = cfg.worker.split_first() else {
        return CaseRun::Done {
            verdict: harness_failure("no worker command"),
            duration: start.elapsed(),
        };
    };
    let mut command = Command::new(program);
    command.args(args);
    let opts = Options::new()
        .stderr(StderrMode::Capture {
            max_lines: STDERR_LINES,
        })
        // A case's worker is expected to exit at once on end of input.
        .grace_period(Duration::from_millis(200));
    let link = match RawWriter::spawn(command, cfg.transport, &opts) {
        Ok(w) => w,
        Err(e) => {
            return CaseRun::Done {
                verdict: harness_failure(&format!("cannot start the worker: {e}")),
                duration: start.elapsed(),
            };
        }
    };
    let mut session = Session {
        case,
        cfg,
        interrupt,
        link,
        prober: Prober::new(),
        trace: Trace::new(),
    };
    let result = session.setup().and_then(|()| {
        for (i, step) in session.case.steps.iter().enumerate() {
            session.run_step(step, i + 1)?;
        }
        Ok(())
    });
    let verdict = match result {
        Ok(()) => Verdict::Pass,
        Err(Stop::Interrupted) => return CaseRun::Interrupted,
        Err(Stop::Fail(mut f)) => {
            // Kill first so the stderr reader sees the end of the pipe, then
            // collect the worker's last words.
            let _ = session.link.worker().kill();
            let _ = session.link.worker().wait_exit(Duration::from_secs(1));
            if let Some(tail) = session.link.worker().stderr_tail() {
                tail.wait_closed(Duration::from_millis(200));
            }
            if interrupt.load(Ordering::SeqCst) {
                // Ctrl-C also reaches the worker: do not blame the case.
                return CaseRun::Interrupted;
            }
            f.stderr_tail = session.stderr_lines();
            f.trace = std::mem::take(&mut session.trace.lines);
            Verdict::Fail(f)
        }
    };
    CaseRun::Done {
        verdict,
        duration: start.elapsed(),
    }
}

/// `commands` framed on channel 1, back to back, for one write.
fn framed(commands: &[&SubCommand]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(commands.iter().map(|c| c.framed_len()).sum());
    for cmd in commands {
        cmd.encode_framed(&mut buf);
    }
    buf
}

fn harness_failure(message: &str) -> Verdict {
    Verdict::Fail(Box::new(Failure {
        kind: FailureKind::Harness,
        step: Some(0),
        at: "start".to_string(),
        message: message.to_string(),
        expected: Vec::new(),
        actual: Vec::new(),
        stderr_tail: Vec::new(),
        trace: Vec::new(),
    }))
}

/// Runs `cases` on `jobs` threads and sends `(index, result)` for each case
/// as it finishes. Cases are started in index order. After each case,
/// `stop_after(index, result)` says whether to start no more cases
/// (`--fail-fast`, `--max-hangs`); it is called on the thread that ran the
/// case before that thread picks another, so with one job nothing runs past
/// the case that stopped the run. Cases running on other threads finish.
/// Ctrl-C (`interrupt`) stops running cases too. Cases not started are not
/// sent.
pub fn run_all(
    cases: &[&Case],
    cfg: &RunConfig,
    jobs: usize,
    interrupt: &Arc<AtomicBool>,
    stop_after: &(dyn Fn(usize, &CaseRun) -> bool + Sync),
    results: mpsc::Sender<(usize, CaseRun)>,
) {
    run_each(cases, jobs, interrupt, stop_after, results, &|case, interrupt| {
        run_case(case, cfg, interrupt)
    });
}

/// [`run_all`] for cases of any suite: `run(case, interrupt)` runs one
/// (the parent suite's cases run through here too).
pub fn run_each<C: Sync>(
    cases: &[&C],
    jobs: usize,
    interrupt: &Arc<AtomicBool>,
    stop_after: &(dyn Fn(usize, &CaseRun) -> bool + Sync),
    results: mpsc::Sender<(usize, CaseRun)>,
    run: &(dyn Fn(&C, &AtomicBool) -> CaseRun + Sync),
) {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let stop = &stop;
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let results = results.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    if interrupt.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let run = run(case, interrupt);
                    if stop_after(i, &run) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if results.send((i, run)).is_err() {
                        break;
                    }
                }
            });
        }
    });
}
