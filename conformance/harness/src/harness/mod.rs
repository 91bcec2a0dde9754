//! The conformance harness behind the `broadcast-conformance` binary.
//!
//! - [`scenario`]: the scenario vector model (docs/VECTORS.md), checked up
//!   front so a bad vector is a setup error, not a worker failure;
//! - [`vectors_source`]: where vectors come from and loading the suite;
//! - [`select`], [`known_failing`]: which cases run and which may fail;
//! - [`probe`], [`runner`], [`raw_writer`]: one worker per case, its bytes
//!   written raw and its frames read through the
//!   [`Broadcaster`](broadcast_process::broadcaster::Broadcaster), the probe as
//!   the step barrier, hangs and crashes charged to the right case;
//! - [`escape`], [`matching`]: expected frames built from the spec's rules
//!   and compared with what the worker wrote;
//! - [`outcome`], [`report`]: verdicts, levels and the human, JSON and JUnit
//!   reports;
//! - [`stream_tools`], [`codec_json`]: the `decode`/`encode` tools;
//! - [`vector_schema`]: the codec and framing vector files and the mapping
//!   of a vector's `value` to a command or frame;
//! - [`codec_vectors`]: the `vectors` subcommand;
//! - [`parent`]: the parent suite (`parent`) and its stand-in worker;
//! - [`cli`], [`app`]: the command line and exit codes.

pub mod app;
pub mod cli;
pub mod codec_json;
pub mod codec_vectors;
pub mod escape;
pub mod known_failing;
pub mod matching;
pub mod outcome;
pub mod parent;
pub mod probe;
pub mod raw_writer;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod select;
pub mod stream_tools;
pub mod vector_schema;
pub mod vectors_source;

/// Exit codes of `broadcast-conformance`.
pub mod exit {
    /// Every selected case passed (and no known-failing case passed).
    pub const PASSED: u8 = 0;
    /// Some case failed, a known-failing case passed, the run was
    /// interrupted, or `decode`/`encode` met invalid input.
    pub const FAILED: u8 = 1;
    /// Usage or setup error: bad arguments, bad vectors, worker not found.
    pub const SETUP: u8 = 2;
}
