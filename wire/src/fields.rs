//! Front-to-back field parsing shared by the zero-copy decoder (`&Bytes`) and
//! the streaming `decode_from` (`impl Read`), so both report exactly the same
//! outcome for the same bytes.
//!
//! PROTOCOL.md#precedence: parse the fields front to back (`truncated` as soon
//! as one does not fit), then `trailing_bytes`, and only then the semantic
//! classes.

use std::io::{self, Read};

use byteorder::{ByteOrder, LittleEndian, ReadBytesExt};
use bytes::{Buf, Bytes};

use crate::error::{DecodeFromError, Field, PayloadError};

/// A source of little-endian payload fields.
pub(crate) trait FieldSource {
    type Error: From<PayloadError>;
    fn u8(&mut self, field: Field) -> Result<u8, Self::Error>;
    fn i32(&mut self, field: Field) -> Result<i32, Self::Error>;
    fn u32(&mut self, field: Field) -> Result<u32, Self::Error>;
    /// `len` bytes; never allocates more than the bytes actually present.
    fn bytes(&mut self, len: u32, field: Field) -> Result<Bytes, Self::Error>;
    /// Fails with `TrailingBytes` if anything is left.
    fn finish(&mut self) -> Result<(), Self::Error>;
}

/// Zero-copy fields from an in-memory payload.
///
/// Owns the payload, so the field that ends it (the data, in every valid
/// payload) is handed out as the payload itself, advanced: no reference
/// count is touched for it. Other fields are slices (one increment each).
pub(crate) struct SliceFields {
    buf: Bytes,
    pos: usize,
}

impl SliceFields {
    pub(crate) fn new(buf: Bytes) -> Self {
        SliceFields { buf, pos: 0 }
    }

    #[inline]
    fn take(&mut self, n: usize, field: Field) -> Result<&[u8], PayloadError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(PayloadError::Truncated { field });
        }
        self.pos += n;
        Ok(&rest[..n])
    }
}

impl FieldSource for SliceFields {
    type Error = PayloadError;

    #[inline]
    fn u8(&mut self, field: Field) -> Result<u8, PayloadError> {
        Ok(self.take(1, field)?[0])
    }

    #[inline]
    fn i32(&mut self, field: Field) -> Result<i32, PayloadError> {
        Ok(LittleEndian::read_i32(self.take(4, field)?))
    }

    #[inline]
    fn u32(&mut self, field: Field) -> Result<u32, PayloadError> {
        Ok(LittleEndian::read_u32(self.take(4, field)?))
    }

    #[inline]
    fn bytes(&mut self, len: u32, field: Field) -> Result<Bytes, PayloadError> {
        // A hostile length is compared with what is there, never allocated.
        let len = usize::try_from(len).map_err(|_| PayloadError::Truncated { field })?;
        let start = self.pos;
        self.take(len, field)?;
        if len > 0 && self.pos == self.buf.len() {
            // The field runs to the end: move the buffer out instead of
            // slicing it (an atomic increment now and a decrement when the
            // payload is dropped). Nothing is left to parse, so the next
            // fixed field is `truncated` and `finish` finds no trailing byte,
            // exactly as before.
            let mut tail = std::mem::take(&mut self.buf);
            tail.advance(start);
            self.pos = 0;
            return Ok(tail);
        }
        Ok(self.buf.slice(start..start + len))
    }

    #[inline]
    fn finish(&mut self) -> Result<(), PayloadError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(PayloadError::TrailingBytes { extra }),
        }
    }
}

/// Fields read one by one from a reader that holds exactly one payload.
pub(crate) struct StreamFields<R> {
    reader: R,
}

impl<R: Read> StreamFields<R> {
    pub(crate) fn new(reader: R) -> Self {
        StreamFields { reader }
    }
}

fn eof_is_truncated(field: Field) -> impl FnOnce(io::Error) -> DecodeFromError {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            DecodeFromError::Payload(PayloadError::Truncated { field })
        } else {
            DecodeFromError::Io(e)
        }
    }
}

impl<R: Read> FieldSource for StreamFields<R> {
    type Error = DecodeFromError;

    fn u8(&mut self, field: Field) -> Result<u8, DecodeFromError> {
        self.reader.read_u8().map_err(eof_is_truncated(field))
    }

    fn i32(&mut self, field: Field) -> Result<i32, DecodeFromError> {
        self.reader
            .read_i32::<LittleEndian>()
            .map_err(eof_is_truncated(field))
    }

    fn u32(&mut self, field: Field) -> Result<u32, DecodeFromError> {
        self.reader
            .read_u32::<LittleEndian>()
            .map_err(eof_is_truncated(field))
    }

    fn bytes(&mut self, len: u32, field: Field) -> Result<Bytes, DecodeFromError> {
        // `read_to_end` on a `Take` grows the buffer with the bytes that
        // actually arrive, so a hostile length allocates nothing by itself.
        let mut out = Vec::new();
        let got = (&mut self.reader)
            .take(u64::from(len))
            .read_to_end(&mut out)
            .map_err(DecodeFromError::Io)?;
        if got < len as usize {
            return Err(PayloadError::Truncated { field }.into());
        }
        Ok(Bytes::from(out))
    }

    fn finish(&mut self) -> Result<(), DecodeFromError> {
        let extra = io::copy(&mut self.reader, &mut io::sink()).map_err(DecodeFromError::Io)?;
        match extra {
            0 => Ok(()),
            n => Err(PayloadError::TrailingBytes {
                extra: usize::try_from(n).unwrap_or(usize::MAX),
            }
            .into()),
        }
    }
}
