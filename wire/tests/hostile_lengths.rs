//! Hostile length fields must not drive allocations (PROTOCOL.md#maximum-payload: "A
//! reader MUST NOT allocate memory according to a `len` it has not yet checked
//! against the maximum"; issue 2: "never
//! an allocation larger than the input or the configured maximum").
//!
//! This binary installs a counting global allocator that records, per thread,
//! the largest single allocation (or reallocation) requested, so the tests
//! can measure what a decoder asked for, not just what it reports.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use broadcast_wire::{
    BroadcastFrame, DEFAULT_MAX_PAYLOAD, DecodeFromError, Field, FrameDecoder, FrameReader, FramingError,
    HEADER_LEN, PayloadError, ReadError, SubCommand,
};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use support::scripted_io::ScriptedReader;
use support::spec_oracle::payload::{pack_broadcast_frame, pack_sub_command};

/// Lowercase hex of `bytes`, for failure messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Counting;

thread_local! {
    // `const` thread-locals without a destructor never allocate, so the
    // allocator can use them without recursing.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping only touches thread-local `Cell`s.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the largest single allocation and
/// the number of allocations it made on this thread.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LARGEST.with(|c| c.set(0));
    COUNT.with(|c| c.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get), COUNT.with(Cell::get))
}

const HOSTILE_LENS: [u32; 4] = [DEFAULT_MAX_PAYLOAD + 1, 0x7FFF_FFFF, 0x8000_0000, u32::MAX];

fn header(chan: u8, len: u32) -> [u8; 5] {
    let l = len.to_le_bytes();
    [chan, l[0], l[1], l[2], l[3]]
}

#[test]
fn decoder_refuses_a_len_above_the_maximum_without_reserving() {
    for chan in [0u8, 1, 2, 255] {
        for len in HOSTILE_LENS {
            let hdr = header(chan, len);
            // One feed, and one byte at a time.
            for split in [5usize, 1] {
                let mut dec = FrameDecoder::new();
                let (res, largest, _) = measure(|| {
                    let mut last = Ok(None);
                    for piece in hdr.chunks(split) {
                        dec.feed(piece);
                        last = dec.decode();
                    }
                    last
                });
                let want = FramingError::FrameTooLarge {
                    len,
                    max: DEFAULT_MAX_PAYLOAD,
                };
                assert_eq!(res, Err(want));
                assert!(
                    largest <= 64,
                    "chan {chan} len {len:#x}: allocated {largest} bytes"
                );
                assert_eq!(dec.buffered(), HEADER_LEN);
                assert_eq!(dec.finish(), Err(want));
                // The end of the stream right after the header, before any
                // `decode`: still `frame_too_large`, not `truncated_stream`.
                let mut fresh = FrameDecoder::new();
                fresh.feed(&hdr);
                assert_eq!(fresh.finish(), Err(want));
                // More bytes after the fatal header change nothing and reserve nothing.
                let (res, largest, _) = measure(|| {
                    dec.feed(&[0u8; 32]);
                    dec.decode()
                });
                assert_eq!(res, Err(want));
                assert!(largest <= 128, "after the error: allocated {largest} bytes");
            }
        }
    }
}

#[test]
fn decoder_reserves_at_most_the_maximum_for_an_allowed_len() {
    // len == max is allowed, and reserving for it is too; never more.
    for max in [DEFAULT_MAX_PAYLOAD, 1 << 20, 100] {
        let mut dec = FrameDecoder::with_max_payload(max);
        let (res, largest, _) = measure(|| {
            dec.feed(&header(1, max));
            dec.decode()
        });
        assert_eq!(res, Ok(None));
        assert!(
            largest <= max as usize + HEADER_LEN + 64,
            "max {max}: allocated {largest} bytes"
        );
        assert_eq!(dec.finish().unwrap_err().class(), "truncated_stream");
    }
}

#[test]
fn reader_refuses_a_hostile_len_without_reserving() {
    for len in HOSTILE_LENS {
        let reader = ScriptedReader::new(header(2, len).to_vec(), Vec::new());
        let mut r = FrameReader::new(reader);
        let (res, largest, _) = measure(|| r.read_frame());
        match res {
            Err(ReadError::Framing(FramingError::FrameTooLarge { len: l, max })) => {
                assert_eq!((l, max), (len, DEFAULT_MAX_PAYLOAD))
            }
            other => panic!("len {len:#x}: {other:?}"),
        }
        // The reader's own 64 KiB scratch buffer is the largest thing allowed.
        assert!(largest <= 64 * 1024, "len {len:#x}: allocated {largest} bytes");
    }
}

