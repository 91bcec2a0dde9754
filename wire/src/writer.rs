//! A frame writer over any `io::Write`, made for non-blocking fds: small
//! frames are coalesced in one buffer, large payloads are queued by handle,
//! and the queue goes out with as few (vectored) `write` calls as the fd
//! allows.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes, BytesMut};

use crate::DEFAULT_MAX_PAYLOAD;
use crate::broadcast_frame::BroadcastFrame;
use crate::error::OversizeFrame;
use crate::frame::{Frame, HEADER_LEN};
use crate::message::Message;

/// A payload part at least this long is queued by handle (one reference
/// count increment) instead of being copied. Shorter parts are cheaper to
/// copy than to give their own `iovec`.
const SHARE_MIN: usize = 1024;

/// Most `iovec`s handed to one `write_vectored` call (Linux allows 1024).
const MAX_IOV: usize = 64;

/// One piece of a BroadcastFrame's data, for
/// [`FrameWriter::queue_broadcast_parts`].
///
/// ```
/// use broadcast_wire::DataPart;
/// let event = bytes::Bytes::from_static(b"{}");
/// let parts = [DataPart::Copied(b"[\"EVENT\",\"s\","), DataPart::Shared(&event), DataPart::Copied(b"]")];
/// assert_eq!(parts.iter().map(DataPart::len).sum::<usize>(), 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPart<'a> {
    /// Bytes that are copied into the writer's queue.
    Copied(&'a [u8]),
    /// Bytes that the writer may send by handle instead (it does when they
    /// are long enough for that to be cheaper than a copy).
    Shared(&'a Bytes),
}

impl DataPart<'_> {
    /// The part's length in bytes.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::DataPart::Copied(b"]").len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        match self {
            DataPart::Copied(bytes) => bytes.len(),
            DataPart::Shared(bytes) => bytes.len(),
        }
    }

    /// Whether the part is empty.
    ///
    /// ```
    /// assert!(broadcast_wire::DataPart::Copied(b"").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The part's bytes.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::DataPart::Copied(b"]").as_slice(), b"]");
    /// ```
    pub fn as_slice(&self) -> &[u8] {
        match self {
            DataPart::Copied(bytes) => bytes,
            DataPart::Shared(bytes) => bytes,
        }
    }
}

/// One run of queued bytes, in stream order.
#[derive(Debug)]
enum Chunk {
    /// The next `n` bytes of the copy buffer.
    Copied(usize),
    /// A payload part queued by handle.
    Shared(Bytes),
}

