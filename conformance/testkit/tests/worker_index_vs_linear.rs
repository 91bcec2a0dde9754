//! Property: on random registries and random events, the indexed matcher
//! delivers exactly what the linear oracle delivers, command by command,
//! through two whole workers fed the same random command sequence.

use broadcast_testkit::events as common;

use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand};
use broadcast_worker::{IndexMatcher, LinearMatcher, Worker};
use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Small pools so that random filters and events actually meet.
const PUBKEYS: [u8; 3] = [0xa1, 0xa2, 0xa3];
const IDS: [u8; 3] = [0x01, 0x02, 0x03];
const KINDS: [u32; 5] = [0, 1, 4, 443, 7];
const WORDS: [&str; 3] = ["a", "b", "a\"b"];
const LETTERS: [&str; 4] = ["t", "d", "T", "p"];

fn tag_value(letter: &str, i: usize) -> String {
    if letter == "p" {
        hex64(PUBKEYS[i % PUBKEYS.len()])
    } else {
        WORDS[i % WORDS.len()].to_owned()
    }
}

fn list(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

prop_compose! {
    fn filter()(
        ids in proptest::option::weighted(0.15, proptest::collection::vec(0..IDS.len(), 0..3)),
        authors in proptest::option::weighted(0.3, proptest::collection::vec(0..PUBKEYS.len(), 0..3)),
        kinds in proptest::option::weighted(0.4, proptest::collection::vec(0..KINDS.len(), 0..3)),
        since in proptest::option::weighted(0.2, 0u64..12),
        until in proptest::option::weighted(0.2, 0u64..12),
        tags in proptest::collection::vec((0..LETTERS.len(), proptest::collection::vec(0..3usize, 0..3)), 0..3),
    ) -> String {
        let mut fields = Vec::new();
        if let Some(v) = ids {
            fields.push(format!(r#""ids":{}"#, list(v.into_iter().map(|i| quoted(&hex64(IDS[i]))).collect())));
        }
        if let Some(v) = authors {
            fields.push(format!(r#""authors":{}"#, list(v.into_iter().map(|i| quoted(&hex64(PUBKEYS[i]))).collect())));
        }
        if let Some(v) = kinds {
            fields.push(format!(r#""kinds":{}"#, list(v.into_iter().map(|i| KINDS[i].to_string()).collect())));
        }
        if let Some(s) = since {
            fields.push(format!(r#""since":{s}"#));
        }
        if let Some(u) = until {
            fields.push(format!(r#""until":{u}"#));
        }
        let mut seen = Vec::new();
        for (l, values) in tags {
            if seen.contains(&l) {
                continue; // a repeated key is refused; keep filters valid
            }
            seen.push(l);
            let letter = LETTERS[l];
            let values = values.into_iter().map(|i| quoted(&tag_value(letter, i))).collect();
            fields.push(format!(r##""#{letter}":{}"##, list(values)));
        }
        format!("{{{}}}", fields.join(","))
    }
}

prop_compose! {
    fn event()(
        id in 0..IDS.len(),
        author in 0..PUBKEYS.len(),
        kind in 0..KINDS.len(),
        at in 0u64..12,
        tags in proptest::collection::vec((0..LETTERS.len(), proptest::option::of(0..3usize)), 0..4),
        protected in any::<bool>(),
    ) -> Ev {
        let mut ev = Ev::new(IDS[id]).by(&hex64(PUBKEYS[author])).kind(KINDS[kind]).at(at);
        for (l, value) in tags {
            let letter = LETTERS[l];
            ev = match value {
                Some(i) => ev.tag(&[letter, &tag_value(letter, i)]),
                None => ev.tag(&[letter]),
            };
        }
        if protected {
            ev = ev.tag(&["-"]);
        }
        ev
    }
}

fn command() -> impl Strategy<Value = SubCommand> {
    let conn = 0..4i32;
    let sub = prop::sample::select(vec!["s0", "s1", "s2", "x\"y"]);
    prop_oneof![
        2 => (conn.clone(), any::<u8>()).prop_map(|(conn, bits)| SubCommand::New { conn, flags: NewFlags::from_bits(bits) }),
        1 => conn.clone().prop_map(close),
        6 => (conn.clone(), sub.clone(), proptest::collection::vec(filter(), 1..4))
            .prop_map(|(conn, sub, filters)| req(conn, sub, &filters.join(","))),
        2 => (conn.clone(), sub).prop_map(|(conn, sub)| remove(conn, sub)),
        2 => (conn, 0..PUBKEYS.len()).prop_map(|(conn, i)| SubCommand::Auth {
            conn,
            flags: ReservedFlags::EMPTY,
            pubkey: [PUBKEYS[i]; 32],
        }),
        10 => (event(), any::<u8>(), -1..4i32)
            .prop_map(|(ev, bits, sender)| bcast_with(sender, BcastFlags::from_bits(bits), ev.msg().as_bytes())),
    ]
}

fn sorted(mut frames: Vec<BroadcastFrame>) -> Vec<(i32, Vec<u8>)> {
    let mut v: Vec<(i32, Vec<u8>)> = frames.drain(..).map(|f| (f.conn, f.data.to_vec())).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn indexed_delivers_exactly_what_linear_delivers(cmds in proptest::collection::vec(command(), 1..80)) {
        let mut indexed: Worker<IndexMatcher> = Worker::with_matcher();
        let mut linear: Worker<LinearMatcher> = Worker::with_matcher();
        for cmd in &cmds {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let oa = indexed.handle(cmd, &mut a);
            let ob = linear.handle(cmd, &mut b);
            prop_assert_eq!(oa, ob, "{:?}", cmd);
            prop_assert_eq!(sorted(a), sorted(b), "{:?}", cmd);
        }
        prop_assert_eq!(indexed.subscription_count(), linear.subscription_count());
    }

    #[test]
    fn a_registry_built_then_torn_down_leaves_an_empty_index(
        filters in proptest::collection::vec(proptest::collection::vec(filter(), 1..4), 1..40),
    ) {
        let mut w = W::new();
        w.quiet([new(1)]);
        for (i, f) in filters.iter().enumerate() {
            w.quiet([req(1, &format!("s{i}"), &f.join(","))]);
        }
        for i in (0..filters.len()).step_by(2) {
            w.quiet([remove(1, &format!("s{i}"))]);
        }
        w.quiet([close(1)]);
        prop_assert_eq!(w.worker.subscription_count(), 0);
        prop_assert_eq!(w.worker.matcher().key_count(), 0);
    }
}

/// A fixed, larger registry (many subscriptions per bucket, position maps in
/// use) checked against the oracle on many events.
#[test]
fn large_registry_agrees_with_the_oracle() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut indexed: Worker<IndexMatcher> = Worker::with_matcher();
    let mut linear: Worker<LinearMatcher> = Worker::with_matcher();
    let mut handle = |cmd: &SubCommand| {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        indexed.handle(cmd, &mut a);
        linear.handle(cmd, &mut b);
        assert_eq!(sorted(a.clone()), sorted(b), "{cmd:?}");
        a.len()
    };
    for conn in 0..20 {
        handle(&new(conn));
        if conn % 3 == 0 {
            handle(&auth(conn, &hex64(PUBKEYS[conn as usize % 3])));
        }
        for s in 0..25 {
            let filters: Vec<String> = (0..2)
                .map(|_| filter().new_tree(&mut runner).unwrap().current())
                .collect();
            handle(&req(conn, &format!("s{s}"), &filters.join(",")));
        }
    }
    let mut delivered = 0;
    for i in 0..500 {
        let ev = event().new_tree(&mut runner).unwrap().current();
        delivered += handle(&bcast_with(
            -1,
            BcastFlags::from_bits((i % 8) as u8),
            ev.msg().as_bytes(),
        ));
        if i % 50 == 0 {
            handle(&remove(i % 20, &format!("s{}", i % 25)));
        }
    }
    assert!(
        delivered > 1000,
        "the workload should deliver a lot, got {delivered}"
    );
}
