//! The stand-in worker: `broadcast-conformance parent-worker --session PATH
//! [--fd N]`, the program the adapter starts as its worker in every case of
//! the parent suite.
//!
//! It plays no part of the protocol itself. It connects to the case's
//! session socket (a Unix socket the harness listens on), says hello (its
//! pid), and then relays bytes both ways: every byte the parent writes to
//! it goes to the harness unchanged, and the harness's `DATA` messages go to
//! the parent unchanged. So the harness sees the parent's command stream
//! byte for byte and decides every byte of its worker's output.
//!
//! - **Backpressure**: each direction is relayed by one thread with one
//!   bounded buffer and blocking writes. When the harness stops reading,
//!   the upward thread blocks, stops reading its input, and the parent's
//!   writes fill the pipe or socket, as with a worker that stops reading
//!   (PROTOCOL.md#parent-flow-control). The two directions never wait on
//!   each other.
//! - **Control**: the harness's side of the session socket carries framed
//!   messages ([`Control`]), acted on in order: `DATA` bytes are written to
//!   the output before a later `EXIT` takes effect, so "these frames, then
//!   exit 3" is exactly what the parent sees.
//! - **Transport**: `--fd N` (socketpair) or stdin/stdout, opened with
//!   [`WorkerTransport`] and its fd-safety policy; the binary claims its
//!   inherited descriptors (`init_inherited_fds`) first thing in `main`.
//! - It never writes to stderr unless something goes wrong, and it exits 1
//!   if the harness goes away (the session socket ends).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use broadcast_process::worker_io::{Input, WorkerTransport};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The hello a stand-in writes first on the session socket: this magic,
/// then its pid (u32, little-endian).
pub const HELLO_MAGIC: &[u8; 4] = b"BCPW";

/// Length of the hello.
pub const HELLO_LEN: usize = 8;

/// Bytes relayed per read in each direction.
const CHUNK: usize = 64 * 1024;

/// What the harness tells a stand-in, on the session socket: a tag byte, a
/// u32 little-endian length, then that many bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Write these bytes to the worker's output (the parent reads them).
    Data(Vec<u8>),
    /// Close the worker's output (end of stream for the parent); keep
    /// reading the input.
    CloseOutput,
    /// Close the worker's input (the parent's writes fail with `EPIPE`);
    /// the output stays open.
    CloseInput,
    /// Exit with this status now (everything before it was written).
    Exit(u8),
}

const TAG_DATA: u8 = 1;
const TAG_CLOSE_OUTPUT: u8 = 2;
const TAG_CLOSE_INPUT: u8 = 3;
const TAG_EXIT: u8 = 4;

impl Control {
    /// The message's bytes on the session socket.
    ///
    /// ```
    /// use broadcast_conformance::harness::parent::standin::Control;
    /// assert_eq!(Control::Exit(3).encode(), [4, 1, 0, 0, 0, 3]);
    /// assert_eq!(Control::Data(b"hi".to_vec()).encode(), [1, 2, 0, 0, 0, b'h', b'i']);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, &[u8]) = match self {
            Control::Data(bytes) => (TAG_DATA, bytes),
            Control::CloseOutput => (TAG_CLOSE_OUTPUT, &[]),
            Control::CloseInput => (TAG_CLOSE_INPUT, &[]),
            Control::Exit(status) => (TAG_EXIT, std::slice::from_ref(status)),
        };
        let mut out = Vec::with_capacity(5 + body.len());
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        out
    }
}

/// The hello of process `pid`.
pub fn hello(pid: u32) -> [u8; HELLO_LEN] {
    let mut h = [0u8; HELLO_LEN];
    h[..4].copy_from_slice(HELLO_MAGIC);
    h[4..].copy_from_slice(&pid.to_le_bytes());
    h
}

