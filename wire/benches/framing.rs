//! Framing benchmarks through a real pipe (`std::io::pipe`, a Linux pipe with
//! its default 64 KiB capacity): a writer thread sends frames with a
//! `FrameWriter`, the reading thread takes them out with a `FrameReader`.
//! The baseline, measured in the same run, pushes the same bytes through the
//! same kind of pipe with plain `write_all`/`read` in 64 KiB calls.
//!
//! ```text
//! cargo bench -p broadcast-wire --bench framing
//! python3 wire/benches/ratios.py
//! ```
//!
//! Groups:
//! - `framing/4KiB_frames`: BroadcastFrames with 4 KiB of data, queued 16 at
//!   a time (64 KiB) before each flush. Goal: at least 90% of raw throughput.
//! - `framing/100B_frames_coalesced`: frames of exactly 100 bytes on the
//!   wire (5-byte header, 8 fixed bytes, 87 bytes of data), queued 640 at a
//!   time (64,000 bytes) before each flush. Goal: at least 5 million frames/s.
//!
//! `FRAMING_ROUNDS=N cargo bench -p broadcast-wire --bench framing` skips
//! criterion and alternates the two arms instead, N rounds, flipping the
//! order every round, and prints the median of `raw time / framed time`
//! (the framed path's throughput as a share of raw): on a shared machine
//! the load changes between criterion's back-to-back functions more than
//! the difference measured.
//!
//! The reader decodes each frame as a BroadcastFrame (`read_message`), the
//! parent's real receive path, and checks the count at the end.

// `std::io::pipe` is stable since Rust 1.87; the library itself keeps the
// workspace MSRV (1.85), only this benchmark needs the newer toolchain.
#![allow(clippy::incompatible_msrv)]

use std::hint::black_box;
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use broadcast_wire::{BroadcastFrame, FrameReader, FrameWriter, Message, ReadStatus};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};

/// Data of a BroadcastFrame whose whole frame is 4 KiB + 13 bytes of
/// header and fixed fields.
const BIG_DATA: usize = 4096;
/// Data size that makes the whole frame (5 + 8 + data) exactly 100 bytes.
const SMALL_DATA: usize = 100 - 5 - 8;
const RAW_CHUNK: usize = 64 * 1024;

struct Workload {
    frames: Vec<BroadcastFrame>,
    /// Frames queued per flush.
    batch: usize,
    /// The same frames, encoded back to back: the raw baseline's bytes.
    wire: Bytes,
}

impl Workload {
    fn new(count: usize, data_len: usize, batch: usize) -> Workload {
        let data = Bytes::from(vec![b'x'; data_len]);
        let frames: Vec<BroadcastFrame> = (0..count)
            .map(|i| BroadcastFrame {
                conn: (i % 1000) as i32,
                data: data.clone(),
            })
            .collect();
        let mut wire = Vec::new();
        for f in &frames {
            f.encode_framed(&mut wire);
        }
        Workload {
            frames,
            batch,
            wire: Bytes::from(wire),
        }
    }
}

/// One run of frames through a pipe; returns the elapsed time.
fn frame_pipe(w: &Workload) -> Duration {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let start = Instant::now();
    thread::scope(|s| {
        s.spawn(move || {
            let mut fw = FrameWriter::new(writer);
            for batch in w.frames.chunks(w.batch) {
                for f in batch {
                    fw.queue_message(f).expect("frame under the maximum");
                }
                fw.flush().expect("pipe write");
            }
            // Dropping the writer closes the pipe: a clean end for the reader.
        });
        let mut fr = FrameReader::new(reader);
        let mut n = 0usize;
        loop {
            match fr.read_message::<BroadcastFrame>().expect("read") {
                ReadStatus::Ready(m) => {
                    black_box(m.expect("valid frame"));
                    n += 1;
                }
                ReadStatus::Closed => break,
                ReadStatus::Pending => unreachable!("blocking pipe"),
            }
        }
        assert_eq!(n, w.frames.len());
    });
    start.elapsed()
}

