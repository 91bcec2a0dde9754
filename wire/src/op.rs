//! The SubCommand op codes.

use std::fmt;

/// The op code of a [`crate::SubCommand`] (PROTOCOL.md#operations). 0 and 7–255 are
/// unknown and decode as [`crate::PayloadError::UnknownOp`].
///
/// ```
/// use broadcast_wire::Op;
///
/// assert_eq!(Op::from_u8(3), Some(Op::Add));
/// assert_eq!(Op::Add.as_u8(), 3);
/// assert_eq!(Op::Add.name(), "add");
/// assert_eq!(Op::from_u8(7), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Op {
    /// 1: a connection opened (or its fd was reused).
    New = 1,
    /// 2: a connection closed.
    Close = 2,
    /// 3: a REQ: add or replace a subscription.
    Add = 3,
    /// 4: a CLOSE: remove a subscription.
    Remove = 4,
    /// 5: a connection authenticated a pubkey (NIP-42).
    Auth = 5,
    /// 6: an accepted event to fan out.
    Bcast = 6,
}

impl Op {
    /// All six ops in code order.
    pub const ALL: [Op; 6] = [Op::New, Op::Close, Op::Add, Op::Remove, Op::Auth, Op::Bcast];

    /// The op for a code byte, or `None` for an unknown op.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Op::from_u8(6), Some(broadcast_wire::Op::Bcast));
    /// ```
    pub const fn from_u8(code: u8) -> Option<Op> {
        match code {
            1 => Some(Op::New),
            2 => Some(Op::Close),
            3 => Some(Op::Add),
            4 => Some(Op::Remove),
            5 => Some(Op::Auth),
            6 => Some(Op::Bcast),
            _ => None,
        }
    }

    /// The code byte.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Op::New.as_u8(), 1);
    /// ```
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The lowercase name used in the vectors and the CLI's JSON.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Op::Bcast.name(), "bcast");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Op::New => "new",
            Op::Close => "close",
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Auth => "auth",
            Op::Bcast => "bcast",
        }
    }

    /// The op for a lowercase name, the inverse of [`Op::name`].
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Op::from_name("auth"), Some(broadcast_wire::Op::Auth));
    /// ```
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The smallest `conn` the op accepts: −1 for Bcast (an event from no
    /// connection), 0 for the others.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::Op::Bcast.min_conn(), -1);
    /// ```
    pub const fn min_conn(self) -> i32 {
        match self {
            Op::Bcast => -1,
            _ => 0,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
