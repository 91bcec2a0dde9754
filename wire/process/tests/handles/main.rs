//! The process-level tests of `broadcast-process`: the four handles
//! (`Broadcaster`, `ShardedBroadcaster`, and with the `tokio` feature
//! `AsyncBroadcaster`, `AsyncShardedBroadcaster`) against real worker
//! processes, on both transports.
//!
//! One test binary, with its own `main` (`harness = false`, run by
//! libtest-mimic, so filters, `--exact`, `--list` and parallel threads work
//! as with the built-in harness), because it is also the worker the tests
//! spawn: with [`WORKER_ENV`](support::WORKER_ENV) set it runs as the echo
//! worker (`echo_worker.rs`) on its arguments, before anything is printed
//! on stdout (its frame stream). So the tests need no binary of another
//! package, and run the same from the unpacked `.crate`.
//!
//! - `suite`: the behaviour every handle owes, written once against
//!   `support::handle::Handle` and run for each handle on each transport
//!   (`suite::<case>::<handle>::<transport>`), with the regressions of
//!   issue 15;
//! - the other modules: what is particular to one handle, or the tests as
//!   they were written for it (`blocking_io`, `lifecycle`, `backpressure`,
//!   `sigpipe`, `sharded_*`, `async_*`).

#[cfg(target_os = "linux")]
mod echo_worker;
#[cfg(target_os = "linux")]
mod support;

#[cfg(target_os = "linux")]
mod backpressure;
#[cfg(target_os = "linux")]
mod blocking_io;
#[cfg(target_os = "linux")]
mod lifecycle;
#[cfg(target_os = "linux")]
mod sharded_backpressure;
#[cfg(target_os = "linux")]
mod sharded_lifecycle;
#[cfg(target_os = "linux")]
mod sharded_routing;
#[cfg(target_os = "linux")]
mod sigpipe;
#[cfg(target_os = "linux")]
mod suite;
// Supervision against the reference worker, a dev-dependency inside the
// repository only (build.rs sets `reference_worker` there; `cargo package`
// drops the dependency, so the unpacked `.crate` runs every other trial).
#[cfg(all(target_os = "linux", reference_worker))]
mod supervise;
#[cfg(all(target_os = "linux", reference_worker))]
mod supervise_sharded;

#[cfg(all(target_os = "linux", feature = "tokio"))]
mod async_sharded;
#[cfg(all(target_os = "linux", feature = "tokio"))]
mod async_single;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    if std::env::var_os(support::WORKER_ENV).is_some() {
        // SAFETY: the first thing this process does as a worker, before
        // anything takes a descriptor (the fd-safety policy of
        // broadcast_process::worker_io: `--fd N` is taken only if it was
        // inherited).
        #[allow(unsafe_code)]
        let _ = unsafe { broadcast_process::worker_io::init_inherited_fds() };
        return echo_worker::main(std::env::args().skip(1));
    }
    sigpipe::restore_default_if_asked();

    let args = libtest_mimic::Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(blocking_io::tests());
    trials.extend(lifecycle::tests());
    trials.extend(backpressure::tests());
    trials.extend(sigpipe::tests());
    trials.extend(sharded_routing::tests());
    trials.extend(sharded_lifecycle::tests());
    trials.extend(sharded_backpressure::tests());
    #[cfg(feature = "tokio")]
    {
        trials.extend(async_single::tests());
        trials.extend(async_sharded::tests());
    }
    trials.extend(suite::tests());
    #[cfg(reference_worker)]
    {
        trials.extend(supervise::tests());
        trials.extend(supervise_sharded::tests());
    }
    libtest_mimic::run(&args, trials).exit_code()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    // The tests read /proc and rely on Linux pipe and socket behaviour.
    println!("broadcast-process handles tests: Linux only, nothing run");
}
