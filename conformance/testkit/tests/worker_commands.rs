//! PROTOCOL.md#worker-semantics, command by command, through the in-process worker.

use broadcast_testkit::events as common;

use broadcast_conformance::harness::escape::sub_id_json;
use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags, SubCommand};
use broadcast_worker::Outcome;
use common::*;

const KIND1: &str = r#"{"kinds":[1]}"#;

// ---- New ----

#[test]
fn new_creates_the_connection_so_add_applies() {
    let mut w = W::new();
    w.quiet([req(3, "s", KIND1)]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
    w.quiet([new(3), req(3, "s", KIND1)]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(3, delivery("s", &ev))]);
}

#[test]
fn new_on_an_existing_conn_drops_its_subscriptions_and_auth() {
    let mut w = W::new();
    let me = hex64(0x11);
    w.quiet([new_whitelisted(3), auth(3, &me), req(3, "s", KIND1)]);
    w.quiet([new(3)]);
    assert_eq!(w.worker.subscription_count(), 0);
    let conn = w.worker.connection(3).unwrap();
    assert!(conn.authenticated.is_empty());
    assert!(!conn.whitelisted);
    assert_eq!(w.event(&Ev::new(1)), vec![]);
}

#[test]
fn new_reset_keeps_other_connections() {
    let mut w = W::new();
    w.quiet([new(3), new(4), req(3, "s", KIND1), req(4, "s", KIND1), new(3)]);
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(4, delivery("s", &ev))]);
}

#[test]
fn new_whitelisted_flag_is_bit0_and_reserved_bits_are_ignored() {
    let mut w = W::new();
    w.quiet([SubCommand::New {
        conn: 3,
        flags: NewFlags::from_bits(0xfe),
    }]);
    assert!(!w.worker.connection(3).unwrap().whitelisted);
    w.quiet([SubCommand::New {
        conn: 4,
        flags: NewFlags::from_bits(0xff),
    }]);
    assert!(w.worker.connection(4).unwrap().whitelisted);
}

// ---- Close ----

#[test]
fn close_removes_the_connection_and_its_subscriptions() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "a", KIND1), req(3, "b", KIND1), close(3)]);
    assert_eq!(w.last, Some(Outcome::Applied));
    assert_eq!(w.worker.connection_count(), 0);
    assert_eq!(w.worker.subscription_count(), 0);
    assert_eq!(w.event(&Ev::new(1)), vec![]);
    // A later Add on the closed conn is for an unknown conn.
    w.quiet([req(3, "a", KIND1)]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
}

#[test]
fn close_of_an_unknown_conn_is_a_no_op() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "s", KIND1), close(4)]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
    assert_eq!(w.worker.subscription_count(), 1);
}

// ---- Add ----

#[test]
fn add_on_an_unknown_conn_sends_nothing_even_for_a_bad_req() {
    let mut w = W::new();
    w.quiet([
        new(1),
        add_raw(9, "s", b"not json"),
        req(9, "s", r##"{"#foo":[]}"##),
    ]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
    assert_eq!(w.worker.subscription_count(), 0);
}

#[test]
fn add_with_the_same_sub_id_replaces_the_subscription() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "s", KIND1), req(3, "s", r#"{"kinds":[7]}"#)]);
    assert_eq!(w.worker.subscription_count(), 1);
    assert_eq!(w.event(&Ev::new(1)), vec![]);
    let ev = Ev::new(2).kind(7);
    assert_eq!(w.event(&ev), vec![(3, delivery("s", &ev))]);
}

#[test]
fn same_sub_id_on_two_connections_are_two_subscriptions() {
    let mut w = W::new();
    w.quiet([new(3), new(4), req(3, "s", KIND1), req(4, "s", KIND1)]);
    let ev = Ev::new(1);
    assert_eq!(
        w.event(&ev),
        vec![(3, delivery("s", &ev)), (4, delivery("s", &ev))]
    );
}

#[test]
fn a_refused_add_sends_closed_to_that_conn_and_removes_the_old_subscription() {
    let mut w = W::new();
    w.quiet([new(3), new(4), req(3, "s", KIND1), req(4, "s", KIND1)]);
    let got = w.send(add_raw(3, "s", br#"["REQ","s",{"kinds":"x"}]"#));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 3);
    assert!(
        got[0].1.starts_with(r#"["CLOSED","s","invalid: "#),
        "{}",
        got[0].1
    );
    assert!(matches!(w.last, Some(Outcome::Refused(_))));
    // Conn 4's "s" is untouched; conn 3's is gone.
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(4, delivery("s", &ev))]);
}

#[test]
fn a_refused_add_without_an_old_subscription_only_sends_closed() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "t", KIND1)]);
    assert_eq!(w.send(add_raw(3, "s", b"[")).len(), 1);
    assert_eq!(w.worker.subscription_count(), 1);
}