/// The same bytes through the same kind of pipe, without framing.
fn raw_pipe(w: &Workload) -> Duration {
    let (mut reader, mut writer) = std::io::pipe().expect("pipe");
    let start = Instant::now();
    thread::scope(|s| {
        s.spawn(move || {
            for chunk in w.wire.chunks(RAW_CHUNK) {
                writer.write_all(chunk).expect("pipe write");
            }
        });
        let mut buf = vec![0u8; RAW_CHUNK];
        let mut total = 0usize;
        loop {
            let n = reader.read(&mut buf).expect("pipe read");
            if n == 0 {
                break;
            }
            black_box(&buf[..n]);
            total += n;
        }
        assert_eq!(total, w.wire.len());
    });
    start.elapsed()
}

fn bench_group(c: &mut Criterion, name: &str, w: &Workload, throughput: Throughput) {
    let mut group = c.benchmark_group(name);
    group.throughput(throughput);
    group.sample_size(20);
    group.bench_function("raw_pipe", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_pipe(w)).sum())
    });
    group.bench_function("frame_pipe", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| frame_pipe(w)).sum())
    });
    group.finish();
}

fn bench_framing(c: &mut Criterion) {
    // 2048 frames of 4 KiB: about 8 MiB per run.
    let big = Workload::new(2048, BIG_DATA, 16);
    bench_group(
        c,
        "framing/4KiB_frames",
        &big,
        Throughput::Bytes(big.wire.len() as u64),
    );

    // 100,000 frames of 100 bytes: 10 MB per run.
    let small = Workload::new(100_000, SMALL_DATA, 640);
    assert_eq!(small.wire.len(), 100 * 100_000);
    bench_group(
        c,
        "framing/100B_frames_coalesced",
        &small,
        Throughput::Elements(small.frames.len() as u64),
    );
}

/// CPU time (user + system) of the whole process so far, both threads of
/// each arm included once they are joined.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
}

/// Wall and CPU time of one arm.
fn timed(arm: impl FnOnce() -> Duration) -> (Duration, Duration) {
    let before = cpu_time();
    let wall = arm();
    (wall, cpu_time() - before)
}

/// `FRAMING_ROUNDS` mode: the median over `rounds` alternating rounds of
/// `raw / framed` wall time and of `raw / framed` CPU time (both threads),
/// and the median times.
fn alternate(name: &str, w: &Workload, rounds: usize) {
    let (mut raw, mut framed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_cpu, mut framed_cpu, mut cpu_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let ((r, rc), (f, fc)) = if round % 2 == 0 {
            let r = timed(|| raw_pipe(w));
            (r, timed(|| frame_pipe(w)))
        } else {
            let f = timed(|| frame_pipe(w));
            (timed(|| raw_pipe(w)), f)
        };
        ratios.push(r.as_secs_f64() / f.as_secs_f64());
        cpu_ratios.push(rc.as_secs_f64() / fc.as_secs_f64());
        raw.push(r);
        framed.push(f);
        raw_cpu.push(rc);
        framed_cpu.push(fc);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ms = |v: &[Duration]| v.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
    let (mut raw, mut framed) = (ms(&raw), ms(&framed));
    let (mut raw_cpu, mut framed_cpu) = (ms(&raw_cpu), ms(&framed_cpu));
    let (q1, q3) = {
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        (sorted[rounds / 4], sorted[rounds * 3 / 4])
    };
    println!(
        "{name}: framed/raw throughput median {:.1}% (quartiles {:.1}%..{:.1}%) over {rounds} alternating rounds; median raw {:.2} ms, framed {:.2} ms",
        median(&mut ratios) * 100.0,
        q1 * 100.0,
        q3 * 100.0,
        median(&mut raw),
        median(&mut framed)
    );
    println!(
        "{name}: CPU time (both threads), raw/framed median {:.1}%; median raw {:.2} ms, framed {:.2} ms",
        median(&mut cpu_ratios) * 100.0,
        median(&mut raw_cpu),
        median(&mut framed_cpu)
    );
}

criterion_group!(benches, bench_framing);

fn main() {
    match std::env::var("FRAMING_ROUNDS").ok().and_then(|n| n.parse().ok()) {
        Some(rounds) if rounds > 0 => {
            alternate("framing/4KiB_frames", &Workload::new(2048, BIG_DATA, 16), rounds);
            alternate(
                "framing/100B_frames_coalesced",
                &Workload::new(100_000, SMALL_DATA, 640),
                rounds,
            );
        }
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
