//! Supervised sharded handles (`ShardedBroadcaster::spawn_supervised`,
//! `AsyncShardedBroadcaster::spawn_supervised`), K = 2, against the
//! reference worker: one shard killed mid-burst is replaced on its own
//! (the other's worker and deliveries untouched), only its conns and subs
//! replayed, each event delivered at most once; a shard in a crash loop
//! gives up alone, its conns refused with `SupervisionGaveUp`, the other
//! shard working on; every dead worker reaped. Each case runs on each
//! sharded handle and each transport:
//! `supervise_sharded::<case>::<handle>::<transport>`.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::sharded::{ShardError, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{FlushError, SendError, Transport};
use broadcast_process::link::{Restart, RestartCause, Supervision};
use broadcast_wire::{BcastFlags, ReadError};
use nix::sys::signal::Signal;

use crate::support::{
    PATIENCE, TRANSPORTS, assert_reaped, process_state, signal, stop, test_options, transport_name, within,
};

const CASE_LIMIT: Duration = Duration::from_secs(120);
const K: usize = 2;

type Case = fn(Kind, Transport);

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
            Kind::Blocking => "blocking_sharded",
            #[cfg(feature = "tokio")]
            Kind::Async => "async_sharded",
        }
    }
}

pub fn tests() -> Vec<libtest_mimic::Trial> {
    let cases: [(&str, Case); 4] = [
        (
            "kill_9_one_shard_mid_burst_restarts_only_that_shard",
            kill_one_shard,
        ),
        (
            "a_crash_loop_on_one_shard_gives_up_that_shard_only",
            crash_loop_one_shard,
        ),
        ("close_write_then_exit_restarts_no_shard", close_write_then_exit),
        (
            "a_shard_killed_with_unread_input_is_restarted_not_retired",
            killed_with_unread_input,
        ),
    ];
    let mut trials = Vec::new();
    for (case, run) in cases {
        for kind in Kind::all() {
            for transport in TRANSPORTS {
                let name = format!(
                    "supervise_sharded::{case}::{}::{}",
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
    trials
}

type Refused = ShardError<SendError>;

/// A supervised sharded handle, blocking style.
trait ShSup: Send {
    fn on_connect(&mut self, conn: i32) -> Result<(), Refused>;
    fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), Refused>;
    fn on_subscribe(&mut self, conn: i32, req: &str) -> Result<(), Refused>;
    fn fanout(&mut self, event: String) -> Result<(), Refused>;
    /// Every shard's queue written, waiting as long as it takes.
    fn flush_all(&mut self) -> Result<(), ShardError<FlushError>>;
    /// Writes what the fds take within `timeout`; the outcome does not
    /// matter.
    fn flush_for(&mut self, timeout: Duration);
    /// The next item within `timeout`, else `Pending`.
    fn next(&mut self, timeout: Duration) -> Result<ShardedIncoming, ShardError<ReadError>>;
    fn pids(&self) -> Vec<Option<u32>>;
    fn restarts(&self, shard: usize) -> u64;
    /// Ends every shard's command stream; `Err(shard)` if one has commands
    /// queued.
    fn close_write(&mut self) -> Result<(), usize>;
    /// The shard's exit status if its worker was reaped (reaping it if it
    /// has exited), without waiting.
    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus>;
}

fn k() -> NonZeroUsize {
    NonZeroUsize::new(K).unwrap()
}

fn supervised(
    kind: Kind,
    transport: Transport,
    sup: Supervision,
    factory: impl FnMut(usize) -> Command + Send + Sync + 'static,
) -> Box<dyn ShSup> {
    let failed = |e: &dyn std::fmt::Display| -> ! { panic!("spawning over {transport:?}: {e}") };
    match kind {
        Kind::Blocking => Box::new(
            ShardedBroadcaster::spawn_supervised(k(), factory, transport, &test_options(), sup)
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
                broadcast_process::async_broadcaster::AsyncShardedBroadcaster::spawn_supervised(
                    k(),
                    factory,
                    transport,
                    &test_options(),
                    sup,
                )
                .unwrap_or_else(|e| failed(&e))
            };
            Box::new(tokio_sup::AsyncSharded { b: Some(b), rt })
        }
    }
}

impl ShSup for ShardedBroadcaster {
    fn on_connect(&mut self, conn: i32) -> Result<(), Refused> {
        ShardedBroadcaster::on_connect(self, conn, false)
    }
    fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), Refused> {
        ShardedBroadcaster::on_auth(self, conn, pubkey)
    }
    fn on_subscribe(&mut self, conn: i32, req: &str) -> Result<(), Refused> {
        ShardedBroadcaster::on_subscribe(self, conn, "s", req.to_owned())
    }
    fn fanout(&mut self, event: String) -> Result<(), Refused> {
        ShardedBroadcaster::fanout(self, event, -1, BcastFlags::EMPTY)
    }
    fn flush_all(&mut self) -> Result<(), ShardError<FlushError>> {
        self.flush_blocking()
    }
    fn flush_for(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.flush() {
                Ok(status) if status.is_flushed() => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => return,
            }
        }
    }
    fn next(&mut self, timeout: Duration) -> Result<ShardedIncoming, ShardError<ReadError>> {
        self.read_frame_timeout(timeout)
    }
    fn pids(&self) -> Vec<Option<u32>> {
        ShardedBroadcaster::pids(self)
    }
    fn restarts(&self, shard: usize) -> u64 {
        let b = self.shard(shard).expect("a shard");
        b.supervisor().expect("supervised").restarts()
    }
    fn close_write(&mut self) -> Result<(), usize> {
        ShardedBroadcaster::close_write(self).map_err(|e| e.shard)
    }
    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        ShardedBroadcaster::exit_status(self, shard)
    }
}

