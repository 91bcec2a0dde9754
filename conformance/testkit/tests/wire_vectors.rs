//! Replays the golden vectors of `vectors/` (docs/VECTORS.md) against the
//! codec and the framing layer.
//!
//! - Codec vectors: decode through `decode` (zero-copy, `Bytes`) and
//!   `decode_from` (`io::Read`, in one read and in one-byte reads); the
//!   outcome, the error class and every value field must match, and for a
//!   valid vector the value *built from the JSON fields* must encode (via
//!   `encode`, `encode_to` and the frame writer) to exactly `hex`.
//! - Framing vectors: `FrameDecoder` and `FrameReader` under one read, every
//!   split into two reads, every split into three reads for short streams,
//!   one-byte reads and seeded random splits with `WouldBlock` and
//!   `Interrupted` mixed in; frames (heartbeats and foreign channels
//!   included) and the end must match, honouring `max_payload`.
//! - `tokio_codec::FrameCodec` on every framing vector (every file of
//!   `vectors/framing/`), driven as `FramedRead` drives it and through the
//!   real `FramedRead`: for a consumer of each message type, the items and
//!   the end are exactly `FrameDecoder::decode_message`'s, under one read,
//!   every split into two reads, one-byte reads, every split into three
//!   reads of short streams and seeded random splits.
//!
//! The JSON is the expectation; nothing expected here is produced by the
//! code under test. The vectors themselves are regenerated and diffed by
//! `.ci/run` (see docs/VECTORS.md, "Regenerating").

use broadcast_testkit::scripted_io as wire_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use broadcast_conformance::harness::vector_schema::{
    BroadcastFrameValue, CodecFile, CodecVector, FramingFile, StreamVector, SubCommandValue, VectorMessage,
};
use broadcast_testkit::spec_oracle::framing::pack_frame;
use broadcast_testkit::spec_oracle::payload::pack_sub_command;
use broadcast_wire::tokio_codec::FrameCodec;
use broadcast_wire::{
    BroadcastFrame, DEFAULT_MAX_PAYLOAD, DecodeFromError, Frame, FrameDecoder, FrameReader, FrameWriter,
    FramingError, Message, Op, PayloadError, ReadError, ReadStatus, SubCommand,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::io::StreamReader;
use wire_support::{ReadStep, Rng, ScriptedReader};

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors")
}

