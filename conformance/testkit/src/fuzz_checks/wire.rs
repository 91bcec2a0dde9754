//! The properties checked by the codec and framing fuzz targets.
//!
//! This file is the single source of those checks. It is included with
//! `#[path]` by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly)
//! and by the stable regression test `wire/tests/fuzz_corpus.rs`, which
//! replays every committed corpus file and crash artifact through the same
//! functions. Each `check_*` function takes one raw fuzz input, accepts every
//! byte string, and panics when a property does not hold.
//!
//! It may use only crates that both includers can name: `broadcast_wire`,
//! `bytes` and `arbitrary` (wire's tests get `arbitrary` through the
//! crate's own `arbitrary` feature, which its dev-dependency on itself turns
//! on).

// Each includer uses only some of the checks.
#![allow(dead_code)]

use std::io::{self, Read, Write};

use arbitrary::Unstructured;
use broadcast_wire::{
    BroadcastFrame, DEFAULT_MAX_PAYLOAD, DecodeFromError, Frame, FrameDecoder, FrameReader, FrameWriter,
    Message, OversizeFrame, ReadError, ReadStatus, SubCommand,
};
use bytes::Bytes;

// ---------------------------------------------------------------------------
// An independent reading of the framing and payload rules (PROTOCOL.md#framing,
// PROTOCOL.md#payloads, PROTOCOL.md#decode-errors), used as the oracle.
//
// It is written from the spec text, shares no code with the crate, and favours
// obviousness over speed.

/// A SubCommand's raw fields: op, flags, conn, sub_id, data.
type SpecSubCommand<'a> = (u8, u8, i32, &'a [u8], &'a [u8]);

/// Takes fixed-size and length-prefixed fields front to back.
struct SpecFields<'a>(&'a [u8]);

impl<'a> SpecFields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn sized(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u32()?;
        // A length that does not fit in usize cannot fit in the payload either.
        self.take(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing_bytes")
        }
    }
}

/// PROTOCOL.md#subcommand-layout: the fields, or the one error class the
/// precedence rule (PROTOCOL.md#precedence) picks.
fn spec_subcommand(payload: &[u8]) -> Result<SpecSubCommand<'_>, &'static str> {
    let mut f = SpecFields(payload);
    let op = f.take(1)?[0];
    let flags = f.take(1)?[0];
    let conn = f.i32()?;
    let sub_id = f.sized()?;
    let data = f.sized()?;
    f.end()?;
    if !(1..=6).contains(&op) {
        return Err("unknown_op");
    }
    let min_conn = if op == 6 { -1 } else { 0 };
    if conn < min_conn {
        return Err("invalid_conn");
    }
    let sub_id_ok = match op {
        // Add and Remove: 1 to 64 bytes of UTF-8.
        3 | 4 => (1..=64).contains(&sub_id.len()) && std::str::from_utf8(sub_id).is_ok(),
        _ => sub_id.is_empty(),
    };
    if !sub_id_ok {
        return Err("invalid_sub_id");
    }
    let data_ok = match op {
        3 | 6 => !data.is_empty(),
        5 => data.len() == 32,
        _ => data.is_empty(),
    };
    if !data_ok {
        return Err("invalid_data");
    }
    Ok((op, flags, conn, sub_id, data))
}

/// PROTOCOL.md#broadcastframe-layout: conn and data, or the error class.
fn spec_broadcast_frame(payload: &[u8]) -> Result<(i32, &[u8]), &'static str> {
    let mut f = SpecFields(payload);
    let conn = f.i32()?;
    let data = f.sized()?;
    f.end()?;
    if conn < 0 {
        return Err("invalid_conn");
    }
    if data.is_empty() {
        return Err("invalid_data");
    }
    Ok((conn, data))
}

