//! What each subcommand does, from parsed arguments to an exit code:
//! 0 = everything selected passed, 1 = failures, 2 = usage or setup error.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::cli::{
    Cli, Command, DecodeArgs, EncodeArgs, ParentArgs, ReportArgs, RunArgs, SuiteArgs, VectorsArgs,
};
use super::known_failing::KnownFailing;
use super::outcome::{CaseInfo, CaseReport, FailureKind, ResultKind, Summary, Verdict, classify};
use super::parent::case::{ParentCase, ParentSuite};
use super::parent::session::ParentConfig;
use super::report::{Format, human, json, junit};
use super::runner::{self, CaseRun, PreflightError, RunConfig};
use super::scenario::Case;
use super::select::Selection;
use super::stream_tools::{self, DecodeEnd, EncodeFailure};
use super::vectors_source::{Suite, VectorSource};
use super::{codec_vectors, exit, parent};

/// A usage or setup problem: printed, then exit 2.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// Runs the parsed command line.
pub fn main(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Vectors(args) => vectors(args),
        Command::Decode(args) => decode(args),
        Command::Encode(args) => encode(args),
        Command::Parent(args) => parent(args),
        Command::ParentWorker(args) => return parent::standin::run(&args.session, args.fd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("broadcast-conformance: {e}");
            ExitCode::from(exit::SETUP)
        }
    }
}

/// The reference worker next to this executable: in the same `bin`
/// directory after `cargo install broadcast-conformance broadcast-worker`,
/// or in the same target directory in a checkout.
///
/// `cargo run -p broadcast-conformance` builds only the harness, not the
/// `broadcast-worker` package, so on a fresh checkout the worker may be
/// missing. When the harness was started by `cargo run` (cargo then sets
/// `CARGO`) from the repository, it builds the worker with the same cargo,
/// profile and target directory. By then the outer cargo has handed over to
/// this process and holds no build lock.
fn default_worker() -> Result<Vec<OsString>, SetupError> {
    let exe =
        std::env::current_exe().map_err(|e| SetupError(format!("cannot locate this executable: {e}")))?;
    let worker = broadcast_worker::locate::locate(&exe)
        .map_err(|e| SetupError(format!("no worker command given and {e} (after `--`)")))?;
    Ok(vec![worker.into_os_string()])
}

/// The reference parent adapter next to this executable, found (and built
/// under cargo) the way [`default_worker`] finds the reference worker.
fn default_adapter() -> Result<Vec<OsString>, SetupError> {
    let exe =
        std::env::current_exe().map_err(|e| SetupError(format!("cannot locate this executable: {e}")))?;
    let adapter = broadcast_worker::locate::locate_sibling(
        &exe,
        &broadcast_worker::locate::Sibling {
            binary: "broadcast-parent-adapter",
            what: "the reference parent adapter",
            package: "broadcast-conformance",
            package_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
            instead: "name an adapter command (after `--`)",
        },
    )
    .map_err(|e| SetupError(format!("no adapter command given and {e}")))?;
    Ok(vec![adapter.into_os_string()])
}

/// Checks that the worker program can be found before any case runs, so a
/// typo is one setup error and not a crash charged to every case.
fn check_worker(worker: &[OsString]) -> Result<(), SetupError> {
    check_program(worker, "worker")
}

