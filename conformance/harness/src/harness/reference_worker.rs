//! Finding the reference worker binary, `broadcast-worker`, next to the
//! program that needs it (the harness, the example relay, a test), and
//! building it when it is missing and the program was started by cargo.
//! One implementation for every program of the repository that spawns the
//! reference worker by default.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The reference worker's file name.
pub const BINARY: &str = "broadcast-worker";

/// The cargo profile directory `exe` was built into: its directory, or the
/// one above for the `examples/` and `deps/` subdirectories.
///
/// ```
/// use broadcast_conformance::harness::reference_worker::profile_dir;
/// use std::path::Path;
///
/// assert_eq!(profile_dir(Path::new("/t/release/examples/relay")), Some(Path::new("/t/release")));
/// assert_eq!(profile_dir(Path::new("/t/debug/broadcast-conformance")), Some(Path::new("/t/debug")));
/// ```
pub fn profile_dir(exe: &Path) -> Option<&Path> {
    let dir = exe.parent()?;
    match dir.file_name().and_then(OsStr::to_str) {
        Some("examples" | "deps") => dir.parent(),
        _ => Some(dir),
    }
}

/// The reference worker built for the same profile as `exe`
/// (`<target>/<profile>/broadcast-worker`). When the environment has
/// `CARGO` (the program was started by `cargo run`, `cargo test` or `cargo
/// bench`) and the worker is missing, or older than `exe` (cargo just
/// rebuilt the program, so the worker's sources may have changed too; a
/// stale worker would be tested without anyone noticing), it is built first
/// with that cargo, profile and target directory: a no-op when it is up to
/// date. An error says where it was looked for and how to get it.
///
/// ```no_run
/// use broadcast_conformance::harness::reference_worker;
///
/// let exe = std::env::current_exe().unwrap();
/// let worker = reference_worker::locate(&exe).unwrap();
/// assert!(worker.ends_with("broadcast-worker"));
/// ```
pub fn locate(exe: &Path) -> Result<PathBuf, String> {
    let dir = profile_dir(exe).ok_or_else(|| format!("{} has no parent directory", exe.display()))?;
    let worker = dir.join(BINARY);
    if let Some(cargo) = std::env::var_os("CARGO")
        && (!worker.is_file() || is_older(&worker, exe))
    {
        build(&cargo, dir);
    }
    if worker.is_file() {
        Ok(worker)
    } else {
        Err(format!(
            "the reference worker {} does not exist; install it with \
             `cargo install broadcast-worker`, or name a worker command",
            worker.display()
        ))
    }
}

/// Whether `path` was last modified before `than` (false when either time
/// is unknown).
fn is_older(path: &Path, than: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(path), modified(than)), (Some(a), Some(b)) if a < b)
}

/// Runs `cargo build --bin broadcast-worker` for the profile directory
/// `profile_dir` (`<target>/<profile dir>`), when this package sits in the
/// repository (the worker package is then in `worker/` beside it).
/// Failures are left to the caller, which finds the worker still missing.
fn build(cargo: &OsStr, profile_dir: &Path) {
    let Some(target_dir) = profile_dir.parent() else {
        return;
    };
    let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return,
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("worker")
        .join("Cargo.toml");
    if !manifest.is_file() {
        return;
    }
    eprintln!("bringing the reference worker up to date (cargo build --profile {profile} --bin {BINARY})");
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "--bin",
            BINARY,
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(std::process::Stdio::null())
        .status();
    if let Err(e) = status {
        eprintln!("cannot run cargo: {e}");
    }
}
