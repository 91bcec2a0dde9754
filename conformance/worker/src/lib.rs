//! The reference broadcast worker of the broadcast-wire protocol (v1) as a
//! library type: one [`SubCommand`] in, the [`BroadcastFrame`](broadcast_wire::BroadcastFrame)s it causes
//! out ([`Worker::handle`]), with its subscription registry, indexed NIP-01
//! filter matching (and a linear oracle, [`LinearMatcher`]) and the access
//! rules. The `broadcast-worker` binary runs this same state machine over
//! stdio or an inherited socketpair fd (`broadcast_process::worker_io`); the
//! tests, benchmarks and fuzz targets drive it directly. [`locate`] finds
//! that binary next to a program that spawns it (the conformance harness,
//! the example relay).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod bucket;
mod connection;
mod event;
mod filter;
mod hex;
mod index;
mod json;
mod linear;
pub mod locate;
mod matcher;
mod output;
mod req;
mod subscription;

use std::collections::HashMap;
use std::fmt;

use broadcast_wire::{SubCommand, SubId};
use bytes::Bytes;

pub use access::{Access, MARMOT_OPEN_KINDS, PRIVILEGED_KINDS};
pub use bucket::{Bucket, FilterRef};
pub use connection::Connection;
pub use event::{Event, EventError, LetterTag};
pub use filter::{Filter, TagFilter};
pub use hex::decode_hex32;
pub use index::{IndexKey, IndexMatcher};
pub use json::{MAX_DEPTH, nests_deeper_than};
pub use linear::LinearMatcher;
pub use matcher::Matcher;
pub use output::{FrameSink, closed_frame, event_data_parts, event_frame, event_prefix, write_json_string};
pub use req::{ReqError, parse_req};
pub use subscription::{SubSlot, Subscription, Subscriptions};

/// The worker state: connections keyed by `conn`, each with `whitelisted`,
/// its authenticated pubkeys and its subscriptions keyed by sub_id; and a
/// matcher over all subscriptions ([`IndexMatcher`] unless a test asks for
/// the [`LinearMatcher`] oracle).
///
/// ```
/// use broadcast_worker::Worker;
/// use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags, SubCommand, SubId};
///
/// let mut worker = Worker::new();
/// let mut out = Vec::new();
/// worker.handle(&SubCommand::New { conn: 7, flags: NewFlags::EMPTY }, &mut out);
/// worker.handle(&SubCommand::Add {
///     conn: 7,
///     flags: ReservedFlags::EMPTY,
///     sub_id: SubId::try_from("feed").unwrap(),
///     req: br#"["REQ","feed",{"kinds":[1]}]"#.as_slice().into(),
/// }, &mut out);
/// let event = format!(
///     r#"{{"id":"{}","pubkey":"{}","created_at":1,"kind":1,"tags":[],"content":"hi","sig":"{}"}}"#,
///     "a".repeat(64), "b".repeat(64), "c".repeat(128)
/// );
/// worker.handle(&SubCommand::Bcast {
///     sender: -1,
///     flags: BcastFlags::EMPTY,
///     event: format!(r#"["EVENT",{event}]"#).into(),
/// }, &mut out);
/// assert_eq!(out.len(), 1);
/// assert_eq!(out[0].conn, 7);
/// assert_eq!(out[0].data, format!(r#"["EVENT","feed",{event}]"#));
/// ```
#[derive(Debug, Default)]
pub struct Worker<M: Matcher = IndexMatcher> {
    conns: HashMap<i32, Connection>,
    subs: Subscriptions,
    matcher: M,
    found: Vec<SubSlot>,
}

/// What a command did, for logging (the frames it caused are in `out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command changed the state as asked.
    Applied,
    /// Add, Remove or Auth named a connection that does not exist: ignored.
    UnknownConn,
    /// Remove named a subscription that does not exist: nothing to do.
    UnknownSub,
    /// Add's REQ was refused; a `CLOSED` frame was sent and any
    /// subscription with that sub_id removed.
    Refused(ReqError),
    /// Bcast's data is not a valid EVENT message: nothing was delivered.
    InvalidEvent(EventError),
    /// Bcast delivered the event in this many frames.
    Delivered(usize),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Applied => f.write_str("applied"),
            Outcome::UnknownConn => f.write_str("ignored: unknown connection"),
            Outcome::UnknownSub => f.write_str("ignored: unknown subscription"),
            Outcome::Refused(e) => write!(f, "REQ refused with CLOSED \"{e}\""),
            Outcome::InvalidEvent(e) => write!(f, "dropped: {e}"),
            Outcome::Delivered(n) => write!(f, "delivered to {n} subscription(s)"),
        }
    }
}

impl Worker<IndexMatcher> {
    /// An empty worker with the indexed matcher.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<M: Matcher> Worker<M> {
    /// An empty worker with the matcher `M`.
    pub fn with_matcher() -> Self {
        Worker {
            conns: HashMap::new(),
            subs: Subscriptions::default(),
            matcher: M::default(),
            found: Vec::new(),
        }
    }

