//! SubCommand: the channel-1 payload, parent → worker (PROTOCOL.md#subcommand-layout).
//!
//! ```text
//! offset 0    op          u8
//! offset 1    flags       u8
//! offset 2    conn        i32, little-endian
//! offset 6    sub_id_len  u32, little-endian
//! offset 10   sub_id      sub_id_len bytes
//! then        data_len    u32, little-endian
//! then        data        data_len bytes
//! ```

use std::io::{self, Read, Write};

use byteorder::{LittleEndian, WriteBytesExt};
use bytes::{BufMut, Bytes};

use crate::CHANNEL_SUB_COMMAND;
use crate::error::{DataProblem, DecodeFromError, Field, PayloadError, SubIdProblem};
use crate::fields::{FieldSource, SliceFields, StreamFields};
use crate::flags::{BcastFlags, NewFlags, ReservedFlags};
use crate::message::Message;
use crate::op::Op;
use crate::sub_id::SubId;

/// Length of an Auth pubkey in bytes.
pub const PUBKEY_LEN: usize = 32;

/// A command from the parent to the worker (channel 1).
///
/// Decoding is zero-copy: `sub_id`, `req` and `event` are slices of the
/// payload buffer. Flags keep their reserved bits, so decode → encode gives
/// back the same bytes.
///
/// ```
/// use broadcast_wire::{BcastFlags, SubCommand};
/// use bytes::Bytes;
///
/// let cmd = SubCommand::Bcast {
///     sender: -1,
///     flags: BcastFlags::NEED_FILTER,
///     event: Bytes::from_static(br#"["EVENT",{}]"#),
/// };
/// let mut buf = Vec::new();
/// cmd.encode(&mut buf);
/// assert_eq!(buf.len(), cmd.encoded_len());
/// assert_eq!(SubCommand::decode(Bytes::from(buf)).unwrap(), cmd);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubCommand {
    /// op 1: connection `conn` opened; resets it if it exists.
    New {
        /// The parent's socket fd, ≥ 0.
        conn: i32,
        /// Bit 0: whitelisted.
        flags: NewFlags,
    },
    /// op 2: connection `conn` closed.
    Close {
        /// The parent's socket fd, ≥ 0.
        conn: i32,
        /// No bit defined.
        flags: ReservedFlags,
    },
    /// op 3: add or replace subscription `sub_id` on `conn`.
    Add {
        /// The parent's socket fd, ≥ 0.
        conn: i32,
        /// No bit defined.
        flags: ReservedFlags,
        /// The subscription id (1–64 bytes of UTF-8).
        sub_id: SubId,
        /// The raw REQ message, non-empty.
        req: Bytes,
    },
    /// op 4: remove subscription `sub_id` from `conn`.
    Remove {
        /// The parent's socket fd, ≥ 0.
        conn: i32,
        /// No bit defined.
        flags: ReservedFlags,
        /// The subscription id (1–64 bytes of UTF-8).
        sub_id: SubId,
    },
    /// op 5: `conn` authenticated `pubkey` (NIP-42).
    Auth {
        /// The parent's socket fd, ≥ 0.
        conn: i32,
        /// No bit defined.
        flags: ReservedFlags,
        /// The binary pubkey.
        pubkey: [u8; PUBKEY_LEN],
    },
    /// op 6: fan out an accepted event.
    Bcast {
        /// The publishing connection, or −1 for an event from no connection.
        sender: i32,
        /// need_filter, nip70_enforce, marmot_open.
        flags: BcastFlags,
        /// The raw EVENT message, non-empty.
        event: Bytes,
    },
}

/// The common layout every op is parsed with before its rules are checked.
struct RawFields {
    op: u8,
    flags: u8,
    conn: i32,
    sub_id: Bytes,
    data: Bytes,
}

impl RawFields {
    fn parse<S: FieldSource>(src: &mut S) -> Result<RawFields, S::Error> {
        let op = src.u8(Field::Op)?;
        let flags = src.u8(Field::Flags)?;
        let conn = src.i32(Field::Conn)?;
        let sub_id_len = src.u32(Field::SubIdLen)?;
        let sub_id = src.bytes(sub_id_len, Field::SubId)?;
        let data_len = src.u32(Field::DataLen)?;
        let data = src.bytes(data_len, Field::Data)?;
        // "The payload MUST be consumed exactly: trailing bytes are an error."
        src.finish()?;
        Ok(RawFields {
            op,
            flags,
            conn,
            sub_id,
            data,
        })
    }

