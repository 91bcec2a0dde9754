//! The property checked by the `link_worker_output` fuzz target: the
//! parent's I/O-free link core (`broadcast_process::link::Link`) fed
//! arbitrary worker output, split and interrupted any way, while commands,
//! flushes, `read` and `read_ahead` calls interleave.
//!
//! Like the other checks it accepts every byte string and panics when a
//! property fails; the fuzz target (nightly) and the stable replay test
//! `tests/fuzz_corpus_link.rs` run this one function. The expected items
//! come from the spec's reading of the stream ([`crate::spec_oracle`]),
//! cross-checked against a one-shot `FrameDecoder`, never from the link.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use broadcast_process::link::{FlushStatus, Incoming, Link, Outlet, ReadAhead, ReadSide, SendError};
use broadcast_wire::{
    BcastFlags, BroadcastFrame, DEFAULT_MAX_PAYLOAD, FrameDecoder, HEADER_LEN, NewFlags, ReadError,
    ReservedFlags, SubCommand,
};

use crate::spec_oracle::framing::{pack_frame, stream_frames};
use crate::spec_oracle::payload::{pack_sub_command_value, read_broadcast_frame};

/// The outbound queue limit: small, so commands meet backpressure.
const QUEUE_LIMIT: usize = 256;

/// What the reader does on one call, from one schedule byte (as
/// `frame_reader_chunked`): 0 `WouldBlock`, 1 `Interrupted`, 2 "all that
/// fits", k ≥ 3 at most max(k − 3, 1) bytes.
#[derive(Debug, Clone, Copy)]
enum Step {
    WouldBlock,
    Interrupted,
    Upto(usize),
}

/// The worker's output: `stream` handed out by a cycling schedule, then
/// end-of-file. After 8 calls without a transfer it transfers all that
/// fits, so every drive loop ends.
struct WorkerOutput<'a> {
    stream: &'a [u8],
    schedule: &'a [u8],
    next: usize,
    idle: usize,
}

impl WorkerOutput<'_> {
    const MAX_IDLE: usize = 8;

    fn step(&mut self) -> Step {
        if self.schedule.is_empty() || self.idle >= Self::MAX_IDLE {
            self.idle = 0;
            return Step::Upto(usize::MAX);
        }
        let byte = self.schedule[self.next % self.schedule.len()];
        self.next += 1;
        let step = match byte {
            0 => Step::WouldBlock,
            1 => Step::Interrupted,
            2 => Step::Upto(usize::MAX),
            n => Step::Upto(usize::from(n - 3).max(1)),
        };
        match step {
            Step::Upto(_) => self.idle = 0,
            _ => self.idle += 1,
        }
        step
    }
}

impl Read for WorkerOutput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.step() {
            Step::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            Step::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            Step::Upto(n) => {
                let n = n.min(buf.len()).min(self.stream.len());
                buf[..n].copy_from_slice(&self.stream[..n]);
                self.stream = &self.stream[n..];
                Ok(n) // 0 once the stream is used up: end-of-file
            }
        }
    }
}

/// The command pipe: takes at most `room` more bytes, `WouldBlock` when it
/// has none. The check holds the other end of `room` (the link lends its
/// writer out by reference only) and adds some at each flush op: the worker
/// reading commands.
#[derive(Default)]
struct CommandPipe {
    got: Vec<u8>,
    room: Rc<Cell<usize>>,
    closed: bool,
}

