//! The worker's EVENT frames queued from their parts (`event_data_parts`,
//! shared handles and `write_vectored`, through partial writes and
//! `WouldBlock`) are byte-identical to the frames it builds whole.
//!
//! The codec's own lean I/O tests (partial vectored writes resumed at every
//! byte, reads straight into the decoder's buffer) are broadcast-wire's
//! `wire/tests/lean_io.rs`.

use std::io::ErrorKind;

use broadcast_testkit::events::{self, Ev};
use broadcast_testkit::scripted_io::{Rng, ScriptedWriter, WriteStep};
use broadcast_wire::{BroadcastFrame, FrameWriter, SubCommand};
use broadcast_worker::{FrameSink, Worker, event_data_parts};
use bytes::Bytes;

/// A [`FrameSink`] queueing EVENT frames from their parts, as the binary does.
struct PartsSink(FrameWriter<ScriptedWriter>);

impl FrameSink for PartsSink {
    fn frame(&mut self, frame: BroadcastFrame) {
        self.0.queue_message(&frame).unwrap();
    }

    fn event(&mut self, conn: i32, prefix: &[u8], raw_event: &Bytes) {
        self.0
            .queue_broadcast_parts(conn, &event_data_parts(prefix, raw_event))
            .unwrap();
    }
}

/// Subscriptions with sub_ids that need escaping, a refused REQ, and
/// events from a few bytes to several KiB.
fn worker_commands() -> Vec<SubCommand> {
    let mut cmds = vec![events::new(1), events::new(2)];
    for (conn, sub) in [(1, "all"), (1, "q\"\\\u{1}"), (2, "é"), (2, "x")] {
        cmds.push(events::req(conn, sub, r#"{"kinds":[1]}"#));
    }
    cmds.push(events::req(2, "bad", r#"{"kinds":"no"}"#));
    for (i, len) in [0usize, 10, 900, 1024, 3000, 70_000].into_iter().enumerate() {
        let ev = Ev::new(i as u8 + 1).tag(&["t", "x"]);
        let ev = Ev {
            content: "c".repeat(len),
            ..ev
        };
        cmds.push(events::bcast(&ev));
    }
    cmds
}

#[test]
fn worker_frames_queued_from_parts_are_byte_identical_to_frames_built_whole() {
    let mut whole = Worker::new();
    let mut frames: Vec<BroadcastFrame> = Vec::new();
    let mut copied = FrameWriter::new(Vec::new());
    let mut rng = Rng::new(3);
    let steps = (0..2000)
        .map(|_| match rng.below(4) {
            0 => WriteStep::WouldBlock,
            _ => WriteStep::Accept(1 + rng.below(5000)),
        })
        .collect();
    let mut parts = Worker::new();
    let mut sink = PartsSink(FrameWriter::new(ScriptedWriter::new(steps)));
    let mut delivered = 0;
    for cmd in worker_commands() {
        frames.clear();
        let a = whole.handle(&cmd, &mut frames);
        for frame in &frames {
            copied.queue_message(frame).unwrap();
        }
        let b = parts.handle(&cmd, &mut sink);
        assert_eq!(a, b);
        if let broadcast_worker::Outcome::Delivered(n) = a {
            delivered += n;
        }
        // Flush part of the way now and then, as the binary's loop does.
        let _ = sink.0.flush();
    }
    copied.flush().unwrap();
    while let Err(e) = sink.0.flush() {
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
    }
    assert_eq!(delivered, 6 * 4);
    assert_eq!(sink.0.get_ref().out, *copied.get_ref());
}