/// Parses a hello: the stand-in's pid.
pub fn parse_hello(bytes: &[u8; HELLO_LEN]) -> Option<u32> {
    (bytes[..4] == HELLO_MAGIC[..]).then(|| u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
}

/// Runs the stand-in until the harness tells it to exit (or goes away).
/// `fd` is the `--fd N` its parent appended (socketpair transport), `None`
/// for stdin/stdout. The caller has claimed the inherited descriptors.
pub fn run(session: &Path, fd: Option<i32>) -> ExitCode {
    match relay(session, fd) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("broadcast-conformance parent-worker: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether the transport is a socket (its two ends are one socket, closed
/// half by half with `shutdown`) or stdin/stdout (closed by replacing fd 0
/// or 1 with the null device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Socket,
}

fn relay(session: &Path, fd: Option<i32>) -> Result<u8, String> {
    let transport = match fd {
        Some(fd) => WorkerTransport::Fd(fd),
        None => WorkerTransport::Stdio,
    };
    let kind = if fd.is_some() { Kind::Socket } else { Kind::Stdio };
    let (input, output) = transport
        .open()
        .map_err(|e| format!("cannot open the worker transport: {e}"))?;
    let mut sock = UnixStream::connect(session)
        .map_err(|e| format!("cannot connect to the session socket {}: {e}", session.display()))?;
    sock.write_all(&hello(std::process::id()))
        .map_err(|e| format!("cannot write the hello: {e}"))?;
    let up_sock = sock
        .try_clone()
        .map_err(|e| format!("cannot duplicate the session socket: {e}"))?;
    // A request to stop reading the input wakes the upward thread's poll.
    let (mut wake_tx, wake_rx) =
        UnixStream::pair().map_err(|e| format!("cannot create the wake-up socket pair: {e}"))?;
    let up = std::thread::spawn(move || up(input, up_sock, wake_rx));
    let mut up = Some(up);
    let mut output = Some(output);
    loop {
        let msg = match read_control(&mut sock) {
            Ok(Some(msg)) => msg,
            // The harness is gone: nothing more will come.
            Ok(None) | Err(_) => return Ok(1),
        };
        match msg {
            Control::Data(bytes) => {
                if let Some(out) = output.as_mut()
                    && out.write_all(&bytes).is_err()
                {
                    // The parent closed its end: the bytes go nowhere, as
                    // a worker's would. Later controls still apply.
                    output = None;
                }
            }
            Control::CloseOutput => {
                if let Some(out) = output.take() {
                    close_half(kind, &out, Half::Output);
                }
            }
            Control::CloseInput => {
                let _ = wake_tx.write_all(&[1]);
                if let Some(up) = up.take()
                    && let Ok(Some(input)) = up.join()
                {
                    close_half(kind, &input, Half::Input);
                }
                // The harness waits for this end of the upward stream: the
                // input is closed now, so nothing more can come.
                let _ = sock.shutdown(std::net::Shutdown::Write);
            }
            Control::Exit(status) => std::process::exit(i32::from(status)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Input,
    Output,
}

/// Closes one direction for good: `shutdown` on a socket (both ends are
/// the one socket), and on stdio the null device over fd 0 or 1, whose
/// duplicate `end` the caller drops after this (every copy of the pipe end
/// must go for the parent to see it closed).
fn close_half(kind: Kind, end: &impl AsFd, half: Half) {
    let result = match (kind, half) {
        (Kind::Socket, Half::Input) => {
            nix::sys::socket::shutdown(end.as_fd().as_raw_fd(), nix::sys::socket::Shutdown::Read)
                .map_err(io::Error::from)
        }
        (Kind::Socket, Half::Output) => {
            nix::sys::socket::shutdown(end.as_fd().as_raw_fd(), nix::sys::socket::Shutdown::Write)
                .map_err(io::Error::from)
        }
        (Kind::Stdio, half) => File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .and_then(|null| {
                let r = if half == Half::Input {
                    nix::unistd::dup2_stdin(&null)
                } else {
                    nix::unistd::dup2_stdout(&null)
                };
                r.map_err(io::Error::from)
            }),
    };
    if let Err(e) = result {
        eprintln!("broadcast-conformance parent-worker: cannot close the {half:?}: {e}");
    }
}

/// The upward direction: the parent's bytes to the harness, until the end
/// of the input (then the harness sees the end of the stream) or a byte on
/// `wake` (the input is handed back, to be closed, and nothing read after
/// the request is relayed). Blocking writes: a harness that does not read
/// stops this thread, and so the parent.
fn up(mut input: Input, mut sock: UnixStream, mut wake: UnixStream) -> Option<Input> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let (input_ready, woken) = {
            let mut fds = [
                PollFd::new(input.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false)),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        };
        if woken {
            return Some(input);
        }
        if !input_ready {
            continue;
        }
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if sock.write_all(&buf[..n]).is_err() {
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = sock.shutdown(std::net::Shutdown::Write);
    // Stay until asked for the input, so that a close request after the
    // end of the stream still finds it.
    let mut byte = [0u8; 1];
    let _ = wake.read(&mut byte);
    Some(input)
}

/// Reads one control message; `None` at the end of the session socket.
fn read_control(sock: &mut UnixStream) -> io::Result<Option<Control>> {
    let mut head = [0u8; 5];
    match sock.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body)?;
    Ok(Some(match head[0] {
        TAG_DATA => Control::Data(body),
        TAG_CLOSE_OUTPUT => Control::CloseOutput,
        TAG_CLOSE_INPUT => Control::CloseInput,
        TAG_EXIT => Control::Exit(body.first().copied().unwrap_or(0)),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown control tag {other}"),
            ));
        }
    }))
}