fn read(rel: &str) -> String {
    let path = vectors_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A codec vector file, through the harness's one reader of the schema.
fn load_codec(rel: &str) -> CodecFile {
    CodecFile::parse(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A framing vector file, through the harness's one reader of the schema.
fn load_framing(rel: &str) -> FramingFile {
    FramingFile::parse(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn unhex(id: &str, s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("{id}: bad hex {s:?}: {e}"))
}

const PAYLOAD_CLASSES: [&str; 6] = [
    "truncated",
    "trailing_bytes",
    "unknown_op",
    "invalid_conn",
    "invalid_sub_id",
    "invalid_data",
];

// ---------------------------------------------------------------------------
// Counts and coverage
// ---------------------------------------------------------------------------

#[test]
fn vector_files_meet_the_issue_minimums_and_cover_every_class() {
    let sc = load_codec("codec/subcommand.json");
    let bf = load_codec("codec/broadcast_frame.json");
    let st = load_framing("framing/streams.json");

    assert_eq!(
        (sc.schema.as_str(), sc.message),
        ("broadcast-wire/codec/v1", VectorMessage::SubCommand)
    );
    assert_eq!(
        (bf.schema.as_str(), bf.message),
        ("broadcast-wire/codec/v1", VectorMessage::BroadcastFrame)
    );
    assert_eq!(st.schema, "broadcast-wire/framing/v1");

    // Issue 2: at least 120 codec vectors together, at least 30 streams.
    let codec = sc.vectors.len() + bf.vectors.len();
    assert!(codec >= 120, "only {codec} codec vectors");
    assert!(
        st.vectors.len() >= 30,
        "only {} framing vectors",
        st.vectors.len()
    );

    // Ids are unique per file.
    for (name, ids) in [
        ("subcommand", sc.vectors.iter().map(|v| &v.id).collect::<Vec<_>>()),
        ("broadcast_frame", bf.vectors.iter().map(|v| &v.id).collect()),
        ("streams", st.vectors.iter().map(|v| &v.id).collect()),
    ] {
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate id in {name}");
    }

    // Every error class appears several times for each message it applies to.
    fn count(file: &CodecFile) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for v in &file.vectors {
            *m.entry(v.error.as_deref().unwrap_or("valid")).or_default() += 1;
        }
        m
    }
    let sc_counts = count(&sc);
    for class in PAYLOAD_CLASSES {
        let n = sc_counts.get(class).copied().unwrap_or(0);
        assert!(n >= 2, "SubCommand class {class} appears {n} time(s)");
    }
    let bf_counts = count(&bf);
    for class in ["truncated", "trailing_bytes", "invalid_conn", "invalid_data"] {
        let n = bf_counts.get(class).copied().unwrap_or(0);
        assert!(n >= 2, "BroadcastFrame class {class} appears {n} time(s)");
    }
    for class in ["unknown_op", "invalid_sub_id"] {
        assert!(
            !bf_counts.contains_key(class),
            "BroadcastFrame cannot fail with {class}"
        );
    }
    let ends: BTreeSet<&str> = st.vectors.iter().map(|v| v.end.as_str()).collect();
    assert_eq!(
        ends,
        BTreeSet::from(["clean", "frame_too_large", "truncated_stream"])
    );

    // Precedence vectors exist for both messages.
    assert!(
        sc.vectors
            .iter()
            .filter(|v| v.id.contains("/precedence/"))
            .count()
            >= 5
    );
    assert!(bf.vectors.iter().any(|v| v.id.contains("/precedence/")));
}

#[test]
fn codec_vectors_cover_the_boundaries_the_issue_lists() {
    let sc = load_codec("codec/subcommand.json");
    let valid: Vec<SubCommandValue> = sc
        .vectors
        .iter()
        .filter_map(|v| v.value.clone())
        .map(|v| serde_json::from_value(v).expect("SubCommand value"))
        .collect();
    for op in ["new", "close", "add", "remove", "auth", "bcast"] {
        let of_op: Vec<_> = valid.iter().filter(|v| v.op == op).collect();
        assert!(
            of_op.iter().any(|v| v.conn == 0 || op == "bcast"),
            "{op}: no conn 0"
        );
        assert!(of_op.iter().any(|v| v.conn == i32::MAX), "{op}: no conn i32::MAX");
        let defined = match op {
            "new" => 0x01,
            "bcast" => 0x07,
            _ => 0x00,
        };
        assert!(
            of_op.iter().any(|v| v.flags & !defined != 0),
            "{op}: no valid vector with reserved flag bits set"
        );
    }
    assert!(valid.iter().any(|v| v.op == "bcast" && v.conn == -1));
    for op in ["add", "remove"] {
        let lens: BTreeSet<usize> = valid
            .iter()
            .filter(|v| v.op == op)
            .map(|v| v.sub_id.len())
            .collect();
        assert!(
            lens.contains(&1) && lens.contains(&64),
            "{op}: sub_id lengths {lens:?}"
        );
    }
    assert!(valid.iter().any(|v| !v.sub_id.is_ascii()), "no non-ASCII sub_id");
    // i32::MIN is refused for every op.
    let min_hex = hex::encode(i32::MIN.to_le_bytes());
    let invalid_min = sc
        .vectors
        .iter()
        .filter(|v| v.error.as_deref() == Some("invalid_conn") && v.hex[4..12] == min_hex)
        .count();
    assert!(
        invalid_min >= 6,
        "{invalid_min} invalid_conn vectors with i32::MIN"
    );

    let st = load_framing("framing/streams.json");
    let has = |f: &dyn Fn(&StreamVector) -> bool| st.vectors.iter().any(f);
    assert!(
        has(&|v| v.stream_hex.is_empty() && v.end == "clean"),
        "no empty stream"
    );
    assert!(
        has(&|v| v.frames.iter().any(|f| f.payload_hex.is_empty())),
        "no heartbeat"
    );
    assert!(
        has(&|v| v.frames.iter().any(|f| f.chan == 0 || f.chan > 2)),
        "no foreign channel"
    );
    assert!(
        has(&|v| v.frames.len() >= 3 && v.end == "clean"),
        "no back-to-back frames"
    );
    assert!(
        has(&|v| v
            .max_payload
            .is_some_and(|m| v.frames.iter().any(|f| f.payload_hex.len() / 2 == m as usize))),
        "no frame at exactly max_payload"
    );
    assert!(
        has(&|v| v.max_payload.is_some() && v.end == "frame_too_large"),
        "no frame over max_payload"
    );
}

// ---------------------------------------------------------------------------
// Codec vectors
// ---------------------------------------------------------------------------

/// Op byte of a name, from the spec's table (independent of `Op`).
fn op_byte(name: &str) -> u8 {
    match name {
        "new" => 1,
        "close" => 2,
        "add" => 3,
        "remove" => 4,
        "auth" => 5,
        "bcast" => 6,
        other => panic!("unknown op name {other:?}"),
    }
}

/// A reader that hands out one byte per call.
struct OneByte<'a>(&'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Checks the decode outcome of one vector through every decoding path.
/// `decode`/`decode_from` are the message type's own functions.
fn check_decode_paths<M: Message + PartialEq + std::fmt::Debug>(
    v: &CodecVector,
    bytes: &[u8],
    decode_from: impl Fn(&mut dyn std::io::Read) -> Result<M, DecodeFromError>,
) -> Option<M> {
    let id = &v.id;
    let by_bytes = M::decode(Bytes::copy_from_slice(bytes));
    let by_read = decode_from(&mut &bytes[..]);
    let by_one_byte_reads = decode_from(&mut OneByte(bytes));
    // The frame layer's receive helper sees the same payload.
    let by_frame = Frame::new(M::CHANNEL, Bytes::copy_from_slice(bytes)).message::<M>();

    match v.result.as_str() {
        "valid" => {
            assert!(
                v.error.is_none() && v.value.is_some(),
                "{id}: malformed valid vector"
            );
            let got = by_bytes.unwrap_or_else(|e| panic!("{id}: decode failed: {e}"));
            let read = by_read.unwrap_or_else(|e| panic!("{id}: decode_from failed: {e}"));
            let one = by_one_byte_reads.unwrap_or_else(|e| panic!("{id}: decode_from (1-byte reads): {e}"));
            assert_eq!(read, got, "{id}: decode_from differs from decode");
            assert_eq!(one, got, "{id}: 1-byte decode_from differs from decode");
            match by_frame {
                Some(Ok(m)) => assert_eq!(m, got, "{id}: Frame::message differs"),
                other => panic!("{id}: Frame::message gave {other:?}"),
            }
            Some(got)
        }
        "invalid" => {
            assert!(v.value.is_none(), "{id}: invalid vector with a value");
            let class = v.error.as_deref().expect("invalid vector without error");
            assert!(PAYLOAD_CLASSES.contains(&class), "{id}: unknown class {class}");
            let err: PayloadError = match by_bytes {
                Ok(m) => panic!("{id}: decoded {m:?}, expected {class}"),
                Err(e) => e,
            };
            assert_eq!(err.class(), class, "{id}: decode gave {err}");
            for (how, res) in [
                ("decode_from", by_read),
                ("1-byte decode_from", by_one_byte_reads),
            ] {
                match res {
                    Err(DecodeFromError::Payload(e)) => assert_eq!(e, err, "{id}: {how} gave another error"),
                    other => panic!("{id}: {how} gave {other:?}, expected {class}"),
                }
            }
            if bytes.is_empty() {
                // An empty payload is a heartbeat at the frame layer: skipped.
                assert_eq!(by_frame, None, "{id}: an empty frame is a heartbeat");
            } else {
                assert_eq!(by_frame, Some(Err(err)), "{id}: Frame::message");
            }
            // The Display text names the class, so a person reading a log can match it.
            assert!(err.to_string().starts_with(class), "{id}: Display {err}");
            None
        }
        other => panic!("{id}: result {other:?}"),
    }
}

/// Checks that `expected`'s encodings are exactly `bytes`, through every
/// encoding path, and that the frame writer frames it with a correct header.
fn check_encode_paths<M: Message>(id: &str, expected: &M, bytes: &[u8], encode_to: impl Fn(&M) -> Vec<u8>) {
    assert_eq!(expected.encoded_len(), bytes.len(), "{id}: encoded_len");
    let mut buf = Vec::new();
    expected.encode(&mut buf);
    assert_eq!(
        hex::encode(&buf),
        hex::encode(bytes),
        "{id}: encode(value) != hex"
    );
    let mut bm = bytes::BytesMut::new();
    expected.encode(&mut bm);
    assert_eq!(&bm[..], bytes, "{id}: encode into BytesMut");
    assert_eq!(encode_to(expected), bytes, "{id}: encode_to(value) != hex");

    let mut w = FrameWriter::new(Vec::new());
    w.queue_message(expected).unwrap();
    w.flush().unwrap();
    assert_eq!(w.get_ref(), &pack_frame(M::CHANNEL, bytes), "{id}: framed");
}

#[test]
fn subcommand_vectors() {
    let file = load_codec("codec/subcommand.json");
    let mut valid = 0;
    for v in &file.vectors {
        let id = &v.id;
        let bytes = unhex(id, &v.hex);
        let decoded = check_decode_paths::<SubCommand>(v, &bytes, |r| SubCommand::decode_from(r));
        let Some(decoded) = decoded else { continue };
        valid += 1;
        let value: SubCommandValue = serde_json::from_value(v.value.clone().unwrap())
            .unwrap_or_else(|e| panic!("{id}: value does not match the schema: {e}"));

        // Field by field, against the JSON.
        assert_eq!(decoded.op().as_u8(), op_byte(&value.op), "{id}: op");
        assert_eq!(decoded.op().name(), value.op, "{id}: op name");
        assert_eq!(
            Op::from_name(&value.op),
            Some(decoded.op()),
            "{id}: Op::from_name"
        );
        assert_eq!(decoded.conn(), value.conn, "{id}: conn");
        assert_eq!(decoded.flags_bits(), value.flags, "{id}: flags");
        assert_eq!(
            decoded.sub_id().map(|s| s.as_str()).unwrap_or(""),
            value.sub_id,
            "{id}: sub_id"
        );
        assert_eq!(hex::encode(decoded.data()), value.data_hex, "{id}: data");

        // The value built from the JSON (not the decoded one) encodes to `hex`.
        let expected = value
            .to_sub_command()
            .unwrap_or_else(|e| panic!("{id}: value: {e}"));
        assert_eq!(decoded, expected, "{id}: decoded value");
        assert_eq!(expected.validate(), Ok(()), "{id}: validate");
        check_encode_paths(id, &expected, &bytes, |m| {
            let mut out = Vec::new();
            m.encode_to(&mut out).unwrap();
            out
        });
    }
    assert!(valid >= 6, "only {valid} valid SubCommand vectors");
}

#[test]
fn broadcast_frame_vectors() {
    let file = load_codec("codec/broadcast_frame.json");
    let mut valid = 0;
    for v in &file.vectors {
        let id = &v.id;
        let bytes = unhex(id, &v.hex);
        let decoded = check_decode_paths::<BroadcastFrame>(v, &bytes, |r| BroadcastFrame::decode_from(r));
        let Some(decoded) = decoded else { continue };
        valid += 1;
        let value: BroadcastFrameValue = serde_json::from_value(v.value.clone().unwrap())
            .unwrap_or_else(|e| panic!("{id}: value does not match the schema: {e}"));
        assert_eq!(decoded.conn, value.conn, "{id}: conn");
        assert_eq!(hex::encode(&decoded.data), value.data_hex, "{id}: data");

        let expected = value
            .to_broadcast_frame()
            .unwrap_or_else(|e| panic!("{id}: value: {e}"));
        assert_eq!(decoded, expected, "{id}: decoded value");
        assert_eq!(expected.validate(), Ok(()), "{id}: validate");
        check_encode_paths(id, &expected, &bytes, |m| {
            let mut out = Vec::new();
            m.encode_to(&mut out).unwrap();
            out
        });
    }
    assert!(valid >= 2, "only {valid} valid BroadcastFrame vectors");
}

// ---------------------------------------------------------------------------
// Zero-copy proof
// ---------------------------------------------------------------------------

/// Asserts `part` lies inside `whole`'s memory (a view, not a copy).
fn assert_within(whole: &Bytes, part: &[u8], what: &str) {
    let range = whole.as_ptr_range();
    let p = part.as_ptr_range();
    assert!(!part.is_empty(), "{what}: empty slice proves nothing");
    assert!(
        range.start <= p.start && p.end <= range.end,
        "{what} was copied: {p:?} is outside the input {range:?}"
    );
}

#[test]
fn decoding_is_zero_copy() {
    let mut sub_id_and_req = None;
    let file = load_codec("codec/subcommand.json");
    let mut checked = BTreeSet::new();
    for v in file.vectors.iter().filter(|v| v.result == "valid") {
        let input = Bytes::from(unhex(&v.id, &v.hex));
        match SubCommand::decode(input.clone()).unwrap() {
            SubCommand::Add { sub_id, req, .. } => {
                assert_within(&input, sub_id.as_bytes(), "Add sub_id");
                assert_within(&input, &req, "Add req");
                // The exact offsets of the layout: sub_id at 10, req after data_len.
                assert_eq!(sub_id.as_bytes().as_ptr(), input[10..].as_ptr());
                assert_eq!(req.as_ptr(), input[14 + sub_id.len()..].as_ptr());
                sub_id_and_req.get_or_insert((input.clone(), sub_id, req));
                checked.insert("add");
            }
            SubCommand::Remove { sub_id, .. } => {
                assert_within(&input, sub_id.as_bytes(), "Remove sub_id");
                checked.insert("remove");
            }
            SubCommand::Bcast { event, .. } => {
                assert_within(&input, &event, "Bcast event");
                assert_eq!(event.as_ptr(), input[14..].as_ptr());
                checked.insert("bcast");
            }
            _ => {}
        }
    }
    assert_eq!(checked, BTreeSet::from(["add", "bcast", "remove"]));

    let file = load_codec("codec/broadcast_frame.json");
    for v in file.vectors.iter().filter(|v| v.result == "valid") {
        let input = Bytes::from(unhex(&v.id, &v.hex));
        let f = BroadcastFrame::decode(input.clone()).unwrap();
        assert_within(&input, &f.data, "BroadcastFrame data");
        assert_eq!(f.data.as_ptr(), input[8..].as_ptr());
    }

    // Through the frame layer too: the message shares the frame's payload.
    let (payload, _, _) = sub_id_and_req.unwrap();
    let frame = Frame::new(1, payload);
    let Some(Ok(SubCommand::Add { sub_id, req, .. })) = frame.message::<SubCommand>() else {
        panic!("Add frame did not decode")
    };
    assert_within(&frame.payload, sub_id.as_bytes(), "framed Add sub_id");
    assert_within(&frame.payload, &req, "framed Add req");

    // And a frame out of the FrameDecoder: the decoded event shares the
    // decoder's buffer, one contiguous run with the frame payload.
    let event = b"[\"EVENT\",{\"id\":\"x\"}]";
    let stream = pack_frame(1, &pack_sub_command(6, 0, -1, b"", event));
    let mut dec = FrameDecoder::new();
    dec.feed(&stream);
    let frame = dec.decode().unwrap().unwrap();
    let Some(Ok(SubCommand::Bcast { event: got, .. })) = frame.message::<SubCommand>() else {
        panic!("Bcast frame did not decode")
    };
    assert_eq!(&got[..], event);
    assert_within(&frame.payload, &got, "framed Bcast event");
}

// ---------------------------------------------------------------------------
// Framing vectors
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(u8, String)>,
    end: String,
}

fn expected(v: &StreamVector) -> Outcome {
    Outcome {
        frames: v.frames.iter().map(|f| (f.chan, f.payload_hex.clone())).collect(),
        end: v.end.clone(),
    }
}

fn new_decoder(max: Option<u32>) -> FrameDecoder {
    match max {
        Some(m) => FrameDecoder::with_max_payload(m),
        None => FrameDecoder::new(),
    }
}

fn frame_entry(f: &Frame) -> (u8, String) {
    (f.chan, hex::encode(&f.payload))
}

/// Feeds `chunks` to a `FrameDecoder`, draining frames after each, then
/// signals the end. Also checks that a fatal error sticks.
fn run_decoder(max: Option<u32>, chunks: &[&[u8]]) -> Outcome {
    let mut dec = new_decoder(max);
    let mut frames = Vec::new();
    let mut fed = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        dec.feed(chunk);
        fed += chunk.len();
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(frame_entry(&f)),
                Ok(None) => break,
                Err(e) => {
                    for rest in &chunks[i + 1..] {
                        dec.feed(rest);
                    }
                    assert_eq!(dec.decode(), Err(e), "the fatal error must stick");
                    assert_eq!(dec.finish(), Err(e), "finish after a fatal error");
                    return Outcome {
                        frames,
                        end: e.class().to_string(),
                    };
                }
            }
        }
        assert!(dec.buffered() <= fed, "buffered {} > fed {fed}", dec.buffered());
    }
    let end = match dec.finish() {
        Ok(()) => {
            assert!(dec.at_boundary());
            "clean".to_string()
        }
        Err(e) => e.class().to_string(),
    };
    Outcome { frames, end }
}

