//! `broadcast-parent-adapter`: the reference adapter of the parent suite
//! (docs/CONFORMANCE.md, "Testing a parent"), a parent built on the
//! handles of broadcast-process. See `--help`, and the library module
//! `broadcast_conformance::parent_adapter`.

use std::process::ExitCode;

use broadcast_conformance::parent_adapter::{self, Args};
use clap::Parser;

fn main() -> ExitCode {
    parent_adapter::main(Args::parse())
}
