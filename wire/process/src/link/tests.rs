//! The rules of the link core, tested without a process or an fd: the
//! worker's output is a [`Output`] script (chunks, `WouldBlock`,
//! `Interrupted`, errors, end-of-file) that a test can extend while the link
//! holds it, and the command pipe is a [`Pipe`] (at most N bytes a call,
//! `WouldBlock`, `BrokenPipe`, `ConnectionReset`) that records what it got.
//!
//! Expected bytes come from the codec (`Frame::from_message` and
//! `Frame::encode`), never from the link; expected admission decisions come
//! from the rule written out in [`admission`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

use broadcast_wire::{
    BcastFlags, BroadcastFrame, Frame, FramingError, HEADER_LEN, Message, NewFlags, OversizeFrame,
    PayloadError, ReadError, ReservedFlags, SubCommand, strategies,
};
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

// ---- the worker's output --------------------------------------------------

/// One `read` call of the worker's output.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    /// These bytes: a call takes as many as fit, the rest comes next.
    Bytes(Vec<u8>),
    WouldBlock,
    Interrupted,
    /// End-of-file, on this call and every later one.
    Eof,
    /// An error of this kind, once.
    Fail(io::ErrorKind),
}

/// The worker's output, shared with the test so that the "worker" can
/// write more while the link holds the reader. An exhausted script is
/// `WouldBlock`: a live worker with nothing to say.
#[derive(Debug, Clone, Default)]
struct Output(Rc<RefCell<OutputState>>);

#[derive(Debug, Default)]
struct OutputState {
    script: VecDeque<Out>,
    calls: usize,
}

impl Output {
    fn new(script: impl IntoIterator<Item = Out>) -> Output {
        let out = Output::default();
        out.0.borrow_mut().script.extend(script);
        out
    }

    /// The worker writes more.
    fn push(&self, step: Out) {
        self.0.borrow_mut().script.push_back(step);
    }

    /// Bytes the worker wrote that nobody has read yet.
    fn remaining(&self) -> usize {
        let state = self.0.borrow();
        state
            .script
            .iter()
            .map(|s| match s {
                Out::Bytes(b) => b.len(),
                _ => 0,
            })
            .sum()
    }

    /// `read` calls so far.
    fn calls(&self) -> usize {
        self.0.borrow().calls
    }
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        state.calls += 1;
        match state.script.pop_front() {
            None | Some(Out::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Some(Out::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(Out::Fail(kind)) => Err(kind.into()),
            Some(Out::Eof) => {
                state.script.push_front(Out::Eof);
                Ok(0)
            }
            Some(Out::Bytes(mut bytes)) => {
                if bytes.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                if n < bytes.len() {
                    state.script.push_front(Out::Bytes(bytes.split_off(n)));
                }
                Ok(n)
            }
        }
    }
}

// ---- the command pipe -----------------------------------------------------

/// One `write` call of the command pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    /// Take at most this many bytes (at least 1).
    Take(usize),
    WouldBlock,
    Interrupted,
    /// Fail with this kind; `BrokenPipe` and `ConnectionReset` then stay.
    Fail(io::ErrorKind),
}

/// The command pipe: plays its script, then takes at most `per_call` bytes
/// a call (0: `WouldBlock` forever). Records every byte and every `close`.
#[derive(Debug, Default)]
struct Pipe {
    script: VecDeque<In>,
    per_call: usize,
    written: Vec<u8>,
    gone: Option<io::ErrorKind>,
    closes: usize,
}

impl Pipe {
    fn taking(per_call: usize) -> Pipe {
        Pipe {
            per_call,
            ..Pipe::default()
        }
    }

