//! Case selection with `--case` and `--skip` globs over case ids.
//!
//! Ids are paths (`filter/since/inclusive-lower-bound`), so the globs are
//! path globs: `*` stays inside one segment and `**` spans any number of
//! segments (`filter/**`, `**/replace*`).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A `--case` or `--skip` pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadGlob {
    /// The pattern as given.
    pub pattern: String,
    /// The parser's reason.
    pub reason: String,
}

impl std::fmt::Display for BadGlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid glob {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for BadGlob {}

/// Which case ids a run selects.
#[derive(Debug, Clone)]
pub struct Selection {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

fn glob(pattern: &str) -> Result<Glob, BadGlob> {
    GlobBuilder::new(pattern)
        // `*` must not cross `/`: `filter/*` is one level, `filter/**` all.
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| BadGlob {
            pattern: pattern.to_string(),
            reason: e.kind().to_string(),
        })
}

fn set(patterns: &[String]) -> Result<GlobSet, BadGlob> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
    }
    b.build().map_err(|e| BadGlob {
        pattern: patterns.join(" "),
        reason: e.to_string(),
    })
}

impl Selection {
    /// Selects ids matching any of `cases` (all ids when empty) and none of
    /// `skips`.
    pub fn new(cases: &[String], skips: &[String]) -> Result<Selection, BadGlob> {
        Ok(Selection {
            include: if cases.is_empty() { None } else { Some(set(cases)?) },
            exclude: set(skips)?,
        })
    }

    /// Whether the run includes `id`.
    pub fn selects(&self, id: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(id)) && !self.exclude.is_match(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(cases: &[&str], skips: &[&str]) -> Selection {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Selection::new(&v(cases), &v(skips)).unwrap()
    }

    #[test]
    fn star_stays_in_a_segment_double_star_spans() {
        let s = sel(&["filter/*"], &[]);
        assert!(!s.selects("filter/since/1"));
        assert!(sel(&["filter/*/1"], &[]).selects("filter/since/1"));
        assert!(sel(&["filter/**"], &[]).selects("filter/since/1"));
        assert!(sel(&["**/1"], &[]).selects("filter/since/1"));
        assert!(sel(&["filter/since*/**"], &[]).selects("filter/since-inclusive/1"));
        assert!(!sel(&["access/**"], &[]).selects("filter/since/1"));
    }

    #[test]
    fn empty_case_list_selects_all_and_skip_wins() {
        assert!(sel(&[], &[]).selects("a/b"));
        assert!(!sel(&[], &["a/**"]).selects("a/b"));
        assert!(!sel(&["a/**"], &["a/b"]).selects("a/b"));
        assert!(sel(&["a/**", "c/**"], &["a/x"]).selects("c/d"));
    }

    #[test]
    fn exact_ids_and_bad_globs() {
        assert!(sel(&["a/b/c"], &[]).selects("a/b/c"));
        assert!(!sel(&["a/b/c"], &[]).selects("a/b/cd"));
        let err = Selection::new(&["a/[b".to_string()], &[]).unwrap_err();
        assert_eq!(err.pattern, "a/[b");
    }
}
