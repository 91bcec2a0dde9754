//! Property tests of the codec and the framing layer, built on the crate's
//! own `proptest` strategies and `arbitrary` impls (features `proptest` and
//! `arbitrary`, which this test requires).
//!
//! Expected bytes and outcomes come from the independent model of
//! PROTOCOL.md#framing and PROTOCOL.md#payloads in `support::spec_oracle`,
//! never from the code under test.

mod support;

use std::io::ErrorKind;

use arbitrary::{Arbitrary, Unstructured};
use broadcast_wire::{
    BcastFlags, BroadcastFrame, DecodeFromError, Frame, FrameDecoder, FrameReader, FrameWriter, FramingError,
    Message, NewFlags, PUBKEY_LEN, PayloadError, ReadError, ReadStatus, ReservedFlags, SubCommand, SubId,
    strategies,
};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use support::scripted_io::{ReadStep, ScriptedReader, ScriptedWriter, WriteStep};
use support::spec_oracle::framing::{pack_frame, stream_frames};
use support::spec_oracle::payload::{
    pack_broadcast_frame, pack_sub_command, pack_sub_command_value as pack_value,
};

// ---------------------------------------------------------------------------
// Independent model
// ---------------------------------------------------------------------------

/// The spec oracle's frames and end for `stream`, as `Frame` values so they
/// compare with what the decoder yields.
fn model_stream(stream: &[u8], max: u32) -> (Vec<Frame>, &'static str) {
    let (frames, end) = stream_frames(stream, max);
    let frames = frames
        .into_iter()
        .map(|(chan, payload)| Frame::new(chan, Bytes::copy_from_slice(payload)))
        .collect();
    (frames, end)
}

// ---------------------------------------------------------------------------
// Strategies local to the tests
// ---------------------------------------------------------------------------

