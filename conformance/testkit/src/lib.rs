//! Test support of the broadcast-wire repository (`publish = false`).
//!
//! The integration tests of the workspace live in this package's `tests/`
//! (except the process layer's, which `broadcast-process` keeps beside its
//! code, in `wire/process/tests/`), next to what only tests need: the test
//! worker `conformance-testee`, the spec oracles the fuzz checks compare
//! against, the scripted readers and writers, and helpers to drive the real
//! binaries.
//! The published crates keep their unit tests and doctests, so each of them
//! builds and tests on its own when unpacked from its `.crate`.

pub mod events;
pub mod fuzz_checks;
pub mod harness_run;
// One copy of the scripted I/O, shared with the codec crate's own tests
// (which must build from the unpacked .crate, so the file lives there).
#[path = "../../../wire/tests/support/scripted_io.rs"]
pub mod scripted_io;
pub mod spec_oracle;
pub mod worker_process;

use std::path::PathBuf;

/// A binary of this package, built by cargo next to the test or bench that
/// calls this (`<target>/<profile>/<name>`).
///
/// `env!("CARGO_BIN_EXE_<name>")` would say the same, but cargo sets it for
/// integration tests and benches only, not for this library.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable under <target>/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; cargo builds this package's bins for its tests and benches",
        path.display()
    );
    path
}

/// [`bin`] as a `&'static str`, for argument lists. Each path is made once.
pub fn bin_str(name: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PATHS: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    paths.entry(name.to_owned()).or_insert_with(|| {
        let path = bin(name)
            .into_os_string()
            .into_string()
            .expect("a UTF-8 target path");
        Box::leak(path.into_boxed_str())
    })
}
