//! The conformance harness of the broadcast-wire protocol, version 1
//! (`docs/PROTOCOL.md`), behind the `broadcast-conformance` binary: it
//! replays the golden scenario suite, embedded in the binary, against any
//! worker over real pipes or a socketpair, and reports one verdict per
//! requirement (human, JSON lines, JUnit). See [`harness`] and
//! `docs/CONFORMANCE.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod harness;
