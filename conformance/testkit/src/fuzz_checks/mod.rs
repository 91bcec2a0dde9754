//! The properties the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) check,
//! also replayed on stable over the committed corpora by
//! `tests/fuzz_corpus_*.rs` (see docs/FUZZING.md).

pub mod link;
pub mod replay;
pub mod wire;
pub mod worker;