/// `decode_from` with a huge length on a short reader: `truncated`, at once,
/// after a handful of reads and without allocating for the length.
#[test]
fn decode_from_with_hostile_lengths_returns_truncated_quickly() {
    let mut cases: Vec<(Vec<u8>, Field, bool)> = Vec::new();
    for len in HOSTILE_LENS.into_iter().chain([65, 1 << 20]) {
        // sub_id_len hostile, 2 bytes follow.
        let mut b = vec![3, 0, 1, 0, 0, 0];
        b.extend(len.to_le_bytes());
        b.extend(b"ab");
        cases.push((b, Field::SubId, true));
        // data_len hostile after a valid sub_id, 3 bytes follow.
        let mut b = pack_sub_command(3, 0, 1, b"s", b"");
        b.truncate(b.len() - 4);
        b.extend(len.to_le_bytes());
        b.extend(b"xyz");
        cases.push((b, Field::Data, true));
        // BroadcastFrame data_len hostile.
        let mut b = pack_broadcast_frame(1, b"");
        b.truncate(4);
        b.extend(len.to_le_bytes());
        b.extend(b"q");
        cases.push((b, Field::Data, false));
    }
    for (bytes, field, is_cmd) in cases {
        let mut reader = ScriptedReader::new(bytes.clone(), Vec::new());
        let start = Instant::now();
        let (res, largest, _) = measure(|| {
            if is_cmd {
                SubCommand::decode_from(&mut reader).map(|_| ())
            } else {
                BroadcastFrame::decode_from(&mut reader).map(|_| ())
            }
        });
        let took = start.elapsed();
        match res {
            Err(DecodeFromError::Payload(PayloadError::Truncated { field: f })) => assert_eq!(f, field),
            other => panic!("{}: {other:?}", hex(&bytes)),
        }
        assert!(largest <= 256, "{}: allocated {largest} bytes", hex(&bytes));
        assert!(reader.calls <= 16, "{}: {} reads", hex(&bytes), reader.calls);
        assert!(took < Duration::from_secs(2), "took {took:?}");

        // The zero-copy decoder does not allocate at all on a static buffer.
        let stat: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let (res, _, count) = measure(|| {
            if is_cmd {
                SubCommand::decode(Bytes::from_static(stat)).map(|_| ())
            } else {
                BroadcastFrame::decode(Bytes::from_static(stat)).map(|_| ())
            }
        });
        assert_eq!(res, Err(PayloadError::Truncated { field }));
        assert_eq!(count, 0, "decode allocated");
    }
}

#[test]
fn zero_copy_decode_of_a_valid_payload_does_not_allocate() {
    let bcast: &'static [u8] = Box::leak(pack_sub_command(6, 1, -1, b"", &[b'e'; 1024]).into_boxed_slice());
    let add: &'static [u8] =
        Box::leak(pack_sub_command(3, 0, 9, b"sub", b"[\"REQ\",\"sub\",{}]").into_boxed_slice());
    let bf: &'static [u8] = Box::leak(pack_broadcast_frame(4, &[b'm'; 1024]).into_boxed_slice());
    let (ok, _, count) = measure(|| {
        SubCommand::decode(Bytes::from_static(bcast)).is_ok()
            && SubCommand::decode(Bytes::from_static(add)).is_ok()
            && BroadcastFrame::decode(Bytes::from_static(bf)).is_ok()
    });
    assert!(ok);
    assert_eq!(count, 0, "decoding a static buffer allocated {count} time(s)");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, any maximum up to 4096: the decoder's largest allocation is
    /// bounded by what it was fed and the maximum, whatever the headers say.
    #[test]
    fn decoder_allocations_are_bounded_by_input_and_maximum(
        stream in vec(any::<u8>(), 0..400),
        max in 0u32..4096,
        split in 1usize..64,
    ) {
        let mut dec = FrameDecoder::with_max_payload(max);
        let ((), largest, _) = measure(|| {
            for piece in stream.chunks(split) {
                dec.feed(piece);
                while let Ok(Some(_)) = dec.decode() {}
            }
        });
        let bound = 2 * stream.len().max(max as usize + HEADER_LEN) + 64;
        prop_assert!(largest <= bound, "largest allocation {} > {}", largest, bound);
        prop_assert!(dec.buffered() <= stream.len());
    }

    /// `decode_from` allocates in proportion to the bytes that arrive.
    #[test]
    fn decode_from_allocations_are_bounded_by_input(
        mut bytes in vec(any::<u8>(), 0..200),
        len in any::<u32>(),
    ) {
        // Force a hostile length into sub_id_len or data_len half the time.
        if bytes.len() >= 10 && len % 2 == 0 {
            bytes[6..10].copy_from_slice(&len.to_le_bytes());
        }
        let input = bytes.clone();
        let ((), largest, _) = measure(|| {
            let _ = SubCommand::decode_from(&input[..]);
            let _ = BroadcastFrame::decode_from(&input[..]);
        });
        let bound = 2 * bytes.len() + 64;
        prop_assert!(largest <= bound, "largest allocation {} > {}", largest, bound);
    }
}

/// `tokio_codec::FrameCodec` decodes in place, in the caller's buffer: a
/// hostile header must not make it reserve room in that buffer either.
#[cfg(feature = "tokio")]
mod frame_codec {
    use broadcast_wire::Message;
    use broadcast_wire::tokio_codec::FrameCodec;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use super::*;

