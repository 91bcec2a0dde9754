//! Error types, one per phase: payload decoding (non-fatal), framing (fatal),
//! and the I/O wrappers around them.

use std::fmt;
use std::io;

/// The field of a payload that a [`PayloadError::Truncated`] ran out inside.
///
/// ```
/// use broadcast_wire::{Field, PayloadError, SubCommand};
///
/// let err = SubCommand::decode(bytes::Bytes::from_static(&[1, 0, 7])).unwrap_err();
/// assert_eq!(err, PayloadError::Truncated { field: Field::Conn });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The one-byte op code of a SubCommand.
    Op,
    /// The one-byte flags of a SubCommand.
    Flags,
    /// The little-endian `i32` connection id.
    Conn,
    /// The little-endian `u32` length of the sub_id.
    SubIdLen,
    /// The sub_id bytes.
    SubId,
    /// The little-endian `u32` length of the data.
    DataLen,
    /// The data bytes.
    Data,
}

impl Field {
    /// The field's name as the spec writes it (`sub_id_len`, `data`, ...).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Field::SubIdLen.name(), "sub_id_len");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Field::Op => "op",
            Field::Flags => "flags",
            Field::Conn => "conn",
            Field::SubIdLen => "sub_id_len",
            Field::SubId => "sub_id",
            Field::DataLen => "data_len",
            Field::Data => "data",
        }
    }
}

/// Why a sub_id was refused (see [`PayloadError::InvalidSubId`]).
///
/// ```
/// use broadcast_wire::{SubId, SubIdProblem};
///
/// assert_eq!(SubId::try_from("").unwrap_err(), SubIdProblem::Missing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubIdProblem {
    /// The op requires a sub_id and it is empty.
    Missing,
    /// The op forbids a sub_id and `len` bytes were sent.
    Forbidden {
        /// Length of the sub_id that was sent.
        len: usize,
    },
    /// The sub_id is longer than [`crate::SubId::MAX_LEN`] bytes.
    TooLong {
        /// Length of the sub_id that was sent.
        len: usize,
    },
    /// The sub_id is not valid UTF-8.
    NotUtf8,
}

/// Why a data field was refused (see [`PayloadError::InvalidData`]).
///
/// ```
/// use broadcast_wire::{DataProblem, PayloadError};
///
/// let e = PayloadError::InvalidData { problem: DataProblem::Missing };
/// assert_eq!(e.class(), "invalid_data");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataProblem {
    /// The message requires data and it is empty.
    Missing,
    /// The op forbids data and `len` bytes were sent.
    Forbidden {
        /// Length of the data that was sent.
        len: usize,
    },
    /// Auth data must be exactly 32 bytes (a binary pubkey).
    WrongLength {
        /// Length that was sent.
        len: usize,
    },
}

/// A payload that does not decode (PROTOCOL.md#payload-error-classes): non-fatal, the frame
/// boundary is known, so the receiver drops this one message and goes on.
///
/// When a payload breaks several rules the variant reported is the first in
/// declaration order, which is the spec's order, so every byte string has
/// exactly one outcome.
///
/// ```
/// use broadcast_wire::{PayloadError, SubCommand};
///
/// // op 9 is unknown, but the payload is also too short: truncated wins.
/// let err = SubCommand::decode(bytes::Bytes::from_static(&[9])).unwrap_err();
/// assert_eq!(err.class(), "truncated");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadError {
    /// The payload ended inside `field`, or `field`'s length points past the end.
    Truncated {
        /// The field that did not fit.
        field: Field,
    },
    /// `extra` bytes were left after the last field.
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The op byte is 0 or 7–255.
    UnknownOp {
        /// The op byte that was sent.
        op: u8,
    },
    /// `conn` is below the smallest value the message allows (`min`).
    InvalidConn {
        /// The conn that was sent.
        conn: i32,
        /// The smallest conn this op accepts (0, or −1 for Bcast).
        min: i32,
    },
    /// The sub_id breaks the op's rule.
    InvalidSubId {
        /// Which rule it breaks.
        problem: SubIdProblem,
    },
    /// The data breaks the op's rule.
    InvalidData {
        /// Which rule it breaks.
        problem: DataProblem,
    },
}

impl PayloadError {
    /// The stable class name used by the spec, the vectors and the CLI's JSON.
    ///
    /// ```
    /// use broadcast_wire::PayloadError;
    /// assert_eq!(PayloadError::TrailingBytes { extra: 1 }.class(), "trailing_bytes");
    /// ```
    pub fn class(&self) -> &'static str {
        match self {
            PayloadError::Truncated { .. } => "truncated",
            PayloadError::TrailingBytes { .. } => "trailing_bytes",
            PayloadError::UnknownOp { .. } => "unknown_op",
            PayloadError::InvalidConn { .. } => "invalid_conn",
            PayloadError::InvalidSubId { .. } => "invalid_sub_id",
            PayloadError::InvalidData { .. } => "invalid_data",
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Truncated { field } => write!(
                f,
                "truncated: the payload ends inside field `{}` (or its length points past the end)",
                field.name()
            ),
            PayloadError::TrailingBytes { extra } => write!(
                f,
                "trailing_bytes: {extra} byte(s) left after the last field; the payload must be consumed exactly"
            ),
            PayloadError::UnknownOp { op } => {
                write!(f, "unknown_op: op {op} is not defined (valid ops are 1 to 6)")
            }
            PayloadError::InvalidConn { conn, min } => {
                write!(
                    f,
                    "invalid_conn: conn {conn} is out of range (this message needs conn >= {min})"
                )
            }
            PayloadError::InvalidSubId { problem } => match problem {
                SubIdProblem::Missing => write!(
                    f,
                    "invalid_sub_id: this op needs a sub_id of 1 to 64 bytes, got none"
                ),
                SubIdProblem::Forbidden { len } => {
                    write!(f, "invalid_sub_id: this op takes no sub_id, got {len} byte(s)")
                }
                SubIdProblem::TooLong { len } => {
                    write!(f, "invalid_sub_id: sub_id is {len} bytes, the maximum is 64")
                }
                SubIdProblem::NotUtf8 => write!(f, "invalid_sub_id: sub_id is not valid UTF-8"),
            },
            PayloadError::InvalidData { problem } => match problem {
                DataProblem::Missing => {
                    write!(f, "invalid_data: this message needs non-empty data, got none")
                }
                DataProblem::Forbidden { len } => {
                    write!(f, "invalid_data: this op takes no data, got {len} byte(s)")
                }
                DataProblem::WrongLength { len } => {
                    write!(
                        f,
                        "invalid_data: Auth data must be a 32-byte binary pubkey, got {len} byte(s)"
                    )
                }
            },
        }
    }
}

