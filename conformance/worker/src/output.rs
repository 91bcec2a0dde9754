//! The bytes the worker sends (PROTOCOL.md#output-frame, PROTOCOL.md#add-failure): `EVENT` and `CLOSED`
//! relay→client messages, with the sub_id written as the note's exact JSON
//! string.
//!
//! [`write_json_string`] is the production implementation of PROTOCOL
//! PROTOCOL.md#sub-id-json-string. It has exactly one counterpart, on purpose: the spec oracle
//! `broadcast_conformance::harness::escape`, written independently from the
//! spec's table so that the harness and the tests never derive an expected
//! frame from the code under test. That oracle is checked against the
//! hand-written golden bytes of PROTOCOL.md#example-escaping, and this implementation
//! against the oracle (broadcast-testkit's `worker_commands` tests and the
//! `worker_commands` fuzz check). Do not add a third.

use broadcast_wire::{BroadcastFrame, DataPart};
use bytes::Bytes;

use super::req::ReqError;

/// Appends `s` as a JSON string with the escaping of PROTOCOL.md#sub-id-json-string: `"` → `\"`,
/// `\` → `\\`, U+0008/0009/000A/000C/000D → `\b \t \n \f \r`, every other
/// code point below U+0020 → `\u00xx` (lowercase hex), nothing else
/// (non-ASCII stays raw UTF-8, `/` and U+007F stay as they are).
///
/// ```
/// let mut out = Vec::new();
/// broadcast_worker::write_json_string(&mut out, "a\"\u{1}é");
/// assert_eq!(out, "\"a\\\"\\u0001é\"".as_bytes());
/// ```
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => 0,
            // Every other byte, non-ASCII UTF-8 included, is copied as is.
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == 0 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `["EVENT",<sub_id as a JSON string>,`: the part of every EVENT message
/// for one subscription that comes before the event, computed once when
/// the subscription is created.
///
/// ```
/// use broadcast_worker::event_prefix;
/// assert_eq!(&*event_prefix("s\n1"), br#"["EVENT","s\n1","#);
/// ```
pub fn event_prefix(sub_id: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(sub_id.len() + 12);
    out.extend_from_slice(b"[\"EVENT\",");
    write_json_string(&mut out, sub_id);
    out.push(b',');
    out.into_boxed_slice()
}

/// The data of the frame delivering an event, as the parts it is made of:
/// `prefix` (from [`event_prefix`]), the event's bytes verbatim, then `]`,
/// with no other whitespace. The event is a shared part, so a writer can
/// send the same bytes to every subscription without copying them
/// ([`broadcast_wire::FrameWriter::queue_broadcast_parts`]).
///
/// ```
/// use broadcast_worker::{event_data_parts, event_prefix};
/// let event = bytes::Bytes::from_static(b"{}");
/// let prefix = event_prefix("s");
/// let data: Vec<u8> = event_data_parts(&prefix, &event).iter().flat_map(|p| p.as_slice().to_vec()).collect();
/// assert_eq!(data, br#"["EVENT","s",{}]"#);
/// ```
pub fn event_data_parts<'a>(prefix: &'a [u8], raw_event: &'a Bytes) -> [DataPart<'a>; 3] {
    [
        DataPart::Copied(prefix),
        DataPart::Shared(raw_event),
        DataPart::Copied(EVENT_SUFFIX),
    ]
}

/// What follows the event in an EVENT message.
const EVENT_SUFFIX: &[u8] = b"]";

/// The frame delivering an event, built whole: `prefix` (from
/// [`event_prefix`]), the event's bytes verbatim, then `]`, with no other
/// whitespace (the data of [`event_data_parts`], joined).
///
/// ```
/// use broadcast_worker::{event_frame, event_prefix};
/// let f = event_frame(4, &event_prefix("s"), b"{}");
/// assert_eq!((f.conn, &f.data[..]), (4, &br#"["EVENT","s",{}]"#[..]));
/// ```
pub fn event_frame(conn: i32, prefix: &[u8], raw_event: &[u8]) -> BroadcastFrame {
    let mut data = Vec::with_capacity(prefix.len() + raw_event.len() + EVENT_SUFFIX.len());
    data.extend_from_slice(prefix);
    data.extend_from_slice(raw_event);
    data.extend_from_slice(EVENT_SUFFIX);
    BroadcastFrame {
        conn,
        data: Bytes::from(data),
    }
}

