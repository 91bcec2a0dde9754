//! JUnit XML through `quick-junit`: one testsuite per section, one testcase
//! per case (classname = section, name = case id).

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::harness::outcome::{CaseReport, ResultKind};
use crate::harness::report::human;

/// The whole report as XML.
pub fn render(name: &str, reports: &[CaseReport]) -> String {
    let mut sections: BTreeMap<&str, Vec<&CaseReport>> = BTreeMap::new();
    for r in reports {
        sections.entry(r.section.as_str()).or_default().push(r);
    }
    let mut report = Report::new(name);
    let mut total = Duration::ZERO;
    for (section, cases) in sections {
        let mut suite = TestSuite::new(section);
        let mut suite_time = Duration::ZERO;
        for r in cases {
            suite_time += r.duration;
            suite.add_test_case(test_case(r));
        }
        suite.set_time(suite_time);
        total += suite_time;
        report.add_test_suite(suite);
    }
    report.set_time(total);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- could not serialise the JUnit report: {e} -->\n"))
}

fn test_case(r: &CaseReport) -> TestCase {
    let status = match r.result {
        ResultKind::Passed => TestCaseStatus::success(),
        ResultKind::Failed | ResultKind::UnexpectedPass => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.message());
            s.set_type(
                r.failure
                    .as_ref()
                    .map(|f| f.kind.as_str())
                    .unwrap_or(r.result.as_str()),
            );
            s.set_description(human::failure_details(r, true));
            s
        }
        ResultKind::Warning | ResultKind::KnownFailing | ResultKind::Skipped | ResultKind::NotRun => {
            // Accepted or not-run results are "skipped" in JUnit terms, with
            // the reason kept so CI dashboards still show it.
            let mut s = TestCaseStatus::skipped();
            s.set_type(r.result.as_str());
            let msg = r.message();
            s.set_message(if msg.is_empty() {
                r.result.as_str().to_string()
            } else {
                msg
            });
            if r.failure.is_some() {
                s.set_description(human::failure_details(r, true));
            }
            s
        }
    };
    let mut tc = TestCase::new(r.id.as_str(), status);
    tc.set_classname(r.section.as_str());
    tc.set_time(r.duration);
    tc.add_property(("level", r.level.as_str()));
    tc.add_property(("spec", r.spec.as_str()));
    tc
}
