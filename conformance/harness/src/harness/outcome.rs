//! What running a case produced, and how a run's verdict follows from the
//! cases' outcomes, their levels, `--strict` and the known-failing list.

use std::time::Duration;

use super::scenario::{Case, Level};

/// How a case failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The frames of a step differ from the expected ones.
    Mismatch,
    /// A probe (or the expected exit) did not come within the timeout.
    Hang,
    /// The worker exited or closed its output when the case did not expect it.
    Crash,
    /// The worker ended with another exit status than the case expects.
    ExitStatus,
    /// The worker's output broke the framing layer (fatal for the stream).
    Protocol,
    /// The harness could not start or talk to the worker.
    Harness,
}

impl FailureKind {
    /// Stable lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Mismatch => "mismatch",
            FailureKind::Hang => "hang",
            FailureKind::Crash => "crash",
            FailureKind::ExitStatus => "exit_status",
            FailureKind::Protocol => "protocol_error",
            FailureKind::Harness => "harness_error",
        }
    }
}

/// The details of one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// The step that was running, 1-based; 0 is the probe set-up before the
    /// first step; `None` when the case has no steps (codec vectors).
    pub step: Option<usize>,
    /// Where it failed, for humans: `step 2`, `probe set-up`, `one byte per read`.
    pub at: String,
    /// One line.
    pub message: String,
    /// The frames the step expected, rendered.
    pub expected: Vec<String>,
    /// The frames the step observed, rendered.
    pub actual: Vec<String>,
    /// The last lines the worker wrote to stderr.
    pub stderr_tail: Vec<String>,
    /// Everything written and read during the case, one line each.
    pub trace: Vec<String>,
}

/// A case's own outcome, before levels and lists are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every step matched.
    Pass,
    /// It failed.
    Fail(Box<Failure>),
}

/// The result a report shows for one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultKind {
    /// Passed.
    Passed,
    /// Failed and counts against the run.
    Failed,
    /// A SHOULD case failed without `--strict`, or a MAY case failed:
    /// shown, not counted.
    Warning,
    /// Failed, and listed in the known-failing file: accepted.
    KnownFailing,
    /// Listed in the known-failing file but passed: the list is stale, and
    /// this counts against the run.
    UnexpectedPass,
    /// Not selected by `--case`/`--skip`.
    Skipped,
    /// Selected, but the run was interrupted before it finished.
    NotRun,
}

impl ResultKind {
    /// Stable lowercase name used in the JSON and JUnit reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Passed => "passed",
            ResultKind::Failed => "failed",
            ResultKind::Warning => "warning",
            ResultKind::KnownFailing => "known_failing",
            ResultKind::UnexpectedPass => "unexpected_pass",
            ResultKind::Skipped => "skipped",
            ResultKind::NotRun => "not_run",
        }
    }

    /// Whether this result makes the run fail.
    pub fn fails_run(self) -> bool {
        matches!(
            self,
            ResultKind::Failed | ResultKind::UnexpectedPass | ResultKind::NotRun
        )
    }
}

