//! The v1 chan-ID framing as a tokio-util codec, so
//! [`FramedRead`](tokio_util::codec::FramedRead) and
//! [`FramedWrite`](tokio_util::codec::FramedWrite) carry [`SubCommand`]s and
//! [`BroadcastFrame`]s over any `AsyncRead`/`AsyncWrite` (feature `tokio`).
//!
//! Decoding works in place, in the caller's buffer (FramedRead's), as
//! tokio-util's `LengthDelimitedCodec` does: the 5-byte header is read where
//! it lies and its length checked against the maximum before anything is
//! reserved; then room for the rest of the frame is reserved once, and the
//! complete payload is split off as a [`Bytes`](bytes::Bytes) handle to the
//! same allocation, never copied. Headers go through the same check as in
//! [`FrameDecoder`](crate::FrameDecoder), and the receive rules are the same
//! as everywhere else in the crate (PROTOCOL.md#receiving-frames):
//!
//! - heartbeats and frames on the other channels are skipped;
//! - a payload that does not decode is one item, `Err(PayloadError)`, and
//!   the stream goes on (non-fatal);
//! - a length over the maximum is [`ReadError::Framing`] before anything is
//!   allocated for it, and so is a stream that ends inside a frame; both are
//!   fatal, and every later call says so again;
//! - transport errors are [`ReadError::Io`].
//!
//! Encoding refuses a payload over the maximum with
//! [`EncodeError::TooLarge`]: the length field is never truncated, and the
//! destination buffer is left as it was.
//!
//! ```
//! use broadcast_wire::tokio_codec::FrameCodec;
//! use broadcast_wire::{BroadcastFrame, SubCommand, NewFlags};
//! use futures_util::{SinkExt, StreamExt};
//! use tokio_util::codec::{FramedRead, FramedWrite};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (parent, worker) = tokio::io::duplex(4096);
//!
//! // Parent: write commands.
//! let mut commands = FramedWrite::new(parent, FrameCodec::<BroadcastFrame>::new());
//! commands.send(&SubCommand::New { conn: 5, flags: NewFlags::EMPTY }).await?;
//! drop(commands); // end of stream
//!
//! // Worker: read them.
//! let mut incoming = FramedRead::new(worker, FrameCodec::<SubCommand>::new());
//! let cmd = incoming.next().await.unwrap()?; // Err here: fatal
//! assert_eq!(cmd, Ok(SubCommand::New { conn: 5, flags: NewFlags::EMPTY })); // Err here: one bad payload
//! assert!(incoming.next().await.is_none());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::marker::PhantomData;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::DEFAULT_MAX_PAYLOAD;
use crate::broadcast_frame::BroadcastFrame;
use crate::decoder::check_header;
use crate::error::{FramingError, OversizeFrame, PayloadError, ReadError};
use crate::frame::{HEADER_LEN, carries};
use crate::message::Message;
use crate::sub_command::SubCommand;

/// A tokio-util [`Decoder`] of `M` messages (on `M`'s channel) and
/// [`Encoder`] of any [`Message`]: see the [module docs](self).
///
/// The parent reads [`BroadcastFrame`]s and writes [`SubCommand`]s, so it
/// uses `FrameCodec<BroadcastFrame>`; a worker uses `FrameCodec<SubCommand>`.
/// One codec value may serve both directions of a duplex stream through
/// [`Framed`](tokio_util::codec::Framed).
///
/// ```
/// use broadcast_wire::tokio_codec::FrameCodec;
/// use broadcast_wire::SubCommand;
///
/// let codec = FrameCodec::<SubCommand>::with_max_payload(1 << 20);
/// assert_eq!(codec.max_payload(), 1 << 20);
/// ```
pub struct FrameCodec<M> {
    max_payload: u32,
    /// The fatal error once the stream broke; every later decode returns it.
    failed: Option<FramingError>,
    _message: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for FrameCodec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("max_payload", &self.max_payload)
            .field("failed", &self.failed)
            .finish()
    }
}