    /// Applies one command and appends the frames it causes to `out`, in the
    /// order they must be written. Never fails: a command that cannot apply
    /// is dropped as PROTOCOL.md#worker-semantics says, and the [`Outcome`]
    /// tells why.
    pub fn handle(&mut self, cmd: &SubCommand, out: &mut impl FrameSink) -> Outcome {
        match cmd {
            SubCommand::New { conn, flags } => {
                if let Some(old) = self.conns.remove(conn) {
                    self.drop_subscriptions(old);
                }
                self.conns.insert(*conn, Connection::new(flags.whitelisted()));
                Outcome::Applied
            }
            SubCommand::Close { conn, .. } => match self.conns.remove(conn) {
                Some(old) => {
                    self.drop_subscriptions(old);
                    Outcome::Applied
                }
                None => Outcome::UnknownConn,
            },
            SubCommand::Add {
                conn, sub_id, req, ..
            } => self.add(*conn, sub_id, req, out),
            SubCommand::Remove { conn, sub_id, .. } => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return Outcome::UnknownConn;
                };
                match c.subs.remove(sub_id.as_str()) {
                    Some(slot) => {
                        self.drop_slot(slot);
                        Outcome::Applied
                    }
                    None => Outcome::UnknownSub,
                }
            }
            SubCommand::Auth { conn, pubkey, .. } => match self.conns.get_mut(conn) {
                Some(c) => {
                    c.authenticate(*pubkey);
                    Outcome::Applied
                }
                None => Outcome::UnknownConn,
            },
            SubCommand::Bcast { flags, event, .. } => match Event::parse(event) {
                Ok(ev) => Outcome::Delivered(self.deliver(event, &ev, Access::for_event(*flags, &ev), out)),
                Err(e) => Outcome::InvalidEvent(e),
            },
        }
    }

    fn add(&mut self, conn: i32, sub_id: &SubId, req: &[u8], out: &mut impl FrameSink) -> Outcome {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Outcome::UnknownConn;
        };
        let parsed = parse_req(req, sub_id.as_str());
        // Success replaces, failure removes: either way the old one goes.
        let old = c.subs.remove(sub_id.as_str());
        let outcome = match parsed {
            Ok(filters) => {
                let sub = Subscription {
                    conn,
                    event_prefix: event_prefix(sub_id.as_str()),
                    filters: filters.into_boxed_slice(),
                };
                let slot = self.subs.insert(sub);
                if let Some(sub) = self.subs.get(slot) {
                    self.matcher.insert(slot, sub);
                }
                c.subs.insert(Box::from(sub_id.as_str()), slot);
                Outcome::Applied
            }
            Err(e) => {
                out.frame(closed_frame(conn, sub_id.as_str(), &e));
                Outcome::Refused(e)
            }
        };
        if let Some(slot) = old {
            self.drop_slot(slot);
        }
        outcome
    }

    /// Delivers `event`, parsed from `data`, to every matching subscription
    /// the access rules let see it.
    fn deliver(&mut self, data: &Bytes, event: &Event, access: Access, out: &mut impl FrameSink) -> usize {
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.matcher.find(&self.subs, event, &mut found);
        // One handle to the event's bytes, shared by all of its frames.
        let raw = if found.is_empty() {
            Bytes::new()
        } else {
            subslice_handle(data, event.raw())
        };
        let mut delivered = 0;
        for slot in &found {
            let Some(sub) = self.subs.get(*slot) else { continue };
            if !access.is_open() {
                let allowed = self
                    .conns
                    .get(&sub.conn)
                    .is_some_and(|c| access.allows(c.whitelisted, &c.authenticated));
                if !allowed {
                    continue;
                }
            }
            out.event(sub.conn, &sub.event_prefix, &raw);
            delivered += 1;
        }
        self.found = found;
        delivered
    }

    fn drop_subscriptions(&mut self, conn: Connection) {
        for slot in conn.subs.into_values() {
            self.drop_slot(slot);
        }
    }

    fn drop_slot(&mut self, slot: SubSlot) {
        if let Some(sub) = self.subs.get(slot) {
            self.matcher.remove(slot, sub);
        }
        self.subs.remove(slot);
    }

    /// The connection `conn`, if it exists.
    pub fn connection(&self, conn: i32) -> Option<&Connection> {
        self.conns.get(&conn)
    }

    /// Number of connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of live subscriptions over all connections.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// The matcher (to inspect the index in tests).
    pub fn matcher(&self) -> &M {
        &self.matcher
    }
}

/// A handle to `part`, which [`Event::parse`] borrows from `data`: the same
/// bytes without a copy. Were it ever not inside `data`, a copy (never a
/// panic, as `Bytes::slice_ref` would).
fn subslice_handle(data: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
    match data.get(start..start.wrapping_add(part.len())) {
        Some(inside) if inside.as_ptr() == part.as_ptr() => data.slice(start..start + part.len()),
        _ => Bytes::copy_from_slice(part),
    }
}