/// Valid payload *fields* (not values): op, flags, conn, sub_id, data, drawn
/// per the PROTOCOL.md#subcommand-layout table, so valid bytes can be packed without the encoder.
fn valid_fields() -> impl Strategy<Value = (u8, u8, i32, Vec<u8>, Vec<u8>)> {
    let sub_id = strategies::sub_id().prop_map(|s| s.as_str().as_bytes().to_vec());
    let data = vec(any::<u8>(), 1..300);
    (
        1u8..=6,
        any::<u8>(),
        0..=i32::MAX,
        sub_id,
        data,
        vec(any::<u8>(), PUBKEY_LEN),
    )
        .prop_map(|(op, flags, conn, sub_id, data, key)| match op {
            1 | 2 => (op, flags, conn, vec![], vec![]),
            3 => (op, flags, conn, sub_id, data),
            4 => (op, flags, conn, sub_id, vec![]),
            5 => (op, flags, conn, vec![], key),
            // Bcast allows −1.
            _ => (op, flags, conn.saturating_sub(1).max(-1), vec![], data),
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    /// Overwrite 4 bytes at an offset with a little-endian u32 (a length).
    Length(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let hostile = prop_oneof![any::<u32>(), 0u32..80, Just(u32::MAX), Just(0x8000_0000)];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (prop_oneof![Just(6usize), Just(4), any::<usize>()], hostile)
            .prop_map(|(i, n)| Mutation::Length(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len();
        match *m {
            Mutation::Flip(i, b) if n > 0 => bytes[i % n] ^= b,
            Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Length(i, v) if n >= 4 => {
                let i = i % (n - 3);
                bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    bytes
}

/// Any bytes: pure noise, or valid encodings of either message with a few
/// mutations (to reach the deep branches noise rarely hits).
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (strategies::sub_command(), vec(mutation(), 0..4)).prop_map(|(c, m)| mutate(pack_value(&c), &m)),
        (strategies::broadcast_frame(), vec(mutation(), 0..4))
            .prop_map(|(f, m)| mutate(pack_broadcast_frame(f.conn, &f.data), &m)),
    ]
}

fn read_steps() -> impl Strategy<Value = Vec<ReadStep>> {
    vec(
        prop_oneof![
            6 => (1usize..64).prop_map(ReadStep::Bytes),
            1 => (64usize..5000).prop_map(ReadStep::Bytes),
            2 => Just(ReadStep::WouldBlock),
            2 => Just(ReadStep::Interrupted),
        ],
        0..200,
    )
}

fn write_steps() -> impl Strategy<Value = Vec<WriteStep>> {
    vec(
        prop_oneof![
            6 => (1usize..64).prop_map(WriteStep::Accept),
            1 => (64usize..5000).prop_map(WriteStep::Accept),
            2 => Just(WriteStep::WouldBlock),
            2 => Just(WriteStep::Interrupted),
        ],
        0..200,
    )
}

/// Small maxima most of the time (so `frame_too_large` happens), sometimes
/// up to the default 16 MiB. (Larger maxima let the decoder reserve up to
/// the maximum for a noise header, which is allowed but wasteful in a test;
/// `hostile_lengths.rs` covers lengths above the maximum up to `u32::MAX`.)
fn max_payload() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..600, 1 => 0u32..=broadcast_wire::DEFAULT_MAX_PAYLOAD]
}

/// Byte streams: packed frames, maybe followed by a cut-off frame or
/// noise, or pure noise.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let frames = || {
        strategies::frame_stream(12, 300).prop_map(|fs| {
            fs.iter()
                .flat_map(|f| pack_frame(f.chan, &f.payload))
                .collect::<Vec<u8>>()
        })
    };
    prop_oneof![
        3 => frames(),
        2 => (frames(), any::<usize>()).prop_map(|(s, cut)| {
            let cut = cut % (s.len() + 1);
            s[..cut].to_vec()
        }),
        1 => (frames(), vec(any::<u8>(), 1..40)).prop_map(|(mut s, tail)| {
            s.extend(tail);
            s
        }),
        1 => vec(any::<u8>(), 0..200),
    ]
}

/// Splits `n` bytes into random chunk sizes (some of them empty).
fn cut_sizes(n: usize, seeds: &[usize]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = n;
    for s in seeds {
        if left == 0 {
            break;
        }
        let k = s % (left.min(97) + 1);
        sizes.push(k);
        left -= k;
    }
    sizes.push(left);
    sizes
}

// ---------------------------------------------------------------------------
// Driving the decoders
// ---------------------------------------------------------------------------

/// Feeds `chunks` to a `FrameDecoder`; checks on the way that it never holds
/// more than it was fed and that fed bytes = returned frames + buffered.
fn drive_decoder(max: u32, chunks: &[&[u8]]) -> (Vec<Frame>, Result<(), FramingError>) {
    let mut dec = FrameDecoder::with_max_payload(max);
    let mut frames = Vec::new();
    let (mut fed, mut out) = (0usize, 0usize);
    for chunk in chunks {
        dec.feed(chunk);
        fed += chunk.len();
        loop {
            match dec.decode() {
                Ok(Some(f)) => {
                    out += f.encoded_len();
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(dec.decode(), Err(e), "fatal error must stick");
                    assert_eq!(dec.finish(), Err(e));
                    return (frames, Err(e));
                }
            }
            assert!(dec.buffered() <= fed);
        }
        assert_eq!(out + dec.buffered(), fed, "bytes lost or invented");
    }
    let end = dec.finish();
    (frames, end)
}

fn drive_reader(max: u32, reader: ScriptedReader) -> (Vec<Frame>, Result<(), FramingError>) {
    let total = reader.remaining();
    let mut r = FrameReader::with_max_payload(reader, max);
    let mut frames = Vec::new();
    loop {
        let res = r.read_frame();
        let read_so_far = total - r.get_ref().remaining();
        assert!(
            r.decoder().buffered() <= read_so_far,
            "buffered more than was read"
        );
        match res {
            Ok(ReadStatus::Ready(f)) => frames.push(f),
            Ok(ReadStatus::Pending) => {}
            Ok(ReadStatus::Closed) => return (frames, Ok(())),
            Err(ReadError::Framing(e)) => return (frames, Err(e)),
            Err(ReadError::Io(e)) => panic!("unexpected I/O error: {e}"),
        }
    }
}

/// How a stream ended, spelled as the spec oracle and the vectors spell it.
fn classes(end: &Result<(), FramingError>) -> &'static str {
    match end {
        Ok(()) => "clean",
        Err(e) => e.class(),
    }
}

