//! Independent readings of docs/PROTOCOL.md that the tests compare the codec
//! and the framing against.
//!
//! Written from the spec text, sharing no code with the crate under test,
//! favouring obviousness over speed, so that an expected value never comes
//! from the code it checks:
//!
//! - [`framing`]: the frame layout (PROTOCOL.md#frame-layout) and how a byte
//!   stream splits into frames and ends;
//! - [`payload`]: the SubCommand and BroadcastFrame layouts
//!   (PROTOCOL.md#payloads), packed by hand.
//!
//! The repository's test-support crate (`broadcast-testkit`, never
//! published) has the same oracles, and more (reading payloads field by
//! field, the access rules), for the fuzz checks and the golden-vector tests.

pub mod framing;
pub mod payload;