    /// The semantic classes, in the spec's order: unknown_op, invalid_conn,
    /// invalid_sub_id, invalid_data.
    #[inline]
    fn check(self) -> Result<SubCommand, PayloadError> {
        let op = Op::from_u8(self.op).ok_or(PayloadError::UnknownOp { op: self.op })?;
        let min = op.min_conn();
        if self.conn < min {
            return Err(PayloadError::InvalidConn { conn: self.conn, min });
        }
        let sub_id = match op {
            Op::Add | Op::Remove => {
                Some(SubId::new(self.sub_id).map_err(|problem| PayloadError::InvalidSubId { problem })?)
            }
            _ if !self.sub_id.is_empty() => {
                return Err(PayloadError::InvalidSubId {
                    problem: SubIdProblem::Forbidden {
                        len: self.sub_id.len(),
                    },
                });
            }
            _ => None,
        };
        let data = self.data;
        let data_problem = match op {
            Op::New | Op::Close | Op::Remove if !data.is_empty() => {
                Some(DataProblem::Forbidden { len: data.len() })
            }
            Op::Add | Op::Bcast if data.is_empty() => Some(DataProblem::Missing),
            Op::Auth if data.len() != PUBKEY_LEN => Some(DataProblem::WrongLength { len: data.len() }),
            _ => None,
        };
        if let Some(problem) = data_problem {
            return Err(PayloadError::InvalidData { problem });
        }
        let conn = self.conn;
        // `sub_id` is Some exactly for Add and Remove (checked above); the
        // `let ... else` arms below cannot fail but keep decoding panic-free.
        let missing = PayloadError::InvalidSubId {
            problem: SubIdProblem::Missing,
        };
        Ok(match op {
            Op::New => SubCommand::New {
                conn,
                flags: NewFlags::from_bits(self.flags),
            },
            Op::Close => SubCommand::Close {
                conn,
                flags: ReservedFlags::from_bits(self.flags),
            },
            Op::Add => {
                let Some(sub_id) = sub_id else { return Err(missing) };
                SubCommand::Add {
                    conn,
                    flags: ReservedFlags::from_bits(self.flags),
                    sub_id,
                    req: data,
                }
            }
            Op::Remove => {
                let Some(sub_id) = sub_id else { return Err(missing) };
                SubCommand::Remove {
                    conn,
                    flags: ReservedFlags::from_bits(self.flags),
                    sub_id,
                }
            }
            Op::Auth => {
                let mut pubkey = [0u8; PUBKEY_LEN];
                pubkey.copy_from_slice(&data);
                SubCommand::Auth {
                    conn,
                    flags: ReservedFlags::from_bits(self.flags),
                    pubkey,
                }
            }
            Op::Bcast => SubCommand::Bcast {
                sender: conn,
                flags: BcastFlags::from_bits(self.flags),
                event: data,
            },
        })
    }
}

impl SubCommand {
    /// Size of the fixed fields (op, flags, conn, sub_id_len, data_len).
    pub const FIXED_LEN: usize = 14;

    /// The op of this command.
    ///
    /// ```
    /// use broadcast_wire::{NewFlags, Op, SubCommand};
    /// assert_eq!(SubCommand::New { conn: 1, flags: NewFlags::EMPTY }.op(), Op::New);
    /// ```
    pub fn op(&self) -> Op {
        match self {
            SubCommand::New { .. } => Op::New,
            SubCommand::Close { .. } => Op::Close,
            SubCommand::Add { .. } => Op::Add,
            SubCommand::Remove { .. } => Op::Remove,
            SubCommand::Auth { .. } => Op::Auth,
            SubCommand::Bcast { .. } => Op::Bcast,
        }
    }