// ---------------------------------------------------------------------------
// Codec properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// value → bytes → value, through every encode and decode path.
    #[test]
    fn sub_command_value_bytes_value(cmd in strategies::sub_command()) {
        prop_assert_eq!(cmd.validate(), Ok(()));
        let mut buf = Vec::new();
        cmd.encode(&mut buf);
        prop_assert_eq!(&buf, &pack_value(&cmd));
        prop_assert_eq!(buf.len(), cmd.encoded_len());
        let mut streamed = Vec::new();
        cmd.encode_to(&mut streamed).unwrap();
        prop_assert_eq!(&streamed, &buf);
        prop_assert_eq!(SubCommand::decode(Bytes::from(buf.clone())), Ok(cmd.clone()));
        prop_assert_eq!(SubCommand::decode_from(&buf[..]).unwrap(), cmd.clone());
        let framed = Frame::from_message(&cmd);
        prop_assert_eq!(framed.message::<SubCommand>(), Some(Ok(cmd)));
    }

    #[test]
    fn broadcast_frame_value_bytes_value(f in strategies::broadcast_frame()) {
        prop_assert_eq!(f.validate(), Ok(()));
        let mut buf = Vec::new();
        f.encode(&mut buf);
        prop_assert_eq!(&buf, &pack_broadcast_frame(f.conn, &f.data));
        prop_assert_eq!(buf.len(), f.encoded_len());
        let mut streamed = Vec::new();
        f.encode_to(&mut streamed).unwrap();
        prop_assert_eq!(&streamed, &buf);
        prop_assert_eq!(BroadcastFrame::decode(Bytes::from(buf.clone())), Ok(f.clone()));
        prop_assert_eq!(BroadcastFrame::decode_from(&buf[..]).unwrap(), f.clone());
        prop_assert_eq!(Frame::from_message(&f).message::<BroadcastFrame>(), Some(Ok(f)));
    }

    /// The `arbitrary` impls produce only valid values, which round-trip.
    #[test]
    fn arbitrary_values_are_valid_and_round_trip(raw in vec(any::<u8>(), 0..512)) {
        let mut u = Unstructured::new(&raw);
        if let Ok(cmd) = SubCommand::arbitrary(&mut u) {
            prop_assert_eq!(cmd.validate(), Ok(()));
            let mut buf = Vec::new();
            cmd.encode(&mut buf);
            prop_assert_eq!(&buf, &pack_value(&cmd));
            prop_assert_eq!(SubCommand::decode(Bytes::from(buf)), Ok(cmd));
        }
        if let Ok(f) = BroadcastFrame::arbitrary(&mut u) {
            prop_assert_eq!(f.validate(), Ok(()));
            prop_assert_eq!(Frame::from_message(&f).message::<BroadcastFrame>(), Some(Ok(f)));
        }
        if let Ok(id) = SubId::arbitrary(&mut u) {
            prop_assert!((1..=SubId::MAX_LEN).contains(&id.len()));
        }
    }

    /// Valid bytes (packed by hand from the PROTOCOL.md#subcommand-layout table) → value → the same bytes.
    #[test]
    fn valid_sub_command_bytes_value_bytes((op, flags, conn, sub_id, data) in valid_fields()) {
        let bytes = pack_sub_command(op, flags, conn, &sub_id, &data);
        let cmd = SubCommand::decode(Bytes::from(bytes.clone()))
            .unwrap_or_else(|e| panic!("valid bytes refused: {e}"));
        prop_assert_eq!(cmd.op().as_u8(), op);
        prop_assert_eq!(cmd.flags_bits(), flags);
        prop_assert_eq!(cmd.conn(), conn);
        prop_assert_eq!(cmd.sub_id().map(|s| s.as_str().as_bytes().to_vec()).unwrap_or_default(), sub_id);
        prop_assert_eq!(cmd.data(), &data[..]);
        // Reserved flag bits survive.
        match &cmd {
            SubCommand::New { flags: f, .. } => prop_assert_eq!(*f, NewFlags::from_bits(flags)),
            SubCommand::Bcast { flags: f, .. } => prop_assert_eq!(*f, BcastFlags::from_bits(flags)),
            SubCommand::Close { flags: f, .. }
            | SubCommand::Add { flags: f, .. }
            | SubCommand::Remove { flags: f, .. }
            | SubCommand::Auth { flags: f, .. } => prop_assert_eq!(*f, ReservedFlags::from_bits(flags)),
        }
        let mut again = Vec::new();
        cmd.encode(&mut again);
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn valid_broadcast_frame_bytes_value_bytes(conn in 0..=i32::MAX, data in vec(any::<u8>(), 1..300)) {
        let bytes = pack_broadcast_frame(conn, &data);
        let f = BroadcastFrame::decode(Bytes::from(bytes.clone())).unwrap();
        prop_assert_eq!((f.conn, &f.data[..]), (conn, &data[..]));
        let mut again = Vec::new();
        f.encode(&mut again);
        prop_assert_eq!(again, bytes);
    }

    /// Any bytes: no panic; `decode` and `decode_from` (in one read, and in
    /// random chunks with `Interrupted`) agree; whatever decodes re-encodes
    /// to exactly the input (the encoding is canonical).
    #[test]
    fn sub_command_any_bytes(bytes in payload_bytes(), steps in read_steps()) {
        let by_bytes = SubCommand::decode(Bytes::from(bytes.clone()));
        let by_read = SubCommand::decode_from(&bytes[..]);
        let steps: Vec<_> = steps.into_iter().filter(|s| *s != ReadStep::WouldBlock).collect();
        let by_chunks = SubCommand::decode_from(ScriptedReader::new(bytes.clone(), steps));
        for other in [by_read, by_chunks] {
            match (&by_bytes, other) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
                (Err(a), Err(DecodeFromError::Payload(b))) => prop_assert_eq!(*a, b),
                (a, b) => prop_assert!(false, "decode {:?} vs decode_from {:?}", a, b),
            }
        }
        if let Ok(cmd) = by_bytes {
            let mut again = Vec::new();
            cmd.encode(&mut again);
            prop_assert_eq!(again, bytes);
        }
    }

    #[test]
    fn broadcast_frame_any_bytes(bytes in payload_bytes(), steps in read_steps()) {
        let by_bytes = BroadcastFrame::decode(Bytes::from(bytes.clone()));
        let by_read = BroadcastFrame::decode_from(&bytes[..]);
        let steps: Vec<_> = steps.into_iter().filter(|s| *s != ReadStep::WouldBlock).collect();
        let by_chunks = BroadcastFrame::decode_from(ScriptedReader::new(bytes.clone(), steps));
        for other in [by_read, by_chunks] {
            match (&by_bytes, other) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
                (Err(a), Err(DecodeFromError::Payload(b))) => prop_assert_eq!(*a, b),
                (a, b) => prop_assert!(false, "decode {:?} vs decode_from {:?}", a, b),
            }
        }
        if let Ok(f) = by_bytes {
            let mut again = Vec::new();
            f.encode(&mut again);
            prop_assert_eq!(again, bytes);
        }
    }
}

