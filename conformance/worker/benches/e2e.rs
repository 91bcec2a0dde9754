//! End-to-end throughput and memory of the release `broadcast-worker`
//! binary over real pipes (stdio), each figure next to a baseline measured
//! in the same run:
//!
//! - throughput: a pre-encoded stream (10,000 mixed subscriptions on 1,000
//!   connections, then 100,000 events that each match a handful) piped
//!   through the worker, its output drained, against `cat` of the same
//!   bytes through the same pipes, and against the same stream decoded and
//!   applied in process (`FrameReader` over the bytes in memory, then
//!   `Worker::handle` into a `Vec<BroadcastFrame>`, each frame built
//!   whole), the arms alternating round by round;
//! - memory: peak RSS (VmHWM) of a worker holding 100,000 single-filter
//!   subscriptions, against the same worker holding none.
//!
//! Run: `cargo bench -p broadcast-worker --bench e2e` (`-- --rounds N`
//! for more rounds than 3; `-- --throughput` skips the memory figures).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broadcast_wire::{
    BcastFlags, BroadcastFrame, FrameReader, FrameWriter, NewFlags, ReadStatus, ReservedFlags, SubCommand,
    SubId,
};

const BIN: &str = env!("CARGO_BIN_EXE_broadcast-worker");
const SUBS: usize = 10_000;
const EVENTS: usize = 100_000;
const RSS_SUBS: usize = 100_000;
const ROUNDS: usize = 3;
const SINCE: u64 = 1_700_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn hex_key(i: usize) -> String {
    format!(
        "{:064x}",
        (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835
    )
}

fn add(conn: i32, sub: &str, filters: &str) -> SubCommand {
    SubCommand::Add {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: SubId::try_from(sub).unwrap(),
        req: format!(r#"["REQ","{sub}",{filters}]"#).into(),
    }
}

fn encode(cmds: impl IntoIterator<Item = SubCommand>) -> Vec<u8> {
    let mut w = FrameWriter::new(Vec::new());
    for c in cmds {
        w.queue_message(&c).unwrap();
    }
    w.flush().unwrap();
    w.into_parts().0
}

/// Connections of 10 subscriptions each, with `filter(i)` for subscription i.
fn registry(n: usize, mut filter: impl FnMut(usize) -> String) -> Vec<u8> {
    encode((0..n).flat_map(|i| {
        let conn = (i / 10) as i32;
        let new = (i % 10 == 0).then_some(SubCommand::New {
            conn,
            flags: NewFlags::EMPTY,
        });
        new.into_iter()
            .chain([add(conn, &format!("sub{}", i % 10), &filter(i))])
    }))
}

/// The fan-out workload of `benches/fanout.rs`, at 10,000 subscriptions.
fn mixed_setup(rng: &mut Rng) -> Vec<u8> {
    let (authors, hashtags) = (SUBS / 4, SUBS / 16);
    registry(SUBS, |i| match i % 4 {
        0 => format!(r#"{{"authors":["{}"]}}"#, hex_key(rng.below(authors))),
        1 => format!(
            r##"{{"#p":["{}"],"kinds":[4,1059]}}"##,
            hex_key(rng.below(authors))
        ),
        2 => format!(
            r#"{{"kinds":[1,6],"authors":["{}"]}}"#,
            hex_key(rng.below(authors))
        ),
        _ => format!(
            r##"{{"#t":["tag{}"],"since":{}}}"##,
            rng.below(hashtags),
            SINCE + rng.below(100) as u64
        ),
    })
}

fn mixed_events(rng: &mut Rng) -> Vec<u8> {
    let (authors, hashtags) = (SUBS / 4, SUBS / 16);
    encode((0..EVENTS).map(|i| {
        let kind = if i % 2 == 0 { 1 } else { 4 };
        let event = format!(
            r#"["EVENT",{{"id":"{:064x}","pubkey":"{}","created_at":{},"kind":{kind},"tags":[["p","{}"],["t","tag{}"],["e","{:064x}"]],"content":"end-to-end benchmark event number {i}","sig":"{}"}}]"#,
            i + 1,
            hex_key(rng.below(authors)),
            SINCE + 50,
            hex_key(rng.below(authors)),
            rng.below(hashtags),
            i * 7,
            "5".repeat(128)
        );
        SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: event.into() }
    }))
}

/// Pipes `input` through `program`, drains its stdout, and returns the wall
/// time from spawn to exit and the number of output bytes.
/// CPU time (user + system) of this process, or of its reaped children.
fn cpu_time(who: nix::sys::resource::UsageWho) -> Duration {
    let usage = nix::sys::resource::getrusage(who).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
}

/// [`pipe_through`], also returning the child's CPU time.
fn pipe_through_cpu(program: &str, input: &[u8]) -> (Duration, usize, Duration) {
    let before = cpu_time(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let (wall, n) = pipe_through(program, input);
    (
        wall,
        n,
        cpu_time(nix::sys::resource::UsageWho::RUSAGE_CHILDREN) - before,
    )
}

fn pipe_through(program: &str, input: &[u8]) -> (Duration, usize) {
    let start = Instant::now();
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(input).unwrap());
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        loop {
            match stdout.read(&mut buf).unwrap() {
                0 => break,
                n => total += n,
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "{program} failed: {status}");
        (start.elapsed(), total)
    })
}

/// The in-process baseline: decode `input` and apply every command with
/// `Worker::handle`, collecting the frames whole (cleared per command).
fn in_process(input: &[u8]) -> (Duration, Duration) {
    let cpu = cpu_time(nix::sys::resource::UsageWho::RUSAGE_SELF);
    let start = Instant::now();
    let mut worker = broadcast_worker::Worker::new();
    let mut reader = FrameReader::new(input);
    let mut frames: Vec<BroadcastFrame> = Vec::new();
    let mut bytes = 0;
    while let ReadStatus::Ready(cmd) = reader.read_message::<SubCommand>().unwrap() {
        frames.clear();
        worker.handle(&cmd.unwrap(), &mut frames);
        bytes += frames.iter().map(|f| f.data.len()).sum::<usize>();
    }
    std::hint::black_box(bytes);
    (
        start.elapsed(),
        cpu_time(nix::sys::resource::UsageWho::RUSAGE_SELF) - cpu,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Count of channel-2 frames in `out` (to report frames per event).
fn count_frames(bytes: &[u8]) -> usize {
    let mut r = FrameReader::new(bytes);
    let mut n = 0;
    while let ReadStatus::Ready(_) = r.read_message::<BroadcastFrame>().unwrap() {
        n += 1;
    }
    n
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Peak RSS of a worker after it applied `setup`: a probe subscription and
/// event are appended, and VmHWM is read once the probe's frame is back
/// (so every command before it has been applied), before input ends.
fn peak_rss_kib(setup: &[u8]) -> u64 {
    let probe_conn = i32::MAX;
    let probe = encode([
        SubCommand::New { conn: probe_conn, flags: NewFlags::EMPTY },
        add(probe_conn, "probe", r#"{"kinds":[29999]}"#),
        SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: format!(
                r#"["EVENT",{{"id":"{0}","pubkey":"{0}","created_at":0,"kind":29999,"tags":[],"content":"","sig":"{1}"}}]"#,
                "e".repeat(64),
                "5".repeat(128)
            )
            .into(),
        },
    ]);
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let setup = setup.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&setup).unwrap();
        stdin.write_all(&probe).unwrap();
        stdin
    });
    let mut reader = FrameReader::new(stdout);
    loop {
        match reader.read_message::<BroadcastFrame>().unwrap() {
            ReadStatus::Ready(Ok(f)) if f.conn == probe_conn => break,
            ReadStatus::Ready(_) => {}
            other => panic!("worker output ended before the probe: {other:?}"),
        }
    }
    let hwm = vm_hwm_kib(child.id());
    drop(writer.join().unwrap());
    assert!(child.wait().unwrap().success());
    hwm
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not support.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let setup = mixed_setup(&mut rng);
    let events = mixed_events(&mut rng);
    let full = [setup.as_slice(), events.as_slice()].concat();
    println!(
        "e2e stream: {SUBS} subscriptions ({} bytes) then {EVENTS} events ({} bytes), {:.1} MiB in all",
        setup.len(),
        events.len(),
        full.len() as f64 / (1 << 20) as f64
    );

    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(ROUNDS);
    let (mut cat, mut worker_setup, mut worker_full) = (Vec::new(), Vec::new(), Vec::new());
    let (mut local_setup, mut local_full, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_worker, mut cpu_local, mut cpu_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut out_bytes = 0;
    for round in 0..rounds {
        // Alternate the order of the arms, so a change of load between them
        // does not always favour the same one.
        let mut arms: [&mut dyn FnMut(); 2] = [
            &mut || {
                let (t, _, setup_cpu) = pipe_through_cpu(BIN, &setup);
                worker_setup.push(t);
                let (t, n, full_cpu) = pipe_through_cpu(BIN, &full);
                worker_full.push(t);
                cpu_worker.push(full_cpu.saturating_sub(setup_cpu));
                out_bytes = n;
            },
            &mut || {
                let (t, setup_cpu) = in_process(&setup);
                local_setup.push(t);
                let (t, full_cpu) = in_process(&full);
                local_full.push(t);
                cpu_local.push(full_cpu.saturating_sub(setup_cpu));
            },
        ];
        if round % 2 == 1 {
            arms.reverse();
        }
        for arm in arms {
            arm();
        }
        cat.push(pipe_through("cat", &full).0);
        let events = |setup: &[Duration], full: &[Duration]| full[round].saturating_sub(setup[round]);
        ratios.push(
            events(&worker_setup, &worker_full).as_secs_f64()
                / events(&local_setup, &local_full).as_secs_f64(),
        );
        cpu_ratios.push(cpu_worker[round].as_secs_f64() / cpu_local[round].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    cpu_ratios.sort_by(f64::total_cmp);
    let (cpu_worker, cpu_local) = (median(cpu_worker), median(cpu_local));
    let (cat, worker_setup, worker_full) = (median(cat), median(worker_setup), median(worker_full));
    let (local_setup, local_full) = (median(local_setup), median(local_full));
    let events_time = worker_full.saturating_sub(worker_setup);
    let local_events = local_full.saturating_sub(local_setup);
    // Frames per event, from one more run kept in memory.
    let frames = {
        let mut child = Command::new(BIN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = full.clone();
        let w = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        w.join().unwrap();
        child.wait().unwrap();
        count_frames(&out)
    };
    println!("median of {rounds} rounds:");
    println!(
        "  cat                       {:>9.1} ms  ({:.0} MiB/s)",
        cat.as_secs_f64() * 1e3,
        full.len() as f64 / (1 << 20) as f64 / cat.as_secs_f64()
    );
    println!(
        "  worker, subscriptions only {:>8.1} ms",
        worker_setup.as_secs_f64() * 1e3
    );
    println!(
        "  worker, whole stream      {:>9.1} ms  ({} output bytes, {:.2} frames per event)",
        worker_full.as_secs_f64() * 1e3,
        out_bytes,
        frames as f64 / EVENTS as f64
    );
    println!(
        "  events/s through the worker: {:.0} (whole stream: {:.0}); cat of the same bytes: {:.0} events/s; worker/cat time ratio {:.1}x",
        EVENTS as f64 / events_time.as_secs_f64(),
        EVENTS as f64 / worker_full.as_secs_f64(),
        EVENTS as f64 / cat.as_secs_f64(),
        worker_full.as_secs_f64() / cat.as_secs_f64()
    );
    println!(
        "  in process (Worker::handle), subscriptions only {:.1} ms, whole stream {:.1} ms: {:.2} us per event",
        local_setup.as_secs_f64() * 1e3,
        local_full.as_secs_f64() * 1e3,
        local_events.as_secs_f64() * 1e6 / EVENTS as f64
    );
    println!(
        "  through the binary: {:.2} us per event; binary / in process, events only: median {:.2}x (per round: {})",
        events_time.as_secs_f64() * 1e6 / EVENTS as f64,
        ratios[ratios.len() / 2],
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  CPU time per event, events only: worker process {:.2} us, in process {:.2} us; worker / in process: median {:.2}x (per round: {})",
        cpu_worker.as_secs_f64() * 1e6 / EVENTS as f64,
        cpu_local.as_secs_f64() * 1e6 / EVENTS as f64,
        cpu_ratios[cpu_ratios.len() / 2],
        cpu_ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if args.iter().any(|a| a == "--throughput") {
        return;
    }

    let empty = peak_rss_kib(&[]);
    let big = peak_rss_kib(&registry(RSS_SUBS, |i| {
        format!(r#"{{"authors":["{}"]}}"#, hex_key(i))
    }));
    println!(
        "peak RSS (VmHWM): empty worker {:.1} MiB; with {RSS_SUBS} single-filter subscriptions {:.1} MiB ({:.0} bytes per subscription over empty)",
        empty as f64 / 1024.0,
        big as f64 / 1024.0,
        (big - empty) as f64 * 1024.0 / RSS_SUBS as f64
    );
}
