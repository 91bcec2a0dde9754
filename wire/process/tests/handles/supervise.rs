//! Supervised handles (`Broadcaster::spawn_supervised`,
//! `AsyncBroadcaster::spawn_supervised`), against the reference worker
//! where the state matters: a dead worker is reaped and replaced, its
//! conns, auths and subscriptions replayed, each event delivered at most
//! once, the loss counted; a crash loop backs off and gives up; a stopped
//! worker is killed after the liveness deadline; a worker that breaks the
//! framing is replaced; a worker that ends because the relay closed its
//! input is not. Each case runs on each handle and each transport:
//! `supervise::<case>::<handle>::<transport>`.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, FlushError, Incoming, SendError, Transport, Unflushed};
use broadcast_process::link::{Restart, RestartCause, Supervision};
use broadcast_wire::{BcastFlags, ReadError};
use nix::sys::signal::Signal;

use crate::support::{
    PATIENCE, TRANSPORTS, assert_reaped, echo_worker, signal, stop, test_options, transport_name, wait_dead,
    within,
};

/// A case still running after this hangs.
const CASE_LIMIT: Duration = Duration::from_secs(120);

type Case = fn(Kind, Transport);

/// The supervised single handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blocking,
    #[cfg(feature = "tokio")]
    Async,
}

impl Kind {
    fn all() -> Vec<Kind> {
        vec![
            Kind::Blocking,
            #[cfg(feature = "tokio")]
            Kind::Async,
        ]
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Blocking => "blocking",
            #[cfg(feature = "tokio")]
            Kind::Async => "async",
        }
    }
}

pub fn tests() -> Vec<libtest_mimic::Trial> {
    let cases: [(&str, Case); 8] = [
        (
            "kill_9_mid_burst_restarts_and_every_unlost_event_arrives_once",
            kill_9_mid_burst,
        ),
        ("a_crash_loop_backs_off_then_gives_up", crash_loop),
        (
            "a_stopped_worker_is_replaced_after_the_liveness_deadline",
            stopped,
        ),
        ("framing_garbage_restarts_the_worker", garbage),
        ("a_crash_during_the_replay_restarts_again", crash_in_replay),
        ("close_write_then_exit_is_not_restarted", close_write_then_exit),
        (
            "a_dead_workers_unread_output_reaches_the_relay_before_the_restart",
            unread_output_of_a_dead_worker,
        ),
        (
            "a_worker_killed_with_unread_input_is_restarted",
            killed_with_unread_input,
        ),
    ];
    let mut trials = Vec::new();
    for (case, run) in cases {
        for kind in Kind::all() {
            for transport in TRANSPORTS {
                let name = format!(
                    "supervise::{case}::{}::{}",
                    kind.name(),
                    transport_name(transport)
                );
                trials.push(libtest_mimic::Trial::test(name.clone(), move || {
                    within(CASE_LIMIT, &name, move || run(kind, transport));
                    Ok(())
                }));
            }
        }
    }
    for kind in Kind::all() {
        let name = format!("supervise::the_probe_conn_is_refused::{}", kind.name());
        trials.push(libtest_mimic::Trial::test(name, move || {
            the_probe_conn_is_refused(kind);
            Ok(())
        }));
    }
    trials
}

/// A supervised handle, blocking style (the tokio one driven by a
/// current-thread runtime of its own).
trait Sup: Send {
    fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), SendError>;
    fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), SendError>;
    fn on_subscribe(&mut self, conn: i32, sub_id: &str, req: &str) -> Result<(), SendError>;
    fn fanout(&mut self, event: String) -> Result<(), SendError>;
    fn flush_blocking(&mut self) -> Result<(), FlushError>;
    /// Flushes for at most `timeout`; the outcome does not matter.
    fn flush_timeout(&mut self, timeout: Duration);
    /// The next item within `timeout`, else `Pending`.
    fn next(&mut self, timeout: Duration) -> Result<Incoming, ReadError>;
    fn close_write(&mut self) -> Result<(), Unflushed>;
    fn pid(&self) -> Option<u32>;
    fn restarts(&self) -> u64;
}

