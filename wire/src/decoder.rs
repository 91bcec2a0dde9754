//! A push-style, resumable frame decoder: feed it bytes as they arrive, take
//! out whole frames. No I/O of its own, so it fits any event loop.

use std::io::{self, Read};

use byteorder::{ByteOrder, LittleEndian};
use bytes::{Buf, BytesMut};

use crate::DEFAULT_MAX_PAYLOAD;
use crate::error::{FramingError, PayloadError};
use crate::frame::{Frame, HEADER_LEN};
use crate::message::Message;

/// Where the decoder is inside the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a 5-byte header.
    Header,
    /// The header was read and checked; waiting for `len` payload bytes.
    Payload { chan: u8, len: usize },
    /// A fatal error happened; the stream cannot be resynchronised.
    Failed(FramingError),
}

/// Turns a byte stream, split any way, into frames.
///
/// The maximum payload is checked as soon as a header is complete and before
/// any space is reserved for the payload ("a reader MUST NOT allocate
/// according to an unchecked `len`"). After a fatal error every call returns
/// that error again.
///
/// ```
/// use broadcast_wire::FrameDecoder;
///
/// let mut dec = FrameDecoder::new();
/// dec.feed(&[2, 3, 0]);                 // half a header
/// assert_eq!(dec.decode(), Ok(None));  // need more bytes
/// dec.feed(&[0, 0, b'a', b'b', b'c', 1]);
/// let f = dec.decode().unwrap().unwrap();
/// assert_eq!((f.chan, &f.payload[..]), (2, &b"abc"[..]));
/// assert_eq!(dec.decode(), Ok(None));
/// // The stream ends with one byte of a header buffered: truncated.
/// assert_eq!(dec.finish().unwrap_err().class(), "truncated_stream");
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    /// `buf[..filled]` is stream data not yet returned; `buf[filled..]` is
    /// zeroed room that [`FrameDecoder::read_from`] reads into, so a read
    /// lands straight in the buffer frames are split from.
    buf: BytesMut,
    filled: usize,
    max_payload: u32,
    state: State,
}

/// How much zeroed room [`FrameDecoder::read_from`] adds when it has none
/// left: the default capacity of a Linux pipe.
const READ_CHUNK: usize = 64 * 1024;

