//! Supervised handles (`Broadcaster::spawn_supervised`), against the
//! reference worker where the state matters: a dead worker is reaped and
//! replaced, its conns, auths and subscriptions replayed, each event
//! delivered at most once, the loss counted; a crash loop backs off and
//! gives up; a stopped worker is killed after the liveness deadline; a
//! worker that breaks the framing is replaced.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, Incoming, SendError, Transport};
use broadcast_process::link::{Restart, RestartCause, Supervision};
use broadcast_wire::BcastFlags;
use nix::sys::signal::Signal;

use crate::support::{PATIENCE, TRANSPORTS, assert_reaped, echo_worker, signal, stop, test_options, trials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    let mut trials = trials![
        kill_9_mid_burst_restarts_and_every_unlost_event_arrives_once_stdio,
        kill_9_mid_burst_restarts_and_every_unlost_event_arrives_once_socketpair,
        a_crash_loop_backs_off_then_gives_up_stdio,
        a_crash_loop_backs_off_then_gives_up_socketpair,
        a_stopped_worker_is_replaced_after_the_liveness_deadline_stdio,
        a_stopped_worker_is_replaced_after_the_liveness_deadline_socketpair,
        framing_garbage_restarts_the_worker_stdio,
        framing_garbage_restarts_the_worker_socketpair,
        a_crash_during_the_replay_restarts_again_stdio,
        a_crash_during_the_replay_restarts_again_socketpair,
    ];
    trials.push(libtest_mimic::Trial::test(
        "supervise::the_probe_conn_is_refused",
        || {
            the_probe_conn_is_refused();
            Ok(())
        },
    ));
    trials
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

fn supervised(
    transport: Transport,
    sup: Supervision,
    factory: impl FnMut() -> Command + Send + Sync + 'static,
) -> Broadcaster {
    Broadcaster::spawn_supervised(factory, transport, &test_options(), sup)
        .unwrap_or_else(|e| panic!("spawning over {transport:?}: {e}"))
}

/// Reads until a restart is reported, collecting the frames before it.
fn until_restart(b: &mut Broadcaster, frames: &mut Vec<(i32, u64)>) -> Restart {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no restart");
        match b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
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

fn open_conns(b: &mut Broadcaster) {
    for conn in CONNS {
        b.on_connect(conn, conn == 3).unwrap();
        b.on_auth(conn, [conn as u8; 32]).unwrap();
        b.on_subscribe(conn, "s", r#"["REQ","s",{"kinds":[1]}]"#).unwrap();
    }
}

fn kill_9_mid_burst(transport: Transport) {
    let mut b = supervised(transport, fast(), reference_worker);
    open_conns(&mut b);
    let pid = b.pid().unwrap();
    let mut frames = Vec::new();
    let total = 400u64;
    for n in 0..total / 2 {
        b.fanout(event(n), -1, BcastFlags::EMPTY).unwrap();
    }
    b.flush_blocking().unwrap();
    signal(pid, Signal::SIGKILL);
    for n in total / 2..total {
        b.fanout(event(n), -1, BcastFlags::EMPTY).unwrap();
    }
    let _ = b.flush_timeout(Duration::from_millis(10));
    let r = until_restart(&mut b, &mut frames);
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
        if let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
            frames.push((f.conn, event_number(&f.data)));
        }
    }
    // A new event reaches all three through the replayed subscriptions.
    b.fanout(event(total), -1, BcastFlags::EMPTY).unwrap();
    b.flush_blocking().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while CONNS.iter().any(|&c| !frames.contains(&(c, total))) {
        assert!(
            Instant::now() < deadline,
            "the replayed subscriptions deliver nothing"
        );
        if let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
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

fn kill_9_mid_burst_restarts_and_every_unlost_event_arrives_once_stdio() {
    kill_9_mid_burst(Transport::Stdio)
}
fn kill_9_mid_burst_restarts_and_every_unlost_event_arrives_once_socketpair() {
    kill_9_mid_burst(Transport::SocketPair)
}

fn crash_loop(transport: Transport) {
    let spawns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&spawns);
    let sup = Supervision::new()
        .backoff(Duration::from_millis(20), Duration::from_millis(80))
        .max_restarts_in(3, Duration::from_secs(30));
    let started = Instant::now();
    let mut b = supervised(transport, sup, move || {
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
        match b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
            Incoming::WorkerRestarted(r) => {
                restarts += 1;
                assert_eq!(r.number, restarts);
                pids.push(b.pid().unwrap());
            }
            Incoming::WorkerExited(status) => break status,
            Incoming::Pending => {
                let _ = b.flush();
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    // Three restarts, then the fourth death is final; the delays were
    // 20 + 40 + 80 ms, so no spinning.
    assert_eq!(restarts, 3);
    assert_eq!(spawns.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert_eq!(b.on_connect(2, false), Err(SendError::SupervisionGaveUp));
    assert!(matches!(b.read_frame().unwrap(), Incoming::WorkerExited(_)));
    let _ = status;
    for pid in pids {
        assert_reaped(pid);
    }
}

fn a_crash_loop_backs_off_then_gives_up_stdio() {
    crash_loop(Transport::Stdio)
}
fn a_crash_loop_backs_off_then_gives_up_socketpair() {
    crash_loop(Transport::SocketPair)
}

fn stopped(transport: Transport) {
    let sup = fast().liveness(Some(Duration::from_millis(300)));
    let mut b = supervised(transport, sup, reference_worker);
    open_conns(&mut b);
    b.flush_blocking().unwrap();
    let pid = b.pid().unwrap();
    stop(pid);
    let started = Instant::now();
    b.fanout(event(1), -1, BcastFlags::EMPTY).unwrap();
    let mut frames = Vec::new();
    let r = until_restart(&mut b, &mut frames);
    assert_eq!(r.cause, RestartCause::Unresponsive, "{r}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.replayed.subs, 3);
    assert_reaped(pid);
    b.fanout(event(2), -1, BcastFlags::EMPTY).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got: HashMap<i32, Vec<u64>> = HashMap::new();
    while CONNS.iter().any(|c| !got.get(c).is_some_and(|v| v.contains(&2))) {
        assert!(Instant::now() < deadline, "nothing after the restart: {got:?}");
        if let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
            got.entry(f.conn).or_default().push(event_number(&f.data));
        }
    }
}

fn a_stopped_worker_is_replaced_after_the_liveness_deadline_stdio() {
    stopped(Transport::Stdio)
}
fn a_stopped_worker_is_replaced_after_the_liveness_deadline_socketpair() {
    stopped(Transport::SocketPair)
}

/// The first worker is `first`, every later one the reference worker.
fn first_then_reference(first: Command) -> impl FnMut() -> Command + Send + Sync + 'static {
    let mut first = Some(std::sync::Mutex::new(first));
    move || match first.take() {
        Some(c) => c.into_inner().unwrap(),
        None => reference_worker(),
    }
}

fn garbage(transport: Transport) {
    let mut b = supervised(
        transport,
        fast(),
        first_then_reference(echo_worker(&["--garbage-then-flood", "0"])),
    );
    let pid = b.pid().unwrap();
    open_conns(&mut b);
    let _ = b.flush_timeout(Duration::from_millis(100));
    let mut frames = Vec::new();
    let r = until_restart(&mut b, &mut frames);
    assert!(matches!(r.cause, RestartCause::FramingBroken(_)), "{r}");
    assert_reaped(pid);
    b.flush_blocking().unwrap();
    b.fanout(event(5), -1, BcastFlags::EMPTY).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got = HashSet::new();
    while got.len() < CONNS.len() {
        assert!(Instant::now() < deadline, "nothing after the restart");
        if let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
            assert_eq!(event_number(&f.data), 5);
            assert!(got.insert(f.conn));
        }
    }
}

fn framing_garbage_restarts_the_worker_stdio() {
    garbage(Transport::Stdio)
}
fn framing_garbage_restarts_the_worker_socketpair() {
    garbage(Transport::SocketPair)
}

/// The second worker dies after a few commands of its replay: a third one
/// gets the whole state.
fn crash_in_replay(transport: Transport) {
    let n = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&n);
    let mut b = supervised(transport, fast(), move || {
        match calls.fetch_add(1, Ordering::SeqCst) {
            1 => echo_worker(&["--crash-after", "4"]),
            _ => reference_worker(),
        }
    });
    open_conns(&mut b);
    b.flush_blocking().unwrap();
    let first = b.pid().unwrap();
    signal(first, Signal::SIGKILL);
    let mut frames = Vec::new();
    let r1 = until_restart(&mut b, &mut frames);
    let second = b.pid().unwrap();
    let r2 = until_restart(&mut b, &mut frames);
    assert_eq!((r1.number, r2.number), (1, 2));
    assert_eq!(r2.replayed.subs, 3, "{r2}");
    assert_eq!(r2.cause, RestartCause::Signaled(6), "{r2}");
    assert_reaped(first);
    assert_reaped(second);
    b.fanout(event(9), -1, BcastFlags::EMPTY).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut got = HashSet::new();
    while got.len() < CONNS.len() {
        assert!(Instant::now() < deadline, "nothing after the restarts");
        if let Incoming::Frame(f) = b.read_frame_timeout(Duration::from_millis(50)).unwrap() {
            assert!(got.insert(f.conn));
        }
    }
}

fn a_crash_during_the_replay_restarts_again_stdio() {
    crash_in_replay(Transport::Stdio)
}
fn a_crash_during_the_replay_restarts_again_socketpair() {
    crash_in_replay(Transport::SocketPair)
}

fn the_probe_conn_is_refused() {
    let mut b = supervised(TRANSPORTS[0], fast(), reference_worker);
    assert_eq!(
        b.on_connect(i32::MAX, false),
        Err(SendError::ReservedConn { conn: i32::MAX })
    );
}
