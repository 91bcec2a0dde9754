//! How long a supervised `Broadcaster` takes to recover from a worker killed
//! with `kill -9`, against a cold start of the same state in the same run,
//! for 1,000, 10,000 and 100,000 subscriptions; the mirror's memory per
//! subscription; and what supervision costs in steady-state fan-out
//! throughput (supervised against unsupervised, same run). Results:
//! docs/RELIABILITY.md and docs/PERFORMANCE.md.
//!
//! ```text
//! cargo bench -p broadcast-process --bench recovery
//! cargo bench -p broadcast-process --bench recovery -- --quick
//! cargo bench -p broadcast-process --bench recovery -- --reps 9 --socketpair
//! ```
//!
//! The workers are the reference worker binary, `broadcast-worker`, found
//! (and under cargo built first) next to this bench by
//! `broadcast_worker::locate`. Run the bench binary directly, outside cargo,
//! only after `cargo build --release -p broadcast-worker` with the same
//! target directory.
//!
//! Workload: N subscriptions, 10 per connection on N/10 connections; every
//! 16th connection is whitelisted, every 4th has authenticated (one Auth);
//! the REQs are the mixed ones of `benches/sharded.rs`, 52 to 104 bytes
//! (`{"authors":[A]}`, `{"#p":[P],"kinds":[4,1059]}`,
//! `{"kinds":[1,6],"authors":[A]}`, `{"#t":[T],"since":S}`). The last
//! subscription of the last connection is the **marker**,
//! `{"kinds":[1],"#t":["recovery-marker"]}`, which only the marker events
//! match.
//!
//! Each repetition, for each N, runs two arms, in alternating order:
//!
//! - **cold start** (the baseline): spawn an unsupervised worker, send the
//!   N subscriptions (New, Auth, Add), then a marker event; the time until
//!   the marker's frame is read. This is what a relay without supervision
//!   does to rebuild the state after a crash, minus noticing the crash.
//! - **recovery**: a supervised handle (default `Supervision`: the first
//!   restart waits its 50 ms backoff) with the same N subscriptions, all
//!   applied (a marker read back); then `kill -9` of its worker. The clock
//!   starts at the kill. Once the kernel has closed the dead worker's fds
//!   (it is a zombie), a marker event is sent, and the bench runs an event
//!   loop (`read_frame_timeout`, which also flushes and wakes at
//!   `next_deadline`) until the marker's frame is read: the death seen, the
//!   backoff waited, the new worker spawned, the replay written and
//!   processed, the carried-over marker delivered. (Sent before the fds
//!   are closed, the marker could be written into the dying worker's pipe:
//!   counted in `lost_bcasts`, never delivered.) Also reported: the time to
//!   `Incoming::WorkerRestarted` (detection, backoff, spawn).
//!
//! Figures are medians over the repetitions, and the headline is
//! `recovery / cold start`. The throughput part loads 1,000 subscriptions
//! into a supervised and an unsupervised handle and fans out the same
//! 100,000 small events through each, alternating rounds (which goes first
//! alternates), each round an event loop (`fanout` until `Backpressure`,
//! `flush`, read every ready frame, `poll`) that ends when a marker event
//! sent after the last one is read; the figure is the median of
//! `time(supervised) / time(unsupervised)`. Without `--bench` (as under
//! `cargo test --benches`) it runs a tiny smoke version.
//!
//! With `--socketpair`, a dropped handle's worker may print `writing frames
//! failed: Broken pipe` on stderr: it was answering a probe when the handle
//! went away. Harmless; nothing is measured then.

#[cfg(target_os = "linux")]
mod workload;