/// Reads with a `FrameReader` over `reader` until the end.
fn run_reader(max: Option<u32>, reader: ScriptedReader) -> Outcome {
    let mut r = match max {
        Some(m) => FrameReader::with_max_payload(reader, m),
        None => FrameReader::new(reader),
    };
    let mut frames = Vec::new();
    let mut pending = 0;
    loop {
        match r.read_frame() {
            Ok(ReadStatus::Ready(f)) => frames.push(frame_entry(&f)),
            Ok(ReadStatus::Pending) => {
                pending += 1;
                assert!(pending < 1_000_000, "reader never finishes");
            }
            Ok(ReadStatus::Closed) => {
                assert_eq!(r.read_frame().unwrap(), ReadStatus::Closed, "Closed must stick");
                return Outcome {
                    frames,
                    end: "clean".into(),
                };
            }
            Err(ReadError::Framing(e)) => {
                match r.read_frame() {
                    Err(ReadError::Framing(again)) => assert_eq!(again, e, "the fatal error must stick"),
                    other => panic!("after {e}: {other:?}"),
                }
                return Outcome {
                    frames,
                    end: e.class().into(),
                };
            }
            Err(ReadError::Io(e)) => panic!("unexpected I/O error {e}"),
        }
    }
}

/// Split `len` bytes at the given cut points into chunk sizes.
fn sizes_from_cuts(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&len)) {
        sizes.push(c - prev);
        prev = c;
    }
    sizes
}

