//! The human report: one progress line per case, a details block for each
//! failure, and the summary.

use std::fmt::Write as _;
use std::time::Duration;

use crate::harness::outcome::{CaseReport, ResultKind, Summary};

/// The tag shown in front of a case's id.
fn tag(result: ResultKind) -> &'static str {
    match result {
        ResultKind::Passed => "PASS ",
        ResultKind::Failed => "FAIL ",
        ResultKind::Warning => "WARN ",
        ResultKind::KnownFailing => "XFAIL",
        ResultKind::UnexpectedPass => "XPASS",
        ResultKind::Skipped => "SKIP ",
        ResultKind::NotRun => "NORUN",
    }
}

/// Whether quiet mode (`-q`) still shows this result.
pub fn shown_when_quiet(result: ResultKind) -> bool {
    result.fails_run() || result == ResultKind::Warning
}

/// The progress line of a finished case.
pub fn progress_line(r: &CaseReport) -> String {
    let mut line = format!(
        "{} {} [{}] ({})",
        tag(r.result),
        r.id,
        r.level,
        format_duration(r.duration)
    );
    let msg = r.message();
    if !msg.is_empty() && r.result != ResultKind::Passed {
        let _ = write!(line, ": {msg}");
    }
    line
}

/// The details block of a failed (or accepted-failing) case: the quoted
/// requirement, the step, Expected vs Actual, and the worker's last stderr
/// lines; with `verbose`, the whole kept stderr tail and the wire trace.
pub fn failure_details(r: &CaseReport, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "--- {} {} [{}, {}]",
        tag(r.result).trim(),
        r.id,
        r.level,
        r.spec
    );
    let _ = writeln!(out, "    requirement: \"{}\"", r.requirement);
    if r.result == ResultKind::UnexpectedPass {
        let _ = writeln!(
            out,
            "    this case is in the known-failing list but passed: remove it from the list"
        );
    }
    let Some(f) = &r.failure else { return out };
    let _ = writeln!(out, "    {} at {}: {}", f.kind.as_str(), f.at, f.message);
    let frames = |out: &mut String, title: &str, frames: &[String]| {
        let _ = writeln!(out, "    {title}:");
        if frames.is_empty() {
            let _ = writeln!(out, "      (no frame)");
        }
        for frame in frames {
            let _ = writeln!(out, "      {frame}");
        }
    };
    frames(&mut out, "Expected", &f.expected);
    frames(&mut out, "Actual", &f.actual);
    let stderr_lines = if verbose { f.stderr_tail.len() } else { 5 };
    if !f.stderr_tail.is_empty() {
        let skip = f.stderr_tail.len().saturating_sub(stderr_lines);
        let _ = writeln!(
            out,
            "    worker stderr (last {} line(s)):",
            f.stderr_tail.len() - skip
        );
        for line in &f.stderr_tail[skip..] {
            let _ = writeln!(out, "      | {line}");
        }
    }
    if verbose && !f.trace.is_empty() {
        let _ = writeln!(out, "    wire trace (> to the worker, < from it):");
        for line in &f.trace {
            let _ = writeln!(out, "      {line}");
        }
    }
    out
}

/// The summary: `N passed, M failed` alone on the first line (CI parsers
/// read it), the other counts on the second.
pub fn summary(s: &Summary, elapsed: Duration) -> String {
    let mut second = format!("{} skipped, {} known failing", s.skipped, s.known_failing);
    if s.unexpected_pass > 0 {
        let _ = write!(
            second,
            ", {} known-failing passed (counted as failed)",
            s.unexpected_pass
        );
    }
    if s.warnings > 0 {
        let _ = write!(
            second,
            ", {} warning(s): SHOULD or MAY case failed (not counted)",
            s.warnings
        );
    }
    if s.not_run > 0 {
        let _ = write!(
            second,
            ", {} not run (interrupted or stopped, counted as failed)",
            s.not_run
        );
    }
    let _ = write!(second, "; {}", format_duration(elapsed));
    format!("{} passed, {} failed\n{second}\n", s.passed, s.failed)
}

/// `12 ms` / `1.25 s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_first_line_is_alone() {
        let s = Summary {
            passed: 3,
            failed: 1,
            skipped: 2,
            known_failing: 1,
            ..Summary::default()
        };
        let text = summary(&s, Duration::from_millis(1500));
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("3 passed, 1 failed"));
        assert_eq!(lines.next(), Some("2 skipped, 1 known failing; 1.50 s"));
    }
}
