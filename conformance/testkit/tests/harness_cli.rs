//! The harness's own behaviour: selection, listing, known-failing lists,
//! report formats, exit codes, hangs and crashes charged to the right case,
//! and the decode/encode/vectors subcommands.

use broadcast_testkit::harness_run as harness_support;

use std::io::Write;
use std::process::{Command, Stdio};

use harness_support::*;

fn case_with(id: &str, level: &str, steps: &str) -> String {
    format!(
        r#"{{"id":"mini/{id}","level":"{level}","spec":"PROTOCOL.md#worker-semantics","requirement":"req {id}","steps":[{steps}]}}"#
    )
}

/// A case the reference worker fails: it expects a frame that never comes.
fn failing_case(id: &str, level: &str) -> String {
    case_with(
        id,
        level,
        r#"{"send":[{"op":"new","conn":1}],"expect":[{"conn":1,"data":"never sent"}]}"#,
    )
}

#[test]
fn list_and_case_globs() {
    let dir = scratch("list");
    let v = mini_suite(
        &dir,
        &[
            deliver_case("a/one"),
            deliver_case("a/two"),
            deliver_case("b/deep/three"),
        ]
        .join(","),
    );
    let v = v.to_str().unwrap();
    let run = harness(&["run", "--vectors", v, "--list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "mini/a/one MUST\nmini/a/two MUST\nmini/b/deep/three MUST\n"
    );
    // `*` stays in one segment, `**` spans segments, --skip wins.
    let run = harness(&["run", "--vectors", v, "--list", "--case", "mini/*/one"]);
    assert_eq!(run.stdout, "mini/a/one MUST\n");
    let run = harness(&["run", "--vectors", v, "--list", "--case", "mini/*"]);
    assert_eq!(run.code, 2, "`mini/*` matches no id: a usage error");
    assert!(run.stderr.contains("no case matches"), "{}", run.stderr);
    let run = harness(&[
        "run",
        "--vectors",
        v,
        "--list",
        "--case",
        "mini/**",
        "--skip",
        "**/two",
    ]);
    assert_eq!(run.stdout, "mini/a/one MUST\nmini/b/deep/three MUST\n");
    // Only the selected case runs; the others are reported as skipped.
    let run = harness_with_worker(
        &["run", "--vectors", v, "--case", "mini/b/**", "--format", "json"],
        &[worker_exe()],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.ids_with("passed"), ["mini/b/deep/three"]);
    assert_eq!(run.ids_with("skipped"), ["mini/a/one", "mini/a/two"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failures_show_requirement_step_expected_and_actual() {
    let dir = scratch("failure");
    let v = mini_suite(&dir, &[deliver_case("ok"), failing_case("bad", "MUST")].join(","));
    let run = harness_with_worker(&["run", "--vectors", v.to_str().unwrap(), "-v"], &[worker_exe()]);
    assert_eq!(run.code, 1);
    let out = &run.stdout;
    assert!(out.contains("PASS  mini/ok"), "{out}");
    assert!(out.contains("FAIL  mini/bad"), "{out}");
    assert!(out.contains("requirement: \"req bad\""), "{out}");
    assert!(out.contains("mismatch at step 1"), "{out}");
    assert!(out.contains("Expected:\n      conn 1: never sent"), "{out}");
    assert!(out.contains("Actual:\n      (no frame)"), "{out}");
    assert!(out.contains("wire trace"), "-v shows the trace: {out}");
    assert!(out.lines().any(|l| l == "1 passed, 1 failed"), "{out}");
    // Quiet: the passing case's line is gone, the failure and summary stay.
    let run = harness_with_worker(&["run", "--vectors", v.to_str().unwrap(), "-q"], &[worker_exe()]);
    assert!(!run.stdout.contains("mini/ok"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  mini/bad"));
    assert_eq!(run.counts(), (1, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn should_cases_count_only_under_strict() {
    let dir = scratch("strict");
    let v = mini_suite(
        &dir,
        &[deliver_case("ok"), failing_case("soft", "SHOULD")].join(","),
    );
    let v = v.to_str().unwrap();
    let run = harness_with_worker(&["run", "--vectors", v, "--format", "json"], &[worker_exe()]);
    assert_eq!(
        run.code, 0,
        "a failing SHOULD case is only a warning: {}",
        run.stderr
    );
    assert_eq!(run.ids_with("warning"), ["mini/soft"]);
    let run = harness_with_worker(
        &["run", "--vectors", v, "--format", "json", "--strict"],
        &[worker_exe()],
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.ids_with("failed"), ["mini/soft"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn may_cases_are_reported_but_never_counted() {
    let dir = scratch("may");
    let v = mini_suite(&dir, &[deliver_case("ok"), failing_case("free", "MAY")].join(","));
    let v = v.to_str().unwrap();
    for extra in [&[][..], &["--strict"][..]] {
        let mut args = vec!["run", "--vectors", v, "--format", "json"];
        args.extend_from_slice(extra);
        let run = harness_with_worker(&args, &[worker_exe()]);
        assert_eq!(
            run.code, 0,
            "a failing MAY case never fails the run {extra:?}: {}",
            run.stderr
        );
        let cases = run.cases();
        assert_eq!(cases["mini/free"]["result"], "warning", "{extra:?}");
        assert_eq!(cases["mini/free"]["level"], "MAY");
        assert_eq!(
            cases["mini/free"]["failure"], "mismatch",
            "the failure is reported"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn known_failing_lists_cannot_go_stale() {
    let dir = scratch("known");
    let v = mini_suite(&dir, &[deliver_case("ok"), failing_case("bad", "MUST")].join(","));
    let v = v.to_str().unwrap();
    let list = dir.join("known.txt");
    // The failing case is listed: the run passes.
    std::fs::write(&list, "# our worker's open bugs\nmini/bad\n").unwrap();
    let run = harness_with_worker(
        &[
            "run",
            "--vectors",
            v,
            "--known-failing",
            list.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[worker_exe()],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.ids_with("known_failing"), ["mini/bad"]);
    // A passing case is listed: the run fails and says why.
    std::fs::write(&list, "mini/bad\nmini/ok\n").unwrap();
    let run = harness_with_worker(
        &["run", "--vectors", v, "--known-failing", list.to_str().unwrap()],
        &[worker_exe()],
    );
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("XPASS mini/ok"), "{}", run.stdout);
    assert!(run.stdout.contains("remove it from the list"), "{}", run.stdout);
    // An id that is no case at all is a setup error.
    std::fs::write(&list, "mini/renamed\n").unwrap();
    let run = harness_with_worker(
        &["run", "--vectors", v, "--known-failing", list.to_str().unwrap()],
        &[worker_exe()],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("mini/renamed"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn json_and_junit_reports() {
    let dir = scratch("formats");
    let v = mini_suite(&dir, &[deliver_case("ok"), failing_case("bad", "MUST")].join(","));
    let v = v.to_str().unwrap();
    let run = harness_with_worker(&["run", "--vectors", v, "--format", "json"], &[worker_exe()]);
    assert_eq!(run.code, 1);
    let cases = run.cases();
    assert_eq!(cases.len(), 2);
    let bad = &cases["mini/bad"];
    assert_eq!(bad["level"], "MUST");
    assert_eq!(bad["result"], "failed");
    assert_eq!(bad["failure"], "mismatch");
    assert_eq!(bad["step"], 1);
    assert!(bad["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(bad["message"].as_str().unwrap().contains("mismatch at step 1"));
    assert_eq!(cases["mini/ok"]["result"], "passed");
    // The summary goes to stderr so stdout stays pure JSON lines.
    assert!(run.stderr.contains("1 passed, 1 failed"), "{}", run.stderr);

    let xml_path = dir.join("report.xml");
    let run = harness_with_worker(
        &[
            "run",
            "--vectors",
            v,
            "--format",
            "junit",
            "--output",
            xml_path.to_str().unwrap(),
        ],
        &[worker_exe()],
    );
    assert_eq!(run.code, 1);
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    assert_eq!(report.test_suites.len(), 1);
    let suite = &report.test_suites[0];
    assert_eq!(suite.name.as_str(), "mini");
    assert_eq!((suite.tests, suite.failures), (2, 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn setup_errors_exit_2() {
    let dir = scratch("setup");
    let v = mini_suite(&dir, &deliver_case("ok"));
    let v = v.to_str().unwrap();
    let run = harness_with_worker(&["run", "--vectors", v], &["/nonexistent/worker"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("worker not found: /nonexistent/worker"),
        "{}",
        run.stderr
    );
    // A file that exists but cannot be executed.
    let not_exec = dir.join("worker.txt");
    std::fs::write(&not_exec, "not a program").unwrap();
    let run = harness_with_worker(&["run", "--vectors", v], &[not_exec.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot start the worker"), "{}", run.stderr);
    let run = harness_with_worker(&["run", "--vectors", "/nonexistent/vectors"], &[worker_exe()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/vectors/scenarios"),
        "{}",
        run.stderr
    );
    // A broken vector names its file, its case and the reason.
    let bad = dir.join("bad");
    std::fs::create_dir_all(bad.join("scenarios")).unwrap();
    std::fs::write(
        bad.join("scenarios/x.json"),
        r#"{"schema":"broadcast-wire/scenarios/v1","section":"x","cases":[
            {"id":"x/a","level":"MUST","requirement":"r","steps":[{"send":[{"op":"zap","conn":1}],"expect":[]}]}]}"#,
    )
    .unwrap();
    let run = harness_with_worker(&["run", "--vectors", bad.to_str().unwrap()], &[worker_exe()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("x.json: case x/a: step 1: send[0]: unknown op \"zap\""),
        "{}",
        run.stderr
    );
    let run = harness(&["run", "--bogus"]);
    assert_eq!(run.code, 2, "clap usage errors exit 2");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hang_is_charged_to_its_case_and_the_run_goes_on() {
    let dir = scratch("hang");
    let hang = case_with(
        "hangs",
        "MUST",
        r#"{"send":[{"op":"new","conn":1}],"expect":[]},
           {"send":[{"op":"bcast","sender":1,"event":"n1"}],"expect":[]}"#,
    );
    let v = mini_suite(
        &dir,
        &[deliver_case("before"), hang, deliver_case("after")].join(","),
    );
    let run = harness_with_worker(
        &[
            "run",
            "--vectors",
            v.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "300",
        ],
        &[testee_exe(), "--bug", "hang-on-bcast"],
    );
    assert_eq!(run.code, 1);
    let cases = run.cases();
    assert_eq!(cases["mini/before"]["result"], "passed");
    assert_eq!(cases["mini/after"]["result"], "passed");
    let hung = &cases["mini/hangs"];
    assert_eq!(hung["result"], "failed");
    assert_eq!(hung["failure"], "hang");
    assert_eq!(hung["step"], 2);
    let stderr = hung["stderr_tail"].to_string();
    assert!(stderr.contains("hanging on a Bcast"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn crash_is_charged_to_its_case_with_status_and_stderr() {
    let dir = scratch("crash");
    let crash = case_with(
        "crashes",
        "MUST",
        r#"{"send":[{"op":"new","conn":1}],"expect":[]},
           {"send":[{"op":"remove","conn":1,"sub_id":"s"}],"expect":[]}"#,
    );
    let v = mini_suite(
        &dir,
        &[deliver_case("before"), crash, deliver_case("after")].join(","),
    );
    for transport in ["stdio", "socketpair"] {
        let run = harness_with_worker(
            &["run", "--vectors", v.to_str().unwrap(), "--transport", transport],
            &[testee_exe(), "--bug", "crash-on-remove"],
        );
        assert_eq!(run.code, 1, "{transport}");
        let out = &run.stdout;
        assert!(out.contains("PASS  mini/before"), "{out}");
        assert!(out.contains("PASS  mini/after"), "{out}");
        assert!(out.contains("FAIL  mini/crashes"), "{out}");
        assert!(out.contains("crash at step 2"), "{out}");
        assert!(out.contains("killed by signal 6"), "{out}");
        assert!(out.contains("| testee: crashing on Remove"), "{out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn vectors_subcommand_passes() {
    let run = harness(&["vectors", "-q"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (passed, failed) = run.counts();
    assert!(passed > 200 && failed == 0, "{passed} {failed}");
    let run = harness(&["vectors", "--case", "framing/**", "--format", "json"]);
    assert_eq!(run.code, 0);
    let passed = run.ids_with("passed");
    assert!(!passed.is_empty() && passed.iter().all(|id| id.starts_with("framing/")));
    assert!(
        run.ids_with("skipped")
            .iter()
            .all(|id| !id.starts_with("framing/"))
    );
}

fn pipe(args: &[&str], input: &[u8]) -> (i32, Vec<u8>) {
    let mut child = Command::new(harness_exe())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout)
}

#[test]
fn decode_then_encode_is_the_identity() {
    // A New, a heartbeat, a foreign channel, an undecodable payload and a
    // BroadcastFrame (hex written out by hand from PROTOCOL.md#frame-layout and PROTOCOL.md#broadcastframe-layout).
    let stream = hex::decode(concat!(
        "010e000000",
        "0101070000000000000000000000",
        "0100000000",
        "0902000000",
        "abcd",
        "0101000000",
        "09",
        "020a000000",
        "070000000200000068",
        "69",
    ))
    .unwrap();
    let (code, lines) = pipe(&["decode"], &stream);
    assert_eq!(code, 0);
    let text = String::from_utf8(lines.clone()).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "sub_command",
            "heartbeat",
            "other_channel",
            "invalid",
            "broadcast_frame"
        ]
    );
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["value"],
        serde_json::json!({"op": "new", "conn": 7, "flags": 1, "sub_id": "", "data_hex": ""})
    );
    let (code, bytes) = pipe(&["encode"], &lines);
    assert_eq!(code, 0);
    assert_eq!(bytes, stream);
    // A fatal framing error is printed and exits 1; its rest is kept.
    let (code, lines) = pipe(&["decode"], &hex::decode("0100000000020900").unwrap());
    assert_eq!(code, 1);
    assert!(String::from_utf8_lossy(&lines).contains(r#""error":"truncated_stream""#));
    let (_, bytes) = pipe(&["encode"], &lines);
    assert_eq!(hex::encode(bytes), "0100000000020900");
    // A bad line names its number.
    let (code, _) = pipe(&["encode"], b"{\"chan\":1,\"payload_hex\":\"zz\"}\n");
    assert_eq!(code, 1);
}

#[test]
fn ctrl_c_writes_partial_results() {
    // One job: the case after the hanging one never starts.
    ctrl_c_with_jobs("1", "not_run", "1 passed, 2 failed");
    // Two jobs: it runs beside the hanging case and passes; its report
    // waits behind the hanging case's and is still written, in order.
    ctrl_c_with_jobs("2", "passed", "2 passed, 1 failed");
}

fn ctrl_c_with_jobs(jobs: &str, never: &str, summary: &str) {
    let dir = scratch(&format!("interrupt-{jobs}"));
    let hang = case_with(
        "hangs",
        "MUST",
        r#"{"send":[{"op":"new","conn":1}],"expect":[]},
           {"send":[{"op":"bcast","sender":1,"event":"n1"}],"expect":[]}"#,
    );
    let v = mini_suite(
        &dir,
        &[deliver_case("first"), hang, deliver_case("never")].join(","),
    );
    let report = dir.join("report.json");
    let child = Command::new(harness_exe())
        .args([
            "run",
            "--vectors",
            v.to_str().unwrap(),
            "--format",
            "json",
            "--timeout",
            "20000",
            "--jobs",
            jobs,
        ])
        .arg("--output")
        .arg(&report)
        .args(["--", testee_exe(), "--bug", "hang-on-bcast"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first case is on disk (JSON lines are written as each
    // case finishes), so the run is inside the hanging case.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&report)
        .unwrap_or_default()
        .contains("mini/first")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first case never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SIGINT to the harness alone, as a terminal would send (minus the
    // worker, which the harness kills itself).
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "an interrupted run is not a pass");
    let text = std::fs::read_to_string(&report).unwrap();
    let results: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        results.contains(&("mini/first".into(), "passed".into())),
        "{results:?}"
    );
    assert!(
        results.contains(&("mini/hangs".into(), "not_run".into())),
        "{results:?}"
    );
    assert!(
        results.contains(&("mini/never".into(), never.into())),
        "{results:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(summary), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A case in which the `hang-on-bcast` testee stops answering.
fn hang_case(id: &str) -> String {
    case_with(
        id,
        "MUST",
        r#"{"send":[{"op":"new","conn":1}],"expect":[]},
           {"send":[{"op":"bcast","sender":1,"event":"n1"}],"expect":[]}"#,
    )
}

#[test]
fn a_silent_worker_stops_the_run_at_once() {
    let dir = scratch("silent");
    let cases: Vec<String> = (0..20).map(|i| deliver_case(&format!("c{i}"))).collect();
    let v = mini_suite(&dir, &cases.join(","));
    let v = v.to_str().unwrap();
    // Reads every command and never writes: the probe set-up never answers.
    for worker in [&["sh", "-c", "cat >/dev/null"][..], &["sh", "-c", "sleep 30"][..]] {
        let run = harness_with_worker(
            &["run", "--vectors", v, "--format", "json", "--timeout", "300"],
            worker,
        );
        assert_eq!(run.code, 1, "{worker:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("did not answer the first probe"),
            "{worker:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("PROTOCOL.md#output-promptness"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "no case is charged a hang: {}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fail_fast_stops_at_the_first_failing_case() {
    let dir = scratch("fail-fast");
    let v = mini_suite(
        &dir,
        &[
            deliver_case("a"),
            failing_case("b", "MAY"),
            failing_case("c", "MUST"),
            deliver_case("d"),
            failing_case("e", "MUST"),
        ]
        .join(","),
    );
    let v = v.to_str().unwrap();
    let run = harness_with_worker(
        &[
            "run",
            "--vectors",
            v,
            "--format",
            "json",
            "--jobs",
            "1",
            "--fail-fast",
        ],
        &[worker_exe()],
    );
    assert_eq!(run.code, 1);
    let cases = run.cases();
    let results: Vec<(&str, &str)> = cases
        .iter()
        .map(|(id, v)| (id.as_str(), v["result"].as_str().unwrap()))
        .collect();
    // A MAY failure is only reported and does not stop the run.
    assert_eq!(
        results,
        [
            ("mini/a", "passed"),
            ("mini/b", "warning"),
            ("mini/c", "failed"),
            ("mini/d", "not_run"),
            ("mini/e", "not_run")
        ]
    );
    assert!(
        cases["mini/d"]["message"]
            .as_str()
            .unwrap()
            .contains("--fail-fast")
    );
    assert!(
        run.stderr.contains("--fail-fast: stopped after mini/c failed"),
        "{}",
        run.stderr
    );
    // Without it, every case runs.
    let run = harness_with_worker(
        &["run", "--vectors", v, "--format", "json", "--jobs", "1"],
        &[worker_exe()],
    );
    assert_eq!(run.ids_with("failed"), ["mini/c", "mini/e"]);
    assert!(run.ids_with("not_run").is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_hangs_stops_after_n_hangs() {
    let dir = scratch("max-hangs");
    let v = mini_suite(
        &dir,
        &[
            hang_case("h1"),
            deliver_case("ok"),
            hang_case("h2"),
            hang_case("h3"),
            deliver_case("later"),
        ]
        .join(","),
    );
    let v = v.to_str().unwrap();
    let run = harness_with_worker(
        &[
            "run",
            "--vectors",
            v,
            "--format",
            "json",
            "--jobs",
            "1",
            "--timeout",
            "300",
            "--max-hangs",
            "2",
        ],
        &[testee_exe(), "--bug", "hang-on-bcast"],
    );
    assert_eq!(run.code, 1);
    let cases = run.cases();
    let results: Vec<(&str, &str)> = cases
        .iter()
        .map(|(id, v)| (id.as_str(), v["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("mini/h1", "failed"),
            ("mini/h2", "failed"),
            ("mini/h3", "not_run"),
            ("mini/later", "not_run"),
            ("mini/ok", "passed"),
        ]
    );
    assert_eq!(cases["mini/h2"]["failure"], "hang");
    assert!(
        run.stderr.contains("--max-hangs 2: stopped after 2 hang(s)"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Hides the timings a report contains: `12 ms` / `1.50 s` (unit included) in the human
/// format, `time="…"` in JUnit, `"duration_ms":…` in JSON.
fn mask_timings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("time=\"") {
            let end = after.find('"').unwrap_or(after.len());
            out.push_str("time=\"T");
            rest = &after[end..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("\"duration_ms\":") {
            let end = after.find([',', '}']).unwrap_or(after.len());
            out.push_str("\"duration_ms\":T");
            rest = &after[end..];
            continue;
        }
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit = |u: &str| {
            rest[digits..]
                .strip_prefix(u)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric()))
        };
        // The unit goes too: the same run may take 900 ms or 1.10 s.
        if digits > 0 && (unit(" ms") || unit(" s")) {
            // So does the padding of a trace's right-aligned times: 9.054 ms
            // and 10.225 ms are padded to one width by different spaces.
            if out.ends_with(' ') {
                out.truncate(out.trim_end_matches(' ').len());
                out.push(' ');
            }
            out.push('T');
            rest = rest[digits..].trim_start_matches(" ms").trim_start_matches(" s");
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[test]
fn mask_timings_hides_only_timings() {
    assert_eq!(mask_timings("PASS  a [MUST] (12 ms)"), "PASS  a [MUST] (T)");
    assert_eq!(mask_timings("x; 1.50 s"), "x; T");
    assert_eq!(mask_timings(r#"<a time="0.012">"#), r#"<a time="T">"#);
    assert_eq!(
        mask_timings(r#"{"duration_ms":1.5,"id":"x"}"#),
        r#"{"duration_ms":T,"id":"x"}"#
    );
    assert_eq!(mask_timings("conn 12 sub 3"), "conn 12 sub 3");
    assert_eq!(
        mask_timings("\n      9.054 ms > new"),
        mask_timings("\n     10.225 ms > new")
    );
}

#[test]
fn parallel_reports_equal_the_serial_ones_in_every_format() {
    let dir = scratch("jobs");
    for format in ["human", "json", "junit"] {
        let report = |jobs: &str| {
            let file = dir.join(format!("{format}-{jobs}.txt"));
            let run = harness_with_worker(
                &[
                    "run",
                    "--format",
                    format,
                    "--jobs",
                    jobs,
                    "--output",
                    file.to_str().unwrap(),
                    // The 16 MiB cases can outlast the timeout in a debug
                    // build under a parallel `cargo test`, and a hang in one
                    // run but not the other is load, not reporting.
                    "--skip",
                    "output/oversize/*",
                    "--skip",
                    "stream/max/*",
                ],
                // A bug that fails several cases, so failure details are compared too.
                &[testee_exe(), "--bug", "since-exclusive"],
            );
            assert_eq!(run.code, 1, "{format} --jobs {jobs}: {}", run.stderr);
            mask_timings(&std::fs::read_to_string(&file).unwrap())
        };
        let serial = report("1");
        let parallel = report("4");
        assert!(serial.contains("filter/since/equal"), "{format}: {serial}");
        assert_eq!(serial, parallel, "{format}: --jobs 4 differs from --jobs 1");
    }
    let _ = std::fs::remove_dir_all(dir);
}
