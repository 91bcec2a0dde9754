//! The parent adapters (docs/CONFORMANCE.md, "Testing a parent") driven by
//! hand through the adapter contract, independently of the parent suite:
//! `broadcast-parent-adapter` with each `--handle`, the Python adapter
//! (conformance/parent-python/adapter.py), and the test-only
//! `parent-testee` in its correct mode, on both transports. Most tests
//! run the real reference worker; the rest run small `sh` stand-ins that
//! write chosen bytes (frames for unknown conns, a bad payload, an
//! oversize header) or do not read for a while.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use broadcast_testkit::events::{Ev, delivery, hex64};
use serde_json::{Value, json};

/// How long any one expected line may take.
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Rust(&'static str),
    Python,
    Testee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Stdio,
    Socketpair,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Socketpair => "socketpair",
        }
    }

    /// An `sh -c` script's redirections to the worker's input and output:
    /// stdin/stdout, or the inherited socket (`--fd N` follows the script
    /// as $0 $1; N is the adapter's choice).
    fn redirect_in(self) -> &'static str {
        match self {
            Transport::Stdio => "",
            Transport::Socketpair => r#" <&"$1""#,
        }
    }

    fn redirect_out(self) -> &'static str {
        match self {
            Transport::Stdio => "",
            Transport::Socketpair => r#" >&"$1""#,
        }
    }
}

impl Kind {
    fn argv(self) -> Vec<String> {
        match self {
            Kind::Rust(handle) => vec![
                broadcast_testkit::bin_str("parent-adapter").into(),
                "--handle".into(),
                handle.into(),
            ],
            Kind::Python => vec!["python3".into(), python_adapter().display().to_string()],
            Kind::Testee => vec![broadcast_testkit::bin_str("parent-testee").into()],
        }
    }

    /// The waiting handles queue every command; the others refuse what a
    /// full queue cannot take.
    fn waits_for_room(self) -> bool {
        matches!(self, Kind::Rust("async" | "async-sharded"))
    }

    fn shards(self) -> usize {
        match self {
            Kind::Rust("sharded" | "async-sharded") => 2,
            _ => 1,
        }
    }
}

fn python_adapter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../parent-python/adapter.py")
}