fn chunks_of<'a>(stream: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &n in sizes {
        out.push(&stream[pos..pos + n]);
        pos += n;
    }
    out
}

/// Runs both the decoder and the reader with the stream cut into `sizes`.
fn check_split(v: &StreamVector, stream: &[u8], sizes: &[usize], want: &Outcome) {
    let got = run_decoder(v.max_payload, &chunks_of(stream, sizes));
    assert_eq!(&got, want, "{}: FrameDecoder with reads {sizes:?}", v.id);
    let got = run_reader(v.max_payload, ScriptedReader::chunked(stream, sizes));
    assert_eq!(&got, want, "{}: FrameReader with reads {sizes:?}", v.id);
}

#[test]
fn framing_vectors_one_read() {
    let file = load_framing("framing/streams.json");
    for v in &file.vectors {
        let stream = unhex(&v.id, &v.stream_hex);
        let want = expected(v);
        check_split(v, &stream, &[stream.len()], &want);
        // A reader handed the whole stream in one `read` (no script at all).
        let got = run_reader(v.max_payload, ScriptedReader::new(stream.clone(), Vec::new()));
        assert_eq!(got, want, "{}: FrameReader, one read", v.id);
        if v.max_payload.is_none() {
            // Absent means the default, 16 MiB.
            assert_eq!(FrameDecoder::new().max_payload(), DEFAULT_MAX_PAYLOAD);
            let got = run_decoder(Some(16_777_216), &[&stream]);
            assert_eq!(got, want, "{}: explicit 16 MiB maximum", v.id);
        }
    }
}