fn check_program(worker: &[OsString], what: &str) -> Result<(), SetupError> {
    let program = Path::new(&worker[0]);
    let found = if program.components().count() > 1 {
        program.is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    if found {
        Ok(())
    } else {
        Err(SetupError(format!("{what} not found: {}", program.display())))
    }
}

/// Where the report goes.
enum Target {
    Stdout,
    File(PathBuf, File),
    /// Writing failed once (`| head` closed stdout): the run goes on and
    /// keeps its exit code, but writes nothing more.
    Broken,
}

impl Target {
    fn open(path: Option<&Path>) -> Result<Target, SetupError> {
        match path {
            None => Ok(Target::Stdout),
            Some(p) => File::create(p)
                .map(|f| Target::File(p.to_path_buf(), f))
                .map_err(|e| SetupError(format!("cannot write {}: {e}", p.display()))),
        }
    }

    fn write(&mut self, text: &str) {
        let result = match self {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Target::File(_, f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
            Target::Broken => Ok(()),
        };
        if let Err(e) = result {
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("broadcast-conformance: writing the report failed: {e}");
            }
            *self = Target::Broken;
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Target::File(..))
    }
}

/// Streams a run's results in the chosen format.
struct Reporter {
    format: Format,
    target: Target,
    quiet: bool,
    verbose: bool,
}

impl Reporter {
    /// Called as each case finishes. Not-run cases wait for
    /// [`Reporter::finish`], which lists them all once.
    fn case(&mut self, r: &CaseReport) {
        if r.result == ResultKind::NotRun {
            return;
        }
        match self.format {
            Format::Human => {
                if !self.quiet || human::shown_when_quiet(r.result) {
                    let mut text = human::progress_line(r);
                    text.push('\n');
                    if r.failure.is_some() || r.result == ResultKind::UnexpectedPass {
                        text.push_str(&human::failure_details(r, self.verbose));
                    }
                    self.target.write(&text);
                }
            }
            Format::Json => {
                let mut line = json::line(r);
                line.push('\n');
                self.target.write(&line);
            }
            Format::Junit => {}
        }
    }

    /// Called once at the end with every case (selected or not).
    fn finish(&mut self, name: &str, reports: &[CaseReport], elapsed: Duration) {
        let summary = human::summary(&Summary::of(reports), elapsed);
        match self.format {
            Format::Human => {
                // Not-run cases fail the run, so even quiet mode lists them.
                for r in reports.iter().filter(|r| r.result == ResultKind::NotRun) {
                    self.target.write(&format!("{}\n", human::progress_line(r)));
                }
                self.target.write(&summary);
                if self.target.is_file() {
                    let _ = io::stdout().lock().write_all(summary.as_bytes());
                }
            }
            Format::Json => {
                for r in reports
                    .iter()
                    .filter(|r| matches!(r.result, ResultKind::Skipped | ResultKind::NotRun))
                {
                    self.target.write(&format!("{}\n", json::line(r)));
                }
                eprint!("{summary}");
            }
            Format::Junit => {
                self.target.write(&junit::render(name, reports));
                eprint!("{summary}");
            }
        }
        if let Target::File(path, _) = &self.target {
            eprintln!("report written to {}", path.display());
        }
    }
}

fn not_selected(case: &(impl CaseInfo + ?Sized), note: &str, result: ResultKind) -> CaseReport {
    CaseReport {
        note: Some(note.to_string()),
        ..CaseReport::of(case, result, Duration::ZERO)
    }
}

fn list(ids: impl Iterator<Item = (String, String)>) -> ExitCode {
    let mut out = io::stdout().lock();
    for (id, level) in ids {
        if writeln!(out, "{id} {level}").is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn run(args: RunArgs) -> Result<ExitCode, SetupError> {
    let source = VectorSource::resolve(args.suite.report.vectors.as_deref());
    let suite = Suite::load(&source).map_err(|e| SetupError(format!("bad vectors: {e}")))?;
    let all: Vec<&Case> = suite.cases().collect();
    let (selected, known) = match select(&args.suite, &all, "cases", &source)? {
        Selected::Run { selected, known } => (selected, known),
        Selected::Listed(code) => return Ok(code),
    };
    let worker = if args.worker.is_empty() {
        default_worker()?
    } else {
        args.worker.clone()
    };
    check_worker(&worker)?;
    let cfg = RunConfig {
        worker,
        transport: args.suite.transport.into(),
        timeout: Duration::from_millis(args.timeout),
    };
    match runner::preflight(&cfg) {
        Ok(()) => {}
        Err(PreflightError::CannotStart(m)) => return Err(SetupError(m)),
        Err(PreflightError::Silent(m)) => {
            eprintln!("broadcast-conformance: {m}");
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    let opts = SuiteOptions::of(&args.suite, "broadcast-conformance");
    run_suite(&opts, &all, &selected, &known, &|case, interrupt| {
        runner::run_case(case, &cfg, interrupt)
    })
}

/// Loads `--known-failing` and checks that it names only cases of `all`.
fn load_known_failing<C: CaseInfo>(path: Option<&Path>, all: &[&C]) -> Result<KnownFailing, SetupError> {
    let known = match path {
        None => KnownFailing::default(),
        Some(path) => KnownFailing::load(path).map_err(SetupError)?,
    };
    let ids: BTreeSet<&str> = all.iter().map(|c| c.id()).collect();
    let stale = known.unknown_ids(&ids);
    if !stale.is_empty() {
        return Err(SetupError(format!(
            "the known-failing list names case(s) that do not exist: {}",
            stale.join(", ")
        )));
    }
    Ok(known)
}

/// The options of a suite run that `run` and `parent` share.
struct SuiteOptions<'a> {
    /// The report's name (the JUnit report's).
    name: &'a str,
    report: &'a ReportArgs,
    verbose: bool,
    strict: bool,
    jobs: usize,
    fail_fast: bool,
    max_hangs: Option<std::num::NonZeroUsize>,
}

impl<'a> SuiteOptions<'a> {
    /// The options of `args`, for the report named `name`.
    fn of(args: &'a SuiteArgs, name: &'a str) -> SuiteOptions<'a> {
        SuiteOptions {
            name,
            report: &args.report,
            verbose: args.verbose,
            strict: args.strict,
            jobs: args.jobs(),
            fail_fast: args.fail_fast,
            max_hangs: args.max_hangs,
        }
    }
}

/// What `--cases`, `--skip`, `--list` and `--known-failing` made of a
/// suite.
enum Selected<'c, C> {
    /// The cases to run, and the known-failing ids.
    Run {
        selected: Vec<&'c C>,
        known: KnownFailing,
    },
    /// `--list` printed the selection: the exit code.
    Listed(ExitCode),
}

/// The selection of `args` from `all` (`what` names the cases in the
/// error when none is selected): the cases to run with the known-failing
/// list, or, with `--list`, the listing printed.
fn select<'c, C: CaseInfo>(
    args: &SuiteArgs,
    all: &[&'c C],
    what: &str,
    source: &VectorSource,
) -> Result<Selected<'c, C>, SetupError> {
    let selection =
        Selection::new(&args.report.cases, &args.report.skips).map_err(|e| SetupError(e.to_string()))?;
    let selected: Vec<&C> = all
        .iter()
        .copied()
        .filter(|c| selection.selects(c.id()))
        .collect();
    if selected.is_empty() {
        return Err(SetupError(format!(
            "no case matches the selection ({} {what} in {})",
            all.len(),
            source.describe()
        )));
    }
    if args.report.list {
        return Ok(Selected::Listed(list(
            selected
                .iter()
                .map(|c| (c.id().to_string(), c.level().to_string())),
        )));
    }
    let known = load_known_failing(args.known_failing.as_deref(), all)?;
    Ok(Selected::Run { selected, known })
}

/// Runs the `selected` cases of a suite (`all` of it) with `run_one`, in
/// parallel on `opts.jobs` threads, and reports them in case order: the
/// one run loop of the worker suite (`run`) and the parent suite
/// (`parent`), with their shared `--fail-fast`, `--max-hangs`, Ctrl-C,
/// known-failing and `--strict` semantics.
fn run_suite<C: CaseInfo + Sync>(
    opts: &SuiteOptions<'_>,
    all: &[&C],
    selected: &[&C],
    known: &KnownFailing,
    run_one: &(dyn Fn(&C, &AtomicBool) -> CaseRun + Sync),
) -> Result<ExitCode, SetupError> {
    let mut reporter = Reporter {
        format: opts.report.format,
        target: Target::open(opts.report.output.as_deref())?,
        quiet: opts.report.quiet,
        verbose: opts.verbose,
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        // Failing to install the handler only loses the nicer Ctrl-C
        // behaviour; the run itself is unaffected.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut results: Vec<Option<CaseReport>> = vec![None; selected.len()];
    // Why the run stopped early (--fail-fast, --max-hangs), for the cases
    // that were never started. Decided on the runner thread, as each case
    // ends, so that no case starts after the one that stopped the run.
    let stopped: Mutex<Option<String>> = Mutex::new(None);
    let hangs = AtomicUsize::new(0);
    let stop_after = |i: usize, run: &CaseRun| -> bool {
        let CaseRun::Done { verdict, .. } = run else {
            return false;
        };
        let case = selected[i];
        let counts = classify(verdict, case.level(), opts.strict, known.contains(case.id())).fails_run();
        let hang = counts && matches!(verdict, Verdict::Fail(f) if f.kind == FailureKind::Hang);
        let hangs = hangs.fetch_add(usize::from(hang), Ordering::SeqCst) + usize::from(hang);
        let why = if opts.fail_fast && counts {
            format!("--fail-fast: stopped after {} failed", case.id())
        } else if let Some(max) = opts.max_hangs
            && hang
            && hangs >= max.get()
        {
            format!("--max-hangs {max}: stopped after {hangs} hang(s)")
        } else {
            return false;
        };
        let mut stopped = stopped.lock().unwrap_or_else(|e| e.into_inner());
        stopped.get_or_insert(why);
        true
    };
    std::thread::scope(|scope| {
        let interrupt = &interrupt;
        let stop_after = &stop_after;
        let jobs = opts.jobs;
        scope.spawn(move || runner::run_each(selected, jobs, interrupt, stop_after, tx, run_one));
        // Reports go out in case order, whatever order the jobs finish in.
        let mut next = 0;
        for (i, run) in rx {
            let case = selected[i];
            let report = match run {
                CaseRun::Interrupted => {
                    not_selected(case, "interrupted before it finished", ResultKind::NotRun)
                }
                CaseRun::Done { verdict, duration } => {
                    let result = classify(&verdict, case.level(), opts.strict, known.contains(case.id()));
                    CaseReport {
                        failure: match verdict {
                            Verdict::Pass => None,
                            Verdict::Fail(f) => Some(f),
                        },
                        note: (result == ResultKind::UnexpectedPass).then(|| {
                            "listed as known failing, but passed: remove it from the list".to_string()
                        }),
                        ..CaseReport::of(case, result, duration)
                    }
                }
            };
            results[i] = Some(report);
            while let Some(Some(r)) = results.get(next) {
                reporter.case(r);
                next += 1;
            }
        }
        // After an interrupt or a stop, finished cases may wait behind one
        // that never ran: report them, still in order.
        for r in results[next..].iter().flatten() {
            reporter.case(r);
        }
    });
    let stopped = stopped.into_inner().unwrap_or_else(|e| e.into_inner());
    let unrun_note = match &stopped {
        Some(why) => format!("not run: {why}"),
        None => "not run: the run was interrupted".to_string(),
    };
    // Every case in suite order: the run's, then skipped and not-run ones.
    let mut by_id: std::collections::HashMap<&str, CaseReport> = selected
        .iter()
        .zip(results)
        .map(|(case, r)| {
            (
                case.id(),
                r.unwrap_or_else(|| not_selected(*case, &unrun_note, ResultKind::NotRun)),
            )
        })
        .collect();
    let reports: Vec<CaseReport> = all
        .iter()
        .map(|c| {
            by_id
                .remove(c.id())
                .unwrap_or_else(|| not_selected(*c, "not selected", ResultKind::Skipped))
        })
        .collect();
    reporter.finish(opts.name, &reports, start.elapsed());
    if interrupt.load(Ordering::SeqCst) {
        eprintln!("broadcast-conformance: interrupted; cases not run are reported as not_run");
    } else if let Some(why) = &stopped {
        eprintln!("broadcast-conformance: {why}; cases not started are reported as not_run");
    }
    Ok(verdict_code(&reports))
}

/// `parent`: the parent suite against an adapter.
fn parent(args: ParentArgs) -> Result<ExitCode, SetupError> {
    let source = VectorSource::resolve(args.suite.report.vectors.as_deref());
    let suite = ParentSuite::load(&source).map_err(|e| SetupError(format!("bad vectors: {e}")))?;
    let all: Vec<&ParentCase> = suite.cases().collect();
    let (selected, known) = match select(&args.suite, &all, "parent cases", &source)? {
        Selected::Run { selected, known } => (selected, known),
        Selected::Listed(code) => return Ok(code),
    };
    let adapter = if args.adapter.is_empty() {
        default_adapter()?
    } else {
        args.adapter.clone()
    };
    check_program(&adapter, "adapter")?;
    let exe =
        std::env::current_exe().map_err(|e| SetupError(format!("cannot locate this executable: {e}")))?;
    // Short paths: a Unix socket's path has a limit of about 100 bytes, so
    // a long TMPDIR gives way to /tmp.
    let name = format!("bcp-{}", std::process::id());
    let mut dir = std::env::temp_dir().join(&name);
    if dir.as_os_str().len() > 80 {
        dir = Path::new("/tmp").join(&name);
    }
    std::fs::create_dir_all(&dir).map_err(|e| SetupError(format!("cannot create {}: {e}", dir.display())))?;
    let cfg = ParentConfig {
        adapter,
        transport: args.suite.transport.into(),
        timeout: Duration::from_millis(args.timeout),
        exe,
        dir: dir.clone(),
    };
    let result = match parent::preflight(&cfg) {
        Ok(()) => {
            let opts = SuiteOptions::of(&args.suite, "broadcast-conformance parent");
            run_suite(&opts, &all, &selected, &known, &|case, interrupt| {
                parent::session::run_case(case, &cfg, interrupt)
            })
        }
        Err(PreflightError::CannotStart(m)) => Err(SetupError(m)),
        Err(PreflightError::Silent(m)) => {
            eprintln!("broadcast-conformance: {m}");
            Ok(ExitCode::from(exit::FAILED))
        }
    };
    parent::session::cleanup(&dir);
    result
}

fn verdict_code(reports: &[CaseReport]) -> ExitCode {
    if Summary::of(reports).success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    }
}

fn vectors(args: VectorsArgs) -> Result<ExitCode, SetupError> {
    let ReportArgs {
        vectors,
        cases,
        skips,
        list: list_only,
        format,
        output,
        quiet,
    } = args.report;
    let selection = Selection::new(&cases, &skips).map_err(|e| SetupError(e.to_string()))?;
    let source = VectorSource::resolve(vectors.as_deref());
    let all = codec_vectors::load(&source).map_err(|e| SetupError(format!("bad vectors: {e}")))?;
    if !all.iter().any(|c| selection.selects(&c.id)) {
        return Err(SetupError("no vector matches the selection".into()));
    }
    if list_only {
        return Ok(list(
            all.iter()
                .filter(|c| selection.selects(&c.id))
                .map(|c| (c.id.clone(), "MUST".to_string())),
        ));
    }
    let start = Instant::now();
    let reports = codec_vectors::run(&all, &selection);
    let mut reporter = Reporter {
        format,
        target: Target::open(output.as_deref())?,
        quiet,
        verbose: true,
    };
    for r in reports.iter().filter(|r| r.result != ResultKind::Skipped) {
        reporter.case(r);
    }
    reporter.finish("broadcast-conformance vectors", &reports, start.elapsed());
    Ok(verdict_code(&reports))
}

fn open_input(file: Option<&Path>) -> Result<Box<dyn Read>, SetupError> {
    match file {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(p) => File::open(p)
            .map(|f| Box::new(f) as Box<dyn Read>)
            .map_err(|e| SetupError(format!("cannot read {}: {e}", p.display()))),
    }
}

fn decode(args: DecodeArgs) -> Result<ExitCode, SetupError> {
    let input = open_input(args.file.as_deref())?;
    let out = io::BufWriter::new(io::stdout().lock());
    match stream_tools::decode(input, out, args.max_payload) {
        Ok(DecodeEnd::Clean) => Ok(ExitCode::SUCCESS),
        Ok(DecodeEnd::Fatal) => Ok(ExitCode::from(exit::FAILED)),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(SetupError(format!("decode: {e}"))),
    }
}

fn encode(args: EncodeArgs) -> Result<ExitCode, SetupError> {
    let input: Box<dyn BufRead> = Box::new(BufReader::new(open_input(args.file.as_deref())?));
    let out: Box<dyn Write> = match &args.output {
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
        Some(p) => {
            Box::new(io::BufWriter::new(File::create(p).map_err(|e| {
                SetupError(format!("cannot write {}: {e}", p.display()))
            })?))
        }
    };
    match stream_tools::encode(input, out) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(EncodeFailure::Line(e)) => {
            eprintln!("broadcast-conformance encode: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
        Err(EncodeFailure::Io(e)) => Err(SetupError(format!("encode: {e}"))),
    }
}