fn supervised(
    kind: Kind,
    transport: Transport,
    sup: Supervision,
    factory: impl FnMut() -> Command + Send + Sync + 'static,
) -> Box<dyn Sup> {
    let failed = |e: &dyn std::fmt::Display| -> ! { panic!("spawning over {transport:?}: {e}") };
    match kind {
        Kind::Blocking => Box::new(
            Broadcaster::spawn_supervised(factory, transport, &test_options(), sup)
                .unwrap_or_else(|e| failed(&e)),
        ),
        #[cfg(feature = "tokio")]
        Kind::Async => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let b = {
                let _guard = rt.enter();
                broadcast_process::async_broadcaster::AsyncBroadcaster::spawn_supervised(
                    factory,
                    transport,
                    &test_options(),
                    sup,
                )
                .unwrap_or_else(|e| failed(&e))
            };
            Box::new(tokio_sup::Async { b: Some(b), rt })
        }
    }
}

impl Sup for Broadcaster {
    fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), SendError> {
        Broadcaster::on_connect(self, conn, whitelisted)
    }
    fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), SendError> {
        Broadcaster::on_auth(self, conn, pubkey)
    }
    fn on_subscribe(&mut self, conn: i32, sub_id: &str, req: &str) -> Result<(), SendError> {
        Broadcaster::on_subscribe(self, conn, sub_id, req.to_owned())
    }
    fn fanout(&mut self, event: String) -> Result<(), SendError> {
        Broadcaster::fanout(self, event, -1, BcastFlags::EMPTY)
    }
    fn flush_blocking(&mut self) -> Result<(), FlushError> {
        Broadcaster::flush_blocking(self)
    }
    fn flush_timeout(&mut self, timeout: Duration) {
        let _ = Broadcaster::flush_timeout(self, timeout);
    }
    fn next(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
        self.read_frame_timeout(timeout)
    }
    fn close_write(&mut self) -> Result<(), Unflushed> {
        Broadcaster::close_write(self)
    }
    fn pid(&self) -> Option<u32> {
        Broadcaster::pid(self)
    }
    fn restarts(&self) -> u64 {
        self.supervisor().expect("supervised").restarts()
    }
}

#[cfg(feature = "tokio")]
mod tokio_sup {
    use std::time::Duration;

    use broadcast_process::async_broadcaster::{AsyncBroadcaster, QueueError};
    use broadcast_process::broadcaster::{FlushError, Incoming, SendError, Unflushed};
    use broadcast_wire::{BcastFlags, ReadError};
    use tokio::runtime::Runtime;

    use super::Sup;

    /// An `AsyncBroadcaster` and its runtime; the handle is dropped first,
    /// inside the runtime's context.
    pub struct Async {
        pub b: Option<AsyncBroadcaster>,
        pub rt: Runtime,
    }

    impl Drop for Async {
        fn drop(&mut self) {
            let _guard = self.rt.enter();
            drop(self.b.take());
        }
    }

    fn refused(e: QueueError) -> SendError {
        match e {
            QueueError::Refused(e) => e,
            other => panic!("waiting for room failed: {other}"),
        }
    }

    /// Runs a command's waiting form to completion on the handle's runtime.
    macro_rules! wait {
        ($self:ident, |$b:ident| $call:expr) => {{
            let $b = $self.b.as_mut().expect("the handle");
            $self.rt.block_on($call).map_err(refused)
        }};
    }

