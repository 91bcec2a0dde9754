//! Comparing what a step observed with what it expected
//! (docs/VECTORS.md, "Expected frames"): a multiset comparison by default,
//! an exact sequence when the step is `ordered`.

use std::fmt::Write as _;

use bytes::Bytes;

use super::scenario::Expected;

/// One channel-2 frame the worker wrote during a step (probe frames already
/// removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A BroadcastFrame that decoded.
    Frame {
        /// Receiving connection.
        conn: i32,
        /// Its data.
        data: Bytes,
    },
    /// A channel-2 payload that did not decode; it can never match anything,
    /// and showing it is more useful than dropping it.
    Invalid {
        /// The payload error class.
        class: &'static str,
        /// The decoder's description.
        detail: String,
    },
}

impl Expected {
    /// Whether `observed` satisfies this expectation.
    pub fn matches(&self, observed: &Observed) -> bool {
        let Observed::Frame { conn, data } = observed else {
            return false;
        };
        match self {
            Expected::Exact { conn: c, data: d } => c == conn && d == data,
            Expected::Closed {
                conn: c,
                sub_id,
                prefix,
            } => c == conn && is_closed(data, sub_id, prefix),
        }
    }
}

/// Whether `data` is a CLOSED message for `sub_id` with `prefix`, byte for
/// byte (PROTOCOL.md#closed-message): `["CLOSED",`, the JSON string of
/// `sub_id` (PROTOCOL.md#sub-id-json-string), `,"`, the prefix, `: `, a reason written with the same
/// escaping, `"]`. Only the reason's text is free, and it is checked for its
/// form, never parsed: extra whitespace or another spelling of the sub_id
/// does not match.
fn is_closed(data: &[u8], sub_id: &str, prefix: &str) -> bool {
    let head = format!("[\"CLOSED\",{},\"{prefix}: ", super::escape::sub_id_json(sub_id));
    data.strip_prefix(head.as_bytes())
        .and_then(|rest| rest.strip_suffix(b"\"]"))
        .is_some_and(is_escaped_string_body)
}

/// Whether `body` is exactly what the escaping of PROTOCOL.md#sub-id-json-string writes
/// between the quotes for some string: UTF-8 with no raw `"` and no raw
/// code point below U+0020, and only the escapes `\"`, `\\`, `\b`, `\t`,
/// `\n`, `\f`, `\r`, and `\u00xx` with lowercase hex for the other code
/// points below U+0020.
pub fn is_escaped_string_body(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return false,
            c if (c as u32) < 0x20 => return false,
            '\\' => match chars.next() {
                Some('"' | '\\' | 'b' | 't' | 'n' | 'f' | 'r') => {}
                Some('u') => {
                    let digits: String = chars.by_ref().take(4).collect();
                    let Some(low) = digits.strip_prefix("00") else {
                        return false;
                    };
                    let lower_hex =
                        low.len() == 2 && low.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                    let Ok(value) = u8::from_str_radix(low, 16) else {
                        return false;
                    };
                    if !lower_hex || value >= 0x20 || matches!(value, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                        return false;
                    }
                }
                _ => return false,
            },
            _ => {}
        }
    }
    true
}

/// Why a step's frames did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// One line saying what differs.
    pub summary: String,
}

/// Compares a step's observed frames with its expectations.
pub fn compare(expected: &[Expected], observed: &[Observed], ordered: bool) -> Result<(), Mismatch> {
    if ordered {
        return compare_ordered(expected, observed);
    }
    let assignment = max_matching(expected, observed);
    let missing: Vec<usize> = (0..expected.len())
        .filter(|i| assignment.left[*i].is_none())
        .collect();
    let extra: Vec<usize> = (0..observed.len())
        .filter(|j| assignment.right[*j].is_none())
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let mut summary = String::new();
    if !missing.is_empty() {
        let _ = write!(summary, "{} expected frame(s) missing", missing.len());
        let _ = write!(
            summary,
            " (first: {})",
            shorten(&render_expected(&expected[missing[0]]))
        );
    }
    if !extra.is_empty() {
        if !summary.is_empty() {
            summary.push_str("; ");
        }
        let _ = write!(summary, "{} unexpected frame(s)", extra.len());
        let _ = write!(
            summary,
            " (first: {})",
            shorten(&render_observed(&observed[extra[0]]))
        );
    }
    Err(Mismatch { summary })
}

