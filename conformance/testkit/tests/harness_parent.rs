//! The parent suite (`broadcast-conformance parent`, docs/CONFORMANCE.md,
//! "Testing a parent") from the outside: the whole suite passes against the
//! reference adapter on both transports; `--list`, the JSON and JUnit
//! reports, known-failing lists and setup errors behave as for `run`; an
//! adapter that never answers stops the run at once; a crash is charged to
//! the case and step that was running, with the adapter's last stderr
//! lines; a broken parent fails the cases named for its bug; and the
//! stand-in worker relays bytes and obeys the harness's controls.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broadcast_conformance::harness::parent::standin::{Control, HELLO_LEN, parse_hello};
use broadcast_testkit::harness_run::{Run, WHOLE_SUITE_TIMEOUT_MS, harness, harness_with_worker, scratch};

fn adapter_exe() -> &'static str {
    broadcast_testkit::bin_str("parent-adapter")
}

fn parent_testee_exe() -> &'static str {
    broadcast_testkit::bin_str("parent-testee")
}

/// The parent suite against `adapter`; `args` go before `--`. Debug builds
/// move a 16 MiB frame (as 32 MiB of hex) slowly, so every run gets the
/// generous WHOLE_SUITE_TIMEOUT_MS; a run that passes is not slowed by it.
fn parent(args: &[&str], adapter: &[&str]) -> Run {
    let mut all = vec!["parent", "--timeout", WHOLE_SUITE_TIMEOUT_MS];
    all.extend_from_slice(args);
    harness_with_worker(&all, adapter)
}

/// The ids of `--list`, with their levels.
fn listed() -> Vec<(String, String)> {
    let run = harness(&["parent", "--list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| {
            let (id, level) = l.rsplit_once(' ').expect("`id LEVEL`");
            (id.to_string(), level.to_string())
        })
        .collect()
}

fn whole_suite_passes(transport: &str) {
    let total = listed().len();
    let run = parent(&["--transport", transport, "-q"], &[adapter_exe()]);
    assert_eq!(run.code, 0, "{transport}:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.counts(), (total, 0), "{transport}:\n{}", run.stdout);
}

#[test]
fn the_reference_adapter_passes_over_stdio() {
    whole_suite_passes("stdio");
}

#[test]
fn the_reference_adapter_passes_over_a_socketpair() {
    whole_suite_passes("socketpair");
}

#[test]
fn list_names_every_section_and_level() {
    let ids = listed();
    assert!(ids.len() > 200, "{} cases", ids.len());
    for section in ["sending", "lifecycle", "bcast", "receiving", "flow", "death"] {
        assert!(
            ids.iter().any(|(id, _)| id.starts_with(&format!("{section}/"))),
            "no case in section {section}"
        );
    }
    assert!(ids.iter().all(|(_, l)| l == "MUST" || l == "SHOULD"));
    let should: Vec<&str> = ids
        .iter()
        .filter(|(_, l)| l == "SHOULD")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(should, ["bcast/size/near-max-refused", "lifecycle/reuse/never"]);
    // The cases cite every subsection of PROTOCOL.md#parent-semantics.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/parent");
    let mut cited = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for c in v["cases"].as_array().unwrap() {
            cited.insert(c["spec"].as_str().unwrap().to_string());
        }
    }
    let anchors = [
        "parent-sending",
        "parent-lifecycle",
        "parent-bcast",
        "parent-receiving",
        "parent-flow-control",
        "parent-worker-death",
    ];
    assert_eq!(
        cited,
        anchors.iter().map(|a| format!("PROTOCOL.md#{a}")).collect(),
        "every subsection of the parent semantics, and nothing else"
    );
    let globbed = harness(&[
        "parent",
        "--list",
        "--case",
        "death/**",
        "--skip",
        "**/after-*/**",
    ]);
    assert!(
        globbed
            .stdout
            .lines()
            .all(|l| l.starts_with("death/") && !l.contains("/after-"))
    );
    assert!(harness(&["parent", "--list", "--case", "nothing/*"]).code == 2);
}

