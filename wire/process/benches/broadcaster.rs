//! Commands per second through a `Broadcaster` into a worker that reads and
//! discards, against writing the same pre-encoded bytes straight to the
//! same kind of fd into the same kind of child, in the same run; and
//! through an `AsyncBroadcaster` against the sync `Broadcaster`, in the
//! same run.
//!
//! ```text
//! cargo bench -p broadcast-process --bench broadcaster --features tokio
//! cargo bench -p broadcast-process --bench broadcaster -- --rounds 31 stdio_batch
//! cargo bench -p broadcast-process --bench broadcaster --features tokio -- async
//! ```
//!
//! The async scenarios need the `tokio` feature; without it they are
//! skipped (and say so).
//!
//! The worker is this bench binary itself: run with
//! `BROADCAST_PROCESS_BENCH_WORKER` set in its environment, `main` is the
//! test echo worker of `tests/handles/echo_worker.rs` (one implementation,
//! shared with the crate's tests), here always `--discard`: it reads and
//! throws away its input until end of input.
//!
//! Not criterion: criterion measures one function after the other, and on
//! a shared two-core machine the load changes between the two more than the
//! difference being measured. Here the two arms alternate, round after
//! round (which goes first alternates too), each round measures both for
//! the same amount of work, and the figure reported is the median over the
//! rounds of `raw time / broadcaster time`: the broadcaster's throughput as
//! a share of raw. Without `--bench` (as under `cargo test --benches`) it
//! runs one short round of each scenario as a smoke test.
//!
//! Every command is a Bcast whose frame is exactly 200 bytes on the wire
//! (5-byte header, 14 fixed bytes, a 181-byte EVENT), 1,000 commands per
//! batch. The raw arm always writes the batch's 200,000 pre-encoded bytes
//! (or, per command, 200 of them) with blocking `write_all`; a timed run of
//! either arm ends once every byte has been handed to the kernel.
//! Scenarios, by how the Broadcaster is driven:
//!
//! - `stdio_batch_blocking` (the goal: at least 80% of raw): the simplest
//!   caller, default options: 1,000 `send`s, then `flush_blocking`.
//! - `stdio_stream`: as an event loop does, with a 1 MiB queue: `send` each
//!   command; when one is refused with `Backpressure`, wait until the fd is
//!   writable, `flush`, and send it again; after each batch, a non-blocking
//!   `flush`. The worker reads while the next commands are encoded. (With
//!   the default 8 MiB the queue stays nearly full, its data falls out of
//!   the cache and the buffer compacts often: measured slower.)
//! - `socketpair_stream`: the same over a socketpair (`--fd 3`).
//! - `stdio_per_command`: `send` and `flush` for every command, nothing
//!   coalesced: the queue's worst case (raw: one 200-byte `write_all` each).
//!
//! (`stdio_pre_encoded`, which queued the batch's pre-encoded bytes with
//! `Broadcaster::send_raw`, is gone with `send_raw`: the handle queues
//! commands only, and bytes written to a copy of its fd would bypass the
//! queue, which is what the raw arm already measures.)
//!
//! The async scenarios compare an `AsyncBroadcaster` (a current-thread tokio
//! runtime, `send(..).await` for each command, then `flush().await`) with
//! the sync `Broadcaster` in `stdio_stream`'s way (the baseline), both with
//! the 1 MiB queue (the goal: at least 80% of sync):
//!
//! - `async_stdio_stream`, `async_socketpair_stream`.