    impl Sup for Async {
        fn on_connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), SendError> {
            wait!(self, |b| b.on_connect(conn, whitelisted))
        }
        fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), SendError> {
            wait!(self, |b| b.on_auth(conn, pubkey))
        }
        fn on_subscribe(&mut self, conn: i32, sub_id: &str, req: &str) -> Result<(), SendError> {
            wait!(self, |b| b.on_subscribe(conn, sub_id, req.to_owned()))
        }
        fn fanout(&mut self, event: String) -> Result<(), SendError> {
            wait!(self, |b| b.fanout(event, -1, BcastFlags::EMPTY))
        }
        fn flush_blocking(&mut self) -> Result<(), FlushError> {
            let b = self.b.as_mut().expect("the handle");
            self.rt.block_on(b.flush())
        }
        fn flush_timeout(&mut self, timeout: Duration) {
            let b = self.b.as_mut().expect("the handle");
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, b.flush()).await });
        }
        fn next(&mut self, timeout: Duration) -> Result<Incoming, ReadError> {
            let b = self.b.as_mut().expect("the handle");
            match self
                .rt
                .block_on(async { tokio::time::timeout(timeout, b.recv()).await })
            {
                Err(_elapsed) => Ok(Incoming::Pending),
                Ok(result) => result,
            }
        }
        fn close_write(&mut self) -> Result<(), Unflushed> {
            self.b.as_mut().expect("the handle").close_write()
        }
        fn pid(&self) -> Option<u32> {
            self.b.as_ref().expect("the handle").pid()
        }
        fn restarts(&self) -> u64 {
            let b = self.b.as_ref().expect("the handle");
            b.supervisor().expect("supervised").restarts()
        }
    }
}

fn reference_worker() -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let worker = broadcast_worker::locate::locate(&exe).unwrap_or_else(|e| panic!("{e}"));
    Command::new(worker)
}

/// A valid kind-1 event with an id made from `n`.
fn event(n: u64) -> String {
    format!(
        r#"["EVENT",{{"id":"{n:064x}","pubkey":"{}","created_at":1,"kind":1,"tags":[],"content":"e{n}","sig":"{}"}}]"#,
        "a".repeat(64),
        "b".repeat(128)
    )
}

