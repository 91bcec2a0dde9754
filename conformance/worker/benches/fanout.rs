//! Fan-out cost per event (criterion): one Bcast through the in-process
//! worker with 1k, 10k and 100k live subscriptions, against the same
//! workload through a linear scan with rust-nostr's `Filter::match_event`
//! (and through this crate's own linear oracle).
//!
//! Workload (see `docs/PERFORMANCE.md`): a quarter each of
//! `{"authors":[A]}`, `{"#p":[P],"kinds":[4,1059]}`,
//! `{"kinds":[1,6],"authors":[A]}` and `{"#t":[T],"since":S}`, spread over
//! connections of 10 subscriptions each. Value pools grow with the number
//! of subscriptions so each event matches a handful (about 6) of them.
//!
//! Run: `cargo bench -p broadcast-conformance --bench fanout`

use std::hint::black_box;
use std::time::Duration;

use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};
use broadcast_worker::{IndexMatcher, LinearMatcher, Matcher, Worker};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nostr::filter::MatchEventOptions;

const SINCE: u64 = 1_700_000_000;
const EVENTS: usize = 512;

/// Valid secp256k1 x-only pubkeys (rust-nostr refuses other 32-byte strings).
fn pubkeys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut secret = [0x11u8; 32];
            secret[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let sk = nostr::key::SecretKey::from_slice(&secret).expect("valid secret key");
            nostr::key::Keys::new(sk).public_key().to_hex()
        })
        .collect()
}

struct Workload {
    filters: Vec<String>,
    events: Vec<String>,
}

/// Deterministic pseudo-random numbers (xorshift), so every run and both
/// matchers see the same workload.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn workload(subs: usize, keys: &[String]) -> Workload {
    let authors = (subs / 4).max(1);
    let hashtags = (subs / 16).max(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let filters = (0..subs)
        .map(|i| match i % 4 {
            0 => format!(r#"{{"authors":["{}"]}}"#, keys[rng.below(authors)]),
            1 => format!(r##"{{"#p":["{}"],"kinds":[4,1059]}}"##, keys[rng.below(authors)]),
            2 => format!(r#"{{"kinds":[1,6],"authors":["{}"]}}"#, keys[rng.below(authors)]),
            _ => format!(
                r##"{{"#t":["tag{}"],"since":{}}}"##,
                rng.below(hashtags),
                SINCE + rng.below(100) as u64
            ),
        })
        .collect();
    let events = (0..EVENTS)
        .map(|i| {
            let kind = if i % 2 == 0 { 1 } else { 4 };
            format!(
                r#"{{"id":"{:064x}","pubkey":"{}","created_at":{},"kind":{kind},"tags":[["p","{}"],["t","tag{}"],["e","{:064x}"]],"content":"benchmark event {i}","sig":"{}"}}"#,
                i + 1,
                keys[rng.below(authors)],
                SINCE + 50,
                keys[rng.below(authors)],
                rng.below(hashtags),
                i * 7,
                "5".repeat(128)
            )
        })
        .collect();
    Workload { filters, events }
}

fn worker<M: Matcher>(w: &Workload) -> Worker<M> {
    let mut worker = Worker::<M>::with_matcher();
    let mut out = Vec::new();
    for (i, filter) in w.filters.iter().enumerate() {
        let conn = (i / 10) as i32;
        if i % 10 == 0 {
            worker.handle(
                &SubCommand::New {
                    conn,
                    flags: NewFlags::EMPTY,
                },
                &mut out,
            );
        }
        let sub = format!("sub{}", i % 10);
        let req = format!(r#"["REQ","{sub}",{filter}]"#);
        worker.handle(
            &SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from(sub.as_str()).unwrap(),
                req: req.into(),
            },
            &mut out,
        );
    }
    assert!(out.is_empty(), "every REQ of the workload is valid");
    assert_eq!(worker.subscription_count(), w.filters.len());
    worker
}

fn bcasts(w: &Workload) -> Vec<SubCommand> {
    w.events
        .iter()
        .map(|e| SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: format!(r#"["EVENT",{e}]"#).into(),
        })
        .collect()
}

fn bench_worker<M: Matcher>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    w: &Workload,
) {
    let mut worker = worker::<M>(w);
    let cmds = bcasts(w);
    let mut out: Vec<BroadcastFrame> = Vec::new();
    let mut delivered = 0usize;
    for cmd in &cmds {
        out.clear();
        worker.handle(cmd, &mut out);
        delivered += out.len();
    }
    eprintln!(
        "{name}/{n}: {:.1} frames per event",
        delivered as f64 / cmds.len() as f64
    );
    let mut i = 0;
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            out.clear();
            worker.handle(black_box(&cmds[i % cmds.len()]), &mut out);
            i += 1;
            black_box(out.len())
        })
    });
}

fn fanout(c: &mut Criterion) {
    let keys = pubkeys(100_000 / 4);
    let mut group = c.benchmark_group("fanout_per_event");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [1_000, 10_000, 100_000] {
        let w = workload(n, &keys);
        // Linear scans at 100k take milliseconds per event: fewer samples.
        group.sample_size(if n >= 100_000 { 10 } else { 50 });

        bench_worker::<IndexMatcher>(&mut group, "indexed_worker", n, &w);
        bench_worker::<LinearMatcher>(&mut group, "linear_worker", n, &w);

        // rust-nostr linear scan: the event is parsed once outside the loop,
        // so this measures only matching (the indexed worker's figure
        // includes parsing the EVENT and building the frames).
        let filters: Vec<nostr::filter::Filter> = w
            .filters
            .iter()
            .map(|f| nostr::filter::Filter::from_json(f).expect("nostr parses the filter"))
            .collect();
        let events: Vec<nostr::event::Event> = w
            .events
            .iter()
            .map(|e| nostr::event::Event::from_json(e).expect("nostr parses the event"))
            .collect();
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("nostr_linear_scan", n), &n, |b, _| {
            b.iter(|| {
                let ev = &events[i % events.len()];
                i += 1;
                black_box(
                    filters
                        .iter()
                        .filter(|f| f.match_event(ev, MatchEventOptions::new()))
                        .count(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
