//! Known-failing lists (`--known-failing FILE`): one case id per line, `#`
//! starts a comment, blank lines are ignored.
//!
//! A listed case that fails is accepted; a listed case that passes fails the
//! run, and an id that names no case at all is a setup error. Together these
//! keep the list from going stale silently.

use std::collections::BTreeSet;
use std::path::Path;

/// A parsed list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownFailing {
    ids: BTreeSet<String>,
}

impl KnownFailing {
    /// Parses the file's text.
    ///
    /// ```
    /// use broadcast_conformance::harness::known_failing::KnownFailing;
    /// let k = KnownFailing::parse("# ours\nfilter/a/1\n\n  access/b/2  # flaky\n").unwrap();
    /// assert!(k.contains("filter/a/1") && k.contains("access/b/2"));
    /// assert_eq!(k.len(), 2);
    /// ```
    pub fn parse(text: &str) -> Result<KnownFailing, String> {
        let mut ids = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.contains(char::is_whitespace) {
                return Err(format!("line {}: {line:?} is not one case id", n + 1));
            }
            if !ids.insert(line.to_string()) {
                return Err(format!("line {}: {line:?} is listed twice", n + 1));
            }
        }
        Ok(KnownFailing { ids })
    }

    /// Reads and parses a file; errors name the file.
    pub fn load(path: &Path) -> Result<KnownFailing, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether `id` is listed.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Listed ids that are not in `known` (stale entries).
    pub fn unknown_ids<'a>(&'a self, known: &BTreeSet<&str>) -> Vec<&'a str> {
        self.ids
            .iter()
            .map(String::as_str)
            .filter(|id| !known.contains(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_junk_and_duplicates() {
        assert!(KnownFailing::parse("a b").unwrap_err().contains("line 1"));
        assert!(KnownFailing::parse("a\na").unwrap_err().contains("twice"));
        assert!(KnownFailing::parse("").unwrap().is_empty());
    }

    #[test]
    fn finds_stale_ids() {
        let k = KnownFailing::parse("x/1\ny/2").unwrap();
        let known: BTreeSet<&str> = ["x/1"].into_iter().collect();
        assert_eq!(k.unknown_ids(&known), vec!["y/2"]);
    }
}