fn compare_ordered(expected: &[Expected], observed: &[Observed]) -> Result<(), Mismatch> {
    for (i, (e, o)) in expected.iter().zip(observed).enumerate() {
        if !e.matches(o) {
            return Err(Mismatch {
                summary: format!(
                    "frame {} differs (ordered step): expected {}, got {}",
                    i + 1,
                    shorten(&render_expected(e)),
                    shorten(&render_observed(o))
                ),
            });
        }
    }
    if expected.len() != observed.len() {
        return Err(Mismatch {
            summary: format!(
                "expected {} frame(s) in order, got {}",
                expected.len(),
                observed.len()
            ),
        });
    }
    Ok(())
}

struct Assignment {
    left: Vec<Option<usize>>,
    right: Vec<Option<usize>>,
}

/// A maximum bipartite matching between expectations and frames (Kuhn's
/// augmenting paths). Greedy first-fit is not enough: a `closed` pattern can
/// also accept a frame that an exact expectation needs.
fn max_matching(expected: &[Expected], observed: &[Observed]) -> Assignment {
    let edges: Vec<Vec<usize>> = expected
        .iter()
        .map(|e| (0..observed.len()).filter(|j| e.matches(&observed[*j])).collect())
        .collect();
    let mut a = Assignment {
        left: vec![None; expected.len()],
        right: vec![None; observed.len()],
    };
    fn augment(i: usize, edges: &[Vec<usize>], seen: &mut [bool], a: &mut Assignment) -> bool {
        for &j in &edges[i] {
            if seen[j] {
                continue;
            }
            seen[j] = true;
            if a.right[j].is_none_or(|k| augment(k, edges, seen, a)) {
                a.right[j] = Some(i);
                a.left[i] = Some(j);
                return true;
            }
        }
        false
    }
    for i in 0..expected.len() {
        let mut seen = vec![false; observed.len()];
        augment(i, &edges, &mut seen, &mut a);
    }
    a
}

