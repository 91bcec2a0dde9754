//! Report formats: human (progress lines, failure details, summary), JSON
//! lines (one object per case) and JUnit XML (one testsuite per section).

pub mod human;
pub mod json;
pub mod junit;

use std::fmt;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Progress lines, failure details and a summary, for people.
    #[default]
    Human,
    /// One JSON object per case, one per line.
    Json,
    /// JUnit XML, one testsuite per section.
    Junit,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Junit => "junit",
        })
    }
}