    fn scripted(script: impl IntoIterator<Item = In>, per_call: usize) -> Pipe {
        Pipe {
            script: script.into_iter().collect(),
            per_call,
            ..Pipe::default()
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.gone {
            return Err(kind.into());
        }
        let step = self.script.pop_front().unwrap_or(match self.per_call {
            0 => In::WouldBlock,
            n => In::Take(n),
        });
        match step {
            In::Take(n) => {
                let n = n.max(1).min(buf.len());
                self.written.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            In::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            In::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            In::Fail(kind) => {
                if matches!(kind, io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
                    self.gone = Some(kind);
                }
                Err(kind.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Outlet for Pipe {
    fn close(&mut self) {
        self.closes += 1;
    }
}

type TestLink = Link<Output, Pipe>;

// ---- expectations, from the codec -----------------------------------------

/// `msg` framed on its channel, by the codec.
fn framed<M: Message>(msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    Frame::from_message(msg).encode(&mut out);
    out
}

fn new_cmd(conn: i32) -> SubCommand {
    SubCommand::New {
        conn,
        flags: NewFlags::EMPTY,
    }
}

/// A Bcast of `event_len` bytes: 19 + `event_len` bytes framed.
fn bcast(event_len: usize) -> SubCommand {
    SubCommand::Bcast {
        sender: -1,
        flags: BcastFlags::EMPTY,
        event: vec![b'e'; event_len].into(),
    }
}

fn frame(conn: i32, data: &str) -> BroadcastFrame {
    BroadcastFrame {
        conn,
        data: data.as_bytes().to_vec().into(),
    }
}

/// A frame header by hand (PROTOCOL.md#frame-layout).
fn header(chan: u8, len: u32) -> Vec<u8> {
    let mut h = vec![chan];
    h.extend_from_slice(&len.to_le_bytes());
    h
}

/// What the queue must say to `cmd`, for a queue holding `queued` bytes:
/// PROTOCOL.md#maximum-payload, then backpressure when
/// `queued > 0 && queued + needed > limit` (validity and state are checked
/// by the callers that need them).
fn admission(cmd: &SubCommand, queued: usize, limit: usize, max_payload: u32) -> Result<(), SendError> {
    let len = cmd.encoded_len();
    if len > max_payload as usize {
        return Err(SendError::TooLarge(OversizeFrame {
            len,
            max: max_payload,
        }));
    }
    let needed = HEADER_LEN + len;
    if queued > 0 && queued + needed > limit {
        return Err(SendError::Backpressure(Backpressure {
            queued,
            needed,
            limit,
        }));
    }
    Ok(())
}

/// Everything a refused command must leave as it was.
fn outbound_state(link: &TestLink) -> (usize, usize, u64, usize) {
    (
        link.queued_bytes(),
        link.queued_commands(),
        link.sent_commands(),
        link.writer().written.len(),
    )
}

/// `send`, asserting that `check_send` agreed and that a refusal queued
/// nothing.
fn send(link: &mut TestLink, cmd: &SubCommand) -> Result<(), SendError> {
    let check = link.check_send(cmd);
    let before = outbound_state(link);
    let sent = link.send(cmd);
    assert_eq!(check, sent, "check_send and send disagree on {cmd:?}");
    if sent.is_err() {
        assert_eq!(
            outbound_state(link),
            before,
            "a refused {cmd:?} changed the queue"
        );
    }
    sent
}

fn is_framing(r: &Result<Incoming, ReadError>, expected: FramingError) -> bool {
    matches!(r, Err(ReadError::Framing(e)) if *e == expected)
}

// ---- admission ------------------------------------------------------------

#[test]
fn the_codec_frames_a_new_as_the_spec_lays_it_out() {
    // The oracle the byte checks below rely on, checked once by hand.
    let bytes = framed(&new_cmd(0x0102_0304));
    assert_eq!(bytes.len(), 19);
    assert_eq!(bytes[..5], header(1, 14)[..]);
    assert_eq!(framed(&bcast(7)).len(), 19 + 7);
}

#[test]
fn backpressure_exactly_when_a_non_empty_queue_would_pass_the_limit() {
    let cmd = new_cmd(3); // 19 bytes framed
    for limit in 0..80 {
        // A pipe that takes nothing: every accepted command stays queued.
        let mut link = Link::new(Output::default(), Pipe::taking(0), limit, 1 << 20);
        for _ in 0..6 {
            let queued = link.queued_bytes();
            let expected = admission(&cmd, queued, limit, 1 << 20);
            assert_eq!(send(&mut link, &cmd), expected, "limit {limit}, queued {queued}");
            if let Err(SendError::Backpressure(b)) = expected {
                assert_eq!((b.queued, b.needed, b.limit), (queued, 19, limit));
                assert!(SendError::Backpressure(b).is_retryable());
            }
        }
        // The queue holds max(1, limit / 19) commands, and never more bytes
        // than max(limit, one command).
        assert_eq!(link.queued_commands(), (limit / 19).clamp(1, 6), "limit {limit}");
        assert!(link.queued_bytes() <= limit.max(19));
    }
}

#[test]
fn backpressure_counts_the_unwritten_rest_of_a_partly_written_command() {
    // 7 bytes of the first New go out, then the pipe is full; later 12 more.
    let pipe = Pipe::scripted([In::Take(7), In::WouldBlock, In::Take(12)], 0);
    let mut link = Link::new(Output::default(), pipe, 40, 1 << 20);
    send(&mut link, &new_cmd(1)).unwrap();
    send(&mut link, &new_cmd(2)).unwrap();
    assert_eq!(link.flush().unwrap(), FlushStatus::WouldBlock);
    assert_eq!((link.queued_bytes(), link.queued_commands()), (38 - 7, 2));
    // 31 + 19 > 40: the bytes still queued count, not the commands.
    assert_eq!(
        send(&mut link, &new_cmd(3)),
        Err(SendError::Backpressure(Backpressure {
            queued: 31,
            needed: 19,
            limit: 40
        }))
    );
    // The first New is out: 19 + 19 <= 40.
    assert_eq!(link.flush().unwrap(), FlushStatus::WouldBlock);
    assert_eq!((link.queued_bytes(), link.sent_commands()), (19, 1));
    assert_eq!(send(&mut link, &new_cmd(3)), Ok(()));
    assert_eq!(link.queued_bytes(), 38);
}

#[test]
fn an_empty_queue_takes_any_command_up_to_the_payload_maximum() {
    let max = 300u32;
    // A limit far below one command: only an empty queue takes one.
    let mut link = Link::new(Output::default(), Pipe::taking(0), 1, max);
    let largest = bcast(max as usize - 14);
    assert_eq!(largest.encoded_len(), max as usize);
    let over = bcast(max as usize - 13);
    let too_large = Err(SendError::TooLarge(OversizeFrame {
        len: max as usize + 1,
        max,
    }));
    assert_eq!(send(&mut link, &over), too_large);
    assert_eq!(send(&mut link, &largest), Ok(()));
    assert_eq!(link.queued_bytes(), HEADER_LEN + max as usize);
    assert!(matches!(
        send(&mut link, &new_cmd(1)),
        Err(SendError::Backpressure(_))
    ));
    assert_eq!(
        send(&mut link, &over),
        too_large,
        "TooLarge comes before Backpressure"
    );
}

#[test]
fn invalid_and_too_large_are_refused_before_any_state() {
    let invalid = SubCommand::New {
        conn: -1,
        flags: NewFlags::EMPTY,
    };
    // Invalid *and* too large: validation comes first.
    let invalid_and_large = SubCommand::Bcast {
        sender: -2,
        flags: BcastFlags::EMPTY,
        event: vec![b'x'; 500].into(),
    };
    let large = bcast(500);
    let check = |link: &mut TestLink, state: &str| {
        assert!(
            matches!(
                send(link, &invalid),
                Err(SendError::Invalid(PayloadError::InvalidConn { conn: -1, min: 0 }))
            ),
            "{state}"
        );
        assert!(
            matches!(send(link, &invalid_and_large), Err(SendError::Invalid(_))),
            "{state}"
        );
        assert!(
            matches!(send(link, &large), Err(SendError::TooLarge(_))),
            "{state}"
        );
    };

    // A full queue.
    let mut link = Link::new(Output::default(), Pipe::taking(0), 19, 100);
    send(&mut link, &new_cmd(1)).unwrap();
    check(&mut link, "full");
    // A worker gone.
    let mut link = Link::new(
        Output::default(),
        Pipe::scripted([In::Fail(io::ErrorKind::BrokenPipe)], 0),
        64,
        100,
    );
    send(&mut link, &new_cmd(1)).unwrap();
    assert!(link.flush().is_err());
    check(&mut link, "gone");
    // A closed stream.
    let mut link = Link::new(Output::default(), Pipe::taking(0), 64, 100);
    link.close_write().unwrap();
    check(&mut link, "closed");
}

#[test]
fn a_write_that_meets_broken_pipe_or_reset_makes_the_worker_gone() {
    for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset] {
        let mut link = Link::new(Output::default(), Pipe::scripted([In::Fail(kind)], 0), 1024, 1024);
        send(&mut link, &new_cmd(1)).unwrap();
        send(&mut link, &new_cmd(2)).unwrap();
        assert!(!link.is_write_gone());
        let gone = |r: Result<FlushStatus, FlushError>| match r {
            Err(FlushError::WorkerGone {
                unsent_commands,
                unsent_bytes,
            }) => (unsent_commands, unsent_bytes),
            other => panic!("{kind:?}: expected WorkerGone, got {other:?}"),
        };
        assert_eq!(gone(link.flush()), (2, 38));
        assert!(link.is_write_gone() && !link.is_write_closed());
        // Every later flush says the same, and nothing more is queued.
        assert_eq!(gone(link.flush()), (2, 38));
        assert_eq!(send(&mut link, &new_cmd(3)), Err(SendError::WorkerGone));
        assert!(!SendError::WorkerGone.is_retryable());
        assert_eq!((link.queued_commands(), link.sent_commands()), (2, 0));
        // Nothing left that a flush could write: no more write interest, and
        // the stream can be closed with the dead commands still counted.
        assert!(!link.wants_write());
        assert_eq!(link.close_write(), Ok(()));
        assert_eq!(link.writer().closes, 1);
        assert_eq!(link.queued_commands(), 2);
    }
}

#[test]
fn another_write_error_keeps_the_queue_and_the_worker() {
    let pipe = Pipe::scripted([In::Take(4), In::Fail(io::ErrorKind::Other)], 1000);
    let mut link = Link::new(Output::default(), pipe, 1024, 1024);
    send(&mut link, &new_cmd(1)).unwrap();
    assert!(matches!(link.flush(), Err(FlushError::Io(e)) if e.kind() == io::ErrorKind::Other));
    assert!(!link.is_write_gone());
    assert_eq!(link.queued_bytes(), 15);
    assert_eq!(link.flush().unwrap(), FlushStatus::Flushed);
    assert_eq!(link.writer().written, framed(&new_cmd(1)));
}

#[test]
fn close_write_is_refused_while_commands_are_queued() {
    let mut link = Link::new(Output::default(), Pipe::taking(0), 1024, 1024);
    send(&mut link, &new_cmd(1)).unwrap();
    assert_eq!(link.close_write(), Err(Unflushed { queued_bytes: 19 }));
    assert_eq!((link.writer().closes, link.is_write_closed()), (0, false));
    // Still open: it takes commands.
    send(&mut link, &new_cmd(2)).unwrap();
    assert_eq!(link.queued_commands(), 2);
}

#[test]
fn close_write_closes_once_and_refuses_later_commands() {
    let mut link = Link::new(Output::default(), Pipe::taking(5), 1024, 1024);
    send(&mut link, &new_cmd(1)).unwrap();
    assert_eq!(link.flush().unwrap(), FlushStatus::Flushed);
    link.close_write().unwrap();
    assert_eq!(link.writer().closes, 1);
    assert!(link.is_write_closed() && !link.is_write_gone());
    assert_eq!(send(&mut link, &new_cmd(2)), Err(SendError::WriteClosed));
    assert!(!SendError::WriteClosed.is_retryable());
    // Closing again is harmless and does not close twice.
    link.close_write().unwrap();
    assert_eq!(link.writer().closes, 1);
    assert_eq!(link.flush().unwrap(), FlushStatus::Flushed);
    assert!(!link.wants_write());
}

// ---- partial writes -------------------------------------------------------

#[test]
fn partial_writes_deliver_exactly_the_encoded_frames() {
    // Three bytes a call, with WouldBlock and Interrupted between, over
    // commands short and long (a long Bcast goes out by handle, vectored).
    let mut script = Vec::new();
    for i in 0..400 {
        script.push(In::Take(3));
        script.push(match i % 3 {
            0 => In::WouldBlock,
            1 => In::Interrupted,
            _ => In::Take(1),
        });
    }
    let pipe = Pipe::scripted(script, 3);
    let mut link = Link::new(Output::default(), pipe, 1 << 20, 1 << 20);
    let cmds = [
        new_cmd(5),
        bcast(2000),
        SubCommand::Close {
            conn: 5,
            flags: ReservedFlags::EMPTY,
        },
        bcast(3),
        SubCommand::Auth {
            conn: 9,
            flags: ReservedFlags::EMPTY,
            pubkey: [7; 32],
        },
    ];
    let mut expected = Vec::new();
    let mut ends = Vec::new();
    for cmd in &cmds {
        send(&mut link, cmd).unwrap();
        expected.extend(framed(cmd));
        ends.push(expected.len());
    }
    let mut would_blocks = 0;
    loop {
        let status = link.flush().unwrap();
        let written = &link.writer().written;
        assert_eq!(written[..], expected[..written.len()]);
        let complete = ends.iter().filter(|&&end| end <= written.len()).count();
        assert_eq!(
            link.sent_commands(),
            complete as u64,
            "at {} bytes",
            written.len()
        );
        assert_eq!(link.queued_commands(), cmds.len() - complete);
        assert_eq!(link.queued_bytes(), expected.len() - written.len());
        match status {
            FlushStatus::Flushed => break,
            FlushStatus::WouldBlock => would_blocks += 1,
        }
        assert!(would_blocks < 10_000, "flush makes no progress");
    }
    assert!(would_blocks > 100, "the script did block");
    assert_eq!(link.writer().written, expected);
    assert_eq!(link.sent_commands(), cmds.len() as u64);
    assert!(!link.wants_write());
}

#[test]
fn worker_gone_counts_a_partly_written_command_as_unsent() {
    for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset] {
        // The first New and 5 bytes of the Bcast get through.
        let pipe = Pipe::scripted([In::Take(10), In::Take(9), In::Take(5), In::Fail(kind)], 0);
        let mut link = Link::new(Output::default(), pipe, 1 << 20, 1 << 20);
        let cmds = [new_cmd(1), bcast(100), new_cmd(2)];
        let mut total = 0;
        for cmd in &cmds {
            send(&mut link, cmd).unwrap();
            total += framed(cmd).len();
        }
        match link.flush() {
            Err(FlushError::WorkerGone {
                unsent_commands,
                unsent_bytes,
            }) => {
                assert_eq!(unsent_commands, 2, "{kind:?}");
                assert_eq!(unsent_bytes, total - 24, "{kind:?}");
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        assert_eq!(link.sent_commands(), 1);
        let written = &link.writer().written;
        assert_eq!(
            written[..],
            [framed(&cmds[0]), framed(&cmds[1])[..5].to_vec()].concat()[..]
        );
    }
}

// ---- reading --------------------------------------------------------------

#[test]
fn frames_then_worker_exited_on_every_later_call() {
    let (a, b) = (frame(1, "a"), frame(2, "bb"));
    let out = Output::new([Out::Bytes([framed(&a), framed(&b)].concat()), Out::Eof]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert_eq!(link.read().unwrap(), Incoming::Frame(a));
    assert_eq!(link.read().unwrap(), Incoming::Frame(b));
    for _ in 0..3 {
        assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
        assert_eq!(link.read_side(), ReadSide::Ended);
        assert!(link.output_ended());
        assert_eq!(link.read_ahead(), ReadAhead::Ended);
    }
    assert!(!link.has_buffered());
}

#[test]
fn an_undecodable_payload_is_reported_and_the_stream_goes_on() {
    let bad = BroadcastFrame {
        conn: -5,
        data: "x".into(),
    };
    let mut truncated = header(2, 3);
    truncated.extend_from_slice(&[1, 0, 0]);
    let good = frame(4, "ok");
    let out = Output::new([
        Out::Bytes([framed(&bad), truncated, framed(&good)].concat()),
        Out::Eof,
    ]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert_eq!(
        link.read().unwrap(),
        Incoming::InvalidFrame(PayloadError::InvalidConn { conn: -5, min: 0 })
    );
    assert!(matches!(link.read().unwrap(), Incoming::InvalidFrame(e) if e.class() == "truncated"));
    assert_eq!(link.read().unwrap(), Incoming::Frame(good));
    assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
    assert_eq!(link.read_side(), ReadSide::Ended);
}

#[test]
fn would_block_is_pending_and_keeps_the_partial_frame() {
    let f = frame(3, "hello");
    let bytes = framed(&f);
    let out = Output::new([
        Out::Bytes(bytes[..3].to_vec()),
        Out::WouldBlock,
        Out::Interrupted,
        Out::Bytes(bytes[3..9].to_vec()),
        Out::WouldBlock,
    ]);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 1024);
    assert_eq!(link.read().unwrap(), Incoming::Pending);
    assert_eq!(link.inbound_buffered(), 3);
    // A partial frame waits for bytes that readiness will announce.
    assert!(!link.has_buffered());
    assert_eq!(link.read().unwrap(), Incoming::Pending);
    assert_eq!(link.inbound_buffered(), 9);
    assert_eq!(link.read_side(), ReadSide::Open);
    out.push(Out::Bytes(bytes[9..].to_vec()));
    assert_eq!(link.read().unwrap(), Incoming::Frame(f));
    assert!(!link.has_buffered());
    // Nothing more, and the worker still there.
    assert_eq!(link.read().unwrap(), Incoming::Pending);
    assert!(!link.output_ended());
}

#[test]
fn heartbeats_and_other_channels_are_skipped() {
    let f = frame(8, "x");
    let stream = [
        header(2, 0),                              // heartbeat on the worker's channel
        header(1, 0),                              // heartbeat on the parent's channel
        framed(&new_cmd(1)),                       // a command, echoed back on channel 1
        [header(7, 2), vec![0xff, 0xfe]].concat(), // an unknown channel
        header(0, 0),
        framed(&f),
    ]
    .concat();
    let out = Output::new([Out::Bytes(stream), Out::Eof]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert_eq!(link.read().unwrap(), Incoming::Frame(f));
    assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
}

#[test]
fn the_end_of_the_output_inside_a_frame_is_a_sticky_framing_error() {
    let f = frame(1, "a");
    let out = Output::new([
        Out::Bytes([framed(&f), header(2, 9), vec![1, 2]].concat()),
        Out::Eof,
    ]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert_eq!(link.read().unwrap(), Incoming::Frame(f));
    let truncated = FramingError::TruncatedStream { buffered: 7 };
    for _ in 0..3 {
        assert!(is_framing(&link.read(), truncated));
        // The output did end: nothing to wait for.
        assert_eq!(link.read_side(), ReadSide::Ended);
        assert!(link.output_ended());
        assert_eq!(link.read_ahead(), ReadAhead::Ended);
    }
}

#[test]
fn an_io_error_ends_the_read_side() {
    let f = frame(1, "a");
    // Through read.
    let out = Output::new([Out::Fail(io::ErrorKind::Other)]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert!(matches!(link.read(), Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::Other));
    assert_eq!(link.read_side(), ReadSide::Ended);
    assert!(!link.output_ended(), "an error is not end-of-file");
    assert_eq!(link.read_ahead(), ReadAhead::Ended);

    // Through read_ahead: stashed after the frame before it.
    let out = Output::new([
        Out::Bytes(framed(&f)),
        Out::Fail(io::ErrorKind::ConnectionReset),
        Out::Bytes(framed(&f)),
    ]);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 1024);
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert_eq!(link.read_side(), ReadSide::Ended);
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    let calls = out.calls();
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert_eq!(out.calls(), calls, "an ended side is not read ahead");
    assert_eq!(link.read().unwrap(), Incoming::Frame(f));
    assert!(matches!(link.read(), Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset));
}

// ---- the read-ahead policy ------------------------------------------------

#[test]
fn read_ahead_takes_at_most_max_frames_per_pass() {
    // One frame per read call, MAX + 10 of them, then nothing for now.
    let frames: Vec<BroadcastFrame> = (0..MAX_FRAMES_PER_PASS + 10)
        .map(|i| frame(i as i32, "d"))
        .collect();
    let out = Output::new(frames.iter().map(|f| Out::Bytes(framed(f))));
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 1024);
    assert_eq!(link.read_ahead(), ReadAhead::Limit);
    assert_eq!(out.calls(), MAX_FRAMES_PER_PASS, "one read per frame, no more");
    assert!(link.has_buffered());
    // The stash comes back in order, without touching the reader.
    for f in &frames[..MAX_FRAMES_PER_PASS] {
        assert_eq!(link.read().unwrap(), Incoming::Frame(f.clone()));
    }
    assert_eq!(
        out.calls(),
        MAX_FRAMES_PER_PASS,
        "the stash held exactly one pass"
    );
    // The rest: a pass that stops at WouldBlock.
    assert_eq!(link.read_ahead(), ReadAhead::WouldBlock);
    assert_eq!(out.remaining(), 0);
    for f in &frames[MAX_FRAMES_PER_PASS..] {
        assert_eq!(link.read().unwrap(), Incoming::Frame(f.clone()));
    }
    assert_eq!(link.read().unwrap(), Incoming::Pending);
    assert!(!link.has_buffered());
}

#[test]
fn stashed_items_come_back_before_new_ones() {
    let (a, b, c) = (frame(1, "a"), frame(2, "b"), frame(3, "c"));
    let invalid = BroadcastFrame {
        conn: 1,
        data: bytes::Bytes::new(),
    };
    let out = Output::new([Out::Bytes([framed(&a), framed(&invalid), framed(&b)].concat())]);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 1024);
    assert_eq!(link.read_ahead(), ReadAhead::WouldBlock);
    assert_eq!(link.read_side(), ReadSide::Open);
    out.push(Out::Bytes(framed(&c)));
    out.push(Out::Eof);
    assert_eq!(link.read().unwrap(), Incoming::Frame(a));
    assert!(matches!(link.read().unwrap(), Incoming::InvalidFrame(_)));
    assert_eq!(link.read().unwrap(), Incoming::Frame(b));
    assert_eq!(link.read().unwrap(), Incoming::Frame(c));
    assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
}

#[test]
fn read_ahead_to_the_end_leaves_the_end_for_read() {
    let a = frame(1, "a");
    let out = Output::new([Out::Bytes(framed(&a)), Out::Eof]);
    let mut link = Link::new(out, Pipe::default(), 64, 1024);
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert!(link.output_ended());
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert_eq!(link.read().unwrap(), Incoming::Frame(a));
    assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
    assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
}

/// 16 KiB of what a worker writes after breaking the framing.
fn junk() -> Out {
    Out::Bytes(vec![0xab; 16 * 1024])
}

#[test]
fn after_a_framing_error_the_output_is_discarded_and_the_error_is_sticky() {
    let (a, b) = (frame(1, "a"), frame(2, "b"));
    let oversize = FramingError::FrameTooLarge { len: 200, max: 64 };
    // Two frames, a header over the maximum, then 70 reads' worth of junk.
    let mut script = vec![
        Out::Bytes(framed(&a)),
        Out::Bytes([framed(&b), header(2, 200)].concat()),
    ];
    script.extend((0..70).map(|_| junk()));
    let out = Output::new(script);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 64);

    // One pass: the frames and the error stashed, then 64 reads discarded.
    assert_eq!(link.read_ahead(), ReadAhead::Limit);
    assert_eq!(link.read_side(), ReadSide::Broken);
    assert_eq!(out.remaining(), 6 * 16 * 1024);
    assert_eq!(link.read_ahead(), ReadAhead::WouldBlock);
    assert_eq!(out.remaining(), 0);

    // read: the frames, then the error, in order.
    assert_eq!(link.read().unwrap(), Incoming::Frame(a));
    assert_eq!(link.read().unwrap(), Incoming::Frame(b));
    assert!(is_framing(&link.read(), oversize));

    // The worker goes on writing: read discards it too, and errors again.
    for _ in 0..3 {
        out.push(junk());
        out.push(Out::Bytes(framed(&frame(3, "never a frame again"))));
    }
    assert!(is_framing(&link.read(), oversize));
    assert_eq!(out.remaining(), 0, "read discarded what the worker wrote");
    assert_eq!(link.read_side(), ReadSide::Broken);

    // And so does read_ahead.
    out.push(junk());
    assert_eq!(link.read_ahead(), ReadAhead::WouldBlock);
    assert_eq!(out.remaining(), 0);
    assert!(is_framing(&link.read(), oversize));

    // End-of-file while discarding ends the side; the error stays.
    out.push(junk());
    out.push(Out::Eof);
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert_eq!(link.read_side(), ReadSide::Ended);
    assert!(link.output_ended());
    for _ in 0..3 {
        assert!(is_framing(&link.read(), oversize));
        assert_eq!(link.read_ahead(), ReadAhead::Ended);
    }
}

#[test]
fn a_framing_error_met_by_read_is_sticky_and_eof_while_discarding_ends_the_side() {
    let oversize = FramingError::FrameTooLarge { len: 65, max: 64 };
    let out = Output::new([Out::Bytes(header(2, 65)), junk(), Out::Interrupted, junk()]);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 64);
    assert!(is_framing(&link.read(), oversize));
    assert_eq!(link.read_side(), ReadSide::Broken);
    // The next read discards the junk (an Interrupted is retried).
    assert!(is_framing(&link.read(), oversize));
    assert_eq!(out.remaining(), 0);
    assert!(!link.output_ended());
    out.push(junk());
    out.push(Out::Eof);
    assert!(is_framing(&link.read(), oversize));
    assert_eq!(link.read_side(), ReadSide::Ended);
    assert!(link.output_ended());
    assert!(is_framing(&link.read(), oversize));
}

#[test]
fn an_io_error_while_discarding_ends_the_side() {
    let out = Output::new([Out::Bytes(header(2, 65)), junk(), Out::Fail(io::ErrorKind::Other)]);
    let mut link = Link::new(out.clone(), Pipe::default(), 64, 64);
    assert_eq!(link.read_ahead(), ReadAhead::Ended);
    assert_eq!(link.read_side(), ReadSide::Ended);
    assert!(!link.output_ended());
    assert!(matches!(link.read(), Err(ReadError::Framing(_))));
    assert!(matches!(link.read(), Err(ReadError::Framing(_))));
}

// ---- properties -----------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Send(SubCommand),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => strategies::sub_command().prop_map(Op::Send),
        1 => Just(Op::Flush),
    ]
}

fn write_step() -> impl Strategy<Value = In> {
    prop_oneof![
        4 => (1usize..64).prop_map(In::Take),
        1 => (64usize..4096).prop_map(In::Take),
        2 => Just(In::WouldBlock),
        1 => Just(In::Interrupted),
    ]
}

proptest! {
    /// (a) Any commands, any partial writes: flushing until `Flushed`
    /// writes exactly the concatenated encodings of the accepted commands,
    /// in order; every decision is the admission rule's; the counters
    /// follow the bytes; the queue never holds more than
    /// max(limit, one command).
    #[test]
    fn flushing_writes_exactly_the_accepted_commands(
        ops in vec(op(), 0..40),
        writes in vec(write_step(), 0..60),
        limit in prop_oneof![0usize..64, 64usize..8192],
        max_payload in prop_oneof![Just(1u32 << 20), 0u32..700],
    ) {
        let mut link = Link::new(Output::default(), Pipe::scripted(writes, usize::MAX), limit, max_payload);
        let mut expected = Vec::new();
        let mut ends = Vec::new();
        let mut largest = 0;
        for op in &ops {
            match op {
                Op::Send(cmd) => {
                    let queued = expected.len() - link.writer().written.len();
                    let decision = admission(cmd, queued, limit, max_payload);
                    let accepted = decision.is_ok();
                    prop_assert_eq!(send(&mut link, cmd), decision);
                    if accepted {
                        expected.extend(framed(cmd));
                        ends.push(expected.len());
                        largest = largest.max(HEADER_LEN + cmd.encoded_len());
                    }
                }
                Op::Flush => {
                    if link.flush().unwrap() == FlushStatus::Flushed {
                        prop_assert_eq!(link.queued_bytes(), 0);
                    }
                }
            }
            let written = &link.writer().written;
            prop_assert!(expected.starts_with(written));
            let complete = ends.iter().filter(|&&end| end <= written.len()).count();
            prop_assert_eq!(link.sent_commands(), complete as u64);
            prop_assert_eq!(link.queued_commands(), ends.len() - complete);
            prop_assert_eq!(link.queued_bytes(), expected.len() - written.len());
            prop_assert!(link.queued_bytes() <= limit.max(largest));
        }
        let mut calls = 0;
        while link.flush().unwrap() != FlushStatus::Flushed {
            calls += 1;
            prop_assert!(calls <= 64, "flush makes no progress");
        }
        prop_assert_eq!(&link.writer().written, &expected);
        prop_assert_eq!(link.sent_commands(), ends.len() as u64);
        prop_assert_eq!(link.queued_commands(), 0);
    }
}

/// One piece of a worker's output in property (b).
#[derive(Debug, Clone)]
enum Piece {
    Frame(BroadcastFrame),
    /// Skipped by the receive rules: a heartbeat or another channel.
    Skipped(Frame),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => strategies::broadcast_frame().prop_map(Piece::Frame),
        1 => strategies::raw_frame(16)
            .prop_filter("skipped frames only", |f| f.chan != 2 || f.payload.is_empty())
            .prop_map(Piece::Skipped),
    ]
}

/// A pause between two chunks of the output.
fn pause() -> impl Strategy<Value = Option<Out>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(Out::WouldBlock)),
        1 => Just(Some(Out::Interrupted)),
    ]
}

