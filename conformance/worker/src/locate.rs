//! Finding the reference worker binary, `broadcast-worker`, next to the
//! program that needs it (the conformance harness, the example relay, a
//! test or a benchmark), and building it when it is missing and the program
//! was started by cargo. One implementation for every program that spawns
//! the reference worker by default, and, through [`locate_sibling`], for
//! any other binary a program finds beside itself (the conformance
//! harness's reference parent adapter).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The reference worker's file name.
pub const BINARY: &str = "broadcast-worker";

/// The cargo profile directory `exe` was built into: its directory, or the
/// one above for the `examples/` and `deps/` subdirectories.
///
/// ```
/// use broadcast_worker::locate::profile_dir;
/// use std::path::Path;
///
/// assert_eq!(profile_dir(Path::new("/t/release/examples/relay")), Some(Path::new("/t/release")));
/// assert_eq!(profile_dir(Path::new("/t/debug/broadcast-conformance")), Some(Path::new("/t/debug")));
/// assert_eq!(profile_dir(Path::new("/t/debug/deps/harness_suite-0123")), Some(Path::new("/t/debug")));
/// ```
pub fn profile_dir(exe: &Path) -> Option<&Path> {
    let dir = exe.parent()?;
    match dir.file_name().and_then(OsStr::to_str) {
        Some("examples" | "deps") => dir.parent(),
        _ => Some(dir),
    }
}

/// The reference worker built for the same profile as `exe`
/// (`<target>/<profile>/broadcast-worker`; after `cargo install`, the same
/// `bin` directory). When the environment has `CARGO` (the program was
/// started by `cargo run`, `cargo test` or `cargo bench`) and the worker is
/// missing, or older than `exe` (cargo just rebuilt the program, so the
/// worker's sources may have changed too; a stale worker would be used
/// without anyone noticing), it is built first with that cargo, profile and
/// target directory: a no-op when it is up to date. An error says where it
/// was looked for and how to get it.
///
/// ```no_run
/// let exe = std::env::current_exe().unwrap();
/// let worker = broadcast_worker::locate::locate(&exe).unwrap();
/// assert!(worker.ends_with("broadcast-worker"));
/// ```
pub fn locate(exe: &Path) -> Result<PathBuf, String> {
    locate_with(exe, &worker_sibling(), std::env::var_os("CARGO").as_deref())
}

/// A binary that a program finds next to itself, and how to get it when it
/// is missing: the package that builds it, and that package's source
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling<'a> {
    /// The binary's file name (`broadcast-worker`).
    pub binary: &'a str,
    /// What it is, for the error message ("the reference worker").
    pub what: &'a str,
    /// The package that builds it (`broadcast-worker`), for `cargo install`.
    pub package: &'a str,
    /// That package's directory (its `CARGO_MANIFEST_DIR` at build time),
    /// where cargo builds it from when it is a source checkout.
    pub package_dir: &'a Path,
    /// What else the user can do, ending the error message ("name a worker
    /// command").
    pub instead: &'a str,
}

fn worker_sibling() -> Sibling<'static> {
    Sibling {
        binary: BINARY,
        what: "the reference worker",
        package: "broadcast-worker",
        package_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
        instead: "name a worker command",
    }
}

/// [`locate`] for any binary: `sibling.binary` built for the same profile
/// as `exe`, built first with the cargo that started the program when it
/// is missing or older than `exe` (and `sibling.package_dir` is a source
/// checkout), exactly as [`locate`] does for the reference worker.
///
/// ```no_run
/// use broadcast_worker::locate::{Sibling, locate_sibling};
/// use std::path::Path;
///
/// let exe = std::env::current_exe().unwrap();
/// let adapter = locate_sibling(&exe, &Sibling {
///     binary: "broadcast-parent-adapter",
///     what: "the reference parent adapter",
///     package: "broadcast-conformance",
///     package_dir: Path::new("/src/broadcast-wire/conformance/harness"),
///     instead: "name an adapter command",
/// }).unwrap();
/// assert!(adapter.ends_with("broadcast-parent-adapter"));
/// ```
pub fn locate_sibling(exe: &Path, sibling: &Sibling<'_>) -> Result<PathBuf, String> {
    locate_with(exe, sibling, std::env::var_os("CARGO").as_deref())
}

/// [`locate_sibling`] with the cargo that started the program, if any.
fn locate_with(exe: &Path, sibling: &Sibling<'_>, cargo: Option<&OsStr>) -> Result<PathBuf, String> {
    let dir = profile_dir(exe).ok_or_else(|| format!("{} has no parent directory", exe.display()))?;
    let path = dir.join(sibling.binary);
    if let Some(cargo) = cargo {
        if !path.is_file() || is_older(&path, exe) {
            build(cargo, dir, sibling);
        }
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} {} does not exist; install it with `cargo install {}`, or {}",
            sibling.what,
            path.display(),
            sibling.package,
            sibling.instead
        ))
    }
}

/// Whether `path` was last modified before `than` (false when either time
/// is unknown).
fn is_older(path: &Path, than: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(path), modified(than)), (Some(a), Some(b)) if a < b)
}

/// The manifest to build a binary from: its package's own (`dir`), when it
/// is a source checkout (a path or git dependency, or the repository's
/// workspace member). A copy unpacked from a `.crate` (the crates.io
/// registry, `cargo install`, `.ci/package-check`) carries the
/// `Cargo.toml.orig` that `cargo package` writes; cargo must not build in
/// such a copy, so there is no manifest then.
fn source_manifest(dir: &Path) -> Option<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    (manifest.is_file() && !dir.join("Cargo.toml.orig").exists()).then_some(manifest)
}

/// Runs `cargo build --bin <binary>` for the profile directory
/// `profile_dir` (`<target>/<profile dir>`) from the sibling's package
/// sources ([`source_manifest`]). Failures are left to the caller, which
/// finds the binary still missing.
fn build(cargo: &OsStr, profile_dir: &Path, sibling: &Sibling<'_>) {
    let Some(target_dir) = profile_dir.parent() else {
        return;
    };
    let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return,
    };
    let Some(manifest) = source_manifest(sibling.package_dir) else {
        return;
    };
    eprintln!(
        "bringing {} up to date (cargo build --profile {profile} --bin {})",
        sibling.what, sibling.binary
    );
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "--bin",
            sibling.binary,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty profile directory of its own under the system's
    /// temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("broadcast-worker-locate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn finds_the_worker_beside_the_program_without_cargo() {
        let dir = scratch("found");
        let exe = dir.join("broadcast-conformance");
        std::fs::write(&exe, b"").unwrap();
        std::fs::write(dir.join(BINARY), b"").unwrap();
        assert_eq!(locate_with(&exe, &worker_sibling(), None), Ok(dir.join(BINARY)));
        // From an example or a test binary: the directory above.
        assert_eq!(
            locate_with(&dir.join("deps").join("t-0123"), &worker_sibling(), None),
            Ok(dir.join(BINARY))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_worker_is_an_error_naming_where_it_was_looked_for() {
        let dir = scratch("missing");
        let err = locate_with(&dir.join("relay"), &worker_sibling(), None).unwrap_err();
        assert!(err.contains(&dir.join(BINARY).display().to_string()), "{err}");
        assert!(err.contains("cargo install broadcast-worker"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