    /// The `conn` field (for Bcast, the sender, possibly −1).
    ///
    /// ```
    /// use broadcast_wire::{BcastFlags, SubCommand};
    /// let c = SubCommand::Bcast { sender: -1, flags: BcastFlags::EMPTY, event: "x".into() };
    /// assert_eq!(c.conn(), -1);
    /// ```
    pub fn conn(&self) -> i32 {
        match self {
            SubCommand::New { conn, .. }
            | SubCommand::Close { conn, .. }
            | SubCommand::Add { conn, .. }
            | SubCommand::Remove { conn, .. }
            | SubCommand::Auth { conn, .. } => *conn,
            SubCommand::Bcast { sender, .. } => *sender,
        }
    }

    /// The raw flags byte, reserved bits included.
    ///
    /// ```
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// assert_eq!(SubCommand::New { conn: 1, flags: NewFlags::WHITELISTED }.flags_bits(), 1);
    /// ```
    pub fn flags_bits(&self) -> u8 {
        match self {
            SubCommand::New { flags, .. } => flags.bits(),
            SubCommand::Close { flags, .. }
            | SubCommand::Add { flags, .. }
            | SubCommand::Remove { flags, .. }
            | SubCommand::Auth { flags, .. } => flags.bits(),
            SubCommand::Bcast { flags, .. } => flags.bits(),
        }
    }

    /// The sub_id, for Add and Remove.
    ///
    /// ```
    /// use broadcast_wire::{ReservedFlags, SubCommand, SubId};
    /// let c = SubCommand::Remove { conn: 1, flags: ReservedFlags::EMPTY, sub_id: SubId::try_from("s").unwrap() };
    /// assert_eq!(c.sub_id().unwrap().as_str(), "s");
    /// ```
    pub fn sub_id(&self) -> Option<&SubId> {
        match self {
            SubCommand::Add { sub_id, .. } | SubCommand::Remove { sub_id, .. } => Some(sub_id),
            _ => None,
        }
    }

    /// The data field's bytes: the REQ, the pubkey, the EVENT, or empty.
    ///
    /// ```
    /// use broadcast_wire::{ReservedFlags, SubCommand};
    /// let c = SubCommand::Auth { conn: 1, flags: ReservedFlags::EMPTY, pubkey: [7; 32] };
    /// assert_eq!(c.data(), &[7u8; 32][..]);
    /// ```
    pub fn data(&self) -> &[u8] {
        match self {
            SubCommand::Add { req, .. } => req,
            SubCommand::Auth { pubkey, .. } => pubkey,
            SubCommand::Bcast { event, .. } => event,
            _ => &[],
        }
    }

    fn sub_id_bytes(&self) -> &[u8] {
        self.sub_id().map(|s| &s.as_bytes()[..]).unwrap_or(&[])
    }

    /// Checks the rules the type cannot express: `conn` in range and non-empty
    /// `req`/`event`. Returns the error decoding the encoded bytes would give.
    ///
    /// ```
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// assert!(SubCommand::New { conn: 0, flags: NewFlags::EMPTY }.validate().is_ok());
    /// assert_eq!(SubCommand::New { conn: -1, flags: NewFlags::EMPTY }.validate().unwrap_err().class(), "invalid_conn");
    /// ```
    pub fn validate(&self) -> Result<(), PayloadError> {
        let min = self.op().min_conn();
        if self.conn() < min {
            return Err(PayloadError::InvalidConn {
                conn: self.conn(),
                min,
            });
        }
        if matches!(self, SubCommand::Add { .. } | SubCommand::Bcast { .. }) && self.data().is_empty() {
            return Err(PayloadError::InvalidData {
                problem: DataProblem::Missing,
            });
        }
        Ok(())
    }

