//! Driving the real `broadcast-worker` binary over real pipes or a real
//! socketpair, synchronised with the probe of PROTOCOL.md#probe.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use broadcast_wire::{BroadcastFrame, Frame, FrameReader, FrameWriter, ReadStatus, SubCommand};

use crate::events::{self, Ev, hex64};

/// The reference worker's binary (`broadcast-worker`'s source, built by
/// this package as `reference-worker`).
pub fn worker_exe() -> &'static str {
    crate::bin_str("reference-worker")
}
pub const PROBE_CONN: i32 = i32::MAX;
pub const PROBE_SUB: &str = "conformance-probe";

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

/// The commands that set up the probe (PROTOCOL.md#probe-setup).
pub fn probe_setup() -> Vec<SubCommand> {
    vec![
        events::new(PROBE_CONN),
        events::req(
            PROBE_CONN,
            PROBE_SUB,
            r##"{"kinds":[29999],"#t":["conformance-probe"]}"##,
        ),
    ]
}

/// Probe event number `n` (PROTOCOL.md#probe-step-end).
pub fn probe_event(n: u32) -> Ev {
    let mut ev = Ev::new(0).kind(29999).tag(&["t", "conformance-probe"]);
    ev.id = format!("{:064x}", 0xfeed_0000_u64 + u64::from(n));
    ev.pubkey = hex64(0xee);
    ev
}

/// Whether a frame carries a probe event (to any conn).
pub fn is_probe(f: &BroadcastFrame) -> bool {
    String::from_utf8_lossy(&f.data).contains(r#""kind":29999"#)
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
    probes: u32,
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
                    probes: 0,
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
                    probes: 0,
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

    /// Sends a fresh probe and returns every non-probe frame that arrives
    /// before it, in arrival order (PROTOCOL.md#probe-observed).
    pub fn barrier(&mut self) -> Vec<BroadcastFrame> {
        self.probes += 1;
        let ev = probe_event(self.probes);
        self.send(&[events::bcast(&ev)]);
        let mut got = Vec::new();
        loop {
            let f = self
                .next_frame()
                .expect("worker closed its output before the probe frame");
            if f.conn == PROBE_CONN {
                assert_eq!(
                    f.data,
                    events::delivery(PROBE_SUB, &ev).into_bytes(),
                    "stale or foreign probe frame"
                );
                return got;
            }
            // PROTOCOL.md#probe-observed: a probe event delivered to any other conn is not part of the step.
            if !is_probe(&f) {
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