#[test]
fn framing_vectors_every_split_into_two_reads() {
    let file = load_framing("framing/streams.json");
    for v in &file.vectors {
        let stream = unhex(&v.id, &v.stream_hex);
        let want = expected(v);
        for cut in 0..=stream.len() {
            check_split(v, &stream, &sizes_from_cuts(stream.len(), &[cut]), &want);
        }
    }
}

#[test]
fn framing_vectors_every_split_into_three_reads_of_short_streams() {
    let file = load_framing("framing/streams.json");
    let mut ran = 0;
    for v in file.vectors.iter().filter(|v| v.stream_hex.len() / 2 <= 64) {
        let stream = unhex(&v.id, &v.stream_hex);
        let want = expected(v);
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let sizes = sizes_from_cuts(stream.len(), &[a, b]);
                let got = run_decoder(v.max_payload, &chunks_of(&stream, &sizes));
                assert_eq!(got, want, "{}: FrameDecoder with reads {sizes:?}", v.id);
            }
        }
        ran += 1;
    }
    assert!(ran >= 30, "only {ran} short streams");
}

#[test]
fn framing_vectors_one_byte_reads() {
    let file = load_framing("framing/streams.json");
    for v in &file.vectors {
        let stream = unhex(&v.id, &v.stream_hex);
        let want = expected(v);
        check_split(v, &stream, &vec![1; stream.len()], &want);
        // One byte per read, each followed by an `Interrupted` that must be retried.
        let steps = (0..stream.len())
            .flat_map(|_| [ReadStep::Bytes(1), ReadStep::Interrupted])
            .collect();
        let got = run_reader(v.max_payload, ScriptedReader::new(stream.clone(), steps));
        assert_eq!(got, want, "{}: FrameReader, 1-byte reads and Interrupted", v.id);
    }
}

