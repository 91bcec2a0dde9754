//! The read side of a link: frames decoded from the worker's output, the
//! stash of items read ahead while a command waited, and the one policy for
//! reading ahead that every driver follows.

use std::collections::VecDeque;
use std::io::{self, Read};

use broadcast_wire::{BroadcastFrame, FrameReader, FramingError, ReadError, ReadStatus};

use super::incoming::Incoming;

/// Most items one pass of [`Link::read_ahead`](super::Link::read_ahead)
/// takes, so that a worker that never stops writing cannot keep a waiting
/// command from being written.
pub const MAX_FRAMES_PER_PASS: usize = 1024;

/// Most bytes one pass discards once the output broke the framing rules
/// (64 reads of 16 KiB), for the same reason.
const DISCARD_READS_PER_PASS: usize = 64;
const DISCARD_CHUNK: usize = 16 * 1024;

/// The state of a link's read side.
///
/// ```
/// use broadcast_process::link::{Link, ReadSide};
///
/// let link = Link::new(&[][..], Vec::new(), 1024, 1024);
/// assert_eq!(link.read_side(), ReadSide::Open);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadSide {
    /// Frames are read and decoded.
    Open,
    /// The output broke the framing rules (a frame over the maximum): it
    /// can never be split into frames again. The error is reported
    /// (sticky) by every read; what the worker writes after it is read and
    /// thrown away, so a worker that goes on writing never blocks on its
    /// output, and keeps reading commands.
    Broken,
    /// The output ended (end-of-file, on a frame boundary or inside a
    /// frame, which is a sticky framing error) or failed with an I/O
    /// error: there is nothing more to read, and nothing to wait for.
    Ended,
}

/// What one pass of [`Link::read_ahead`](super::Link::read_ahead) did, and
/// so what the driver waits for next.
///
/// ```
/// use broadcast_process::link::{Link, ReadAhead};
///
/// // The worker's whole output is one heartbeat: the end comes next.
/// let mut link = Link::new(&[2u8, 0, 0, 0, 0][..], Vec::new(), 1024, 1024);
/// assert_eq!(link.read_ahead(), ReadAhead::Ended);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadAhead {
    /// Everything available was taken: wait until the read fd is readable.
    WouldBlock,
    /// The pass stopped at its limit ([`MAX_FRAMES_PER_PASS`] items): more
    /// may be waiting. Make progress elsewhere, then come back without
    /// waiting for readiness.
    Limit,
    /// The read side has ended: do not wait for it any more.
    Ended,
}

#[derive(Debug)]
pub(crate) struct Inbound<R> {
    reader: FrameReader<R>,
    /// Items read ahead, returned first by `read`, in order.
    stash: VecDeque<Result<Incoming, ReadError>>,
    side: ReadSide,
    /// End-of-file was seen (as opposed to an I/O error).
    eof: bool,
}

impl<R: Read> Inbound<R> {
    pub(crate) fn new(reader: R, max_payload: u32) -> Inbound<R> {
        Inbound {
            reader: FrameReader::with_max_payload(reader, max_payload),
            stash: VecDeque::new(),
            side: ReadSide::Open,
            eof: false,
        }
    }

    /// The next item: read ahead first, then from the reader.
    pub(crate) fn read(&mut self) -> Result<Incoming, ReadError> {
        if let Some(item) = self.stash.pop_front() {
            return item;
        }
        if self.side == ReadSide::Broken {
            // Keep the worker's output moving; the error is reported below.
            self.discard();
        }
        self.read_direct()
    }

    fn read_direct(&mut self) -> Result<Incoming, ReadError> {
        let status = match self.reader.read_message::<BroadcastFrame>() {
            Ok(status) => status,
            Err(e) => {
                match e {
                    // Only found at end-of-file: the output has ended, there
                    // is nothing left to discard or to wait for.
                    ReadError::Framing(FramingError::TruncatedStream { .. }) => {
                        self.side = ReadSide::Ended;
                        self.eof = true;
                    }
                    ReadError::Framing(_) => {
                        if self.side == ReadSide::Open {
                            self.side = ReadSide::Broken;
                        }
                    }
                    _ => self.side = ReadSide::Ended,
                }
                return Err(e);
            }
        };
        Ok(match status {
            ReadStatus::Ready(Ok(frame)) => Incoming::Frame(frame),
            ReadStatus::Ready(Err(e)) => Incoming::InvalidFrame(e),
            ReadStatus::Pending => Incoming::Pending,
            ReadStatus::Closed => {
                self.side = ReadSide::Ended;
                self.eof = true;
                Incoming::WorkerExited(None)
            }
        })
    }

    /// One pass of the read-ahead policy (see `Link::read_ahead`).
    pub(crate) fn read_ahead(&mut self) -> ReadAhead {
        match self.side {
            ReadSide::Ended => return ReadAhead::Ended,
            ReadSide::Broken => return self.discard(),
            ReadSide::Open => {}
        }
        for _ in 0..MAX_FRAMES_PER_PASS {
            match self.read_direct() {
                Ok(Incoming::Pending) => return ReadAhead::WouldBlock,
                // Not stashed: the end is sticky, `read` finds it again
                // after the stashed items.
                Ok(Incoming::WorkerExited(_)) => return ReadAhead::Ended,
                Ok(item) => self.stash.push_back(Ok(item)),
                Err(e) => {
                    // Kept for `read`, in order after the frames before it.
                    self.stash.push_back(Err(e));
                    return match self.side {
                        ReadSide::Broken => self.discard(),
                        _ => ReadAhead::Ended,
                    };
                }
            }
        }
        ReadAhead::Limit
    }

    /// Reads what the worker wrote after breaking the framing and throws it
    /// away: it can no longer be split into frames, but a worker blocked
    /// writing it would stop reading commands.
    fn discard(&mut self) -> ReadAhead {
        let mut scratch = [0u8; DISCARD_CHUNK];
        for _ in 0..DISCARD_READS_PER_PASS {
            match self.reader.get_mut().read(&mut scratch) {
                Ok(0) => {
                    self.side = ReadSide::Ended;
                    self.eof = true;
                    return ReadAhead::Ended;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadAhead::WouldBlock,
                Err(_) => {
                    self.side = ReadSide::Ended;
                    return ReadAhead::Ended;
                }
            }
        }
        ReadAhead::Limit
    }

    pub(crate) fn side(&self) -> ReadSide {
        self.side
    }

    pub(crate) fn saw_eof(&self) -> bool {
        self.eof
    }

    /// Whether items read ahead wait in the stash, which no fd readiness
    /// will announce. (A partial frame in the decoder needs more bytes,
    /// whose arrival readiness does announce; complete frames are left in
    /// the decoder only after a read that returned one, never after one
    /// that said "nothing yet".)
    pub(crate) fn has_buffered(&self) -> bool {
        !self.stash.is_empty()
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.reader.decoder().buffered()
    }

    pub(crate) fn reader(&self) -> &R {
        self.reader.get_ref()
    }
}
