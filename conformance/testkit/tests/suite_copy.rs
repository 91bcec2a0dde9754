//! The harness embeds `conformance/harness/vectors/`, which must be an exact copy of
//! the repository's `vectors/` (made by `vectors/tools/copy_suite.py`; CI
//! also regenerates and diffs it). This catches a stale copy on every
//! `cargo test`, before the installed harness could ship an old suite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn json_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["codec", "framing", "scenarios", "parent"] {
        let dir = root.join(sub);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "json") {
                let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn the_harness_suite_is_an_exact_copy_of_the_golden_vectors() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let golden = json_files(&repo.join("vectors"));
    let copy = json_files(&repo.join("conformance/harness/vectors"));
    assert!(
        golden.len() >= 20,
        "the golden vectors are missing: {:?}",
        golden.keys()
    );
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&copy),
        names(&golden),
        "run python3 vectors/tools/copy_suite.py"
    );
    for (name, bytes) in &golden {
        assert!(
            copy[name] == *bytes,
            "{name} differs: run python3 vectors/tools/copy_suite.py"
        );
    }
}
