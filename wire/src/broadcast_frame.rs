//! BroadcastFrame: the channel-2 payload, worker → parent (PROTOCOL.md#broadcastframe-layout).
//!
//! ```text
//! offset 0   conn      i32, little-endian, ≥ 0
//! offset 4   data_len  u32, little-endian, ≥ 1
//! offset 8   data      data_len bytes: the complete relay→client message text
//! ```

use std::io::{self, Read, Write};

use byteorder::{LittleEndian, WriteBytesExt};
use bytes::{BufMut, Bytes};

use crate::CHANNEL_BROADCAST;
use crate::error::{DataProblem, DecodeFromError, Field, PayloadError};
use crate::fields::{FieldSource, SliceFields, StreamFields};
use crate::message::Message;

/// A message for the parent to write to connection `conn` (channel 2).
///
/// ```
/// use broadcast_wire::BroadcastFrame;
/// use bytes::Bytes;
///
/// let f = BroadcastFrame { conn: 7, data: Bytes::from_static(b"[\"EOSE\",\"s\"]") };
/// let mut buf = Vec::new();
/// f.encode(&mut buf);
/// assert_eq!(BroadcastFrame::decode(Bytes::from(buf)).unwrap(), f);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BroadcastFrame {
    /// The connection to write to, ≥ 0.
    pub conn: i32,
    /// The complete relay→client message, non-empty.
    pub data: Bytes,
}

impl BroadcastFrame {
    /// Size of the fixed fields (conn, data_len).
    pub const FIXED_LEN: usize = 8;

    fn parse<S: FieldSource>(src: &mut S) -> Result<(i32, Bytes), S::Error> {
        let conn = src.i32(Field::Conn)?;
        let len = src.u32(Field::DataLen)?;
        let data = src.bytes(len, Field::Data)?;
        // "Consumed exactly; trailing bytes are an error."
        src.finish()?;
        Ok((conn, data))
    }

    fn check((conn, data): (i32, Bytes)) -> Result<BroadcastFrame, PayloadError> {
        let frame = BroadcastFrame { conn, data };
        frame.validate()?;
        Ok(frame)
    }

    /// Checks `conn ≥ 0` and non-empty data; the error is the one decoding
    /// the encoded bytes would give.
    ///
    /// ```
    /// use broadcast_wire::BroadcastFrame;
    /// assert_eq!(BroadcastFrame { conn: -1, data: "x".into() }.validate().unwrap_err().class(), "invalid_conn");
    /// ```
    pub fn validate(&self) -> Result<(), PayloadError> {
        if self.conn < 0 {
            return Err(PayloadError::InvalidConn {
                conn: self.conn,
                min: 0,
            });
        }
        if self.data.is_empty() {
            return Err(PayloadError::InvalidData {
                problem: DataProblem::Missing,
            });
        }
        Ok(())
    }

    /// Number of bytes [`BroadcastFrame::encode`] writes.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::BroadcastFrame { conn: 1, data: "ab".into() }.encoded_len(), 10);
    /// ```
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + self.data.len()
    }

    /// Writes the payload (no frame header) into `buf`, as it is (see
    /// [`BroadcastFrame::validate`]).
    ///
    /// ```
    /// let mut buf = Vec::new();
    /// broadcast_wire::BroadcastFrame { conn: 1, data: "a".into() }.encode(&mut buf);
    /// assert_eq!(buf, [1, 0, 0, 0, 1, 0, 0, 0, b'a']);
    /// ```
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        Self::encode_head_of(self.conn, self.data.len(), buf);
        buf.put_slice(&self.data);
    }

    /// The fixed fields, `conn` and `data_len`: everything before the data.
    pub(crate) fn encode_head_of<B: BufMut>(conn: i32, data_len: usize, buf: &mut B) {
        buf.put_i32_le(conn);
        buf.put_u32_le(data_len as u32);
    }

    /// Decodes one payload; `data` shares `payload`'s buffer.
    ///
    /// ```
    /// let f = broadcast_wire::BroadcastFrame::decode(bytes::Bytes::from_static(&[1, 0, 0, 0, 1, 0, 0, 0, b'a'])).unwrap();
    /// assert_eq!(&f.data[..], b"a");
    /// ```
    pub fn decode(payload: Bytes) -> Result<BroadcastFrame, PayloadError> {
        Self::check(Self::parse(&mut SliceFields::new(payload))?)
    }

    /// Writes the payload to `w` field by field (original Go `EncodeTo`).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// broadcast_wire::BroadcastFrame { conn: 1, data: "a".into() }.encode_to(&mut out).unwrap();
    /// assert_eq!(out.len(), 9);
    /// ```
    pub fn encode_to<W: Write>(&self, mut w: W) -> io::Result<()> {
        w.write_i32::<LittleEndian>(self.conn)?;
        w.write_u32::<LittleEndian>(self.data.len() as u32)?;
        w.write_all(&self.data)
    }

    /// Reads one payload from `r`, which must hold exactly that payload
    /// (original Go `DecodeFrom`); same outcome as [`BroadcastFrame::decode`].
    ///
    /// ```
    /// let bytes = [1u8, 0, 0, 0, 1, 0, 0, 0, b'a'];
    /// assert_eq!(broadcast_wire::BroadcastFrame::decode_from(&bytes[..]).unwrap().conn, 1);
    /// ```
    pub fn decode_from<R: Read>(r: R) -> Result<BroadcastFrame, DecodeFromError> {
        Ok(Self::check(Self::parse(&mut StreamFields::new(r))?)?)
    }
}

impl Message for BroadcastFrame {
    const CHANNEL: u8 = CHANNEL_BROADCAST;

    fn encoded_len(&self) -> usize {
        BroadcastFrame::encoded_len(self)
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        BroadcastFrame::encode(self, buf)
    }

    fn decode(payload: Bytes) -> Result<Self, PayloadError> {
        BroadcastFrame::decode(payload)
    }

    fn data_tail(&self) -> Option<&Bytes> {
        Some(&self.data)
    }

    fn encode_head<B: BufMut>(&self, buf: &mut B) {
        Self::encode_head_of(self.conn, self.data.len(), buf);
    }
}