/// An I/O error that is not EOF stays an I/O error in `decode_from`, in
/// every field (it is not misreported as a payload error).
#[test]
fn decode_from_reports_io_errors_as_io() {
    let valid = pack_sub_command(3, 0, 7, b"sub", b"[\"REQ\"]");
    for cut in 0..valid.len() {
        let mut r = ScriptedReader::new(valid[..cut].to_vec(), vec![ReadStep::Bytes(cut.max(1))]);
        // After the bytes, the "fd" fails with WouldBlock instead of EOF.
        let mut failing = std::io::Read::chain(&mut r, FailingReader);
        match SubCommand::decode_from(&mut failing) {
            Err(DecodeFromError::Io(e)) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

struct FailingReader;

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(ErrorKind::WouldBlock.into())
    }
}

// ---------------------------------------------------------------------------
// Framing properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes, arbitrary maximum, arbitrary splits: no panic, never
    /// more buffered than fed, and exactly the model's frames and end.
    #[test]
    fn frame_decoder_any_split_matches_the_model(
        stream in stream_bytes(),
        max in max_payload(),
        seeds in vec(any::<usize>(), 0..40),
    ) {
        let (want_frames, want_end) = model_stream(&stream, max);
        let sizes = cut_sizes(stream.len(), &seeds);
        let mut chunks = Vec::new();
        let mut pos = 0;
        for n in sizes {
            chunks.push(&stream[pos..pos + n]);
            pos += n;
        }
        let (frames, end) = drive_decoder(max, &chunks);
        prop_assert_eq!(&frames, &want_frames);
        prop_assert_eq!(classes(&end), want_end);
        // One-shot decoding gives the same.
        let (frames1, end1) = drive_decoder(max, &[&stream]);
        prop_assert_eq!(frames1, frames);
        prop_assert_eq!(end1, end);
    }

    /// The reader under arbitrary read sizes with injected `WouldBlock` and
    /// `Interrupted` yields exactly what one-shot decoding yields.
    #[test]
    fn frame_reader_any_reads_match_one_shot(
        stream in stream_bytes(),
        max in max_payload(),
        steps in read_steps(),
    ) {
        let (want_frames, want_end) = model_stream(&stream, max);
        let (one_frames, one_end) = drive_decoder(max, &[&stream]);
        let (frames, end) = drive_reader(max, ScriptedReader::new(stream.clone(), steps));
        prop_assert_eq!(&frames, &one_frames);
        prop_assert_eq!(end, one_end);
        prop_assert_eq!(&frames, &want_frames);
        prop_assert_eq!(classes(&end), want_end);
    }

    /// The writer under arbitrary partial writes, `WouldBlock` and
    /// `Interrupted`, with frames queued between flushes, writes exactly the
    /// concatenated frames: nothing lost, reordered, duplicated or interleaved.
    #[test]
    fn frame_writer_any_writes_produce_the_concatenated_frames(
        items in vec(prop_oneof![
            strategies::raw_frame(300).prop_map(Item::Raw),
            strategies::sub_command().prop_map(Item::Cmd),
            strategies::broadcast_frame().prop_map(Item::Bf),
            Just(Item::Flush),
        ], 0..40),
        max in prop_oneof![Just(broadcast_wire::DEFAULT_MAX_PAYLOAD), 0u32..400],
        steps in write_steps(),
    ) {
        let mut w = FrameWriter::with_max_payload(ScriptedWriter::new(steps), max);
        let mut want = Vec::new();
        for item in &items {
            let before = w.pending();
            let (res, payload, chan) = match item {
                Item::Raw(f) => (w.queue_frame(f), f.payload.to_vec(), f.chan),
                Item::Cmd(c) => (w.queue_message(c), pack_value(c), 1),
                Item::Bf(f) => (w.queue_message(f), pack_broadcast_frame(f.conn, &f.data), 2),
                Item::Flush => {
                    match w.flush() {
                        Ok(()) => prop_assert_eq!(w.pending(), 0),
                        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::WouldBlock),
                    }
                    prop_assert_eq!(w.get_ref().out.len() + w.pending(), want.len());
                    continue;
                }
            };
            if payload.len() > max as usize {
                let err = res.unwrap_err();
                prop_assert_eq!((err.len, err.max), (payload.len(), max));
                prop_assert_eq!(w.pending(), before, "a refused frame must not be queued");
            } else {
                prop_assert!(res.is_ok());
                want.extend(pack_frame(chan, &payload));
            }
            prop_assert_eq!(w.get_ref().out.len() + w.pending(), want.len());
        }
        // Flush until done; the script eventually accepts everything.
        let mut tries = 0;
        while let Err(e) = w.flush() {
            prop_assert_eq!(e.kind(), ErrorKind::WouldBlock);
            tries += 1;
            prop_assert!(tries < 1000);
        }
        prop_assert_eq!(w.pending(), 0);
        prop_assert_eq!(&w.get_ref().out, &want);
    }

    /// Receive rules: `Frame::message`, `FrameDecoder::decode_message` and
    /// `FrameReader::read_message` skip exactly heartbeats and foreign
    /// channels, and deliver every other frame of their channel, decoded or
    /// with its non-fatal error, in order.
    #[test]
    fn receive_helpers_skip_exactly_heartbeats_and_foreign_channels(
        items in vec(stream_item(), 0..30),
        steps in read_steps(),
    ) {
        let stream: Vec<u8> = items.iter().flat_map(|i| {
            let (chan, payload) = i.frame();
            pack_frame(chan, &payload)
        }).collect();
        check_receive::<SubCommand>(&items, &stream, &steps, |i| match i {
            StreamItem::Cmd(c) => Some(Ok(c.clone())),
            StreamItem::BadCmd(_) => Some(Err("truncated")),
            _ => None,
        })?;
        check_receive::<BroadcastFrame>(&items, &stream, &steps, |i| match i {
            StreamItem::Bf(f) => Some(Ok(f.clone())),
            StreamItem::BadBf(_) => Some(Err("truncated")),
            _ => None,
        })?;
    }
}