#[test]
fn framing_vectors_random_splits_with_would_block_and_interrupted() {
    let file = load_framing("framing/streams.json");
    for (n, v) in file.vectors.iter().enumerate() {
        let stream = unhex(&v.id, &v.stream_hex);
        let want = expected(v);
        let mut rng = Rng::new(n as u64 + 1);
        for _ in 0..32 {
            let mut steps = Vec::new();
            let mut left = stream.len();
            while left > 0 {
                match rng.below(6) {
                    0 => steps.push(ReadStep::WouldBlock),
                    1 => steps.push(ReadStep::Interrupted),
                    _ => {
                        let k = 1 + rng.below(left.min(40));
                        steps.push(ReadStep::Bytes(k));
                        left -= k;
                    }
                }
            }
            let got = run_reader(v.max_payload, ScriptedReader::new(stream.clone(), steps.clone()));
            assert_eq!(got, want, "{}: FrameReader with steps {steps:?}", v.id);
        }
    }
}

/// The receive helpers deliver exactly the vector's frames on the consumed
/// channel that are not heartbeats, each as its payload decodes.
#[test]
fn framing_vectors_through_the_receive_helpers() {
    fn check<M: Message + PartialEq + std::fmt::Debug>(v: &StreamVector, stream: &[u8]) {
        let want: Vec<Result<M, PayloadError>> = v
            .frames
            .iter()
            .filter(|f| f.chan == M::CHANNEL && !f.payload_hex.is_empty())
            .map(|f| M::decode(Bytes::from(unhex(&v.id, &f.payload_hex))))
            .collect();

        // FrameDecoder::decode_message, fed one byte at a time.
        let mut dec = new_decoder(v.max_payload);
        let mut got = Vec::new();
        let mut end = "clean".to_string();
        'feed: for b in stream {
            dec.feed(std::slice::from_ref(b));
            loop {
                match dec.decode_message::<M>() {
                    Ok(Some(m)) => got.push(m),
                    Ok(None) => break,
                    Err(e) => {
                        end = e.class().into();
                        break 'feed;
                    }
                }
            }
        }
        if end == "clean"
            && let Err(e) = dec.finish()
        {
            end = e.class().into();
        }
        assert_eq!(got, want, "{}: decode_message::<{}>", v.id, M::CHANNEL);
        assert_eq!(end, v.end, "{}: decode_message end", v.id);

        // FrameReader::read_message, with WouldBlock between 3-byte reads.
        let sizes = vec![3; stream.len().div_ceil(3)];
        let mut r = match v.max_payload {
            Some(m) => FrameReader::with_max_payload(ScriptedReader::chunked(stream, &sizes), m),
            None => FrameReader::new(ScriptedReader::chunked(stream, &sizes)),
        };
        let mut got = Vec::new();
        let end = loop {
            match r.read_message::<M>() {
                Ok(ReadStatus::Ready(m)) => got.push(m),
                Ok(ReadStatus::Pending) => {}
                Ok(ReadStatus::Closed) => break "clean".to_string(),
                Err(ReadError::Framing(e)) => break e.class().to_string(),
                Err(ReadError::Io(e)) => panic!("{}: {e}", v.id),
            }
        };
        assert_eq!(got, want, "{}: read_message::<{}>", v.id, M::CHANNEL);
        assert_eq!(end, v.end, "{}: read_message end", v.id);
    }

    let file = load_framing("framing/streams.json");
    for v in &file.vectors {
        let stream = unhex(&v.id, &v.stream_hex);
        check::<SubCommand>(v, &stream);
        check::<BroadcastFrame>(v, &stream);
    }
}