/// Queues frames and writes them out in order.
///
/// Frame headers and small payloads are copied into one buffer, so many
/// frames go out in one `write` call ("a writer MAY coalesce"). A payload
/// part of 1 KiB or more is queued as a [`Bytes`] handle and sent with
/// `write_vectored`, without a copy. Frames keep their order and are never
/// interleaved ("a writer MUST write each frame contiguously",
/// PROTOCOL.md#reads-and-writes). A partial write or `WouldBlock` keeps the
/// unwritten rest, to the byte, for the next [`FrameWriter::flush`];
/// nothing is lost, reordered or written twice.
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
    /// The copied bytes of every [`Chunk::Copied`], in order; its front may
    /// have been written already (advanced past).
    copied: BytesMut,
    /// The layout of the queue while it holds a shared part, else empty
    /// (the queue is then `copied` alone). The front may be partly written.
    chunks: VecDeque<Chunk>,
    /// Unwritten bytes of the [`Chunk::Shared`] entries.
    shared_len: usize,
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
            copied: BytesMut::new(),
            chunks: VecDeque::new(),
            shared_len: 0,
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
        let len = frame.payload.len();
        self.check_len(len)?;
        self.put_header(frame.chan, len);
        self.put_part(&frame.payload);
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
        let len = msg.encoded_len();
        self.check_len(len)?;
        match msg.data_tail() {
            Some(tail) if tail.len() >= SHARE_MIN => {
                self.copied.reserve(len - tail.len() + HEADER_LEN);
                self.put_header(M::CHANNEL, len);
                // Counted, not assumed: the queue's layout stays right
                // whatever an impl writes.
                let before = self.copied.len();
                msg.encode_head(&mut self.copied);
                self.note_copied(self.copied.len() - before);
                self.put_shared(tail);
            }
            _ => {
                self.copied.reserve(HEADER_LEN + len);
                let before = self.copied.len();
                msg.encode_framed(&mut self.copied);
                self.note_copied(self.copied.len() - before);
            }
        }
        Ok(())
    }

    /// Queues a [`BroadcastFrame`] whose data is the concatenation of
    /// `data`, without joining it first: [`DataPart::Shared`] parts of
    /// 1 KiB or more are sent by handle, the rest copied. The bytes written
    /// are exactly those of [`FrameWriter::queue_message`] with the joined
    /// data. An oversize frame is refused and nothing is queued.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, DataPart, FrameWriter};
    /// use bytes::Bytes;
    ///
    /// let event = Bytes::from(vec![b'x'; 2000]);
    /// let (open, close) = (&b"[\"EVENT\",\"s\","[..], &b"]"[..]);
    /// let mut parts = FrameWriter::new(Vec::new());
    /// let data = [DataPart::Copied(open), DataPart::Shared(&event), DataPart::Copied(close)];
    /// parts.queue_broadcast_parts(7, &data).unwrap();
    /// parts.flush().unwrap();
    ///
    /// let joined = [open, &event[..], close].concat();
    /// let mut whole = FrameWriter::new(Vec::new());
    /// whole.write_message(&BroadcastFrame { conn: 7, data: joined.into() }).unwrap();
    /// assert_eq!(parts.get_ref(), whole.get_ref());
    /// ```
    pub fn queue_broadcast_parts(&mut self, conn: i32, data: &[DataPart<'_>]) -> Result<(), OversizeFrame> {
        let data_len: usize = data.iter().map(DataPart::len).sum();
        let len = BroadcastFrame::FIXED_LEN + data_len;
        self.check_len(len)?;
        self.put_header(BroadcastFrame::CHANNEL, len);
        let mut head = [0u8; BroadcastFrame::FIXED_LEN];
        BroadcastFrame::encode_head_of(conn, data_len, &mut &mut head[..]);
        self.put_copied(&head);
        for part in data {
            match part {
                DataPart::Shared(bytes) => self.put_part(bytes),
                DataPart::Copied(bytes) => self.put_copied(bytes),
            }
        }
        Ok(())
    }

    /// Copies a frame header into the queue.
    fn put_header(&mut self, chan: u8, len: usize) {
        let mut header = [0u8; HEADER_LEN];
        header[0] = chan;
        header[1..].copy_from_slice(&(len as u32).to_le_bytes());
        self.put_copied(&header);
    }

    /// Queues `part` by handle if it is long, else copies it.
    fn put_part(&mut self, part: &Bytes) {
        if part.len() >= SHARE_MIN {
            self.put_shared(part);
        } else {
            self.put_copied(part);
        }
    }

    fn put_copied(&mut self, bytes: &[u8]) {
        self.copied.extend_from_slice(bytes);
        self.note_copied(bytes.len());
    }

    /// Records that the last `n` bytes of `copied` were just appended.
    fn note_copied(&mut self, n: usize) {
        if self.chunks.is_empty() || n == 0 {
            return;
        }
        match self.chunks.back_mut() {
            Some(Chunk::Copied(len)) => *len += n,
            _ => self.chunks.push_back(Chunk::Copied(n)),
        }
    }

    fn put_shared(&mut self, part: &Bytes) {
        if part.is_empty() {
            return;
        }
        if self.chunks.is_empty() && !self.copied.is_empty() {
            // Until now the queue was `copied` alone.
            self.chunks.push_back(Chunk::Copied(self.copied.len()));
        }
        self.shared_len += part.len();
        self.chunks.push_back(Chunk::Shared(part.clone()));
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
        self.put_copied(bytes);
    }

    /// Bytes queued and not yet written.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameWriter::new(std::io::sink()).pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.copied.len() + self.shared_len
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
        while self.pending() > 0 {
            let (written, offered) = if self.chunks.is_empty() {
                (self.inner.write(&self.copied), self.copied.len())
            } else {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let count = gather(&self.chunks, &self.copied, &mut iov);
                let offered = iov[..count].iter().map(|slice| slice.len()).sum();
                (self.inner.write_vectored(&iov[..count]), offered)
            };
            match written {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the frame stream accepted no bytes",
                    ));
                }
                // A writer claiming more than it was given is not believed.
                Ok(n) => self.consume(n.min(offered)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // An empty BytesMut can reuse its whole allocation from the start.
        self.copied.clear();
        self.inner.flush()
    }

    /// Drops the first `n` written bytes off the queue.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.copied.advance(n);
                return;
            };
            let (len, done) = match front {
                Chunk::Copied(len) => {
                    let step = n.min(*len);
                    self.copied.advance(step);
                    *len -= step;
                    (step, *len == 0)
                }
                Chunk::Shared(part) => {
                    let step = n.min(part.len());
                    part.advance(step);
                    self.shared_len -= step;
                    (step, part.is_empty())
                }
            };
            n -= len;
            if done {
                self.chunks.pop_front();
                if self.chunks.len() == 1 && matches!(self.chunks.front(), Some(Chunk::Copied(_))) {
                    // Only copied bytes are left: back to the plain buffer.
                    self.chunks.clear();
                }
            }
        }
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

    /// Unwraps the writer; queued bytes not yet written are returned too,
    /// joined in order.
    ///
    /// ```
    /// let mut w = broadcast_wire::FrameWriter::new(Vec::<u8>::new());
    /// w.queue_frame(&broadcast_wire::Frame::heartbeat(1)).unwrap();
    /// let (_inner, unwritten) = w.into_parts();
    /// assert_eq!(unwritten.len(), 5);
    /// ```
    pub fn into_parts(self) -> (W, BytesMut) {
        if self.chunks.is_empty() {
            return (self.inner, self.copied);
        }
        let mut copied = self.copied;
        let mut unwritten = BytesMut::with_capacity(copied.len() + self.shared_len);
        for chunk in &self.chunks {
            match chunk {
                Chunk::Copied(len) => unwritten.extend_from_slice(&copied.split_to(*len)),
                Chunk::Shared(part) => unwritten.extend_from_slice(part),
            }
        }
        (self.inner, unwritten)
    }
}

/// Fills `iov` with the queue's first runs, in order; returns how many.
fn gather<'a>(chunks: &'a VecDeque<Chunk>, copied: &'a [u8], iov: &mut [IoSlice<'a>]) -> usize {
    let mut offset = 0;
    let mut count = 0;
    for (chunk, slot) in chunks.iter().zip(iov.iter_mut()) {
        *slot = match chunk {
            Chunk::Copied(len) => {
                let run = &copied[offset..offset + len];
                offset += len;
                IoSlice::new(run)
            }
            Chunk::Shared(part) => IoSlice::new(part),
        };
        count += 1;
    }
    count
}