impl Write for CommandPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.room.get();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(room);
        self.got.extend_from_slice(&buf[..n]);
        self.room.set(room - n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Outlet for CommandPipe {
    fn close(&mut self) {
        assert!(!self.closed, "the command stream was closed twice");
        self.closed = true;
    }
}

/// One item of the worker's output as the parent should see it: a frame's
/// `(conn, data)`, or the class of a payload that does not decode.
type Item = Result<(i32, Vec<u8>), &'static str>;

/// The spec's reading of `stream`: the items of channel 2 (heartbeats and
/// other channels skipped, PROTOCOL.md#receiving-frames) and how the
/// stream ends (`clean`, `truncated_stream`, `frame_too_large`).
fn spec_items(stream: &[u8], max_payload: u32) -> (Vec<Item>, &'static str) {
    let (frames, end) = stream_frames(stream, max_payload);
    let items = frames
        .into_iter()
        .filter(|(chan, payload)| *chan == 2 && !payload.is_empty())
        .map(|(_, payload)| read_broadcast_frame(payload).map(|(conn, data)| (conn, data.to_vec())))
        .collect();
    (items, end)
}

/// The same stream decoded in one piece by a `FrameDecoder`, up to its
/// first framing error.
fn one_shot_items(stream: &[u8], max_payload: u32) -> (Vec<Item>, &'static str) {
    let mut dec = FrameDecoder::with_max_payload(max_payload);
    dec.feed(stream);
    let mut items = Vec::new();
    loop {
        match dec.decode_message::<BroadcastFrame>() {
            Ok(Some(Ok(f))) => items.push(Ok((f.conn, f.data.to_vec()))),
            Ok(Some(Err(e))) => items.push(Err(e.class())),
            Ok(None) => return (items, dec.finish().err().map_or("clean", |e| e.class())),
            Err(e) => return (items, e.class()),
        }
    }
}

fn max_payload_from(byte: u8) -> u32 {
    if byte == u8::MAX {
        DEFAULT_MAX_PAYLOAD
    } else {
        u32::from(byte)
    }
}

/// `[len] [len bytes]` off the front of `input`; short inputs give what
/// there is.
fn segment(input: &[u8]) -> (&[u8], &[u8]) {
    match input.split_first() {
        Some((n, rest)) => rest.split_at(usize::from(*n).min(rest.len())),
        None => (&[], input),
    }
}

/// Splits an input: `[max_payload] [n] [n read-schedule bytes] [m] [m op
/// bytes] [stream…]`. Missing bytes take defaults.
fn link_input(input: &[u8]) -> (u32, &[u8], &[u8], &[u8]) {
    let (max, rest) = match input.split_first() {
        Some((b, rest)) => (max_payload_from(*b), rest),
        None => (DEFAULT_MAX_PAYLOAD, input),
    };
    let (schedule, rest) = segment(rest);
    let (ops, stream) = segment(rest);
    (max, schedule, ops, stream)
}

/// The command an op byte sends (`b >> 3` picks it): New, Close, an
/// invalid New, or a Bcast whose event may be over a small maximum.
fn command(op: u8) -> SubCommand {
    let c = op >> 3;
    let conn = i32::from(c);
    match (op & 7, c % 3) {
        (7, _) => SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: vec![b'{'; usize::from(c) * 8 + 1].into(),
        },
        (_, 0) => SubCommand::New {
            conn,
            flags: NewFlags::EMPTY,
        },
        (_, 1) => SubCommand::Close {
            conn,
            flags: ReservedFlags::EMPTY,
        },
        _ => SubCommand::New {
            conn: -1 - conn,
            flags: NewFlags::EMPTY,
        },
    }
}