// ---------------------------------------------------------------------------
// tokio_codec::FrameCodec against FrameDecoder
// ---------------------------------------------------------------------------

/// Every framing vector of every file in `vectors/framing/`.
fn all_stream_vectors() -> Vec<StreamVector> {
    let dir = vectors_dir().join("framing");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let vectors: Vec<StreamVector> = files
        .iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            load_framing(&format!("framing/{name}")).vectors
        })
        .collect();
    assert!(vectors.len() >= 30, "only {} framing vectors", vectors.len());
    vectors
}

/// What a consumer of `M` receives from a stream: every item (a message or
/// its non-fatal payload error), then how the stream ended.
type Received<M> = (Vec<Result<M, PayloadError>>, Result<(), FramingError>);

/// The reference: `FrameDecoder::decode_message` over the whole stream, then
/// `finish`.
fn received_by_frame_decoder<M: Message>(max: Option<u32>, stream: &[u8]) -> Received<M> {
    let mut dec = new_decoder(max);
    dec.feed(stream);
    let mut items = Vec::new();
    loop {
        match dec.decode_message::<M>() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, dec.finish()),
            Err(e) => return (items, Err(e)),
        }
    }
}

fn new_codec<M>(max: Option<u32>) -> FrameCodec<M> {
    match max {
        Some(m) => FrameCodec::with_max_payload(m),
        None => FrameCodec::new(),
    }
}

/// `FrameCodec` driven as `FramedRead` drives it: each chunk is appended to
/// one `BytesMut` and `decode` called until it has nothing; at the end,
/// `decode_eof` until it has nothing. A fatal error must stick, through
/// `decode` and `decode_eof`, whatever comes after it.
fn received_by_frame_codec<M: Message>(max: Option<u32>, chunks: &[&[u8]]) -> Received<M> {
    fn fatal(e: ReadError) -> FramingError {
        match e {
            ReadError::Framing(e) => e,
            ReadError::Io(e) => panic!("unexpected I/O error {e}"),
        }
    }
    fn sticks<M: Message>(codec: &mut FrameCodec<M>, src: &mut BytesMut, e: FramingError) {
        for again in [codec.decode(src), codec.decode_eof(src)] {
            match again {
                Err(ReadError::Framing(again)) => assert_eq!(again, e, "the fatal error must stick"),
                Err(ReadError::Io(io)) => panic!("after {e}: {io}"),
                Ok(_) => panic!("after {e}: decoded on"),
            }
        }
    }
    let mut codec = new_codec::<M>(max);
    let mut src = BytesMut::new();
    let mut items = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        src.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut src) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    let e = fatal(e);
                    for rest in &chunks[i + 1..] {
                        src.extend_from_slice(rest);
                    }
                    sticks(&mut codec, &mut src, e);
                    return (items, Err(e));
                }
            }
        }
    }
    loop {
        match codec.decode_eof(&mut src) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => {
                assert!(src.is_empty(), "a clean end with {} byte(s) left", src.len());
                return (items, Ok(()));
            }
            Err(e) => {
                let e = fatal(e);
                sticks(&mut codec, &mut src, e);
                return (items, Err(e));
            }
        }
    }
}

