//! The bounded outbound queue: commands are validated and encoded into a
//! [`FrameWriter`] (short frames coalesced in one buffer, long payloads
//! queued by handle, vectored writes, partial writes kept), refused with a
//! typed error when the byte limit would be passed, and counted, so that
//! when the worker goes away the caller learns how many commands never
//! reached it.

use std::collections::VecDeque;
use std::io;

use broadcast_wire::{FrameWriter, HEADER_LEN, OversizeFrame, SubCommand};

use super::error::{Backpressure, FlushError, SendError, Unflushed};
use super::outlet::Outlet;

/// What a non-blocking flush achieved.
///
/// ```
/// use broadcast_process::link::FlushStatus;
/// assert!(FlushStatus::Flushed.is_flushed());
/// assert!(!FlushStatus::WouldBlock.is_flushed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushStatus {
    /// The queue is empty: everything queued has been written.
    Flushed,
    /// The fd is full; the rest stays queued. Wait until the write fd is
    /// writable and flush again.
    WouldBlock,
}

impl FlushStatus {
    /// Whether the queue is now empty.
    ///
    /// ```
    /// assert!(broadcast_process::link::FlushStatus::Flushed.is_flushed());
    /// ```
    pub fn is_flushed(self) -> bool {
        self == FlushStatus::Flushed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A write met `EPIPE`/`ECONNRESET`, or the worker is known to have
    /// exited: nothing written can be read any more.
    Gone,
    /// `close` ended the stream.
    Closed,
}

#[derive(Debug)]
pub(crate) struct Outbound<W> {
    writer: FrameWriter<W>,
    limit: usize,
    /// Framed length of every queued command not completely written yet,
    /// oldest first; the first may be partly written.
    frames: VecDeque<usize>,
    /// Bytes of `frames[0]` already written.
    front_written: usize,
    sent: u64,
    state: State,
}

impl<W: Outlet> Outbound<W> {
    pub(crate) fn new(writer: W, limit: usize, max_payload: u32) -> Outbound<W> {
        Outbound {
            writer: FrameWriter::with_max_payload(writer, max_payload),
            limit,
            frames: VecDeque::new(),
            front_written: 0,
            sent: 0,
            state: State::Open,
        }
    }

    /// Validates `cmd` and queues it, or says why not; on error nothing was
    /// queued.
    pub(crate) fn push(&mut self, cmd: &SubCommand) -> Result<(), SendError> {
        let needed = self.check(cmd)?;
        self.writer.queue_message(cmd).map_err(SendError::TooLarge)?;
        self.frames.push_back(needed);
        Ok(())
    }

    /// Whether [`Outbound::push`] would queue `cmd` now, and its framed
    /// length if so; changes nothing.
    pub(crate) fn check(&self, cmd: &SubCommand) -> Result<usize, SendError> {
        cmd.validate().map_err(SendError::Invalid)?;
        let len = cmd.encoded_len();
        let max = self.writer.max_payload();
        // PROTOCOL.md#maximum-payload: a frame over the maximum is a fatal
        // stream error for the worker, so it is never written.
        if len > max as usize {
            return Err(SendError::TooLarge(OversizeFrame { len, max }));
        }
        match self.state {
            State::Open => {}
            State::Gone => return Err(SendError::WorkerGone),
            State::Closed => return Err(SendError::WriteClosed),
        }
        let needed = HEADER_LEN + len;
        let queued = self.writer.pending();
        // An empty queue takes any command the payload maximum allows, or a
        // command larger than the limit could never be sent.
        if queued > 0 && queued + needed > self.limit {
            return Err(SendError::Backpressure(Backpressure {
                queued,
                needed,
                limit: self.limit,
            }));
        }
        Ok(needed)
    }

    /// Writes as much as the writer takes, without blocking.
    pub(crate) fn flush(&mut self) -> Result<FlushStatus, FlushError> {
        if self.writer.pending() == 0 {
            return Ok(FlushStatus::Flushed);
        }
        if self.state == State::Gone {
            return Err(self.gone_error());
        }
        let before = self.writer.pending();
        let result = self.writer.flush();
        self.account(before - self.writer.pending());
        match result {
            Ok(()) => Ok(FlushStatus::Flushed),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(FlushStatus::WouldBlock),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                self.state = State::Gone;
                Err(self.gone_error())
            }
            Err(e) => Err(FlushError::Io(e)),
        }
    }

    fn gone_error(&self) -> FlushError {
        FlushError::WorkerGone {
            unsent_commands: self.frames.len(),
            unsent_bytes: self.writer.pending(),
        }
    }

    /// Moves the written bytes off the front of the per-command ledger.
    fn account(&mut self, written: usize) {
        self.front_written += written;
        while let Some(&len) = self.frames.front() {
            if self.front_written < len {
                break;
            }
            self.front_written -= len;
            self.frames.pop_front();
            self.sent += 1;
        }
    }

    /// Ends the command stream, if nothing is queued, or if what is queued
    /// can never be written (the worker is gone).
    pub(crate) fn close(&mut self) -> Result<(), Unflushed> {
        let queued_bytes = self.writer.pending();
        if queued_bytes > 0 && self.state != State::Gone {
            return Err(Unflushed { queued_bytes });
        }
        if self.state != State::Closed {
            self.writer.get_mut().close();
            self.state = State::Closed;
        }
        Ok(())
    }

    /// The worker is known to be gone (it exited): later commands are
    /// refused and the queue counts as undelivered, whether or not a write
    /// would still succeed. It could: a process forked elsewhere that has
    /// not yet exec'd may hold a copy of the pipe's read end, and the bytes
    /// would vanish into it. A closed stream stays closed.
    pub(crate) fn set_gone(&mut self) {
        if self.state == State::Open {
            self.state = State::Gone;
        }
    }

    pub(crate) fn pending_bytes(&self) -> usize {
        self.writer.pending()
    }

    /// Whether a flush could write something: bytes are queued and the
    /// worker is not gone (its queue can never drain then, and its fd would
    /// stay "writable" with an error forever).
    pub(crate) fn wants_write(&self) -> bool {
        self.writer.pending() > 0 && self.state != State::Gone
    }

    pub(crate) fn pending_commands(&self) -> usize {
        self.frames.len()
    }

    pub(crate) fn sent_commands(&self) -> u64 {
        self.sent
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn max_payload(&self) -> u32 {
        self.writer.max_payload()
    }

    pub(crate) fn writer(&self) -> &W {
        self.writer.get_ref()
    }

    /// Whether a write found the worker's end closed.
    pub(crate) fn is_gone(&self) -> bool {
        self.state == State::Gone
    }

    /// Whether the command stream was ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.state == State::Closed
    }
}
