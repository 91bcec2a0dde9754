//! The relay-facing names of the commands, defined once for every handle.
//!
//! The original parent package called its commands `OnConnect`,
//! `OnDisconnect`, `OnSubscribe`, `OnUnsubscribe`, `OnAuth` and `Fanout`.
//! Each handle of this crate offers them under those names (and, for the
//! tokio handles, a `try_` form that never waits). The commands are built
//! here, by one function each, and the methods of all four handles are
//! written out by one macro, [`relay_commands!`], from each handle's own
//! `send`.

use bytes::Bytes;

use broadcast_wire::{BcastFlags, NewFlags, PUBKEY_LEN, PayloadError, ReservedFlags, SubCommand, SubId};

use crate::link::SendError;

/// New for `conn`: `whitelisted` lets it see privileged and protected events.
pub(crate) fn connect(conn: i32, whitelisted: bool) -> SubCommand {
    let flags = if whitelisted {
        NewFlags::WHITELISTED
    } else {
        NewFlags::EMPTY
    };
    SubCommand::New { conn, flags }
}

/// Close for `conn`.
pub(crate) fn disconnect(conn: i32) -> SubCommand {
    SubCommand::Close {
        conn,
        flags: ReservedFlags::EMPTY,
    }
}

/// Add of `sub_id` on `conn` with the raw REQ; a sub_id the protocol does
/// not allow is refused here, before any queue sees it.
pub(crate) fn subscribe(conn: i32, sub_id: &str, req: Bytes) -> Result<SubCommand, SendError> {
    Ok(SubCommand::Add {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub_id_of(sub_id)?,
        req,
    })
}

/// Remove of `sub_id` on `conn`.
pub(crate) fn unsubscribe(conn: i32, sub_id: &str) -> Result<SubCommand, SendError> {
    Ok(SubCommand::Remove {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub_id_of(sub_id)?,
    })
}

/// Auth of `pubkey` (32 binary bytes) on `conn`.
pub(crate) fn auth(conn: i32, pubkey: [u8; PUBKEY_LEN]) -> SubCommand {
    SubCommand::Auth {
        conn,
        flags: ReservedFlags::EMPTY,
        pubkey,
    }
}

/// Bcast of the raw `["EVENT", ...]` message from `sender` (or −1).
pub(crate) fn fanout(event_msg: Bytes, sender: i32, flags: BcastFlags) -> SubCommand {
    SubCommand::Bcast {
        sender,
        flags,
        event: event_msg,
    }
}

fn sub_id_of(sub_id: &str) -> Result<SubId, SendError> {
    SubId::try_from(sub_id).map_err(|problem| SendError::Invalid(PayloadError::InvalidSubId { problem }))
}