/// One vector, both message types, the stream cut into `sizes`.
fn check_codec_split(v: &StreamVector, stream: &[u8], sizes: &[usize]) {
    fn one<M: Message + PartialEq + std::fmt::Debug>(v: &StreamVector, stream: &[u8], sizes: &[usize]) {
        let want = received_by_frame_decoder::<M>(v.max_payload, stream);
        let got = received_by_frame_codec::<M>(v.max_payload, &chunks_of(stream, sizes));
        assert_eq!(
            got,
            want,
            "{}: FrameCodec of channel {} with reads {sizes:?}",
            v.id,
            M::CHANNEL
        );
    }
    one::<SubCommand>(v, stream, sizes);
    one::<BroadcastFrame>(v, stream, sizes);
}

/// The reference itself agrees with the golden file, so the comparisons
/// below are against the spec, not only against another reader.
#[test]
fn frame_codec_reference_agrees_with_the_golden_streams() {
    let mut saw_payload_error = false;
    for v in &all_stream_vectors() {
        let stream = unhex(&v.id, &v.stream_hex);
        let (cmds, end) = received_by_frame_decoder::<SubCommand>(v.max_payload, &stream);
        let (frames, _) = received_by_frame_decoder::<BroadcastFrame>(v.max_payload, &stream);
        let end = end.map_or_else(|e| e.class(), |()| "clean");
        assert_eq!(end, v.end, "{}", v.id);
        saw_payload_error |= cmds.iter().any(Result::is_err) || frames.iter().any(Result::is_err);
    }
    assert!(saw_payload_error, "no vector exercises a non-fatal payload error");
}

#[test]
fn frame_codec_matches_the_frame_decoder_on_every_golden_stream_split_anywhere() {
    for v in &all_stream_vectors() {
        let stream = unhex(&v.id, &v.stream_hex);
        check_codec_split(v, &stream, &[stream.len()]);
        check_codec_split(v, &stream, &vec![1; stream.len()]);
        for cut in 0..=stream.len() {
            check_codec_split(v, &stream, &sizes_from_cuts(stream.len(), &[cut]));
        }
        if stream.len() <= 64 {
            for a in 0..=stream.len() {
                for b in a..=stream.len() {
                    check_codec_split(v, &stream, &sizes_from_cuts(stream.len(), &[a, b]));
                }
            }
        }
    }
}

#[test]
fn frame_codec_matches_the_frame_decoder_on_every_golden_stream_in_random_chunkings() {
    for (n, v) in all_stream_vectors().iter().enumerate() {
        let stream = unhex(&v.id, &v.stream_hex);
        let mut rng = Rng::new(1000 + n as u64);
        for _ in 0..64 {
            let mut sizes = Vec::new();
            let mut left = stream.len();
            while left > 0 {
                // Empty reads too: a wake-up with nothing new.
                let k = rng.below(left.min(40) + 1);
                sizes.push(k);
                left -= k;
            }
            check_codec_split(v, &stream, &sizes);
        }
    }
}

/// The real `FramedRead`, over an `AsyncRead` that hands out `chunk`-byte
/// pieces: the same items and the same end as the reference.
#[tokio::test]
async fn framed_read_with_frame_codec_matches_the_frame_decoder_on_every_golden_stream() {
    async fn framed_read<M: Message>(max: Option<u32>, stream: &[u8], chunk: usize) -> Received<M> {
        let pieces: Vec<std::io::Result<Bytes>> = stream
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let reader = StreamReader::new(futures_util::stream::iter(pieces));
        let mut framed = FramedRead::new(reader, new_codec::<M>(max));
        let mut items = Vec::new();
        while let Some(next) = framed.next().await {
            match next {
                Ok(item) => items.push(item),
                Err(ReadError::Framing(e)) => {
                    // FramedRead ends the stream after a decoder error.
                    assert!(framed.next().await.is_none());
                    return (items, Err(e));
                }
                Err(ReadError::Io(e)) => panic!("unexpected I/O error {e}"),
            }
        }
        (items, Ok(()))
    }
    async fn one<M: Message + PartialEq + std::fmt::Debug>(v: &StreamVector, stream: &[u8]) {
        let want = received_by_frame_decoder::<M>(v.max_payload, stream);
        for chunk in [1, 2, 5, 7, 64, usize::MAX] {
            let chunk = chunk.min(stream.len().max(1));
            let got = framed_read::<M>(v.max_payload, stream, chunk).await;
            assert_eq!(
                got,
                want,
                "{}: FramedRead of channel {}, {chunk}-byte reads",
                v.id,
                M::CHANNEL
            );
        }
    }
    for v in &all_stream_vectors() {
        let stream = unhex(&v.id, &v.stream_hex);
        one::<SubCommand>(v, &stream).await;
        one::<BroadcastFrame>(v, &stream).await;
    }
}
