//! Embeds the suite (`vectors/{codec,framing,scenarios,parent}/*.json` of this
//! package, an exact copy of the repository's top-level `vectors/` made by
//! `vectors/tools/copy_suite.py`) into the binary, so an installed
//! `broadcast-conformance` carries its whole suite wherever it runs.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("vectors");
    let mut list = String::from("&[\n");
    for sub in ["codec", "framing", "scenarios", "parent"] {
        let dir = root.join(sub);
        // Re-run when a file is added, removed or changed.
        println!("cargo:rerun-if-changed={}", dir.display());
        let files = json_files(&dir);
        assert!(
            !files.is_empty(),
            "no {} files: the suite is missing",
            dir.display()
        );
        for path in files {
            let name = format!(
                "{sub}/{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or_default()
            );
            let abs = path.canonicalize().unwrap_or(path);
            let _ = writeln!(
                list,
                "    ({name:?}, include_str!({:?})),",
                abs.display().to_string()
            );
        }
    }
    list.push(']');
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_vectors.rs");
    fs::write(out, list).expect("writing embedded_vectors.rs");
}

/// The `*.json` files of `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}