/// Where [`Worker::handle`](crate::Worker::handle) puts the frames a
/// command causes, in the order they must be written.
///
/// A `Vec<BroadcastFrame>` collects them built whole (each EVENT frame
/// with its own copy of the event); a writer can instead queue an EVENT
/// frame from its parts ([`event_data_parts`]) and share the event's bytes
/// between subscriptions, as the `broadcast-worker` binary does.
///
/// ```
/// use broadcast_worker::{FrameSink, event_prefix};
/// use broadcast_wire::BroadcastFrame;
///
/// let mut out: Vec<BroadcastFrame> = Vec::new();
/// out.event(2, &event_prefix("s"), &bytes::Bytes::from_static(b"{}"));
/// assert_eq!(&out[0].data[..], br#"["EVENT","s",{}]"#);
/// ```
pub trait FrameSink {
    /// A frame built whole (a `CLOSED` refusal).
    fn frame(&mut self, frame: BroadcastFrame);

    /// The frame delivering `raw_event` to a subscription of `conn`, whose
    /// [`event_prefix`] is `prefix`: its data is [`event_data_parts`].
    fn event(&mut self, conn: i32, prefix: &[u8], raw_event: &Bytes);
}

impl FrameSink for Vec<BroadcastFrame> {
    fn frame(&mut self, frame: BroadcastFrame) {
        self.push(frame);
    }

    fn event(&mut self, conn: i32, prefix: &[u8], raw_event: &Bytes) {
        self.push(event_frame(conn, prefix, raw_event));
    }
}

/// The frame refusing a REQ: `["CLOSED",<sub_id>,"<prefix>: <reason>"]`.
///
/// ```
/// use broadcast_worker::{closed_frame, ReqError};
/// let f = closed_frame(4, "s", &ReqError::Invalid("no filter".into()));
/// assert_eq!(&f.data[..], br#"["CLOSED","s","invalid: no filter"]"#);
/// ```
pub fn closed_frame(conn: i32, sub_id: &str, error: &ReqError) -> BroadcastFrame {
    let message = error.to_string();
    let mut data = Vec::with_capacity(sub_id.len() + message.len() + 16);
    data.extend_from_slice(b"[\"CLOSED\",");
    write_json_string(&mut data, sub_id);
    data.push(b',');
    write_json_string(&mut data, &message);
    data.push(b']');
    BroadcastFrame {
        conn,
        data: Bytes::from(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_quote_and_backslash() {
        assert_eq!(json(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn short_escapes_for_the_five_named_controls() {
        assert_eq!(json("\u{8}\u{9}\u{a}\u{c}\u{d}"), r#""\b\t\n\f\r""#);
    }

    #[test]
    fn every_other_control_is_u00xx_lowercase() {
        for c in (0u8..0x20).filter(|c| ![8, 9, 10, 12, 13].contains(c)) {
            let s = (c as char).to_string();
            assert_eq!(json(&s), format!("\"\\u{c:04x}\""), "control {c:#x}");
        }
        assert_eq!(json("\u{1f}\u{1b}"), r#""\u001f\u001b""#);
    }

    #[test]
    fn nothing_else_is_escaped() {
        let s = "/\u{7f} é€😀<>&'";
        assert_eq!(json(s), format!("\"{s}\""));
    }

    #[test]
    fn agrees_with_serde_json_on_every_code_point_below_0x80() {
        // serde_json documents the same escaping; a second opinion, not the oracle.
        for c in 0u8..0x80 {
            let s = format!("x{}y", c as char);
            assert_eq!(json(&s), serde_json::to_string(&s).unwrap(), "byte {c:#x}");
        }
    }

    #[test]
    fn event_frame_bytes_exactly() {
        let raw = br#"{"id":"x" , "content":"a b"}"#;
        let f = event_frame(9, &event_prefix("sub\"1"), raw);
        assert_eq!(f.conn, 9);
        assert_eq!(&f.data[..], br#"["EVENT","sub\"1",{"id":"x" , "content":"a b"}]"#);
    }

    #[test]
    fn event_data_parts_join_to_event_frame_data() {
        let raw = Bytes::from_static(br#"{"id":"x"}"#);
        let prefix = event_prefix("s\u{1}");
        let joined: Vec<u8> = event_data_parts(&prefix, &raw)
            .iter()
            .flat_map(|part| part.as_slice().to_vec())
            .collect();
        assert_eq!(joined, event_frame(0, &prefix, &raw).data);
    }

    #[test]
    fn closed_frame_escapes_the_reason_too() {
        let f = closed_frame(1, "é", &ReqError::Unsupported("key \"#foo\"".into()));
        assert_eq!(
            &f.data[..],
            r##"["CLOSED","é","unsupported: key \"#foo\""]"##.as_bytes()
        );
    }
}
