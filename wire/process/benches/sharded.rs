//! Events per second through a `ShardedBroadcaster` of K = 1 and K = 2
//! reference workers holding 100,000 subscriptions, in the same run, as a
//! ratio; with each shard's peak RSS and the parent's own CPU time.
//!
//! ```text
//! cargo bench -p broadcast-process --bench sharded
//! cargo bench -p broadcast-process --bench sharded -- --rounds 9 --socketpair --tag-pool 1250
//! ```
//!
//! The workers are the reference worker binary, `broadcast-worker`, found
//! (and under cargo built first) next to this bench by
//! `broadcast_worker::locate`. Run the bench binary directly, outside cargo,
//! only after building it: `cargo build --release -p broadcast-worker` with
//! the same target directory.
//!
//! Workload: the mixed subscriptions of `conformance/worker/benches/e2e.rs`
//! (a quarter each of `{"authors":[A]}`, `{"#p":[P],"kinds":[4,1059]}`,
//! `{"kinds":[1,6],"authors":[A]}`, `{"#t":[T],"since":S}`), 10 per
//! connection on 10,000 connections (conns 16.., so with K = 2 each shard
//! holds half), value pools sized so an event matches a handful of
//! subscriptions; then rounds of 20,000 events.
//!
//! Both handles are spawned and loaded once; then the rounds alternate
//! (K = 1 first on even rounds, K = 2 first on odd ones). A round is an
//! event loop as a relay runs it: `fanout` until `Backpressure`, `flush`,
//! read every frame that is ready, `poll` the shards' fds; it ends when a
//! probe event sent after the last one has come back from every shard
//! (each worker answers in order, so every frame before it has been read).
//! The parent reads and decodes every frame but writes none to a socket.
//! The figure is the median over the rounds of `time(K=1) / time(K=2)`.
//! Without `--bench` (as under `cargo test --benches`) it runs a tiny
//! smoke version.

#[cfg(target_os = "linux")]
mod workload;

#[cfg(target_os = "linux")]
mod linux {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use broadcast_process::broadcaster::sharded::{ShardedBroadcaster, ShardedIncoming};
    use broadcast_process::broadcaster::{Options, StderrMode, Transport};
    use broadcast_wire::BcastFlags;
    use bytes::Bytes;

    use crate::workload::{Rng, SINCE, filter, hex_key};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    const FIRST_CONN: i32 = 16;
    const PROBE_CONN: i32 = 1_000_000;

    struct Sizes {
        subs: usize,
        events: usize,
        rounds: usize,
    }

