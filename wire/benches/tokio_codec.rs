//! `tokio_codec::FrameCodec` against tokio-util's `LengthDelimitedCodec`
//! set up for the same header (`chan u8 | len u32 LE`), decoding the same
//! stream in the same run. Ratios, not absolute times, are what
//! docs/PERFORMANCE.md reports:
//!
//! ```text
//! cargo bench -p broadcast-wire --features tokio --bench tokio_codec
//! python3 wire/benches/ratios.py
//! ```
//!
//! The stream is 10,000 BroadcastFrames with 200-byte payloads (205 bytes
//! framed). Each iteration feeds it in 64 KiB chunks into one `BytesMut`, as
//! `FramedRead` appends each read to its buffer, calls `decode` until it has
//! nothing after each chunk and `decode_eof` at the end, and drops every
//! item. The group `tokio_codec/10k_200B_frames` has these functions:
//!
//! - `length_delimited`: `LengthDelimitedCodec` (`length_field_offset(1)`,
//!   `length_field_length(4)`, little-endian, `num_skip(5)`), which only
//!   splits payloads off (no channel check, no payload decoding): the
//!   baseline;
//! - `length_delimited_decode`: the same, then `BroadcastFrame::decode` of
//!   each frozen payload: the work `FrameCodec` does, less the receive rules
//!   (channel and heartbeat);
//! - `frame_codec`: `FrameCodec::<BroadcastFrame>`, in place in the buffer;
//! - `frame_codec_copying`: the design `FrameCodec` had before it decoded in
//!   place, kept for comparison: every byte of the buffer copied into a
//!   `FrameDecoder`, which splits and decodes the frames from its own buffer.
//!
//! `TOKIO_CODEC_ROUNDS=N cargo bench -p broadcast-wire --features tokio
//! --bench tokio_codec` skips criterion and alternates the four instead: N
//! rounds, each running every function over the stream 20 times, in an
//! order that rotates every round, and prints the median over the rounds of
//! each function's time over `length_delimited`'s and of `frame_codec`'s
//! over `frame_codec_copying`'s, in wall time and in CPU time (on unix). On a
//! shared machine the load changes between criterion's back-to-back
//! functions more than the differences measured.

use std::hint::black_box;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use broadcast_wire::tokio_codec::FrameCodec;
use broadcast_wire::{BroadcastFrame, DEFAULT_MAX_PAYLOAD, FrameDecoder, Message, PayloadError, ReadError};
use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

const FRAMES: usize = 10_000;
/// `conn` and `data_len` take 8 bytes: 200-byte payloads.
const DATA_LEN: usize = 192;
/// One read of a Linux pipe's default capacity.
const CHUNK: usize = 64 * 1024;
/// `FramedRead`'s initial buffer capacity.
const INITIAL_CAPACITY: usize = 8 * 1024;

/// The stream: `FRAMES` BroadcastFrames with JSON-looking data, framed.
fn stream() -> Vec<u8> {
    let pattern = br#"["EVENT","sub",{"kind":1,"content":"hello nostr","tags":[["p","ab"]]}]"#;
    let data: Vec<u8> = pattern.iter().copied().cycle().take(DATA_LEN).collect();
    let mut out = Vec::new();
    for conn in 0..FRAMES as i32 {
        let frame = BroadcastFrame {
            conn,
            data: Bytes::copy_from_slice(&data),
        };
        frame.encode_framed(&mut out);
    }
    out
}

fn length_delimited() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_offset(1)
        .length_field_length(4)
        .little_endian()
        .num_skip(5)
        .max_frame_length(DEFAULT_MAX_PAYLOAD as usize)
        .new_codec()
}

/// The design `FrameCodec` had before it decoded in place: FramedRead's
/// buffer only staged reads, and every byte moved into a `FrameDecoder`.
struct CopyingCodec<M> {
    decoder: FrameDecoder,
    _message: PhantomData<fn() -> M>,
}

impl<M> CopyingCodec<M> {
    fn new() -> Self {
        CopyingCodec {
            decoder: FrameDecoder::new(),
            _message: PhantomData,
        }
    }
}

impl<M: Message> Decoder for CopyingCodec<M> {
    type Item = Result<M, PayloadError>;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        if !src.is_empty() {
            self.decoder.feed(src);
            src.clear();
        }
        Ok(self.decoder.decode_message::<M>()?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None => {
                self.decoder.finish()?;
                Ok(None)
            }
        }
    }
}

/// Feeds `stream` to `codec` as `FramedRead` does and hands each item to
/// `each`; the number of items.
fn drive<D: Decoder>(codec: &mut D, stream: &[u8], mut each: impl FnMut(D::Item)) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::with_capacity(INITIAL_CAPACITY);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).expect("a valid stream") {
            each(item);
            n += 1;
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("a clean end") {
        each(item);
        n += 1;
    }
    n
}

