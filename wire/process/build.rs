//! Sets `cfg(reference_worker)` when this crate is built inside its
//! repository, where its dev-dependency on `broadcast-worker` (the
//! reference worker, a path dependency) exists. `cargo package` drops that
//! dev-dependency (the worker depends on this crate, so it cannot be a
//! versioned one), so the tests that check supervision against the
//! reference worker are compiled only here; everything else, and every
//! other test, builds and runs from the unpacked `.crate` as well.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(reference_worker)");
    println!("cargo::rerun-if-changed=build.rs");
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let worker = Path::new(&dir).join("../../conformance/worker/Cargo.toml");
    println!("cargo::rerun-if-changed={}", worker.display());
    if worker.exists() {
        println!("cargo::rustc-cfg=reference_worker");
    }
}
