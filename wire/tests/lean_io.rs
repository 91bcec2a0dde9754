//! The lean I/O paths: frames whose long payloads are queued by handle and
//! written with `write_vectored`, resumed after a partial write at every
//! byte; and reads straight into the decoder's buffer under any split.
//!
//! Expected bytes come from `support::spec_oracle`, never from the code
//! under test. (The worker's EVENT frames queued from parts are checked
//! against frames built whole in broadcast-testkit's `worker_lean_io.rs`.)

mod support;

use std::io::{self, ErrorKind, Read};

use broadcast_wire::{
    BcastFlags, BroadcastFrame, DataPart, Frame, FrameDecoder, FrameWriter, NewFlags, ReservedFlags,
    SubCommand, SubId,
};
use bytes::Bytes;
use support::scripted_io::{ReadStep, Rng, ScriptedReader, ScriptedWriter, WriteStep};
use support::spec_oracle::framing::{pack_frame, stream_frames};
use support::spec_oracle::payload::{pack_broadcast_frame, pack_sub_command_value};

/// `n` bytes of printable filler, different for each `seed`.
fn filler(n: usize, seed: u8) -> Bytes {
    (0..n).map(|i| b'a' + ((i + seed as usize) % 26) as u8).collect()
}

/// Queues frames of every kind and size around the 1 KiB sharing threshold
/// on `w`, and returns the bytes the spec says they make.
fn queue_mixed<W: io::Write>(w: &mut FrameWriter<W>) -> Vec<u8> {
    let mut expected = Vec::new();
    let mut message = |w: &mut FrameWriter<W>, frame: BroadcastFrame| {
        w.queue_message(&frame).unwrap();
        expected.extend(pack_frame(2, &pack_broadcast_frame(frame.conn, &frame.data)));
    };
    message(
        w,
        BroadcastFrame {
            conn: 1,
            data: "a".into(),
        },
    );
    message(
        w,
        BroadcastFrame {
            conn: 2,
            data: filler(4096, 1),
        },
    );
    message(
        w,
        BroadcastFrame {
            conn: 3,
            data: filler(1023, 2),
        },
    );
    message(
        w,
        BroadcastFrame {
            conn: 4,
            data: filler(1024, 3),
        },
    );
    let mut rest = Vec::new();
    w.queue_raw(b"\x02\x09\x00");
    rest.extend_from_slice(b"\x02\x09\x00");
    // The half header above is completed by the raw bytes below: a test
    // harness's way of splitting a frame.
    w.queue_raw(&[0, 0, 5, 0, 0, 0, 1, 0, 0, 0, b'z']);
    rest.extend_from_slice(&[0, 0, 5, 0, 0, 0, 1, 0, 0, 0, b'z']);
    let commands = [
        SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: filler(1500, 4),
        },
        SubCommand::Add {
            conn: 9,
            flags: ReservedFlags::EMPTY,
            sub_id: SubId::try_from("s\"1").unwrap(),
            req: filler(1024, 5),
        },
        SubCommand::New {
            conn: 9,
            flags: NewFlags::EMPTY,
        },
    ];
    for cmd in &commands {
        w.queue_message(cmd).unwrap();
        rest.extend(pack_frame(1, &pack_sub_command_value(cmd)));
    }
    let big = filler(2000, 6);
    let small = filler(10, 7);
    for (conn, shared) in [(5, &big), (6, &small)] {
        let parts = [
            DataPart::Copied(b"[\"EVENT\",\"s\","),
            DataPart::Shared(shared),
            DataPart::Copied(b"]"),
        ];
        w.queue_broadcast_parts(conn, &parts).unwrap();
        let data = [&b"[\"EVENT\",\"s\","[..], &shared[..], b"]"].concat();
        rest.extend(pack_frame(2, &pack_broadcast_frame(conn, &data)));
    }
    w.queue_frame(&Frame::heartbeat(2)).unwrap();
    rest.extend(pack_frame(2, b""));
    w.queue_frame(&Frame::new(7, filler(1100, 8))).unwrap();
    rest.extend(pack_frame(7, &filler(1100, 8)));
    expected.extend(rest);
    expected
}

