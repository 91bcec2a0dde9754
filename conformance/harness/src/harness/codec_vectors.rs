//! The `vectors` subcommand: replays `vectors/codec/*.json` and
//! `vectors/framing/streams.json` (read by [`super::vector_schema`])
//! through `broadcast_wire` and reports each vector like a `run` case
//! (section = first segment of the id).
//!
//! Codec: decode `hex` and compare with `value` or `error`; encode `value`
//! and compare with `hex`. Framing: feed `stream_hex` to a `FrameDecoder`
//! whole, one byte at a time, in every two-way split, and (for streams of
//! up to 64 bytes) every three-way split, and compare frames and end each
//! time.

use std::time::{Duration, Instant};

use broadcast_wire::{BroadcastFrame, Frame, FrameDecoder, SubCommand};
use serde_json::Value;

use super::codec_json::{
    broadcast_frame_from_json, broadcast_frame_to_json, sub_command_from_json, sub_command_to_json,
};
use super::outcome::{CaseReport, Failure, FailureKind, ResultKind};
use super::scenario::{Level, VectorError};
use super::select::Selection;
use super::vector_schema::{CodecFile, FramingFile, VectorMessage};
use super::vectors_source::{LoadError, VectorSource};

/// One vector, ready to check.
pub struct VectorCase {
    /// Vector id.
    pub id: String,
    /// The vector's comment, shown as the requirement.
    pub comment: String,
    check: Box<dyn Fn() -> Result<(), Box<Failure>> + Send + Sync>,
}

fn bad(file: &str, reason: impl Into<String>) -> LoadError {
    LoadError::Vector(VectorError {
        file: file.to_string(),
        case: None,
        reason: reason.into(),
    })
}

/// Loads every codec and framing vector of `source`.
pub fn load(source: &VectorSource) -> Result<Vec<VectorCase>, LoadError> {
    let mut cases = Vec::new();
    for (name, text) in source.files("codec").map_err(LoadError::Source)? {
        let file = CodecFile::parse(&text).map_err(|e| bad(&name, e))?;
        let sub_command = file.message == VectorMessage::SubCommand;
        for v in file.vectors {
            let payload = hex::decode(&v.hex).map_err(|e| bad(&name, format!("{}: `hex`: {e}", v.id)))?;
            let (value, error) = (v.value.clone(), v.error.clone());
            cases.push(VectorCase {
                id: v.id,
                comment: v.comment,
                check: Box::new(move || check_codec(sub_command, &payload, value.as_ref(), error.as_deref())),
            });
        }
    }
    for (name, text) in source.files("framing").map_err(LoadError::Source)? {
        let file = FramingFile::parse(&text).map_err(|e| bad(&name, e))?;
        for v in file.vectors {
            let stream =
                hex::decode(&v.stream_hex).map_err(|e| bad(&name, format!("{}: `stream_hex`: {e}", v.id)))?;
            let expected = Outcome {
                frames: v
                    .frames
                    .iter()
                    .map(|f| format!("chan {} payload {}", f.chan, f.payload_hex))
                    .collect(),
                end: v.end.clone(),
            };
            let max = v.max_payload.unwrap_or(broadcast_wire::DEFAULT_MAX_PAYLOAD);
            cases.push(VectorCase {
                id: v.id,
                comment: v.comment,
                check: Box::new(move || check_framing(&stream, max, &expected)),
            });
        }
    }
    Ok(cases)
}

fn mismatch(at: &str, message: String, expected: Vec<String>, actual: Vec<String>) -> Box<Failure> {
    Box::new(Failure {
        kind: FailureKind::Mismatch,
        step: None,
        at: at.to_string(),
        message,
        expected,
        actual,
        stderr_tail: Vec::new(),
        trace: Vec::new(),
    })
}

