//! `arbitrary::Arbitrary` impls (feature `arbitrary`) that generate only
//! *valid* values: whatever they produce encodes to bytes that decode back to
//! the same value. Raw, possibly invalid bytes are what fuzzers already feed.

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

use crate::{BcastFlags, BroadcastFrame, Frame, NewFlags, PUBKEY_LEN, ReservedFlags, SubCommand, SubId};

fn non_empty_bytes(u: &mut Unstructured<'_>) -> Result<Bytes> {
    let mut v: Vec<u8> = u.arbitrary()?;
    if v.is_empty() {
        v.push(u.arbitrary()?);
    }
    Ok(Bytes::from(v))
}

impl<'a> Arbitrary<'a> for SubId {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let text: String = u.arbitrary()?;
        let mut id = String::new();
        for c in text.chars() {
            if id.len() + c.len_utf8() > SubId::MAX_LEN {
                break;
            }
            id.push(c);
        }
        if id.is_empty() {
            id.push(char::from(u.int_in_range(b'!'..=b'~')?));
        }
        SubId::try_from(id).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

impl<'a> Arbitrary<'a> for NewFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(NewFlags::from_bits(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for BcastFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(BcastFlags::from_bits(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for ReservedFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(ReservedFlags::from_bits(u.arbitrary()?))
    }
}

impl<'a> Arbitrary<'a> for SubCommand {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let conn = u.int_in_range(0..=i32::MAX)?;
        Ok(match u.int_in_range(1u8..=6)? {
            1 => SubCommand::New {
                conn,
                flags: u.arbitrary()?,
            },
            2 => SubCommand::Close {
                conn,
                flags: u.arbitrary()?,
            },
            3 => SubCommand::Add {
                conn,
                flags: u.arbitrary()?,
                sub_id: u.arbitrary()?,
                req: non_empty_bytes(u)?,
            },
            4 => SubCommand::Remove {
                conn,
                flags: u.arbitrary()?,
                sub_id: u.arbitrary()?,
            },
            5 => SubCommand::Auth {
                conn,
                flags: u.arbitrary()?,
                pubkey: u.arbitrary::<[u8; PUBKEY_LEN]>()?,
            },
            _ => SubCommand::Bcast {
                sender: u.int_in_range(-1..=i32::MAX)?,
                flags: u.arbitrary()?,
                event: non_empty_bytes(u)?,
            },
        })
    }
}

impl<'a> Arbitrary<'a> for BroadcastFrame {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(BroadcastFrame {
            conn: u.int_in_range(0..=i32::MAX)?,
            data: non_empty_bytes(u)?,
        })
    }
}

/// Raw frames: any channel, any payload (heartbeats included).
impl<'a> Arbitrary<'a> for Frame {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Frame::new(u.arbitrary()?, Bytes::from(u.arbitrary::<Vec<u8>>()?)))
    }
}
