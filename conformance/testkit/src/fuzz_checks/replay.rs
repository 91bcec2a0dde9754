//! Replays committed fuzz inputs through a check function, for the stable
//! regression tests `tests/fuzz_corpus_wire.rs` and
//! `tests/fuzz_corpus_worker.rs`.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Every file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`,
/// sorted. The corpus must exist and not be empty, so a moved or deleted
/// corpus fails here instead of silently testing nothing.
fn inputs(fuzz_dir: &Path, target: &str) -> Vec<PathBuf> {
    let list = |dir: PathBuf| -> Vec<PathBuf> {
        match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.expect("readable directory entry").path())
                .filter(|p| p.is_file())
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut files = list(fuzz_dir.join("corpus").join(target));
    assert!(!files.is_empty(), "no committed corpus for fuzz target {target}");
    files.extend(list(fuzz_dir.join("artifacts").join(target)));
    files.sort();
    files
}

/// The repository's `fuzz/` directory, where the committed corpora live.
pub fn repository_fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// [`replay`] over the repository's own committed corpus and artifacts of
/// `target`.
pub fn replay_committed(target: &str, check: fn(&[u8])) {
    replay(&repository_fuzz_dir(), target, check);
}

/// Runs `check` on every input of `target` (`fuzz_dir` is the repository's
/// `fuzz/`) and reports all failing files at once.
pub fn replay(fuzz_dir: &Path, target: &str, check: fn(&[u8])) {
    let files = inputs(fuzz_dir, target);
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).expect("readable corpus file");
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            failures.push(format!("{}: {why}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Declares one `#[test]` per fuzz target, each replaying that target's
/// committed corpus and artifacts through its check with
/// [`replay_committed`]: `replay_tests! { target_name => check_fn, … }`.
#[macro_export]
macro_rules! replay_tests {
    ($($target:ident => $check:path),+ $(,)?) => {
        $(
            #[test]
            fn $target() {
                $crate::fuzz_checks::replay::replay_committed(stringify!($target), $check);
            }
        )+
    };
}
