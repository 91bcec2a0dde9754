//! Running one parent case: a fresh adapter, the harness as its worker(s),
//! the case's steps, and a verdict charged to the step that failed.
//!
//! 1. The harness listens on a fresh Unix socket, starts the adapter and
//!    sends `start` with the stand-in's argv
//!    (`broadcast-conformance parent-worker --session PATH`). Each stand-in
//!    the parent starts connects back and gets an engine ([`Link`]).
//! 2. Steps run in order. Actions are sent without waiting; a `check` is
//!    the barrier: `sync`, then every answer, every command (matched byte
//!    for byte, [`matcher`]) and every expected delivery
//!    must have come; then, to prove that nothing else will be delivered,
//!    the harness writes a marker frame for a connected client behind
//!    everything it wrote on each worker, waits for the marker's delivery
//!    (the parent reads its worker's output in order, so everything before
//!    the marker has been read), and syncs again: by the contract, every
//!    frame read before a `sync` is handled before `synced`.
//! 3. The case ends with `shutdown` (the last step, or added): the parent
//!    ends its command stream, the stand-ins exit 0, the adapter reports
//!    `worker_gone`, answers and exits 0.
//!
//! Every wait is bounded by `--timeout`. An adapter that exits early is a
//! crash, one that does not answer a hang; either way the adapter and every
//! stand-in are killed and reaped, and the run goes on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::Transport;
use broadcast_wire::{BroadcastFrame, Message};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::adapter::{Adapter, Event};
use super::case::{
    Answer, Check, ConnRef, Deliv, Inject, Item, PStep, ParentCase, Split, StatusExp, Via, WorkerOp,
    substitute,
};
use super::engine::{self, Link, Shared, StreamEnd};
use super::matcher::{self, Binding, ExpectedCmd};
use super::standin::{Control, HELLO_LEN, parse_hello};
use crate::harness::matching::render_data;
use crate::harness::outcome::{Failure, FailureKind, Verdict};
use crate::harness::runner::{CaseRun, truncate};

/// How a parent case is run.
#[derive(Debug, Clone)]
pub struct ParentConfig {
    /// The adapter's argv.
    pub adapter: Vec<OsString>,
    /// How the adapter connects its worker.
    pub transport: Transport,
    /// Every wait: an answer, a line, a delivery, a worker's start.
    pub timeout: Duration,
    /// The stand-in program (this binary).
    pub exe: PathBuf,
    /// Where the session sockets go.
    pub dir: PathBuf,
}

/// Why a case stopped.
enum Stop {
    Fail(Box<Failure>),
    Interrupted,
}

type Res<T> = Result<T, Stop>;

/// Sessions started by this process, for unique socket names.
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// An action sent.
struct Sent {
    seq: u64,
    step: usize,
    what: String,
    answer: Answer,
    label: Option<String>,
    rep: usize,
    expected: Vec<ExpectedCmd>,
    connect: Option<String>,
}

/// What the adapter's lines said so far.
#[derive(Default)]
struct Scan {
    seen: usize,
    started: bool,
    refused_start: Option<String>,
    /// Non-sync seqs sent and not answered yet, in order.
    pending: VecDeque<u64>,
    answers: HashMap<u64, (bool, String)>,
    synced: HashSet<u64>,
    deliveries: Vec<(String, Vec<u8>)>,
    gone: Vec<(bool, String, Option<i64>)>,
    problem: Option<String>,
    eof: bool,
}

/// One case in progress.
struct Session<'a> {
    case: &'a ParentCase,
    cfg: &'a ParentConfig,
    interrupt: &'a AtomicBool,
    sock_path: PathBuf,
    adapter: Adapter,
    shared: Arc<Shared>,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
    accepting: Arc<AtomicBool>,
    seq: u64,
    sent: Vec<Sent>,
    shutdown_seq: Option<u64>,
    scan: Scan,
    bindings: HashMap<String, Binding>,
    live: Vec<String>,
    check_from: usize,
    written_at_check: Vec<u64>,
    markers: HashSet<Vec<u8>>,
    nonce: u64,
    /// The harness ended the workers (exit, kill, closed output or input,
    /// a fatal injection): worker_gone is due.
    ended: bool,
    /// worker_gone lines a check has accepted.
    gone_accepted: usize,
    /// How many timeouts a wait gets: 3 while the adapter and its workers
    /// start (an interpreter loading its modules on a busy machine), then 1.
    patience: u32,
    fanout_events: HashSet<Arc<Vec<u8>>>,
    step: usize,
    /// Unsafe reuses found, reported at the end of the case: first comes
    /// what they cause (a late frame delivered to the wrong client).
    deferred: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one case against a fresh adapter.
pub fn run_case(case: &ParentCase, cfg: &ParentConfig, interrupt: &AtomicBool) -> CaseRun {
    let start = Instant::now();
    let mut session = match Session::start(case, cfg, interrupt) {
        Ok(s) => s,
        Err(verdict) => {
            return CaseRun::Done {
                verdict,
                duration: start.elapsed(),
            };
        }
    };
    let result = session.run();
    let verdict = match result {
        Ok(()) => {
            session.teardown();
            Verdict::Pass
        }
        Err(Stop::Interrupted) => {
            session.teardown();
            return CaseRun::Interrupted;
        }
        Err(Stop::Fail(mut f)) => {
            session.teardown();
            if interrupt.load(Ordering::SeqCst) {
                return CaseRun::Interrupted;
            }
            f.stderr_tail = session.adapter.stderr_tail();
            f.trace = session.trace_lines();
            Verdict::Fail(f)
        }
    };
    CaseRun::Done {
        verdict,
        duration: start.elapsed(),
    }
}

fn harness_failure(message: String) -> Verdict {
    Verdict::Fail(Box::new(Failure {
        kind: FailureKind::Harness,
        step: Some(0),
        at: "start".into(),
        message,
        expected: Vec::new(),
        actual: Vec::new(),
        stderr_tail: Vec::new(),
        trace: Vec::new(),
    }))
}

