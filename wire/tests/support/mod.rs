//! What the integration tests of broadcast-wire share: scripted readers and
//! writers ([`scripted_io`]) and the independent reading of the spec that
//! expected bytes come from ([`spec_oracle`]). It lives beside the tests so
//! that they build and pass from the published `.crate` alone.
//!
//! Each test binary uses a different subset.
#![allow(dead_code)]

pub mod scripted_io;
pub mod spec_oracle;
