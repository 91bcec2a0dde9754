//! The parent suite (`broadcast-conformance parent`): the harness plays
//! the worker for a parent wrapped in an adapter (docs/CONFORMANCE.md,
//! "Testing a parent"), and checks PROTOCOL.md#parent-semantics.
//!
//! - [`case`]: the parent vectors (`vectors/parent/*.json`, schema
//!   `broadcast-wire/parent/v1`), checked and compiled;
//! - [`standin`]: the stand-in worker the adapter starts
//!   (`broadcast-conformance parent-worker`), which relays bytes between
//!   the parent and the harness;
//! - [`engine`]: the harness's end of each stand-in: the parent's commands
//!   logged and checked, an embedded reference worker answering them;
//! - [`adapter`]: the adapter process and its JSON lines;
//! - [`matcher`]: commands matched byte for byte against the actions that
//!   caused them, clients bound to the conns the parent chose;
//! - [`session`]: one case, from `start` to the adapter's exit.

pub mod adapter;
pub mod case;
pub mod engine;
pub mod matcher;
pub mod session;
pub mod standin;

use std::sync::atomic::AtomicBool;

use case::{Check, PStep, ParentCase};
use session::{ParentConfig, run_case};

use super::outcome::{FailureKind, Verdict};
use super::runner::{CaseRun, PreflightError};
use super::scenario::Level;

/// Starts the adapter once with an empty case (`start`, a `sync`,
/// `shutdown`), so that an adapter that cannot run is one setup error and
/// one that never answers stops the run at once, instead of a failure
/// charged to every case.
pub fn preflight(cfg: &ParentConfig) -> Result<(), PreflightError> {
    let empty = ParentCase {
        id: "preflight".into(),
        section: "preflight".into(),
        level: Level::Must,
        spec: "PROTOCOL.md#parent-semantics".into(),
        requirement: String::new(),
        comment: String::new(),
        steps: vec![PStep::Check(Check::default())],
    };
    match run_case(&empty, cfg, &AtomicBool::new(false)) {
        CaseRun::Done {
            verdict: Verdict::Fail(f),
            ..
        } => {
            let tail = if f.stderr_tail.is_empty() {
                String::new()
            } else {
                format!(
                    "\nLast lines of the adapter's stderr:\n  {}",
                    f.stderr_tail.join("\n  ")
                )
            };
            match f.kind {
                FailureKind::Harness => Err(PreflightError::CannotStart(format!("{}{tail}", f.message))),
                FailureKind::Hang | FailureKind::Crash if f.at == "start" => {
                    Err(PreflightError::Silent(format!(
                        "the adapter did not get through `start`: {}. Every case would fail the same way, so the run \
                     stops here. An adapter writes {{\"event\":\"started\"}} once its worker runs, and flushes \
                     stdout after every line (docs/CONFORMANCE.md, \"The adapter contract\").{tail}",
                        f.message
                    )))
                }
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}