/// PROTOCOL.md#framing: the frames of a whole stream and how it ends.
fn spec_stream(stream: &[u8], max_payload: u32) -> (Vec<(u8, &[u8])>, &'static str) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, "clean");
        }
        if rest.len() < 5 {
            return (frames, "truncated_stream");
        }
        let len = u32::from_le_bytes(rest[1..5].try_into().unwrap());
        // Decided from the header alone, before waiting for the payload.
        if len > max_payload {
            return (frames, "frame_too_large");
        }
        let len = len as usize;
        if rest.len() - 5 < len {
            return (frames, "truncated_stream");
        }
        frames.push((rest[0], &rest[5..5 + len]));
        rest = &rest[5 + len..];
    }
}

/// The bytes a frame must travel as: chan, len (u32 LE), payload.
fn spec_frame_bytes(out: &mut Vec<u8>, chan: u8, payload: &[u8]) {
    out.push(chan);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

// ---------------------------------------------------------------------------
// Targets 1 and 2: decode_subcommand, decode_broadcast_frame.

/// Arbitrary bytes as a SubCommand payload. `decode` and `decode_from` give
/// the same outcome; that outcome is the spec's (fields, or the error class
/// by precedence); a decoded value encodes back to exactly the input, by
/// `encode` and by `encode_to`, validates, and survives framing.
pub fn check_decode_subcommand(input: &[u8]) {
    let decoded = SubCommand::decode(Bytes::copy_from_slice(input));
    let streamed = SubCommand::decode_from(input);
    match (&decoded, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode and decode_from disagree"),
        (Err(a), Err(DecodeFromError::Payload(b))) => assert_eq!(a, b, "decode and decode_from disagree"),
        _ => panic!("decode gave {decoded:?} but decode_from gave {streamed:?}"),
    }
    let spec = spec_subcommand(input);
    match decoded {
        Err(e) => {
            assert_eq!(Err(e.class()), spec.map(|_| ()), "wrong error class for {e:?}");
            assert!(e.to_string().starts_with(e.class()));
        }
        Ok(cmd) => {
            let Ok((op, flags, conn, sub_id, data)) = spec else {
                panic!("decoded {cmd:?}, but the spec says {spec:?}");
            };
            assert_eq!(cmd.op().as_u8(), op);
            assert_eq!(cmd.flags_bits(), flags, "reserved flag bits must be kept");
            assert_eq!(cmd.conn(), conn);
            assert_eq!(cmd.sub_id().map(|s| s.as_bytes().as_ref()).unwrap_or(b""), sub_id);
            assert_eq!(cmd.data(), data);
            assert_eq!(cmd.validate(), Ok(()));
            assert_eq!(cmd.encoded_len(), input.len());
            let mut out = Vec::new();
            cmd.encode(&mut out);
            assert_eq!(out, input, "decode then encode is not byte-identical");
            let mut out = Vec::new();
            cmd.encode_to(&mut out).unwrap();
            assert_eq!(out, input, "decode then encode_to is not byte-identical");
            assert_framed_round_trip(&cmd);
        }
    }
}

/// Arbitrary bytes as a BroadcastFrame payload: as for SubCommand.
pub fn check_decode_broadcast_frame(input: &[u8]) {
    let decoded = BroadcastFrame::decode(Bytes::copy_from_slice(input));
    let streamed = BroadcastFrame::decode_from(input);
    match (&decoded, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decode and decode_from disagree"),
        (Err(a), Err(DecodeFromError::Payload(b))) => assert_eq!(a, b, "decode and decode_from disagree"),
        _ => panic!("decode gave {decoded:?} but decode_from gave {streamed:?}"),
    }
    let spec = spec_broadcast_frame(input);
    match decoded {
        Err(e) => {
            assert_eq!(Err(e.class()), spec.map(|_| ()), "wrong error class for {e:?}");
            assert!(e.to_string().starts_with(e.class()));
        }
        Ok(frame) => {
            assert_eq!(spec, Ok((frame.conn, &frame.data[..])), "decoded {frame:?}");
            assert_eq!(frame.validate(), Ok(()));
            assert_eq!(frame.encoded_len(), input.len());
            let mut out = Vec::new();
            frame.encode(&mut out);
            assert_eq!(out, input, "decode then encode is not byte-identical");
            let mut out = Vec::new();
            frame.encode_to(&mut out).unwrap();
            assert_eq!(out, input, "decode then encode_to is not byte-identical");
            assert_framed_round_trip(&frame);
        }
    }
}

/// A valid message goes through a frame and comes back equal, on its own
/// channel only.
fn assert_framed_round_trip<M>(msg: &M)
where
    M: Message + Clone + PartialEq + std::fmt::Debug,
{
    let frame = Frame::from_message(msg);
    assert_eq!(frame.chan, M::CHANNEL);
    assert_eq!(frame.message::<M>(), Some(Ok(msg.clone())));
    // The consumer of the other channel skips it whole.
    if M::CHANNEL == SubCommand::CHANNEL {
        assert!(frame.message::<BroadcastFrame>().is_none());
    } else {
        assert!(frame.message::<SubCommand>().is_none());
    }
    let mut wire = Vec::new();
    msg.encode_framed(&mut wire);
    assert_eq!(wire.len(), msg.framed_len());
    let mut expected = Vec::new();
    spec_frame_bytes(&mut expected, M::CHANNEL, &frame.payload);
    assert_eq!(wire, expected);
    let mut dec = FrameDecoder::new();
    dec.feed(&wire);
    let back = dec.decode_message::<M>().unwrap().unwrap().unwrap();
    assert_eq!(&back, msg);
    assert_eq!(dec.finish(), Ok(()));
}

// ---------------------------------------------------------------------------
// Target 3: frame_reader_chunked.

/// What a mock reader or writer does on one call.
#[derive(Debug, Clone, Copy)]
enum IoStep {
    WouldBlock,
    Interrupted,
    /// A writer's `Ok(0)` (the reader never uses it: that is end of stream).
    Zero,
    /// Transfer at most this many bytes (`usize::MAX`: as many as fit).
    Upto(usize),
}

/// Decodes one schedule byte. Small transfers are the interesting ones, so
/// they get most of the byte's range.
fn io_step(byte: u8, with_zero: bool) -> IoStep {
    match byte {
        0 => IoStep::WouldBlock,
        1 => IoStep::Interrupted,
        2 => IoStep::Upto(usize::MAX),
        3 if with_zero => IoStep::Zero,
        n => IoStep::Upto(usize::from(n - 3).max(1)),
    }
}

/// Plays a schedule of steps, cycling; after a few steps without progress it
/// forces a full transfer, so every drive loop ends.
struct Schedule<'a> {
    steps: &'a [u8],
    next: usize,
    idle: usize,
    with_zero: bool,
}

