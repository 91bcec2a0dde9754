//! Reference implementation and conformance tooling for the broadcast worker
//! protocol, version 1 (`docs/PROTOCOL.md`).
//!
//! - [`worker`]: the reference broadcast worker as a library type, a command
//!   in and frames out ([`worker::Worker`]), with its subscription registry,
//!   NIP-01 filter matching (an indexed matcher and a linear oracle) and the
//!   access rules. The `broadcast-worker` binary runs it over stdio or a
//!   socketpair fd.
//! - [`harness`]: the conformance harness behind the `broadcast-conformance`
//!   binary (scenario replay over real pipes, reports, stream tools).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod harness;
pub mod worker;
