//! Codec and framing for the IPC protocol between a Nostr relay (the
//! *parent*) and its *broadcast worker*, protocol v1 (see `docs/PROTOCOL.md`).
//!
//! - Payloads: [`SubCommand`] (channel 1, parent → worker) and
//!   [`BroadcastFrame`] (channel 2, worker → parent), with zero-copy decode
//!   from [`bytes::Bytes`], encode into any [`bytes::BufMut`], and the
//!   streaming `encode_to` / `decode_from` pair.
//! - Framing: [`FrameDecoder`] (push bytes, pull frames), [`FrameReader`]
//!   (non-blocking `io::Read`), [`FrameWriter`] (queued, coalesced,
//!   partial-write safe `io::Write`), and the receive rules in
//!   [`Frame::message`].
//! - Feature `tokio`: `tokio_codec::FrameCodec` for tokio-util's
//!   `FramedRead`/`FramedWrite` (it pulls in tokio-util, nothing else).
//! - The process layer (spawning workers, the parent's handles, a worker's
//!   transport) is the separate crate `broadcast-process`.
//! - Errors by phase: [`PayloadError`] (non-fatal, drop one message),
//!   [`FramingError`] (fatal for the stream), [`ReadError`] and
//!   [`DecodeFromError`] (with I/O).
//!
//! ```
//! use broadcast_wire::{FrameReader, FrameWriter, NewFlags, ReadStatus, SubCommand};
//!
//! let mut w = FrameWriter::new(Vec::new());
//! w.queue_message(&SubCommand::New { conn: 5, flags: NewFlags::WHITELISTED }).unwrap();
//! w.flush().unwrap();
//!
//! let bytes = w.get_ref().clone();
//! let mut r = FrameReader::new(&bytes[..]);
//! let ReadStatus::Ready(Ok(cmd)) = r.read_message::<SubCommand>().unwrap() else { panic!() };
//! assert_eq!(cmd, SubCommand::New { conn: 5, flags: NewFlags::WHITELISTED });
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod broadcast_frame;
mod decoder;
mod error;
mod fields;
mod flags;
mod frame;
mod message;
mod op;
mod reader;
mod sub_command;
mod sub_id;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio_codec;
mod writer;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use broadcast_frame::BroadcastFrame;
pub use decoder::FrameDecoder;
pub use error::{
    DataProblem, DecodeFromError, Field, FramingError, OversizeFrame, PayloadError, ReadError, SubIdProblem,
};
pub use flags::{BcastFlags, NewFlags, ReservedFlags};
pub use frame::{Frame, HEADER_LEN};
pub use message::Message;
pub use op::Op;
pub use reader::{FrameReader, ReadStatus};
pub use sub_command::{PUBKEY_LEN, SubCommand};
pub use sub_id::SubId;
pub use writer::{DataPart, FrameWriter};

/// Channel of [`SubCommand`] frames (parent → worker).
pub const CHANNEL_SUB_COMMAND: u8 = 1;

/// Channel of [`BroadcastFrame`] frames (worker → parent).
pub const CHANNEL_BROADCAST: u8 = 2;

/// Default maximum payload: 16 MiB (16,777,216 bytes).
pub const DEFAULT_MAX_PAYLOAD: u32 = 16 * 1024 * 1024;