/// The event number of a frame's data, `["EVENT","<sub>",{"id":"<hex>"...`.
fn event_number(data: &[u8]) -> u64 {
    let s = std::str::from_utf8(data).unwrap();
    let at = s.find(r#""id":""#).unwrap() + 6;
    u64::from_str_radix(&s[at..at + 64], 16).unwrap()
}

fn fast() -> Supervision {
    Supervision::new()
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .max_restarts_in(5, Duration::from_secs(30))
}

/// Reads until a restart is reported, collecting the frames before it.
fn until_restart(b: &mut dyn Sup, frames: &mut Vec<(i32, u64)>) -> Restart {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no restart");
        match b.next(Duration::from_millis(50)).unwrap() {
            Incoming::WorkerRestarted(r) => return r,
            // The echo worker's echoes carry no event.
            Incoming::Frame(f) if !f.data.starts_with(b"[\"EVENT\"") => {}
            Incoming::Frame(f) => frames.push((f.conn, event_number(&f.data))),
            Incoming::Pending => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

const CONNS: [i32; 3] = [1, 2, 3];

fn open_conns(b: &mut dyn Sup) {
    for conn in CONNS {
        b.on_connect(conn, conn == 3).unwrap();
        b.on_auth(conn, [conn as u8; 32]).unwrap();
        b.on_subscribe(conn, "s", r#"["REQ","s",{"kinds":[1]}]"#).unwrap();
    }
}

fn kill_9_mid_burst(kind: Kind, transport: Transport) {
    let mut b = supervised(kind, transport, fast(), reference_worker);
    let b = &mut *b;
    open_conns(b);
    let pid = b.pid().unwrap();
    let mut frames = Vec::new();
    let total = 400u64;
    for n in 0..total / 2 {
        b.fanout(event(n)).unwrap();
    }
    b.flush_blocking().unwrap();
    signal(pid, Signal::SIGKILL);
    for n in total / 2..total {
        b.fanout(event(n)).unwrap();
    }
    b.flush_timeout(Duration::from_millis(10));
    let r = until_restart(b, &mut frames);
    assert_eq!(r.number, 1);
    // The death is seen by a read (end of output: the status is the cause)
    // or first by a write (EPIPE, which can come before the exit status).
    assert!(
        matches!(r.cause, RestartCause::Signaled(9) | RestartCause::WriteGone),
        "{r}"
    );
    assert_eq!(
        (r.replayed.conns, r.replayed.auths, r.replayed.subs),
        (3, 3, 3),
        "{r}"
    );
    assert_reaped(pid);
    assert_ne!(b.pid(), Some(pid));
    b.flush_blocking().unwrap();
    // Every event not counted lost arrives, and none twice.
    let want = total - r.lost_bcasts;
    let deadline = Instant::now() + PATIENCE;
    let count = |frames: &[(i32, u64)], conn| frames.iter().filter(|f| f.0 == conn).count() as u64;
    while CONNS.iter().any(|&c| count(&frames, c) < want) {
        assert!(Instant::now() < deadline, "{r}: got {} of {want}", frames.len());
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            frames.push((f.conn, event_number(&f.data)));
        }
    }
    // A new event reaches all three through the replayed subscriptions.
    b.fanout(event(total)).unwrap();
    b.flush_blocking().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while CONNS.iter().any(|&c| !frames.contains(&(c, total))) {
        assert!(
            Instant::now() < deadline,
            "the replayed subscriptions deliver nothing"
        );
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            frames.push((f.conn, event_number(&f.data)));
        }
    }
    let unique: HashSet<&(i32, u64)> = frames.iter().collect();
    assert_eq!(unique.len(), frames.len(), "an event was delivered twice");
    assert!(
        frames.iter().all(|f| CONNS.contains(&f.0)),
        "a probe frame reached the relay"
    );
    assert!(r.lost_bcasts <= total, "{r}");
}

fn crash_loop(kind: Kind, transport: Transport) {
    let spawns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&spawns);
    let sup = Supervision::new()
        .backoff(Duration::from_millis(20), Duration::from_millis(80))
        .max_restarts_in(3, Duration::from_secs(30));
    let started = Instant::now();
    let mut b = supervised(kind, transport, sup, move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let mut c = Command::new("sh");
        c.args(["-c", "exit 3"]);
        c
    });
    b.on_connect(1, false).unwrap();
    let mut restarts = 0;
    let mut pids = vec![b.pid().unwrap()];
    let status = loop {
        assert!(started.elapsed() < PATIENCE, "never gave up");
        match b.next(Duration::from_millis(50)).unwrap() {
            Incoming::WorkerRestarted(r) => {
                restarts += 1;
                assert_eq!(r.number, restarts);
                pids.push(b.pid().unwrap());
            }
            Incoming::WorkerExited(status) => break status,
            Incoming::Pending => b.flush_timeout(Duration::ZERO),
            other => panic!("unexpected {other:?}"),
        }
    };
    // Three restarts, then the fourth death is final; the delays were
    // 20 + 40 + 80 ms, so no spinning.
    assert_eq!(restarts, 3);
    assert_eq!(spawns.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert_eq!(b.on_connect(2, false), Err(SendError::SupervisionGaveUp));
    assert!(matches!(
        b.next(Duration::ZERO).unwrap(),
        Incoming::WorkerExited(_)
    ));
    let _ = status;
    for pid in pids {
        assert_reaped(pid);
    }
}

fn stopped(kind: Kind, transport: Transport) {
    let sup = fast().liveness(Some(Duration::from_millis(300)));
    let mut b = supervised(kind, transport, sup, reference_worker);
    let b = &mut *b;
    open_conns(b);
    b.flush_blocking().unwrap();
    let pid = b.pid().unwrap();
    stop(pid);
    let started = Instant::now();
    b.fanout(event(1)).unwrap();
    let mut frames = Vec::new();
    let r = until_restart(b, &mut frames);
    assert_eq!(r.cause, RestartCause::Unresponsive, "{r}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.replayed.subs, 3);
    assert_reaped(pid);
    b.fanout(event(2)).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got: HashMap<i32, Vec<u64>> = HashMap::new();
    while CONNS.iter().any(|c| !got.get(c).is_some_and(|v| v.contains(&2))) {
        assert!(Instant::now() < deadline, "nothing after the restart: {got:?}");
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            got.entry(f.conn).or_default().push(event_number(&f.data));
        }
    }
}

/// The first worker is `first`, every later one the reference worker.
fn first_then_reference(first: Command) -> impl FnMut() -> Command + Send + Sync + 'static {
    let mut first = Some(std::sync::Mutex::new(first));
    move || match first.take() {
        Some(c) => c.into_inner().unwrap(),
        None => reference_worker(),
    }
}