fn check_codec(
    sub_command: bool,
    payload: &[u8],
    value: Option<&Value>,
    error: Option<&str>,
) -> Result<(), Box<Failure>> {
    let decoded = if sub_command {
        SubCommand::decode(payload.to_vec().into()).map(|c| sub_command_to_json(&c))
    } else {
        BroadcastFrame::decode(payload.to_vec().into()).map(|f| broadcast_frame_to_json(&f))
    };
    let want = match (value, error) {
        (Some(v), _) => v.to_string(),
        (None, Some(e)) => format!("error {e}"),
        (None, None) => String::new(),
    };
    let got = match &decoded {
        Ok(v) => v.to_string(),
        Err(e) => format!("error {}", e.class()),
    };
    let same = match (value, &decoded) {
        (Some(v), Ok(d)) => v == d,
        (None, Err(e)) => error == Some(e.class()),
        _ => false,
    };
    if !same {
        return Err(mismatch(
            "decode",
            "decoding `hex` gave another outcome".into(),
            vec![want],
            vec![got],
        ));
    }
    if let Some(v) = value {
        let mut encoded = Vec::new();
        let built = if sub_command {
            sub_command_from_json(v).map(|c| c.encode(&mut encoded))
        } else {
            broadcast_frame_from_json(v).map(|f| f.encode(&mut encoded))
        };
        if let Err(e) = built {
            return Err(mismatch(
                "encode",
                format!("`value` cannot be built: {e}"),
                vec![],
                vec![],
            ));
        }
        if encoded != payload {
            return Err(mismatch(
                "encode",
                "encoding `value` did not give back `hex`".into(),
                vec![hex::encode(payload)],
                vec![hex::encode(&encoded)],
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    frames: Vec<String>,
    end: String,
}

impl Outcome {
    fn lines(&self) -> Vec<String> {
        let mut v = self.frames.clone();
        v.push(format!("end {}", self.end));
        v
    }
}

/// Feeds `pieces` in order and collects what the decoder yields.
fn feed(pieces: &[&[u8]], max: u32) -> Outcome {
    let mut dec = FrameDecoder::with_max_payload(max);
    let mut frames = Vec::new();
    let show = |f: &Frame| format!("chan {} payload {}", f.chan, hex::encode(&f.payload));
    for piece in pieces {
        dec.feed(piece);
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(show(&f)),
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        frames,
                        end: e.class().to_string(),
                    };
                }
            }
        }
    }
    let end = match dec.finish() {
        Ok(()) => "clean".to_string(),
        Err(e) => e.class().to_string(),
    };
    Outcome { frames, end }
}

fn check_framing(stream: &[u8], max: u32, expected: &Outcome) -> Result<(), Box<Failure>> {
    let check = |at: String, pieces: &[&[u8]]| -> Result<(), Box<Failure>> {
        let got = feed(pieces, max);
        if &got == expected {
            Ok(())
        } else {
            Err(mismatch(
                &at,
                "the decoder's frames or end differ".into(),
                expected.lines(),
                got.lines(),
            ))
        }
    };
    check("one read".into(), &[stream])?;
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    check("one byte per read".into(), &bytes)?;
    for i in 0..=stream.len() {
        check(format!("split at {i}"), &[&stream[..i], &stream[i..]])?;
    }
    if stream.len() <= 64 {
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                check(
                    format!("split at {i} and {j}"),
                    &[&stream[..i], &stream[i..j], &stream[j..]],
                )?;
            }
        }
    }
    Ok(())
}

/// Runs the selected vectors and returns one report per vector (the
/// deselected ones as skipped).
pub fn run(cases: &[VectorCase], selection: &Selection) -> Vec<CaseReport> {
    cases
        .iter()
        .map(|c| {
            let section = c.id.split('/').next().unwrap_or("").to_string();
            let mut report = CaseReport {
                id: c.id.clone(),
                section,
                level: Level::Must,
                spec: String::new(),
                requirement: c.comment.clone(),
                result: ResultKind::Skipped,
                duration: Duration::ZERO,
                failure: None,
                note: Some("not selected".into()),
            };
            if selection.selects(&c.id) {
                let start = Instant::now();
                let verdict = (c.check)();
                report.duration = start.elapsed();
                report.note = None;
                match verdict {
                    Ok(()) => report.result = ResultKind::Passed,
                    Err(f) => {
                        report.result = ResultKind::Failed;
                        report.failure = Some(f);
                    }
                }
            }
            report
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_vectors_all_pass() {
        let source = VectorSource::resolve(None);
        let cases = load(&source).unwrap();
        assert!(cases.len() > 200, "{} vectors", cases.len());
        let reports = run(&cases, &Selection::new(&[], &[]).unwrap());
        let failed: Vec<_> = reports
            .iter()
            .filter(|r| r.result != ResultKind::Passed)
            .collect();
        assert!(failed.is_empty(), "{:?}", failed.first());
    }

    #[test]
    fn a_wrong_expectation_fails() {
        let expected = Outcome {
            frames: vec![],
            end: "clean".into(),
        };
        let err = check_framing(&[1, 0, 0, 0, 0], 16, &expected).unwrap_err();
        assert_eq!(err.at, "one read");
        assert!(check_codec(true, &[2, 0], None, Some("unknown_op")).is_err());
        assert!(check_codec(true, &[2, 0], None, Some("truncated")).is_ok());
    }
}