#[test]
fn add_remove_and_auth_reserved_flag_bits_are_ignored() {
    let mut w = W::new();
    w.quiet([new(3)]);
    w.quiet([SubCommand::Add {
        conn: 3,
        flags: ReservedFlags::from_bits(0xff),
        sub_id: sub_id("s"),
        req: br#"["REQ","s",{"kinds":[1]}]"#.as_slice().into(),
    }]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev).len(), 1);
    w.quiet([SubCommand::Auth {
        conn: 3,
        flags: ReservedFlags::from_bits(0x80),
        pubkey: [1; 32],
    }]);
    assert_eq!(w.worker.connection(3).unwrap().authenticated, vec![[1; 32]]);
    w.quiet([SubCommand::Remove {
        conn: 3,
        flags: ReservedFlags::from_bits(0x01),
        sub_id: sub_id("s"),
    }]);
    assert_eq!(w.worker.subscription_count(), 0);
    w.quiet([SubCommand::Close {
        conn: 3,
        flags: ReservedFlags::from_bits(0x40),
    }]);
    assert_eq!(w.worker.connection_count(), 0);
}

// ---- Remove ----

#[test]
fn remove_deletes_the_subscription_and_sends_nothing() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "a", KIND1), req(3, "b", KIND1), remove(3, "a")]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(3, delivery("b", &ev))]);
}

#[test]
fn remove_of_an_unknown_subscription_or_conn_is_a_no_op() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "a", KIND1), remove(3, "zz")]);
    assert_eq!(w.last, Some(Outcome::UnknownSub));
    w.quiet([remove(4, "a")]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
    assert_eq!(w.worker.subscription_count(), 1);
}

#[test]
fn remove_then_add_again_works() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "a", KIND1), remove(3, "a"), req(3, "a", KIND1)]);
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(3, delivery("a", &ev))]);
}

// ---- Auth ----

#[test]
fn auth_adds_pubkeys_to_a_set() {
    let mut w = W::new();
    w.quiet([new(3), auth(3, &hex64(1)), auth(3, &hex64(2)), auth(3, &hex64(1))]);
    let conn = w.worker.connection(3).unwrap();
    assert_eq!(conn.authenticated, vec![[1; 32], [2; 32]]);
}

#[test]
fn auth_on_an_unknown_conn_is_ignored() {
    let mut w = W::new();
    w.quiet([auth(3, &hex64(1))]);
    assert_eq!(w.last, Some(Outcome::UnknownConn));
    w.quiet([new(3)]);
    assert!(w.worker.connection(3).unwrap().authenticated.is_empty());
}

