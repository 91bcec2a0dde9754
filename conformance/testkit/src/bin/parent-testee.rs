//! `parent-testee`: a test-only parent behind the adapter contract
//! (docs/CONFORMANCE.md, "Testing a parent"), for the parent suite's
//! self-tests. It is a minimal parent written by hand on raw fds, with the
//! codec's `FrameDecoder` and `FrameWriter` and one `poll` loop, and not on
//! the `Broadcaster`, whose own correctness would hide the bugs below.
//!
//! Correct by default (a second correct parent next to the reference
//! adapter); `--bug NAME` breaks exactly one rule of
//! PROTOCOL.md#parent-semantics:
//!
//! | `--bug` | the broken rule |
//! |---|---|
//! | `silent-drop-when-full` | a command sent while the pipe is full is dropped, and answered `ok` |
//! | `read-limit-no-repoll` | at most 8 frames are handled per wake-up; the rest wait in memory for the next readiness |
//! | `decode-error-loses-frame` | a payload that does not decode is taken for "no data yet": nothing is reported, and the frames behind it wait for the next readiness |
//! | `fd-reuse` | conns are the lowest free value, reused at once after a Close: a late frame for a departed client reaches the next one |
//! | `no-close-on-disconnect` | no Close is sent when a client goes |
//! | `add-before-new` | New is deferred until after the next command naming the conn |
//! | `swapped-flag-bits` | `need_filter` and `nip70_enforce` are swapped in Bcast |
//! | `oversize-written` | a command over the maximum payload is written, not refused |
//! | `worker-death-swallowed` | the worker's death is never reported, and later actions are answered `ok` |

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use broadcast_conformance::parent_adapter::contract::{self, Out, Refusal, Session, Start, Step};
use broadcast_conformance::parent_adapter::{Input, worker_command};
use broadcast_process::broadcaster::Transport;
use broadcast_wire::{
    BcastFlags, BroadcastFrame, FrameDecoder, FrameWriter, NewFlags, ReservedFlags, SubCommand, SubId,
};
use command_fds::{CommandFdExt, FdMapping};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

const MAX_PAYLOAD: u32 = 16 << 20;
/// Bytes of framed commands waiting; an empty queue takes any command.
const QUEUE_LIMIT: usize = 4 << 20;
const EXIT_GRACE: Duration = Duration::from_millis(500);
const LOST_GRACE: Duration = Duration::from_secs(1);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The fd the worker gets with a socketpair.
const CHILD_FD: i32 = 3;
/// `read-limit-no-repoll`: frames handled per wake-up.
const READ_LIMIT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    SilentDropWhenFull,
    ReadLimitNoRepoll,
    DecodeErrorLosesFrame,
    FdReuse,
    NoCloseOnDisconnect,
    AddBeforeNew,
    SwappedFlagBits,
    OversizeWritten,
    WorkerDeathSwallowed,
}

impl Bug {
    fn parse(name: &str) -> Option<Bug> {
        Some(match name {
            "silent-drop-when-full" => Bug::SilentDropWhenFull,
            "read-limit-no-repoll" => Bug::ReadLimitNoRepoll,
            "decode-error-loses-frame" => Bug::DecodeErrorLosesFrame,
            "fd-reuse" => Bug::FdReuse,
            "no-close-on-disconnect" => Bug::NoCloseOnDisconnect,
            "add-before-new" => Bug::AddBeforeNew,
            "swapped-flag-bits" => Bug::SwappedFlagBits,
            "oversize-written" => Bug::OversizeWritten,
            "worker-death-swallowed" => Bug::WorkerDeathSwallowed,
            _ => return None,
        })
    }
}

fn main() -> ExitCode {
    let mut bug = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().as_deref().and_then(Bug::parse)) {
            ("--bug", Some(b)) => bug = Some(b),
            _ => {
                eprintln!("usage: parent-testee [--bug NAME]");
                return ExitCode::from(2);
            }
        }
    }
    let mut input = Input::stdin();
    let mut out = Out::stdout();
    let start = match input
        .first_line()
        .map_err(|e| e.to_string())
        .and_then(|l| contract::parse_start(&l))
    {
        Ok(start) => start,
        Err(message) => {
            out.refused(0, &message);
            return ExitCode::FAILURE;
        }
    };
    let worker = match Worker::spawn(&start) {
        Ok(worker) => worker,
        Err(e) => {
            out.refused(0, &format!("cannot start the worker: {e}"));
            return ExitCode::FAILURE;
        }
    };
    out.started();
    Testee {
        bug,
        session: Session::new(out),
        input,
        worker,
        wire: Conns::default(),
        deferred_new: HashMap::new(),
        pipe_full: false,
    }
    .run();
    ExitCode::SUCCESS
}

