//! Proptest strategies (feature `proptest`) for relay code that wants to
//! property-test against the same generators this crate uses.
//!
//! The value strategies produce only *valid* messages; [`raw_frame`] and
//! [`frame_stream`] produce frames on any channel with any payload.
//!
//! ```
//! use broadcast_wire::{SubCommand, strategies};
//! use proptest::prelude::*;
//!
//! proptest!(|(cmd in strategies::sub_command())| {
//!     let mut buf = Vec::new();
//!     cmd.encode(&mut buf);
//!     prop_assert_eq!(SubCommand::decode(buf.into()).unwrap(), cmd);
//! });
//! ```

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{BcastFlags, BroadcastFrame, Frame, NewFlags, PUBKEY_LEN, ReservedFlags, SubCommand, SubId};

/// Valid sub_ids: 1–64 bytes of UTF-8, ASCII or not, up to the exact limit.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let id = broadcast_wire::strategies::sub_id().new_tree(&mut runner).unwrap().current();
/// assert!((1..=64).contains(&id.len()));
/// ```
pub fn sub_id() -> impl Strategy<Value = SubId> {
    prop_oneof![
        "[a-zA-Z0-9:_-]{1,64}",
        // Multibyte text, cut to the byte limit on a char boundary.
        "\\PC{1,64}",
    ]
    .prop_map(|s: String| {
        let mut id = String::new();
        for c in s.chars() {
            if id.len() + c.len_utf8() > SubId::MAX_LEN {
                break;
            }
            id.push(c);
        }
        SubId::try_from(id).unwrap_or_else(|_| SubId::try_from("s").expect("static sub_id is valid"))
    })
}

/// Non-empty data of up to `max` bytes.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let b = broadcast_wire::strategies::non_empty_data(8).new_tree(&mut runner).unwrap().current();
/// assert!((1..=8).contains(&b.len()));
/// ```
pub fn non_empty_data(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..=max.max(1)).prop_map(Bytes::from)
}

/// Valid SubCommands of every op, with any flags byte (reserved bits too).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let cmd = broadcast_wire::strategies::sub_command().new_tree(&mut runner).unwrap().current();
/// assert!(cmd.validate().is_ok());
/// ```
pub fn sub_command() -> impl Strategy<Value = SubCommand> {
    let conn = 0..=i32::MAX;
    prop_oneof![
        (conn.clone(), any::<u8>()).prop_map(|(conn, f)| SubCommand::New {
            conn,
            flags: NewFlags::from_bits(f)
        }),
        (conn.clone(), any::<u8>()).prop_map(|(conn, f)| SubCommand::Close {
            conn,
            flags: ReservedFlags::from_bits(f)
        }),
        (conn.clone(), any::<u8>(), sub_id(), non_empty_data(512)).prop_map(|(conn, f, sub_id, req)| {
            SubCommand::Add {
                conn,
                flags: ReservedFlags::from_bits(f),
                sub_id,
                req,
            }
        }),
        (conn.clone(), any::<u8>(), sub_id()).prop_map(|(conn, f, sub_id)| SubCommand::Remove {
            conn,
            flags: ReservedFlags::from_bits(f),
            sub_id
        }),
        (conn, any::<u8>(), any::<[u8; PUBKEY_LEN]>()).prop_map(|(conn, f, pubkey)| SubCommand::Auth {
            conn,
            flags: ReservedFlags::from_bits(f),
            pubkey
        }),
        (-1..=i32::MAX, any::<u8>(), non_empty_data(2048)).prop_map(|(sender, f, event)| SubCommand::Bcast {
            sender,
            flags: BcastFlags::from_bits(f),
            event
        }),
    ]
}

/// Valid BroadcastFrames.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let f = broadcast_wire::strategies::broadcast_frame().new_tree(&mut runner).unwrap().current();
/// assert!(f.validate().is_ok());
/// ```
pub fn broadcast_frame() -> impl Strategy<Value = BroadcastFrame> {
    (0..=i32::MAX, non_empty_data(2048)).prop_map(|(conn, data)| BroadcastFrame { conn, data })
}

/// Raw frames: channels 0–255 (weighted towards 1 and 2), payloads of 0 to
/// `max_payload` arbitrary bytes (0 is a heartbeat).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let f = broadcast_wire::strategies::raw_frame(16).new_tree(&mut runner).unwrap().current();
/// assert!(f.payload.len() <= 16);
/// ```
pub fn raw_frame(max_payload: usize) -> impl Strategy<Value = Frame> {
    let chan = prop_oneof![3 => Just(1u8), 3 => Just(2u8), 1 => Just(0u8), 2 => any::<u8>()];
    (chan, vec(any::<u8>(), 0..=max_payload))
        .prop_map(|(chan, payload)| Frame::new(chan, Bytes::from(payload)))
}

/// Streams of raw frames: up to `max_frames` frames from [`raw_frame`].
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::default();
/// let s = broadcast_wire::strategies::frame_stream(4, 8).new_tree(&mut runner).unwrap().current();
/// assert!(s.len() <= 4);
/// ```
pub fn frame_stream(max_frames: usize, max_payload: usize) -> impl Strategy<Value = Vec<Frame>> {
    vec(raw_frame(max_payload), 0..=max_frames)
}
