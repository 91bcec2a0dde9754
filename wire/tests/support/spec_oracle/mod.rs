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
//!   (PROTOCOL.md#payloads), packed by hand and read field by field with
//!   the spec's error precedence.
//!
//! The repository's test-support crate (`broadcast-testkit`, never
//! published) includes these two files by path for its fuzz checks and
//! golden-vector tests: there is one copy of each oracle.

pub mod framing;
pub mod payload;
