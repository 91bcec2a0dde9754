//! Where the golden vectors come from, and loading the scenario suite.
//!
//! Default: the suite embedded at build time by `build.rs` (the package's
//! `vectors/`, an exact copy of the repository's, checked by CI), so the
//! binary behaves the same in the repository, installed, or anywhere else.
//! `--vectors DIR` reads another copy from disk.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::scenario::{Case, ScenarioFile, VectorError, compile_file};

/// Files embedded by build.rs: (path under vectors/, contents).
const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/embedded_vectors.rs"));

/// A set of vector files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VectorSource {
    /// A directory laid out like the repository's `vectors/`.
    Dir(PathBuf),
    /// The copy built into the binary.
    Embedded,
}

/// A vectors directory that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

impl VectorSource {
    /// `--vectors DIR` if given, else the embedded suite.
    pub fn resolve(dir: Option<&Path>) -> VectorSource {
        match dir {
            Some(d) => VectorSource::Dir(d.to_path_buf()),
            None => VectorSource::Embedded,
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            VectorSource::Dir(d) => d.display().to_string(),
            VectorSource::Embedded => "the vectors embedded in this binary".to_string(),
        }
    }

    /// The `*.json` files of subdirectory `sub` (`codec`, `framing`,
    /// `scenarios`), sorted by name, as (display name, text).
    pub fn files(&self, sub: &str) -> Result<Vec<(String, String)>, SourceError> {
        let files = match self {
            VectorSource::Dir(root) => {
                let dir = root.join(sub);
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    SourceError(format!("cannot read vectors directory {}: {e}", dir.display()))
                })?;
                let mut paths: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                    .collect();
                paths.sort();
                paths
                    .into_iter()
                    .map(|p| {
                        std::fs::read_to_string(&p)
                            .map(|text| (p.display().to_string(), text))
                            .map_err(|e| SourceError(format!("{}: {e}", p.display())))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            VectorSource::Embedded => EMBEDDED
                .iter()
                .filter(|(name, _)| name.strip_prefix(sub).is_some_and(|r| r.starts_with('/')))
                .map(|(name, text)| (format!("<embedded>/{name}"), text.to_string()))
                .collect(),
        };
        if files.is_empty() {
            return Err(SourceError(format!(
                "no {sub}/*.json files in {}; pass --vectors DIR pointing at a vectors/ directory",
                self.describe()
            )));
        }
        Ok(files)
    }
}

/// Why a suite could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The directory is missing or unreadable.
    Source(SourceError),
    /// A file or case is invalid.
    Vector(VectorError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Source(e) => e.fmt(f),
            LoadError::Vector(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Every file of `dir` in `source`, compiled by `compile` and checked as
/// one suite: every file valid, every section (`keys`: a file's section
/// and case ids) in one file only, every case id unique across files. The
/// worker suite and the parent suite load alike through it.
pub fn load_sections<F>(
    source: &VectorSource,
    dir: &str,
    compile: impl Fn(&str, &str) -> Result<F, VectorError>,
    keys: impl Fn(&F) -> (&str, Vec<&str>),
) -> Result<Vec<F>, LoadError> {
    let mut files = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut sections: HashMap<String, String> = HashMap::new();
    for (name, text) in source.files(dir).map_err(LoadError::Source)? {
        let file = compile(&name, &text).map_err(LoadError::Vector)?;
        let (section, case_ids) = keys(&file);
        if let Some(other) = sections.insert(section.to_string(), name.clone()) {
            return Err(LoadError::Vector(VectorError {
                file: name,
                case: None,
                reason: format!("section {section:?} is also used by {other}"),
            }));
        }
        for id in case_ids {
            if let Some(other) = ids.insert(id.to_string(), name.clone()) {
                return Err(LoadError::Vector(VectorError {
                    file: name,
                    case: Some(id.to_string()),
                    reason: format!("duplicate case id (also in {other})"),
                }));
            }
        }
        files.push(file);
    }
    Ok(files)
}

/// All scenario files of a source, checked: every file valid, every case id
/// unique across files, every section in one file only.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The files, sorted by name.
    pub files: Vec<ScenarioFile>,
}

impl Suite {
    /// Loads and checks `vectors/scenarios/*.json`.
    pub fn load(source: &VectorSource) -> Result<Suite, LoadError> {
        let files = load_sections(source, "scenarios", compile_file, |f: &ScenarioFile| {
            (
                f.section.as_str(),
                f.cases.iter().map(|c| c.id.as_str()).collect(),
            )
        })?;
        Ok(Suite { files })
    }

    /// Every case, in file order.
    pub fn cases(&self) -> impl Iterator<Item = &Case> {
        self.files.iter().flat_map(|f| f.cases.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join("scenarios")).unwrap();
        std::fs::write(dir.join("scenarios").join(name), text).unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("harness-src-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    const CASE: &str = r#"{"id":"a/x/1","level":"MUST","requirement":"r","steps":[{"send":[],"expect":[]}]}"#;

    #[test]
    fn missing_dir_and_duplicates_are_errors() {
        let d = tmp("missing");
        let err = Suite::load(&VectorSource::Dir(d.clone())).unwrap_err();
        assert!(err.to_string().contains("cannot read vectors directory"), "{err}");
        let file = |section: &str| {
            format!(r#"{{"schema":"broadcast-wire/scenarios/v1","section":"{section}","cases":[{CASE}]}}"#)
        };
        write(&d, "a.json", &file("a"));
        let suite = Suite::load(&VectorSource::Dir(d.clone())).unwrap();
        assert_eq!(suite.cases().count(), 1);
        write(&d, "b.json", &file("a"));
        let err = Suite::load(&VectorSource::Dir(d.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.json") && err.contains("also used by"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
