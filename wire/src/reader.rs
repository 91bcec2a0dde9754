//! A frame reader over any `io::Read`, made for non-blocking fds.

use std::io::{self, Read};

use crate::decoder::FrameDecoder;
use crate::error::{PayloadError, ReadError};
use crate::frame::Frame;
use crate::message::Message;

/// What a non-blocking read produced.
///
/// ```
/// use broadcast_wire::{FrameReader, ReadStatus};
///
/// let mut r = FrameReader::new(&[][..]);
/// assert!(matches!(r.read_frame().unwrap(), ReadStatus::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStatus<T> {
    /// A complete item.
    Ready(T),
    /// The reader would block and no complete frame is buffered yet; every
    /// byte read so far is kept for the next call.
    Pending,
    /// The stream ended cleanly, on a frame boundary.
    Closed,
}

/// Reads frames from `R`, any way the OS splits the stream.
///
/// `WouldBlock` from the reader means "no complete frame yet" and keeps all
/// state ([`ReadStatus::Pending`]); `Interrupted` is retried; end of stream on
/// a frame boundary is [`ReadStatus::Closed`], inside a frame a
/// `truncated_stream` error.
///
/// ```
/// use broadcast_wire::{FrameReader, ReadStatus};
///
/// let stream = [1u8, 2, 0, 0, 0, b'h', b'i'];
/// let mut r = FrameReader::new(&stream[..]);
/// let ReadStatus::Ready(f) = r.read_frame().unwrap() else { panic!() };
/// assert_eq!(&f.payload[..], b"hi");
/// assert_eq!(r.read_frame().unwrap(), ReadStatus::Closed);
/// ```
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    decoder: FrameDecoder,
    eof: bool,
}

impl<R: Read> FrameReader<R> {
    /// A reader with the default maximum payload (16 MiB).
    ///
    /// ```
    /// let r = broadcast_wire::FrameReader::new(std::io::empty());
    /// assert_eq!(r.decoder().max_payload(), 16 << 20);
    /// ```
    pub fn new(inner: R) -> FrameReader<R> {
        Self::with_decoder(inner, FrameDecoder::new())
    }

    /// A reader that refuses payloads longer than `max_payload`.
    ///
    /// ```
    /// let r = broadcast_wire::FrameReader::with_max_payload(std::io::empty(), 8);
    /// assert_eq!(r.decoder().max_payload(), 8);
    /// ```
    pub fn with_max_payload(inner: R, max_payload: u32) -> FrameReader<R> {
        Self::with_decoder(inner, FrameDecoder::with_max_payload(max_payload))
    }

    /// A reader that continues from `decoder`'s state.
    ///
    /// ```
    /// let mut dec = broadcast_wire::FrameDecoder::new();
    /// dec.feed(&[1, 1, 0]);
    /// let mut r = broadcast_wire::FrameReader::with_decoder(&[0u8, 0, b'x'][..], dec);
    /// assert!(matches!(r.read_frame().unwrap(), broadcast_wire::ReadStatus::Ready(_)));
    /// ```
    pub fn with_decoder(inner: R, decoder: FrameDecoder) -> FrameReader<R> {
        FrameReader {
            inner,
            decoder,
            eof: false,
        }
    }

    /// The next frame (heartbeats and every channel included), or
    /// [`ReadStatus::Pending`] / [`ReadStatus::Closed`].
    ///
    /// ```
    /// use broadcast_wire::{FrameReader, ReadError};
    /// // A header announcing 3 bytes, then the stream ends.
    /// let mut r = FrameReader::new(&[1u8, 3, 0, 0, 0, b'a'][..]);
    /// assert!(matches!(r.read_frame(), Err(ReadError::Framing(_))));
    /// ```
    pub fn read_frame(&mut self) -> Result<ReadStatus<Frame>, ReadError> {
        loop {
            if let Some(frame) = self.decoder.decode()? {
                return Ok(ReadStatus::Ready(frame));
            }
            if self.eof {
                self.decoder.finish()?;
                return Ok(ReadStatus::Closed);
            }
            // Straight into the decoder's buffer (FrameDecoder::read_from).
            match self.decoder.read_from(&mut self.inner) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Pending),
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// The next message of type `M`, with the receive rules applied:
    /// heartbeats and other channels are skipped; a payload that does not
    /// decode comes out as its (non-fatal) error so the caller can log it.
    ///
    /// ```
    /// use broadcast_wire::{FrameReader, ReadStatus, SubCommand};
    /// let stream = [1u8, 0, 0, 0, 0,  3, 1, 0, 0, 0, 0xaa,  1, 1, 0, 0, 0, 0];
    /// let mut r = FrameReader::new(&stream[..]);
    /// // Heartbeat and channel 3 skipped; the 1-byte payload is truncated.
    /// let ReadStatus::Ready(Err(e)) = r.read_message::<SubCommand>().unwrap() else { panic!() };
    /// assert_eq!(e.class(), "truncated");
    /// assert_eq!(r.read_message::<SubCommand>().unwrap(), ReadStatus::Closed);
    /// ```
    pub fn read_message<M: Message>(&mut self) -> Result<ReadStatus<Result<M, PayloadError>>, ReadError> {
        loop {
            match self.read_frame()? {
                ReadStatus::Ready(frame) => {
                    if let Some(msg) = frame.into_message::<M>() {
                        return Ok(ReadStatus::Ready(msg));
                    }
                }
                ReadStatus::Pending => return Ok(ReadStatus::Pending),
                ReadStatus::Closed => return Ok(ReadStatus::Closed),
            }
        }
    }

    /// The decoder, to inspect buffered state.
    ///
    /// ```
    /// assert!(broadcast_wire::FrameReader::new(std::io::empty()).decoder().at_boundary());
    /// ```
    pub fn decoder(&self) -> &FrameDecoder {
        &self.decoder
    }

    /// The wrapped reader.
    ///
    /// ```
    /// let r = broadcast_wire::FrameReader::new(std::io::empty());
    /// let _inner: &std::io::Empty = r.get_ref();
    /// ```
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader, mutably (reading from it directly loses framing).
    ///
    /// ```
    /// let mut r = broadcast_wire::FrameReader::new(std::io::empty());
    /// let _inner: &mut std::io::Empty = r.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Unwraps the reader and the decoder with whatever it has buffered.
    ///
    /// ```
    /// let (_r, dec) = broadcast_wire::FrameReader::new(std::io::empty()).into_parts();
    /// assert!(dec.at_boundary());
    /// ```
    pub fn into_parts(self) -> (R, FrameDecoder) {
        (self.inner, self.decoder)
    }
}