/// At most 160 characters of a rendered frame, for one-line messages (the
/// Expected/Actual lists keep the whole frames).
fn shorten(text: &str) -> String {
    const MAX: usize = 160;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Frame data for humans: the text when it is UTF-8 (control characters
/// shown as escapes), else `hex:` and the bytes.
pub fn render_data(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => {
            let mut out = String::with_capacity(text.len());
            for c in text.chars() {
                if c.is_control() {
                    let _ = write!(out, "{}", c.escape_default());
                } else {
                    out.push(c);
                }
            }
            out
        }
        Err(_) => format!("hex:{}", hex::encode(data)),
    }
}

/// One expected frame, for humans.
pub fn render_expected(e: &Expected) -> String {
    match e {
        Expected::Exact { conn, data } => format!("conn {conn}: {}", render_data(data)),
        Expected::Closed { conn, sub_id, prefix } => format!(
            "conn {conn}: [\"CLOSED\",{},\"{prefix}: …\"]",
            super::escape::sub_id_json(sub_id)
        ),
    }
}

/// One observed frame, for humans.
pub fn render_observed(o: &Observed) -> String {
    match o {
        Observed::Frame { conn, data } => format!("conn {conn}: {}", render_data(data)),
        Observed::Invalid { class, detail } => format!("undecodable channel-2 payload ({class}): {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(conn: i32, data: &str) -> Observed {
        Observed::Frame {
            conn,
            data: Bytes::copy_from_slice(data.as_bytes()),
        }
    }

    fn exact(conn: i32, data: &str) -> Expected {
        Expected::Exact {
            conn,
            data: Bytes::copy_from_slice(data.as_bytes()),
        }
    }

    fn closed(conn: i32, sub_id: &str, prefix: &str) -> Expected {
        Expected::Closed {
            conn,
            sub_id: sub_id.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn multiset_ignores_order_but_counts_duplicates() {
        let e = [exact(1, "a"), exact(2, "b"), exact(1, "a")];
        assert!(compare(&e, &[frame(2, "b"), frame(1, "a"), frame(1, "a")], false).is_ok());
        let err = compare(&e, &[frame(2, "b"), frame(1, "a")], false).unwrap_err();
        assert!(
            err.summary.contains("1 expected frame(s) missing"),
            "{}",
            err.summary
        );
        let err = compare(&e[..1], &[frame(1, "a"), frame(1, "a")], false).unwrap_err();
        assert!(err.summary.contains("1 unexpected frame(s)"), "{}", err.summary);
        assert!(compare(&[], &[], false).is_ok());
        assert!(compare(&[], &[frame(1, "x")], false).is_err());
    }

    #[test]
    fn ordered_checks_sequence() {
        let e = [exact(1, "a"), exact(2, "b")];
        assert!(compare(&e, &[frame(1, "a"), frame(2, "b")], true).is_ok());
        assert!(compare(&e, &[frame(2, "b"), frame(1, "a")], true).is_err());
        assert!(compare(&e, &[frame(1, "a")], true).is_err());
    }

    #[test]
    fn closed_by_conn_sub_id_and_prefix() {
        let c = closed(3, "s\"1", "invalid");
        assert!(c.matches(&frame(3, r#"["CLOSED","s\"1","invalid: bad filter"]"#)));
        assert!(c.matches(&frame(3, r#"["CLOSED","s\"1","invalid: "]"#)));
        assert!(!c.matches(&frame(4, r#"["CLOSED","s\"1","invalid: x"]"#)));
        assert!(!c.matches(&frame(3, r#"["CLOSED","s1","invalid: x"]"#)));
        assert!(!c.matches(&frame(3, r#"["CLOSED","s\"1","invalid:x"]"#)));
        assert!(!c.matches(&frame(3, r#"["CLOSED","s\"1","unsupported: x"]"#)));
        assert!(!c.matches(&frame(3, r#"["CLOSED","s\"1","invalid: x",1]"#)));
        assert!(!c.matches(&frame(3, r#"["NOTICE","s\"1","invalid: x"]"#)));
        assert!(!c.matches(&frame(3, "not json")));
    }

    #[test]
    fn closed_is_byte_exact_outside_the_reason() {
        let c = closed(1, "sub", "invalid");
        // Valid JSON with the same meaning, but not the bytes the spec fixes.
        for other in [
            r#"[ "CLOSED", "sub", "invalid: x" ]"#,
            r#"["CLOSED", "sub", "invalid: x"]"#,
            r#"["CLOSED","sub","invalid: x"] "#,
            r#"["CLOSED","s\u0075b","invalid: x"]"#,
            r#"["CLOSED","sub","invalid\u003a x"]"#,
        ] {
            assert!(!c.matches(&frame(1, other)), "{other}");
        }
    }

    #[test]
    fn the_reason_follows_the_sub_id_escaping() {
        let c = closed(1, "s", "invalid");
        let ok = |reason: &str| c.matches(&frame(1, &format!(r#"["CLOSED","s","invalid: {reason}"]"#)));
        for good in [
            r##"key \"#foo\""##,
            r"a\\b",
            r"\b\t\n\f\r",
            r"\u0001\u001f",
            "é 🦀 /",
            "\u{7f}",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            r#"a"b"#,  // raw quote
            "a\nb",    // raw control character
            r"\u0041", // A needs no escape
            r"\u001B", // uppercase hex
            r"\u0009", // U+0009 has the short form \t
            r"\/",     // / is never escaped
            r"\x",     // no such escape
            r"\u00e9", // é is written raw
            r"a\",     // ends inside an escape
            r"\u00",   // short \u escape
        ] {
            assert!(!ok(bad), "{bad}");
        }
        assert!(!c.matches(&Observed::Frame {
            conn: 1,
            data: Bytes::from_static(b"[\"CLOSED\",\"s\",\"invalid: \xff\"]"),
        }));
    }

    #[test]
    fn matching_is_maximal_not_greedy() {
        // The `closed` pattern comes first and would take the frame the exact
        // expectation needs if assignment were first-fit.
        let e = [
            closed(1, "s", "invalid"),
            exact(1, r#"["CLOSED","s","invalid: a"]"#),
        ];
        let o = [
            frame(1, r#"["CLOSED","s","invalid: a"]"#),
            frame(1, r#"["CLOSED","s","invalid: b"]"#),
        ];
        assert!(compare(&e, &o, false).is_ok());
    }

    #[test]
    fn rendering() {
        assert_eq!(render_data(b"a\nb"), "a\\nb");
        assert_eq!(render_data(&[0xff, 0x00]), "hex:ff00");
        assert_eq!(
            render_expected(&closed(1, "s", "invalid")),
            "conn 1: [\"CLOSED\",\"s\",\"invalid: …\"]"
        );
        let invalid = Observed::Invalid {
            class: "truncated",
            detail: "the payload ends inside `conn`".into(),
        };
        assert!(!exact(1, "a").matches(&invalid));
        assert!(render_observed(&invalid).contains("truncated"));
    }
}