#[test]
fn reports_parse_and_known_failing_lists_apply() {
    let dir = scratch("parent-reports");
    let cases = ["--case", "sending/frame/**"];
    let run = parent(&[&cases[..], &["--format", "json"]].concat(), &[adapter_exe()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.cases();
    assert!(lines.len() > 200, "every case has a line, skipped ones too");
    let new = &lines["sending/frame/new"];
    assert_eq!(
        (
            new["result"].as_str(),
            new["level"].as_str(),
            new["section"].as_str()
        ),
        (Some("passed"), Some("MUST"), Some("sending"))
    );
    assert_eq!(new["spec"], "PROTOCOL.md#parent-sending");
    assert_eq!(lines["death/kill/sigkill"]["result"], "skipped");

    let xml = dir.join("parent.xml");
    let run = parent(
        &[
            &cases[..],
            &["--format", "junit", "--output", xml.to_str().unwrap()],
        ]
        .concat(),
        &[adapter_exe()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&xml).unwrap())
        .expect("valid JUnit XML");
    let names: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["bcast", "death", "flow", "lifecycle", "receiving", "sending"]
    );

    // A listed case that passes fails the run; an unknown id is a setup error.
    let list = dir.join("known-failing.txt");
    std::fs::write(&list, "sending/frame/new\n").unwrap();
    let run = parent(
        &[
            "--case",
            "sending/frame/new",
            "--known-failing",
            list.to_str().unwrap(),
        ],
        &[adapter_exe()],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("XPASS sending/frame/new"), "{}", run.stdout);
    std::fs::write(&list, "sending/frame/no-such-case\n").unwrap();
    let run = parent(&["--known-failing", list.to_str().unwrap()], &[adapter_exe()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn setup_errors_and_a_silent_adapter_stop_the_run_at_once() {
    let run = parent(&[], &["/nonexistent/adapter"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("adapter not found: /nonexistent/adapter"),
        "{}",
        run.stderr
    );

    // Reads its stdin, never answers: one message, exit 1, no case run.
    let start = Instant::now();
    let run = harness_with_worker(&["parent", "--timeout", "500"], &["sh", "-c", "cat >/dev/null"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not get through `start`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no case ran: {}", run.stdout);
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
}

/// A throwaway adapter in Python: a correct parent for `connect`, `sync`
/// and `shutdown` (stdio only), that says "boom" on stderr and exits 3 at
/// its first `subscribe`.
const CRASHING_ADAPTER: &str = r#"
import json, struct, subprocess, sys
w = None; conns = {}
def out(**e):
    sys.stdout.write(json.dumps(e) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    a = json.loads(line)
    act = a["action"]
    if act == "start":
        w = subprocess.Popen(a["worker"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        out(event="started")
    elif act == "connect":
        conn = len(conns); conns[a["client"]] = conn
        w.stdin.write(struct.pack("<BIBBiII", 1, 14, 1, 1 if a["whitelisted"] else 0, conn, 0, 0)); w.stdin.flush()
        out(event="ok", seq=a["seq"])
    elif act == "sync":
        out(event="synced", seq=a["seq"])
    elif act == "subscribe":
        print("boom", file=sys.stderr); sys.stderr.flush(); sys.exit(3)
    elif act == "shutdown":
        w.stdin.close(); status = w.wait()
        out(event="worker_gone", fatal=False, message="ended", status=status)
        out(event="ok", seq=a["seq"]); sys.exit(0)
"#;

#[test]
fn a_crash_is_charged_to_its_case_and_step_and_the_run_goes_on() {
    let dir = scratch("parent-crash");
    let script = dir.join("crashing.py");
    std::fs::write(&script, CRASHING_ADAPTER).unwrap();
    let run = parent(
        &[
            "--case",
            "sending/frame/new",
            "--case",
            "sending/frame/add",
            "--format",
            "json",
        ],
        &["python3", script.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cases = run.cases();
    assert_eq!(
        cases["sending/frame/new"]["result"], "passed",
        "{:?}",
        cases["sending/frame/new"]
    );
    let add = &cases["sending/frame/add"];
    assert_eq!(add["result"], "failed");
    assert_eq!(add["failure"], "crash", "{add}");
    assert_eq!(add["step"], 3, "the check after `subscribe`: {add}");
    assert!(
        add["message"].as_str().unwrap().contains("exit status 3"),
        "{add}"
    );
    assert_eq!(add["stderr_tail"][0], "boom", "{add}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_parent_fails_the_cases_named_for_its_bug() {
    // A few of parent-testee's bugs, each with a case that must catch it
    // (docs/CONFORMANCE.md lists them all); a selection keeps this quick.
    for (bug, case) in [
        ("fd-reuse", "lifecycle/reuse/late-frame-for-old-conn"),
        ("no-close-on-disconnect", "lifecycle/close-on-disconnect"),
        ("swapped-flag-bits", "bcast/flags/need-filter"),
        (
            "decode-error-loses-frame",
            "receiving/stranded/invalid-then-valid",
        ),
    ] {
        let run = parent(
            &["--case", case, "--format", "json"],
            &[parent_testee_exe(), "--bug", bug],
        );
        assert_eq!(run.code, 1, "--bug {bug}: {}", run.stderr);
        assert_eq!(
            run.cases()[case]["result"],
            "failed",
            "--bug {bug} must fail {case}"
        );
        let run = parent(&["--case", case], &[parent_testee_exe()]);
        assert_eq!(run.code, 0, "without a bug {case} passes: {}", run.stdout);
    }
}

/// The stand-in alone: hello, bytes both ways, the end of its input seen
/// by the harness, `Data` then `Exit` in order.
#[test]
fn the_stand_in_relays_both_ways_and_exits_on_the_harness_word() {
    let dir = scratch("standin");
    let path = dir.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut child = Command::new(broadcast_testkit::harness_run::harness_exe())
        .args(["parent-worker", "--session", path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = [0u8; HELLO_LEN];
    sock.read_exact(&mut hello).unwrap();
    assert_eq!(parse_hello(&hello), Some(child.id()));
    // The parent's bytes reach the harness unchanged, then their end.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"commands").unwrap();
    drop(stdin);
    let mut up = Vec::new();
    sock.read_to_end(&mut up).unwrap();
    assert_eq!(up, b"commands");
    // The harness's bytes reach the parent, then the stand-in exits 7.
    sock.write_all(&Control::Data(b"frames".to_vec()).encode())
        .unwrap();
    sock.write_all(&Control::Exit(7).encode()).unwrap();
    let mut down = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut down).unwrap();
    assert_eq!(down, b"frames");
    assert_eq!(child.wait().unwrap().code(), Some(7));
    let _ = std::fs::remove_dir_all(dir);
}
