//! Hostile length fields must not drive allocations (PROTOCOL.md#maximum-payload: "A
//! reader MUST NOT allocate memory according to a `len` it has not yet checked
//! against the maximum"; issue 2: "never
//! an allocation larger than the input or the configured maximum").
//!
//! This binary installs a counting global allocator that records, per thread,
//! the largest single allocation (or reallocation) requested, so the tests
//! can measure what a decoder asked for, not just what it reports.

use broadcast_testkit::scripted_io as wire_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use broadcast_testkit::spec_oracle::payload::{pack_broadcast_frame, pack_sub_command};
use broadcast_wire::{
    BroadcastFrame, DEFAULT_MAX_PAYLOAD, DecodeFromError, Field, FrameDecoder, FrameReader, FramingError,
    HEADER_LEN, PayloadError, ReadError, SubCommand,
};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use wire_support::ScriptedReader;

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
            other => panic!("{}: {other:?}", hex::encode(&bytes)),
        }
        assert!(
            largest <= 256,
            "{}: allocated {largest} bytes",
            hex::encode(&bytes)
        );
        assert!(
            reader.calls <= 16,
            "{}: {} reads",
            hex::encode(&bytes),
            reader.calls
        );
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
