//! The trait shared by the two payload types, so framing code is written once.

use bytes::{BufMut, Bytes};

use crate::error::PayloadError;
use crate::frame::HEADER_LEN;

/// A payload type and the channel it travels on: [`crate::SubCommand`]
/// (channel 1) or [`crate::BroadcastFrame`] (channel 2).
///
/// ```
/// use broadcast_wire::{BroadcastFrame, Message};
///
/// let f = BroadcastFrame { conn: 3, data: "x".into() };
/// let mut buf = Vec::new();
/// f.encode_framed(&mut buf);
/// assert_eq!(buf[0], BroadcastFrame::CHANNEL);
/// assert_eq!(buf.len(), f.framed_len());
/// ```
pub trait Message: Sized {
    /// The channel id this payload type is sent on.
    const CHANNEL: u8;

    /// Length of the payload in bytes.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// assert_eq!(Message::encoded_len(&BroadcastFrame { conn: 0, data: "x".into() }), 9);
    /// ```
    fn encoded_len(&self) -> usize;

    /// Writes the payload (without a frame header).
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// let mut v = Vec::new();
    /// Message::encode(&BroadcastFrame { conn: 0, data: "x".into() }, &mut v);
    /// assert_eq!(v.len(), 9);
    /// ```
    fn encode<B: BufMut>(&self, buf: &mut B);

    /// Decodes one payload (without a frame header).
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// assert!(<BroadcastFrame as Message>::decode(bytes::Bytes::new()).is_err());
    /// ```
    fn decode(payload: Bytes) -> Result<Self, PayloadError>;

    /// Length of the whole frame: header plus payload.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// assert_eq!(BroadcastFrame { conn: 0, data: "x".into() }.framed_len(), 14);
    /// ```
    fn framed_len(&self) -> usize {
        HEADER_LEN + self.encoded_len()
    }

    /// Writes the frame header (`chan`, `len`) and then the payload, as one
    /// contiguous run of bytes.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// let mut v = Vec::new();
    /// BroadcastFrame { conn: 0, data: "x".into() }.encode_framed(&mut v);
    /// assert_eq!(&v[..5], &[2, 9, 0, 0, 0]);
    /// ```
    fn encode_framed<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(Self::CHANNEL);
        buf.put_u32_le(self.encoded_len() as u32);
        self.encode(buf);
    }

    /// The payload's last field when it is a byte string written verbatim
    /// (a BroadcastFrame's `data`, an Add's `req`, a Bcast's `event`), so a
    /// writer can send that field by handle instead of copying it. `None`
    /// (the default) means the whole payload is written by
    /// [`encode_head`](Message::encode_head).
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// let f = BroadcastFrame { conn: 0, data: "xy".into() };
    /// assert_eq!(f.data_tail().map(|d| &d[..]), Some(&b"xy"[..]));
    /// ```
    fn data_tail(&self) -> Option<&Bytes> {
        None
    }

    /// Writes the payload up to, not including, [`data_tail`](Message::data_tail):
    /// the head followed by the tail's bytes is exactly
    /// [`encode`](Message::encode)'s output.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Message};
    /// let f = BroadcastFrame { conn: 1, data: "xy".into() };
    /// let mut head = Vec::new();
    /// f.encode_head(&mut head);
    /// assert_eq!(head, [1, 0, 0, 0, 2, 0, 0, 0]);
    /// ```
    fn encode_head<B: BufMut>(&self, buf: &mut B) {
        self.encode(buf);
    }
}