impl Schedule<'_> {
    const MAX_IDLE: usize = 8;

    fn step(&mut self) -> IoStep {
        if self.steps.is_empty() || self.idle >= Self::MAX_IDLE {
            self.idle = 0;
            return IoStep::Upto(usize::MAX);
        }
        let step = io_step(self.steps[self.next % self.steps.len()], self.with_zero);
        self.next += 1;
        match step {
            IoStep::Upto(_) => self.idle = 0,
            _ => self.idle += 1,
        }
        step
    }
}

/// A reader of `stream` that splits and interrupts it by a schedule.
struct ChunkedReader<'a> {
    stream: &'a [u8],
    schedule: Schedule<'a>,
    would_blocks: usize,
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.schedule.step() {
            IoStep::WouldBlock => {
                self.would_blocks += 1;
                Err(io::ErrorKind::WouldBlock.into())
            }
            IoStep::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            IoStep::Zero => unreachable!("readers are built without Ok(0) steps"),
            IoStep::Upto(n) => {
                let n = n.min(buf.len()).min(self.stream.len());
                buf[..n].copy_from_slice(&self.stream[..n]);
                self.stream = &self.stream[n..];
                Ok(n)
            }
        }
    }
}

/// The maximum payload coded by one input byte: 255 is the default (16 MiB),
/// anything else is itself, so small limits are easy to reach.
fn max_payload_from(byte: u8) -> u32 {
    if byte == u8::MAX {
        DEFAULT_MAX_PAYLOAD
    } else {
        u32::from(byte)
    }
}

