//! JSON lines: one object per case, written as each case finishes, so a run
//! that is killed still leaves every finished case on disk.

use serde_json::json;

use crate::harness::outcome::CaseReport;

/// The JSON object of one case, on one line.
///
/// Fields: `id`, `section`, `level`, `spec`, `result` (see
/// `ResultKind::as_str`), `duration_ms`, `message` (empty when passed), and,
/// for failures, `failure` (kind), `step` (1-based, 0 = probe set-up),
/// `expected` and `actual` (rendered frames), `stderr_tail`.
pub fn line(r: &CaseReport) -> String {
    let mut v = json!({
        "id": r.id,
        "section": r.section,
        "level": r.level.as_str(),
        "spec": r.spec,
        "result": r.result.as_str(),
        "duration_ms": r.duration.as_secs_f64() * 1000.0,
        "message": r.message(),
    });
    if let Some(f) = &r.failure {
        v["failure"] = json!(f.kind.as_str());
        v["step"] = json!(f.step);
        v["expected"] = json!(f.expected);
        v["actual"] = json!(f.actual);
        v["stderr_tail"] = json!(f.stderr_tail);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::harness::outcome::ResultKind;
    use crate::harness::scenario::Level;

    #[test]
    fn one_parseable_line() {
        let r = CaseReport {
            id: "a/b".into(),
            section: "a".into(),
            level: Level::Should,
            spec: "PROTOCOL.md#worker-semantics".into(),
            requirement: "x\ny".into(),
            result: ResultKind::Passed,
            duration: Duration::from_millis(3),
            failure: None,
            note: None,
        };
        let text = line(&r);
        assert!(!text.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "a/b");
        assert_eq!(v["level"], "SHOULD");
        assert_eq!(v["result"], "passed");
        assert_eq!(v["duration_ms"], 3.0);
        assert_eq!(v["message"], "");
    }
}