/// Below this much room, [`FrameDecoder::read_from`] adds room first.
const MIN_ROOM: usize = 16 * 1024;

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default maximum payload (16 MiB).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameDecoder::new().max_payload(), 16 * 1024 * 1024);
    /// ```
    pub fn new() -> FrameDecoder {
        Self::with_max_payload(DEFAULT_MAX_PAYLOAD)
    }

    /// A decoder that refuses payloads longer than `max_payload` bytes.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameDecoder::with_max_payload(10).max_payload(), 10);
    /// ```
    pub fn with_max_payload(max_payload: u32) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            filled: 0,
            max_payload,
            state: State::Header,
        }
    }

    /// The maximum payload length accepted.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameDecoder::with_max_payload(0).max_payload(), 0);
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Appends bytes received from the stream. All of them are kept until
    /// [`FrameDecoder::decode`] takes them out as frames.
    ///
    /// ```
    /// let mut dec = broadcast_wire::FrameDecoder::new();
    /// dec.feed(&[1, 0]);
    /// assert_eq!(dec.buffered(), 2);
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.truncate(self.filled);
        self.buf.extend_from_slice(bytes);
        self.filled = self.buf.len();
    }

    /// Makes one `read` call on `reader`, straight into the decoder's
    /// buffer (no intermediate copy), and returns what it returned: the
    /// number of bytes now buffered in addition, `Ok(0)` at the end of the
    /// stream, or the error (`WouldBlock` and `Interrupted` included).
    ///
    /// Memory stays bounded as with [`FrameDecoder::feed`]: a call adds room
    /// only when less than 16 KiB is left, up to 64 KiB past the buffered
    /// data, which [`FrameDecoder::decode`] drains frame by frame (a frame
    /// over the maximum fails at its header).
    ///
    /// ```
    /// use broadcast_wire::FrameDecoder;
    ///
    /// let mut stream = &[1u8, 2, 0, 0, 0, b'h', b'i'][..];
    /// let mut dec = FrameDecoder::new();
    /// assert_eq!(dec.read_from(&mut stream).unwrap(), 7);
    /// assert_eq!(&dec.decode().unwrap().unwrap().payload[..], b"hi");
    /// assert_eq!(dec.read_from(&mut stream).unwrap(), 0); // end of stream
    /// ```
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<usize> {
        if self.buf.len() - self.filled < MIN_ROOM {
            // Little room left: add zeroed room, once; reads fill it over
            // calls. Without a minimum, the read after a nearly full one
            // would get only the last few bytes and cost a syscall.
            self.buf.resize(self.filled + READ_CHUNK, 0);
        }
        let n = reader.read(&mut self.buf[self.filled..])?;
        // A reader reporting more than it was given is not trusted.
        self.filled += n.min(self.buf.len() - self.filled);
        Ok(n)
    }

    /// Bytes received and not yet returned as a frame.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::FrameDecoder::new().buffered(), 0);
    /// ```
    pub fn buffered(&self) -> usize {
        self.filled + self.header_taken()
    }

    fn header_taken(&self) -> usize {
        match self.state {
            State::Payload { .. } => HEADER_LEN,
            _ => 0,
        }
    }

    /// Whether the decoder sits on a frame boundary (nothing buffered), so an
    /// end of stream now would be clean.
    ///
    /// ```
    /// let mut dec = broadcast_wire::FrameDecoder::new();
    /// assert!(dec.at_boundary());
    /// dec.feed(&[1]);
    /// assert!(!dec.at_boundary());
    /// ```
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header && self.filled == 0
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the
    /// fatal error. Heartbeats and every channel are returned: apply the
    /// receive rules with [`Frame::message`] or
    /// [`FrameDecoder::decode_message`].
    ///
    /// ```
    /// let mut dec = broadcast_wire::FrameDecoder::new();
    /// dec.feed(&[0, 0, 0, 0, 0]);
    /// assert!(dec.decode().unwrap().unwrap().is_heartbeat());
    /// ```
    pub fn decode(&mut self) -> Result<Option<crate::Frame>, FramingError> {
        if let State::Header = self.state {
            let (chan, len) = match check_header(&self.buf[..self.filled], self.max_payload) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(err) => {
                    self.state = State::Failed(err);
                    return Err(err);
                }
            };
            self.buf.advance(HEADER_LEN);
            self.filled -= HEADER_LEN;
            if self.buf.len() < len {
                // Checked against the maximum above, so this is bounded.
                self.buf.reserve(len - self.buf.len());
            }
            self.state = State::Payload { chan, len };
        }
        match self.state {
            State::Payload { chan, len } if self.filled >= len => {
                self.state = State::Header;
                self.filled -= len;
                Ok(Some(Frame::new(chan, self.buf.split_to(len).freeze())))
            }
            State::Failed(err) => Err(err),
            _ => Ok(None),
        }
    }

    /// Like [`FrameDecoder::decode`], but applies the receive rules for a
    /// consumer of `M`: heartbeats and other channels are skipped, and each
    /// frame of `M`'s channel comes out decoded, or with its non-fatal
    /// payload error (drop that message and go on).
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, FrameDecoder};
    ///
    /// let mut dec = FrameDecoder::new();
    /// dec.feed(&[2, 0, 0, 0, 0]); // heartbeat: skipped
    /// dec.feed(&[9, 1, 0, 0, 0, 0xff]); // foreign channel: skipped
    /// dec.feed(&[2, 9, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, b'x']);
    /// let f = dec.decode_message::<BroadcastFrame>().unwrap().unwrap().unwrap();
    /// assert_eq!(f.conn, 4);
    /// ```
    pub fn decode_message<M: Message>(&mut self) -> Result<Option<Result<M, PayloadError>>, FramingError> {
        while let Some(frame) = self.decode()? {
            if let Some(msg) = frame.into_message::<M>() {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    /// Call at the end of the stream: `Ok` if it ended on a frame boundary,
    /// else `truncated_stream` (or the earlier fatal error).
    ///
    /// ```
    /// assert!(broadcast_wire::FrameDecoder::new().finish().is_ok());
    /// ```
    pub fn finish(&self) -> Result<(), FramingError> {
        match self.state {
            State::Failed(err) => Err(err),
            _ if self.at_boundary() => Ok(()),
            // A complete header not yet looked at by `decode`: an oversize
            // length is still reported as such, not as a truncation.
            State::Header => {
                check_header(&self.buf[..self.filled], self.max_payload)?;
                Err(FramingError::TruncatedStream {
                    buffered: self.buffered(),
                })
            }
            State::Payload { .. } => Err(FramingError::TruncatedStream {
                buffered: self.buffered(),
            }),
        }
    }
}

/// Reads the frame header at the start of `buf` (PROTOCOL.md#frame-layout):
/// `Ok(None)` while fewer than [`HEADER_LEN`] bytes are there, else the
/// channel and the payload length, or `frame_too_large` when the length is
/// over `max_payload` (PROTOCOL.md#maximum-payload).
///
/// The length is checked here, from the header alone, so that no caller
/// reserves room for it before it is known to be within the maximum ("a
/// reader MUST NOT allocate according to an unchecked `len`"). Every reader
/// of the crate ([`FrameDecoder`], and `tokio_codec::FrameCodec`, which
/// decodes in place in its caller's buffer) takes headers through this one
/// function.
#[inline]
pub(crate) fn check_header(buf: &[u8], max_payload: u32) -> Result<Option<(u8, usize)>, FramingError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = LittleEndian::read_u32(&header[1..]);
    if len > max_payload {
        return Err(FramingError::FrameTooLarge {
            len,
            max: max_payload,
        });
    }
    // At most `max_payload`, a u32: fits in usize on every target the crate builds for.
    Ok(Some((header[0], len as usize)))
}