#[cfg(feature = "tokio")]
mod tokio_sup {
    use std::process::ExitStatus;
    use std::time::Duration;

    use broadcast_process::async_broadcaster::{AsyncShardedBroadcaster, QueueError};
    use broadcast_process::broadcaster::FlushError;
    use broadcast_process::broadcaster::sharded::{ShardError, ShardedIncoming};
    use broadcast_wire::{BcastFlags, ReadError};
    use tokio::runtime::Runtime;

    use super::{Refused, ShSup};

    /// An `AsyncShardedBroadcaster` and its runtime; the handle is dropped
    /// first, inside the runtime's context.
    pub struct AsyncSharded {
        pub b: Option<AsyncShardedBroadcaster>,
        pub rt: Runtime,
    }

    impl Drop for AsyncSharded {
        fn drop(&mut self) {
            let _guard = self.rt.enter();
            drop(self.b.take());
        }
    }

    fn refused(e: ShardError<QueueError>) -> Refused {
        match e.error {
            QueueError::Refused(error) => ShardError {
                shard: e.shard,
                error,
            },
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

    impl ShSup for AsyncSharded {
        fn on_connect(&mut self, conn: i32) -> Result<(), Refused> {
            wait!(self, |b| b.on_connect(conn, false))
        }
        fn on_auth(&mut self, conn: i32, pubkey: [u8; 32]) -> Result<(), Refused> {
            wait!(self, |b| b.on_auth(conn, pubkey))
        }
        fn on_subscribe(&mut self, conn: i32, req: &str) -> Result<(), Refused> {
            wait!(self, |b| b.on_subscribe(conn, "s", req.to_owned()))
        }
        fn fanout(&mut self, event: String) -> Result<(), Refused> {
            wait!(self, |b| b.fanout(event, -1, BcastFlags::EMPTY))
        }
        fn flush_all(&mut self) -> Result<(), ShardError<FlushError>> {
            let b = self.b.as_mut().expect("the handle");
            self.rt.block_on(b.flush())
        }
        fn flush_for(&mut self, timeout: Duration) {
            let b = self.b.as_mut().expect("the handle");
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, b.flush()).await });
        }
        fn next(&mut self, timeout: Duration) -> Result<ShardedIncoming, ShardError<ReadError>> {
            let b = self.b.as_mut().expect("the handle");
            match self
                .rt
                .block_on(async { tokio::time::timeout(timeout, b.recv()).await })
            {
                Err(_elapsed) => Ok(ShardedIncoming::Pending),
                Ok(result) => result,
            }
        }
        fn pids(&self) -> Vec<Option<u32>> {
            self.b.as_ref().expect("the handle").pids()
        }
        fn restarts(&self, shard: usize) -> u64 {
            let b = self.b.as_ref().expect("the handle");
            b.shard(shard)
                .expect("a shard")
                .supervisor()
                .expect("supervised")
                .restarts()
        }
        fn close_write(&mut self) -> Result<(), usize> {
            let b = self.b.as_mut().expect("the handle");
            b.close_write().map_err(|e| e.shard)
        }
        fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
            let b = self.b.as_mut().expect("the handle");
            self.rt.block_on(b.wait_exit(shard, Duration::ZERO))
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
fn event_number(data: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(data).ok()?;
    if !s.starts_with(r#"["EVENT""#) {
        return None;
    }
    let at = s.find(r#""id":""#)? + 6;
    u64::from_str_radix(&s[at..at + 64], 16).ok()
}

/// Shard 0 owns 2 and 4, shard 1 owns 1 and 3 (`conn % 2`).
const CONNS: [i32; 4] = [1, 2, 3, 4];

fn open_conns(b: &mut dyn ShSup, conns: &[i32]) {
    for &conn in conns {
        b.on_connect(conn).unwrap();
        b.on_auth(conn, [conn as u8; 32]).unwrap();
        b.on_subscribe(conn, r#"["REQ","s",{"kinds":[1]}]"#).unwrap();
    }
}

/// Each delivery: (shard, conn, event).
type Deliveries = Vec<(usize, i32, u64)>;

fn record(item: ShardedIncoming, got: &mut Deliveries) -> Option<(usize, Restart)> {
    match item {
        ShardedIncoming::Frame { shard, frame } => {
            if let Some(n) = event_number(&frame.data) {
                assert_eq!(shard, frame.conn as usize % K, "a frame from the wrong shard");
                got.push((shard, frame.conn, n));
            }
            None
        }
        ShardedIncoming::ShardRestarted { shard, restart } => Some((shard, restart)),
        ShardedIncoming::Pending => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn count(got: &Deliveries, conn: i32) -> u64 {
    got.iter().filter(|d| d.1 == conn).count() as u64
}

fn kill_one_shard(kind: Kind, transport: Transport) {
    // A long first backoff: the other shard's deliveries while shard 1
    // waits for its replacement show it is not held up.
    let sup = Supervision::new()
        .backoff(Duration::from_millis(300), Duration::from_secs(1))
        .max_restarts_in(5, Duration::from_secs(30));
    let mut b = supervised(kind, transport, sup, |_| reference_worker());
    let b = &mut *b;
    open_conns(b, &CONNS);
    b.flush_all().unwrap();
    let pids = b.pids();
    let (pid0, pid1) = (pids[0].unwrap(), pids[1].unwrap());
    let total = 400u64;
    for n in 0..total / 2 {
        b.fanout(event(n)).unwrap();
    }
    b.flush_all().unwrap();
    signal(pid1, Signal::SIGKILL);
    for n in total / 2..total {
        b.fanout(event(n)).unwrap();
    }
    b.flush_for(Duration::from_millis(10));

    let mut got = Deliveries::new();
    let deadline = Instant::now() + PATIENCE;
    let (shard, r) = loop {
        assert!(Instant::now() < deadline, "no restart");
        if let Some(restart) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            break restart;
        }
    };
    assert_eq!(shard, 1, "{r}");
    assert_eq!(r.number, 1);
    assert!(
        matches!(r.cause, RestartCause::Signaled(9) | RestartCause::WriteGone),
        "{r}"
    );
    // Only shard 1's state: conns 1 and 3, their auths and subs.
    assert_eq!(
        (r.replayed.conns, r.replayed.auths, r.replayed.subs),
        (2, 2, 2),
        "{r}"
    );
    // Shard 0 went on while shard 1 waited out its backoff: it had
    // delivered the events sent after the kill before the restart.
    for conn in [2, 4] {
        assert_eq!(count(&got, conn), total, "shard 0's conn {conn} was held up");
    }
    let pids = b.pids();
    assert_eq!(pids[0], Some(pid0), "shard 0 was restarted too");
    assert_ne!(pids[1], Some(pid1));
    assert_eq!((b.restarts(0), b.restarts(1)), (0, 1));
    assert_reaped(pid1);

    // Every event not counted lost reaches shard 1's conns; shard 0's got
    // each exactly once.
    b.flush_all().unwrap();
    let want = total - r.lost_bcasts;
    let deadline = Instant::now() + PATIENCE;
    while [1, 3].iter().any(|&c| count(&got, c) < want) {
        assert!(Instant::now() < deadline, "{r}: {} of {want}", count(&got, 1));
        if let Some((s, r2)) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            panic!("shard {s} restarted again: {r2}");
        }
    }
    // A new event reaches all four: shard 1 through its replayed subs.
    b.fanout(event(total)).unwrap();
    b.flush_all().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while CONNS
        .iter()
        .any(|&c| !got.iter().any(|d| d.1 == c && d.2 == total))
    {
        assert!(
            Instant::now() < deadline,
            "the new event did not reach every conn"
        );
        if let Some((s, r2)) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            panic!("shard {s} restarted again: {r2}");
        }
    }
    let unique: HashSet<(i32, u64)> = got.iter().map(|d| (d.1, d.2)).collect();
    assert_eq!(unique.len(), got.len(), "an event was delivered twice");
    for conn in [2, 4] {
        assert_eq!(count(&got, conn), total + 1);
    }
    assert_eq!(b.pids()[0], Some(pid0));
}

fn crash_loop_one_shard(kind: Kind, transport: Transport) {
    let sup = Supervision::new()
        .backoff(Duration::from_millis(20), Duration::from_millis(80))
        .max_restarts_in(3, Duration::from_secs(30));
    // Shard 1 exits at once, every time; shard 0 is the reference worker.
    let mut b = supervised(kind, transport, sup, |shard| {
        if shard == 1 {
            let mut c = Command::new("sh");
            c.args(["-c", "exit 3"]);
            c
        } else {
            reference_worker()
        }
    });
    let b = &mut *b;
    let pid0 = b.pids()[0].unwrap();
    let mut shard1_pids = vec![b.pids()[1].unwrap()];
    b.on_connect(1).unwrap();
    open_conns(b, &[2]);
    let mut restarts = 0;
    let mut got = Deliveries::new();
    let started = Instant::now();
    let exit = loop {
        assert!(started.elapsed() < PATIENCE, "shard 1 never gave up");
        match b.next(Duration::from_millis(50)).unwrap() {
            ShardedIncoming::ShardRestarted { shard, restart } => {
                assert_eq!(shard, 1, "{restart}");
                restarts += 1;
                assert_eq!(restart.number, restarts);
                shard1_pids.push(b.pids()[1].unwrap());
            }
            ShardedIncoming::ShardExited(exit) => break exit,
            ShardedIncoming::Pending => b.flush_for(Duration::ZERO),
            item => {
                record(item, &mut got);
            }
        }
    };
    assert_eq!((exit.shard, &exit.conns[..]), (1, &[1][..]));
    assert_eq!(restarts, 3);
    assert!(started.elapsed() >= Duration::from_millis(140));
    // Shard 1's conns are refused as given up; shard 0's are not.
    let refused = b.on_connect(3).unwrap_err();
    assert_eq!((refused.shard, refused.error), (1, SendError::SupervisionGaveUp));
    b.on_connect(4).unwrap();
    // Shard 0 works on, untouched: a Bcast reaches its conn.
    b.fanout(event(7)).unwrap();
    b.flush_all().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !got.contains(&(0, 2, 7)) {
        assert!(Instant::now() < deadline, "shard 0 delivers nothing: {got:?}");
        if let Some((s, r)) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            panic!("shard {s} restarted: {r}");
        }
    }
    assert_eq!(b.pids()[0], Some(pid0));
    assert_eq!(b.restarts(0), 0);
    let mut seen = HashMap::new();
    for pid in shard1_pids {
        assert!(
            seen.insert(pid, ()).is_none(),
            "a pid twice: each restart is a new worker"
        );
        assert_reaped(pid);
    }
}

/// The relay ends every shard's command stream: each worker's exit is
/// reported as that shard's end, with its conns, and no shard restarts.
fn close_write_then_exit(kind: Kind, transport: Transport) {
    let sup = Supervision::new().backoff(Duration::from_millis(20), Duration::from_millis(80));
    let mut b = supervised(kind, transport, sup, |_| reference_worker());
    let b = &mut *b;
    open_conns(b, &CONNS);
    b.fanout(event(1)).unwrap();
    b.flush_all().unwrap();
    let pids: Vec<u32> = b.pids().into_iter().map(Option::unwrap).collect();
    b.close_write().unwrap();
    let refused = b.on_connect(5).unwrap_err();
    assert_eq!(refused.error, SendError::WriteClosed);
    let mut got = Deliveries::new();
    let mut exits = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while exits.len() < K {
        assert!(Instant::now() < deadline, "ends reported: {exits:?}");
        match b.next(Duration::from_millis(50)).unwrap() {
            ShardedIncoming::ShardExited(exit) => {
                // Reported as it ends: reaped now, or at the next look.
                let status = loop {
                    if let Some(status) = exit.status.or_else(|| b.exit_status(exit.shard)) {
                        break status;
                    }
                    assert!(Instant::now() < deadline, "shard {} not reaped", exit.shard);
                    std::thread::sleep(Duration::from_millis(2));
                };
                assert!(status.success(), "shard {}: {status}", exit.shard);
                exits.push((exit.shard, exit.conns));
            }
            ShardedIncoming::ShardRestarted { shard, restart } => {
                panic!("shard {shard} restarted after close_write: {restart}")
            }
            item => {
                record(item, &mut got);
            }
        }
    }
    exits.sort();
    assert_eq!(exits, [(0, vec![2, 4]), (1, vec![1, 3])]);
    // Each shard's last frames came before its end.
    assert_eq!(got.len(), CONNS.len(), "{got:?}");
    std::thread::sleep(Duration::from_millis(100)); // well past a backoff
    assert_eq!(b.pids(), pids.iter().copied().map(Some).collect::<Vec<_>>());
    assert_eq!((b.restarts(0), b.restarts(1)), (0, 0));
    for pid in pids {
        assert_reaped(pid);
    }
}

/// Shard 1's worker is stopped with commands unread in its input, then
/// killed: over a socketpair the read fails with `ECONNRESET` before
/// end-of-file. The shard is restarted like on any other death (not
/// killed and retired over a read error), and shard 0 is not touched.
fn killed_with_unread_input(kind: Kind, transport: Transport) {
    let mut b = supervised(kind, transport, fast_sup(), |_| reference_worker());
    let b = &mut *b;
    open_conns(b, &CONNS);
    b.flush_all().unwrap();
    let pids = b.pids();
    let (pid0, pid1) = (pids[0].unwrap(), pids[1].unwrap());
    stop(pid1);
    for n in 0..10 {
        b.fanout(event(n)).unwrap();
    }
    // Shard 1's commands are written into its buffer, unread.
    b.flush_all().unwrap();
    signal(pid1, Signal::SIGKILL);
    let deadline = Instant::now() + PATIENCE;
    while !matches!(process_state(pid1), Some('Z') | None) {
        assert!(Instant::now() < deadline, "worker {pid1} did not die");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = Deliveries::new();
    let (shard, r) = loop {
        assert!(Instant::now() < deadline, "no restart");
        if let Some(restart) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            break restart;
        }
    };
    assert_eq!(shard, 1, "{r}");
    assert_eq!(r.cause, RestartCause::Signaled(9), "{r}");
    assert_eq!(r.replayed.subs, 2, "{r}");
    assert_reaped(pid1);
    assert_eq!(b.pids()[0], Some(pid0), "shard 0 was restarted too");
    b.fanout(event(100)).unwrap();
    b.flush_all().unwrap();
    while CONNS.iter().any(|&c| !got.iter().any(|d| d.1 == c && d.2 == 100)) {
        assert!(
            Instant::now() < deadline,
            "the new event did not reach every conn: {got:?}"
        );
        if let Some((s, r2)) = record(b.next(Duration::from_millis(50)).unwrap(), &mut got) {
            panic!("shard {s} restarted again: {r2}");
        }
    }
}

fn fast_sup() -> Supervision {
    Supervision::new()
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .max_restarts_in(5, Duration::from_secs(30))
}