impl std::error::Error for PayloadError {}

/// A fatal framing error (PROTOCOL.md#framing-error-classes): the stream cannot be
/// resynchronised and must be closed.
///
/// ```
/// use broadcast_wire::{FrameDecoder, FramingError};
///
/// let mut dec = FrameDecoder::with_max_payload(4);
/// dec.feed(&[1, 5, 0, 0, 0]);
/// let err = dec.decode().unwrap_err();
/// assert_eq!(err, FramingError::FrameTooLarge { len: 5, max: 4 });
/// assert_eq!(err.class(), "frame_too_large");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FramingError {
    /// A header announced `len` payload bytes, more than the maximum `max`.
    FrameTooLarge {
        /// The length the header announced.
        len: u32,
        /// The configured maximum payload.
        max: u32,
    },
    /// The stream ended inside a frame, with `buffered` bytes of it received.
    TruncatedStream {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
}

impl FramingError {
    /// The stable class name: `frame_too_large` or `truncated_stream`.
    ///
    /// ```
    /// use broadcast_wire::FramingError;
    /// assert_eq!(FramingError::TruncatedStream { buffered: 3 }.class(), "truncated_stream");
    /// ```
    pub fn class(&self) -> &'static str {
        match self {
            FramingError::FrameTooLarge { .. } => "frame_too_large",
            FramingError::TruncatedStream { .. } => "truncated_stream",
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::FrameTooLarge { len, max } => write!(
                f,
                "frame_too_large: a frame header announces {len} payload bytes, above the maximum of {max}; the stream cannot be resynchronised"
            ),
            FramingError::TruncatedStream { buffered } => write!(
                f,
                "truncated_stream: the stream ended inside a frame ({buffered} byte(s) of it had arrived)"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// An error from [`crate::FrameReader`]: the transport failed, or the stream
/// broke the framing rules. Both are fatal for the stream.
///
/// ```
/// use broadcast_wire::{FrameReader, ReadError};
///
/// // A stream that ends inside a header.
/// let mut r = FrameReader::new(&[1u8, 0, 0][..]);
/// assert!(matches!(r.read_frame(), Err(ReadError::Framing(_))));
/// ```
#[derive(Debug)]
pub enum ReadError {
    /// The underlying reader failed (anything but `WouldBlock`/`Interrupted`).
    Io(io::Error),
    /// The stream broke the framing rules.
    Framing(FramingError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "reading the frame stream failed: {e}"),
            ReadError::Framing(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::Framing(e) => Some(e),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<FramingError> for ReadError {
    fn from(e: FramingError) -> Self {
        ReadError::Framing(e)
    }
}

/// An error from `decode_from`: the reader failed, or its bytes are not a
/// valid payload.
///
/// ```
/// use broadcast_wire::{DecodeFromError, SubCommand};
///
/// let err = SubCommand::decode_from(&[2u8, 0][..]).unwrap_err();
/// assert!(matches!(err, DecodeFromError::Payload(_)));
/// ```
#[derive(Debug)]
pub enum DecodeFromError {
    /// The reader failed.
    Io(io::Error),
    /// The bytes read are not a valid payload.
    Payload(PayloadError),
}

impl fmt::Display for DecodeFromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeFromError::Io(e) => write!(f, "reading the payload failed: {e}"),
            DecodeFromError::Payload(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeFromError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeFromError::Io(e) => Some(e),
            DecodeFromError::Payload(e) => Some(e),
        }
    }
}

impl From<PayloadError> for DecodeFromError {
    fn from(e: PayloadError) -> Self {
        DecodeFromError::Payload(e)
    }
}

/// An error from queueing a frame on a [`crate::FrameWriter`]: the payload is
/// larger than the writer's maximum, so the peer would have to treat it as a
/// fatal `frame_too_large`. Nothing was queued.
///
/// ```
/// use broadcast_wire::{Frame, FrameWriter};
///
/// let mut w = FrameWriter::with_max_payload(Vec::new(), 2);
/// let err = w.queue_frame(&Frame::new(1, bytes::Bytes::from_static(b"abc"))).unwrap_err();
/// assert_eq!(err.len, 3);
/// assert_eq!(w.pending(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OversizeFrame {
    /// The payload length that was refused.
    pub len: usize,
    /// The writer's maximum payload.
    pub max: u32,
}

impl fmt::Display for OversizeFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused to queue a frame of {} payload bytes: the maximum is {}, and the peer would drop the whole stream",
            self.len, self.max
        )
    }
}

impl std::error::Error for OversizeFrame {}