#[test]
fn a_partial_vectored_write_resumes_exactly_at_every_split_point() {
    let total = queue_mixed(&mut FrameWriter::new(Vec::new())).len();
    for split in 1..total {
        let mut w = FrameWriter::new(ScriptedWriter::new(vec![
            WriteStep::Accept(split),
            WriteStep::WouldBlock,
        ]));
        let expected = queue_mixed(&mut w);
        assert_eq!(w.pending(), total);
        let err = w.flush().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "split {split}");
        assert_eq!(w.get_ref().out, expected[..split], "split {split}");
        assert_eq!(w.pending(), total - split, "split {split}");
        w.flush().unwrap();
        assert_eq!(w.pending(), 0);
        assert_eq!(w.get_ref().out, expected, "split {split}");
    }
}

#[test]
fn the_unwritten_rest_is_returned_joined_after_any_split() {
    let total = queue_mixed(&mut FrameWriter::new(Vec::new())).len();
    for split in (1..total).step_by(7) {
        let mut w = FrameWriter::new(ScriptedWriter::new(vec![
            WriteStep::Accept(split),
            WriteStep::WouldBlock,
        ]));
        let expected = queue_mixed(&mut w);
        assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::WouldBlock);
        let (inner, rest) = w.into_parts();
        assert_eq!(inner.out, expected[..split]);
        assert_eq!(rest, expected[split..], "split {split}");
    }
}

#[test]
fn random_splits_blocks_and_interruptions_lose_nothing() {
    let mut rng = Rng::new(12);
    for _ in 0..300 {
        let steps = (0..rng.below(40))
            .map(|_| match rng.below(6) {
                0 => WriteStep::WouldBlock,
                1 => WriteStep::Interrupted,
                _ => WriteStep::Accept(1 + rng.below(3000)),
            })
            .collect();
        let mut w = FrameWriter::new(ScriptedWriter::new(steps));
        let expected = queue_mixed(&mut w);
        // Frames queued between flushes go after the unwritten rest.
        let mut more = 0;
        loop {
            match w.flush() {
                Ok(()) => break,
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            }
            if more < 2 {
                w.queue_message(&BroadcastFrame {
                    conn: 8,
                    data: filler(1200, 9),
                })
                .unwrap();
                more += 1;
            }
        }
        let mut all = expected;
        for _ in 0..more {
            all.extend(pack_frame(2, &pack_broadcast_frame(8, &filler(1200, 9))));
        }
        assert_eq!(w.get_ref().out, all);
    }
}

#[test]
fn a_queue_of_shared_payloads_coalesces_into_one_vectored_write() {
    let mut w = FrameWriter::new(ScriptedWriter::default());
    let expected = queue_mixed(&mut w);
    w.flush().unwrap();
    assert_eq!(w.get_ref().out, expected);
    assert_eq!(w.get_ref().accepted_writes, 1);
}

#[test]
fn more_shared_payloads_than_one_call_takes_go_out_in_order() {
    let mut w = FrameWriter::new(ScriptedWriter::default());
    let mut expected = Vec::new();
    for conn in 0..300 {
        let data = filler(1024 + conn as usize, conn as u8);
        w.queue_message(&BroadcastFrame {
            conn,
            data: data.clone(),
        })
        .unwrap();
        expected.extend(pack_frame(2, &pack_broadcast_frame(conn, &data)));
    }
    w.flush().unwrap();
    assert_eq!(w.get_ref().out, expected);
    assert!(w.get_ref().accepted_writes > 1);
}