    /// Feeds `hdr` into a buffer of `capacity` in `split`-byte pieces,
    /// decoding after each as FramedRead does; the last result, with the
    /// largest allocation and the number of allocations made meanwhile.
    fn feed_header<M: Message>(
        codec: &mut FrameCodec<M>,
        src: &mut BytesMut,
        hdr: &[u8],
        split: usize,
    ) -> (Result<(), FramingError>, usize, usize) {
        let (res, largest, count) = measure(|| {
            let mut last = Ok(None);
            for piece in hdr.chunks(split) {
                src.extend_from_slice(piece);
                last = codec.decode(src);
            }
            last
        });
        let res = match res {
            Ok(Some(_)) => panic!("a message out of a lone header"),
            Ok(None) => Ok(()),
            Err(ReadError::Framing(e)) => Err(e),
            Err(ReadError::Io(e)) => panic!("{e}"),
        };
        (res, largest, count)
    }

    fn check_hostile<M: Message>() {
        for chan in [0u8, 1, 2, 255] {
            for len in HOSTILE_LENS {
                let hdr = header(chan, len);
                let want = FramingError::FrameTooLarge {
                    len,
                    max: DEFAULT_MAX_PAYLOAD,
                };
                // A buffer holding exactly the header, and one of the size
                // FramedRead starts with (8 KiB); one feed, and one byte at a time.
                for capacity in [HEADER_LEN, 8 * 1024] {
                    for split in [5usize, 1] {
                        let mut codec = FrameCodec::<M>::new();
                        let mut src = BytesMut::with_capacity(capacity);
                        let before = src.capacity();
                        let (res, _, count) = feed_header(&mut codec, &mut src, &hdr, split);
                        let what = format!("chan {chan} len {len:#x} capacity {capacity} split {split}");
                        assert_eq!(res, Err(want), "{what}");
                        assert_eq!(count, 0, "{what}: {count} allocation(s)");
                        assert_eq!(src.capacity(), before, "{what}: the buffer grew");
                        assert_eq!(src.len(), HEADER_LEN, "{what}");
                        // The error sticks, whatever comes after it, and
                        // still nothing is reserved for it.
                        src.reserve(32);
                        src.extend_from_slice(&[1, 0, 0, 0, 0, 1, 1, 0, 0, 0]);
                        let before = src.capacity();
                        let (res, _, count) = measure(|| {
                            let a = codec.decode(&mut src);
                            let b = codec.decode_eof(&mut src);
                            (a, b)
                        });
                        for r in [res.0, res.1] {
                            match r {
                                Err(ReadError::Framing(e)) => assert_eq!(e, want, "{what}"),
                                Err(ReadError::Io(e)) => panic!("{what}: after the error: {e}"),
                                Ok(_) => panic!("{what}: decoded after the error"),
                            }
                        }
                        assert_eq!(count, 0, "{what}: allocated after the error");
                        assert_eq!(src.capacity(), before, "{what}: grew after the error");
                    }
                }
            }
        }
    }

    #[test]
    fn frame_codec_refuses_a_hostile_len_without_allocating_or_growing_the_buffer() {
        check_hostile::<SubCommand>();
        check_hostile::<BroadcastFrame>();
    }

    #[test]
    fn frame_codec_reserves_at_most_the_frame_for_an_allowed_len() {
        // len == max is allowed, and reserving for it is too (the reads to
        // come land there); never more than the frame.
        for max in [DEFAULT_MAX_PAYLOAD, 1 << 20, 100] {
            let mut codec = FrameCodec::<SubCommand>::with_max_payload(max);
            let mut src = BytesMut::with_capacity(HEADER_LEN);
            let (res, largest, _) = feed_header(&mut codec, &mut src, &header(1, max), 5);
            assert_eq!(res, Ok(()));
            let frame = max as usize + HEADER_LEN;
            assert!(src.capacity() >= frame, "max {max}: room for {}", src.capacity());
            assert!(largest <= frame + 64, "max {max}: allocated {largest} bytes");
            // Cut there, the stream is truncated.
            match codec.decode_eof(&mut src) {
                Err(ReadError::Framing(e)) => {
                    assert_eq!(e, FramingError::TruncatedStream { buffered: HEADER_LEN })
                }
                other => panic!("max {max}: {other:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes, any maximum up to 4096, fed as FramedRead feeds its
        /// buffer: the codec's largest allocation is bounded by what it was
        /// fed and the maximum, whatever the headers say.
        #[test]
        fn frame_codec_allocations_are_bounded_by_input_and_maximum(
            stream in vec(any::<u8>(), 0..400),
            max in 0u32..4096,
            split in 1usize..64,
        ) {
            let mut codec = FrameCodec::<BroadcastFrame>::with_max_payload(max);
            let mut src = BytesMut::new();
            let ((), largest, _) = measure(|| {
                for piece in stream.chunks(split) {
                    src.extend_from_slice(piece);
                    while let Ok(Some(_)) = codec.decode(&mut src) {}
                }
                while let Ok(Some(_)) = codec.decode_eof(&mut src) {}
            });
            let bound = 2 * stream.len().max(max as usize + HEADER_LEN) + 64;
            prop_assert!(largest <= bound, "largest allocation {} > {}", largest, bound);
            prop_assert!(src.len() <= stream.len());
        }
    }
}