impl<M> Default for FrameCodec<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> FrameCodec<M> {
    /// A codec with the protocol's default payload maximum
    /// ([`DEFAULT_MAX_PAYLOAD`], 16 MiB) in both directions.
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::{BroadcastFrame, DEFAULT_MAX_PAYLOAD};
    ///
    /// assert_eq!(FrameCodec::<BroadcastFrame>::new().max_payload(), DEFAULT_MAX_PAYLOAD);
    /// ```
    pub fn new() -> FrameCodec<M> {
        Self::with_max_payload(DEFAULT_MAX_PAYLOAD)
    }

    /// A codec that refuses payloads over `max_payload` bytes, when decoding
    /// (a fatal [`ReadError::Framing`]) and when encoding
    /// ([`EncodeError::TooLarge`]).
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::{ReadError, SubCommand};
    /// use bytes::BytesMut;
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = FrameCodec::<SubCommand>::with_max_payload(8);
    /// // A header announcing 4 GiB: refused from the header alone.
    /// let mut src = BytesMut::from(&[1u8, 0xff, 0xff, 0xff, 0xff][..]);
    /// assert!(matches!(codec.decode(&mut src), Err(ReadError::Framing(_))));
    /// ```
    pub fn with_max_payload(max_payload: u32) -> FrameCodec<M> {
        FrameCodec {
            max_payload,
            failed: None,
            _message: PhantomData,
        }
    }

    /// The payload maximum in both directions.
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::SubCommand;
    ///
    /// assert_eq!(FrameCodec::<SubCommand>::with_max_payload(100).max_payload(), 100);
    /// ```
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Records the fatal `err`, which every later decode returns again.
    fn fail(&mut self, err: FramingError) -> ReadError {
        self.failed = Some(err);
        ReadError::Framing(err)
    }
}

impl<M: Message> Decoder for FrameCodec<M> {
    /// One message: `Err` is a payload that does not decode (drop it and go
    /// on, PROTOCOL.md#payload-decode-failures).
    type Item = Result<M, PayloadError>;
    /// Fatal for the stream: framing broken, or the transport failed.
    type Error = ReadError;

    /// Takes complete frames off the front of `src` until one carries an
    /// `M`; an unfinished frame stays in `src`, with room reserved for the
    /// rest of it (at most the maximum payload, checked first).
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::BroadcastFrame;
    /// use bytes::BytesMut;
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = FrameCodec::<BroadcastFrame>::new();
    /// // A heartbeat (skipped), then conn 4 gets "hi".
    /// let mut src = BytesMut::from(&b"\x02\0\0\0\0\x02\x0a\0\0\0\x04\0\0\0\x02\0\0\0hi"[..]);
    /// let frame = codec.decode(&mut src).unwrap().unwrap().unwrap();
    /// assert_eq!((frame.conn, &frame.data[..]), (4, &b"hi"[..]));
    /// assert!(codec.decode(&mut src).unwrap().is_none());
    /// // Part of a header: it stays in the caller's buffer until the rest comes.
    /// src.extend_from_slice(&[2, 9, 0]);
    /// assert!(codec.decode(&mut src).unwrap().is_none());
    /// assert_eq!(src.len(), 3);
    /// ```
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        if let Some(err) = self.failed {
            return Err(ReadError::Framing(err));
        }
        loop {
            let (chan, len) = match check_header(src, self.max_payload) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(None),
                Err(err) => return Err(self.fail(err)),
            };
            // Bounded: `len` is at most the maximum payload.
            let frame_len = HEADER_LEN + len;
            if src.len() < frame_len {
                // Room for the rest of this frame, once, so that the reads
                // to come land in it (a no-op when it is already there).
                src.reserve(frame_len - src.len());
                return Ok(None);
            }
            if carries::<M>(chan, len) {
                src.advance(HEADER_LEN);
                return Ok(Some(M::decode(src.split_to(len).freeze())));
            }
            // A heartbeat or a frame on another channel: skipped whole.
            src.advance(frame_len);
        }
    }

    /// At end of stream: the messages still buffered, then `None`; a stream
    /// that ended inside a frame is [`ReadError::Framing`].
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::{ReadError, SubCommand};
    /// use bytes::BytesMut;
    /// use tokio_util::codec::Decoder;
    ///
    /// let mut codec = FrameCodec::<SubCommand>::new();
    /// let mut src = BytesMut::from(&[1u8, 9, 0, 0, 0, 7][..]); // cut inside a frame
    /// assert!(matches!(codec.decode_eof(&mut src), Err(ReadError::Framing(_))));
    /// ```
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            // `decode` took every complete frame and checked every complete
            // header: what is left is the start of the frame the stream
            // ended inside.
            None => Err(self.fail(FramingError::TruncatedStream { buffered: src.len() })),
        }
    }
}