/// Splits a framing input: `[max_payload byte] [n] [n schedule bytes]
/// [stream ...]`. Missing bytes take defaults, so every input is usable.
fn framing_input(input: &[u8]) -> (u32, &[u8], &[u8]) {
    let (max, rest) = match input.split_first() {
        Some((b, rest)) => (max_payload_from(*b), rest),
        None => (DEFAULT_MAX_PAYLOAD, input),
    };
    let (n, rest) = match rest.split_first() {
        Some((n, rest)) => (usize::from(*n).min(rest.len()), rest),
        None => (0, rest),
    };
    let (schedule, stream) = rest.split_at(n);
    (max, schedule, stream)
}

/// A stream read through a [`FrameReader`] over a reader that returns it in
/// arbitrary pieces, with `WouldBlock` and `Interrupted` mixed in, yields
/// the same frames and the same end as decoding it in one piece, and as the
/// spec's reading. `WouldBlock` is `Pending` (every byte kept), `Interrupted`
/// is invisible, and the end is sticky.
pub fn check_frame_reader_chunked(input: &[u8]) {
    let (max_payload, schedule, stream) = framing_input(input);

    // The spec's reading of the whole stream.
    let (spec_frames, spec_end) = spec_stream(stream, max_payload);

    // One-shot: the whole stream fed to a FrameDecoder at once.
    let mut dec = FrameDecoder::with_max_payload(max_payload);
    dec.feed(stream);
    let mut one_shot = Vec::new();
    let one_shot_end = loop {
        match dec.decode() {
            Ok(Some(frame)) => one_shot.push(frame),
            Ok(None) => break dec.finish().err().map_or("clean", |e| e.class()),
            Err(e) => break e.class(),
        }
    };

    // Chunked, through the reader.
    let mock = ChunkedReader {
        stream,
        schedule: Schedule {
            steps: schedule,
            next: 0,
            idle: 0,
            with_zero: false,
        },
        would_blocks: 0,
    };
    let mut reader = FrameReader::with_max_payload(mock, max_payload);
    let mut chunked = Vec::new();
    let mut pendings = 0;
    let chunked_end = loop {
        match reader.read_frame() {
            Ok(ReadStatus::Ready(frame)) => chunked.push(frame),
            Ok(ReadStatus::Pending) => pendings += 1,
            Ok(ReadStatus::Closed) => break "clean",
            Err(ReadError::Framing(e)) => break e.class(),
            Err(ReadError::Io(e)) => panic!("the mock only injects WouldBlock/Interrupted, got {e}"),
        }
    };
    // The end is sticky: asking again gives the same answer, no more frames.
    let again = match reader.read_frame() {
        Ok(ReadStatus::Closed) => "clean",
        Err(ReadError::Framing(e)) => e.class(),
        other => panic!("after the end ({chunked_end}), read_frame gave {other:?}"),
    };
    assert_eq!(again, chunked_end, "the end of the stream is not sticky");

    let as_pairs = |frames: &[Frame]| -> Vec<(u8, Vec<u8>)> {
        frames.iter().map(|f| (f.chan, f.payload.to_vec())).collect()
    };
    let spec_pairs: Vec<(u8, Vec<u8>)> = spec_frames.iter().map(|(c, p)| (*c, p.to_vec())).collect();
    assert_eq!(
        as_pairs(&one_shot),
        spec_pairs,
        "one-shot decoding differs from the spec"
    );
    assert_eq!(one_shot_end, spec_end, "one-shot end differs from the spec");
    assert_eq!(
        as_pairs(&chunked),
        spec_pairs,
        "chunked reading differs from one-shot"
    );
    assert_eq!(chunked_end, spec_end, "chunked end differs from one-shot");
    assert_eq!(
        pendings,
        reader.get_ref().would_blocks,
        "every WouldBlock must surface as exactly one Pending"
    );
}

// ---------------------------------------------------------------------------
// Target 4: frame_writer_partial.

/// A sink that takes bytes by a schedule of partial writes, `WouldBlock`,
/// `Interrupted` and `Ok(0)`.
struct PartialWriter<'a> {
    sink: Vec<u8>,
    schedule: Schedule<'a>,
}