/// The worker process and the parent's two ends.
struct Worker {
    child: Child,
    read: File,
    writer: Option<FrameWriter<File>>,
    /// The socketpair, to shut its writing half.
    sock: Option<UnixStream>,
    decoder: FrameDecoder,
    /// The output ended, broke, or is no longer read.
    reading: bool,
    /// A write found the worker's input closed.
    write_gone: bool,
}

fn nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl Worker {
    fn spawn(start: &Start) -> io::Result<Worker> {
        let mut cmd: Command = worker_command(start);
        let (child, read, write, sock) = match start.transport {
            Transport::Stdio => {
                let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
                let write = File::from(OwnedFd::from(child.stdin.take().expect("piped")));
                let read = File::from(OwnedFd::from(child.stdout.take().expect("piped")));
                (child, read, write, None)
            }
            Transport::SocketPair => {
                let (ours, theirs) = UnixStream::pair()?;
                cmd.arg("--fd").arg(CHILD_FD.to_string());
                cmd.fd_mappings(vec![FdMapping {
                    parent_fd: theirs.into(),
                    child_fd: CHILD_FD,
                }])
                .map_err(io::Error::other)?;
                let child = cmd.spawn()?;
                drop(cmd); // its copy of the worker's end
                let read = File::from(OwnedFd::from(ours.try_clone()?));
                let write = File::from(OwnedFd::from(ours.try_clone()?));
                (child, read, write, Some(ours))
            }
        };
        nonblocking(read.as_fd())?;
        nonblocking(write.as_fd())?;
        Ok(Worker {
            child,
            read,
            writer: Some(FrameWriter::with_max_payload(write, u32::MAX)),
            sock,
            decoder: FrameDecoder::with_max_payload(MAX_PAYLOAD),
            reading: true,
            write_gone: false,
        })
    }

    fn pending(&self) -> usize {
        self.writer.as_ref().map_or(0, FrameWriter::pending)
    }

    /// Writes what the fd takes; false when the fd is full.
    fn flush(&mut self) -> bool {
        let Some(writer) = self.writer.as_mut() else {
            return true;
        };
        match writer.flush() {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => {
                // EPIPE, ECONNRESET: the worker is gone.
                self.write_gone = true;
                self.writer = None;
                true
            }
        }
    }

    fn close_write(&mut self) {
        self.writer = None;
        if let Some(sock) = &self.sock {
            let _ = sock.shutdown(std::net::Shutdown::Write);
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits EXIT_GRACE for the exit, then kills; always reaps.
    fn reap(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return self.child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `fd-reuse`: the conn on the wire for each session conn, the lowest
/// free value.
#[derive(Default)]
struct Conns {
    wire_of: HashMap<i32, i32>,
}

impl Conns {
    fn open(&mut self, conn: i32) -> i32 {
        let used: BTreeSet<i32> = self.wire_of.values().copied().collect();
        let wire = (0..).find(|c| !used.contains(c)).expect("a free conn");
        self.wire_of.insert(conn, wire);
        wire
    }
}

struct Testee {
    bug: Option<Bug>,
    session: Session,
    input: Input,
    worker: Worker,
    wire: Conns,
    /// `add-before-new`: News not sent yet, by wire conn.
    deferred_new: HashMap<i32, SubCommand>,
    /// The last flush left bytes the fd did not take.
    pipe_full: bool,
}

impl Testee {
    fn has(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    fn run(mut self) {
        loop {
            self.handle_frames();
            self.flush();
            while let Some(line) = self.input.next_line() {
                match self.session.step(&line) {
                    Step::Command { seq, cmd, effect } => {
                        let result = self.command(&cmd);
                        let lost = matches!(&result, Err(r) if r.worker_gone);
                        self.session.answer(seq, effect, result);
                        if lost {
                            self.lost_worker();
                        }
                    }
                    Step::Sync(seq) => {
                        self.write_all(None);
                        self.session.synced(seq);
                    }
                    Step::Shutdown(seq) => {
                        self.finish();
                        self.session.shut_down(seq);
                        return;
                    }
                    Step::Answered => {}
                }
            }
            if self.input.at_eof() {
                self.finish();
                return;
            }
            self.wait(true, None);
        }
    }

    // ---- commands ------------------------------------------------------------

    /// The wire conn for a session conn (the same but with `fd-reuse`).
    fn wire(&self, conn: i32) -> i32 {
        if conn < 0 {
            return conn;
        }
        self.wire.wire_of.get(&conn).copied().unwrap_or(conn)
    }

    fn command(&mut self, cmd: &contract::Command) -> Result<(), Refusal> {
        use contract::Command as C;
        if self.worker.write_gone || self.worker.writer.is_none() {
            if self.has(Bug::WorkerDeathSwallowed) {
                return Ok(());
            }
            return Err(Refusal {
                message: "the worker is gone".into(),
                worker_gone: true,
            });
        }
        let sub_id = |s: &str| SubId::try_from(s).map_err(|e| Refusal::new(format!("bad sub_id: {e:?}")));
        let wire_cmd = match cmd {
            C::Connect { conn, whitelisted } => {
                let wire = if self.has(Bug::FdReuse) {
                    self.wire.open(*conn)
                } else {
                    *conn
                };
                let flags = if *whitelisted {
                    NewFlags::WHITELISTED
                } else {
                    NewFlags::EMPTY
                };
                let new = SubCommand::New { conn: wire, flags };
                if self.has(Bug::AddBeforeNew) {
                    self.deferred_new.insert(wire, new);
                    return Ok(());
                }
                new
            }
            C::Disconnect { conn } => {
                let wire = self.wire(*conn);
                if self.has(Bug::FdReuse) {
                    self.wire.wire_of.remove(conn);
                }
                if self.has(Bug::NoCloseOnDisconnect) {
                    return Ok(());
                }
                SubCommand::Close {
                    conn: wire,
                    flags: ReservedFlags::EMPTY,
                }
            }
            C::Subscribe { conn, sub_id: s, req } => SubCommand::Add {
                conn: self.wire(*conn),
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(s)?,
                req: req.clone(),
            },
            C::Unsubscribe { conn, sub_id: s } => SubCommand::Remove {
                conn: self.wire(*conn),
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(s)?,
            },
            C::Auth { conn, pubkey } => SubCommand::Auth {
                conn: self.wire(*conn),
                flags: ReservedFlags::EMPTY,
                pubkey: *pubkey,
            },
            C::Fanout { event, sender, flags } => {
                let mut bits = flags.bits();
                if self.has(Bug::SwappedFlagBits) {
                    let (nf, nip70) = (bits & 0x01, bits & 0x02);
                    bits = (bits & !0x03) | (nf << 1) | (nip70 >> 1);
                }
                SubCommand::Bcast {
                    sender: self.wire(*sender),
                    flags: BcastFlags::from_bits(bits),
                    event: event.clone(),
                }
            }
        };
        self.queue(&wire_cmd)?;
        // `add-before-new`: the deferred New follows the first command
        // that names its conn.
        if let Some(new) = self.deferred_new.remove(&wire_cmd.conn()) {
            self.queue(&new)?;
        }
        Ok(())
    }

    /// PROTOCOL.md#parent-sending and PROTOCOL.md#parent-flow-control:
    /// validated, within the maximum, within the queue, or refused.
    fn queue(&mut self, cmd: &SubCommand) -> Result<(), Refusal> {
        cmd.validate()
            .map_err(|e| Refusal::new(format!("invalid command: {e}")))?;
        let len = cmd.encoded_len();
        // PROTOCOL.md#parent-bcast: room for the sub_id an EVENT frame adds.
        let limit = match cmd {
            SubCommand::Bcast { .. } => MAX_PAYLOAD as usize - 381,
            _ => MAX_PAYLOAD as usize,
        };
        if len > limit && !self.has(Bug::OversizeWritten) {
            return Err(Refusal::new(format!(
                "a payload of {len} bytes is over the maximum {MAX_PAYLOAD}"
            )));
        }
        if self.pipe_full && self.has(Bug::SilentDropWhenFull) {
            return Ok(()); // dropped, and nobody is told
        }
        let pending = self.worker.pending();
        if pending > 0 && pending + 5 + len > QUEUE_LIMIT {
            return Err(Refusal::new(format!(
                "back-pressure: {pending} bytes are queued, the limit is {QUEUE_LIMIT}"
            )));
        }
        let writer = self.worker.writer.as_mut().expect("checked by command");
        writer.queue_message(cmd).map_err(|e| Refusal::new(e.to_string()))
    }

    fn flush(&mut self) {
        if self.worker.pending() == 0 {
            return;
        }
        self.pipe_full = !self.worker.flush();
        if self.worker.write_gone {
            self.lost_worker();
        }
    }

    // ---- frames ----------------------------------------------------------------

    /// Reads until EAGAIN, handling every frame (PROTOCOL.md#parent-receiving).
    /// Returns how many items were handled.
    fn handle_frames(&mut self) -> usize {
        let mut handled = 0;
        while self.worker.reading {
            // Frames already in memory first.
            loop {
                if self.has(Bug::ReadLimitNoRepoll) && handled >= READ_LIMIT {
                    return handled; // the rest waits for a readiness that will not come
                }
                match self.worker.decoder.decode_message::<BroadcastFrame>() {
                    Ok(None) => break,
                    Ok(Some(Ok(frame))) => {
                        handled += 1;
                        self.deliver(frame);
                    }
                    Ok(Some(Err(e))) => {
                        handled += 1;
                        if self.has(Bug::DecodeErrorLosesFrame) {
                            return handled; // as if there were no data yet
                        }
                        self.session.dropped_frame(&e);
                    }
                    Err(e) => {
                        // PROTOCOL.md#maximum-payload: fatal; never read again.
                        self.worker.kill();
                        self.gone(true, &e.to_string());
                        return handled + 1;
                    }
                }
            }
            match self.worker.decoder.read_from(&mut self.worker.read) {
                Ok(0) => {
                    let message = match self.worker.decoder.finish() {
                        Ok(()) => ("the worker's output ended".to_string(), false),
                        Err(e) => (e.to_string(), true),
                    };
                    self.gone(message.1, &message.0);
                    return handled + 1;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.gone(false, &format!("reading the worker: {e}"));
                    return handled + 1;
                }
            }
        }
        handled
    }

    fn deliver(&mut self, mut frame: BroadcastFrame) {
        if self.has(Bug::FdReuse) {
            // Back to the session's name for whichever client holds the
            // wire conn now.
            match self.wire.wire_of.iter().find(|&(_, &w)| w == frame.conn) {
                Some((&conn, _)) => frame.conn = conn,
                None => return,
            }
        }
        self.session.frame(&frame);
    }

    /// The worker's output ended or broke: never read again, reaped.
    fn gone(&mut self, fatal: bool, message: &str) {
        self.worker.reading = false;
        let status = self.worker.reap();
        if !self.has(Bug::WorkerDeathSwallowed) {
            self.session.worker_gone(fatal, message, status, true);
        }
    }

    /// A write found the worker's input closed: read its output to the end
    /// (killing it if it stays open), reporting it gone.
    fn lost_worker(&mut self) {
        let deadline = Instant::now() + LOST_GRACE;
        while self.worker.reading {
            self.handle_frames();
            if !self.worker.reading {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.worker.kill();
                self.gone(false, "the worker closed its input");
                break;
            }
            self.wait(false, Some(left));
        }
    }

    // ---- the barrier and the end ---------------------------------------------

    fn write_all(&mut self, deadline: Option<Instant>) {
        // `add-before-new`: a New still deferred goes out now.
        let news: Vec<SubCommand> = self.deferred_new.drain().map(|(_, new)| new).collect();
        for new in news {
            let _ = self.queue(&new);
        }
        loop {
            self.handle_frames();
            self.flush();
            if self.worker.pending() == 0 || self.worker.writer.is_none() {
                break;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                break;
            }
            self.wait(false, left);
        }
        self.handle_frames();
    }

    fn finish(&mut self) {
        self.write_all(Some(Instant::now() + SHUTDOWN_GRACE));
        if self.worker.pending() > 0 {
            self.worker.kill(); // it does not read: no waiting for it
        }
        self.worker.close_write();
        let mut deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut killed = false;
        while self.worker.reading {
            if self.handle_frames() > 0 {
                deadline = Instant::now() + SHUTDOWN_GRACE;
            }
            if !self.worker.reading {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if killed {
                    self.gone(false, "the worker did not end its output");
                    break;
                }
                self.worker.kill();
                killed = true;
                deadline = Instant::now() + EXIT_GRACE;
            }
            self.wait(false, Some(left.max(Duration::from_millis(1))));
        }
        self.worker.reap();
    }

    /// Waits for stdin (with `actions`), the worker's output, or room to
    /// write; reads stdin if it is ready.
    fn wait(&mut self, actions: bool, timeout: Option<Duration>) {
        let mut fds = Vec::new();
        let stdin = actions && !self.input.at_eof();
        if stdin {
            fds.push(PollFd::new(self.input.fd(), PollFlags::POLLIN));
        }
        if self.worker.reading {
            fds.push(PollFd::new(self.worker.read.as_fd(), PollFlags::POLLIN));
        }
        if let Some(writer) = self.worker.writer.as_ref().filter(|w| w.pending() > 0) {
            fds.push(PollFd::new(writer.get_ref().as_fd(), PollFlags::POLLOUT));
        }
        if fds.is_empty() {
            return; // nothing to wait for
        }
        let timeout = timeout.map_or(PollTimeout::NONE, |t| {
            PollTimeout::try_from(t.as_millis().clamp(1, i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
        let ready = stdin && fds[0].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        if ready && let Err(e) = self.input.fill() {
            eprintln!("parent-testee: stdin: {e}");
        }
    }
}