/// Applies `--strict` and the known-failing list to a case's verdict.
pub fn classify(verdict: &Verdict, level: Level, strict: bool, known_failing: bool) -> ResultKind {
    match (verdict, known_failing) {
        (Verdict::Pass, false) => ResultKind::Passed,
        (Verdict::Pass, true) => ResultKind::UnexpectedPass,
        (Verdict::Fail(_), true) => ResultKind::KnownFailing,
        (Verdict::Fail(_), false) if level == Level::May => ResultKind::Warning,
        (Verdict::Fail(_), false) if level == Level::Should && !strict => ResultKind::Warning,
        (Verdict::Fail(_), false) => ResultKind::Failed,
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// Case id.
    pub id: String,
    /// Section (JUnit testsuite).
    pub section: String,
    /// Level.
    pub level: Level,
    /// Spec section.
    pub spec: String,
    /// Quoted requirement.
    pub requirement: String,
    /// The result.
    pub result: ResultKind,
    /// Wall time of the case (zero if it did not run).
    pub duration: Duration,
    /// The failure, if the case failed.
    pub failure: Option<Box<Failure>>,
    /// Extra note (why skipped, why an unexpected pass fails the run, ...).
    pub note: Option<String>,
}

/// What every report says about a case, whichever suite it comes from (the
/// worker scenarios, the parent suite).
pub trait CaseInfo {
    /// Stable id, `section/topic/detail`.
    fn id(&self) -> &str;
    /// The section (JUnit testsuite).
    fn section(&self) -> &str;
    /// MUST, SHOULD or MAY.
    fn level(&self) -> Level;
    /// Where in docs/PROTOCOL.md.
    fn spec(&self) -> &str;
    /// The quoted requirement.
    fn requirement(&self) -> &str;
}

impl CaseInfo for Case {
    fn id(&self) -> &str {
        &self.id
    }
    fn section(&self) -> &str {
        &self.section
    }
    fn level(&self) -> Level {
        self.level
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn requirement(&self) -> &str {
        &self.requirement
    }
}

impl CaseReport {
    /// The report of `case` with the given result; the case's identity
    /// fields are copied, so every report of a case names it the same way.
    pub fn of(case: &(impl CaseInfo + ?Sized), result: ResultKind, duration: Duration) -> CaseReport {
        CaseReport {
            id: case.id().to_string(),
            section: case.section().to_string(),
            level: case.level(),
            spec: case.spec().to_string(),
            requirement: case.requirement().to_string(),
            result,
            duration,
            failure: None,
            note: None,
        }
    }

    /// One line for the `message` field and the progress line.
    pub fn message(&self) -> String {
        match (&self.failure, &self.note) {
            (Some(f), _) => format!("{} at {}: {}", f.kind.as_str(), f.at, f.message),
            (None, Some(note)) => note.clone(),
            (None, None) => String::new(),
        }
    }
}

/// Counts over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Passed cases.
    pub passed: usize,
    /// Everything that makes the run fail: failed cases, unexpected passes
    /// and cases not run because of an interrupt.
    pub failed: usize,
    /// Deselected cases.
    pub skipped: usize,
    /// Listed cases that failed as expected.
    pub known_failing: usize,
    /// Listed cases that passed (included in `failed`).
    pub unexpected_pass: usize,
    /// SHOULD failures not counted without `--strict`.
    pub warnings: usize,
    /// Cases not run because of an interrupt (included in `failed`).
    pub not_run: usize,
}

impl Summary {
    /// Counts the results of `reports`.
    pub fn of(reports: &[CaseReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.result {
                ResultKind::Passed => s.passed += 1,
                ResultKind::Failed => s.failed += 1,
                ResultKind::UnexpectedPass => {
                    s.failed += 1;
                    s.unexpected_pass += 1;
                }
                ResultKind::Warning => s.warnings += 1,
                ResultKind::KnownFailing => s.known_failing += 1,
                ResultKind::Skipped => s.skipped += 1,
                ResultKind::NotRun => {
                    s.failed += 1;
                    s.not_run += 1;
                }
            }
        }
        s
    }

    /// Exit 0 only when nothing counts against the run.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.not_run == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Verdict {
        Verdict::Fail(Box::new(Failure {
            kind: FailureKind::Mismatch,
            step: Some(1),
            at: "step 1".into(),
            message: "x".into(),
            expected: vec![],
            actual: vec![],
            stderr_tail: vec![],
            trace: vec![],
        }))
    }

    #[test]
    fn classification_table() {
        use ResultKind::*;
        assert_eq!(classify(&Verdict::Pass, Level::Must, false, false), Passed);
        assert_eq!(classify(&Verdict::Pass, Level::Must, false, true), UnexpectedPass);
        assert_eq!(classify(&fail(), Level::Must, false, true), KnownFailing);
        assert_eq!(classify(&fail(), Level::Must, false, false), Failed);
        assert_eq!(classify(&fail(), Level::Should, false, false), Warning);
        assert_eq!(classify(&fail(), Level::Should, true, false), Failed);
        assert_eq!(classify(&fail(), Level::May, false, false), Warning);
        assert_eq!(classify(&fail(), Level::May, true, false), Warning);
        assert_eq!(classify(&Verdict::Pass, Level::May, true, false), Passed);
        assert!(UnexpectedPass.fails_run() && Failed.fails_run() && NotRun.fails_run());
        assert!(!Warning.fails_run() && !KnownFailing.fails_run() && !Skipped.fails_run());
    }
}
