//! `tokio_codec::FrameCodec` (feature `tokio`): FramedRead over any
//! AsyncRead gives exactly what `FrameDecoder` gives for every golden
//! framing stream, however the bytes are split; the encoder writes what
//! the codec vectors say and refuses an oversize payload; a hostile length
//! is refused from its header.

use std::io;
use std::path::PathBuf;

use broadcast_wire::tokio_codec::{EncodeError, FrameCodec};
use broadcast_wire::{
    BcastFlags, BroadcastFrame, FrameDecoder, FramingError, Message, NewFlags, PayloadError, ReadError,
    SubCommand,
};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt, stream};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::io::StreamReader;

#[derive(Debug, Deserialize)]
struct FramingFile {
    vectors: Vec<StreamVector>,
}

#[derive(Debug, Deserialize)]
struct StreamVector {
    id: String,
    stream_hex: String,
    max_payload: Option<u32>,
}

fn streams() -> Vec<StreamVector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/framing/streams.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<FramingFile>(&text).unwrap().vectors
}

/// What a reader of `M` makes of a stream: the messages (or payload error
/// classes) and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome<M> {
    items: Vec<Result<M, &'static str>>,
    end: &'static str,
}

fn item<M>(r: Result<M, PayloadError>) -> Result<M, &'static str> {
    r.map_err(|e| e.class())
}

/// The reference: `FrameDecoder::decode_message`, whole stream at once.
fn with_frame_decoder<M: Message>(max: u32, stream: &[u8]) -> Outcome<M> {
    let mut dec = FrameDecoder::with_max_payload(max);
    dec.feed(stream);
    let mut items = Vec::new();
    loop {
        match dec.decode_message::<M>() {
            Ok(Some(msg)) => items.push(item(msg)),
            Ok(None) => break,
            Err(e) => {
                return Outcome {
                    items,
                    end: e.class(),
                };
            }
        }
    }
    let end = match dec.finish() {
        Ok(()) => "clean",
        Err(e) => e.class(),
    };
    Outcome { items, end }
}

/// FramedRead over a reader that hands out `chunk`-byte pieces.
async fn with_framed_read<M: Message>(max: u32, stream: &[u8], chunk: usize) -> Outcome<M> {
    let pieces: Vec<io::Result<Bytes>> = stream
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let reader = StreamReader::new(stream::iter(pieces));
    let mut framed = FramedRead::new(reader, FrameCodec::<M>::with_max_payload(max));
    let mut items = Vec::new();
    while let Some(next) = framed.next().await {
        match next {
            Ok(msg) => items.push(item(msg)),
            Err(ReadError::Framing(e)) => {
                return Outcome {
                    items,
                    end: e.class(),
                };
            }
            Err(ReadError::Io(e)) => panic!("unexpected I/O error {e}"),
        }
    }
    Outcome { items, end: "clean" }
}

#[tokio::test]
async fn framed_read_matches_the_frame_decoder_on_every_golden_stream_in_any_chunking() {
    let vectors = streams();
    assert!(vectors.len() >= 40, "{} framing vectors", vectors.len());
    let mut saw_payload_error = false;
    for v in &vectors {
        let stream = hex::decode(&v.stream_hex).unwrap();
        let max = v.max_payload.unwrap_or(broadcast_wire::DEFAULT_MAX_PAYLOAD);
        let want_cmds = with_frame_decoder::<SubCommand>(max, &stream);
        let want_frames = with_frame_decoder::<BroadcastFrame>(max, &stream);
        saw_payload_error |=
            want_cmds.items.iter().any(Result::is_err) || want_frames.items.iter().any(Result::is_err);
        for chunk in [1, 2, 5, 7, 64, usize::MAX] {
            let chunk = chunk.min(stream.len().max(1));
            assert_eq!(
                with_framed_read::<SubCommand>(max, &stream, chunk).await,
                want_cmds,
                "{} (SubCommand, {chunk}-byte chunks)",
                v.id
            );
            assert_eq!(
                with_framed_read::<BroadcastFrame>(max, &stream, chunk).await,
                want_frames,
                "{} (BroadcastFrame, {chunk}-byte chunks)",
                v.id
            );
        }
    }
    assert!(saw_payload_error, "no vector exercised a non-fatal payload error");
}

#[tokio::test]
async fn commands_and_frames_round_trip_through_framed_write_and_framed_read() {
    let commands = vec![
        SubCommand::New {
            conn: 1,
            flags: NewFlags::WHITELISTED,
        },
        SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::NEED_FILTER,
            event: Bytes::from_static(br#"["EVENT",{"kind":1}]"#),
        },
    ];
    let (a, b) = tokio::io::duplex(7); // a tiny pipe: many partial reads
    let writer = tokio::spawn({
        let commands = commands.clone();
        async move {
            let mut sink = FramedWrite::new(a, FrameCodec::<BroadcastFrame>::new());
            for cmd in commands {
                sink.send(cmd).await.unwrap();
            }
            // A BroadcastFrame on the same stream: the SubCommand reader skips it.
            sink.send(BroadcastFrame {
                conn: 2,
                data: Bytes::from_static(b"x"),
            })
            .await
            .unwrap();
        }
    });
    let got: Vec<SubCommand> = FramedRead::new(b, FrameCodec::<SubCommand>::new())
        .map(|r| r.unwrap().unwrap())
        .collect()
        .await;
    writer.await.unwrap();
    assert_eq!(got, commands);
}

#[test]
fn the_encoder_refuses_an_oversize_payload_and_writes_nothing() {
    let mut codec = FrameCodec::<BroadcastFrame>::with_max_payload(100);
    let mut dst = BytesMut::from(&b"before"[..]);
    let fits = BroadcastFrame {
        conn: 1,
        data: Bytes::from(vec![b'x'; 92]), // 8 + 92 = 100: at the maximum
    };
    codec.encode(&fits, &mut dst).unwrap();
    assert_eq!(dst.len(), 6 + 5 + 100);
    let over = BroadcastFrame {
        conn: 1,
        data: Bytes::from(vec![b'x'; 93]),
    };
    let before = dst.clone();
    match codec.encode(&over, &mut dst) {
        Err(EncodeError::TooLarge(e)) => assert_eq!((e.len, e.max), (101, 100)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(dst, before);
}

#[test]
fn a_hostile_length_is_refused_from_the_header_and_the_error_sticks() {
    let mut codec = FrameCodec::<SubCommand>::new();
    let mut src = BytesMut::from(&[1u8, 0xff, 0xff, 0xff, 0x7f][..]);
    let err = codec.decode(&mut src).unwrap_err();
    let ReadError::Framing(FramingError::FrameTooLarge { len, .. }) = err else {
        panic!("expected FrameTooLarge, got {err:?}")
    };
    assert_eq!(len, 0x7fff_ffff);
    // Nothing was reserved for it: only the header is held.
    assert!(codec.buffered() <= 5, "{}", codec.buffered());
    // A valid frame after it is not decoded: the stream is over.
    let mut more = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
    assert!(matches!(codec.decode(&mut more), Err(ReadError::Framing(_))));
    assert!(matches!(
        codec.decode_eof(&mut BytesMut::new()),
        Err(ReadError::Framing(_))
    ));
}
