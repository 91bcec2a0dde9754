//! Shared helpers of the harness self-tests: run the built
//! `broadcast-conformance` binary and read its JSON report.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The harness binary under test.
pub fn harness_exe() -> &'static str {
    crate::bin_str("harness")
}
/// The test-only worker with `--bug`/`--mode` switches.
pub fn testee_exe() -> &'static str {
    crate::bin_str("conformance-testee")
}
/// The reference worker.
pub fn worker_exe() -> &'static str {
    crate::bin_str("reference-worker")
}

/// `--timeout` (ms) for the self-tests that run a whole suite on debug
/// builds. The payload-maximum cases move 16 MiB frames, and the parent
/// suite's JSON lines carry one as 32 MiB of hex: unoptimised, the adapter
/// spends about 5 s encoding that one line before it writes a byte (no
/// progress for the harness's clock), and under a parallel `cargo test` on
/// two cores more than 10 s (seen once in CI). A passing run never waits
/// for the timeout, so a generous one costs nothing.
pub const WHOLE_SUITE_TIMEOUT_MS: &str = "60000";

/// The result of one harness run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The JSON report lines (with `--format json` on stdout), by case id.
    pub fn cases(&self) -> BTreeMap<String, serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
                (v["id"].as_str().expect("id").to_string(), v)
            })
            .collect()
    }

    /// Ids whose `result` is `result`.
    pub fn ids_with(&self, result: &str) -> Vec<String> {
        self.cases()
            .into_iter()
            .filter(|(_, v)| v["result"] == result)
            .map(|(id, _)| id)
            .collect()
    }

    /// `(passed, failed)` from the human summary line.
    pub fn counts(&self) -> (usize, usize) {
        let text = format!("{}{}", self.stdout, self.stderr);
        let line = text
            .lines()
            .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
            .unwrap_or_else(|| panic!("no summary line in:\n{text}"));
        let nums: Vec<usize> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        (nums[0], nums[1])
    }
}

/// Runs the harness with `args`.
pub fn harness(args: &[&str]) -> Run {
    Run::from(
        Command::new(harness_exe())
            .args(args)
            .output()
            .expect("run broadcast-conformance"),
    )
}

/// Runs the harness with `args`, then `--` and `worker`.
pub fn harness_with_worker(args: &[&str], worker: &[&str]) -> Run {
    let mut cmd = Command::new(harness_exe());
    cmd.args(args).arg("--").args(worker);
    Run::from(cmd.output().expect("run broadcast-conformance"))
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small vectors directory with one scenario file `mini.json` holding
/// `cases` (JSON text of the case objects, comma-separated).
pub fn mini_suite(dir: &Path, cases: &str) -> PathBuf {
    let root = dir.join("vectors");
    std::fs::create_dir_all(root.join("scenarios")).unwrap();
    let event = r#"{\"id\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"pubkey\":\"2222222222222222222222222222222222222222222222222222222222222222\",\"created_at\":5,\"kind\":1,\"tags\":[],\"content\":\"hi\",\"sig\":\"33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333\"}"#;
    let text = format!(
        r#"{{"schema":"broadcast-wire/scenarios/v1","section":"mini","title":"mini",
            "events":{{"n1":"{event}"}},"cases":[{cases}]}}"#
    );
    std::fs::write(root.join("scenarios").join("mini.json"), text).unwrap();
    root
}

/// A passing case: subscribe, broadcast, expect the event.
pub fn deliver_case(id: &str) -> String {
    format!(
        r#"{{"id":"mini/{id}","level":"MUST","spec":"PROTOCOL.md#worker-bcast","requirement":"delivered","steps":[
            {{"send":[{{"op":"new","conn":1}},{{"op":"add","conn":1,"sub_id":"s","req":["REQ","s",{{}}]}}],"expect":[]}},
            {{"send":[{{"op":"bcast","sender":-1,"event":"n1"}}],"expect":[{{"conn":1,"event":{{"sub_id":"s","event":"n1"}}}}]}}]}}"#
    )
}