fn reference_worker() -> Vec<String> {
    vec![broadcast_testkit::bin_str("reference-worker").into()]
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// One adapter process and its JSON lines.
struct Adapter {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
    /// Lines read and not yet taken by a `wait_for`.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
    seq: u64,
    /// A `worker_gone` was taken by `worker_gone()`.
    gone_seen: bool,
}

impl Adapter {
    fn start(kind: Kind, worker: Vec<String>, t: Transport) -> Adapter {
        let argv = kind.argv();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the adapter starts");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("adapter stdout");
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut a = Adapter {
            child,
            stdin: None,
            lines,
            backlog: VecDeque::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            seq: 0,
            gone_seen: false,
        };
        a.stdin = a.child.stdin.take();
        a.line(&json!({"action": "start", "worker": worker, "transport": t.name()}));
        let started = a.wait_for("started", |v| v["event"] == "started" || v["event"] == "refused");
        assert_eq!(started["event"], "started", "{started}");
        a
    }

    fn line(&mut self, value: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{value}").expect("the adapter reads its stdin");
    }

    /// Sends an action with the next seq; returns the seq.
    fn send(&mut self, mut action: Value) -> u64 {
        self.seq += 1;
        action["seq"] = json!(self.seq);
        self.line(&action);
        self.seq
    }

    /// The first line (backlog first) that `pred` accepts; the others stay
    /// in the backlog, in order.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(v) => self.backlog.push_back(v),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no {what} within {TIMEOUT:?}; lines so far: {:?}; stderr: {}",
                    self.backlog,
                    self.stderr.lock().unwrap()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the adapter ended before {what}; lines: {:?}; stderr: {}",
                    self.backlog,
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// The answer to `seq` (`ok`, `refused` or `synced`).
    fn answer(&mut self, seq: u64) -> Value {
        self.wait_for(&format!("answer to {seq}"), |v| {
            v["seq"] == seq && v["event"] != "started"
        })
    }

    /// Sends an action and expects `ok`.
    fn ok(&mut self, action: Value) {
        let seq = self.send(action.clone());
        let answer = self.answer(seq);
        assert_eq!(answer["event"], "ok", "{action} was answered {answer}");
    }

    /// Sends an action and expects `refused`.
    fn refused(&mut self, action: Value) -> String {
        let seq = self.send(action.clone());
        let answer = self.answer(seq);
        assert_eq!(answer["event"], "refused", "{action} was answered {answer}");
        answer["message"].as_str().unwrap().to_string()
    }

    fn sync(&mut self) {
        let seq = self.send(json!({"action": "sync"}));
        assert_eq!(self.answer(seq)["event"], "synced");
    }

    /// The next `deliver` line, as (client, data).
    fn delivery(&mut self) -> (String, String) {
        let v = self.wait_for("a delivery", |v| v["event"] == "deliver");
        let data = hex::decode(v["data_hex"].as_str().unwrap()).unwrap();
        (
            v["client"].as_str().unwrap().to_string(),
            String::from_utf8(data).unwrap(),
        )
    }

    fn worker_gone(&mut self) -> Value {
        self.gone_seen = true;
        self.wait_for("worker_gone", |v| v["event"] == "worker_gone")
    }

    /// `shutdown`: its `worker_gone`, then `ok`; the adapter exits 0. Returns
    /// every line not taken before, and the adapter's stderr.
    fn shutdown(mut self) -> (Vec<Value>, String) {
        let seq = self.send(json!({"action": "shutdown"}));
        let answer = self.answer(seq);
        assert_eq!(answer["event"], "ok", "{answer}");
        let rest = self.finish();
        assert!(
            self.gone_seen || rest.iter().any(|v| v["event"] == "worker_gone"),
            "no worker_gone before the shutdown answer: {rest:?}"
        );
        (rest, self.stderr.lock().unwrap().clone())
    }

    /// Waits for the adapter's exit (status 0) and returns the lines left.
    fn finish(&mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let status = wait_child(&mut self.child);
        // The adapter has reaped its workers: its stderr has ended.
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        assert_eq!(status.code(), Some(0), "stderr: {}", self.stderr.lock().unwrap());
        let mut rest: Vec<Value> = self.backlog.drain(..).collect();
        rest.extend(self.lines.try_iter());
        rest
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the adapter did not exit");
        thread::sleep(Duration::from_millis(10));
    }
}

fn connect(client: &str, whitelisted: bool) -> Value {
    json!({"action": "connect", "client": client, "whitelisted": whitelisted})
}

fn subscribe(client: &str, sub_id: &str, filter: &str) -> Value {
    json!({"action": "subscribe", "client": client, "sub_id": sub_id,
           "req": format!(r#"["REQ",{},{filter}]"#, serde_json::to_string(sub_id).unwrap())})
}

fn fanout(from: Option<&str>, flags: &[&str], event: &str) -> Value {
    json!({"action": "fanout", "from": from, "flags": flags, "event": event})
}

/// Runs each listed test body for every adapter on both transports.
macro_rules! for_every_adapter {
    ($($name:ident),* $(,)?) => {
        for_every_adapter!(@kind blocking, crate::Kind::Rust("blocking"), $($name),*);
        for_every_adapter!(@kind async_single, crate::Kind::Rust("async"), $($name),*);
        for_every_adapter!(@kind sharded, crate::Kind::Rust("sharded"), $($name),*);
        for_every_adapter!(@kind async_sharded, crate::Kind::Rust("async-sharded"), $($name),*);
        for_every_adapter!(@kind python, crate::Kind::Python, $($name),*);
        for_every_adapter!(@kind testee, crate::Kind::Testee, $($name),*);
    };
    (@kind $module:ident, $kind:expr, $($name:ident),*) => {
        mod $module {
            mod stdio {
                $( #[test] fn $name() { crate::$name($kind, crate::Transport::Stdio) } )*
            }
            mod socketpair {
                $( #[test] fn $name() { crate::$name($kind, crate::Transport::Socketpair) } )*
            }
        }
    };
}

for_every_adapter!(
    delivers_matches_in_order_and_nothing_after_disconnect,
    access_flags_and_auth_reach_the_worker,
    refuses_what_the_protocol_forbids_and_goes_on,
    worker_exit_is_reported_once_and_refuses_after,
    framing_error_is_fatal,
    bad_payloads_dropped_and_unknown_conns_discarded,
    full_queue_is_refused_or_waited_never_dropped,
    stdin_end_ends_the_worker,
);

fn delivers_matches_in_order_and_nothing_after_disconnect(kind: Kind, t: Transport) {
    let mut a = Adapter::start(kind, reference_worker(), t);
    a.ok(connect("a", false));
    a.ok(connect("b", false));
    a.ok(subscribe("a", "s", r#"{"kinds":[1]}"#));
    a.ok(subscribe("b", "t\"q", r#"{"kinds":[1]}"#));
    let (e1, e2, e3) = (Ev::new(1), Ev::new(2), Ev::new(3));
    a.ok(fanout(Some("b"), &[], &e1.msg()));
    a.ok(fanout(None, &[], &e2.msg()));
    let mut got = vec![a.delivery(), a.delivery(), a.delivery(), a.delivery()];
    // Per client in order; the two clients may interleave (and do with shards).
    let of = |got: &[(String, String)], c: &str| -> Vec<String> {
        got.iter()
            .filter(|(k, _)| k == c)
            .map(|(_, d)| d.clone())
            .collect()
    };
    assert_eq!(of(&got, "a"), [delivery("s", &e1), delivery("s", &e2)]);
    assert_eq!(of(&got, "b"), [delivery("t\"q", &e1), delivery("t\"q", &e2)]);
    a.ok(json!({"action": "unsubscribe", "client": "b", "sub_id": "t\"q"}));
    a.ok(json!({"action": "disconnect", "client": "a"}));
    a.ok(connect("c", false)); // a new conn: nothing of a's reaches it
    a.ok(subscribe("c", "s", r#"{"kinds":[1]}"#));
    a.ok(fanout(None, &[], &e3.msg()));
    got.push(a.delivery());
    assert_eq!(got[4], ("c".to_string(), delivery("s", &e3)));
    a.sync();
    let (rest, _) = a.shutdown();
    assert!(!rest.iter().any(|v| v["event"] == "deliver"), "{rest:?}");
    let gone = rest.iter().find(|v| v["event"] == "worker_gone").unwrap();
    assert_eq!(
        (&gone["fatal"], &gone["status"]),
        (&json!(false), &json!(0)),
        "{gone}"
    );
}

fn access_flags_and_auth_reach_the_worker(kind: Kind, t: Transport) {
    let mut a = Adapter::start(kind, reference_worker(), t);
    a.ok(connect("w", true));
    a.ok(connect("p", false));
    a.ok(subscribe("w", "dm", r#"{"kinds":[4]}"#));
    a.ok(subscribe("p", "dm", r#"{"kinds":[4]}"#));
    let to_p = |id| Ev::new(id).kind(4).tag(&["p", &hex64(0x77)]);
    // need_filter: only the whitelisted connection gets a DM.
    a.ok(fanout(None, &["need_filter"], &to_p(1).msg()));
    assert_eq!(a.delivery(), ("w".into(), delivery("dm", &to_p(1))));
    // Once p authenticates the tagged pubkey, it gets the next one too.
    a.ok(json!({"action": "auth", "client": "p", "pubkey": hex64(0x77)}));
    a.ok(fanout(None, &["need_filter"], &to_p(2).msg()));
    let mut got = vec![a.delivery(), a.delivery()];
    got.sort();
    assert_eq!(
        got,
        [
            ("p".into(), delivery("dm", &to_p(2))),
            ("w".into(), delivery("dm", &to_p(2)))
        ]
    );
    let (rest, _) = a.shutdown();
    assert!(!rest.iter().any(|v| v["event"] == "deliver"), "{rest:?}");
}

fn refuses_what_the_protocol_forbids_and_goes_on(kind: Kind, t: Transport) {
    let mut a = Adapter::start(kind, reference_worker(), t);
    a.ok(connect("a", false));
    a.refused(subscribe("a", &"x".repeat(65), "{}"));
    a.refused(subscribe("a", "", "{}"));
    a.refused(json!({"action": "subscribe", "client": "a", "sub_id": "s", "req": ""}));
    a.refused(subscribe("nobody", "s", "{}"));
    a.refused(connect("a", false));
    a.refused(json!({"action": "auth", "client": "a", "pubkey": "AB".repeat(32)}));
    a.refused(json!({"action": "auth", "client": "a", "pubkey": "ab"}));
    a.refused(fanout(None, &["no_such_flag"], &Ev::new(1).msg()));
    a.refused(fanout(None, &[], ""));
    a.refused(json!({"action": "teleport", "client": "a"}));
    // PROTOCOL.md#parent-sending: a payload over the maximum is refused.
    let huge = format!(r#"["EVENT",{{"content":"{}"}}]"#, "x".repeat(16 << 20));
    let message = a.refused(fanout(None, &[], &huge));
    assert!(!message.is_empty());
    // The stream goes on.
    a.ok(subscribe("a", "s", r#"{"kinds":[1]}"#));
    a.ok(fanout(None, &[], &Ev::new(2).msg()));
    assert_eq!(a.delivery(), ("a".into(), delivery("s", &Ev::new(2))));
    a.shutdown();
}

fn worker_exit_is_reported_once_and_refuses_after(kind: Kind, t: Transport) {
    let mut a = Adapter::start(kind, sh("exit 3"), t);
    let gone = a.worker_gone();
    assert_eq!(
        (&gone["fatal"], &gone["status"]),
        (&json!(false), &json!(3)),
        "{gone}"
    );
    a.refused(connect("a", false));
    a.sync();
    let (rest, _) = a.shutdown();
    assert!(
        !rest.iter().any(|v| v["event"] == "worker_gone"),
        "twice: {rest:?}"
    );
}

fn framing_error_is_fatal(kind: Kind, t: Transport) {
    // A header announcing 2^32 - 1 bytes, then silence: fatal at once.
    let script = format!(
        r"printf '\002\377\377\377\377'{}; exec sleep 30",
        t.redirect_out()
    );
    let mut a = Adapter::start(kind, sh(&script), t);
    let gone = a.worker_gone();
    assert_eq!(gone["fatal"], json!(true), "{gone}");
    a.refused(connect("a", false));
    let started = Instant::now();
    let (rest, _) = a.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleeping worker was waited for"
    );
    assert!(
        !rest.iter().any(|v| v["event"] == "worker_gone"),
        "twice: {rest:?}"
    );
}

fn bad_payloads_dropped_and_unknown_conns_discarded(kind: Kind, t: Transport) {
    // After the first New (19 bytes), the stand-in writes: a frame for conn
    // 7 (never opened), a channel-2 payload that does not decode, a
    // heartbeat, a frame on channel 9, and a frame for conn 0 ("hi"). Then
    // it reads its input to the end (in a child: `exec cat >/dev/null`
    // would close the output).
    let frames = concat!(
        r"\002\012\000\000\000\007\000\000\000\002\000\000\000no",
        r"\002\003\000\000\000abc",
        r"\002\000\000\000\000",
        r"\011\002\000\000\000zz",
        r"\002\012\000\000\000\000\000\000\000\002\000\000\000hi",
    );
    let (i, o) = (t.redirect_in(), t.redirect_out());
    let script = format!("head -c 19{i} >/dev/null; printf '{frames}'{o}; cat{i} >/dev/null");
    let mut a = Adapter::start(kind, sh(&script), t);
    a.ok(connect("a", false)); // conn 0: shard 0 of 2
    a.ok(connect("b", false)); // conn 1: shard 1 of 2, whose "hi" is not b's
    let dropped = a.wait_for("dropped_frame", |v| v["event"] == "dropped_frame");
    assert!(dropped["message"].is_string());
    assert_eq!(a.delivery(), ("a".into(), "hi".into()));
    let (rest, _) = a.shutdown();
    let deliveries: Vec<_> = rest.iter().filter(|v| v["event"] == "deliver").collect();
    assert!(deliveries.is_empty(), "{deliveries:?}");
    let dropped = rest.iter().filter(|v| v["event"] == "dropped_frame").count();
    assert_eq!(dropped, kind.shards() - 1, "{rest:?}");
}

fn full_queue_is_refused_or_waited_never_dropped(kind: Kind, t: Transport) {
    // A stand-in that reads nothing until the test creates a file, then
    // counts the bytes it is sent.
    let dir = std::env::temp_dir().join(format!(
        "parent-adapters-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let go = dir.join("go");
    let _ = std::fs::remove_file(&go);
    let (i, _) = (t.redirect_in(), t.redirect_out());
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; echo \"received $(wc -c{i})\" >&2",
        go.display()
    );
    let mut a = Adapter::start(kind, sh(&script), t);
    let event = format!(r#"["EVENT",{{"content":"{}"}}]"#, "x".repeat(1 << 20));
    let framed = 5 + 14 + event.len();
    let count = 12; // 12 MiB: more than the pipe and an 8 MiB queue take
    let first = a.seq + 1;
    let lines: Vec<Value> = (0..count)
        .map(|n| {
            let mut v = fanout(None, &[], &event);
            v["seq"] = json!(first + n);
            v
        })
        .collect();
    a.seq += count;
    let mut stdin = a.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        stdin
    });
    if kind.waits_for_room() {
        // The queue is full: the answers stop until the worker reads.
        thread::sleep(Duration::from_millis(500));
        let answered = a.lines.try_iter().collect::<Vec<_>>();
        assert!(answered.len() < count as usize, "no wait: {answered:?}");
        a.backlog.extend(answered);
    }
    let answers: Vec<Value> = if kind.waits_for_room() {
        std::fs::write(&go, b"").unwrap();
        (first..first + count).map(|seq| a.answer(seq)).collect()
    } else {
        let answers = (first..first + count).map(|seq| a.answer(seq)).collect();
        std::fs::write(&go, b"").unwrap();
        answers
    };
    a.stdin = Some(writer.join().unwrap());
    let ok = answers.iter().filter(|v| v["event"] == "ok").count();
    let refused = answers.iter().filter(|v| v["event"] == "refused").count();
    assert_eq!(ok + refused, count as usize, "{answers:?}");
    if kind.waits_for_room() {
        assert_eq!(refused, 0, "{answers:?}");
    } else {
        assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    }
    a.sync();
    let (_, stderr) = a.shutdown();
    // Every accepted command reached every worker, whole; nothing refused did.
    let received: Vec<usize> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("received "))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert_eq!(received, vec![ok * framed; kind.shards()], "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn stdin_end_ends_the_worker(kind: Kind, t: Transport) {
    let mut a = Adapter::start(kind, reference_worker(), t);
    a.ok(connect("a", false));
    a.ok(subscribe("a", "s", r#"{"kinds":[1]}"#));
    a.ok(fanout(None, &[], &Ev::new(1).msg()));
    // No shutdown: the end of stdin ends the worker, whose last frame is
    // still delivered, and the adapter exits 0.
    let rest = a.finish();
    let events: Vec<&Value> = rest.iter().filter(|v| v["event"] != "ok").collect();
    assert_eq!(events.len(), 2, "{rest:?}");
    assert_eq!(events[0]["event"], "deliver", "{rest:?}");
    assert_eq!(events[1]["event"], "worker_gone", "{rest:?}");
    assert_eq!(events[1]["status"], 0, "{rest:?}");
}
