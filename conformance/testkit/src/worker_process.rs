//! Driving the real `broadcast-worker` binary over real pipes or a real
//! socketpair, synchronised with the probe of PROTOCOL.md#probe.
//!
//! The probe itself (set-up commands, fresh probe events, recognising a
//! probe frame) is the harness's [`probe`](broadcast_conformance::harness::probe)
//! module, so the tests and the conformance harness synchronise the same
//! way; this file keeps only the process plumbing around it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use broadcast_wire::{BroadcastFrame, Frame, FrameReader, FrameWriter, ReadStatus, SubCommand};

use broadcast_conformance::harness::escape::event_frame_data;
use broadcast_conformance::harness::probe::{PROBE_CONN, PROBE_SUB_ID, Probe, Prober};

/// The reference worker's binary (`broadcast-worker`'s source, built by
/// this package as `reference-worker`).
pub fn worker_exe() -> &'static str {
    crate::bin_str("reference-worker")
}

/// The bytes of `cmds` framed on channel 1.
pub fn encode(cmds: &[SubCommand]) -> Vec<u8> {
    let mut w = FrameWriter::new(Vec::new());
    for c in cmds {
        w.queue_message(c).unwrap();
    }
    w.flush().unwrap();
    w.into_parts().0
}

/// The bytes of one raw frame.
pub fn raw_frame(chan: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Frame::new(chan, bytes::Bytes::copy_from_slice(payload)).encode(&mut out);
    out
}

/// The exact data of the frame the probe connection must receive for
/// `probe` (PROTOCOL.md#probe-observed): the probe event delivered to
/// [`PROBE_SUB_ID`], built by the harness's PROTOCOL.md#output-frame oracle.
pub fn probe_delivery(probe: &Probe) -> Vec<u8> {
    let event = probe
        .command
        .data()
        .strip_prefix(b"[\"EVENT\",")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .expect("a probe's Bcast carries an [\"EVENT\",<event>] message");
    event_frame_data(PROBE_SUB_ID, event)
}

/// The transport a test runs the worker on.
pub enum Transport {
    Stdio,
    Socketpair,
}

/// Socketpair children get an fd without CLOEXEC; while one is being
/// spawned no other test of the same binary may spawn, or it would inherit
/// that fd too and keep the socket open after the worker exits.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// A running worker: `input` to write commands, `output` to read frames.
pub struct Worker {
    pub child: Child,
    pub input: Option<Box<dyn Write + Send>>,
    pub output: FrameReader<Box<dyn Read + Send>>,
    pub stderr: Option<ChildStderr>,
    /// In socketpair mode, our end, kept to shut down its write side.
    socket: Option<UnixStream>,
    prober: Prober,
}

