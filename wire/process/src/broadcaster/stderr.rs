//! Capturing the worker's stderr: a background thread reads it line by line
//! into a bounded ring, so memory stays bounded however much the worker logs,
//! and the last lines of a crashed worker can be shown.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::process::ChildStderr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// A line longer than this is cut (and marked), so one endless line cannot
/// use unbounded memory.
pub(crate) const MAX_LINE_BYTES: usize = 4096;

/// Appended to a line cut at [`MAX_LINE_BYTES`].
const CUT_MARK: &str = " [line cut]";

#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    /// Bytes of the line being received (without its newline).
    partial: Vec<u8>,
    partial_cut: bool,
    dropped: u64,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    tail: Mutex<Tail>,
    changed: Condvar,
    max_lines: usize,
}

/// The last lines a worker wrote to its stderr, kept by a background thread
/// ([`StderrMode::Capture`](super::StderrMode::Capture)); lines longer than
/// 4 KiB are cut and marked `[line cut]`. Cloning gives
/// another handle to the same lines; a handle stays readable after the
/// [`Broadcaster`](super::Broadcaster) is dropped.
///
/// ```no_run
/// use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
/// use std::process::Command;
/// use std::time::Duration;
///
/// let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
/// let b = Broadcaster::spawn_with(Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
/// let tail = b.stderr_tail().unwrap().clone();
/// drop(b); // the worker ends; its last lines stay readable
/// tail.wait_closed(Duration::from_secs(1));
/// for line in tail.lines() {
///     eprintln!("worker: {line}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StderrTail {
    shared: Arc<Shared>,
}

impl StderrTail {
    /// Starts the thread that reads `stderr` until end-of-file.
    pub(crate) fn capture(stderr: ChildStderr, max_lines: usize) -> io::Result<StderrTail> {
        let shared = Arc::new(Shared {
            tail: Mutex::new(Tail::default()),
            changed: Condvar::new(),
            max_lines,
        });
        let theirs = Arc::clone(&shared);
        thread::Builder::new()
            .name("broadcast-worker-stderr".into())
            .spawn(move || read_lines(stderr, &theirs))?;
        Ok(StderrTail { shared })
    }

    fn lock(&self) -> MutexGuard<'_, Tail> {
        lock(&self.shared)
    }

    /// The kept lines, oldest first, without their newlines (invalid UTF-8
    /// replaced). An unfinished last line is included once stderr is closed.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// # let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// # let b = Broadcaster::spawn_with(std::process::Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// # let tail = b.stderr_tail().unwrap();
    /// let last = tail.lines(); // oldest first, at most max_lines
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// How many older lines were discarded to keep at most `max_lines`.
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// # let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// # let b = Broadcaster::spawn_with(std::process::Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// # let tail = b.stderr_tail().unwrap();
    /// if tail.dropped_lines() > 0 {
    ///     eprintln!("({} earlier lines not kept)", tail.dropped_lines());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dropped_lines(&self) -> u64 {
        self.lock().dropped
    }

    /// Whether the worker's stderr has reached end-of-file (it exited, and
    /// so did every process it shared stderr with).
    ///
    /// ```no_run
    /// # use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// # let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// # let b = Broadcaster::spawn_with(std::process::Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// # let tail = b.stderr_tail().unwrap();
    /// if tail.is_closed() {
    ///     // tail.lines() holds the end of everything the worker wrote.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits up to `timeout` for end-of-file on stderr, so that
    /// [`StderrTail::lines`] holds everything the worker wrote. Returns
    /// whether it was reached.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # use broadcast_process::broadcaster::{Broadcaster, Options, StderrMode, Transport};
    /// # let opts = Options::new().stderr(StderrMode::Capture { max_lines: 100 });
    /// # let b = Broadcaster::spawn_with(std::process::Command::new("broadcast-worker"), Transport::Stdio, &opts)?;
    /// # let tail = b.stderr_tail().unwrap();
    ///
    /// if tail.wait_closed(Duration::from_secs(1)) {
    ///     // The worker's stderr is closed: tail.lines() is complete.
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut tail = self.lock();
        while !tail.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tail = match self.shared.changed.wait_timeout(tail, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// The lock never guards a half-done update (nothing in it can panic), so a
/// poisoned lock is still consistent.
fn lock(shared: &Shared) -> MutexGuard<'_, Tail> {
    shared
        .tail
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_lines(mut stderr: ChildStderr, shared: &Shared) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut tail = lock(shared);
        for line in buf[..n].split_inclusive(|&b| b == b'\n') {
            let (text, complete) = match line.split_last() {
                Some((b'\n', text)) => (text, true),
                _ => (line, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(tail.partial.len());
            if text.len() > room {
                tail.partial_cut = true;
            }
            tail.partial.extend_from_slice(&text[..text.len().min(room)]);
            if complete {
                end_line(&mut tail, shared.max_lines);
            }
        }
        drop(tail);
        shared.changed.notify_all();
    }
    let mut tail = lock(shared);
    if !tail.partial.is_empty() || tail.partial_cut {
        end_line(&mut tail, shared.max_lines);
    }
    tail.closed = true;
    drop(tail);
    shared.changed.notify_all();
}

fn end_line(tail: &mut Tail, max_lines: usize) {
    let mut line = String::from_utf8_lossy(&tail.partial).into_owned();
    if tail.partial_cut {
        line.push_str(CUT_MARK);
    }
    tail.partial.clear();
    tail.partial_cut = false;
    tail.lines.push_back(line);
    while tail.lines.len() > max_lines {
        tail.lines.pop_front();
        tail.dropped += 1;
    }
}