/// What a read returned, in the terms of the oracle: an item, "nothing
/// yet", or the end (`clean` or a framing error's class).
enum Read1 {
    Item(Item),
    Pending,
    End(&'static str),
}

fn classify(r: Result<Incoming, ReadError>) -> Read1 {
    match r {
        Ok(Incoming::Frame(f)) => Read1::Item(Ok((f.conn, f.data.to_vec()))),
        Ok(Incoming::InvalidFrame(e)) => Read1::Item(Err(e.class())),
        Ok(Incoming::Pending) => Read1::Pending,
        Ok(Incoming::WorkerExited(None)) => Read1::End("clean"),
        Ok(Incoming::WorkerExited(Some(s))) => panic!("a bare link reported an exit status {s}"),
        Ok(Incoming::WorkerRestarted(r)) => panic!("a bare link is never supervised, got {r}"),
        Err(ReadError::Framing(e)) => Read1::End(e.class()),
        Err(ReadError::Io(e)) => panic!("the output injects no I/O error, got {e}"),
    }
}

fn side_rank(side: ReadSide) -> u8 {
    match side {
        ReadSide::Open => 0,
        ReadSide::Broken => 1,
        ReadSide::Ended => 2,
    }
}

/// Arbitrary worker output through a [`Link`], with `read`, `read_ahead`,
/// commands and flushes interleaved by the op bytes (cycled; `op % 8`:
/// 0–2 read, 3–4 read_ahead, 5 and 7 a command, 6 a flush that gives the
/// pipe `4 * (op >> 3)` bytes of room):
///
/// - `read` returns exactly the spec's items of the stream, in order
///   (which a one-shot `FrameDecoder` must agree with), then its end:
///   `WorkerExited` for a clean end, else the framing error; never more
///   items than the input has frames, so read-ahead never holds more;
/// - the end is sticky: every later `read` returns it again, and after a
///   framing error everything the worker wrote is consumed (discarded)
///   and the side ends at end-of-file;
/// - `read_ahead` says `Ended` exactly when the read side has ended, and
///   the side only moves forward (Open, Broken, Ended);
/// - every call returns, and the whole run takes a bounded number of calls;
/// - on the command side, `check_send` agrees with `send`, backpressure is
///   exactly the queue rule, and the pipe receives exactly the accepted
///   commands packed by hand, in order.
pub fn check_link_worker_output(input: &[u8]) {
    let (max_payload, schedule, ops, stream) = link_input(input);
    let (expected, expected_end) = spec_items(stream, max_payload);
    assert_eq!(
        one_shot_items(stream, max_payload),
        (expected.clone(), expected_end),
        "a one-shot FrameDecoder disagrees with the spec's reading"
    );

    let output = WorkerOutput {
        stream,
        schedule,
        next: 0,
        idle: 0,
    };
    let pipe = CommandPipe::default();
    let room = Rc::clone(&pipe.room);
    let mut link = Link::new(output, pipe, QUEUE_LIMIT, max_payload);
    let mut got: Vec<Item> = Vec::new();
    let mut end: Option<&'static str> = None;
    let mut sent_bytes = Vec::new();
    let mut side = ReadSide::Open;

    // The op list is played (cycled) for a while, then only reads until
    // the end. Every read that does not end the run returns an item or
    // consumes a schedule step, and the forced transfer bounds the steps
    // per byte: so the reads need at most `budget` calls.
    let budget = (WorkerOutput::MAX_IDLE + 2) * (stream.len() + expected.len() + 4) * 4;
    let mixed = 4 * (ops.len() + stream.len()) + 64;
    let mut calls = 0;
    while end.is_none() {
        let op = match ops.get(calls % ops.len().max(1)) {
            Some(&op) if calls < mixed => op,
            _ => 0, // a read
        };
        calls += 1;
        assert!(calls <= mixed + budget, "no end after {calls} calls");
        match op & 7 {
            0..=2 => match classify(link.read()) {
                Read1::Item(item) => {
                    assert!(
                        got.len() < expected.len(),
                        "read returned more items than the stream holds: {item:?}"
                    );
                    assert_eq!(
                        item,
                        expected[got.len()],
                        "item {} differs from the spec",
                        got.len()
                    );
                    got.push(item);
                }
                Read1::Pending => assert_ne!(link.read_side(), ReadSide::Ended, "Pending after the end"),
                Read1::End(e) => {
                    if e != "frame_too_large" {
                        // A clean end, or one inside a frame: end-of-file was
                        // read, so the side has ended, and says so at once.
                        assert_eq!(link.read_side(), ReadSide::Ended, "after the end ({e})");
                        assert!(link.output_ended(), "after the end ({e})");
                    }
                    end = Some(e);
                }
            },
            3 | 4 => {
                let ahead = link.read_ahead();
                assert_eq!(
                    ahead == ReadAhead::Ended,
                    link.read_side() == ReadSide::Ended,
                    "read_ahead said {ahead:?} with the side {:?}",
                    link.read_side()
                );
            }
            5 | 7 => {
                let cmd = command(op);
                let queued = link.queued_bytes();
                let check = link.check_send(&cmd);
                let before = (link.queued_bytes(), link.queued_commands());
                let sent = link.send(&cmd);
                assert_eq!(check, sent, "check_send and send disagree on {cmd:?}");
                let len = cmd.encoded_len();
                let expected_send = if cmd.validate().is_err() {
                    "invalid"
                } else if len > max_payload as usize {
                    "too_large"
                } else if queued > 0 && queued + HEADER_LEN + len > QUEUE_LIMIT {
                    "backpressure"
                } else {
                    "ok"
                };
                let outcome = match &sent {
                    Ok(()) => "ok",
                    Err(SendError::Invalid(_)) => "invalid",
                    Err(SendError::TooLarge(_)) => "too_large",
                    Err(SendError::Backpressure(_)) => "backpressure",
                    Err(e) => panic!("{cmd:?} refused with {e}"),
                };
                assert_eq!(outcome, expected_send, "{cmd:?} with {queued} bytes queued");
                if sent.is_ok() {
                    sent_bytes.extend(pack_frame(1, &pack_sub_command_value(&cmd)));
                } else {
                    assert_eq!((link.queued_bytes(), link.queued_commands()), before);
                }
            }
            _ => {
                // 6: the worker reads some commands.
                room.set(room.get().saturating_add(4 * usize::from(op >> 3)));
                link.flush().expect("the pipe never fails");
            }
        }
        let now = link.read_side();
        assert!(
            side_rank(now) >= side_rank(side),
            "the read side went back from {side:?} to {now:?}"
        );
        side = now;
        assert!(link.queued_bytes() <= QUEUE_LIMIT.max(HEADER_LEN + max_payload as usize));
    }

    let end = end.expect("the loop ends with the end");
    assert_eq!(got, expected, "read returned other items than the spec's");
    assert_eq!(end, expected_end, "the stream ended otherwise than the spec says");

    // The end is sticky; after a framing error the rest is discarded until
    // end-of-file ends the side.
    let mut again = 0;
    loop {
        match classify(link.read()) {
            Read1::End(e) => assert_eq!(e, end, "a later read gave another end"),
            Read1::Item(item) => panic!("an item after the end ({end}): {item:?}"),
            Read1::Pending => panic!("Pending after the end ({end})"),
        }
        if link.read_side() == ReadSide::Ended {
            break;
        }
        assert_eq!(link.read_side(), ReadSide::Broken);
        again += 1;
        assert!(again <= budget, "discarding never reaches end-of-file");
    }
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert!(link.output_ended(), "the output ended, the link does not know");
    assert_eq!(
        link.reader().stream.len(),
        0,
        "bytes of the worker were never read"
    );
    if end == "clean" {
        assert!(!link.has_buffered(), "bytes or items held after a clean end");
    }

    // The command side: everything accepted reaches the pipe, in order.
    room.set(usize::MAX);
    assert_eq!(link.flush().expect("the pipe never fails"), FlushStatus::Flushed);
    assert_eq!(
        link.writer().got,
        sent_bytes,
        "the pipe got other bytes than the accepted commands"
    );
    link.close_write().expect("nothing is queued");
    assert!(link.writer().closed);
    let new = SubCommand::New {
        conn: 1,
        flags: NewFlags::EMPTY,
    };
    if new.encoded_len() <= max_payload as usize {
        assert_eq!(link.send(&new), Err(SendError::WriteClosed));
    } else {
        // PROTOCOL.md#maximum-payload: refused as too large whatever the state.
        assert!(matches!(link.send(&new), Err(SendError::TooLarge(_))));
    }
}
