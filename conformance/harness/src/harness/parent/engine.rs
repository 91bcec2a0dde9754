//! The harness as the worker: one [`Link`] per stand-in that connects to a
//! case's session socket (a sharded parent starts several).
//!
//! A link's engine thread reads the parent's command stream as the
//! stand-in relays it, byte for byte, and decodes it with the
//! broadcast-wire decoder. Every command is
//!
//! - checked against the lifecycle rules of PROTOCOL.md#parent-lifecycle,
//!   per conn: New first, nothing after Close, and a New that reuses a
//!   closed conn only after a barrier (a frame caused by a command sent
//!   after that Close was written before the New came);
//! - handed to an embedded reference worker state machine
//!   ([`broadcast_worker::Worker`]), whose frames are written back to the
//!   parent at once, so a parent that runs a probe of its own gets real
//!   answers;
//! - logged ([`Log`]) with its exact bytes, for the case runner to match
//!   against the commands the case expects.
//!
//! A case can make the engine **hold** the frames for one conn (they are
//! kept back, then written late, but always before any frame caused by a
//! later command, as PROTOCOL.md#ordering lets a real worker do) and make
//! it **pause** (stop reading commands, so the parent's writes back up, as
//! PROTOCOL.md#parent-flow-control describes).
//!
//! A command is logged only after the frames it caused were written (or
//! held), so a runner that sees the command in the log knows its frames
//! are on their way to the parent.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use broadcast_wire::{BroadcastFrame, DEFAULT_MAX_PAYLOAD, FrameDecoder, Message, PayloadError, SubCommand};
use broadcast_worker::Worker;
use bytes::{BufMut, Bytes};

use super::standin::Control;
use crate::harness::matching::render_data;
use crate::harness::runner::{describe_command, truncate};

/// How often blocked reads wake up to look at the stop and pause flags.
const SLICE: Duration = Duration::from_millis(50);

/// Everything the links of one case share with its runner.
#[derive(Debug)]
pub struct Shared {
    /// When the case started (trace timestamps).
    pub start: Instant,
    /// The log.
    pub log: Mutex<Log>,
    /// Notified on every change of the log.
    pub changed: Condvar,
}

impl Shared {
    /// An empty log, started now.
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
        })
    }

    /// The log, even after a panic elsewhere.
    pub fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a trace line.
    pub fn trace(&self, line: String) {
        let at = self.start.elapsed();
        self.lock().trace.push((at, line));
        self.changed.notify_all();
    }

    /// Waits until the log changes or `until` passes (at most one slice).
    pub fn wait_change(&self, until: Instant) {
        let guard = self.lock();
        let left = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if !left.is_zero() {
            let _ = self.changed.wait_timeout(guard, left);
        }
    }
}

/// What the parent did on its command streams.
#[derive(Debug, Default)]
pub struct Log {
    /// Every command frame of every worker, in arrival order.
    pub entries: Vec<Entry>,
    /// Per worker (link index).
    pub workers: Vec<WorkerState>,
    /// Timestamped trace lines (commands, frames, controls).
    pub trace: Vec<(Duration, String)>,
}

/// One command frame the parent wrote.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The worker (link index) it was written to.
    pub worker: usize,
    /// The whole frame as it arrived, header included.
    pub frame: Bytes,
    /// The decoded command, or why its payload does not decode.
    pub cmd: Result<SubCommand, PayloadError>,
    /// A lifecycle rule this command broke (PROTOCOL.md#parent-lifecycle),
    /// whoever its conn belongs to.
    pub lifecycle: Option<String>,
    /// For a New: how its conn was used before on this worker.
    pub reuse: Option<Reuse>,
}

/// How a New's conn was used before, on the same worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// The conn was open (New without Close) when this New came.
    pub was_open: bool,
    /// The conn had been closed before: `Some(true)` when a barrier came
    /// between that Close and this New (a frame caused by a later command
    /// was written), `Some(false)` when none did.
    pub after_close: Option<bool>,
}