#[cfg(unix)]
mod unix {
    use std::hint::black_box;
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    #[cfg(feature = "tokio")]
    use broadcast_process::async_broadcaster::AsyncBroadcaster;
    use broadcast_process::broadcaster::{
        Broadcaster, FlushStatus, Options, SendError, StderrMode, Transport,
    };
    use broadcast_wire::{BcastFlags, Message, SubCommand};
    use bytes::Bytes;
    use command_fds::{CommandFdExt, FdMapping};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    /// Set in the environment of the child that this binary spawns as its
    /// worker; `main` then runs the echo worker instead of the bench.
    pub const WORKER_ENV: &str = "BROADCAST_PROCESS_BENCH_WORKER";
    const FRAME_LEN: usize = 200;
    const EVENT_LEN: usize = FRAME_LEN - 5 - SubCommand::FIXED_LEN;
    /// Commands per batch.
    const BATCH: usize = 1000;
    /// Queue limit of the streaming scenarios.
    const STREAM_QUEUE: usize = 1 << 20;
    /// Each arm's share of a round, roughly.
    const ROUND_TIME: Duration = Duration::from_millis(100);

    fn command() -> SubCommand {
        SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: Bytes::from(vec![b'e'; EVENT_LEN]),
        }
    }

    fn pre_encoded(count: usize) -> Vec<u8> {
        let cmd = command();
        assert_eq!(cmd.framed_len(), FRAME_LEN);
        let mut wire = Vec::with_capacity(count * FRAME_LEN);
        for _ in 0..count {
            cmd.encode_framed(&mut wire);
        }
        wire
    }

    /// This binary, re-run as the echo worker reading and discarding.
    fn discard_worker() -> Command {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut cmd = Command::new(exe);
        cmd.env(WORKER_ENV, "1").arg("--discard").stderr(Stdio::null());
        cmd
    }

    /// One side of a comparison: a child that discards, and how one batch
    /// of commands is sent to it.
    trait Arm {
        /// The child's pid, to read its CPU time.
        fn pid(&self) -> u32;
        fn batch(&mut self);
        /// Hands everything still queued to the kernel.
        fn settle(&mut self) {}
        /// Ends the input and checks the child read everything cleanly.
        fn finish(self: Box<Self>);
    }

    /// The raw baseline: pre-encoded bytes, plain blocking `write_all`.
    struct Raw {
        child: Child,
        input: Box<dyn Write>,
        wire: Vec<u8>,
        /// Bytes per `write_all` call.
        chunk: usize,
    }

    impl Raw {
        fn stdio(chunk: usize) -> Raw {
            let mut child = discard_worker()
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn the discarding worker");
            let stdin = child.stdin.take().expect("piped stdin");
            Raw {
                child,
                input: Box::new(stdin),
                wire: pre_encoded(BATCH),
                chunk,
            }
        }

        /// Set up as `Transport::SocketPair` does, written to directly.
        fn socketpair(chunk: usize) -> Raw {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let mut cmd = discard_worker();
            cmd.fd_mappings(vec![FdMapping {
                parent_fd: OwnedFd::from(theirs),
                child_fd: 3,
            }])
            .expect("fd mapping");
            cmd.args(["--fd", "3"]);
            let child = cmd.spawn().expect("spawn the discarding worker");
            drop(cmd);
            Raw {
                child,
                input: Box::new(ours),
                wire: pre_encoded(BATCH),
                chunk,
            }
        }
    }

    impl Arm for Raw {
        fn pid(&self) -> u32 {
            self.child.id()
        }

        fn batch(&mut self) {
            for chunk in self.wire.chunks(self.chunk) {
                self.input.write_all(black_box(chunk)).expect("write");
            }
        }

        fn finish(self: Box<Self>) {
            let Raw { mut child, input, .. } = *self;
            drop(input);
            let status = child.wait().expect("wait");
            assert!(status.success(), "worker failed: {status}");
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Stream,
        BatchBlocking,
        PerCommand,
    }

    /// The Broadcaster, used as a caller would.
    struct Handle {
        b: Broadcaster,
        cmd: SubCommand,
        mode: Mode,
    }

    impl Handle {
        fn spawn(transport: Transport, mode: Mode) -> Handle {
            let mut opts = Options::new().stderr(StderrMode::Null);
            if mode == Mode::Stream {
                opts = opts.max_queued_bytes(STREAM_QUEUE);
            }
            let b = Broadcaster::spawn_with(discard_worker(), transport, &opts).expect("spawn");
            Handle {
                b,
                cmd: command(),
                mode,
            }
        }

        /// Waits until the write fd can take more, as an event loop's poll.
        fn wait_writable(&self) {
            let fd = self.b.write_fd().expect("open");
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            poll(&mut fds, PollTimeout::NONE).expect("poll");
        }

        fn send_when_room(&mut self) {
            loop {
                match self.b.send(black_box(&self.cmd)) {
                    Ok(()) => return,
                    Err(SendError::Backpressure(_)) => {
                        self.wait_writable();
                        self.b.flush().expect("flush");
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }

    impl Arm for Handle {
        fn pid(&self) -> u32 {
            self.b.pid().expect("spawned")
        }

        fn batch(&mut self) {
            match self.mode {
                Mode::Stream => {
                    for _ in 0..BATCH {
                        self.send_when_room();
                    }
                    self.b.flush().expect("flush");
                }
                Mode::BatchBlocking => {
                    for _ in 0..BATCH {
                        self.b.send(black_box(&self.cmd)).expect("queue");
                    }
                    self.b.flush_blocking().expect("flush");
                }
                Mode::PerCommand => {
                    for _ in 0..BATCH {
                        self.b.send(black_box(&self.cmd)).expect("queue");
                        // Like raw's blocking write: wait only when full.
                        if self.b.flush().expect("flush") == FlushStatus::WouldBlock {
                            self.b.flush_blocking().expect("flush");
                        }
                    }
                }
            }
        }

        fn settle(&mut self) {
            self.b.flush_blocking().expect("flush");
        }

        fn finish(self: Box<Self>) {
            let mut b = self.b;
            b.close_write().expect("queue is empty");
            let status = b.wait_exit(Duration::from_secs(30)).expect("worker exits");
            assert!(status.success(), "worker failed: {status}");
        }
    }

    /// The async handle, on its own current-thread runtime, used as a tokio
    /// relay's hub would.
    #[cfg(feature = "tokio")]
    struct AsyncHandle {
        // Declared first: dropped (deregistered) before the runtime.
        b: AsyncBroadcaster,
        cmd: SubCommand,
        rt: tokio::runtime::Runtime,
    }

    #[cfg(feature = "tokio")]
    impl AsyncHandle {
        fn spawn(transport: Transport) -> AsyncHandle {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let opts = Options::new()
                .stderr(StderrMode::Null)
                .max_queued_bytes(STREAM_QUEUE);
            let b = {
                let _in_runtime = rt.enter();
                AsyncBroadcaster::spawn_with(discard_worker(), transport, &opts).expect("spawn")
            };
            AsyncHandle {
                b,
                cmd: command(),
                rt,
            }
        }
    }

    #[cfg(feature = "tokio")]
    impl Arm for AsyncHandle {
        fn pid(&self) -> u32 {
            self.b.pid().expect("spawned")
        }

        fn batch(&mut self) {
            let AsyncHandle { b, cmd, rt } = self;
            rt.block_on(async {
                for _ in 0..BATCH {
                    b.send(black_box(&*cmd)).await.expect("queue");
                }
            });
        }

        fn settle(&mut self) {
            let AsyncHandle { b, rt, .. } = self;
            rt.block_on(b.flush()).expect("flush");
        }

        fn finish(self: Box<Self>) {
            let AsyncHandle { mut b, rt, .. } = *self;
            rt.block_on(async {
                b.flush().await.expect("flush");
                b.close_write().expect("queue is empty");
                let status = b.wait_exit(Duration::from_secs(30)).await.expect("worker exits");
                assert!(status.success(), "worker failed: {status}");
            });
        }
    }

    struct Scenario {
        name: &'static str,
        /// What the arm is measured against, and what the arm is.
        names: (&'static str, &'static str),
        baseline: fn() -> Box<dyn Arm>,
        arm: fn() -> Box<dyn Arm>,
    }

    const RAW_VS_SYNC: (&str, &str) = ("raw", "broadcaster");
    #[cfg(feature = "tokio")]
    const SYNC_VS_ASYNC: (&str, &str) = ("sync", "async");
    /// The scenarios that need the `tokio` feature.
    const ASYNC_SCENARIOS: [&str; 2] = ["async_stdio_stream", "async_socketpair_stream"];

    fn scenarios() -> Vec<Scenario> {
        vec![
            Scenario {
                name: "stdio_batch_blocking",
                names: RAW_VS_SYNC,
                baseline: || Box::new(Raw::stdio(BATCH * FRAME_LEN)),
                arm: || Box::new(Handle::spawn(Transport::Stdio, Mode::BatchBlocking)),
            },
            Scenario {
                name: "stdio_stream",
                names: RAW_VS_SYNC,
                baseline: || Box::new(Raw::stdio(BATCH * FRAME_LEN)),
                arm: || Box::new(Handle::spawn(Transport::Stdio, Mode::Stream)),
            },
            Scenario {
                name: "socketpair_stream",
                names: RAW_VS_SYNC,
                baseline: || Box::new(Raw::socketpair(BATCH * FRAME_LEN)),
                arm: || Box::new(Handle::spawn(Transport::SocketPair, Mode::Stream)),
            },
            Scenario {
                name: "stdio_per_command",
                names: RAW_VS_SYNC,
                baseline: || Box::new(Raw::stdio(FRAME_LEN)),
                arm: || Box::new(Handle::spawn(Transport::Stdio, Mode::PerCommand)),
            },
            #[cfg(feature = "tokio")]
            Scenario {
                name: "async_stdio_stream",
                names: SYNC_VS_ASYNC,
                baseline: || Box::new(Handle::spawn(Transport::Stdio, Mode::Stream)),
                arm: || Box::new(AsyncHandle::spawn(Transport::Stdio)),
            },
            #[cfg(feature = "tokio")]
            Scenario {
                name: "async_socketpair_stream",
                names: SYNC_VS_ASYNC,
                baseline: || Box::new(Handle::spawn(Transport::SocketPair, Mode::Stream)),
                arm: || Box::new(AsyncHandle::spawn(Transport::SocketPair)),
            },
        ]
    }

    /// CPU time (user + system) of a thread or process, from /proc, where
    /// it is counted in USER_HZ = 100 ticks per second: coarse, but summed
    /// over a whole scenario it tells where the time went.
    fn cpu(stat_path: &str) -> Duration {
        let Ok(stat) = std::fs::read_to_string(stat_path) else {
            return Duration::ZERO;
        };
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }

    #[derive(Default, Clone, Copy)]
    struct Spent {
        wall: Duration,
        parent_cpu: Duration,
        worker_cpu: Duration,
    }

    fn time(arm: &mut dyn Arm, batches: usize) -> Spent {
        let worker_stat = format!("/proc/{}/stat", arm.pid());
        let (parent0, worker0) = (cpu("/proc/thread-self/stat"), cpu(&worker_stat));
        let started = Instant::now();
        for _ in 0..batches {
            arm.batch();
        }
        arm.settle();
        Spent {
            wall: started.elapsed(),
            parent_cpu: cpu("/proc/thread-self/stat").saturating_sub(parent0),
            worker_cpu: cpu(&worker_stat).saturating_sub(worker0),
        }
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn run(scenario: &Scenario, rounds: usize, smoke: bool) {
        let mut raw: Box<dyn Arm> = (scenario.baseline)();
        let mut handle: Box<dyn Arm> = (scenario.arm)();
        // Warm up both, and size a round so each arm takes about ROUND_TIME.
        let probe = time(raw.as_mut(), 10).wall + time(handle.as_mut(), 10).wall;
        let batches = if smoke {
            2
        } else {
            ((ROUND_TIME.as_secs_f64() * 20.0 / probe.as_secs_f64()) as usize).max(5)
        };
        let (mut shares, mut raw_rates, mut handle_rates) = (Vec::new(), Vec::new(), Vec::new());
        let (mut raw_total, mut handle_total) = (Spent::default(), Spent::default());
        for round in 0..rounds {
            let (r, h) = if round % 2 == 0 {
                let r = time(raw.as_mut(), batches);
                (r, time(handle.as_mut(), batches))
            } else {
                let h = time(handle.as_mut(), batches);
                (time(raw.as_mut(), batches), h)
            };
            let commands = (batches * BATCH) as f64;
            shares.push(r.wall.as_secs_f64() / h.wall.as_secs_f64());
            raw_rates.push(commands / r.wall.as_secs_f64());
            handle_rates.push(commands / h.wall.as_secs_f64());
            for (total, spent) in [(&mut raw_total, r), (&mut handle_total, h)] {
                total.wall += spent.wall;
                total.parent_cpu += spent.parent_cpu;
                total.worker_cpu += spent.worker_cpu;
            }
        }
        raw.finish();
        handle.finish();
        if smoke {
            // An unoptimised build, a few batches: no figure to show.
            println!("{:<23} ran (smoke test: pass --bench for figures)", scenario.name);
            return;
        }
        let (lo, hi) = shares
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let (base_name, arm_name) = scenario.names;
        println!(
            "{:<23} {:>6.1}%  (rounds {:>5.1}%..{:>5.1}%)  {base_name} {:>6.2} M cmd/s  {arm_name} {:>6.2} M cmd/s",
            scenario.name,
            100.0 * median(shares),
            100.0 * lo,
            100.0 * hi,
            median(raw_rates) / 1e6,
            median(handle_rates) / 1e6,
        );
        // CPU per command, over all rounds: where the difference comes from.
        let per_cmd = |d: Duration| d.as_secs_f64() * 1e9 / (rounds * batches * BATCH) as f64;
        println!(
            "{:<23} CPU ns/command: {base_name} parent {:.0} + worker {:.0}; {arm_name} parent {:.0} + worker {:.0}",
            "",
            per_cmd(raw_total.parent_cpu),
            per_cmd(raw_total.worker_cpu),
            per_cmd(handle_total.parent_cpu),
            per_cmd(handle_total.worker_cpu),
        );
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let mut rounds = 21;
        let mut bench = false;
        let mut filters = Vec::new();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => bench = true,
                "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N"),
                other if other.starts_with('-') => {} // other harness flags
                other => filters.push(other.to_owned()),
            }
        }
        let smoke = !bench;
        if smoke {
            rounds = 1;
        }
        println!(
            "scenario                arm/baseline throughput (median of {rounds} rounds, 200-byte commands)"
        );
        let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
        let scenarios = scenarios();
        for scenario in &scenarios {
            if wanted(scenario.name) {
                run(scenario, rounds, smoke);
            }
        }
        for name in ASYNC_SCENARIOS {
            if wanted(name) && !scenarios.iter().any(|s| s.name == name) {
                println!("{name:<23} skipped: needs --features tokio");
            }
        }
    }
}

/// The echo worker of the crate's tests, the one implementation; this
/// bench runs only its `--discard` mode.
#[cfg(unix)]
#[allow(dead_code)] // items the tests use and this bench does not
#[path = "../tests/handles/echo_worker.rs"]
mod echo_worker;

fn main() -> std::process::ExitCode {
    #[cfg(unix)]
    {
        if std::env::var_os(unix::WORKER_ENV).is_some() {
            // SAFETY: the first thing this process does as a worker, before
            // anything takes a descriptor (the fd-safety policy of
            // broadcast_process::worker_io: `--fd N` is taken only if it was
            // inherited).
            #[allow(unsafe_code)]
            let _ = unsafe { broadcast_process::worker_io::init_inherited_fds() };
            return echo_worker::main(std::env::args().skip(1));
        }
        unix::main();
    }
    std::process::ExitCode::SUCCESS
}