fn garbage(kind: Kind, transport: Transport) {
    let mut b = supervised(
        kind,
        transport,
        fast(),
        first_then_reference(echo_worker(&["--garbage-then-flood", "0"])),
    );
    let b = &mut *b;
    let pid = b.pid().unwrap();
    open_conns(b);
    b.flush_timeout(Duration::from_millis(100));
    let mut frames = Vec::new();
    let r = until_restart(b, &mut frames);
    assert!(matches!(r.cause, RestartCause::FramingBroken(_)), "{r}");
    assert_reaped(pid);
    b.flush_blocking().unwrap();
    b.fanout(event(5)).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got = HashSet::new();
    while got.len() < CONNS.len() {
        assert!(Instant::now() < deadline, "nothing after the restart");
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            assert_eq!(event_number(&f.data), 5);
            assert!(got.insert(f.conn));
        }
    }
}

/// The second worker dies after a few commands of its replay: a third one
/// gets the whole state.
fn crash_in_replay(kind: Kind, transport: Transport) {
    let n = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&n);
    let mut b = supervised(kind, transport, fast(), move || {
        match calls.fetch_add(1, Ordering::SeqCst) {
            1 => echo_worker(&["--crash-after", "4"]),
            _ => reference_worker(),
        }
    });
    let b = &mut *b;
    open_conns(b);
    b.flush_blocking().unwrap();
    let first = b.pid().unwrap();
    signal(first, Signal::SIGKILL);
    let mut frames = Vec::new();
    let r1 = until_restart(b, &mut frames);
    let second = b.pid().unwrap();
    let r2 = until_restart(b, &mut frames);
    assert_eq!((r1.number, r2.number), (1, 2));
    assert_eq!(r2.replayed.subs, 3, "{r2}");
    assert_eq!(r2.cause, RestartCause::Signaled(6), "{r2}");
    assert_reaped(first);
    assert_reaped(second);
    b.fanout(event(9)).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got = HashSet::new();
    while got.len() < CONNS.len() {
        assert!(Instant::now() < deadline, "nothing after the restarts");
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            assert!(got.insert(f.conn));
        }
    }
}

fn the_probe_conn_is_refused(kind: Kind) {
    let mut b = supervised(kind, TRANSPORTS[0], fast(), reference_worker);
    assert_eq!(
        b.on_connect(i32::MAX, false),
        Err(SendError::ReservedConn { conn: i32::MAX })
    );
}

/// The relay ends the command stream on purpose: the worker's exit that
/// follows is reported as its end, with its status, and never answered
/// with a restart (no new worker is spawned, even after the backoff).
fn close_write_then_exit(kind: Kind, transport: Transport) {
    let spawns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&spawns);
    let mut b = supervised(kind, transport, fast(), move || {
        counter.fetch_add(1, Ordering::SeqCst);
        reference_worker()
    });
    let b = &mut *b;
    open_conns(b);
    b.fanout(event(1)).unwrap();
    b.flush_blocking().unwrap();
    let pid = b.pid().unwrap();
    b.close_write().unwrap();
    assert_eq!(b.on_connect(9, false), Err(SendError::WriteClosed));
    let mut got = 0;
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        assert!(Instant::now() < deadline, "the worker's end was not reported");
        match b.next(Duration::from_millis(50)).unwrap() {
            Incoming::WorkerExited(Some(status)) => break status,
            Incoming::WorkerExited(None) | Incoming::Pending => {}
            Incoming::Frame(f) if f.data.starts_with(b"[\"EVENT\"") => {
                assert_eq!(event_number(&f.data), 1);
                got += 1;
            }
            Incoming::Frame(_) => {}
            Incoming::WorkerRestarted(r) => panic!("restarted after close_write: {r}"),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(status.success(), "{status}");
    // Its last frames came before its end.
    assert_eq!(got, CONNS.len());
    assert_reaped(pid);
    // Well past the backoff: still the end, no second worker.
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(
        b.next(Duration::from_millis(50)).unwrap(),
        Incoming::WorkerExited(_)
    ));
    assert_eq!(b.pid(), Some(pid));
    assert_eq!(b.restarts(), 0);
    assert_eq!(spawns.load(Ordering::SeqCst), 1);
}

