//! `broadcast-conformance`: the conformance harness for broadcast workers.
//! See docs/CONFORMANCE.md, or run it with `--help`.

use std::process::ExitCode;

use broadcast_conformance::harness::{app, cli::Cli};
use clap::Parser;

fn main() -> ExitCode {
    // The parent suite's stand-in worker (`parent-worker --fd N`) takes an
    // inherited socketpair end, so the inherited descriptors are claimed
    // before anything else can take one; no other subcommand needs it.
    if std::env::args_os().nth(1).is_some_and(|a| a == "parent-worker") {
        // SAFETY: the first statement of main: no descriptor has been
        // taken by anything yet.
        #[allow(unsafe_code)]
        if let Err(e) = unsafe { broadcast_process::worker_io::init_inherited_fds() } {
            eprintln!("broadcast-conformance parent-worker: cannot list inherited descriptors: {e}");
            return ExitCode::from(2);
        }
    }
    app::main(Cli::parse())
}
