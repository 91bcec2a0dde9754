//! `broadcast-conformance`: the conformance harness for broadcast workers.
//! See docs/CONFORMANCE.md, or run it with `--help`.

use std::process::ExitCode;

use broadcast_conformance::harness::{app, cli::Cli};
use clap::Parser;

fn main() -> ExitCode {
    app::main(Cli::parse())
}
