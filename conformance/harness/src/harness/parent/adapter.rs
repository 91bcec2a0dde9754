//! The adapter process of one case: its stdin (action lines, written by a
//! thread of their own so that an adapter that stops reading cannot block
//! the harness), its stdout (answer and event lines, parsed as they come),
//! and its stderr (the last lines kept for failure reports).
//! The contract is docs/CONFORMANCE.md, "The adapter contract".

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lines of the adapter's stderr kept for failure reports.
const STDERR_LINES: usize = 200;

/// One line the adapter wrote, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `{"event":"started"}`.
    Started,
    /// `{"event":"ok","seq":N}`.
    Ok(u64),
    /// `{"event":"refused","seq":N,"message":...}`.
    Refused(u64, String),
    /// `{"event":"synced","seq":N}`.
    Synced(u64),
    /// `{"event":"deliver","client":...,"data_hex":...}`.
    Deliver {
        /// The client.
        client: String,
        /// The exact bytes.
        data: Vec<u8>,
    },
    /// `{"event":"dropped_frame","message":...}`.
    Dropped(String),
    /// `{"event":"worker_gone",...}`.
    Gone {
        /// A framing error of PROTOCOL.md#fatal-and-non-fatal.
        fatal: bool,
        /// Its message.
        message: String,
        /// The exit status, when known.
        status: Option<i64>,
    },
    /// A line that breaks the contract: why, and the line.
    Bad(String, String),
}

/// Everything the adapter wrote so far.
#[derive(Debug, Default)]
pub struct Lines {
    /// The parsed lines, in order, with when they came.
    pub events: Vec<(Instant, Event)>,
    /// Its stdout has ended.
    pub eof: bool,
    /// Bytes read from its stdout so far, whole lines or not (progress on
    /// a long line).
    pub bytes: u64,
}

/// A running adapter.
#[derive(Debug)]
pub struct Adapter {
    child: Child,
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    lines: Arc<(Mutex<Lines>, Condvar)>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    status: Option<ExitStatus>,
}

impl Adapter {
    /// Starts `argv` with piped stdin, stdout and stderr.
    pub fn spawn(argv: &[OsString]) -> io::Result<Adapter> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no adapter command"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || write_lines(stdin, &rx));
        let lines = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || read_lines(BufReader::with_capacity(1 << 16, stdout), &lines));
        }
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == STDERR_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        Ok(Adapter {
            child,
            stdin: Some(tx),
            lines,
            stderr: tail,
            status: None,
        })
    }

    /// Queues one line (a `\n` is added) for the adapter's stdin.
    pub fn send(&self, line: String) {
        if let Some(tx) = &self.stdin {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            let _ = tx.send(bytes);
        }
    }

    /// Closes the adapter's stdin once the queued lines are written.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The lines so far.
    pub fn lines(&self) -> MutexGuard<'_, Lines> {
        self.lines.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a line comes after the first `seen` ones, the output
    /// ends, or `until` (at most one short slice).
    pub fn wait_lines(&self, seen: usize, until: Instant) {
        let guard = self.lines();
        if guard.events.len() > seen || guard.eof {
            return;
        }
        let left = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if !left.is_zero() {
            let _ = self.lines.1.wait_timeout(guard, left);
        }
    }

    /// The adapter's exit status, waiting up to `wait`.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let until = Instant::now() + wait;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
                return self.status;
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills the adapter and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// The adapter's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its stderr; waits a little for them to come in
    /// when the adapter has exited.
    pub fn stderr_tail(&self) -> Vec<String> {
        if self.status.is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.stdin = None;
        if self.wait_exit(Duration::from_millis(200)).is_none() {
            self.kill();
        }
    }
}

fn write_lines(mut stdin: ChildStdin, rx: &mpsc::Receiver<Vec<u8>>) {
    for line in rx {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

fn read_lines(mut out: BufReader<std::process::ChildStdout>, lines: &(Mutex<Lines>, Condvar)) {
    let mut line = Vec::new();
    loop {
        let (event, eof) = match out.fill_buf() {
            Ok([]) | Err(_) => (None, true),
            Ok(chunk) => {
                let (used, done) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                line.extend_from_slice(&chunk[..used]);
                out.consume(used);
                lines.0.lock().unwrap_or_else(|e| e.into_inner()).bytes += used as u64;
                if !done {
                    continue;
                }
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let event = parse_line(text);
                line.clear();
                (Some(event), false)
            }
        };
        let mut guard = lines.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = event {
            guard.events.push((Instant::now(), e));
        }
        if eof {
            if !line.is_empty() {
                let text = String::from_utf8_lossy(&line).into_owned();
                guard.events.push((
                    Instant::now(),
                    Event::Bad("a last line without its newline".into(), text),
                ));
            }
            guard.eof = true;
        }
        drop(guard);
        lines.1.notify_all();
        if eof {
            return;
        }
    }
}

/// Parses one line of the adapter's stdout.
///
/// ```
/// use broadcast_conformance::harness::parent::adapter::{Event, parse_line};
/// assert_eq!(parse_line(br#"{"event":"ok","seq":3}"#), Event::Ok(3));
/// assert_eq!(
///     parse_line(br#"{"event":"deliver","client":"a","data_hex":"6869"}"#),
///     Event::Deliver { client: "a".into(), data: b"hi".to_vec() }
/// );
/// assert!(matches!(parse_line(b"hello"), Event::Bad(..)));
/// ```
pub fn parse_line(line: &[u8]) -> Event {
    let shown = || {
        let text = String::from_utf8_lossy(line);
        let mut end = text.len().min(300);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_string()
    };
    let bad = |why: &str| Event::Bad(why.to_string(), shown());
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return bad("not a JSON object");
    };
    let Some(obj) = v.as_object() else {
        return bad("not a JSON object");
    };
    let seq = || obj.get("seq").and_then(Value::as_u64);
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    match obj.get("event").and_then(Value::as_str) {
        Some("started") => Event::Started,
        Some("ok") => seq().map_or_else(|| bad("`ok` without a `seq` number"), Event::Ok),
        Some("refused") => match seq() {
            Some(n) => Event::Refused(n, text("message").unwrap_or_default()),
            None => bad("`refused` without a `seq` number"),
        },
        Some("synced") => seq().map_or_else(|| bad("`synced` without a `seq` number"), Event::Synced),
        Some("deliver") => {
            let (Some(client), Some(hex_text)) = (text("client"), text("data_hex")) else {
                return bad("`deliver` needs `client` and `data_hex`");
            };
            if hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
                return bad("`data_hex` must be lowercase hex");
            }
            match hex::decode(&hex_text) {
                Ok(data) => Event::Deliver { client, data },
                Err(_) => bad("`data_hex` is not hex"),
            }
        }
        Some("dropped_frame") => Event::Dropped(text("message").unwrap_or_default()),
        Some("worker_gone") => {
            let Some(fatal) = obj.get("fatal").and_then(Value::as_bool) else {
                return bad("`worker_gone` needs `fatal` (true or false)");
            };
            let status = match obj.get("status") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_i64() {
                    Some(n) => Some(n),
                    None => return bad("`worker_gone`'s `status` must be an integer or null"),
                },
            };
            Event::Gone {
                fatal,
                message: text("message").unwrap_or_default(),
                status,
            }
        }
        Some(other) => bad(&format!("unknown event {other:?}")),
        None => bad("no `event` field"),
    }
}
