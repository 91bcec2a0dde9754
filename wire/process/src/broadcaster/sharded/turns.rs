//! The fair read across shards, shared by both sharded handles: whose turn
//! it is, which shards had nothing, which failed, and when a shard's end is
//! reported. No I/O: each handle reads a shard through [`ShardReads`].

use std::process::ExitStatus;
use std::task::Poll;

use broadcast_wire::ReadError;

use crate::link::Incoming;

use super::{ShardError, ShardExit, ShardRouter, ShardState, ShardedIncoming};

/// Most items read from the other shards before a shard that had nothing
/// is asked again (blocking handle): bounds how long a frame that arrives
/// meanwhile waits, while a busy shard is drained without a wasted `read`
/// per frame.
pub(crate) const REASK_AFTER: usize = 64;

/// How a handle reads its shards.
pub(crate) trait ShardReads {
    /// The shard's next item; `Poll::Pending` when it has nothing now (a
    /// tokio handle has registered its waker).
    fn read(&mut self, shard: usize) -> Poll<Result<Incoming, ReadError>>;
    /// Whether the shard holds items or bytes in memory, which no fd
    /// readiness announces.
    fn has_buffered(&self, shard: usize) -> bool;
    /// The shard's exit status, if its worker has been reaped.
    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus>;
    /// Kills the shard's worker (its output cannot be trusted any more).
    fn kill(&mut self, shard: usize);
}

/// The outcome of one round of turns.
pub(crate) enum Turn {
    /// An item, or a shard's read error.
    Item(Result<ShardedIncoming, ShardError<ReadError>>),
    /// No shard has anything now.
    Nothing,
    /// Every shard has been retired: nothing will ever come.
    AllRetired,
}

/// The scheduling state of the fair read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadTurns {
    /// Where the next round starts: after the shard of the last item.
    next: usize,
    /// A read error was returned for this shard and its worker killed: its
    /// exit is reported at its next turn.
    failed: Vec<bool>,
    /// Shards that had nothing since the last clear, not asked again (each
    /// ask is a `read` that fails with `EAGAIN`) until every shard has had
    /// nothing, or [`REASK_AFTER`] items later, unless they hold buffered
    /// items. Only the blocking handle skips: a tokio handle must poll
    /// every shard to register its waker.
    idle: Vec<bool>,
    since_reask: usize,
}

impl ReadTurns {
    pub(crate) fn new(shards: usize) -> ReadTurns {
        ReadTurns {
            next: 0,
            failed: vec![false; shards],
            idle: vec![false; shards],
            since_reask: 0,
        }
    }

    fn reask_all(&mut self) {
        self.idle.iter_mut().for_each(|idle| *idle = false);
        self.since_reask = 0;
    }
}

impl ShardRouter {
    /// One round of the fair read: each shard in turn, starting after the
    /// one that produced the last item, until one has an item. A shard's
    /// end retires it and is reported once, with its conns; a read error is
    /// reported once, its worker killed, and its end reported at its next
    /// turn. With `skip_idle`, a shard that had nothing is skipped as
    /// [`ReadTurns`] says, except while it holds buffered items.
    pub(crate) fn next_turn(&mut self, io: &mut impl ShardReads, skip_idle: bool) -> Turn {
        let k = self.shard_count();
        if skip_idle && self.turns.since_reask >= REASK_AFTER {
            self.turns.reask_all();
        }
        let mut any_open = false;
        for step in 0..k {
            let shard = (self.turns.next + step) % k;
            if self.state(shard) == Some(ShardState::Retired) {
                continue;
            }
            any_open = true;
            if self.turns.failed[shard] {
                self.turns.next = (shard + 1) % k;
                let status = io.exit_status(shard);
                let exit = ShardExit::retire(self, shard, status);
                return Turn::Item(Ok(ShardedIncoming::ShardExited(exit)));
            }
            if skip_idle && self.turns.idle[shard] && !io.has_buffered(shard) {
                continue;
            }
            let incoming = match io.read(shard) {
                Poll::Pending | Poll::Ready(Ok(Incoming::Pending)) => {
                    self.turns.idle[shard] = skip_idle;
                    continue;
                }
                Poll::Ready(Ok(incoming)) => incoming,
                Poll::Ready(Err(error)) => {
                    self.turns.failed[shard] = true;
                    self.mark_down(shard);
                    io.kill(shard);
                    self.turns.next = shard;
                    return Turn::Item(Err(ShardError { shard, error }));
                }
            };
            let Some(item) = ShardedIncoming::from_shard(self, shard, incoming, || io.exit_status(shard))
            else {
                continue;
            };
            self.turns.next = (shard + 1) % k;
            self.turns.since_reask += 1;
            return Turn::Item(Ok(item));
        }
        if skip_idle {
            // Every shard has had nothing since the last clear: the next
            // round (after the caller's poll) asks them all again.
            self.turns.reask_all();
        }
        if any_open { Turn::Nothing } else { Turn::AllRetired }
    }
}

#[cfg(test)]
mod tests;
