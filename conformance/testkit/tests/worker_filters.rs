//! PROTOCOL.md#filter-matching (NIP-01), field by field and in
//! combination, through a whole worker.

use broadcast_testkit::events as common;

use common::*;

fn m(filter: &str, ev: &Ev) -> bool {
    filter_matches(filter, ev)
}

#[test]
fn empty_filter_matches_everything() {
    assert!(m("{}", &Ev::new(1)));
    assert!(m("{}", &Ev::new(2).kind(65535).at(0)));
}

#[test]
fn ids_is_exact_equality_with_the_event_id() {
    let ev = Ev::new(0x3c);
    assert!(m(&format!(r#"{{"ids":["{}"]}}"#, hex64(0x3c)), &ev));
    assert!(m(
        &format!(r#"{{"ids":["{}","{}"]}}"#, hex64(1), hex64(0x3c)),
        &ev
    ));
    assert!(!m(&format!(r#"{{"ids":["{}"]}}"#, hex64(0x3d)), &ev));
}

#[test]
fn authors_is_exact_equality_with_the_pubkey() {
    let ev = Ev::new(1).by(&hex64(0x77));
    assert!(m(&format!(r#"{{"authors":["{}"]}}"#, hex64(0x77)), &ev));
    assert!(m(
        &format!(r#"{{"authors":["{}","{}"]}}"#, hex64(0x76), hex64(0x77)),
        &ev
    ));
    assert!(!m(&format!(r#"{{"authors":["{}"]}}"#, hex64(0x78)), &ev));
    // The id is not an author.
    assert!(!m(&format!(r#"{{"authors":["{}"]}}"#, hex64(1)), &ev));
}

#[test]
fn kinds_is_equality() {
    assert!(m(r#"{"kinds":[1]}"#, &Ev::new(1).kind(1)));
    assert!(m(r#"{"kinds":[0,7,65535]}"#, &Ev::new(1).kind(65535)));
    assert!(m(r#"{"kinds":[0]}"#, &Ev::new(1).kind(0)));
    assert!(!m(r#"{"kinds":[2,3]}"#, &Ev::new(1).kind(1)));
}

#[test]
fn since_and_until_are_inclusive() {
    let ev = Ev::new(1).at(100);
    assert!(m(r#"{"since":100}"#, &ev));
    assert!(m(r#"{"since":99}"#, &ev));
    assert!(!m(r#"{"since":101}"#, &ev));
    assert!(m(r#"{"until":100}"#, &ev));
    assert!(m(r#"{"until":101}"#, &ev));
    assert!(!m(r#"{"until":99}"#, &ev));
    assert!(m(r#"{"since":100,"until":100}"#, &ev));
    assert!(!m(r#"{"since":101,"until":99}"#, &ev));
    assert!(m(r#"{"since":0}"#, &Ev::new(1).at(0)));
    assert!(m(r#"{"until":18446744073709551615}"#, &Ev::new(1).at(u64::MAX)));
}

#[test]
fn tag_filter_matches_t1_of_a_tag_named_by_the_letter() {
    let ev = Ev::new(1).tag(&["t", "nostr", "extra"]).tag(&["e", &hex64(9)]);
    assert!(m(r##"{"#t":["nostr"]}"##, &ev));
    assert!(m(r##"{"#t":["rust","nostr"]}"##, &ev));
    assert!(m(&format!(r##"{{"#e":["{}"]}}"##, hex64(9)), &ev));
    assert!(!m(r##"{"#t":["rust"]}"##, &ev));
    // Only t[1] counts: t[2] and t[0] are not values.
    assert!(!m(r##"{"#t":["extra"]}"##, &ev));
    assert!(!m(r##"{"#t":["t"]}"##, &ev));
    // The letter must be the tag's name.
    assert!(!m(r##"{"#d":["nostr"]}"##, &ev));
}

#[test]
fn a_tag_without_t1_matches_no_tag_filter() {
    let ev = Ev::new(1).tag(&["t"]);
    assert!(!m(r##"{"#t":[""]}"##, &ev));
    assert!(!m(r##"{"#t":["t"]}"##, &ev));
    assert!(m(r##"{"#t":[""]}"##, &Ev::new(1).tag(&["t", ""])));
}

#[test]
fn any_tag_of_the_event_may_hold_the_value() {
    let ev = Ev::new(1).tag(&["t", "a"]).tag(&["t", "b"]).tag(&["x", "c"]);
    assert!(m(r##"{"#t":["b"]}"##, &ev));
    assert!(m(r##"{"#x":["c"]}"##, &ev));
}

#[test]
fn tag_letters_are_case_sensitive() {
    let ev = Ev::new(1).tag(&["T", "x"]);
    assert!(m(r##"{"#T":["x"]}"##, &ev));
    assert!(!m(r##"{"#t":["x"]}"##, &ev));
    let p = Ev::new(1).tag(&["P", &hex64(1)]);
    assert!(!m(&format!(r##"{{"#p":["{}"]}}"##, hex64(1)), &p));
}

#[test]
fn tag_values_compare_decoded_and_exactly() {
    let ev = Ev::new(1).tag(&["t", "a\"b\\c/é"]);
    assert!(m(r##"{"#t":["a\"b\\c\/\u00e9"]}"##, &ev));
    assert!(!m(r##"{"#t":["A\"b\\c/é"]}"##, &ev));
    assert!(!m(r##"{"#t":["a\"b\\c/é "]}"##, &ev));
}

#[test]
fn multi_letter_tags_are_never_matched() {
    let ev = Ev::new(1).tag(&["tt", "x"]).tag(&["", "x"]);
    assert!(!m(r##"{"#t":["x"]}"##, &ev));
}

#[test]
fn empty_lists_never_match() {
    let ev = Ev::new(1).tag(&["t", "x"]);
    for filter in [
        r#"{"ids":[]}"#,
        r#"{"authors":[]}"#,
        r#"{"kinds":[]}"#,
        r##"{"#t":[]}"##,
        r##"{"#z":[]}"##,
        r##"{"kinds":[1],"#t":[]}"##,
        r##"{"kinds":[],"#t":["x"]}"##,
    ] {
        assert!(!m(filter, &ev), "{filter}");
    }
    // ...but another filter of the same REQ still can.
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", r#"{"kinds":[]},{"kinds":[1]}"#)]);
    assert_eq!(w.event(&ev).len(), 1);
}

#[test]
fn fields_are_anded() {
    let ev = Ev::new(5).by(&hex64(0x77)).kind(7).at(50).tag(&["t", "x"]);
    let all = format!(
        r##"{{"ids":["{}"],"authors":["{}"],"kinds":[7],"since":50,"until":50,"#t":["x"]}}"##,
        hex64(5),
        hex64(0x77)
    );
    assert!(m(&all, &ev));
    for (from, to) in [
        (hex64(5), hex64(6)),
        (hex64(0x77), hex64(0x78)),
        ("[7]".into(), "[8]".into()),
        ("\"since\":50".into(), "\"since\":51".into()),
        ("\"until\":50".into(), "\"until\":49".into()),
        ("[\"x\"]".into(), "[\"y\"]".into()),
    ] {
        let f = all.replace(&from, &to);
        assert!(!m(&f, &ev), "{f}");
    }
}

#[test]
fn several_tag_conditions_must_all_hold() {
    let ev = Ev::new(1).tag(&["t", "x"]).tag(&["d", "y"]);
    assert!(m(r##"{"#t":["x"],"#d":["y"]}"##, &ev));
    assert!(!m(r##"{"#t":["x"],"#d":["z"]}"##, &ev));
    assert!(!m(
        r##"{"#t":["x"],"#e":["y"]}"##
            .replace("\"y\"", &format!("\"{}\"", hex64(1)))
            .as_str(),
        &ev
    ));
}

#[test]
fn filters_of_one_req_are_ored() {
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", r#"{"kinds":[1]},{"kinds":[2]}"#)]);
    assert_eq!(w.event(&Ev::new(1).kind(1)).len(), 1);
    assert_eq!(w.event(&Ev::new(2).kind(2)).len(), 1);
    assert_eq!(w.event(&Ev::new(3).kind(3)).len(), 0);
}

#[test]
fn duplicate_values_in_a_list_are_harmless() {
    assert!(m(r#"{"kinds":[1,1,1]}"#, &Ev::new(1)));
    assert!(m(r##"{"#t":["x","x"]}"##, &Ev::new(1).tag(&["t", "x"])));
}
