//! The probe of PROTOCOL.md#probe: how the harness knows a step is finished,
//! using only commands every conforming worker understands.
//!
//! Set-up is New for conn 2147483647 and an Add with sub_id
//! `conformance-probe`; after each step the harness broadcasts a fresh
//! kind-29999 event tagged `["t","conformance-probe"]`. By the ordering rule
//! (PROTOCOL.md#ordering) the probe's frame to the probe connection comes after every frame
//! the step caused.

use std::collections::HashSet;

use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags, SubCommand, SubId};
use bytes::Bytes;

/// The probe connection, i32::MAX; scenarios never use it.
pub const PROBE_CONN: i32 = i32::MAX;

/// The probe subscription's id.
pub const PROBE_SUB_ID: &str = "conformance-probe";

/// The probe REQ of PROTOCOL.md#probe-setup, in its compact form.
pub const PROBE_REQ: &str = r##"["REQ","conformance-probe",{"kinds":[29999],"#t":["conformance-probe"]}]"##;

/// Kind of every probe event.
pub const PROBE_KIND: u32 = 29999;

/// Fixed leading hex digits of every probe event id. A distinctive prefix
/// keeps probe ids apart from the simple ids scenario authors like to write
/// (`000…01`), so no scenario event is ever mistaken for a probe.
const PROBE_ID_PREFIX: &str = "c0f0c0f0";

/// The two set-up commands of PROTOCOL.md#probe-setup.
pub fn setup_commands() -> [SubCommand; 2] {
    [
        SubCommand::New {
            conn: PROBE_CONN,
            flags: NewFlags::EMPTY,
        },
        SubCommand::Add {
            conn: PROBE_CONN,
            flags: ReservedFlags::EMPTY,
            sub_id: SubId::try_from(PROBE_SUB_ID).unwrap_or_else(|_| unreachable!("a valid constant")),
            req: Bytes::from_static(PROBE_REQ.as_bytes()),
        },
    ]
}

/// Issues probe events for one worker session and recognises their frames.
#[derive(Debug, Default)]
pub struct Prober {
    issued: HashSet<String>,
    next: u64,
}

/// One probe: the Bcast to send and the id whose frame ends the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The probe event's id (64 lowercase hex).
    pub id: String,
    /// The Bcast command carrying it (flags 0, sender −1).
    pub command: SubCommand,
}

impl Prober {
    /// A prober with no probe issued yet.
    pub fn new() -> Prober {
        Prober::default()
    }

    /// A fresh probe with an id never used before in this session.
    pub fn next_probe(&mut self) -> Probe {
        self.next += 1;
        let id = format!("{PROBE_ID_PREFIX}{:056x}", self.next);
        let event = format!(
            concat!(
                r#"["EVENT",{{"id":"{id}","pubkey":"{pk}","created_at":{ts},"kind":{kind},"#,
                r#""tags":[["t","conformance-probe"]],"content":"","sig":"{sig}"}}]"#
            ),
            id = id,
            pk = "c0f0".repeat(16),
            ts = 1_700_000_000u64 + self.next,
            kind = PROBE_KIND,
            sig = "c0f0".repeat(32),
        );
        self.issued.insert(id.clone());
        Probe {
            id,
            command: SubCommand::Bcast {
                sender: -1,
                flags: BcastFlags::EMPTY,
                event: event.into(),
            },
        }
    }

    /// The probe id a frame carries, if its data is an EVENT message whose
    /// event `id` is one of this session's probes (PROTOCOL.md#probe-observed, read as in note
    /// N-25). The event is parsed rather than compared byte for byte, so a
    /// worker that re-serialises events still synchronises and its bug shows
    /// up in the scenario frames, not as a hang on every step.
    pub fn probe_id_of(&self, data: &[u8]) -> Option<String> {
        // Cheap pre-check: every probe id starts with the prefix.
        if !contains(data, PROBE_ID_PREFIX.as_bytes()) {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(data).ok()?;
        let array = value.as_array()?;
        if array.first()?.as_str()? != "EVENT" {
            return None;
        }
        let id = array.last()?.as_object()?.get("id")?.as_str()?;
        self.issued.contains(id).then(|| id.to_string())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_unique_valid_and_recognised() {
        let mut p = Prober::new();
        let a = p.next_probe();
        let b = p.next_probe();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 64);
        assert!(
            a.id.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        let SubCommand::Bcast { event, sender, flags } = &a.command else {
            panic!()
        };
        assert_eq!((*sender, flags.bits()), (-1, 0));
        let parsed: serde_json::Value = serde_json::from_slice(event).unwrap();
        assert_eq!(parsed[1]["kind"], 29999);
        assert_eq!(parsed[1]["tags"][0][1], "conformance-probe");
        assert_eq!(parsed[1]["sig"].as_str().unwrap().len(), 128);
        // The frame the worker sends for it: ["EVENT",sub_id,<event>].
        let frame = format!(
            "[\"EVENT\",\"conformance-probe\",{}]",
            &std::str::from_utf8(event).unwrap()[9..event.len() - 1]
        );
        assert_eq!(p.probe_id_of(frame.as_bytes()), Some(a.id.clone()));
        assert_eq!(p.probe_id_of(br#"["EVENT","s",{"id":"00"}]"#), None);
        // An id with the prefix that was never issued is not a probe.
        let other = format!(r#"["EVENT","s",{{"id":"{}{:056x}"}}]"#, PROBE_ID_PREFIX, 999);
        assert_eq!(p.probe_id_of(other.as_bytes()), None);
    }

    #[test]
    fn setup_matches_the_spec_bytes() {
        let [new, add] = setup_commands();
        assert_eq!(new.conn(), 2147483647);
        assert_eq!(add.data(), PROBE_REQ.as_bytes());
        assert_eq!(
            PROBE_REQ,
            "[\"REQ\",\"conformance-probe\",{\"kinds\":[29999],\"#t\":[\"conformance-probe\"]}]"
        );
    }
}
