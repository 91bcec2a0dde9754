//! One client connection as the worker sees it (PROTOCOL.md#worker-state).

use std::collections::HashMap;

use super::subscription::SubSlot;

/// A connection: its access attributes and its subscriptions by sub_id.
#[derive(Debug, Default)]
pub struct Connection {
    /// Set by `New` (flag bit 0): passes every access rule.
    pub whitelisted: bool,
    /// Every pubkey `Auth` added, without duplicates (NIP-42 allows several).
    pub authenticated: Vec<[u8; 32]>,
    /// Live subscriptions, by sub_id.
    pub subs: HashMap<Box<str>, SubSlot>,
}

impl Connection {
    /// A new connection with no subscription and no authentication.
    pub fn new(whitelisted: bool) -> Connection {
        Connection {
            whitelisted,
            ..Connection::default()
        }
    }

    /// Adds `pubkey` to the authenticated set (a second Auth of the same
    /// key changes nothing).
    pub fn authenticate(&mut self, pubkey: [u8; 32]) {
        if !self.authenticated.contains(&pubkey) {
            self.authenticated.push(pubkey);
        }
    }
}