/// A worker stream's state, as far as the runner needs it.
#[derive(Debug, Clone, Default)]
pub struct WorkerState {
    /// The stand-in's pid.
    pub pid: u32,
    /// Its start time (field 22 of `/proc/PID/stat`), to tell it from a
    /// later process with the same pid.
    pub starttime: Option<u64>,
    /// How the parent's command stream ended, once it has.
    pub end: Option<StreamEnd>,
    /// A fatal framing error in the parent's command stream.
    pub framing_error: Option<String>,
    /// Frames the harness has written to this worker's output (the
    /// engine's and injected ones): a runner compares it between checks.
    pub frames_written: u64,
    /// Why writing to the stand-in failed, once it has.
    pub broken: Option<String>,
    /// The stand-in closed its input when told to.
    pub input_closed: bool,
    /// Bytes of the parent's command stream received so far.
    pub bytes_in: u64,
}

/// How a command stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// On a frame boundary.
    Clean,
    /// Inside a frame, with this many bytes of it received.
    Truncated(usize),
}

/// The harness's end of one stand-in's session socket.
#[derive(Debug)]
pub struct Link {
    /// Its index among the case's workers, in connection order.
    pub index: usize,
    /// The stand-in's pid.
    pub pid: u32,
    writer: Arc<Mutex<Writer>>,
    engine: Arc<Mutex<Engine>>,
    pause: Arc<(Mutex<bool>, Condvar)>,
    stop: Arc<AtomicBool>,
    input_closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// The write side of the session socket, shared by the engine thread and
/// the runner (markers, injections, controls).
#[derive(Debug)]
struct Writer {
    sock: UnixStream,
    broken: Option<String>,
}

impl Writer {
    fn send(&mut self, msg: &Control) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        self.sock.write_all(&msg.encode()).map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    "the parent did not read its worker's output in time (the write to it timed out)"
                        .to_string()
                }
                _ => format!("the worker's output is gone ({e})"),
            };
            self.broken = Some(why.clone());
            why
        })
    }
}

/// The engine's worker state, behind one lock.
#[derive(Debug, Default)]
struct Engine {
    worker: Worker,
    open: HashSet<i32>,
    /// Closed conns: the index of the Close, and whether a barrier came
    /// since.
    closed: HashMap<i32, (usize, bool)>,
    next_cmd: usize,
    hold: Option<i32>,
    held: Vec<(usize, BroadcastFrame)>,
}

