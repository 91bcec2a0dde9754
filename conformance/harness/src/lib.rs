//! The conformance harness of the broadcast-wire protocol, version 1
//! (`docs/PROTOCOL.md`), behind the `broadcast-conformance` binary: it
//! replays the golden scenario suite, embedded in the binary, against any
//! worker over real pipes or a socketpair, and reports one verdict per
//! requirement (human, JSON lines, JUnit). See [`harness`] and
//! `docs/CONFORMANCE.md`.
//!
//! [`parent_adapter`] is the `broadcast-parent-adapter` binary: the
//! reference adapter of the parent suite, a parent built on each handle of
//! `broadcast-process`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod harness;
pub mod parent_adapter;