proptest! {
    /// (b) Valid frames (and skipped ones) split into any chunks with
    /// `WouldBlock`s and `Interrupted`s between them, read by any mix of
    /// `read` and `read_ahead`: exactly the frames, in order, then
    /// `WorkerExited`, again and again.
    #[test]
    fn any_mix_of_read_and_read_ahead_yields_the_frames_in_order(
        pieces in vec(piece(), 0..24),
        chunks in vec((1usize..300, pause()), 1..16),
        ahead in vec(any::<bool>(), 1..16),
    ) {
        let mut stream = Vec::new();
        let mut frames = Vec::new();
        for p in &pieces {
            match p {
                Piece::Frame(f) => {
                    stream.extend(framed(f));
                    frames.push(f.clone());
                }
                Piece::Skipped(f) => f.encode(&mut stream),
            }
        }
        let mut script = Vec::new();
        let mut rest = &stream[..];
        let mut would_blocks = 0;
        for i in 0.. {
            if rest.is_empty() {
                break;
            }
            let (size, pause) = &chunks[i % chunks.len()];
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            script.push(Out::Bytes(chunk.to_vec()));
            rest = tail;
            if let Some(p) = pause {
                would_blocks += usize::from(*p == Out::WouldBlock);
                script.push(p.clone());
            }
        }
        script.push(Out::Eof);
        let steps = script.len();
        let mut link = Link::new(Output::new(script), Pipe::default(), 64, 1 << 20);

        let mut got = Vec::new();
        let mut pendings = 0;
        let mut ahead_ended = false;
        for i in 0.. {
            prop_assert!(i <= 2 * (steps + frames.len()) + 4, "no end after {} calls", i);
            if ahead[i % ahead.len()] && !ahead_ended {
                ahead_ended = link.read_ahead() == ReadAhead::Ended;
                continue;
            }
            match link.read().unwrap() {
                Incoming::Frame(f) => got.push(f),
                Incoming::Pending => pendings += 1,
                Incoming::WorkerExited(None) => break,
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert!(pendings <= would_blocks);
        prop_assert_eq!(link.read().unwrap(), Incoming::WorkerExited(None));
        prop_assert_eq!(link.read_ahead(), ReadAhead::Ended);
        prop_assert!(link.output_ended() && !link.has_buffered());
    }
}

#[cfg(unix)]
mod sharded {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::broadcaster::sharded::{ShardRouter, ShardState};

    /// One shard's link before the Bcast: its queue limit, what is already
    /// queued (event lengths), whether its worker is gone, whether the
    /// router already has it down.
    fn shard() -> impl Strategy<Value = (usize, Vec<usize>, bool, bool)> {
        (
            0usize..400,
            vec(1usize..120, 0..4),
            any::<bool>(),
            prop::bool::weighted(0.15),
        )
    }

    proptest! {
        /// (c) All-or-none Bcast admission over K links: `admit_all` with
        /// each link's `check_send`, then `send` on every live shard,
        /// queues the Bcast on every live link or on none, never on a link
        /// whose worker is gone; when it says `Ok`, every send succeeds,
        /// and it says `Ok` exactly when the admission rule admits it on
        /// every live link that is not gone.
        #[test]
        fn a_bcast_is_queued_on_every_live_link_or_on_none(
            shards in vec(shard(), 1..4),
            event_len in 1usize..120,
        ) {
            let max_payload = 100;
            let mut links = Vec::new();
            let mut router = ShardRouter::new(NonZeroUsize::new(shards.len()).unwrap());
            for (s, (limit, prefill, gone, down)) in shards.iter().enumerate() {
                let pipe = if *gone {
                    Pipe::scripted([In::Fail(io::ErrorKind::BrokenPipe)], 0)
                } else {
                    Pipe::taking(0)
                };
                let mut link = Link::new(Output::default(), pipe, *limit, max_payload);
                for &n in prefill {
                    let _ = link.send(&bcast(n));
                }
                if *gone {
                    // A gone worker is found by a write: give it one.
                    if !link.wants_write() {
                        link.send(&new_cmd(1)).unwrap();
                    }
                    prop_assert!(link.flush().is_err());
                }
                if *down {
                    router.mark_down(s);
                }
                links.push(link);
            }
            let ev = bcast(event_len);
            let fits = |link: &TestLink| {
                !link.is_write_gone()
                    && admission(&ev, link.queued_bytes(), link.queue_limit(), max_payload).is_ok()
            };
            let live_before: Vec<usize> = router.live_shards().collect();
            let predicted = live_before.iter().all(|&s| links[s].is_write_gone() || fits(&links[s]))
                && live_before.iter().any(|&s| !links[s].is_write_gone());
            let before: Vec<usize> = links.iter().map(Link::queued_commands).collect();

            let admitted = router.admit_all(|s| links[s].check_send(&ev));
            prop_assert_eq!(admitted.is_ok(), predicted, "{:?}", admitted);
            match &admitted {
                Ok(()) => {
                    let live: Vec<usize> = router.live_shards().collect();
                    for &s in &live {
                        prop_assert_eq!(links[s].send(&ev), Ok(()));
                    }
                    prop_assert!(!live.is_empty());
                }
                Err(e) => {
                    // The refusal is a real one of a live shard's link, or
                    // no live shard is left.
                    if e.error != SendError::WorkerGone {
                        prop_assert!(live_before.contains(&e.shard));
                        prop_assert_eq!(links[e.shard].check_send(&ev), Err(e.error.clone()));
                    } else {
                        prop_assert_eq!(router.live_shards().count(), 0);
                    }
                }
            }
            // Once admitted, every gone link was found and marked down.
            if admitted.is_ok() {
                for (s, link) in links.iter().enumerate() {
                    if link.is_write_gone() {
                        prop_assert_ne!(router.state(s), Some(ShardState::Live));
                    }
                }
            }
            let got: Vec<usize> = (0..links.len())
                .filter(|&s| links[s].queued_commands() > before[s])
                .collect();
            let live: Vec<usize> = router.live_shards().collect();
            prop_assert!(got.is_empty() || got == live, "got {:?}, live {:?}", got, live);
            prop_assert_eq!(got.is_empty(), admitted.is_err());
        }
    }
}