impl<'a> Session<'a> {
    fn start(
        case: &'a ParentCase,
        cfg: &'a ParentConfig,
        interrupt: &'a AtomicBool,
    ) -> Result<Session<'a>, Verdict> {
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let sock_path = cfg.dir.join(format!("{n}.sock"));
        let _ = std::fs::remove_file(&sock_path);
        let listener = UnixListener::bind(&sock_path)
            .map_err(|e| harness_failure(format!("cannot listen on {}: {e}", sock_path.display())))?;
        let adapter = Adapter::spawn(&cfg.adapter).map_err(|e| {
            let _ = std::fs::remove_file(&sock_path);
            harness_failure(format!(
                "cannot start the adapter {}: {e}",
                cfg.adapter
                    .first()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ))
        })?;
        let shared = Shared::new();
        let links = Arc::new(Mutex::new(Vec::new()));
        let accepting = Arc::new(AtomicBool::new(true));
        {
            let shared = Arc::clone(&shared);
            let links = Arc::clone(&links);
            let accepting = Arc::clone(&accepting);
            let timeout = cfg.timeout;
            std::thread::spawn(move || accept_loop(&listener, &shared, &links, &accepting, timeout));
        }
        Ok(Session {
            case,
            cfg,
            interrupt,
            sock_path,
            adapter,
            shared,
            links,
            accepting,
            seq: 0,
            sent: Vec::new(),
            shutdown_seq: None,
            scan: Scan::default(),
            bindings: HashMap::new(),
            live: Vec::new(),
            check_from: 0,
            written_at_check: Vec::new(),
            markers: HashSet::new(),
            nonce: (n << 16) ^ u64::from(std::process::id()),
            ended: false,
            gone_accepted: 0,
            patience: 3,
            fanout_events: HashSet::new(),
            step: 0,
            deferred: Vec::new(),
        })
    }

    fn trace(&self, line: String) {
        self.shared.trace(line);
    }

    /// The trace, after a legend: the human report's headings ("wire
    /// trace", "worker stderr") are the worker suite's.
    fn trace_lines(&self) -> Vec<String> {
        let legend = "(parent suite: `>` a line to the adapter, `<` a line from it, `wN>` what the parent wrote to \
                      worker N, `wN<` what the harness wrote as worker N; the stderr shown is the adapter's)";
        std::iter::once(legend.to_string())
            .chain(
                self.shared
                    .lock()
                    .trace
                    .iter()
                    .map(|(at, l)| format!("{:9.3} ms {l}", at.as_secs_f64() * 1000.0)),
            )
            .collect()
    }

    fn links(&self) -> Vec<Arc<Link>> {
        lock(&self.links).clone()
    }

    fn at(&self) -> String {
        match self.step {
            0 => "start".to_string(),
            s if s > self.case.steps.len() => "shutdown".to_string(),
            s => format!("step {s}"),
        }
    }

    fn fail(&self, kind: FailureKind, message: String) -> Stop {
        self.fail_with(kind, message, Vec::new(), Vec::new())
    }

    fn fail_with(
        &self,
        kind: FailureKind,
        message: String,
        expected: Vec<String>,
        actual: Vec<String>,
    ) -> Stop {
        Stop::Fail(Box::new(Failure {
            kind,
            step: Some(self.step),
            at: self.at(),
            message,
            expected,
            actual,
            stderr_tail: Vec::new(),
            trace: Vec::new(),
        }))
    }

    // ---- the adapter's lines -------------------------------------------

    /// Reads the adapter's new lines into `scan`.
    fn scan(&mut self) {
        let lines = self.adapter.lines();
        let new: Vec<Event> = lines.events[self.scan.seen..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect();
        let eof = lines.eof;
        drop(lines);
        self.scan.seen += new.len();
        for e in new {
            self.trace(format!("< {}", describe_event(&e)));
            self.on_event(e);
        }
        if eof && !self.scan.eof {
            self.scan.eof = true;
            self.trace("< (the adapter's stdout ended)".into());
        }
    }

    fn on_event(&mut self, e: Event) {
        let s = &mut self.scan;
        let problem = match e {
            Event::Started => {
                s.started = true;
                None
            }
            Event::Refused(0, msg) if !s.started => {
                s.refused_start = Some(msg);
                None
            }
            Event::Ok(seq) | Event::Refused(seq, _) if s.answers.contains_key(&seq) => Some(format!(
                "seq {seq} was answered twice (the contract: exactly one answer per action)"
            )),
            Event::Ok(seq) | Event::Refused(seq, _) if s.pending.front() != Some(&seq) => {
                Some(match s.pending.front() {
                    Some(first) if s.pending.contains(&seq) => {
                        format!(
                            "seq {seq} was answered before seq {first} (the contract: answers come in seq order)"
                        )
                    }
                    _ => format!("an answer for seq {seq}, which is no pending action"),
                })
            }
            Event::Ok(seq) => {
                s.pending.pop_front();
                s.answers.insert(seq, (true, String::new()));
                (!s.gone.is_empty() && Some(seq) != self.shutdown_seq).then(|| {
                    format!(
                        "seq {seq} was answered `ok` after worker_gone (PROTOCOL.md#parent-worker-death: after that, no command may claim success)"
                    )
                })
            }
            Event::Refused(seq, msg) => {
                s.pending.pop_front();
                s.answers.insert(seq, (false, msg));
                None
            }
            Event::Synced(seq) => match s.pending.front() {
                Some(first) if *first < seq => Some(format!(
                    "`synced` for seq {seq} came before the answer for seq {first} (a sync is answered after every earlier action)"
                )),
                _ => {
                    s.synced.insert(seq);
                    None
                }
            },
            Event::Deliver { client, data } => {
                s.deliveries.push((client, data));
                None
            }
            Event::Dropped(_) => None,
            Event::Gone {
                fatal,
                message,
                status,
            } => {
                s.gone.push((fatal, message, status));
                None
            }
            Event::Bad(why, line) => Some(format!(
                "the adapter wrote a line that breaks the contract ({why}): {line}"
            )),
        };
        if let Some(p) = problem {
            self.scan.problem.get_or_insert(p);
        }
    }

    /// Waits until `cond` gives a value, failing on a broken line, the
    /// adapter's exit, an interrupt or the timeout (`what` says what was
    /// awaited, for the message).
    ///
    /// The timeout counts from the last progress (a line or bytes from the
    /// adapter, bytes or frames on a worker's streams), so that a long line
    /// (a 16 MiB frame as hex) is not a hang while it comes; no wait lasts
    /// more than ten timeouts.
    fn wait<T>(&mut self, what: &str, mut cond: impl FnMut(&mut Session<'a>) -> Res<Option<T>>) -> Res<T> {
        let start = Instant::now();
        let timeout = self.cfg.timeout * self.patience;
        let cap = start + self.cfg.timeout * 10;
        let mut until = start + timeout;
        let mut progress = self.progress();
        loop {
            self.scan();
            if let Some(p) = self.scan.problem.take() {
                return Err(self.fail(FailureKind::Protocol, p));
            }
            if let Some(v) = cond(self)? {
                return Ok(v);
            }
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Stop::Interrupted);
            }
            if self.scan.eof {
                let status = self.adapter.wait_exit(Duration::from_millis(200));
                return Err(self.fail(
                    FailureKind::Crash,
                    format!(
                        "the adapter exited ({}) while the harness waited for {what}",
                        describe_exit(status)
                    ),
                ));
            }
            let now_progress = self.progress();
            if now_progress != progress {
                progress = now_progress;
                until = (Instant::now() + timeout).min(cap);
            }
            if Instant::now() >= until {
                return Err(self.fail(
                    FailureKind::Hang,
                    format!("{what} did not come within {} ms", timeout.as_millis()),
                ));
            }
            let seen = self.scan.seen;
            let slice = until.min(Instant::now() + Duration::from_millis(5));
            self.adapter.wait_lines(seen, slice);
            // The engines' log changes too (commands, the end of a stream).
            self.shared.wait_change(Instant::now());
        }
    }

    /// A number that grows whenever data moves: bytes from the adapter,
    /// bytes of the command streams, frames written to the workers.
    fn progress(&self) -> u64 {
        let adapter = self.adapter.lines().bytes;
        let log = self.shared.lock();
        adapter
            + log.entries.len() as u64
            + log
                .workers
                .iter()
                .map(|w| w.bytes_in + w.frames_written)
                .sum::<u64>()
    }

    fn send_line(&mut self, line: String) {
        self.trace(format!("> {}", truncate(&line, 300)));
        self.adapter.send(line);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Sends `sync` and waits for `synced`.
    fn sync(&mut self) -> Res<()> {
        let seq = self.next_seq();
        self.send_line(format!(r#"{{"seq":{seq},"action":"sync"}}"#));
        self.wait(&format!("`synced` for seq {seq}"), |s| {
            Ok(s.scan.synced.contains(&seq).then_some(()))
        })
    }

    // ---- the run ----------------------------------------------------------

    fn run(&mut self) -> Res<()> {
        let start = serde_json::json!({
            "action": "start",
            "worker": [
                self.cfg.exe.to_string_lossy(),
                "parent-worker",
                "--session",
                self.sock_path.to_string_lossy(),
            ],
            "transport": match self.cfg.transport {
                Transport::Stdio => "stdio",
                Transport::SocketPair => "socketpair",
            },
        });
        self.send_line(start.to_string());
        self.wait("`started`", |s| {
            if let Some(msg) = &s.scan.refused_start {
                return Err(s.fail(
                    FailureKind::Harness,
                    format!("the adapter could not start its worker: {msg}"),
                ));
            }
            Ok(s.scan.started.then_some(()))
        })?;
        // Every worker the parent started has exec'd by now; wait for each
        // to connect.
        let expected = engine::standins_of(&self.sock_path, Some(&self.cfg.exe))
            .len()
            .max(1);
        self.wait(
            "the worker's connection to the harness (did the adapter run the worker command of `start`?)",
            |s| Ok((lock(&s.links).len() >= expected).then_some(())),
        )?;
        self.trace(format!("{} worker(s) connected", self.links().len()));
        self.patience = 1;
        self.written_at_check = vec![0; self.links().len()];
        for (i, step) in self.case.steps.iter().enumerate() {
            self.step = i + 1;
            match step {
                PStep::Act(act) => {
                    for rep in 0..act.repeat {
                        self.act(act, rep)?;
                    }
                }
                PStep::Inject(inj) => self.inject(inj)?,
                PStep::Worker(op) => self.worker_op(op)?,
                PStep::Await(list) => self.await_deliveries(list)?,
                PStep::Settle(ms) => self.settle(Duration::from_millis(*ms))?,
                PStep::Check(check) => self.check(check)?,
                PStep::Shutdown => return self.shutdown(),
            }
        }
        self.step = self.case.steps.len() + 1;
        self.shutdown()
    }

    fn act(&mut self, act: &super::case::Act, rep: usize) -> Res<()> {
        let seq = self.next_seq();
        let i = (act.repeat > 1).then_some(rep);
        let line = act.line(seq, i);
        let data = Arc::new(
            act.data
                .as_ref()
                .map(|d| d.expand(i))
                .unwrap_or_default()
                .into_bytes(),
        );
        let what = match &act.client {
            Some(c) => format!("{} {c}", act.action),
            None => format!("{} from no client", act.action),
        };
        let expected = act
            .commands
            .iter()
            .map(|t| ExpectedCmd {
                seq,
                what: what.clone(),
                template: t.clone(),
                data: Arc::clone(&data),
                optional: self.ended,
            })
            .collect();
        if act.action == "fanout" {
            self.fanout_events.insert(Arc::clone(&data));
        }
        match act.action.as_str() {
            "connect" => self.live.extend(act.client.clone()),
            "disconnect" => self.live.retain(|c| Some(c) != act.client.as_ref()),
            _ => {}
        }
        self.scan.pending.push_back(seq);
        self.sent.push(Sent {
            seq,
            step: self.step,
            what,
            answer: act.answer,
            label: act.label.clone(),
            rep,
            expected,
            connect: (act.action == "connect").then(|| act.client.clone()).flatten(),
        });
        // Several workers: those connected, or started and not connected
        // yet (a stand-in that connects late would otherwise let this
        // client's New, or the one before it, arrive after the next).
        let several = act.action == "connect" && !self.ended && self.workers_started() > 1;
        let news_before = self.news();
        self.send_line(line);
        if several {
            self.await_new(seq, news_before);
        }
        Ok(())
    }

    /// How many workers the parent has: those connected to the session,
    /// or more when more stand-ins of this session run (started, not
    /// connected yet).
    fn workers_started(&self) -> usize {
        let connected = self.links().len();
        if connected > 1 {
            return connected;
        }
        connected.max(engine::standins_of(&self.sock_path, Some(&self.cfg.exe)).len())
    }

    /// How many New commands the workers have received.
    fn news(&self) -> usize {
        self.shared
            .lock()
            .entries
            .iter()
            .filter(|e| matches!(e.cmd, Ok(broadcast_wire::SubCommand::New { .. })))
            .count()
    }

    /// With several workers, waits (up to the timeout, never failing) for
    /// a New after the `connect` `seq`: the workers' streams reach the
    /// harness in any order, so this keeps the New of each client ahead of
    /// the next client's, and binding clients to conns unambiguous.
    fn await_new(&mut self, seq: u64, before: usize) {
        let until = Instant::now() + self.cfg.timeout;
        while Instant::now() < until && self.news() == before && !self.interrupt.load(Ordering::SeqCst) {
            self.scan();
            if self.scan.answers.get(&seq).is_some_and(|(ok, _)| !ok) || self.scan.eof {
                return;
            }
            self.shared
                .wait_change(Instant::now() + Duration::from_millis(20));
        }
    }

    /// The conn of a bound client.
    fn conn_of(&self, client: &str) -> Res<i32> {
        self.bindings.get(client).map(|b| b.conn).ok_or_else(|| {
            self.fail(
                FailureKind::Mismatch,
                format!("client {client}'s New never came, so its conn is not known"),
            )
        })
    }

    fn link_of(&self, client: &str) -> Res<Arc<Link>> {
        let worker = self.bindings.get(client).map(|b| b.worker).ok_or_else(|| {
            self.fail(
                FailureKind::Mismatch,
                format!("client {client}'s New never came, so its worker is not known"),
            )
        })?;
        self.links()
            .into_iter()
            .find(|l| l.index == worker)
            .ok_or_else(|| self.fail(FailureKind::Harness, format!("no worker {worker}")))
    }

    fn resolve(&self, conn: &ConnRef) -> Res<i32> {
        match conn {
            ConnRef::Client(c) => self.conn_of(c),
            ConnRef::Value(v) => Ok(*v),
            ConnRef::Unused => {
                let used: HashSet<i32> = self
                    .shared
                    .lock()
                    .entries
                    .iter()
                    .filter_map(|e| e.cmd.as_ref().ok().map(|c| c.conn()))
                    .collect();
                Ok((1_900_000_000..)
                    .find(|c| !used.contains(c))
                    .unwrap_or(1_900_000_000))
            }
        }
    }

    /// Writes an injection. With `via` a client, everything goes to that
    /// client's worker, but the frames of another client go to *its*
    /// worker, in order: a worker of a sharded parent writes frames only
    /// for its own connections. With `via` `*`, every worker gets it all.
    fn inject(&mut self, inj: &Inject) -> Res<()> {
        let home = match &inj.via {
            Via::All => None,
            Via::Client(c) => Some(self.link_of(c)?.index),
        };
        // Per worker: its bytes and how many frames they hold.
        let mut parts: Vec<(usize, Vec<u8>, u64)> = Vec::new();
        let mut push = |worker: Option<usize>, bytes: &[u8], frames: u64| {
            let w = worker.unwrap_or(usize::MAX);
            match parts.iter_mut().find(|(x, _, _)| *x == w) {
                Some((_, b, f)) => {
                    b.extend_from_slice(bytes);
                    *f += frames;
                }
                None => parts.push((w, bytes.to_vec(), frames)),
            }
        };
        let owner = |s: &Self, conn: &ConnRef| match (conn, home) {
            (ConnRef::Client(c), Some(_)) => s.bindings.get(c).map(|b| b.worker).or(home),
            _ => home,
        };
        for item in &inj.items {
            let mut bytes = Vec::new();
            match item {
                Item::Hex(pieces) => {
                    for p in pieces {
                        match p {
                            super::case::Piece::Bytes(b) => bytes.extend_from_slice(b),
                            super::case::Piece::Conn(c) => {
                                bytes.extend_from_slice(&self.conn_of(c)?.to_le_bytes())
                            }
                            super::case::Piece::Data => {}
                        }
                    }
                    push(home, &bytes, 1);
                }
                Item::Frame { conn, data } => {
                    let to = owner(self, conn);
                    push_frame(&mut bytes, self.resolve(conn)?, data);
                    push(to, &bytes, 1);
                }
                Item::Burst { conn, count, data } => {
                    let to = owner(self, conn);
                    let c = self.resolve(conn)?;
                    for i in 0..*count {
                        push_frame(&mut bytes, c, substitute(data, Some(i)).as_bytes());
                    }
                    push(to, &bytes, *count as u64);
                }
            }
        }
        let links = self.links();
        let mut jobs: Vec<(Arc<Link>, Vec<u8>, u64)> = Vec::new();
        for (w, bytes, frames) in parts {
            if w == usize::MAX {
                jobs.extend(links.iter().map(|l| (Arc::clone(l), bytes.clone(), frames)));
            } else if let Some(l) = links.iter().find(|l| l.index == w) {
                jobs.push((Arc::clone(l), bytes, frames));
            }
        }
        let targets: Vec<Arc<Link>> = match &inj.via {
            Via::All => links.clone(),
            Via::Client(_) => jobs.iter().map(|(l, _, _)| Arc::clone(l)).collect(),
        };
        for (link, bytes, frames) in jobs {
            match &inj.split {
                Split::None => self.write(&link, bytes, frames)?,
                Split::Every => {
                    self.trace(format!(
                        "(the {} byte(s) once whole, then cut at each of the {} inner boundaries)",
                        bytes.len(),
                        bytes.len().saturating_sub(1)
                    ));
                    self.write(&link, bytes.clone(), frames)?;
                    for k in 1..bytes.len() {
                        self.write(&link, bytes[..k].to_vec(), 0)?;
                        self.sync()?;
                        self.write(&link, bytes[k..].to_vec(), frames)?;
                    }
                }
                Split::Bytes => {
                    for (k, b) in bytes.iter().enumerate() {
                        if k > 0 {
                            self.sync()?;
                        }
                        self.write(&link, vec![*b], frames)?;
                    }
                }
                Split::At(cuts) => {
                    let mut from = 0;
                    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
                        let cut = cut.clamp(from, bytes.len());
                        if from > 0 {
                            self.sync()?;
                        }
                        self.write(&link, bytes[from..cut].to_vec(), frames)?;
                        from = cut;
                    }
                }
            }
        }
        if inj.close_output || inj.exit.is_some() {
            self.ended = true;
            for link in &targets {
                if inj.close_output {
                    let _ = link.control(Control::CloseOutput);
                }
                if let Some(status) = inj.exit {
                    let _ = link.control(Control::Exit(status));
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, link: &Link, bytes: Vec<u8>, frames: u64) -> Res<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        link.inject(bytes, frames).map_err(|e| {
            self.fail(
                FailureKind::Hang,
                format!("writing the worker's output failed: {e} (PROTOCOL.md#parent-receiving)"),
            )
        })
    }

    fn worker_op(&mut self, op: &WorkerOp) -> Res<()> {
        let links = self.links();
        match op {
            WorkerOp::Pause => links.iter().for_each(|l| l.set_paused(true)),
            WorkerOp::Resume => links.iter().for_each(|l| l.set_paused(false)),
            WorkerOp::Hold(c) => {
                let conn = self.conn_of(c)?;
                self.link_of(c)?.hold(conn);
            }
            WorkerOp::Release => links.iter().for_each(|l| l.release()),
            WorkerOp::CloseOutput | WorkerOp::Exit(_) => {
                self.ended = true;
                let msg = match op {
                    WorkerOp::Exit(s) => Control::Exit(*s),
                    _ => Control::CloseOutput,
                };
                for l in &links {
                    let _ = l.control(msg.clone());
                }
            }
            WorkerOp::CloseInput => {
                self.ended = true;
                for l in &links {
                    let _ = l.close_input();
                }
                // Nothing may go on before the inputs are closed: the
                // parent's next write must find them so.
                self.wait("the stand-ins' closing of their inputs", |s| {
                    Ok(s.shared
                        .lock()
                        .workers
                        .iter()
                        .all(|w| w.input_closed)
                        .then_some(()))
                })?;
            }
            WorkerOp::Kill => {
                self.ended = true;
                links.iter().for_each(|l| l.kill());
            }
        }
        Ok(())
    }

    /// Waits until every action is answered or `quiet` passes without a
    /// new answer.
    fn settle(&mut self, quiet: Duration) -> Res<()> {
        let mut answered = self.scan.answers.len();
        let mut last = Instant::now();
        loop {
            if let Some(p) = self.scan_problem() {
                return Err(p);
            }
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Stop::Interrupted);
            }
            if self.scan.pending.is_empty() || self.scan.eof {
                return Ok(());
            }
            if self.scan.answers.len() > answered {
                answered = self.scan.answers.len();
                last = Instant::now();
            } else if last.elapsed() >= quiet {
                self.trace(format!(
                    "({} action(s) not answered after {} ms without an answer: going on)",
                    self.scan.pending.len(),
                    quiet.as_millis()
                ));
                return Ok(());
            }
            let seen = self.scan.seen;
            self.adapter
                .wait_lines(seen, Instant::now() + Duration::from_millis(5));
        }
    }

    // ---- deliveries ----------------------------------------------------------

    /// The repetition indexes of the action labelled `label` answered `ok`.
    fn ok_reps(&self, label: &str) -> Vec<usize> {
        self.sent
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .filter(|s| self.scan.answers.get(&s.seq).is_some_and(|(ok, _)| *ok))
            .map(|s| s.rep)
            .collect()
    }

    fn expand(&self, list: &[(String, Vec<Deliv>)]) -> Vec<(String, Vec<Vec<u8>>)> {
        let ok_reps = |label: &str| self.ok_reps(label);
        list.iter()
            .map(|(client, ds)| {
                let mut out = Vec::new();
                for d in ds {
                    d.expand(&ok_reps, &mut out);
                }
                (client.clone(), out)
            })
            .collect()
    }

    /// Deliveries since the last check, markers left out, per client.
    fn delivered(&self) -> HashMap<String, Vec<Vec<u8>>> {
        let mut by: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (client, data) in &self.scan.deliveries[self.check_from..] {
            if self.markers.contains(data) {
                continue;
            }
            by.entry(client.clone()).or_default().push(data.clone());
        }
        by
    }

    /// Waits until every client got (at least) its expected deliveries,
    /// failing at once on a wrong one. Looks at each delivery once.
    fn await_expected(&mut self, expected: &[(String, Vec<Vec<u8>>)], why: &str) -> Res<()> {
        let total: usize = expected.iter().map(|(_, v)| v.len()).sum();
        let want: HashMap<&str, &[Vec<u8>]> =
            expected.iter().map(|(c, v)| (c.as_str(), v.as_slice())).collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut cursor = self.check_from;
        self.wait(&format!("{total} expected delivery(ies){why}"), |s| {
            while cursor < s.scan.deliveries.len() {
                let (client, data) = &s.scan.deliveries[cursor];
                cursor += 1;
                if s.markers.contains(data) {
                    continue;
                }
                let n = counts.entry(client.clone()).or_insert(0);
                *n += 1;
                if let Some(w) = want.get(client.as_str())
                    && let Some(expected_data) = w.get(*n - 1)
                    && expected_data != data
                {
                    let i = *n;
                    let got = s.delivered();
                    return Err(s.delivery_mismatch(
                        expected,
                        &got,
                        format!("delivery {i} to client {client} differs from the expected one"),
                    ));
                }
            }
            let complete = want
                .iter()
                .all(|(c, w)| counts.get(*c).copied().unwrap_or(0) >= w.len());
            Ok(complete.then_some(()))
        })
        .map_err(|stop| match stop {
            Stop::Fail(mut f) if f.kind == FailureKind::Hang => {
                let got = self.delivered();
                f.expected = render_deliveries(expected.iter().map(|(c, v)| (c.as_str(), v.as_slice())));
                f.actual = render_got(&got);
                Stop::Fail(f)
            }
            other => other,
        })
    }

    fn delivery_mismatch(
        &self,
        expected: &[(String, Vec<Vec<u8>>)],
        got: &HashMap<String, Vec<Vec<u8>>>,
        message: String,
    ) -> Stop {
        self.fail_with(
            FailureKind::Mismatch,
            message,
            render_deliveries(expected.iter().map(|(c, v)| (c.as_str(), v.as_slice()))),
            render_got(got),
        )
    }

    fn await_deliveries(&mut self, list: &[(String, Vec<Deliv>)]) -> Res<()> {
        let expected = self.expand(list);
        self.await_expected(&expected, " (awaited without a barrier)")
    }

    // ---- checks ----------------------------------------------------------------

    fn check(&mut self, check: &Check) -> Res<()> {
        if check.gone.is_some() {
            self.wait("`worker_gone`", |s| Ok((!s.scan.gone.is_empty()).then_some(())))?;
        }
        self.sync()?;
        self.check_answers()?;
        self.check_commands(true)?;
        let expected = self.expand(&check.deliveries);
        self.await_expected(&expected, "")?;
        if check.gone.is_none() && !self.ended {
            self.markers()?;
        }
        let got = self.delivered();
        let named: HashSet<&str> = expected.iter().map(|(c, _)| c.as_str()).collect();
        for (client, want) in &expected {
            let have = got.get(client).map(Vec::as_slice).unwrap_or(&[]);
            if have.len() != want.len() {
                return Err(self.delivery_mismatch(
                    &expected,
                    &got,
                    format!(
                        "client {client} got {} frame(s), {} expected{}",
                        have.len(),
                        want.len(),
                        have.get(want.len())
                            .map(|f| format!("; the first one too many: {}", truncate(&render_data(f), 160)))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some((client, frames)) = got.iter().find(|(c, _)| !named.contains(c.as_str())) {
            let extra = if self.live.contains(client) || self.bindings.contains_key(client) {
                format!("client {client} got {} frame(s), none expected", frames.len())
            } else {
                format!("a frame was delivered to {client:?}, which is no client of this case")
            };
            return Err(self.delivery_mismatch(&expected, &got, extra));
        }
        self.check_gone(check)?;
        if check.reaped {
            self.check_reaped()?;
        }
        if !check.distinct_conns.is_empty() {
            self.check_distinct(&check.distinct_conns)?;
        }
        self.check_from = self.scan.deliveries.len();
        self.written_at_check = self.written();
        Ok(())
    }

    fn written(&self) -> Vec<u64> {
        self.shared
            .lock()
            .workers
            .iter()
            .map(|w| w.frames_written)
            .collect()
    }

    /// Every action so far got the answer it must.
    fn check_answers(&mut self) -> Res<()> {
        for s in &self.sent {
            let Some((ok, msg)) = self.scan.answers.get(&s.seq) else {
                return Err(self.fail(
                    FailureKind::Protocol,
                    format!("seq {} ({}) has no answer after `synced`", s.seq, s.what),
                ));
            };
            let wrong = match (s.answer, ok) {
                (Answer::Ok, false) => Some(format!(
                    "seq {} ({}) was refused ({msg}); it must be accepted",
                    s.seq, s.what
                )),
                (Answer::Refused, true) => Some(format!(
                    "seq {} ({}) was accepted; it must be refused, with an error the relay sees",
                    s.seq, s.what
                )),
                _ => None,
            };
            if let Some(m) = wrong {
                let step = s.step;
                let mut stop = self.fail(FailureKind::Mismatch, m);
                if let Stop::Fail(f) = &mut stop {
                    f.step = Some(step);
                    f.at = format!("step {step}");
                }
                return Err(stop);
            }
        }
        Ok(())
    }

    /// The commands of every accepted action (and nothing else) came,
    /// byte for byte, in order; lifecycle rules held. With `wait`, missing
    /// ones are waited for (they may still be on their way through the
    /// stand-in).
    fn check_commands(&mut self, wait: bool) -> Res<()> {
        // Bindings found during this check stay provisional until it ends:
        // the commands of several workers arrive in any order, and a
        // binding made before all of them came may be wrong.
        let confirmed = self.bindings.clone();
        let cap = Instant::now() + self.cfg.timeout * 10;
        let mut until = Instant::now() + self.cfg.timeout;
        let mut progress = self.progress();
        loop {
            if let Some(p) = self.scan_problem() {
                return Err(p);
            }
            let expected: Vec<ExpectedCmd> = self
                .sent
                .iter()
                .filter(|s| self.scan.answers.get(&s.seq).is_some_and(|(ok, _)| *ok))
                .flat_map(|s| s.expected.iter().cloned())
                .collect();
            let connects: Vec<String> = self
                .sent
                .iter()
                .filter(|s| self.scan.answers.get(&s.seq).is_some_and(|(ok, _)| *ok))
                .filter_map(|s| s.connect.clone())
                .collect();
            let log = self.shared.lock();
            let before: HashSet<String> = confirmed.keys().cloned().collect();
            self.bindings = confirmed.clone();
            matcher::bind(&log.entries, &expected, &connects, &mut self.bindings);
            let workers = log.workers.len();
            let out = matcher::match_log(
                &log.entries,
                &expected,
                &self.bindings,
                &self.fanout_events,
                workers,
            );
            let framing: Option<String> = log.workers.iter().find_map(|w| w.framing_error.clone());
            let (reuse, unsafe_reuse) = self.reuse_problems(&log.entries, &before);
            drop(log);
            let expected_lines = || {
                expected
                    .iter()
                    .map(|e| matcher::describe_expected(e, &self.bindings))
                    .collect::<Vec<_>>()
            };
            let actual = || {
                self.shared
                    .lock()
                    .entries
                    .iter()
                    .map(|e| format!("w{} {}", e.worker, matcher::describe_frame(&e.frame)))
                    .collect::<Vec<_>>()
            };
            if let Some(f) = framing {
                return Err(self.fail_with(FailureKind::Protocol, f, expected_lines(), actual()));
            }
            if let Some(p) = reuse.into_iter().chain(out.problems).next() {
                return Err(self.fail_with(FailureKind::Mismatch, p, expected_lines(), actual()));
            }
            if out.missing.is_empty() {
                let step = self.step;
                for p in unsafe_reuse {
                    if !self.deferred.iter().any(|d| d.starts_with(&p)) {
                        self.deferred.push(format!("{p} (found at step {step})"));
                    }
                }
                return Ok(());
            }
            let now_progress = self.progress();
            if now_progress != progress {
                progress = now_progress;
                until = (Instant::now() + self.cfg.timeout).min(cap);
            }
            if !wait || Instant::now() >= until || self.interrupt.load(Ordering::SeqCst) {
                if self.interrupt.load(Ordering::SeqCst) {
                    return Err(Stop::Interrupted);
                }
                let first = &expected[out.missing[0]];
                // A Bcast from no connection with other bytes passes for
                // the parent's own probe: name it, it may be this one.
                let altered = if first.template.op == broadcast_wire::Op::Bcast
                    && first.template.client.is_none()
                {
                    let log = self.shared.lock();
                    out.private
                        .iter()
                        .filter_map(|&i| log.entries.get(i))
                        .find(|e| matches!(e.cmd, Ok(broadcast_wire::SubCommand::Bcast { sender: -1, .. })))
                        .map(|e| {
                            format!(
                                "; the parent wrote another Bcast from no connection, which may be it with other bytes: {}",
                                matcher::describe_frame(&e.frame)
                            )
                        })
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let message = format!(
                    "{} accepted command(s) never reached the worker within {} ms, first: {}{altered} (PROTOCOL.md#parent-flow-control: a command is never dropped silently)",
                    out.missing.len(),
                    self.cfg.timeout.as_millis(),
                    matcher::describe_expected(first, &self.bindings)
                );
                return Err(self.fail_with(FailureKind::Mismatch, message, expected_lines(), actual()));
            }
            self.shared
                .wait_change(Instant::now() + Duration::from_millis(20));
        }
    }

    fn scan_problem(&mut self) -> Option<Stop> {
        self.scan();
        self.scan
            .problem
            .take()
            .map(|p| self.fail(FailureKind::Protocol, p))
    }

    /// Reuse of a conn by a client bound since `before`: a New for a conn
    /// still open (reported at once), or one closed with no barrier since
    /// (PROTOCOL.md#parent-lifecycle; reported at the end of the case).
    fn reuse_problems(
        &self,
        entries: &[engine::Entry],
        before: &HashSet<String>,
    ) -> (Vec<String>, Vec<String>) {
        let mut out = Vec::new();
        let mut unsafe_reuse = Vec::new();
        for (client, b) in &self.bindings {
            if before.contains(client) {
                continue;
            }
            let Some(r) = entries.get(b.entry).and_then(|e| e.reuse) else {
                continue;
            };
            if r.was_open {
                out.push(format!(
                    "client {client}'s New names conn {}, which was still open: another connection's, never closed (PROTOCOL.md#parent-lifecycle)",
                    b.conn
                ));
            } else if r.after_close == Some(false) {
                unsafe_reuse.push(format!(
                    "client {client} was given conn {}, closed before with no barrier since: frames written for the earlier connection may still be unread (PROTOCOL.md#parent-lifecycle: no unsafe reuse)",
                    b.conn
                ));
            }
        }
        (out, unsafe_reuse)
    }

    /// Writes a marker behind everything written to each worker since the
    /// last check, waits for its delivery, then syncs: after that, every
    /// frame written before the marker has been handled.
    fn markers(&mut self) -> Res<()> {
        let written = self.written();
        let mut pending = Vec::new();
        let mut settle = false;
        for link in self.links() {
            let w = link.index;
            let before = self.written_at_check.get(w).copied().unwrap_or(0);
            if written.get(w).copied().unwrap_or(0) == before {
                continue;
            }
            if self
                .shared
                .lock()
                .workers
                .get(w)
                .is_some_and(|s| s.broken.is_some())
            {
                continue;
            }
            let client = self
                .live
                .iter()
                .find(|c| self.bindings.get(*c).is_some_and(|b| b.worker == w))
                .cloned();
            let Some(client) = client else {
                settle = true;
                continue;
            };
            let conn = self.conn_of(&client)?;
            let n = self.markers.len();
            let data = format!("[\"NOTICE\",\"conformance-marker {:x} {n}\"]", self.nonce).into_bytes();
            self.markers.insert(data.clone());
            link.frame(conn, &data)
                .map_err(|e| self.fail(FailureKind::Hang, format!("writing a marker frame failed: {e}")))?;
            pending.push((client, data));
        }
        if pending.is_empty() && !settle {
            return Ok(());
        }
        for (client, data) in pending {
            let from = self.check_from;
            self.wait(
                &format!("the delivery of the harness's marker frame to client {client} (every frame before it must be read and handled first; PROTOCOL.md#parent-receiving)"),
                |s| {
                    Ok(s.scan.deliveries[from..]
                        .iter()
                        .any(|(c, d)| *c == client && *d == data)
                        .then_some(()))
                },
            )?;
        }
        if settle {
            // A worker with no connected client to carry a marker: give
            // the parent a moment instead.
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sync()
    }

    fn check_gone(&mut self, check: &Check) -> Res<()> {
        let gone = &self.scan.gone;
        match check.gone {
            None => {
                if gone.len() > self.gone_accepted {
                    let (fatal, msg, status) = &gone[self.gone_accepted];
                    return Err(self.fail(
                        FailureKind::Mismatch,
                        format!(
                            "the parent reported worker_gone (fatal {fatal}, status {status:?}: {msg}), but its worker is alive and well"
                        ),
                    ));
                }
            }
            Some(want) => {
                if gone.len() > 1 {
                    return Err(self.fail(
                        FailureKind::Protocol,
                        format!("worker_gone came {} times; the contract says once", gone.len()),
                    ));
                }
                let (fatal, msg, status) = gone[0].clone();
                if fatal != want.fatal {
                    return Err(self.fail_with(
                        FailureKind::Mismatch,
                        format!(
                            "worker_gone has fatal {fatal}, expected {} ({}; PROTOCOL.md#parent-receiving, PROTOCOL.md#parent-worker-death)",
                            want.fatal,
                            if want.fatal {
                                "a framing error of the worker's output is fatal"
                            } else {
                                "an exit or a closed stream is not a framing error"
                            }
                        ),
                        vec![format!("worker_gone fatal {} status {:?}", want.fatal, want.status)],
                        vec![format!("worker_gone fatal {fatal} status {status:?}: {msg}")],
                    ));
                }
                let status_ok = match want.status {
                    StatusExp::Any => true,
                    StatusExp::Null => status.is_none(),
                    // The contract allows null while the status is not known yet.
                    StatusExp::Code(c) => status.is_none_or(|s| s == c),
                };
                if !status_ok {
                    return Err(self.fail_with(
                        FailureKind::Mismatch,
                        format!(
                            "worker_gone reports status {status:?}, expected {:?}",
                            want.status
                        ),
                        vec![format!("status {:?}", want.status)],
                        vec![format!("status {status:?}: {msg}")],
                    ));
                }
                self.gone_accepted = gone.len();
                self.ended = true;
            }
        }
        Ok(())
    }

    fn check_reaped(&mut self) -> Res<()> {
        let workers: Vec<(u32, Option<u64>)> = self
            .shared
            .lock()
            .workers
            .iter()
            .map(|w| (w.pid, w.starttime))
            .collect();
        let until = Instant::now() + self.cfg.timeout;
        for (pid, start) in workers {
            while !engine::reaped(pid, start) {
                if Instant::now() >= until {
                    let state = if engine::is_zombie(pid, start) {
                        "a zombie: dead, never waited for"
                    } else {
                        "still running"
                    };
                    return Err(self.fail(
                        FailureKind::Mismatch,
                        format!(
                            "the worker process {pid} is {state} {} ms after worker_gone (PROTOCOL.md#parent-worker-death: the parent MUST reap it)",
                            self.cfg.timeout.as_millis()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }

    fn check_distinct(&self, clients: &[String]) -> Res<()> {
        let mut seen: HashMap<i32, &str> = HashMap::new();
        for c in clients {
            let conn = self.conn_of(c)?;
            if let Some(other) = seen.insert(conn, c) {
                return Err(self.fail(
                    FailureKind::Mismatch,
                    format!(
                        "clients {other} and {c} both got conn {conn}: a parent SHOULD never reuse a conn value (PROTOCOL.md#parent-lifecycle)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Res<()> {
        if let Some(p) = self.deferred.first() {
            return Err(self.fail(FailureKind::Mismatch, p.clone()));
        }
        let seq = self.next_seq();
        self.shutdown_seq = Some(seq);
        self.scan.pending.push_back(seq);
        self.send_line(format!(r#"{{"seq":{seq},"action":"shutdown"}}"#));
        let was_gone = self.gone_accepted > 0 || !self.scan.gone.is_empty();
        self.wait(&format!("the answer to `shutdown` (seq {seq})"), |s| {
            Ok(s.scan.answers.contains_key(&seq).then_some(()))
        })?;
        if !was_gone && !self.ended {
            // The worker ended because its command stream ended: reported
            // before the answer, not fatal, status 0.
            match self.scan.gone.first().cloned() {
                None => {
                    return Err(self.fail(
                        FailureKind::Mismatch,
                        "`shutdown` was answered before `worker_gone` (the contract: the worker has exited and been reaped first)".into(),
                    ));
                }
                Some((fatal, msg, status)) => {
                    if fatal || !matches!(status, None | Some(0)) {
                        return Err(self.fail(
                            FailureKind::Mismatch,
                            format!(
                                "at shutdown the worker exited 0 after the end of its commands, but worker_gone says fatal {fatal}, status {status:?}: {msg}"
                            ),
                        ));
                    }
                }
            }
            if let Some((_, false)) = self.scan.answers.get(&seq).map(|(ok, m)| (m.clone(), *ok)) {
                return Err(self.fail(FailureKind::Mismatch, "`shutdown` was refused".into()));
            }
            // Every command stream ended on a frame boundary.
            let ends: Vec<(usize, Option<StreamEnd>)> = self
                .shared
                .lock()
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| (i, w.end))
                .collect();
            for (w, end) in ends {
                if let Some(StreamEnd::Truncated(n)) = end {
                    return Err(self.fail(
                        FailureKind::Protocol,
                        format!("the parent's command stream to worker {w} ended inside a frame ({n} byte(s) of it sent)"),
                    ));
                }
            }
        }
        // Nothing unexpected since the last check.
        self.check_commands(false)?;
        self.adapter.close_stdin();
        let status = self.adapter.wait_exit(self.cfg.timeout);
        match status {
            None => Err(self.fail(
                FailureKind::Hang,
                format!(
                    "the adapter did not exit within {} ms of `shutdown`",
                    self.cfg.timeout.as_millis()
                ),
            )),
            Some(s) if s.code() == Some(0) => Ok(()),
            Some(s) => Err(self.fail(
                FailureKind::ExitStatus,
                format!(
                    "the adapter exited with {} after `shutdown`; the contract says 0",
                    describe_exit(Some(s))
                ),
            )),
        }
    }

    fn teardown(&mut self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.adapter.close_stdin();
        if self.adapter.wait_exit(Duration::from_millis(500)).is_none() {
            self.adapter.kill();
        }
        // Stand-ins the adapter left behind (or that never connected).
        let known: Vec<(u32, Option<u64>)> = self
            .shared
            .lock()
            .workers
            .iter()
            .map(|w| (w.pid, w.starttime))
            .collect();
        for (pid, start) in known {
            engine::kill_if_same(pid, start);
        }
        for pid in engine::standins_of(&self.sock_path, None) {
            engine::kill_if_same(pid, engine::starttime(pid));
        }
        lock(&self.links).clear();
        let _ = std::fs::remove_file(&self.sock_path);
    }
}

fn push_frame(out: &mut Vec<u8>, conn: i32, data: &[u8]) {
    BroadcastFrame {
        conn,
        data: bytes::Bytes::copy_from_slice(data),
    }
    .encode_framed(out);
}

fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    match status {
        None => "status not known".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => s.to_string(),
        },
    }
}

fn describe_event(e: &Event) -> String {
    match e {
        Event::Deliver { client, data } => format!("deliver {client}: {}", truncate(&render_data(data), 300)),
        Event::Gone {
            fatal,
            message,
            status,
        } => format!("worker_gone fatal={fatal} status={status:?}: {message}"),
        Event::Bad(why, line) => format!("(bad line: {why}) {line}"),
        other => format!("{other:?}"),
    }
}

fn render_deliveries<'x>(list: impl Iterator<Item = (&'x str, &'x [Vec<u8>])>) -> Vec<String> {
    let mut out = Vec::new();
    for (client, frames) in list {
        if frames.is_empty() {
            out.push(format!("{client}: (nothing)"));
        }
        push_frames(&mut out, client, frames);
    }
    out
}

fn push_frames(out: &mut Vec<String>, client: &str, frames: &[Vec<u8>]) {
    const SHOWN: usize = 20;
    for f in frames.iter().take(SHOWN) {
        out.push(format!("{client}: {}", truncate(&render_data(f), 300)));
    }
    if frames.len() > SHOWN {
        out.push(format!("{client}: … {} more", frames.len() - SHOWN));
    }
}

fn render_got(got: &HashMap<String, Vec<Vec<u8>>>) -> Vec<String> {
    let mut clients: Vec<&String> = got.keys().collect();
    clients.sort();
    let mut out = Vec::new();
    for c in clients {
        push_frames(&mut out, c, &got[c]);
    }
    out
}

/// Accepts the stand-ins of one session: each says hello (its pid), then
/// gets an engine.
fn accept_loop(
    listener: &UnixListener,
    shared: &Arc<Shared>,
    links: &Arc<Mutex<Vec<Arc<Link>>>>,
    accepting: &AtomicBool,
    timeout: Duration,
) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while accepting.load(Ordering::SeqCst) {
        let ready = {
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(50u16))
        };
        if !matches!(ready, Ok(n) if n > 0) {
            continue;
        }
        let Ok((sock, _)) = listener.accept() else {
            continue;
        };
        match hello(&sock) {
            Some(pid) => {
                let mut links = lock(links);
                let index = links.len();
                match Link::start(index, pid, sock, shared, timeout) {
                    Ok(link) => {
                        shared.trace(format!("w{index} connected: stand-in pid {pid}"));
                        links.push(Arc::new(link));
                    }
                    Err(e) => shared.trace(format!("a worker connected but could not be served: {e}")),
                }
                drop(links);
                shared.changed.notify_all();
            }
            None => shared.trace("a connection without a valid hello: ignored".into()),
        }
    }
}

fn hello(sock: &UnixStream) -> Option<u32> {
    use std::io::Read;
    sock.set_nonblocking(false).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut buf = [0u8; HELLO_LEN];
    (&*sock).read_exact(&mut buf).ok()?;
    parse_hello(&buf)
}

/// Removes the session directory.
pub fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