impl Write for PartialWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.schedule.step() {
            IoStep::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            IoStep::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            IoStep::Zero => Ok(0),
            IoStep::Upto(n) => {
                let n = n.min(buf.len());
                self.sink.extend_from_slice(&buf[..n]);
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Arbitrary valid frames (raw frames on any channel, SubCommands,
/// BroadcastFrames), queued and flushed against a sink that takes arbitrary
/// partial writes: the sink receives exactly the concatenated encodings, in
/// order, nothing lost or doubled; `pending` is always what is left; a frame
/// over the writer's maximum is refused whole; the sink decodes back to the
/// frames queued.
pub fn check_frame_writer_partial(input: &[u8]) {
    let mut u = Unstructured::new(input);
    let max_payload = if u.ratio(1, 4).unwrap_or(false) {
        DEFAULT_MAX_PAYLOAD
    } else {
        u.int_in_range(0..=64u32).unwrap_or(0)
    };
    let n = u.int_in_range(0..=32usize).unwrap_or(0).min(u.len());
    let steps = u.bytes(n).unwrap_or(&[]);
    let mock = PartialWriter {
        sink: Vec::new(),
        schedule: Schedule {
            steps,
            next: 0,
            idle: 0,
            with_zero: true,
        },
    };
    let mut writer = FrameWriter::with_max_payload(mock, max_payload);

    let mut expected = Vec::new();
    let mut queued = Vec::new();
    for _ in 0..64 {
        if u.is_empty() {
            break;
        }
        let before = writer.pending();
        let step: Option<(u8, Vec<u8>, Result<(), OversizeFrame>)> =
            match u.int_in_range(0..=3u8).unwrap_or(3) {
                0 => {
                    let Ok(frame) = u.arbitrary::<Frame>() else { break };
                    let accepted = writer.queue_frame(&frame);
                    Some((frame.chan, frame.payload.to_vec(), accepted))
                }
                1 => {
                    let Ok(cmd) = u.arbitrary::<SubCommand>() else {
                        break;
                    };
                    let accepted = writer.queue_message(&cmd);
                    Some((SubCommand::CHANNEL, encoding(&cmd), accepted))
                }
                2 => {
                    let Ok(frame) = u.arbitrary::<BroadcastFrame>() else {
                        break;
                    };
                    let accepted = writer.queue_message(&frame);
                    Some((BroadcastFrame::CHANNEL, encoding(&frame), accepted))
                }
                _ => {
                    flush_once(&mut writer);
                    None
                }
            };
        match step {
            None => {}
            Some((chan, payload, Ok(()))) => {
                assert!(payload.len() <= max_payload as usize, "queued an oversize frame");
                spec_frame_bytes(&mut expected, chan, &payload);
                queued.push((chan, payload));
            }
            Some((_, payload, Err(e))) => {
                assert!(
                    payload.len() > max_payload as usize,
                    "refused a frame within the maximum: {e}"
                );
                assert_eq!((e.len, e.max), (payload.len(), max_payload));
                assert_eq!(
                    writer.pending(),
                    before,
                    "a refused frame left bytes in the queue"
                );
            }
        }
        assert_in_step(&writer, &expected);
    }

    // Drain: the schedule makes progress within a bounded number of calls.
    let mut calls = 0;
    while writer.pending() > 0 {
        flush_once(&mut writer);
        assert_in_step(&writer, &expected);
        calls += 1;
        assert!(
            calls <= 4 * (expected.len() + 1) * Schedule::MAX_IDLE,
            "flush makes no progress"
        );
    }
    writer.flush().expect("flushing an empty queue succeeds");
    let (mock, rest) = writer.into_parts();
    assert!(rest.is_empty());
    assert_eq!(
        mock.sink, expected,
        "the sink did not get exactly the queued frames"
    );

    // And the sink's bytes read back as the frames queued, cleanly ended.
    let mut dec = FrameDecoder::with_max_payload(max_payload);
    dec.feed(&mock.sink);
    let mut back = Vec::new();
    while let Some(frame) = dec.decode().expect("the writer's output is a valid stream") {
        back.push((frame.chan, frame.payload.to_vec()));
    }
    assert_eq!(dec.finish(), Ok(()));
    assert_eq!(back, queued);
}

fn encoding<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    assert_eq!(out.len(), msg.encoded_len());
    out
}

/// One `flush` call: done, or a `WouldBlock`/`WriteZero` with the rest kept.
fn flush_once(writer: &mut FrameWriter<PartialWriter<'_>>) {
    match writer.flush() {
        Ok(()) => assert_eq!(writer.pending(), 0, "flush returned Ok with bytes still queued"),
        Err(e) => assert!(
            matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::WriteZero),
            "unexpected flush error {e}"
        ),
    }
}

/// The sink holds a prefix of the expected bytes and the queue the rest.
fn assert_in_step(writer: &FrameWriter<PartialWriter<'_>>, expected: &[u8]) {
    let sink = &writer.get_ref().sink;
    assert!(
        sink.len() <= expected.len(),
        "the sink got more bytes than were queued"
    );
    assert_eq!(
        &sink[..],
        &expected[..sink.len()],
        "the sink's bytes differ from the frames queued"
    );
    assert_eq!(
        writer.pending(),
        expected.len() - sink.len(),
        "pending() is not what is left"
    );
}

// ---------------------------------------------------------------------------
// Target 5: roundtrip_structured.

/// Valid SubCommands and BroadcastFrames from their `Arbitrary` impls: each
/// validates, encodes to `encoded_len` bytes that the spec reads back as the
/// same fields, decodes (by `decode` and `decode_from`) to an equal value,
/// and goes through a frame unchanged.
pub fn check_roundtrip_structured(input: &[u8]) {
    let mut u = Unstructured::new(input);
    for _ in 0..32 {
        if u.is_empty() {
            break;
        }
        if u.arbitrary::<bool>().unwrap_or(false) {
            let Ok(cmd) = u.arbitrary::<SubCommand>() else {
                break;
            };
            assert_eq!(cmd.validate(), Ok(()), "Arbitrary gave an invalid {cmd:?}");
            let bytes = encoding(&cmd);
            let Ok((op, flags, conn, sub_id, data)) = spec_subcommand(&bytes) else {
                panic!(
                    "{cmd:?} encodes to bytes the spec rejects: {:?}",
                    spec_subcommand(&bytes)
                );
            };
            assert_eq!(
                (op, flags, conn, sub_id, data),
                (
                    cmd.op().as_u8(),
                    cmd.flags_bits(),
                    cmd.conn(),
                    cmd.sub_id().map(|s| s.as_bytes().as_ref()).unwrap_or(b""),
                    cmd.data()
                )
            );
            let mut streamed = Vec::new();
            cmd.encode_to(&mut streamed).unwrap();
            assert_eq!(streamed, bytes, "encode and encode_to disagree");
            assert_eq!(SubCommand::decode(Bytes::from(bytes.clone())), Ok(cmd.clone()));
            assert_eq!(SubCommand::decode_from(&bytes[..]).ok(), Some(cmd.clone()));
            assert_framed_round_trip(&cmd);
        } else {
            let Ok(frame) = u.arbitrary::<BroadcastFrame>() else {
                break;
            };
            assert_eq!(frame.validate(), Ok(()), "Arbitrary gave an invalid {frame:?}");
            let bytes = encoding(&frame);
            assert_eq!(spec_broadcast_frame(&bytes), Ok((frame.conn, &frame.data[..])));
            let mut streamed = Vec::new();
            frame.encode_to(&mut streamed).unwrap();
            assert_eq!(streamed, bytes, "encode and encode_to disagree");
            assert_eq!(
                BroadcastFrame::decode(Bytes::from(bytes.clone())),
                Ok(frame.clone())
            );
            assert_eq!(BroadcastFrame::decode_from(&bytes[..]).ok(), Some(frame.clone()));
            assert_framed_round_trip(&frame);
        }
    }
}