/// The first worker answers the relay's New (an echo) and refuses its Add
/// (a `CLOSED`), then dies before the handle has read either; the death is
/// first seen by a write. Both frames reach the relay, in order, before
/// the restart; the refused Add leaves the mirror and is not replayed, so
/// the client gets exactly one `CLOSED` for it.
fn unread_output_of_a_dead_worker(kind: Kind, transport: Transport) {
    let mut b = supervised(
        kind,
        transport,
        fast(),
        // Answers: the probe's New and Add, the relay's New and Add; then
        // it aborts.
        first_then_reference(echo_worker(&["--closed-adds", "--crash-after", "4"])),
    );
    let b = &mut *b;
    let pid = b.pid().unwrap();
    let bad = r#"["REQ","bad",{"kinds":"bad"}]"#;
    b.on_connect(1, false).unwrap();
    b.on_subscribe(1, "bad", bad).unwrap();
    b.flush_timeout(Duration::from_millis(200));
    wait_dead(pid);
    // A write finds it gone (nothing was read since it wrote).
    b.fanout(event(1)).unwrap();
    b.flush_timeout(Duration::from_millis(50));
    let mut items = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let r = loop {
        assert!(Instant::now() < deadline, "no restart: {items:?}");
        match b.next(Duration::from_millis(50)).unwrap() {
            Incoming::WorkerRestarted(r) => break r,
            Incoming::Frame(f) => items.push(f),
            Incoming::Pending => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(items.len(), 2, "{r}: {items:?}");
    assert_eq!(items[0].conn, 1);
    assert!(!items[0].data.starts_with(b"[\"CLOSED\""), "{items:?}");
    assert_eq!(items[1].conn, 1);
    assert!(items[1].data.starts_with(br#"["CLOSED","bad","#), "{items:?}");
    assert!(
        matches!(r.cause, RestartCause::Signaled(6) | RestartCause::WriteGone),
        "{r}"
    );
    assert_eq!(
        (r.replayed.conns, r.replayed.auths, r.replayed.subs),
        (1, 0, 0),
        "the refused Add was replayed: {r}"
    );
    assert_eq!(r.lost_bcasts, 0, "{r}");
    assert_reaped(pid);
    // No second CLOSED (and nothing else) for conn 1 from the new worker.
    b.flush_blocking().unwrap();
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        match b.next(Duration::from_millis(50)).unwrap() {
            Incoming::Pending => {}
            other => panic!("after the restart: {other:?}"),
        }
    }
}

/// A worker stopped with commands unread in its input, then killed: over a
/// socketpair the handle's read fails with `ECONNRESET` (the peer died
/// with unread data) before it reads end-of-file. A supervised handle
/// restarts the worker as for any other death, and reports no error.
fn killed_with_unread_input(kind: Kind, transport: Transport) {
    let mut b = supervised(kind, transport, fast(), reference_worker);
    let b = &mut *b;
    open_conns(b);
    b.flush_blocking().unwrap();
    let pid = b.pid().unwrap();
    stop(pid);
    for n in 0..10 {
        b.fanout(event(n)).unwrap();
    }
    b.flush_blocking().unwrap();
    signal(pid, Signal::SIGKILL);
    wait_dead(pid);
    let mut frames = Vec::new();
    let r = until_restart(b, &mut frames);
    assert_eq!(r.cause, RestartCause::Signaled(9), "{r}");
    assert_eq!(r.replayed.subs, 3, "{r}");
    assert_eq!(r.lost_bcasts, 10, "{r}");
    assert_reaped(pid);
    b.fanout(event(100)).unwrap();
    b.flush_blocking().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while CONNS.iter().any(|&c| !frames.contains(&(c, 100))) {
        assert!(Instant::now() < deadline, "nothing after the restart: {frames:?}");
        if let Incoming::Frame(f) = b.next(Duration::from_millis(50)).unwrap() {
            frames.push((f.conn, event_number(&f.data)));
        }
    }
}
