//! The chan-ID frame (PROTOCOL.md#frame-layout) and the receive rules
//! (PROTOCOL.md#receiving-frames).
//!
//! ```text
//! offset 0   chan     u8
//! offset 1   len      u32, little-endian: payload length in bytes
//! offset 5   payload  len bytes
//! ```

use bytes::{BufMut, Bytes};

use crate::error::PayloadError;
use crate::message::Message;

/// Size of a frame header: one channel byte and a `u32` length.
pub const HEADER_LEN: usize = 5;

/// One frame as it travels: a channel id and an opaque payload.
///
/// ```
/// use broadcast_wire::Frame;
///
/// let hb = Frame::heartbeat(1);
/// assert!(hb.is_heartbeat());
/// let mut buf = Vec::new();
/// hb.encode(&mut buf);
/// assert_eq!(buf, [1, 0, 0, 0, 0]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The channel id.
    pub chan: u8,
    /// The payload bytes.
    pub payload: Bytes,
}

impl Frame {
    /// A frame on `chan` carrying `payload`.
    ///
    /// ```
    /// let f = broadcast_wire::Frame::new(3, "abc".into());
    /// assert_eq!(f.encoded_len(), 8);
    /// ```
    pub fn new(chan: u8, payload: Bytes) -> Frame {
        Frame { chan, payload }
    }

    /// A zero-length frame, which every receiver skips.
    ///
    /// ```
    /// assert!(broadcast_wire::Frame::heartbeat(2).payload.is_empty());
    /// ```
    pub fn heartbeat(chan: u8) -> Frame {
        Frame {
            chan,
            payload: Bytes::new(),
        }
    }

    /// The frame carrying `msg`'s encoding on its channel.
    ///
    /// ```
    /// use broadcast_wire::{BroadcastFrame, Frame};
    /// let f = Frame::from_message(&BroadcastFrame { conn: 1, data: "x".into() });
    /// assert_eq!(f.chan, 2);
    /// ```
    pub fn from_message<M: Message>(msg: &M) -> Frame {
        let mut payload = Vec::with_capacity(msg.encoded_len());
        msg.encode(&mut payload);
        Frame {
            chan: M::CHANNEL,
            payload: payload.into(),
        }
    }

    /// "A frame with `len == 0` is a heartbeat on any channel."
    ///
    /// ```
    /// assert!(!broadcast_wire::Frame::new(1, "x".into()).is_heartbeat());
    /// ```
    pub fn is_heartbeat(&self) -> bool {
        self.payload.is_empty()
    }

    /// Length of header plus payload.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Frame::heartbeat(0).encoded_len(), 5);
    /// ```
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the header and the payload. The payload must be under 4 GiB
    /// (use a [`crate::FrameWriter`] to have the maximum checked).
    ///
    /// ```
    /// let mut v = Vec::new();
    /// broadcast_wire::Frame::new(9, "a".into()).encode(&mut v);
    /// assert_eq!(v, [9, 1, 0, 0, 0, b'a']);
    /// ```
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(self.chan);
        buf.put_u32_le(self.payload.len() as u32);
        buf.put_slice(&self.payload);
    }

    /// Applies the receive rules for a consumer of `M`: `None` for a heartbeat
    /// or a frame on another channel ("a receiver MUST skip, whole, every
    /// frame on a channel it does not consume"), else the decoded payload or
    /// its non-fatal error. The payload buffer is shared, not copied.
    ///
    /// ```
    /// use broadcast_wire::{Frame, SubCommand};
    /// assert!(Frame::heartbeat(1).message::<SubCommand>().is_none());
    /// assert!(Frame::new(2, "zz".into()).message::<SubCommand>().is_none());
    /// assert!(Frame::new(1, "zz".into()).message::<SubCommand>().unwrap().is_err());
    /// ```
    pub fn message<M: Message>(&self) -> Option<Result<M, PayloadError>> {
        if !carries::<M>(self.chan, self.payload.len()) {
            return None;
        }
        Some(M::decode(self.payload.clone()))
    }

    /// [`Frame::message`] for an owned frame: the payload moves into the
    /// decoder instead of being cloned (no reference-count round trip).
    pub(crate) fn into_message<M: Message>(self) -> Option<Result<M, PayloadError>> {
        if !carries::<M>(self.chan, self.payload.len()) {
            return None;
        }
        Some(M::decode(self.payload))
    }
}

/// The receive rule (PROTOCOL.md#receiving-frames), from a frame's header
/// alone: whether a frame on `chan` with a `len`-byte payload carries an `M`
/// for its consumer. Heartbeats (`len == 0`) and frames on another channel
/// do not, and are skipped whole.
#[inline]
pub(crate) fn carries<M: Message>(chan: u8, len: usize) -> bool {
    chan == M::CHANNEL && len != 0
}
