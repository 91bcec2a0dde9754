//! Independent readings of docs/PROTOCOL.md, the oracles the tests and the
//! fuzz checks compare the crates against.
//!
//! Everything here is written from the spec text, shares no code with the
//! crates under test (`broadcast_wire`'s codec and framing, the reference
//! worker) and favours obviousness over speed, so an expected value never
//! comes from the code it checks. There is one oracle per concept:
//!
//! - [`framing`]: the frame layout (PROTOCOL.md#frame-layout) and how a byte stream splits into
//!   frames and ends;
//! - [`payload`]: the SubCommand and BroadcastFrame layouts (PROTOCOL.md#payloads), packing
//!   them by hand and reading them field by field with the error precedence;
//! - [`access`]: the kind lists of the access rules.
//!
//! The JSON string of a sub_id (PROTOCOL.md#sub-id-json-string) has its oracle in the harness,
//! `broadcast_conformance::harness::escape`, because the harness needs it to
//! build expected frames; tests use that one.

pub mod access;
// One copy of the framing and payload oracles, shared with the codec
// crate's own tests (which must build from the unpacked .crate, so the
// files live there).
#[path = "../../../../wire/tests/support/spec_oracle/framing.rs"]
pub mod framing;
#[path = "../../../../wire/tests/support/spec_oracle/payload.rs"]
pub mod payload;
