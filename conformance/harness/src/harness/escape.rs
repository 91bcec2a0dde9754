//! The JSON string of a sub_id, written from PROTOCOL.md#sub-id-json-string.
//!
//! The harness builds the exact bytes of every expected EVENT frame itself,
//! so it needs this transformation. It is deliberately written here from the
//! spec's table and not shared with the reference worker: a harness that
//! borrowed the worker's escaping would accept the worker's escaping bugs.
//!
//! There are exactly two implementations of PROTOCOL.md#sub-id-json-string in the repository, on
//! purpose: the worker's production one (`broadcast_worker::write_json_string`,
//! byte-oriented and allocation-free) and this one, the spec oracle, written
//! for obviousness. Every expectation outside the worker (the harness's
//! expected frames, the worker tests, the fuzz model, the test workers) is
//! built with this module, never with the worker's code or with
//! `serde_json`'s escaping. This oracle itself is checked against the
//! hand-written golden bytes of PROTOCOL.md#example-escaping (`spec_worked_examples`
//! below), and the worker against this oracle (broadcast-testkit's
//! `worker_commands` tests and the `worker_commands` fuzz check).

/// Writes `sub_id` as a JSON string, quotes included, by the table of
/// PROTOCOL.md#sub-id-json-string: `"` and `\` get a backslash, U+0008/0009/000A/000C/000D
/// become `\b \t \n \f \r`, every other code point below U+0020 becomes
/// `\u00xx` with lowercase hex, and everything else (`/`, U+007F, non-ASCII)
/// is copied as raw UTF-8.
///
/// ```
/// use broadcast_conformance::harness::escape::sub_id_json;
/// assert_eq!(sub_id_json("a\"b\\c\t"), "\"a\\\"b\\\\c\\t\"");
/// assert_eq!(sub_id_json("x\u{1}é\u{7f}/"), "\"x\\u0001é\u{7f}/\"");
/// ```
pub fn sub_id_json(sub_id: &str) -> String {
    let mut out = String::with_capacity(sub_id.len() + 2);
    out.push('"');
    for c in sub_id.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The data of the EVENT frame PROTOCOL.md#output-frame prescribes for a delivery of
/// `event` (the event object's raw bytes) to subscription `sub_id`.
///
/// ```
/// use broadcast_conformance::harness::escape::event_frame_data;
/// assert_eq!(event_frame_data("s", b"{}"), b"[\"EVENT\",\"s\",{}]");
/// ```
pub fn event_frame_data(sub_id: &str, event: &[u8]) -> Vec<u8> {
    let quoted = sub_id_json(sub_id);
    let mut data = Vec::with_capacity(11 + quoted.len() + event.len());
    data.extend_from_slice(b"[\"EVENT\",");
    data.extend_from_slice(quoted.as_bytes());
    data.push(b',');
    data.extend_from_slice(event);
    data.push(b']');
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of PROTOCOL.md#example-escaping, byte for byte.
    #[test]
    fn spec_worked_examples() {
        let first = sub_id_json(std::str::from_utf8(&[0x61, 0x22, 0x62, 0x5c, 0x63, 0x09]).unwrap());
        assert_eq!(
            first.as_bytes(),
            &[0x22, 0x61, 0x5c, 0x22, 0x62, 0x5c, 0x5c, 0x63, 0x5c, 0x74, 0x22]
        );
        let second = sub_id_json(std::str::from_utf8(&[0x78, 0x01, 0xc3, 0xa9, 0x7f, 0x2f]).unwrap());
        assert_eq!(
            second.as_bytes(),
            &[
                0x22, 0x78, 0x5c, 0x75, 0x30, 0x30, 0x30, 0x31, 0xc3, 0xa9, 0x7f, 0x2f, 0x22
            ]
        );
    }

    #[test]
    fn every_control_character() {
        for c in 0u32..0x20 {
            let ch = char::from_u32(c).unwrap();
            let expected = match c {
                0x08 => "\"\\b\"".to_string(),
                0x09 => "\"\\t\"".to_string(),
                0x0a => "\"\\n\"".to_string(),
                0x0c => "\"\\f\"".to_string(),
                0x0d => "\"\\r\"".to_string(),
                _ => format!("\"\\u{c:04x}\""),
            };
            assert_eq!(sub_id_json(&ch.to_string()), expected, "U+{c:04X}");
        }
        // Lowercase hex, as the spec requires.
        assert_eq!(sub_id_json("\u{1b}"), "\"\\u001b\"");
    }

    #[test]
    fn nothing_else_is_escaped() {
        for s in ["/", "\u{7f}", "é", "日本", "🦀", "'", "<>&", " "] {
            assert_eq!(sub_id_json(s), format!("\"{s}\""));
        }
    }
}
