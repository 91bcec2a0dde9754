//! A frame writer over any `io::Write`, made for non-blocking fds: frames are
//! queued in one contiguous buffer and flushed with as few `write` calls as
//! the fd allows.

use std::io::{self, Write};

use bytes::{Buf, BytesMut};

use crate::DEFAULT_MAX_PAYLOAD;
use crate::error::OversizeFrame;
use crate::frame::Frame;
use crate::message::Message;

/// Queues frames and writes them out in order.
///
/// Each frame is appended whole to one buffer, so frames are contiguous and
/// never interleave ("a writer MUST write each frame contiguously; it MAY
/// coalesce"), and one `write` call can carry many of them. A partial write
/// or `WouldBlock` keeps the unwritten tail for the next
/// [`FrameWriter::flush`]; nothing is lost, reordered or written twice.
///
/// ```
/// use broadcast_wire::{BroadcastFrame, FrameWriter};
///
/// let mut w = FrameWriter::new(Vec::new());
/// w.queue_message(&BroadcastFrame { conn: 1, data: "a".into() }).unwrap();
/// w.queue_message(&BroadcastFrame { conn: 2, data: "b".into() }).unwrap();
/// w.flush().unwrap();
/// assert_eq!(w.get_ref().len(), 2 * 14);
/// ```
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    queue: BytesMut,
    max_payload: u32,
}

impl<W: Write> FrameWriter<W> {
    /// A writer that refuses payloads above the default maximum (16 MiB).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameWriter::new(Vec::new()).pending(), 0);
    /// ```
    pub fn new(inner: W) -> FrameWriter<W> {
        Self::with_max_payload(inner, DEFAULT_MAX_PAYLOAD)
    }

    /// A writer that refuses payloads above `max_payload`, the peer's limit.
    ///
    /// ```
    /// let w = broadcast_wire::FrameWriter::with_max_payload(Vec::new(), 1024);
    /// assert_eq!(w.max_payload(), 1024);
    /// ```
    pub fn with_max_payload(inner: W, max_payload: u32) -> FrameWriter<W> {
        FrameWriter {
            inner,
            queue: BytesMut::new(),
            max_payload,
        }
    }

    /// The largest payload this writer queues.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameWriter::new(Vec::new()).max_payload(), 16 << 20);
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    fn check_len(&self, len: usize) -> Result<(), OversizeFrame> {
        if len > self.max_payload as usize {
            return Err(OversizeFrame {
                len,
                max: self.max_payload,
            });
        }
        Ok(())
    }

    /// Queues a raw frame. Nothing is written until [`FrameWriter::flush`].
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::new());
    /// w.queue_frame(&broadcast_wire::Frame::heartbeat(1)).unwrap();
    /// assert_eq!(w.pending(), 5);
    /// ```
    pub fn queue_frame(&mut self, frame: &Frame) -> Result<(), OversizeFrame> {
        self.check_len(frame.payload.len())?;
        frame.encode(&mut self.queue);
        Ok(())
    }

    /// Queues `msg` on its channel, encoded straight into the queue.
    ///
    /// ```
    /// use broadcast_wire::{FrameWriter, NewFlags, SubCommand};
    /// let mut w = FrameWriter::new(Vec::new());
    /// w.queue_message(&SubCommand::New { conn: 3, flags: NewFlags::EMPTY }).unwrap();
    /// assert_eq!(w.pending(), 5 + 14);
    /// ```
    pub fn queue_message<M: Message>(&mut self, msg: &M) -> Result<(), OversizeFrame> {
        self.check_len(msg.encoded_len())?;
        self.queue.reserve(msg.framed_len());
        msg.encode_framed(&mut self.queue);
        Ok(())
    }

    /// Queues `bytes` as they are, after what is already queued: no frame
    /// header, no check. For test harnesses that must send malformed or
    /// split frames in order with well-formed ones; anything else should
    /// use [`FrameWriter::queue_frame`] or [`FrameWriter::queue_message`].
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::new());
    /// w.queue_raw(&[1, 9, 0]); // half a header
    /// w.flush().unwrap();
    /// assert_eq!(w.get_ref(), &[1, 9, 0]);
    /// ```
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.queue.extend_from_slice(bytes);
    }

    /// Bytes queued and not yet written.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameWriter::new(std::io::sink()).pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Writes as much of the queue as the writer takes. `Ok(())` once it is
    /// all written (and the inner writer flushed); `Err` with kind
    /// `WouldBlock` when the fd is full, the rest kept for the next call;
    /// `Interrupted` is retried. Any other error leaves the queue as it was
    /// after the last successful write.
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::new());
    /// w.queue_frame(&broadcast_wire::Frame::heartbeat(2)).unwrap();
    /// w.flush().unwrap();
    /// assert_eq!((w.pending(), w.get_ref().len()), (0, 5));
    /// ```
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.queue.is_empty() {
            match self.inner.write(&self.queue) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the frame stream accepted no bytes",
                    ));
                }
                Ok(n) => self.queue.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // An empty BytesMut can reuse its whole allocation from the start.
        self.queue.clear();
        self.inner.flush()
    }

    /// Queues `msg` and flushes: the simple path for blocking writers.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, FrameWriter};
    /// let mut w = FrameWriter::new(Vec::new());
    /// w.write_message(&BroadcastFrame { conn: 0, data: "x".into() }).unwrap();
    /// assert_eq!(w.get_ref().len(), 14);
    /// ```
    pub fn write_message<M: Message>(&mut self, msg: &M) -> io::Result<()> {
        self.queue_message(msg)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.flush()
    }

    /// The wrapped writer.
    ///
    /// ```
    /// assert!(broadcast_wire::FrameWriter::new(Vec::<u8>::new()).get_ref().is_empty());
    /// ```
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The wrapped writer, mutably (writing to it directly can break framing).
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::<u8>::new());
    /// w.get_mut().clear();
    /// ```
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unwraps the writer; queued bytes not yet written are returned too.
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::<u8>::new());
    /// w.queue_frame(&broadcast_wire::Frame::heartbeat(1)).unwrap();
    /// let (_inner, unwritten) = w.into_parts();
    /// assert_eq!(unwritten.len(), 5);
    /// ```
    pub fn into_parts(self) -> (W, BytesMut) {
        (self.inner, self.queue)
    }
}