#[test]
fn auth_applies_at_once_to_existing_subscriptions() {
    let mut w = W::new();
    let me = hex64(0x42);
    let dm = Ev::new(1).kind(4).tag(&["p", &me]);
    w.quiet([new(3), req(3, "dms", r#"{"kinds":[4]}"#)]);
    assert_eq!(w.receivers(BcastFlags::NEED_FILTER, &dm), Vec::<i32>::new());
    w.quiet([auth(3, &me)]);
    assert_eq!(w.receivers(BcastFlags::NEED_FILTER, &dm), vec![3]);
}

// ---- Bcast ----

#[test]
fn every_matching_subscription_of_every_connection_gets_one_frame() {
    let mut w = W::new();
    w.quiet([new(3), new(4), new(5)]);
    w.quiet([
        req(3, "a", KIND1),
        req(3, "b", r#"{"kinds":[1,2]}"#),
        req(4, "c", KIND1),
    ]);
    w.quiet([req(5, "d", r#"{"kinds":[2]}"#)]);
    let ev = Ev::new(1);
    assert_eq!(
        w.event(&ev),
        vec![
            (3, delivery("a", &ev)),
            (3, delivery("b", &ev)),
            (4, delivery("c", &ev))
        ]
    );
    assert_eq!(w.last, Some(Outcome::Delivered(3)));
}

#[test]
fn a_subscription_with_several_matching_filters_gets_one_frame() {
    let mut w = W::new();
    let author = hex64(0xa0);
    let filters = format!(r##"{{"kinds":[1]}},{{"authors":["{author}"]}},{{}},{{"#t":["x","y"]}}"##);
    w.quiet([new(3), req(3, "s", &filters)]);
    let ev = Ev::new(1).tag(&["t", "x"]).tag(&["t", "y"]).tag(&["t", "x"]);
    assert_eq!(w.event(&ev), vec![(3, delivery("s", &ev))]);
}

#[test]
fn the_sender_receives_its_own_event() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "s", KIND1)]);
    let ev = Ev::new(1);
    let got = w.send(bcast_with(3, BcastFlags::EMPTY, ev.msg().as_bytes()));
    assert_eq!(got, vec![(3, delivery("s", &ev))]);
}

#[test]
fn sender_minus_one_and_any_sender_deliver_the_same() {
    let ev = Ev::new(1);
    let mut outs = Vec::new();
    for sender in [-1, 0, 3, 77, i32::MAX] {
        let mut w = W::new();
        w.quiet([new(3), new(4), req(3, "s", KIND1), req(4, "s", KIND1)]);
        outs.push(w.send(bcast_with(sender, BcastFlags::EMPTY, ev.msg().as_bytes())));
    }
    assert!(outs.windows(2).all(|p| p[0] == p[1]), "{outs:?}");
    assert_eq!(outs[0].len(), 2);
}

#[test]
fn an_invalid_event_delivers_nothing_and_the_worker_goes_on() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "s", "{}")]);
    let good = Ev::new(0xab);
    for data in [
        b"not json".to_vec(),
        br#"["EVENT"]"#.to_vec(),
        good.msg().replace("\"kind\":1", "\"kind\":70000").into_bytes(),
        good.msg().replace(&good.id, &good.id.to_uppercase()).into_bytes(),
        format!(r#"["EVENT",{},"extra"]"#, good.json()).into_bytes(),
    ] {
        assert_eq!(w.send(bcast_with(-1, BcastFlags::EMPTY, &data)), vec![]);
        assert!(matches!(w.last, Some(Outcome::InvalidEvent(_))), "{:?}", w.last);
    }
    assert_eq!(w.event(&good), vec![(3, delivery("s", &good))]);
}

#[test]
fn output_is_exactly_prefix_sub_id_event_verbatim_bracket() {
    let mut w = W::new();
    w.quiet([new(3), req(3, "s", "{}")]);
    // Odd but valid spacing, key order, escapes and an extra field: all kept.
    let raw = format!(
        "{{ \"kind\" : 1,\n\t\"content\":\"a\\u0041\\/b\", \"extra\":[1,{{}}], \"tags\":[ ],\"sig\":\"{}\",\"id\":\"{}\",\"pubkey\":\"{}\",\"created_at\":0 }}",
        "6".repeat(128),
        hex64(1),
        hex64(2)
    );
    let data = format!("[ \"EVENT\" ,  {raw}  ]");
    let frames = w.frames(bcast_with(-1, BcastFlags::EMPTY, data.as_bytes()));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, format!(r#"["EVENT","s",{raw}]"#).into_bytes());
}

#[test]
fn sub_id_is_written_with_the_escaping_of_section_4() {
    let cases = [
        ("quote\"back\\", r#""quote\"back\\""#.to_owned()),
        ("\u{8}\u{9}\u{a}\u{c}\u{d}", r#""\b\t\n\f\r""#.to_owned()),
        (
            "\u{0}\u{1}\u{b}\u{1f}",
            r#""\u0000\u0001\u000b\u001f""#.to_owned(),
        ),
        ("é/€😀\u{7f}", "\"é/€😀\u{7f}\"".to_owned()),
    ];
    for (sub, json) in cases {
        let mut w = W::new();
        let req_text = format!(r#"["REQ",{},{{}}]"#, serde_json::to_string(sub).unwrap());
        w.quiet([new(3), add_raw(3, sub, req_text.as_bytes())]);
        assert_eq!(w.last, Some(Outcome::Applied), "{sub:?}");
        let ev = Ev::new(1);
        let frames = w.frames(bcast(&ev));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].data,
            format!(r#"["EVENT",{json},{}]"#, ev.json()).into_bytes(),
            "{sub:?}"
        );
    }
}

/// The worker's PROTOCOL.md#sub-id-json-string implementation against the spec oracle
/// (`harness::escape`, itself checked against the golden bytes of PROTOCOL.md#example-escaping):
/// every code point below U+0800 and a few beyond, alone and between
/// letters. This comparison is why the repository keeps both.
#[test]
fn worker_escaping_agrees_with_the_spec_oracle() {
    let code_points = (0u32..0x800).chain([0xfffd, 0x1_f980, 0x10_ffff]);
    for c in code_points.filter_map(char::from_u32) {
        for s in [c.to_string(), format!("a{c}b{c}")] {
            let mut got = Vec::new();
            broadcast_worker::write_json_string(&mut got, &s);
            assert_eq!(got, sub_id_json(&s).into_bytes(), "U+{:04X}", c as u32);
        }
    }
}

#[test]
fn closed_sub_id_uses_the_same_escaping() {
    let mut w = W::new();
    w.quiet([new(3)]);
    let got = w.send(add_raw(3, "a\"\u{1}", b"nope"));
    assert!(
        got[0].1.starts_with(r#"["CLOSED","a\"\u0001","invalid: "#),
        "{}",
        got[0].1
    );
}

#[test]
fn a_long_run_of_mixed_commands_keeps_counts_consistent() {
    let mut w = W::new();
    for conn in 0..50 {
        w.quiet([new(conn)]);
        for s in 0..10 {
            w.quiet([req(conn, &format!("s{s}"), &format!(r#"{{"kinds":[{s}]}}"#))]);
        }
    }
    assert_eq!(w.worker.subscription_count(), 500);
    for conn in (0..50).step_by(2) {
        w.quiet([close(conn)]);
    }
    for conn in (1..50).step_by(2) {
        w.quiet([remove(conn, "s3")]);
    }
    assert_eq!(w.worker.subscription_count(), 25 * 9);
    assert_eq!(w.event(&Ev::new(1).kind(3)), vec![]);
    assert_eq!(w.event(&Ev::new(1).kind(4)).len(), 25);
}