/// One pass over the stream; the number of items.
type Arm = fn(&[u8]) -> usize;

/// The functions of the group, by name.
const ARMS: [(&str, Arm); 4] = [
    ("length_delimited", |stream| {
        drive(&mut length_delimited(), black_box(stream), |p| drop(black_box(p)))
    }),
    ("length_delimited_decode", |stream| {
        drive(&mut length_delimited(), black_box(stream), |p| {
            drop(black_box(BroadcastFrame::decode(p.freeze())))
        })
    }),
    ("frame_codec", |stream| {
        drive(&mut FrameCodec::<BroadcastFrame>::new(), black_box(stream), |m| {
            drop(black_box(m))
        })
    }),
    ("frame_codec_copying", |stream| {
        drive(
            &mut CopyingCodec::<BroadcastFrame>::new(),
            black_box(stream),
            |m| drop(black_box(m)),
        )
    }),
];

/// Every arm sees every frame, and the decoding ones decode them all.
fn check(stream: &[u8]) {
    let ok = |r: Result<BroadcastFrame, PayloadError>| assert_eq!(r.unwrap().data.len(), DATA_LEN);
    assert_eq!(
        drive(&mut FrameCodec::<BroadcastFrame>::new(), stream, ok),
        FRAMES
    );
    assert_eq!(
        drive(&mut CopyingCodec::<BroadcastFrame>::new(), stream, ok),
        FRAMES
    );
    for (name, arm) in ARMS {
        assert_eq!(arm(stream), FRAMES, "{name}");
    }
}

fn bench(c: &mut Criterion) {
    let stream = stream();
    check(&stream);
    let mut g = c.benchmark_group("tokio_codec/10k_200B_frames");
    g.throughput(Throughput::Elements(FRAMES as u64));
    for (name, arm) in ARMS {
        g.bench_function(name, |b| b.iter(|| arm(&stream)));
    }
    g.finish();
}

/// CPU time (user + system) of the process so far; the rounds run on one thread.
#[cfg(unix)]
fn cpu_time() -> Option<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Some(Duration::from_micros(
        micros(usage.user_time()) + micros(usage.system_time()),
    ))
}

#[cfg(not(unix))]
fn cpu_time() -> Option<Duration> {
    None
}

/// Passes over the stream per function and round.
const PASSES: usize = 20;

/// The first quartile, the median and the third quartile of `v`.
fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
}

/// `TOKIO_CODEC_ROUNDS` mode: see the module docs.
fn alternate(rounds: usize) {
    let stream = stream();
    check(&stream);
    // Seconds per round, one list per arm.
    let mut wall = vec![Vec::new(); ARMS.len()];
    let mut cpu = vec![Vec::new(); ARMS.len()];
    for round in 0..rounds {
        for k in 0..ARMS.len() {
            let i = (round + k) % ARMS.len();
            let (wall_before, cpu_before) = (Instant::now(), cpu_time());
            for _ in 0..PASSES {
                ARMS[i].1(&stream);
            }
            wall[i].push(wall_before.elapsed().as_secs_f64());
            if let (Some(before), Some(after)) = (cpu_before, cpu_time()) {
                cpu[i].push((after - before).as_secs_f64());
            }
        }
    }
    // Ratios are taken within a round, then the median over the rounds.
    let ratio = |times: &[Vec<f64>], a: usize, b: usize| {
        quartiles(times[a].iter().zip(&times[b]).map(|(x, y)| x / y).collect())
    };
    for (what, times) in [("wall", &wall), ("CPU", &cpu)] {
        if times[0].len() != rounds {
            continue;
        }
        println!("tokio_codec/10k_200B_frames, {what} time, medians over {rounds} rotating rounds:");
        for (i, (name, _)) in ARMS.iter().enumerate() {
            let ns_per_frame = quartiles(times[i].clone()).1 / (PASSES * FRAMES) as f64 * 1e9;
            let (q1, r, q3) = ratio(times, i, 0);
            println!(
                "  {name:<24} {ns_per_frame:6.1} ns/frame, / length_delimited {r:.2}x (quartiles {q1:.2}..{q3:.2})"
            );
        }
        let (q1, r, q3) = ratio(times, 2, 3);
        println!("  frame_codec / frame_codec_copying {r:.2}x (quartiles {q1:.2}..{q3:.2})");
    }
}

criterion_group!(benches, bench);

fn main() {
    match std::env::var("TOKIO_CODEC_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(rounds) if rounds > 0 => alternate(rounds),
        _ => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