/// Writes the six named command methods of a handle, each building its
/// command with the functions above and handing it to the handle's own
/// send method.
///
/// - `send`: the method that queues a `&SubCommand` (`send`, `try_send`).
/// - `refuse`: turns a `(conn, SendError)` for a command that could not be
///   built (a bad sub_id) into the handle's error type.
/// - `error`: the handle's error type.
/// - `names`: the six method names (`on_connect`... or `try_on_connect`...).
/// - `asyncness`: `async` and `await`, or nothing, for waiting methods.
/// - `setup`: hidden doc-example lines that create `b`, and `call`: what
///   follows a call in the examples (`.unwrap()`, `.await.unwrap()`). The
///   examples are `no_run` (they spawn a worker); the handles' tests run
///   these methods (`tests/handles/suite.rs`).
macro_rules! relay_commands {
    (
        send: $send:ident,
        refuse: $refuse:path,
        error: $err:ty,
        names: [$connect:ident, $disconnect:ident, $subscribe:ident, $unsubscribe:ident, $auth:ident, $fanout:ident],
        $(asyncness: ($async:tt, $await:tt),)?
        setup: $setup:expr,
        call: $call:expr $(,)?
    ) => {
        #[doc = "Connection `conn` opened (New): `whitelisted` lets it see privileged and"]
        #[doc = "protected events (PROTOCOL.md#worker-new)."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($connect), "(12, false)", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $connect(&mut self, conn: i32, whitelisted: bool) -> Result<(), $err> {
            self.$send(&$crate::commands::connect(conn, whitelisted)) $(.$await)?
        }

        #[doc = "Connection `conn` closed (Close): the worker forgets it and its"]
        #[doc = "subscriptions (PROTOCOL.md#worker-close)."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($disconnect), "(12)", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $disconnect(&mut self, conn: i32) -> Result<(), $err> {
            self.$send(&$crate::commands::disconnect(conn)) $(.$await)?
        }

        #[doc = "Subscription `sub_id` on `conn` (Add), with `req` the raw"]
        #[doc = "`[\"REQ\", sub_id, filter...]` message (PROTOCOL.md#worker-add). A sub_id of"]
        #[doc = "0 or more than 64 bytes is refused (`SendError::Invalid`), not queued."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($subscribe), "(12, \"s1\", r#\"[\"REQ\",\"s1\",{\"kinds\":[1]}]\"#)", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $subscribe(
            &mut self,
            conn: i32,
            sub_id: &str,
            req: impl Into<bytes::Bytes>,
        ) -> Result<(), $err> {
            let cmd = match $crate::commands::subscribe(conn, sub_id, req.into()) {
                Ok(cmd) => cmd,
                Err(e) => return Err($refuse(self, conn, e)),
            };
            self.$send(&cmd) $(.$await)?
        }

        #[doc = "Subscription `sub_id` on `conn` closed by the client (Remove,"]
        #[doc = "PROTOCOL.md#worker-remove)."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($unsubscribe), "(12, \"s1\")", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $unsubscribe(&mut self, conn: i32, sub_id: &str) -> Result<(), $err> {
            let cmd = match $crate::commands::unsubscribe(conn, sub_id) {
                Ok(cmd) => cmd,
                Err(e) => return Err($refuse(self, conn, e)),
            };
            self.$send(&cmd) $(.$await)?
        }

        #[doc = "Connection `conn` authenticated `pubkey` (Auth, NIP-42), as 32"]
        #[doc = "binary bytes (PROTOCOL.md#worker-auth)."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($auth), "(12, [0xab; 32])", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $auth(
            &mut self,
            conn: i32,
            pubkey: [u8; broadcast_wire::PUBKEY_LEN],
        ) -> Result<(), $err> {
            self.$send(&$crate::commands::auth(conn, pubkey)) $(.$await)?
        }

        #[doc = "Fan out an accepted event (Bcast, PROTOCOL.md#worker-bcast): `event_msg` is"]
        #[doc = "the raw `[\"EVENT\", {...}]` message, `sender` the publishing"]
        #[doc = "connection or −1, `flags` what the relay decided."]
        #[doc = ""]
        #[doc = "```no_run"]
        #[doc = $setup]
        #[doc = concat!("b.", stringify!($fanout), "(r#\"[\"EVENT\",{}]\"#, -1, broadcast_wire::BcastFlags::NEED_FILTER)", $call, ";")]
        #[doc = "# }"]
        #[doc = "```"]
        pub $($async)? fn $fanout(
            &mut self,
            event_msg: impl Into<bytes::Bytes>,
            sender: i32,
            flags: broadcast_wire::BcastFlags,
        ) -> Result<(), $err> {
            self.$send(&$crate::commands::fanout(event_msg.into(), sender, flags)) $(.$await)?
        }
    };
}

pub(crate) use relay_commands;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_make_the_commands_the_spec_names() {
        assert_eq!(
            connect(4, true),
            SubCommand::New {
                conn: 4,
                flags: NewFlags::WHITELISTED
            }
        );
        assert!(matches!(
            subscribe(1, "", Bytes::from_static(b"x")),
            Err(SendError::Invalid(PayloadError::InvalidSubId { .. }))
        ));
        assert!(unsubscribe(1, &"x".repeat(65)).is_err());
        assert_eq!(unsubscribe(1, &"x".repeat(64)).unwrap().conn(), 1);
    }
}