impl<M: Message, T: Message> Encoder<&T> for FrameCodec<M> {
    type Error = EncodeError;

    /// Appends `msg`, framed on its channel, to `dst`; a payload over the
    /// maximum is refused and nothing is appended.
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::{EncodeError, FrameCodec};
    /// use broadcast_wire::{BcastFlags, BroadcastFrame, SubCommand};
    /// use bytes::{Bytes, BytesMut};
    /// use tokio_util::codec::Encoder;
    ///
    /// let mut codec = FrameCodec::<BroadcastFrame>::with_max_payload(32);
    /// let mut dst = BytesMut::new();
    /// let big = SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: Bytes::from(vec![b'x'; 64]) };
    /// assert!(matches!(codec.encode(&big, &mut dst), Err(EncodeError::TooLarge(_))));
    /// assert!(dst.is_empty());
    /// ```
    fn encode(&mut self, msg: &T, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = msg.encoded_len();
        let max = self.max_payload;
        if len > max as usize {
            return Err(EncodeError::TooLarge(OversizeFrame { len, max }));
        }
        dst.reserve(msg.framed_len());
        msg.encode_framed(dst);
        Ok(())
    }
}

impl<M: Message> Encoder<SubCommand> for FrameCodec<M> {
    type Error = EncodeError;

    /// As the `&SubCommand` encoder, for sinks fed owned commands.
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::{BroadcastFrame, NewFlags, SubCommand};
    /// use bytes::BytesMut;
    /// use tokio_util::codec::Encoder;
    ///
    /// let mut dst = BytesMut::new();
    /// let cmd = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
    /// FrameCodec::<BroadcastFrame>::new().encode(cmd, &mut dst).unwrap();
    /// assert_eq!(dst.len(), 5 + 14);
    /// ```
    fn encode(&mut self, msg: SubCommand, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(&msg, dst)
    }
}

impl<M: Message> Encoder<BroadcastFrame> for FrameCodec<M> {
    type Error = EncodeError;

    /// As the `&BroadcastFrame` encoder, for sinks fed owned frames.
    ///
    /// ```
    /// use broadcast_wire::tokio_codec::FrameCodec;
    /// use broadcast_wire::{BroadcastFrame, SubCommand};
    /// use bytes::{Bytes, BytesMut};
    /// use tokio_util::codec::Encoder;
    ///
    /// let mut dst = BytesMut::new();
    /// let frame = BroadcastFrame { conn: 3, data: Bytes::from_static(b"[]") };
    /// FrameCodec::<SubCommand>::new().encode(frame, &mut dst).unwrap();
    /// assert_eq!(dst[0], 2); // channel 2
    /// ```
    fn encode(&mut self, msg: BroadcastFrame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(&msg, dst)
    }
}

/// Why [`FrameCodec`] did not encode or send a message.
///
/// ```
/// use broadcast_wire::tokio_codec::EncodeError;
/// use broadcast_wire::OversizeFrame;
///
/// let e = EncodeError::TooLarge(OversizeFrame { len: 20, max: 10 });
/// assert!(e.to_string().contains("maximum is 10"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload is over the codec's maximum: nothing was encoded (a peer
    /// would drop the whole stream on it).
    TooLarge(OversizeFrame),
    /// The sink's transport failed.
    Io(io::Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge(e) => e.fmt(f),
            EncodeError::Io(e) => write!(f, "writing the frame stream failed: {e}"),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::TooLarge(e) => Some(e),
            EncodeError::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for EncodeError {
    fn from(e: io::Error) -> Self {
        EncodeError::Io(e)
    }
}