#[derive(Debug, Clone)]
enum Item {
    Raw(Frame),
    Cmd(SubCommand),
    Bf(BroadcastFrame),
    Flush,
}

/// Frames a receiver may see, tagged with what they are.
#[derive(Debug, Clone)]
enum StreamItem {
    Cmd(SubCommand),
    Bf(BroadcastFrame),
    /// A zero-length frame on this channel.
    Heartbeat(u8),
    /// A non-empty frame on channel 0 or 3–255.
    Foreign(u8, Vec<u8>),
    /// A 1–13-byte payload on channel 1: shorter than the fixed fields.
    BadCmd(Vec<u8>),
    /// A 1–7-byte payload on channel 2: shorter than the fixed fields.
    BadBf(Vec<u8>),
}

impl StreamItem {
    fn frame(&self) -> (u8, Vec<u8>) {
        match self {
            StreamItem::Cmd(c) => (1, pack_value(c)),
            StreamItem::Bf(f) => (2, pack_broadcast_frame(f.conn, &f.data)),
            StreamItem::Heartbeat(chan) => (*chan, vec![]),
            StreamItem::Foreign(chan, p) => (*chan, p.clone()),
            StreamItem::BadCmd(p) => (1, p.clone()),
            StreamItem::BadBf(p) => (2, p.clone()),
        }
    }
}

