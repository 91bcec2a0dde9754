//! Codec benchmarks: decode and encode of every op, small and with 1 KiB and
//! 64 KiB payloads, each against a `memcpy` of the same number of bytes
//! measured in the same run (`Vec::extend_from_slice` into a pre-allocated
//! buffer). Ratios, not absolute times, are what docs/PERFORMANCE.md reports:
//!
//! ```text
//! cargo bench -p broadcast-wire --bench codec
//! python3 wire/benches/ratios.py
//! ```
//!
//! Each criterion group is one message shape (`codec/<op>_<size>`) with these
//! functions:
//! - `memcpy`: the baseline, the encoded payload's bytes copied into a
//!   reused, pre-allocated `Vec`;
//! - `decode`: the whole hand-over of a payload: clone a `Bytes` handle to
//!   the shared input buffer (as the `FrameDecoder` hands out one per
//!   frame), `decode` it, drop the decoded value;
//! - `bytes_clone_drop`: only the clone and the drop of that handle, i.e.
//!   the two atomic reference-count operations that any zero-copy hand-over
//!   costs; `decode − bytes_clone_drop` is the decoding work itself
//!   (`ratios.py` prints both);
//! - `encode`: into a reused, pre-allocated `Vec`.

use std::hint::black_box;

use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SMALL: usize = 64;
const KIB: usize = 1024;
const KIB64: usize = 64 * 1024;

/// Deterministic, JSON-looking filler of `n` bytes.
fn text(n: usize) -> Bytes {
    let pattern = br#"["EVENT",{"kind":1,"content":"hello nostr","tags":[["p","ab"]]}]"#;
    Bytes::from(pattern.iter().copied().cycle().take(n).collect::<Vec<u8>>())
}

fn sub_id() -> SubId {
    SubId::try_from("sub:feed-7f3a9c").expect("valid sub_id")
}

enum Msg {
    Cmd(SubCommand),
    Bf(BroadcastFrame),
}

impl Msg {
    fn encoded(&self) -> Bytes {
        let mut v = Vec::new();
        match self {
            Msg::Cmd(c) => c.encode(&mut v),
            Msg::Bf(f) => f.encode(&mut v),
        }
        Bytes::from(v)
    }
}

fn cases() -> Vec<(String, Msg)> {
    let mut out = vec![
        (
            "new".to_string(),
            Msg::Cmd(SubCommand::New {
                conn: 17,
                flags: NewFlags::WHITELISTED,
            }),
        ),
        (
            "close".to_string(),
            Msg::Cmd(SubCommand::Close {
                conn: 17,
                flags: ReservedFlags::EMPTY,
            }),
        ),
        (
            "remove".to_string(),
            Msg::Cmd(SubCommand::Remove {
                conn: 17,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(),
            }),
        ),
        (
            "auth".to_string(),
            Msg::Cmd(SubCommand::Auth {
                conn: 17,
                flags: ReservedFlags::EMPTY,
                pubkey: [0xab; 32],
            }),
        ),
    ];
    for (label, n) in [("small", SMALL), ("1KiB", KIB), ("64KiB", KIB64)] {
        out.push((
            format!("add_{label}"),
            Msg::Cmd(SubCommand::Add {
                conn: 17,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(),
                req: text(n),
            }),
        ));
        out.push((
            format!("bcast_{label}"),
            Msg::Cmd(SubCommand::Bcast {
                sender: 17,
                flags: BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE,
                event: text(n),
            }),
        ));
        out.push((
            format!("broadcast_frame_{label}"),
            Msg::Bf(BroadcastFrame {
                conn: 17,
                data: text(n),
            }),
        ));
    }
    out
}

fn bench_codec(c: &mut Criterion) {
    for (name, msg) in cases() {
        let input = msg.encoded();
        let len = input.len();
        // Promote the buffer to its shared form once, as a frame payload
        // handed out by the FrameDecoder already is.
        drop(black_box(input.clone()));

        let mut group = c.benchmark_group(format!("codec/{name}"));
        group.throughput(Throughput::Bytes(len as u64));

        let mut dst: Vec<u8> = Vec::with_capacity(len);
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.clear();
                dst.extend_from_slice(black_box(&input[..]));
                black_box(&dst);
            })
        });

        // What any decode from a shared `Bytes` pays at least: one clone
        // (an atomic increment) and its drop (an atomic decrement). Shown in
        // the report to explain the fixed cost of zero-copy decoding.
        group.bench_function("bytes_clone_drop", |b| {
            b.iter(|| black_box(black_box(&input).clone()))
        });

        match &msg {
            Msg::Cmd(cmd) => {
                assert_eq!(SubCommand::decode(input.clone()).as_ref(), Ok(cmd));
                group.bench_function("decode", |b| {
                    b.iter(|| black_box(SubCommand::decode(black_box(&input).clone())))
                });
                let mut buf: Vec<u8> = Vec::with_capacity(len);
                cmd.encode(&mut buf);
                assert_eq!(buf, input);
                group.bench_function("encode", |b| {
                    b.iter(|| {
                        buf.clear();
                        black_box(cmd).encode(&mut buf);
                        black_box(&buf);
                    })
                });
            }
            Msg::Bf(frame) => {
                assert_eq!(BroadcastFrame::decode(input.clone()).as_ref(), Ok(frame));
                group.bench_function("decode", |b| {
                    b.iter(|| black_box(BroadcastFrame::decode(black_box(&input).clone())))
                });
                let mut buf: Vec<u8> = Vec::with_capacity(len);
                frame.encode(&mut buf);
                assert_eq!(buf, input);
                group.bench_function("encode", |b| {
                    b.iter(|| {
                        buf.clear();
                        black_box(frame).encode(&mut buf);
                        black_box(&buf);
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
