//! `tokio_codec::FrameCodec` (feature `tokio`): commands and frames round
//! trip through FramedWrite and FramedRead over a tiny pipe; the encoder
//! refuses an oversize payload and writes nothing; a hostile length is
//! refused from its header and the error sticks; decoding works in place in
//! the caller's buffer and hands out payloads that share it.
//!
//! That FramedRead gives exactly what `FrameDecoder` gives for every golden
//! framing stream, however the bytes are split, is checked against the
//! repository's `vectors/` by broadcast-testkit's `wire_vectors.rs`; the
//! codec's allocations under hostile lengths by `hostile_lengths.rs`.

use broadcast_wire::tokio_codec::{EncodeError, FrameCodec};
use broadcast_wire::{BcastFlags, BroadcastFrame, FramingError, NewFlags, ReadError, SubCommand};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

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
    let capacity = src.capacity();
    let err = codec.decode(&mut src).unwrap_err();
    let ReadError::Framing(FramingError::FrameTooLarge { len, .. }) = err else {
        panic!("expected FrameTooLarge, got {err:?}")
    };
    assert_eq!(len, 0x7fff_ffff);
    // Nothing was reserved for it: the caller's buffer holds the header only.
    assert_eq!((src.len(), src.capacity()), (5, capacity));
    // A valid frame after it is not decoded: the stream is over.
    let mut more = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
    assert!(matches!(codec.decode(&mut more), Err(ReadError::Framing(_))));
    assert!(matches!(
        codec.decode_eof(&mut BytesMut::new()),
        Err(ReadError::Framing(_))
    ));
}

/// A frame packed by hand: `chan u8 | len u32 LE | payload`.
fn frame(chan: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![chan];
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A BroadcastFrame payload packed by hand: `conn i32 LE | data_len u32 LE | data`.
fn broadcast_payload(conn: i32, data: &[u8]) -> Vec<u8> {
    let mut v = conn.to_le_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn decoding_works_in_the_callers_buffer_and_the_data_shares_it() {
    let mut codec = FrameCodec::<BroadcastFrame>::new();
    let mut src = BytesMut::with_capacity(4096);
    src.extend_from_slice(&frame(2, &broadcast_payload(7, b"first")));
    src.extend_from_slice(&frame(2, &broadcast_payload(8, b"second")));
    let start = src.as_ptr() as usize;
    let within = |data: &Bytes| {
        let p = data.as_ptr() as usize;
        p >= start && p + data.len() <= start + 4096
    };
    let a = codec.decode(&mut src).unwrap().unwrap().unwrap();
    let b = codec.decode(&mut src).unwrap().unwrap().unwrap();
    assert_eq!(
        (a.conn, &a.data[..], b.conn, &b.data[..]),
        (7, &b"first"[..], 8, &b"second"[..])
    );
    assert!(
        within(&a.data) && within(&b.data),
        "the data was copied out of the buffer"
    );
    assert!(src.is_empty());
    assert!(codec.decode(&mut src).unwrap().is_none());
}

#[test]
fn an_unfinished_frame_stays_in_the_buffer_with_room_reserved_for_the_rest() {
    let mut codec = FrameCodec::<BroadcastFrame>::new();
    let whole = frame(2, &broadcast_payload(3, &[b'x'; 3000]));
    let mut src = BytesMut::new();
    src.extend_from_slice(&whole[..10]);
    assert!(codec.decode(&mut src).unwrap().is_none());
    assert_eq!(&src[..], &whole[..10], "the bytes were taken out of the buffer");
    assert!(
        src.capacity() >= whole.len(),
        "room for {} bytes only",
        src.capacity()
    );
    src.extend_from_slice(&whole[10..]);
    let got = codec.decode(&mut src).unwrap().unwrap().unwrap();
    assert_eq!((got.conn, got.data.len()), (3, 3000));
}

#[test]
fn heartbeats_and_other_channels_are_skipped_and_a_bad_payload_is_one_item() {
    let mut codec = FrameCodec::<BroadcastFrame>::new();
    let mut src = BytesMut::new();
    src.extend_from_slice(&frame(2, b"")); // heartbeat
    src.extend_from_slice(&frame(1, &[6, 0, 0xff, 0xff, 0xff, 0xff])); // channel 1
    src.extend_from_slice(&frame(2, b"\x01")); // does not decode
    src.extend_from_slice(&frame(2, &broadcast_payload(1, b"ok")));
    let bad = codec.decode(&mut src).unwrap().unwrap();
    assert_eq!(bad.unwrap_err().class(), "truncated");
    let good = codec.decode(&mut src).unwrap().unwrap().unwrap();
    assert_eq!(&good.data[..], b"ok");
    assert!(codec.decode_eof(&mut src).unwrap().is_none());
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_fatal_and_the_error_sticks() {
    let mut codec = FrameCodec::<SubCommand>::new();
    let mut src = BytesMut::new();
    src.extend_from_slice(&frame(1, &[1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    src.extend_from_slice(&[1, 14, 0, 0, 0, 1]); // a header and one byte of the payload
    assert!(matches!(
        codec.decode_eof(&mut src),
        Ok(Some(Ok(SubCommand::New { conn: 5, .. })))
    ));
    let want = FramingError::TruncatedStream { buffered: 6 };
    for _ in 0..2 {
        match codec.decode_eof(&mut src) {
            Err(ReadError::Framing(e)) => assert_eq!(e, want),
            other => panic!("expected {want:?}, got {other:?}"),
        }
    }
    match codec.decode(&mut src) {
        Err(ReadError::Framing(e)) => assert_eq!(e, want),
        other => panic!("expected {want:?} again, got {other:?}"),
    }
}
