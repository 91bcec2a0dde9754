//! PROTOCOL.md#worker-add: every way a REQ is refused, with its CLOSED prefix,
//! and what is accepted (unknown keys, limit, huge REQs).

use broadcast_testkit::events as common;

use broadcast_worker::{Outcome, parse_req};
use common::*;

fn prefix_of(req: &str) -> String {
    refusal_prefix(req.as_bytes())
}

fn assert_invalid(reqs: &[String]) {
    for r in reqs {
        assert_eq!(prefix_of(r), "invalid", "{r}");
    }
}

fn filter_req(filter: &str) -> String {
    format!(r#"["REQ","s",{filter}]"#)
}

#[test]
fn closed_message_shape_is_exact() {
    let text = refusal(b"[1]");
    // ["CLOSED","s","invalid: <reason>"] with no whitespace outside strings.
    assert!(text.starts_with(r#"["CLOSED","s","invalid: "#), "{text}");
    assert!(text.ends_with(r#""]"#), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[test]
fn not_json_is_invalid() {
    assert_invalid(&[
        "".into(),
        "   ".into(),
        "REQ".into(),
        r#"["REQ","s",{}"#.into(),
        r#"["REQ","s",{}]]"#.into(),
        r#"["REQ","s",{},]"#.into(),
        r#"["REQ","s",{"kinds":[1,]}]"#.into(),
        r#"["REQ","s",{}] x"#.into(),
        "\u{feff}[\"REQ\",\"s\",{}]".into(),
        r#"["REQ","s",{'kinds':[1]}]"#.into(),
    ]);
    assert_eq!(refusal_prefix(b"[\"REQ\",\"s\",{\"#t\":[\"\xff\"]}]"), "invalid");
}

#[test]
fn not_an_array_is_invalid() {
    assert_invalid(&[
        r#"{"REQ":"s"}"#.into(),
        r#""REQ""#.into(),
        "1".into(),
        "null".into(),
    ]);
}

#[test]
fn first_element_not_req_is_invalid() {
    assert_invalid(&[
        "[]".into(),
        r#"["req","s",{}]"#.into(),
        r#"["EVENT","s",{}]"#.into(),
        r#"["REQ ","s",{}]"#.into(),
        r#"[1,"s",{}]"#.into(),
        r#"[["REQ"],"s",{}]"#.into(),
    ]);
}

#[test]
fn an_escaped_req_keyword_is_the_same_string() {
    let mut w = W::new();
    w.quiet([new(1), add_raw(1, "s", br#"["\u0052EQ","\u0073",{}]"#)]);
    assert_eq!(w.last, Some(Outcome::Applied));
}

#[test]
fn second_element_not_a_string_or_not_the_sub_id_is_invalid() {
    assert_invalid(&[
        r#"["REQ"]"#.into(),
        r#"["REQ",1,{}]"#.into(),
        r#"["REQ",null,{}]"#.into(),
        r#"["REQ",["s"],{}]"#.into(),
        r#"["REQ","S",{}]"#.into(),
        r#"["REQ","s ",{}]"#.into(),
        r#"["REQ","other",{}]"#.into(),
    ]);
}

#[test]
fn no_filters_is_invalid() {
    assert_invalid(&[r#"["REQ","s"]"#.into()]);
}

#[test]
fn a_filter_not_an_object_is_invalid() {
    assert_invalid(&[
        filter_req("[]"),
        filter_req("1"),
        filter_req("null"),
        filter_req(r#""kinds""#),
        r#"["REQ","s",{},[]]"#.to_owned(),
    ]);
}

#[test]
fn ids_and_authors_must_be_arrays_of_64_lowercase_hex() {
    for key in ["ids", "authors"] {
        assert_invalid(&[
            filter_req(&format!(r#"{{"{key}":"{}"}}"#, hex64(1))),
            filter_req(&format!(r#"{{"{key}":null}}"#)),
            filter_req(&format!(r#"{{"{key}":[1]}}"#)),
            filter_req(&format!(r#"{{"{key}":["{}"]}}"#, hex64(0xab).to_uppercase())),
            filter_req(&format!(r#"{{"{key}":["{}"]}}"#, &hex64(0xab)[..63])),
            filter_req(&format!(r#"{{"{key}":["{}0"]}}"#, hex64(0xab))),
            // A prefix (old NIP-01) is not accepted.
            filter_req(&format!(r#"{{"{key}":["abcd"]}}"#)),
            filter_req(&format!(r#"{{"{key}":["{}","zz"]}}"#, hex64(1))),
        ]);
    }
}

#[test]
fn kinds_must_be_integers_0_to_65535() {
    assert_invalid(&[
        filter_req(r#"{"kinds":1}"#),
        filter_req(r#"{"kinds":[-1]}"#),
        filter_req(r#"{"kinds":[65536]}"#),
        filter_req(r#"{"kinds":[1.0]}"#),
        filter_req(r#"{"kinds":[1e2]}"#),
        filter_req(r#"{"kinds":["1"]}"#),
        filter_req(r#"{"kinds":[null]}"#),
        filter_req(r#"{"kinds":[18446744073709551616]}"#),
    ]);
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", r#"{"kinds":[0,65535]}"#)]);
    assert_eq!(w.last, Some(Outcome::Applied));
}

#[test]
fn since_until_limit_must_be_non_negative_integers() {
    for key in ["since", "until", "limit"] {
        assert_invalid(&[
            filter_req(&format!(r#"{{"{key}":-1}}"#)),
            filter_req(&format!(r#"{{"{key}":1.5}}"#)),
            filter_req(&format!(r#"{{"{key}":1e3}}"#)),
            filter_req(&format!(r#"{{"{key}":"10"}}"#)),
            filter_req(&format!(r#"{{"{key}":null}}"#)),
            filter_req(&format!(r#"{{"{key}":[1]}}"#)),
            filter_req(&format!(r#"{{"{key}":18446744073709551616}}"#)),
        ]);
        let mut w = W::new();
        w.quiet([
            new(1),
            req(1, "s", &format!(r#"{{"{key}":18446744073709551615}}"#)),
        ]);
        assert_eq!(w.last, Some(Outcome::Applied), "{key}");
        w.quiet([req(1, "s", &format!(r#"{{"{key}":0}}"#))]);
        assert_eq!(w.last, Some(Outcome::Applied), "{key}");
    }
}

#[test]
fn tag_filters_must_be_arrays_of_strings() {
    for key in ["#t", "#d", "#E", "#P", "#Z"] {
        assert_invalid(&[
            filter_req(&format!(r#"{{"{key}":"x"}}"#)),
            filter_req(&format!(r#"{{"{key}":[1]}}"#)),
            filter_req(&format!(r#"{{"{key}":["x",null]}}"#)),
            filter_req(&format!(r#"{{"{key}":[["x"]]}}"#)),
        ]);
        let mut w = W::new();
        w.quiet([
            new(1),
            req(1, "s", &format!(r#"{{"{key}":["any string","","ABC"]}}"#)),
        ]);
        assert_eq!(w.last, Some(Outcome::Applied), "{key}");
    }
}

#[test]
fn e_and_p_tag_values_must_be_64_lowercase_hex() {
    for key in ["#e", "#p"] {
        assert_invalid(&[
            filter_req(&format!(r#"{{"{key}":["x"]}}"#)),
            filter_req(&format!(r#"{{"{key}":["{}"]}}"#, hex64(0xab).to_uppercase())),
            filter_req(&format!(r#"{{"{key}":["{}"]}}"#, &hex64(0xab)[..62])),
        ]);
        let mut w = W::new();
        w.quiet([
            new(1),
            req(1, "s", &format!(r#"{{"{key}":["{}"]}}"#, hex64(0xab))),
        ]);
        assert_eq!(w.last, Some(Outcome::Applied), "{key}");
    }
}

#[test]
fn a_hash_key_that_is_not_one_ascii_letter_is_unsupported() {
    for key in ["#foo", "#", "#tt", "#1", "#-", "#é", "# ", "#t ", "##"] {
        let r = filter_req(&format!(r#"{{{}:["x"]}}"#, serde_json::to_string(key).unwrap()));
        assert_eq!(prefix_of(&r), "unsupported", "{key}");
    }
    // Whatever its value: the key alone decides.
    assert_eq!(prefix_of(&filter_req(r##"{"#foo":17}"##)), "unsupported");
    assert_eq!(prefix_of(&filter_req(r##"{"#foo":{"a":[1]}}"##)), "unsupported");
}

#[test]
fn an_escaped_hash_key_is_decoded_first() {
    // "\u0023t" is "#t": supported. "\u0023foo" is "#foo": unsupported.
    let mut w = W::new();
    w.quiet([new(1), add_raw(1, "s", br#"["REQ","s",{"\u0023t":["x"]}]"#)]);
    assert_eq!(w.last, Some(Outcome::Applied));
    assert_eq!(prefix_of(r#"["REQ","s",{"\u0023foo":["x"]}]"#), "unsupported");
}

#[test]
fn invalid_wins_over_unsupported_whatever_the_order() {
    for r in [
        filter_req(r##"{"#foo":["x"],"kinds":["x"]}"##),
        filter_req(r##"{"kinds":["x"],"#foo":["x"]}"##),
        r##"["REQ","s",{"#foo":["x"]},{"kinds":"x"}]"##.to_owned(),
        r##"["REQ","s",{"#foo":["x"]},1]"##.to_owned(),
        r##"["REQ","s",{"#foo":["x"]}"##.to_owned(),
        r##"["REQ","s",{"#foo":["x"]}] trailing"##.to_owned(),
    ] {
        assert_eq!(prefix_of(&r), "invalid", "{r}");
    }
    // Several unsupported keys: one CLOSED, unsupported.
    assert_eq!(
        prefix_of(r##"["REQ","s",{"#foo":[]},{"#bar":[]}]"##),
        "unsupported"
    );
}

#[test]
fn unsupported_reason_names_the_first_bad_key() {
    let text = refusal(br##"["REQ","s",{"#foo":[]},{"#bar":[]}]"##);
    assert!(text.contains("#foo") && !text.contains("#bar"), "{text}");
}

#[test]
fn other_keys_are_ignored() {
    let mut w = W::new();
    w.quiet([new(1)]);
    let filter = r#"{"kinds":[1],"search":"hello","foo":{"x":[1,2,{"y":null}]},"":0,"Kinds":"x","ids ":1}"#;
    w.quiet([req(1, "s", filter)]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let ev = Ev::new(1);
    assert_eq!(w.event(&ev), vec![(1, delivery("s", &ev))]);
    assert_eq!(w.event(&Ev::new(2).kind(2)), vec![]);
}

#[test]
fn limit_is_accepted_and_ignored_for_live_delivery() {
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", r#"{"kinds":[1],"limit":0}"#)]);
    for i in 0..5 {
        assert_eq!(w.event(&Ev::new(i)).len(), 1);
    }
}

#[test]
fn duplicate_known_keys_are_invalid_unknown_ones_are_not() {
    for dup in [
        r#"{"kinds":[1],"kinds":[2]}"#.to_owned(),
        r#"{"since":1,"since":1}"#.to_owned(),
        r#"{"limit":1,"limit":2}"#.to_owned(),
        r##"{"#t":["a"],"#t":["b"]}"##.to_owned(),
        format!(r#"{{"ids":["{0}"],"ids":["{0}"]}}"#, hex64(1)),
    ] {
        assert_eq!(prefix_of(&filter_req(&dup)), "invalid", "{dup}");
    }
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", r#"{"search":1,"search":2,"x":[],"x":{}}"#)]);
    assert_eq!(w.last, Some(Outcome::Applied));
}

/// PROTOCOL.md#implementation-limits: depth 64 is accepted, and the
/// reference worker refuses anything deeper, wherever it is.
#[test]
fn nesting_past_64_is_invalid_anywhere() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    for r in [
        filter_req(&format!(r#"{{"search":{}}}"#, deep(200))),
        filter_req(&format!(r##"{{"#foo":{}}}"##, deep(200))),
        filter_req(&format!(r#"{{"kinds":{}}}"#, deep(200))),
        format!(r#"["REQ","s",{{}},{{"x":{}}}]"#, deep(100_000)),
        format!(
            r#"["REQ","s",{{"x":{}}}]"#,
            "{\"a\":".repeat(50_000) + &"}".repeat(50_000)
        ),
    ] {
        let text = refusal(r.as_bytes());
        assert!(
            text.starts_with(r#"["CLOSED","s","invalid: "#),
            "{}",
            &text[..80.min(text.len())]
        );
        assert!(
            text.contains("more than 64 levels"),
            "{}",
            &text[..120.min(text.len())]
        );
    }
    // Depth 64 (the REQ array, the filter and 62 more) is fine, even in an
    // ignored key; 65 is not.
    let mut w = W::new();
    w.quiet([new(1), req(1, "s", &format!(r#"{{"search":{}}}"#, deep(62)))]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let text = refusal(filter_req(&format!(r#"{{"search":{}}}"#, deep(63))).as_bytes());
    assert!(text.starts_with(r#"["CLOSED","s","invalid: "#), "{text}");
}

#[test]
fn a_req_with_tens_of_thousands_of_filters_is_accepted_and_matched() {
    let filters: Vec<String> = (0..30_000).map(|k| format!(r#"{{"kinds":[{k}]}}"#)).collect();
    let mut w = W::new();
    w.quiet([new(1), req(1, "big", &filters.join(","))]);
    assert_eq!(w.last, Some(Outcome::Applied));
    for kind in [0, 12_345, 29_999] {
        assert_eq!(w.event(&Ev::new(1).kind(kind)).len(), 1, "kind {kind}");
    }
    assert_eq!(w.event(&Ev::new(1).kind(30_000)), vec![]);
    w.quiet([remove(1, "big")]);
    assert_eq!(w.worker.matcher().key_count(), 0);
}

#[test]
fn a_filter_with_tens_of_thousands_of_values_is_accepted_and_matched() {
    let authors: Vec<String> = (0..40_000u32).map(|i| format!("\"{:064x}\"", i * 7)).collect();
    let tags: Vec<String> = (0..40_000u32).map(|i| format!("\"v{i}\"")).collect();
    let mut w = W::new();
    let filters = format!(
        r##"{{"authors":[{}]}},{{"#t":[{}],"kinds":[{}]}}"##,
        authors.join(","),
        tags.join(","),
        (0..=65535)
            .map(|k: u32| k.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    w.quiet([new(1), req(1, "big", &filters)]);
    assert_eq!(w.last, Some(Outcome::Applied));
    let by = |i: u32| Ev::new(1).by(&format!("{:064x}", i * 7));
    assert_eq!(w.event(&by(39_999)).len(), 1);
    assert_eq!(w.event(&by(0)).len(), 1);
    assert_eq!(w.event(&Ev::new(1).by(&format!("{:064x}", 8))), vec![]);
    assert_eq!(w.event(&Ev::new(2).kind(65535).tag(&["t", "v39999"])).len(), 1);
    assert_eq!(w.event(&Ev::new(2).tag(&["t", "v40000"])), vec![]);
}

#[test]
fn parse_req_returns_filters_in_order() {
    let f = parse_req(br#"["REQ","s",{"kinds":[2,1,2]},{"since":5}]"#, "s").unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].kinds(), Some(&[1u16, 2][..]));
    assert_eq!(f[1].since(), Some(5));
}