    /// (conn, sub_id, REQ) of every subscription.
    fn subscriptions(n: usize, hashtags: usize, rng: &mut Rng) -> Vec<(i32, String, String)> {
        let authors = n / 4;
        (0..n)
            .map(|i| {
                let filter = filter(i, authors, hashtags, rng);
                let sub = format!("sub{}", i % 10);
                let req = format!(r#"["REQ","{sub}",{filter}]"#);
                (FIRST_CONN + (i / 10) as i32, sub, req)
            })
            .collect()
    }

    fn events(n: usize, subs: usize, hashtags: usize, rng: &mut Rng) -> Vec<Bytes> {
        let authors = subs / 4;
        (0..n)
            .map(|i| {
                let kind = if i % 2 == 0 { 1 } else { 4 };
                format!(
                    r#"["EVENT",{{"id":"{:064x}","pubkey":"{}","created_at":{},"kind":{kind},"tags":[["p","{}"],["t","tag{}"],["e","{:064x}"]],"content":"sharded benchmark event number {i}","sig":"{}"}}]"#,
                    i + 1,
                    hex_key(rng.below(authors)),
                    SINCE + 50,
                    hex_key(rng.below(authors)),
                    rng.below(hashtags),
                    i * 7,
                    "5".repeat(128)
                )
                .into()
            })
            .collect()
    }

    fn probe_event(round: usize) -> Bytes {
        format!(
            r#"["EVENT",{{"id":"{:064x}","pubkey":"{}","created_at":0,"kind":29999,"tags":[],"content":"","sig":"{}"}}]"#,
            round + 1,
            "e".repeat(64),
            "5".repeat(128)
        )
        .into()
    }

    /// Waits until a shard's fd is ready (read, or write while queued).
    fn wait(b: &ShardedBroadcaster) {
        let mut fds: Vec<PollFd<'_>> = b
            .read_fds()
            .map(|(_, fd)| PollFd::new(fd, PollFlags::POLLIN))
            .chain(b.write_fds().map(|(_, fd)| PollFd::new(fd, PollFlags::POLLOUT)))
            .collect();
        let _ = poll(&mut fds, PollTimeout::from(100u16));
    }

    /// Reads every ready frame; counts them and the probes among them.
    fn read_ready(b: &mut ShardedBroadcaster, frames: &mut usize, probes: &mut usize) {
        loop {
            match b.read_frame().expect("reading the shards") {
                ShardedIncoming::Frame { frame, .. } => {
                    *frames += 1;
                    if frame.conn >= PROBE_CONN {
                        *probes += 1;
                    }
                }
                ShardedIncoming::Pending => return,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends `events` then a probe, as an event loop would, and reads until
    /// the probe has come back from every shard. Returns the frames read.
    fn pump(b: &mut ShardedBroadcaster, events: &[Bytes], probe: Bytes) -> usize {
        let (mut frames, mut probes) = (0, 0);
        let mut next = 0;
        let total = events.len() + 1;
        while probes < b.shard_count() {
            while next < total {
                let event = if next < events.len() {
                    events[next].clone()
                } else {
                    probe.clone()
                };
                match b.fanout(event, -1, BcastFlags::EMPTY) {
                    Ok(()) => next += 1,
                    Err(e) if e.error.is_retryable() => break,
                    Err(e) => panic!("fanout: {e}"),
                }
            }
            b.flush().expect("flushing the shards");
            read_ready(b, &mut frames, &mut probes);
            if probes < b.shard_count() {
                wait(b);
            }
        }
        frames - probes
    }

    /// Spawns K workers and loads the subscriptions, plus one probe
    /// subscription per shard; returns once every shard has applied them.
    fn load(
        worker: &Path,
        k: usize,
        subs: &[(i32, String, String)],
        transport: Transport,
    ) -> ShardedBroadcaster {
        let opts = Options::new()
            .max_queued_bytes(1 << 20)
            .stderr(StderrMode::Inherit);
        let shards = std::num::NonZeroUsize::new(k).unwrap();
        let mut b =
            ShardedBroadcaster::spawn(shards, |_| std::process::Command::new(worker), transport, &opts)
                .expect("spawning the reference workers");
        let mut last_conn = None;
        let send = |b: &mut ShardedBroadcaster, f: &mut dyn FnMut(&mut ShardedBroadcaster) -> bool| {
            while !f(b) {
                b.flush_blocking().expect("flushing");
            }
        };
        for (conn, sub, req) in subs {
            if last_conn != Some(*conn) {
                send(&mut b, &mut |b| b.on_connect(*conn, false).is_ok());
                last_conn = Some(*conn);
            }
            let req = Bytes::from(req.clone());
            send(&mut b, &mut |b| b.on_subscribe(*conn, sub, req.clone()).is_ok());
        }
        for shard in 0..k as i32 {
            let conn = PROBE_CONN + shard;
            send(&mut b, &mut |b| b.on_connect(conn, false).is_ok());
            send(&mut b, &mut |b| {
                b.on_subscribe(conn, "probe", r#"["REQ","probe",{"kinds":[29999]}]"#)
                    .is_ok()
            });
        }
        pump(&mut b, &[], probe_event(usize::MAX - 1));
        b
    }

    /// User + system CPU time from a /proc stat file (USER_HZ = 100).
    fn cpu(stat_path: &str) -> Duration {
        let Ok(stat) = std::fs::read_to_string(stat_path) else {
            return Duration::ZERO;
        };
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }

    fn vm_hwm_mib(pid: u32) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }

    #[derive(Default, Clone, Copy)]
    struct Spent {
        wall: Duration,
        parent_cpu: Duration,
        workers_cpu: Duration,
        frames: usize,
    }

    fn round(b: &mut ShardedBroadcaster, events: &[Bytes], probe: Bytes) -> Spent {
        let stats: Vec<String> = b
            .pids()
            .iter()
            .map(|p| format!("/proc/{}/stat", p.unwrap()))
            .collect();
        let workers = |stats: &[String]| stats.iter().map(|s| cpu(s)).sum::<Duration>();
        let (parent0, workers0) = (cpu("/proc/self/stat"), workers(&stats));
        let started = Instant::now();
        let frames = pump(b, events, probe);
        Spent {
            wall: started.elapsed(),
            parent_cpu: cpu("/proc/self/stat").saturating_sub(parent0),
            workers_cpu: workers(&stats).saturating_sub(workers0),
            frames,
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let mut bench = false;
        let mut rounds = 7;
        let mut transport = Transport::Stdio;
        let mut tag_pool = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--socketpair" => transport = Transport::SocketPair,
                "--tag-pool" => tag_pool = args.next().and_then(|n| n.parse().ok()),
                "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N"),
                _ => {}
            }
        }
        let sizes = if bench {
            Sizes {
                subs: 100_000,
                events: 20_000,
                rounds,
            }
        } else {
            Sizes {
                subs: 1_000,
                events: 200,
                rounds: 2,
            }
        };
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // Hashtags: by default 4 `#t` subscriptions per tag (a handful of
        // frames per event); a smaller pool makes each event fan out wider.
        let hashtags = tag_pool.unwrap_or(sizes.subs / 16).max(1);
        let subs = subscriptions(sizes.subs, hashtags, &mut rng);
        let events = events(sizes.events, sizes.subs, hashtags, &mut rng);
        let exe = std::env::current_exe().expect("the bench binary's path");
        let worker = broadcast_worker::locate::locate(&exe).unwrap_or_else(|e| panic!("{e}"));
        let load_started = Instant::now();
        let mut one = load(&worker, 1, &subs, transport);
        let load_one = load_started.elapsed();
        let load_started = Instant::now();
        let mut two = load(&worker, 2, &subs, transport);
        let load_two = load_started.elapsed();

        let (mut ratios, mut rates) = (Vec::new(), [Vec::new(), Vec::new()]);
        let mut totals = [Spent::default(); 2];
        for r in 0..sizes.rounds {
            let mut spent = [Spent::default(); 2];
            let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let b = if which == 0 { &mut one } else { &mut two };
                spent[which] = round(b, &events, probe_event(r));
            }
            assert_eq!(
                spent[0].frames, spent[1].frames,
                "K=1 and K=2 must write the same frames"
            );
            ratios.push(spent[0].wall.as_secs_f64() / spent[1].wall.as_secs_f64());
            for which in 0..2 {
                rates[which].push(sizes.events as f64 / spent[which].wall.as_secs_f64());
                totals[which].wall += spent[which].wall;
                totals[which].parent_cpu += spent[which].parent_cpu;
                totals[which].workers_cpu += spent[which].workers_cpu;
                totals[which].frames += spent[which].frames;
            }
        }
        if !bench {
            println!("sharded: ran (smoke test: pass --bench for figures)");
            return;
        }
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "{:?}; {} subscriptions on {} conns, {hashtags} hashtags; {} events per round, {:.2} frames per event; {} rounds",
            transport,
            sizes.subs,
            sizes.subs / 10,
            sizes.events,
            totals[0].frames as f64 / (sizes.events * sizes.rounds) as f64,
            sizes.rounds
        );
        println!("load (spawn + subscriptions applied): K=1 {load_one:.2?}, K=2 {load_two:.2?}");
        println!(
            "K=2 / K=1 events/s: {:.2}x (median; rounds {lo:.2}x..{hi:.2}x)",
            median(ratios)
        );
        for (which, b) in [(0, &one), (1, &two)] {
            let t = totals[which];
            let per_event = |d: Duration| d.as_secs_f64() * 1e6 / (sizes.events * sizes.rounds) as f64;
            let rss: Vec<String> = b
                .pids()
                .iter()
                .enumerate()
                .map(|(s, p)| format!("shard {s} {:.1} MiB", vm_hwm_mib(p.unwrap())))
                .collect();
            println!(
                "K={}: {:.0} events/s (median); CPU µs per event: parent {:.2}, workers {:.2}; parent CPU {:.2?} over {:.2?} wall; VmHWM {}",
                which + 1,
                median(rates[which].clone()),
                per_event(t.parent_cpu),
                per_event(t.workers_cpu),
                t.parent_cpu,
                t.wall,
                rss.join(", ")
            );
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