#[test]
fn an_oversize_frame_from_parts_is_refused_and_nothing_is_queued() {
    let mut w = FrameWriter::with_max_payload(Vec::new(), 1100);
    let event = filler(1093, 0);
    let parts = [DataPart::Shared(&event)];
    let err = w.queue_broadcast_parts(1, &parts).unwrap_err();
    assert_eq!((err.len, err.max), (1101, 1100));
    assert_eq!(w.pending(), 0);
    w.queue_broadcast_parts(1, &[DataPart::Shared(&event.slice(1..))])
        .unwrap();
    assert_eq!(w.pending(), 5 + 1100);
}

/// A stream with frames smaller and larger than one read of the decoder
/// (64 KiB), a heartbeat and a foreign channel.
fn read_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for (chan, len) in [
        (1, 3),
        (2, 0),
        (1, 150_000),
        (9, 1),
        (1, 65_531),
        (2, 4096),
        (1, 65_536),
    ] {
        stream.extend(pack_frame(chan, &filler(len, len as u8)));
    }
    stream
}

/// Reads at most `max` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    max: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.max.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Drives `read_from` + `decode` to the end; the frames and how it ended.
fn read_all(reader: &mut impl Read) -> (Vec<Frame>, &'static str) {
    let mut dec = FrameDecoder::new();
    let mut frames = Vec::new();
    loop {
        loop {
            match dec.decode() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, e.class()),
            }
        }
        match dec.read_from(reader) {
            Ok(0) => {
                return match dec.finish() {
                    Ok(()) => (frames, "clean"),
                    Err(e) => (frames, e.class()),
                };
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn oracle(stream: &[u8]) -> (Vec<Frame>, &'static str) {
    let (frames, end) = stream_frames(stream, 16 << 20);
    let frames = frames
        .into_iter()
        .map(|(chan, payload)| Frame::new(chan, Bytes::copy_from_slice(payload)))
        .collect();
    (frames, end)
}

#[test]
fn reads_straight_into_the_decoder_give_the_frames_under_any_read_size() {
    let stream = read_stream();
    let expected = oracle(&stream);
    for max in [1, 2, 5, 7, 1000, 4096, 65_535, 65_536, 65_537, 200_000] {
        let got = read_all(&mut Trickle { data: &stream, max });
        assert!(got == expected, "reads of at most {max} bytes");
    }
}

#[test]
fn reads_straight_into_the_decoder_survive_random_splits_blocks_and_interruptions() {
    let stream = read_stream();
    let expected = oracle(&stream);
    let mut rng = Rng::new(7);
    for _ in 0..40 {
        let steps = (0..rng.below(200))
            .map(|_| match rng.below(8) {
                0 => ReadStep::WouldBlock,
                1 => ReadStep::Interrupted,
                _ => ReadStep::Bytes(1 + rng.below(80_000)),
            })
            .collect();
        let got = read_all(&mut ScriptedReader::new(stream.clone(), steps));
        assert!(got == expected);
    }
}

#[test]
fn a_truncated_or_oversize_stream_read_straight_in_ends_as_the_spec_says() {
    let stream = read_stream();
    for cut in [1, 4, 5, 6, 100, 70_000, stream.len() - 1] {
        let got = read_all(&mut Trickle {
            data: &stream[..cut],
            max: 3000,
        });
        assert!(got == oracle(&stream[..cut]), "cut at {cut}");
    }
    let mut hostile = pack_frame(1, b"ok");
    hostile.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff]);
    let got = read_all(&mut Trickle {
        data: &hostile,
        max: 65_536,
    });
    assert_eq!(got, oracle(&hostile));
    assert_eq!(got.1, "frame_too_large");
}

/// A writer that takes everything it is given and claims 10 bytes more.
struct Overclaims(Vec<u8>);

impl io::Write for Overclaims {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len() + 10)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for buf in bufs {
            self.0.extend_from_slice(buf);
            n += buf.len();
        }
        Ok(n + 10)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writer_claiming_more_than_it_was_given_does_not_break_the_queue() {
    let mut w = FrameWriter::new(Overclaims(Vec::new()));
    let expected = queue_mixed(&mut w);
    w.flush().unwrap();
    assert_eq!(w.pending(), 0);
    assert_eq!(w.get_ref().0, expected);
}