impl Link {
    /// Starts the engine of a stand-in that has said hello on `sock`.
    /// `timeout` bounds every write to it.
    pub fn start(
        index: usize,
        pid: u32,
        sock: UnixStream,
        shared: &Arc<Shared>,
        timeout: Duration,
    ) -> io::Result<Link> {
        sock.set_write_timeout(Some(timeout))?;
        sock.set_read_timeout(Some(SLICE))?;
        let writer = Arc::new(Mutex::new(Writer {
            sock: sock.try_clone()?,
            broken: None,
        }));
        let engine = Arc::new(Mutex::new(Engine::default()));
        let pause = Arc::new((Mutex::new(false), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let input_closing = Arc::new(AtomicBool::new(false));
        {
            let mut log = shared.lock();
            if log.workers.len() <= index {
                log.workers.resize(index + 1, WorkerState::default());
            }
            log.workers[index].pid = pid;
            log.workers[index].starttime = starttime(pid);
        }
        let thread = {
            let ctx = EngineCtx {
                index,
                shared: Arc::clone(shared),
                engine: Arc::clone(&engine),
                writer: Arc::clone(&writer),
                pause: Arc::clone(&pause),
                stop: Arc::clone(&stop),
                input_closing: Arc::clone(&input_closing),
            };
            std::thread::Builder::new()
                .name(format!("engine-{index}"))
                .spawn(move || ctx.run(sock))?
        };
        Ok(Link {
            index,
            pid,
            writer,
            engine,
            pause,
            stop,
            input_closing,
            thread: Some(thread),
            shared: Arc::clone(shared),
        })
    }

    /// Stops (or restarts) reading the parent's commands.
    pub fn set_paused(&self, paused: bool) {
        let (flag, cv) = &*self.pause;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = paused;
        cv.notify_all();
        self.shared.trace(format!(
            "w{} {} reading commands",
            self.index,
            if paused { "stops" } else { "resumes" }
        ));
    }

    /// Holds the frames for `conn` from now until the engine processes its
    /// Close (or [`Link::release`]).
    pub fn hold(&self, conn: i32) {
        lock(&self.engine).hold = Some(conn);
        self.shared
            .trace(format!("w{} holds the frames for conn {conn}", self.index));
    }

    /// Writes the held frames now, in order, and stops holding.
    pub fn release(&self) {
        let mut engine = lock(&self.engine);
        engine.hold = None;
        let held = std::mem::take(&mut engine.held);
        if !held.is_empty() {
            self.shared
                .trace(format!("w{} releases {} held frame(s)", self.index, held.len()));
        }
        let ctx = self.ctx();
        for (cause, frame) in held {
            ctx.write_frame(&mut engine, cause, &frame);
        }
    }

    /// Writes `bytes` to the parent as worker output (an injection).
    pub fn inject(&self, bytes: Vec<u8>, frames: u64) -> Result<(), String> {
        let n = bytes.len();
        let result = lock(&self.writer).send(&Control::Data(bytes));
        let mut log = self.shared.lock();
        if let Some(w) = log.workers.get_mut(self.index) {
            w.frames_written += frames;
            if let Err(e) = &result {
                w.broken.get_or_insert_with(|| e.clone());
            }
        }
        drop(log);
        self.shared
            .trace(format!("w{}< injected {n} byte(s)", self.index));
        result
    }

    /// Writes one frame to `conn` with `data` (a marker).
    pub fn frame(&self, conn: i32, data: &[u8]) -> Result<(), String> {
        let mut buf = Vec::new();
        BroadcastFrame {
            conn,
            data: Bytes::copy_from_slice(data),
        }
        .encode_framed(&mut buf);
        self.shared
            .trace(format!("w{}< conn {conn}: {}", self.index, render_data(data)));
        let result = lock(&self.writer).send(&Control::Data(buf));
        if let Err(e) = &result {
            let mut log = self.shared.lock();
            if let Some(w) = log.workers.get_mut(self.index) {
                w.broken.get_or_insert_with(|| e.clone());
            }
        }
        result
    }

    /// Sends a control to the stand-in (close a half, exit).
    pub fn control(&self, msg: Control) -> Result<(), String> {
        self.shared.trace(format!("w{} control: {msg:?}", self.index));
        lock(&self.writer).send(&msg)
    }

    /// Tells the stand-in to close its input (the parent's next write
    /// fails). The stand-in then ends the upward stream: the end of the
    /// command stream that follows is this, not the parent's doing.
    pub fn close_input(&self) -> Result<(), String> {
        self.input_closing.store(true, Ordering::SeqCst);
        self.control(Control::CloseInput)
    }

    /// Kills the stand-in (`SIGKILL`), if it is still the process that
    /// said hello.
    pub fn kill(&self) {
        self.shared.trace(format!("w{} killed (SIGKILL)", self.index));
        let starttime = self
            .shared
            .lock()
            .workers
            .get(self.index)
            .and_then(|w| w.starttime);
        kill_if_same(self.pid, starttime);
    }

    fn ctx(&self) -> EngineCtx {
        EngineCtx {
            index: self.index,
            shared: Arc::clone(&self.shared),
            engine: Arc::clone(&self.engine),
            writer: Arc::clone(&self.writer),
            pause: Arc::clone(&self.pause),
            stop: Arc::clone(&self.stop),
            input_closing: Arc::clone(&self.input_closing),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.pause.1.notify_all();
        let _ = lock(&self.writer).sock.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the engine thread works with.
struct EngineCtx {
    index: usize,
    shared: Arc<Shared>,
    engine: Arc<Mutex<Engine>>,
    writer: Arc<Mutex<Writer>>,
    pause: Arc<(Mutex<bool>, Condvar)>,
    stop: Arc<AtomicBool>,
    input_closing: Arc<AtomicBool>,
}

impl EngineCtx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits while paused. Returns false when stopped.
    fn wait_unpaused(&self) -> bool {
        let (flag, cv) = &*self.pause;
        let mut paused = lock(flag);
        while *paused && !self.stopped() {
            paused = cv
                .wait_timeout(paused, SLICE)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        !self.stopped()
    }

    fn run(self, mut sock: UnixStream) {
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut failed = false;
        loop {
            if !self.wait_unpaused() {
                return;
            }
            match sock.read(&mut buf) {
                Ok(0) => {
                    self.end_of_stream(&dec, failed);
                    return;
                }
                Ok(n) => {
                    {
                        let mut log = self.shared.lock();
                        if let Some(w) = log.workers.get_mut(self.index) {
                            w.bytes_in += n as u64;
                        }
                    }
                    if failed {
                        continue;
                    }
                    dec.feed(&buf[..n]);
                    loop {
                        match dec.decode() {
                            Ok(Some(frame)) => self.on_frame(frame.chan, frame.payload),
                            Ok(None) => break,
                            Err(e) => {
                                failed = true;
                                self.framing_error(format!(
                                    "the parent's command stream broke the framing rules: {e}"
                                ));
                                break;
                            }
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    self.end_of_stream(&dec, failed);
                    return;
                }
            }
        }
    }

    /// A framing error in the parent's commands: fatal for a worker, which
    /// exits 2 (PROTOCOL.md#exit-status); the stand-in is told to.
    fn framing_error(&self, why: String) {
        self.shared.trace(format!("w{}> {why}", self.index));
        {
            let mut log = self.shared.lock();
            if let Some(w) = log.workers.get_mut(self.index) {
                w.framing_error.get_or_insert(why);
            }
        }
        self.shared.changed.notify_all();
        let _ = lock(&self.writer).send(&Control::Exit(2));
    }

    /// The parent closed the command stream (or the stand-in went away):
    /// like a real worker, the stand-in exits, 0 after a clean end and 2
    /// after one inside a frame.
    fn end_of_stream(&self, dec: &FrameDecoder, failed: bool) {
        if self.input_closing.load(Ordering::SeqCst) {
            self.shared
                .trace(format!("w{} closed its input, as asked", self.index));
            {
                let mut log = self.shared.lock();
                if let Some(w) = log.workers.get_mut(self.index) {
                    w.input_closed = true;
                }
            }
            self.shared.changed.notify_all();
            return;
        }
        let end = if dec.at_boundary() {
            StreamEnd::Clean
        } else {
            StreamEnd::Truncated(dec.buffered())
        };
        self.shared.trace(format!(
            "w{}> end of the command stream ({})",
            self.index,
            match end {
                StreamEnd::Clean => "on a frame boundary".to_string(),
                StreamEnd::Truncated(n) => format!("inside a frame, {n} byte(s) of it received"),
            }
        ));
        {
            let mut log = self.shared.lock();
            if let Some(w) = log.workers.get_mut(self.index) {
                w.end = Some(end);
            }
        }
        self.shared.changed.notify_all();
        if !failed {
            let status = if end == StreamEnd::Clean { 0 } else { 2 };
            let _ = lock(&self.writer).send(&Control::Exit(status));
        }
    }

    fn on_frame(&self, chan: u8, payload: Bytes) {
        if chan != broadcast_wire::CHANNEL_SUB_COMMAND || payload.is_empty() {
            // Heartbeats and other channels are allowed; nothing to do.
            self.shared.trace(format!(
                "w{}> frame on channel {chan}, {} byte(s): skipped",
                self.index,
                payload.len()
            ));
            return;
        }
        let mut frame = Vec::with_capacity(payload.len() + 5);
        frame.put_u8(chan);
        frame.put_u32_le(payload.len() as u32);
        frame.extend_from_slice(&payload);
        let cmd = SubCommand::decode(payload);
        let mut engine = lock(&self.engine);
        let idx = engine.next_cmd;
        engine.next_cmd += 1;
        let (lifecycle, reuse) = match &cmd {
            Ok(c) => engine.lifecycle(c, idx),
            Err(_) => (None, None),
        };
        match &cmd {
            Ok(c) => self
                .shared
                .trace(format!("w{}> {}", self.index, describe_command(c))),
            Err(e) => self.shared.trace(format!(
                "w{}> a command that does not decode ({}): {e}",
                self.index,
                e.class()
            )),
        }
        if let Ok(c) = &cmd {
            let mut out: Vec<BroadcastFrame> = Vec::new();
            engine.worker.handle(c, &mut out);
            if let SubCommand::Close { conn, .. } = c
                && engine.hold == Some(*conn)
            {
                // Frames for this conn from now on are a new connection's.
                engine.hold = None;
            }
            for f in out {
                self.emit(&mut engine, idx, f);
            }
        }
        drop(engine);
        self.shared.lock().entries.push(Entry {
            worker: self.index,
            frame: Bytes::from(frame),
            cmd,
            lifecycle,
            reuse,
        });
        self.shared.changed.notify_all();
    }

    /// A frame the embedded worker produced for command `cause`.
    fn emit(&self, engine: &mut Engine, cause: usize, frame: BroadcastFrame) {
        if frame.encoded_len() > DEFAULT_MAX_PAYLOAD as usize {
            // PROTOCOL.md#oversize-output: a worker leaves it out.
            self.shared.trace(format!(
                "w{} leaves out a frame for conn {} over the maximum payload",
                self.index, frame.conn
            ));
            return;
        }
        if engine.hold == Some(frame.conn) {
            self.shared.trace(format!(
                "w{} holds a frame for conn {}: {}",
                self.index,
                frame.conn,
                truncate(&render_data(&frame.data), 200)
            ));
            engine.held.push((cause, frame));
            return;
        }
        // PROTOCOL.md#ordering: frames held for earlier commands go first.
        if engine.held.iter().any(|(c, _)| *c < cause) {
            let (earlier, later): (Vec<_>, Vec<_>) = std::mem::take(&mut engine.held)
                .into_iter()
                .partition(|(c, _)| *c < cause);
            engine.held = later;
            self.shared.trace(format!(
                "w{} writes {} held frame(s) before a frame of a later command",
                self.index,
                earlier.len()
            ));
            for (c, f) in earlier {
                self.write_frame(engine, c, &f);
            }
        }
        self.write_frame(engine, cause, &frame);
    }

    fn write_frame(&self, engine: &mut Engine, cause: usize, frame: &BroadcastFrame) {
        let mut buf = Vec::with_capacity(frame.framed_len());
        frame.encode_framed(&mut buf);
        self.shared.trace(format!(
            "w{}< conn {}: {}",
            self.index,
            frame.conn,
            truncate(&render_data(&frame.data), 300)
        ));
        let result = lock(&self.writer).send(&Control::Data(buf));
        for (closed_at, barrier) in engine.closed.values_mut() {
            if *closed_at < cause {
                *barrier = true;
            }
        }
        let mut log = self.shared.lock();
        if let Some(w) = log.workers.get_mut(self.index) {
            w.frames_written += 1;
            if let Err(e) = result {
                w.broken.get_or_insert(e);
            }
        }
    }
}

impl Engine {
    /// The lifecycle bookkeeping of one command (index `idx` on this
    /// worker): a broken rule, and for a New how its conn was used before.
    fn lifecycle(&mut self, cmd: &SubCommand, idx: usize) -> (Option<String>, Option<Reuse>) {
        let not_open = |this: &Engine, conn: i32, what: &str| -> Option<String> {
            if this.open.contains(&conn) {
                None
            } else if this.closed.contains_key(&conn) {
                Some(format!(
                    "{what} names conn {conn} after its Close (PROTOCOL.md#parent-lifecycle: nothing may name a conn after its Close)"
                ))
            } else {
                Some(format!(
                    "{what} names conn {conn} before any New for it (PROTOCOL.md#parent-lifecycle: New first)"
                ))
            }
        };
        match cmd {
            SubCommand::New { conn, .. } => {
                let reuse = Reuse {
                    was_open: self.open.contains(conn),
                    after_close: self.closed.remove(conn).map(|(_, barrier)| barrier),
                };
                self.open.insert(*conn);
                (None, Some(reuse))
            }
            SubCommand::Close { conn, .. } => {
                let broken = not_open(self, *conn, "Close");
                self.open.remove(conn);
                self.closed.insert(*conn, (idx, false));
                (broken, None)
            }
            SubCommand::Add { conn, .. } => (not_open(self, *conn, "Add"), None),
            SubCommand::Remove { conn, .. } => (not_open(self, *conn, "Remove"), None),
            SubCommand::Auth { conn, .. } => (not_open(self, *conn, "Auth"), None),
            SubCommand::Bcast { sender, .. } if *sender >= 0 => {
                (not_open(self, *sender, "Bcast (as its sender)"), None)
            }
            SubCommand::Bcast { .. } => (None, None),
        }
    }
}

/// Field 22 of `/proc/PID/stat` (the start time), or `None`.
pub fn starttime(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// The state letter and start time of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the name: state is field 3, starttime field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` (started at `starttime`) has been reaped: no such process
/// any more, or another one with that pid. A zombie is not reaped; a live
/// process is not either.
pub fn reaped(pid: u32, starttime: Option<u64>) -> bool {
    match stat(pid) {
        None => true,
        Some((_, start)) => starttime.is_some_and(|s| s != start),
    }
}

/// Whether `pid` is a zombie (dead, not reaped) that is still the process
/// started at `starttime`.
pub fn is_zombie(pid: u32, starttime: Option<u64>) -> bool {
    matches!(stat(pid), Some(('Z', start)) if starttime.is_none_or(|s| s == start))
}

/// Sends `SIGKILL` to `pid` if it is still the process started at
/// `starttime` (never to a stranger that got the pid later).
pub fn kill_if_same(pid: u32, starttime: Option<u64>) {
    let same =
        matches!(stat(pid), Some((state, start)) if state != 'Z' && starttime.is_none_or(|s| s == start));
    if same && let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// The pids of the live stand-ins of `session` (processes whose command
/// line is `... parent-worker --session SESSION ...`), from `/proc`.
///
/// A process in the middle of its `exec` has no command line yet, though
/// its parent's `spawn` may have returned: with `exe` (the stand-in
/// program), such a process running it is looked at again until its
/// command line is there (a few milliseconds at most).
pub fn standins_of(session: &std::path::Path, exe: Option<&std::path::Path>) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want = session.as_os_str().as_encoded_bytes();
    let exe = exe.and_then(|e| e.canonicalize().ok());
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let read = || std::fs::read(entry.path().join("cmdline")).ok();
        let Some(mut cmdline) = read() else {
            continue;
        };
        if cmdline.is_empty()
            && let Some(exe) = &exe
            && std::fs::read_link(entry.path().join("exe")).is_ok_and(|p| &p == exe)
        {
            let until = std::time::Instant::now() + Duration::from_millis(200);
            while cmdline.is_empty() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
                cmdline = read().unwrap_or_default();
            }
        }
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_standin = args
            .windows(3)
            .any(|w| w[0] == b"parent-worker" && w[1] == b"--session" && w[2] == want);
        if is_standin && !matches!(stat(pid), Some(('Z', _))) {
            pids.push(pid);
        }
    }
    pids
}