fn stream_item() -> impl Strategy<Value = StreamItem> {
    let foreign_chan = prop_oneof![Just(0u8), 3u8..=255];
    prop_oneof![
        3 => strategies::sub_command().prop_map(StreamItem::Cmd),
        3 => strategies::broadcast_frame().prop_map(StreamItem::Bf),
        2 => any::<u8>().prop_map(StreamItem::Heartbeat),
        2 => (foreign_chan, vec(any::<u8>(), 1..40)).prop_map(|(c, p)| StreamItem::Foreign(c, p)),
        1 => vec(any::<u8>(), 1..14).prop_map(StreamItem::BadCmd),
        1 => vec(any::<u8>(), 1..8).prop_map(StreamItem::BadBf),
    ]
}

type Expected<M> = Result<M, &'static str>;

fn check_receive<M: Message + PartialEq + std::fmt::Debug>(
    items: &[StreamItem],
    stream: &[u8],
    steps: &[ReadStep],
    expect: impl Fn(&StreamItem) -> Option<Expected<M>>,
) -> Result<(), TestCaseError> {
    let want: Vec<Expected<M>> = items.iter().filter_map(expect).collect();
    let norm = |r: Result<M, PayloadError>| r.map_err(|e| e.class());

    // Frame::message over every frame.
    let mut dec = FrameDecoder::new();
    dec.feed(stream);
    let mut got = Vec::new();
    while let Some(frame) = dec.decode().unwrap() {
        if let Some(m) = frame.message::<M>() {
            got.push(norm(m));
        }
    }
    dec.finish().unwrap();
    prop_assert_eq!(&got, &want, "Frame::message");

    // FrameDecoder::decode_message, fed in 7-byte pieces.
    let mut dec = FrameDecoder::new();
    let mut got = Vec::new();
    for piece in stream.chunks(7) {
        dec.feed(piece);
        while let Some(m) = dec.decode_message::<M>().unwrap() {
            got.push(norm(m));
        }
    }
    dec.finish().unwrap();
    prop_assert_eq!(&got, &want, "decode_message");

    // FrameReader::read_message under the scripted reads.
    let mut r = FrameReader::new(ScriptedReader::new(stream.to_vec(), steps.to_vec()));
    let mut got = Vec::new();
    loop {
        match r.read_message::<M>().unwrap() {
            ReadStatus::Ready(m) => got.push(norm(m)),
            ReadStatus::Pending => {}
            ReadStatus::Closed => break,
        }
    }
    prop_assert_eq!(&got, &want, "read_message");
    Ok(())
}

/// With a writer that takes everything, queued frames leave in one `write`.
#[test]
fn frame_writer_coalesces_queued_frames_into_one_write() {
    let mut w = FrameWriter::new(ScriptedWriter::new(Vec::new()));
    let mut want = Vec::new();
    for conn in 0..100 {
        let f = BroadcastFrame {
            conn,
            data: Bytes::from(vec![b'x'; 95]),
        };
        w.queue_message(&f).unwrap();
        want.extend(pack_frame(2, &pack_broadcast_frame(conn, &f.data)));
    }
    w.queue_frame(&Frame::heartbeat(2)).unwrap();
    want.extend(pack_frame(2, b""));
    w.flush().unwrap();
    assert_eq!(w.get_ref().accepted_writes, 1);
    assert_eq!(w.get_ref().out, want);

    // A WriteZero from the fd is an error, and nothing is dropped from the queue.
    struct Zero;
    impl std::io::Write for Zero {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = FrameWriter::new(Zero);
    w.queue_frame(&Frame::heartbeat(1)).unwrap();
    assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::WriteZero);
    assert_eq!(w.pending(), 5);
}
