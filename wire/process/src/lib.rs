//! The process layer of the broadcast-wire protocol (v1, see
//! `docs/PROTOCOL.md`): everything that runs a worker process or talks to
//! one over fds. The codec and framing live in [`broadcast_wire`], which
//! this crate builds on.
//!
//! - [`link::Link`]: the I/O-free core of one worker link (the outbound
//!   queue and its admission, inbound decoding, the read-ahead rule, the
//!   gone/closed/ended states), which every handle below drives.
//! - [`broadcaster::Broadcaster`]: the parent's blocking handle on one
//!   worker, for `poll`/epoll/mio event loops.
//! - [`broadcaster::sharded::ShardedBroadcaster`]: K workers behind one
//!   blocking handle.
//! - `async_broadcaster::{AsyncBroadcaster, AsyncShardedBroadcaster}`
//!   (feature `tokio`): the same handles for tokio relays.
//! - [`worker_io`]: a worker binary's transport (stdio, or `--fd N`).
//!
//! The handles and `worker_io` are unix only; `link` builds everywhere.
//! The crate has no `unsafe` code.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(all(unix, feature = "tokio"))]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod async_broadcaster;
#[cfg(unix)]
pub mod broadcaster;
#[cfg(unix)]
mod commands;
pub mod link;
#[cfg(unix)]
pub mod worker_io;
