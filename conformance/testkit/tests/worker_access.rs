//! PROTOCOL.md#access-rules through a whole worker: the flags of a
//! Bcast against the whitelisted flag and authenticated pubkeys of every
//! connection.

use broadcast_testkit::events as common;

use broadcast_wire::BcastFlags;
use broadcast_worker::{MARMOT_OPEN_KINDS, PRIVILEGED_KINDS};
use common::*;

const NEED: BcastFlags = BcastFlags::NEED_FILTER;
const NIP70: BcastFlags = BcastFlags::NIP70_ENFORCE;
const MARMOT: BcastFlags = BcastFlags::MARMOT_OPEN;

/// Connections: 1 anonymous, 2 whitelisted, 3 the author, 4 the p-tagged
/// recipient, 5 a stranger, 6 authenticated as a stranger and then as the
/// recipient. Each has one catch-all subscription.
fn setup() -> (W, Ev) {
    let author = hex64(0xaa);
    let recipient = hex64(0xbb);
    let stranger = hex64(0xcc);
    let mut w = W::new();
    w.quiet([new(1), new_whitelisted(2), new(3), new(4), new(5), new(6)]);
    w.quiet([auth(3, &author), auth(4, &recipient), auth(5, &stranger)]);
    w.quiet([auth(6, &stranger), auth(6, &recipient)]);
    for c in 1..=6 {
        w.quiet([req(c, "all", "{}")]);
    }
    let ev = Ev::new(1).by(&author).tag(&["p", &recipient]);
    (w, ev)
}

#[test]
fn without_flags_everyone_receives_everything() {
    let (mut w, ev) = setup();
    for kind in PRIVILEGED_KINDS {
        let ev = ev.clone().kind(kind.into()).tag(&["-"]);
        assert_eq!(w.receivers(BcastFlags::EMPTY, &ev), vec![1, 2, 3, 4, 5, 6]);
    }
}

#[test]
fn need_filter_restricts_privileged_kinds_to_author_recipients_and_whitelisted() {
    let (mut w, ev) = setup();
    for kind in PRIVILEGED_KINDS {
        let ev = ev.clone().kind(kind.into());
        assert_eq!(w.receivers(NEED, &ev), vec![2, 3, 4, 6], "kind {kind}");
    }
}

#[test]
fn need_filter_leaves_other_kinds_alone() {
    let (mut w, ev) = setup();
    for kind in [0, 1, 3, 7, 1984, 30023] {
        assert_eq!(
            w.receivers(NEED, &ev.clone().kind(kind)),
            vec![1, 2, 3, 4, 5, 6],
            "kind {kind}"
        );
    }
}

#[test]
fn marmot_open_opens_443_and_10051_only() {
    let (mut w, ev) = setup();
    for kind in PRIVILEGED_KINDS {
        let got = w.receivers(NEED | MARMOT, &ev.clone().kind(kind.into()));
        if MARMOT_OPEN_KINDS.contains(&kind) {
            assert_eq!(got, vec![1, 2, 3, 4, 5, 6], "kind {kind}");
        } else {
            assert_eq!(got, vec![2, 3, 4, 6], "kind {kind}");
        }
    }
    // marmot_open without need_filter: nothing to open.
    assert_eq!(w.receivers(MARMOT, &ev.clone().kind(4)), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn every_p_tag_counts_not_only_the_first() {
    let (mut w, _) = setup();
    let ev = Ev::new(1)
        .by(&hex64(0x01))
        .kind(4)
        .tag(&["p", &hex64(0x02)])
        .tag(&["e", &hex64(0xcc)])
        .tag(&["p", &hex64(0xcc)]);
    // 5 is p-tagged by the second p tag; 3, 4 and 6's keys are not parties.
    assert_eq!(w.receivers(NEED, &ev), vec![2, 5, 6]);
}

#[test]
fn nip70_enforce_restricts_protected_events_to_authenticated_or_whitelisted() {
    let (mut w, ev) = setup();
    let protected = ev.clone().tag(&["-"]);
    assert_eq!(w.receivers(NIP70, &protected), vec![2, 3, 4, 5, 6]);
    // Not protected: open. Protected without the flag: open.
    assert_eq!(w.receivers(NIP70, &ev), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(w.receivers(BcastFlags::EMPTY, &protected), vec![1, 2, 3, 4, 5, 6]);
    // The "-" must be the tag's first element.
    let not_protected = ev.clone().tag(&["x", "-"]);
    assert_eq!(w.receivers(NIP70, &not_protected), vec![1, 2, 3, 4, 5, 6]);
    let with_value = ev.clone().tag(&["-", "anything"]);
    assert_eq!(w.receivers(NIP70, &with_value), vec![2, 3, 4, 5, 6]);
}

#[test]
fn both_rules_apply_together() {
    let (mut w, ev) = setup();
    let ev = ev.kind(4).tag(&["-"]);
    assert_eq!(w.receivers(NEED | NIP70, &ev), vec![2, 3, 4, 6]);
    let open_kind = Ev {
        kind: 443,
        ..ev.clone()
    };
    assert_eq!(
        w.receivers(NEED | NIP70 | MARMOT, &open_kind),
        vec![2, 3, 4, 5, 6]
    );
}

#[test]
fn reserved_bcast_flag_bits_are_ignored() {
    let (mut w, ev) = setup();
    let ev = ev.kind(4).tag(&["-"]);
    for bits in 0u8..=0xff {
        let flags = BcastFlags::from_bits(bits);
        let defined = BcastFlags::from_bits(bits & 0x07);
        assert_eq!(
            w.receivers(flags, &ev),
            w.receivers(defined, &ev),
            "flags {bits:#04x}"
        );
    }
}

#[test]
fn a_new_reset_revokes_auth_for_later_events() {
    let (mut w, ev) = setup();
    let ev = ev.kind(4);
    w.quiet([new(4), req(4, "all", "{}")]);
    assert_eq!(w.receivers(NEED, &ev), vec![2, 3, 6]);
}

#[test]
fn whitelisting_comes_only_from_new() {
    let (mut w, ev) = setup();
    w.quiet([new(2), req(2, "all", "{}")]);
    assert_eq!(w.receivers(NEED, &ev.kind(4)), vec![3, 4, 6]);
}

#[test]
fn access_is_per_connection_for_all_its_subscriptions() {
    let mut w = W::new();
    let me = hex64(0x42);
    w.quiet([
        new(1),
        auth(1, &me),
        req(1, "a", "{}"),
        req(1, "b", r#"{"kinds":[4]}"#),
    ]);
    w.quiet([new(2), req(2, "a", "{}")]);
    let dm = Ev::new(9).kind(4).tag(&["p", &me]);
    let got = w.send(bcast_with(-1, NEED, dm.msg().as_bytes()));
    assert_eq!(got, vec![(1, delivery("a", &dm)), (1, delivery("b", &dm))]);
}