#[cfg(target_os = "linux")]
mod linux {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use broadcast_process::broadcaster::{Broadcaster, Incoming, Options, StderrMode, Transport};
    use broadcast_process::link::{Restart, Supervision};
    use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags, SubCommand, SubId};
    use bytes::Bytes;

    use crate::workload::{Rng, SINCE, filter, hex_key};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    const FIRST_CONN: i32 = 16;
    const MARKER_TAG: &str = "recovery-marker";
    /// Waiting longer than this for anything is a failure of the bench.
    const PATIENCE: Duration = Duration::from_secs(60);

    fn pubkey(i: usize) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        k[31] = 0xa5;
        k
    }

    /// The commands that build the state of N subscriptions: per conn its
    /// New, maybe an Auth, then 10 Adds; and the marker's (conn, sub_id).
    fn workload(n: usize, rng: &mut Rng) -> (Vec<SubCommand>, (i32, String)) {
        assert!(n >= 10 && n % 10 == 0, "N must be a multiple of 10");
        let authors = (n / 4).max(1);
        let hashtags = (n / 16).max(1);
        let mut cmds = Vec::with_capacity(n + n / 10 + n / 40);
        let mut marker = (0, String::new());
        for i in 0..n {
            let conn = FIRST_CONN + (i / 10) as i32;
            if i % 10 == 0 {
                let c = i / 10;
                cmds.push(SubCommand::New {
                    conn,
                    flags: if c % 16 == 0 {
                        NewFlags::WHITELISTED
                    } else {
                        NewFlags::EMPTY
                    },
                });
                if c % 4 == 1 {
                    cmds.push(SubCommand::Auth {
                        conn,
                        flags: ReservedFlags::EMPTY,
                        pubkey: pubkey(c),
                    });
                }
            }
            let filter = if i == n - 1 {
                format!(r##"{{"kinds":[1],"#t":["{MARKER_TAG}"]}}"##)
            } else {
                filter(i, authors, hashtags, rng)
            };
            let sub = format!("sub{}", i % 10);
            let req = format!(r#"["REQ","{sub}",{filter}]"#);
            if i == n - 1 {
                marker = (conn, sub.clone());
            }
            cmds.push(SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from(sub.as_str()).expect("a valid sub_id"),
                req: req.into(),
            });
        }
        (cmds, marker)
    }

    /// A marker event (kind 1, tag `recovery-marker`), unique by `n`; its
    /// id is the needle to look for in frames.
    fn marker_event(n: u64) -> (SubCommand, String) {
        let id = format!("{:064x}", 0xfeed_0000_0000u64 + n);
        let event = format!(
            r#"["EVENT",{{"id":"{id}","pubkey":"{}","created_at":{SINCE},"kind":1,"tags":[["t","{MARKER_TAG}"]],"content":"marker","sig":"{}"}}]"#,
            "d".repeat(64),
            "5".repeat(128)
        );
        let cmd = SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: event.into(),
        };
        (cmd, id)
    }

    /// Small events of the mixed workload, for the throughput part.
    fn events(count: usize, subs: usize, rng: &mut Rng) -> Vec<Bytes> {
        let authors = (subs / 4).max(1);
        let hashtags = (subs / 16).max(1);
        (0..count)
            .map(|i| {
                let kind = if i % 2 == 0 { 1 } else { 4 };
                format!(
                    r#"["EVENT",{{"id":"{:064x}","pubkey":"{}","created_at":{},"kind":{kind},"tags":[["p","{}"],["t","tag{}"]],"content":"e{i}","sig":"{}"}}]"#,
                    i + 1,
                    hex_key(rng.below(authors)),
                    SINCE + 50,
                    hex_key(rng.below(authors)),
                    rng.below(hashtags),
                    "5".repeat(128)
                )
                .into()
            })
            .collect()
    }

    /// Sends every command, flushing (blocking) whenever the queue is full.
    fn send_all(b: &mut Broadcaster, cmds: &[SubCommand]) {
        for cmd in cmds {
            loop {
                match b.send(cmd) {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() => b.flush_blocking().expect("flushing"),
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
    }

    /// Reads (an event loop of `read_frame_timeout`, which flushes and
    /// wakes at the supervision deadlines) until the frame of the marker
    /// `id` arrives on the marker conn. Returns the restart reported on the
    /// way, with the instant it was read.
    fn await_marker(b: &mut Broadcaster, conn: i32, id: &str) -> Option<(Restart, Instant)> {
        let deadline = Instant::now() + PATIENCE;
        let mut restart = None;
        loop {
            assert!(Instant::now() < deadline, "the marker {id} never arrived");
            match b.read_frame_timeout(Duration::from_millis(100)).expect("reading") {
                Incoming::Frame(f) => {
                    if f.conn == conn && f.data.windows(id.len()).any(|w| w == id.as_bytes()) {
                        return restart;
                    }
                }
                Incoming::WorkerRestarted(r) => {
                    assert!(restart.is_none(), "a second restart: {r}");
                    restart = Some((r, Instant::now()));
                }
                Incoming::Pending => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn options() -> Options {
        Options::new().stderr(StderrMode::Inherit)
    }

    /// Spawn, load, marker: the time until the marker is read.
    fn cold_start(
        worker: &Path,
        transport: Transport,
        cmds: &[SubCommand],
        marker: &(i32, String),
        n: u64,
    ) -> Duration {
        let started = Instant::now();
        let mut b = Broadcaster::spawn_with(Command::new(worker), transport, &options()).expect("spawning");
        send_all(&mut b, cmds);
        let (cmd, id) = marker_event(n);
        send_all(&mut b, &[cmd]);
        assert!(await_marker(&mut b, marker.0, &id).is_none());
        started.elapsed()
    }

    /// Whether `pid` has exited (a zombie, its fds closed) or is gone.
    fn exited(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat[stat.rfind(')').map_or(0, |i| i + 1)..]
                .split_whitespace()
                .next()
                .is_some_and(|state| state == "Z" || state == "X"),
        }
    }

    struct Recovery {
        /// Kill to marker read.
        total: Duration,
        /// Kill to `WorkerRestarted` read.
        restarted: Duration,
        /// Kill to the worker's exit (its fds closed by the kernel).
        exited: Duration,
        /// The supervised handle's own cold start (spawn, load, marker).
        supervised_cold: Duration,
        bytes_per_sub: f64,
        restart: Restart,
    }

    fn recovery(
        worker: &Path,
        transport: Transport,
        cmds: &[SubCommand],
        marker: &(i32, String),
        n: u64,
    ) -> Recovery {
        let started = Instant::now();
        let path = worker.to_path_buf();
        let mut b = Broadcaster::spawn_supervised(
            move || Command::new(&path),
            transport,
            &options(),
            Supervision::new(),
        )
        .expect("spawning supervised");
        send_all(&mut b, cmds);
        let (cmd, id) = marker_event(n);
        send_all(&mut b, &[cmd]);
        assert!(await_marker(&mut b, marker.0, &id).is_none());
        let supervised_cold = started.elapsed();
        let mirror = b.supervisor().expect("supervised").mirror();
        let bytes_per_sub = mirror.approx_heap_bytes() as f64 / mirror.subscriptions() as f64;

        let pid = b.pid().expect("a child");
        let killed = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill -9");
        while !exited(pid) {
            assert!(killed.elapsed() < PATIENCE, "worker {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_micros(50));
        }
        let exited_after = killed.elapsed();
        let (cmd, id) = marker_event(n + 1);
        send_all(&mut b, &[cmd]);
        let _ = b.flush();
        let (restart, at) =
            await_marker(&mut b, marker.0, &id).expect("no WorkerRestarted before the marker");
        let total = killed.elapsed();
        Recovery {
            total,
            restarted: at - killed,
            exited: exited_after,
            supervised_cold,
            bytes_per_sub,
            restart,
        }
    }

    // ---- steady-state throughput -------------------------------------------

    /// Waits until the handle's fds are ready (read, or write while queued),
    /// no later than its next supervision deadline.
    fn wait(b: &Broadcaster) {
        let mut timeout = Duration::from_millis(100);
        if let Some(at) = b.next_deadline() {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        let mut fds = vec![PollFd::new(b.read_fd(), PollFlags::POLLIN)];
        if b.wants_write()
            && let Some(fd) = b.write_fd()
        {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }

    /// Fans out `events` then the marker `end`, as an event loop does, and
    /// reads until the marker's frame. Returns the frames read before it.
    fn pump(b: &mut Broadcaster, events: &[Bytes], end: (SubCommand, String), marker_conn: i32) -> usize {
        let (end_cmd, end_id) = end;
        let mut frames = 0;
        let mut next = 0;
        loop {
            while next <= events.len() {
                let result = if next < events.len() {
                    b.fanout(events[next].clone(), -1, BcastFlags::EMPTY)
                } else {
                    b.send(&end_cmd)
                };
                match result {
                    Ok(()) => next += 1,
                    Err(e) if e.is_retryable() => break,
                    Err(e) => panic!("fanout: {e}"),
                }
            }
            b.flush().expect("flushing");
            loop {
                match b.read_frame().expect("reading") {
                    Incoming::Frame(f) => {
                        if f.conn == marker_conn
                            && f.data.windows(end_id.len()).any(|w| w == end_id.as_bytes())
                        {
                            return frames;
                        }
                        frames += 1;
                    }
                    Incoming::Pending => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            wait(b);
        }
    }

    fn load(b: &mut Broadcaster, cmds: &[SubCommand], marker: &(i32, String), n: u64) {
        send_all(b, cmds);
        let (cmd, id) = marker_event(n);
        send_all(b, &[cmd]);
        assert!(await_marker(b, marker.0, &id).is_none());
    }

    struct Throughput {
        ratio: f64,
        lo: f64,
        hi: f64,
        rate_unsupervised: f64,
        rate_supervised: f64,
        frames_per_event: f64,
    }

    fn throughput(worker: &Path, transport: Transport, events_per_round: usize, rounds: usize) -> Throughput {
        let subs = 1_000;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (cmds, marker) = workload(subs, &mut rng);
        let events = events(events_per_round, subs, &mut rng);
        // As an event loop runs it: a 1 MiB queue (benches/sharded.rs).
        let opts = options().max_queued_bytes(1 << 20);
        let mut plain = Broadcaster::spawn_with(Command::new(worker), transport, &opts).expect("spawning");
        let path = worker.to_path_buf();
        let mut supervised =
            Broadcaster::spawn_supervised(move || Command::new(&path), transport, &opts, Supervision::new())
                .expect("spawning supervised");
        load(&mut plain, &cmds, &marker, 1 << 40);
        load(&mut supervised, &cmds, &marker, 1 << 40);
        let (mut ratios, mut rates) = (Vec::new(), [Vec::new(), Vec::new()]);
        let mut frames = 0;
        for r in 0..rounds {
            let mut spent = [Duration::ZERO; 2];
            let mut counted = [0; 2];
            let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let b = if which == 0 { &mut plain } else { &mut supervised };
                let started = Instant::now();
                counted[which] = pump(b, &events, marker_event((2 << 40) + r as u64), marker.0);
                spent[which] = started.elapsed();
            }
            assert_eq!(
                counted[0], counted[1],
                "both handles must deliver the same frames"
            );
            frames += counted[0];
            ratios.push(spent[1].as_secs_f64() / spent[0].as_secs_f64());
            for which in 0..2 {
                rates[which].push(events_per_round as f64 / spent[which].as_secs_f64());
            }
        }
        let restarts = supervised.supervisor().map_or(0, |s| s.restarts());
        assert_eq!(
            restarts, 0,
            "the supervised worker restarted during the throughput rounds"
        );
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let [plain_rates, supervised_rates] = rates;
        Throughput {
            ratio: median(ratios),
            lo,
            hi,
            rate_unsupervised: median(plain_rates),
            rate_supervised: median(supervised_rates),
            frames_per_event: frames as f64 / (events_per_round * rounds) as f64,
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn ms(d: f64) -> String {
        format!("{:.1} ms", d * 1e3)
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let (mut bench, mut quick) = (false, false);
        let mut reps = None;
        let mut rounds = None;
        let mut only: Option<Vec<usize>> = None;
        let mut transport = Transport::Stdio;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" => quick = true,
                "--socketpair" => transport = Transport::SocketPair,
                "--reps" => reps = args.next().and_then(|n| n.parse().ok()),
                "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()),
                "--sizes" => {
                    only = args.next().map(|l| {
                        l.split(',')
                            .map(|n| n.parse().expect("--sizes N,N,..."))
                            .collect()
                    })
                }
                _ => {}
            }
        }
        // (sizes, repetitions, throughput events per round, rounds)
        let (sizes, default_reps, events_per_round, default_rounds): (&[usize], usize, usize, usize) =
            if !bench {
                (&[1_000], 1, 2_000, 1)
            } else if quick {
                (&[1_000, 10_000, 100_000], 3, 20_000, 3)
            } else {
                (&[1_000, 10_000, 100_000], 9, 100_000, 7)
            };
        let sizes: &[usize] = only.as_deref().unwrap_or(sizes);
        let reps: usize = reps.unwrap_or(default_reps).max(1);
        let rounds: usize = rounds.unwrap_or(default_rounds).max(1);
        let exe = std::env::current_exe().expect("the bench binary's path");
        let worker: PathBuf = broadcast_worker::locate::locate(&exe).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();

        // The first restart's delay, part of every recovery measured here.
        let backoff = Supervision::new().backoff_bounds().0.as_secs_f64();
        if bench {
            println!(
                "{transport:?}; {reps} repetitions per size, medians; default Supervision (first backoff {})",
                ms(backoff)
            );
            println!(
                "{:>7} | {:>10} | {:>10} {:>7} | {:>13} {:>7} | {:>8} | {:>11} | {:>10} {:>6} | {:>10}",
                "subs",
                "cold start",
                "recovery",
                "ratio",
                "w/o backoff",
                "ratio",
                "exited",
                "Restarted",
                "sup. cold",
                "ratio",
                "mirror/sub"
            );
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut marker_n = 0u64;
        for &n in sizes {
            let (cmds, marker) = workload(n, &mut rng);
            // cold, recovery, recovery/cold, (recovery - backoff)/cold,
            // kill→exited, kill→Restarted, supervised cold, its ratio.
            let mut m: [Vec<f64>; 8] = Default::default();
            let mut per_sub = 0.0;
            for rep in 0..reps {
                marker_n += 10;
                let mut c = Duration::ZERO;
                let mut r = None;
                let order: [bool; 2] = if rep % 2 == 0 {
                    [true, false]
                } else {
                    [false, true]
                };
                for cold_first in order {
                    if cold_first {
                        c = cold_start(&worker, transport, &cmds, &marker, marker_n);
                    } else {
                        r = Some(recovery(&worker, transport, &cmds, &marker, marker_n + 2));
                    }
                }
                let r = r.expect("the recovery arm ran");
                assert_eq!(r.restart.number, 1, "{}", r.restart);
                assert_eq!(r.restart.replayed.subs, n, "{}", r.restart);
                assert_eq!(r.restart.replayed.conns, n / 10, "{}", r.restart);
                assert_eq!(r.restart.carried_commands, 1, "{}", r.restart);
                let (c, total) = (c.as_secs_f64(), r.total.as_secs_f64());
                let sup_cold = r.supervised_cold.as_secs_f64();
                let row = [
                    c,
                    total,
                    total / c,
                    (total - backoff) / c,
                    r.exited.as_secs_f64(),
                    r.restarted.as_secs_f64(),
                    sup_cold,
                    sup_cold / c,
                ];
                for (v, x) in m.iter_mut().zip(row) {
                    v.push(x);
                }
                per_sub = r.bytes_per_sub;
            }
            if bench {
                let [cold, rec, ratio, ratio_nb, exited, restarted, sup_cold, sup_ratio] = m.map(median);
                println!(
                    "{n:>7} | {:>10} | {:>10} {:>6.2}x | {:>13} {:>6.2}x | {:>8} | {:>11} | {:>10} {:>5.2}x | {:>8.0} B",
                    ms(cold),
                    ms(rec),
                    ratio,
                    ms(rec - backoff),
                    ratio_nb,
                    ms(exited),
                    ms(restarted),
                    ms(sup_cold),
                    sup_ratio,
                    per_sub
                );
            }
        }
        if bench {
            println!(
                "recovery: kill -9 to the marker's frame; w/o backoff: minus the first backoff; exited, Restarted: kill to the \
                 worker's exit, to Incoming::WorkerRestarted; sup. cold: the supervised handle's own cold start"
            );
        }

        let t = throughput(&worker, transport, events_per_round, rounds);
        if !bench {
            println!("recovery: ran (smoke test: pass --bench for figures)");
            return;
        }
        println!(
            "fan-out, 1,000 subs, {events_per_round} events x {rounds} rounds, {:.2} frames/event: supervised / unsupervised time {:.3}x (median; rounds {:.3}x..{:.3}x); {:.0} vs {:.0} events/s",
            t.frames_per_event, t.ratio, t.lo, t.hi, t.rate_supervised, t.rate_unsupervised
        );
        println!("bench wall time {:.1?}", started.elapsed());
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