    /// Number of bytes [`SubCommand::encode`] writes.
    ///
    /// ```
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// assert_eq!(SubCommand::New { conn: 1, flags: NewFlags::EMPTY }.encoded_len(), 14);
    /// ```
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + self.sub_id_bytes().len() + self.data().len()
    }

    /// Writes the payload (no frame header) into `buf`.
    ///
    /// The value is written as it is: call [`SubCommand::validate`] first if
    /// it may break a rule, and keep `req`/`event` under 4 GiB (the frame
    /// maximum is far lower anyway).
    ///
    /// ```
    /// use broadcast_wire::{ReservedFlags, SubCommand};
    /// let mut buf = bytes::BytesMut::new();
    /// SubCommand::Close { conn: 7, flags: ReservedFlags::EMPTY }.encode(&mut buf);
    /// assert_eq!(&buf[..], &[2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    /// ```
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.encode_fixed(buf);
        buf.put_slice(self.data());
    }

    /// Every field before the data: op, flags, conn, sub_id, data_len.
    fn encode_fixed<B: BufMut>(&self, buf: &mut B) {
        let sub_id = self.sub_id_bytes();
        buf.put_u8(self.op().as_u8());
        buf.put_u8(self.flags_bits());
        buf.put_i32_le(self.conn());
        buf.put_u32_le(sub_id.len() as u32);
        buf.put_slice(sub_id);
        buf.put_u32_le(self.data().len() as u32);
    }

    /// The data field as a handle, when it is one (Add's `req`, Bcast's
    /// `event`).
    fn data_bytes(&self) -> Option<&Bytes> {
        match self {
            SubCommand::Add { req, .. } => Some(req),
            SubCommand::Bcast { event, .. } => Some(event),
            _ => None,
        }
    }

    /// Decodes one payload (no frame header). `sub_id`, `req` and `event`
    /// share `payload`'s buffer.
    ///
    /// ```
    /// use broadcast_wire::{Op, SubCommand};
    /// let cmd = SubCommand::decode(bytes::Bytes::from_static(&[2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap();
    /// assert_eq!((cmd.op(), cmd.conn()), (Op::Close, 7));
    /// ```
    pub fn decode(payload: Bytes) -> Result<SubCommand, PayloadError> {
        RawFields::parse(&mut SliceFields::new(payload))?.check()
    }

    /// Writes the payload to `w` field by field, like the original Go
    /// `EncodeTo` (wrap unbuffered writers in a `BufWriter`).
    ///
    /// ```
    /// use broadcast_wire::{ReservedFlags, SubCommand};
    /// let mut out = Vec::new();
    /// SubCommand::Close { conn: 7, flags: ReservedFlags::EMPTY }.encode_to(&mut out).unwrap();
    /// assert_eq!(out.len(), 14);
    /// ```
    pub fn encode_to<W: Write>(&self, mut w: W) -> io::Result<()> {
        let sub_id = self.sub_id_bytes();
        let data = self.data();
        w.write_u8(self.op().as_u8())?;
        w.write_u8(self.flags_bits())?;
        w.write_i32::<LittleEndian>(self.conn())?;
        w.write_u32::<LittleEndian>(sub_id.len() as u32)?;
        w.write_all(sub_id)?;
        w.write_u32::<LittleEndian>(data.len() as u32)?;
        w.write_all(data)
    }

    /// Reads one payload from `r`, which must hold exactly that payload (read
    /// to its end), like the original Go `DecodeFrom`. Gives the same outcome
    /// as [`SubCommand::decode`] on the same bytes, and allocates only for
    /// bytes that actually arrive, whatever the length fields say.
    ///
    /// ```
    /// use broadcast_wire::{Op, SubCommand};
    /// let bytes = [2u8, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    /// assert_eq!(SubCommand::decode_from(&bytes[..]).unwrap().op(), Op::Close);
    /// ```
    pub fn decode_from<R: Read>(r: R) -> Result<SubCommand, DecodeFromError> {
        Ok(RawFields::parse(&mut StreamFields::new(r))?.check()?)
    }
}

impl Message for SubCommand {
    const CHANNEL: u8 = CHANNEL_SUB_COMMAND;

    fn encoded_len(&self) -> usize {
        SubCommand::encoded_len(self)
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        SubCommand::encode(self, buf)
    }

    fn decode(payload: Bytes) -> Result<Self, PayloadError> {
        SubCommand::decode(payload)
    }

    fn data_tail(&self) -> Option<&Bytes> {
        self.data_bytes()
    }

    fn encode_head<B: BufMut>(&self, buf: &mut B) {
        match self.data_bytes() {
            Some(_) => self.encode_fixed(buf),
            None => SubCommand::encode(self, buf),
        }
    }
}