/// Runs `cmd` to completion under the spawn lock (see `SPAWN_LOCK`).
pub fn run_to_end(cmd: &mut Command) -> std::process::Output {
    let child = {
        let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    child.wait_with_output().unwrap()
}

impl Worker {
    pub fn spawn(transport: Transport, args: &[&str]) -> Worker {
        let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = Command::new(worker_exe());
        cmd.args(args).stderr(Stdio::piped());
        match transport {
            Transport::Stdio => {
                let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
                let input: Box<dyn Write + Send> = Box::new(child.stdin.take().unwrap());
                let output: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
                let stderr = child.stderr.take();
                Worker {
                    child,
                    input: Some(input),
                    output: FrameReader::new(output),
                    stderr,
                    socket: None,
                    prober: Prober::new(),
                }
            }
            Transport::Socketpair => {
                let (ours, theirs) = UnixStream::pair().unwrap();
                // std creates the pair with CLOEXEC; the child's end must
                // survive exec. Only the test does this, on the child's end.
                rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty()).unwrap();
                let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs).to_string();
                // stdout must stay empty in this mode: capture it to check.
                let mut child = cmd
                    .arg("--fd")
                    .arg(&fd)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                drop(theirs);
                let stderr = child.stderr.take();
                let input: Box<dyn Write + Send> = Box::new(ours.try_clone().unwrap());
                let output: Box<dyn Read + Send> = Box::new(ours.try_clone().unwrap());
                Worker {
                    child,
                    input: Some(input),
                    output: FrameReader::new(output),
                    stderr,
                    socket: Some(ours),
                    prober: Prober::new(),
                }
            }
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().unwrap();
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    pub fn send(&mut self, cmds: &[SubCommand]) {
        self.write(&encode(cmds));
    }

    /// The next frame, or `None` at a clean end of the output.
    /// Strict: the worker must write nothing but channel-2 frames with
    /// valid BroadcastFrame payloads (no heartbeat, no other channel).
    pub fn next_frame(&mut self) -> Option<BroadcastFrame> {
        match self.output.read_frame().unwrap() {
            ReadStatus::Ready(f) => {
                assert_eq!(f.chan, 2, "worker wrote a frame on channel {}", f.chan);
                Some(BroadcastFrame::decode(f.payload).expect("worker wrote an invalid BroadcastFrame"))
            }
            ReadStatus::Closed => None,
            ReadStatus::Pending => panic!("blocking reader returned Pending"),
        }
    }

    /// A fresh probe of this worker's session, for a test that sends it
    /// itself (see [`probe_delivery`]).
    pub fn next_probe(&mut self) -> Probe {
        self.prober.next_probe()
    }

    /// Sends a fresh probe and returns every non-probe frame that arrives
    /// before it, in arrival order (PROTOCOL.md#probe).
    pub fn barrier(&mut self) -> Vec<BroadcastFrame> {
        let probe = self.prober.next_probe();
        self.send(std::slice::from_ref(&probe.command));
        let mut got = Vec::new();
        loop {
            let f = self
                .next_frame()
                .expect("worker closed its output before the probe frame");
            if f.conn == PROBE_CONN {
                assert_eq!(f.data, probe_delivery(&probe), "stale or foreign probe frame");
                return got;
            }
            // PROTOCOL.md#probe: a probe event delivered to any other conn is not part of the step.
            if self.prober.probe_id_of(&f.data).is_none() {
                got.push(f);
            }
        }
    }

    /// `barrier` with the frames as sorted (conn, text) pairs.
    pub fn step(&mut self, cmds: &[SubCommand]) -> Vec<(i32, String)> {
        self.send(cmds);
        let mut got: Vec<(i32, String)> = self
            .barrier()
            .into_iter()
            .map(|f| (f.conn, String::from_utf8(f.data.to_vec()).unwrap()))
            .collect();
        got.sort();
        got
    }

    /// Ends the input (closes the pipe, or shuts down our write side of
    /// the socket).
    pub fn end_input(&mut self) {
        self.input = None;
        if let Some(stream) = &self.socket {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
    }

    /// Reads the rest of the output, waits for the exit, and returns the
    /// remaining frames, the status and stderr.
    pub fn finish(mut self) -> (Vec<BroadcastFrame>, ExitStatus, String) {
        self.end_input();
        let mut rest = Vec::new();
        while let Some(f) = self.next_frame() {
            rest.push(f);
        }
        let status = self.child.wait().unwrap();
        if self.socket.is_some() {
            let mut stdout = Vec::new();
            self.child
                .stdout
                .take()
                .unwrap()
                .read_to_end(&mut stdout)
                .unwrap();
            assert!(
                stdout.is_empty(),
                "--fd mode wrote {} byte(s) to stdout",
                stdout.len()
            );
        }
        let mut err = String::new();
        self.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (rest, status, err)
    }
}

/// Whether process `pid` is gone, reaped: no /proc entry, or one that
/// belongs to a process that is not our child (the pid was reused). A
/// zombie or a live child is still our child. (Linux: reads /proc.)
pub fn is_reaped(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // Fields after the command name, which is in parentheses and may
    // contain spaces: state, ppid, ...
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let mut fields = after_name.split_whitespace();
    let _state = fields.next();
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    ppid != std::process::id()
}

/// Polls [`is_reaped`] for up to 20 s.
pub fn assert_reaped(pid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !is_reaped(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "worker {pid} was not reaped (still a child of ours)"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
