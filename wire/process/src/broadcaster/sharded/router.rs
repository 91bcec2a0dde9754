//! The rules of a sharded broadcaster, without any I/O: which shard owns a
//! connection, which connections each shard owns, which shards still take
//! commands, and the all-or-none admission of a Bcast. The blocking
//! [`ShardedBroadcaster`](super::ShardedBroadcaster) is these rules plus one
//! [`Broadcaster`](crate::broadcaster::Broadcaster) per shard, and the tokio
//! `async_broadcaster::AsyncShardedBroadcaster` (feature `tokio`) is these
//! rules plus one `AsyncBroadcaster` per shard.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroUsize;

use broadcast_wire::SubCommand;

use crate::broadcaster::SpawnError;
use crate::link::{FlushError, SendError, Unflushed};

use super::turns::ReadTurns;

/// An error of one shard, with the shard's index.
///
/// ```
/// use broadcast_process::broadcaster::SendError;
/// use broadcast_process::broadcaster::sharded::ShardError;
///
/// let e = ShardError { shard: 1, error: SendError::WorkerGone };
/// assert!(e.to_string().starts_with("shard 1: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardError<E> {
    /// The shard's index, `0..shard_count`.
    pub shard: usize,
    /// What went wrong there.
    pub error: E,
}

impl<E: fmt::Display> fmt::Display for ShardError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}: {}", self.shard, self.error)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ShardError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Where a command goes.
///
/// ```
/// use broadcast_process::broadcaster::sharded::{Route, ShardRouter};
/// use broadcast_wire::{NewFlags, SubCommand};
/// use std::num::NonZeroUsize;
///
/// let r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
/// let new = SubCommand::New { conn: 7, flags: NewFlags::EMPTY };
/// assert_eq!(r.route(&new), Route::Shard(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// A connection-scoped command (New, Close, Add, Remove, Auth): only the
    /// shard that owns its conn.
    Shard(usize),
    /// A Bcast: every shard that still takes commands, or none.
    All,
}

/// What a shard is doing, as far as the router knows.
///
/// ```
/// use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
/// use std::num::NonZeroUsize;
///
/// let r = ShardRouter::new(NonZeroUsize::MIN);
/// assert_eq!(r.state(0), Some(ShardState::Live));
/// assert_eq!(r.state(1), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardState {
    /// Takes commands.
    Live,
    /// A write found its worker gone, or (a supervised shard) its
    /// supervisor gave up: it takes no more commands, but what it wrote
    /// before dying is still read. A supervised shard whose worker is being
    /// replaced is not down: it stays [`ShardState::Live`] and queues the
    /// commands for the replacement.
    Down,
    /// Its end was reported (with its connections); nothing more comes.
    Retired,
}

/// The routing and admission rules of a sharded broadcaster, independent
/// of I/O.
///
/// - **Ownership**: connection `conn` belongs to shard `conn as u32 % K`.
///   Conns are the relay's socket fds, which the kernel hands out lowest
///   free first, so the live ones form a dense range and the remainder
///   splits them evenly (within one per shard); a hash would only help if
///   they came in strides of K, which fds do not. The function is stable,
///   so a reused fd lands on the shard that got the old connection's Close,
///   in order, before its New.
/// - **Ordering**: a conn's commands all go to one shard, in the order they
///   were sent, and each shard gets the Bcasts in the order they were sent,
///   interleaved with its conn commands as sent: per connection, the
///   worker sees exactly what a single worker would.
/// - **Admission**: a Bcast is checked against every live shard before it
///   is queued on any ([`ShardRouter::admit_all`]), so it reaches all of
///   them or none.
/// - **Bookkeeping**: New adds a conn to its shard's set, Close removes it
///   ([`ShardRouter::record`]), so a shard that ends can be reported with
///   the connections it took down ([`ShardRouter::retire`]).
///
/// ```
/// use broadcast_process::broadcaster::sharded::ShardRouter;
/// use broadcast_wire::{NewFlags, ReservedFlags, SubCommand};
/// use std::num::NonZeroUsize;
///
/// let mut r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
/// r.record(&SubCommand::New { conn: 4, flags: NewFlags::EMPTY });
/// r.record(&SubCommand::New { conn: 6, flags: NewFlags::EMPTY });
/// r.record(&SubCommand::Close { conn: 4, flags: ReservedFlags::EMPTY });
/// assert_eq!(r.conns(0).collect::<Vec<_>>(), [6]);
/// assert_eq!(r.retire(0), vec![6]);
/// assert_eq!(r.conns(0).count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRouter {
    conns: Vec<BTreeSet<i32>>,
    states: Vec<ShardState>,
    /// The shard's supervisor gave up ([`ShardRouter::give_up`]).
    gave_up: Vec<bool>,
    /// The fair read's scheduling (`next_turn`, in `turns.rs`).
    pub(super) turns: ReadTurns,
}

impl ShardRouter {
    /// A router over `shards` shards, all live and owning no connection.
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::ShardRouter;
    /// use std::num::NonZeroUsize;
    ///
    /// assert_eq!(ShardRouter::new(NonZeroUsize::new(3).unwrap()).shard_count(), 3);
    /// ```
    pub fn new(shards: NonZeroUsize) -> ShardRouter {
        ShardRouter {
            conns: vec![BTreeSet::new(); shards.get()],
            states: vec![ShardState::Live; shards.get()],
            gave_up: vec![false; shards.get()],
            turns: ReadTurns::new(shards.get()),
        }
    }

    /// How many shards there are.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::sharded::ShardRouter;
    /// assert_eq!(ShardRouter::new(std::num::NonZeroUsize::MIN).shard_count(), 1);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.states.len()
    }

    /// The shard that owns `conn`: `conn as u32 % shard_count`. Defined for
    /// every `i32` (a negative conn is refused later, by validation).
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::ShardRouter;
    /// use std::num::NonZeroUsize;
    ///
    /// let r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
    /// assert_eq!((r.shard_of(10), r.shard_of(11)), (0, 1));
    /// ```
    pub fn shard_of(&self, conn: i32) -> usize {
        // `as u32` keeps every i32 in range; the modulus of a u32 by a
        // usize that fits (checked by try_from) cannot overflow.
        let k = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        (conn as u32 % k) as usize
    }

    /// Where `cmd` goes.
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::{Route, ShardRouter};
    /// use broadcast_wire::{BcastFlags, SubCommand};
    /// use std::num::NonZeroUsize;
    ///
    /// let r = ShardRouter::new(NonZeroUsize::new(4).unwrap());
    /// let ev = SubCommand::Bcast { sender: 9, flags: BcastFlags::EMPTY, event: "[]".into() };
    /// assert_eq!(r.route(&ev), Route::All);
    /// ```
    pub fn route(&self, cmd: &SubCommand) -> Route {
        match cmd {
            SubCommand::Bcast { .. } => Route::All,
            other => Route::Shard(self.shard_of(other.conn())),
        }
    }

    /// The shard for a command on `conn`, if it still takes commands: a
    /// shard that is down or retired refuses with
    /// [`SendError::WorkerGone`], or [`SendError::SupervisionGaveUp`] once
    /// its supervisor gave up ([`ShardRouter::give_up`]).
    ///
    /// ```
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_process::broadcaster::sharded::ShardRouter;
    /// use std::num::NonZeroUsize;
    ///
    /// let mut r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
    /// assert_eq!(r.shard_for_conn(3), Ok(1));
    /// r.mark_down(1);
    /// assert_eq!(r.shard_for_conn(3).unwrap_err().error, SendError::WorkerGone);
    /// ```
    pub fn shard_for_conn(&self, conn: i32) -> Result<usize, ShardError<SendError>> {
        let shard = self.shard_of(conn);
        match self.states[shard] {
            ShardState::Live => Ok(shard),
            ShardState::Down | ShardState::Retired => Err(ShardError {
                shard,
                error: if self.gave_up[shard] {
                    SendError::SupervisionGaveUp
                } else {
                    SendError::WorkerGone
                },
            }),
        }
    }

    /// Notes that `cmd` was queued on its shard: New adds its conn to the
    /// owner's set, Close removes it; other commands change nothing.
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::ShardRouter;
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// use std::num::NonZeroUsize;
    ///
    /// let mut r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
    /// r.record(&SubCommand::New { conn: 5, flags: NewFlags::EMPTY });
    /// assert_eq!(r.conns(1).collect::<Vec<_>>(), [5]);
    /// ```
    pub fn record(&mut self, cmd: &SubCommand) {
        match *cmd {
            SubCommand::New { conn, .. } => {
                let shard = self.shard_of(conn);
                self.conns[shard].insert(conn);
            }
            SubCommand::Close { conn, .. } => {
                let shard = self.shard_of(conn);
                self.conns[shard].remove(&conn);
            }
            _ => {}
        }
    }

    /// Settles the outcome of queueing a connection-scoped command on
    /// `shard` (the shard [`ShardRouter::shard_for_conn`] gave): on success
    /// `new_or_close` (the New or Close that was queued, if it was one) is
    /// [recorded](ShardRouter::record); an error for which `gone` says the
    /// worker is gone marks the shard down. Either way the error comes back
    /// naming the shard. Every handle, blocking or async, ends a conn
    /// command with this.
    ///
    /// ```
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// use std::num::NonZeroUsize;
    ///
    /// let mut r = ShardRouter::new(NonZeroUsize::new(2).unwrap());
    /// let new = SubCommand::New { conn: 3, flags: NewFlags::EMPTY };
    /// let gone = |e: &SendError| *e == SendError::WorkerGone;
    /// assert_eq!(r.settle(1, Some(&new), Ok(()), gone), Ok(()));
    /// assert_eq!(r.conns(1).collect::<Vec<_>>(), [3]);
    /// let err = r.settle(1, None, Err(SendError::WorkerGone), gone).unwrap_err();
    /// assert_eq!((err.shard, r.state(1)), (1, Some(ShardState::Down)));
    /// ```
    pub fn settle<E>(
        &mut self,
        shard: usize,
        new_or_close: Option<&SubCommand>,
        outcome: Result<(), E>,
        gone: impl FnOnce(&E) -> bool,
    ) -> Result<(), ShardError<E>> {
        match outcome {
            Ok(()) => {
                if let Some(cmd) = new_or_close {
                    self.record(cmd);
                }
                Ok(())
            }
            Err(error) => {
                if gone(&error) {
                    self.mark_down(shard);
                }
                Err(ShardError { shard, error })
            }
        }
    }

    /// Admits a Bcast to every live shard or to none: `check(shard)` says
    /// whether that shard's queue would take it now (for example
    /// [`Broadcaster::check_send`](crate::broadcaster::Broadcaster::check_send)).
    /// A shard whose check says [`SendError::WorkerGone`] is marked down
    /// and left out (its connections are lost with it and reported when it
    /// is retired), and so is one whose check says
    /// [`SendError::SupervisionGaveUp`] ([`ShardRouter::give_up`]); any
    /// other refusal refuses the Bcast for all. When no
    /// shard is left live, the Bcast could reach no worker: it is refused
    /// with [`SendError::WorkerGone`], naming shard 0, never admitted to
    /// nobody (a silent drop). On `Ok`,
    /// queue it on each of [`ShardRouter::live_shards`], none of which can
    /// refuse it if nothing was queued in between.
    ///
    /// ```
    /// use broadcast_process::broadcaster::{Backpressure, SendError};
    /// use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
    /// use std::num::NonZeroUsize;
    ///
    /// let mut r = ShardRouter::new(NonZeroUsize::new(3).unwrap());
    /// let full = Backpressure { queued: 10, needed: 5, limit: 12 };
    /// let refused = r.admit_all(|s| if s == 2 { Err(SendError::Backpressure(full)) } else { Ok(()) });
    /// assert_eq!(refused.unwrap_err().shard, 2);
    ///
    /// let admitted = r.admit_all(|s| if s == 0 { Err(SendError::WorkerGone) } else { Ok(()) });
    /// assert!(admitted.is_ok());
    /// assert_eq!(r.state(0), Some(ShardState::Down));
    /// assert_eq!(r.live_shards().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn admit_all(
        &mut self,
        mut check: impl FnMut(usize) -> Result<(), SendError>,
    ) -> Result<(), ShardError<SendError>> {
        for shard in 0..self.states.len() {
            if self.states[shard] != ShardState::Live {
                continue;
            }
            match check(shard) {
                Ok(()) => {}
                Err(SendError::WorkerGone) => self.states[shard] = ShardState::Down,
                Err(SendError::SupervisionGaveUp) => self.give_up(shard),
                Err(error) => return Err(ShardError { shard, error }),
            }
        }
        if self.live_shards().next().is_none() {
            return Err(ShardError {
                shard: 0,
                error: SendError::WorkerGone,
            });
        }
        Ok(())
    }

    /// The shards that take commands, in index order.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::sharded::ShardRouter;
    /// let r = ShardRouter::new(std::num::NonZeroUsize::new(2).unwrap());
    /// assert_eq!(r.live_shards().collect::<Vec<_>>(), [0, 1]);
    /// ```
    pub fn live_shards(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.states.len()).filter(|&s| self.states[s] == ShardState::Live)
    }

    /// The state of `shard`, `None` if there is no such shard.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
    /// let mut r = ShardRouter::new(std::num::NonZeroUsize::MIN);
    /// r.retire(0);
    /// assert_eq!(r.state(0), Some(ShardState::Retired));
    /// ```
    pub fn state(&self, shard: usize) -> Option<ShardState> {
        self.states.get(shard).copied()
    }

    /// Marks a live `shard` down: it takes no more commands (its output
    /// may still be read). No effect on a retired shard or a bad index.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
    /// let mut r = ShardRouter::new(std::num::NonZeroUsize::MIN);
    /// r.mark_down(0);
    /// assert_eq!(r.state(0), Some(ShardState::Down));
    /// ```
    pub fn mark_down(&mut self, shard: usize) {
        if let Some(state @ ShardState::Live) = self.states.get_mut(shard) {
            *state = ShardState::Down;
        }
    }

    /// Notes that `shard`'s supervisor gave up on it: a live shard is
    /// marked down, and from now on its conns' commands are refused with
    /// [`SendError::SupervisionGaveUp`] (its end is still read and
    /// reported, with its conns). No effect for a bad index.
    ///
    /// ```
    /// use broadcast_process::broadcaster::SendError;
    /// use broadcast_process::broadcaster::sharded::{ShardRouter, ShardState};
    ///
    /// let mut r = ShardRouter::new(std::num::NonZeroUsize::new(2).unwrap());
    /// r.give_up(1);
    /// assert_eq!(r.state(1), Some(ShardState::Down));
    /// assert_eq!(r.shard_for_conn(3).unwrap_err().error, SendError::SupervisionGaveUp);
    /// assert_eq!(r.shard_for_conn(2), Ok(0));
    /// ```
    pub fn give_up(&mut self, shard: usize) {
        if let Some(gave_up) = self.gave_up.get_mut(shard) {
            *gave_up = true;
            self.mark_down(shard);
        }
    }

    /// Retires `shard` (its end is being reported) and hands over the
    /// connections it owned, in ascending order; it owns none afterwards.
    /// Empty for a bad index.
    ///
    /// ```
    /// use broadcast_process::broadcaster::sharded::ShardRouter;
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut r = ShardRouter::new(std::num::NonZeroUsize::MIN);
    /// r.record(&SubCommand::New { conn: 9, flags: NewFlags::EMPTY });
    /// r.record(&SubCommand::New { conn: 2, flags: NewFlags::EMPTY });
    /// assert_eq!(r.retire(0), vec![2, 9]);
    /// ```
    pub fn retire(&mut self, shard: usize) -> Vec<i32> {
        let Some(state) = self.states.get_mut(shard) else {
            return Vec::new();
        };
        *state = ShardState::Retired;
        std::mem::take(&mut self.conns[shard]).into_iter().collect()
    }

    /// The connections `shard` owns now, in ascending order.
    ///
    /// ```
    /// # use broadcast_process::broadcaster::sharded::ShardRouter;
    /// let r = ShardRouter::new(std::num::NonZeroUsize::MIN);
    /// assert_eq!(r.conns(0).count(), 0);
    /// assert_eq!(r.conns(5).count(), 0); // no such shard
    /// ```
    pub fn conns(&self, shard: usize) -> impl Iterator<Item = i32> + '_ {
        self.conns.get(shard).into_iter().flatten().copied()
    }
}

/// What both sharded handles do the same way, whatever their per-shard
/// handle: starting the shards, settling a flush, closing all or none.
impl ShardRouter {
    /// Starts one handle per shard with `spawn(shard)`, and a router over
    /// them. If one fails, those already started are dropped (and so
    /// reaped) and the error names the shard.
    pub(crate) fn spawn_each<H>(
        shards: NonZeroUsize,
        mut spawn: impl FnMut(usize) -> Result<H, SpawnError>,
    ) -> Result<(ShardRouter, Vec<H>), ShardError<SpawnError>> {
        let handles = (0..shards.get())
            .map(|shard| spawn(shard).map_err(|error| ShardError { shard, error }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ShardRouter::new(shards), handles))
    }

    /// Queues a connection-scoped `cmd` with `send(shard)` on the shard
    /// that owns its conn, if that shard takes commands, and settles the
    /// outcome ([`ShardRouter::settle`]; `gone` says which errors mean the
    /// worker is gone).
    pub(crate) fn send_on_conn<E: From<SendError>>(
        &mut self,
        cmd: &SubCommand,
        send: impl FnOnce(usize) -> Result<(), E>,
        gone: impl FnOnce(&E) -> bool,
    ) -> Result<(), ShardError<E>> {
        let shard = self
            .shard_for_conn(cmd.conn())
            .map_err(|e| self.refused(e.shard, e.error))?;
        self.settle(shard, Some(cmd), send(shard), gone)
    }

    /// Queues a Bcast on every live shard or on none: [`ShardRouter::admit_all`]
    /// with `check`, then `send` on each live shard (which cannot refuse
    /// it, nothing having been queued in between; reported all the same if
    /// one does).
    pub(crate) fn send_all<H>(
        &mut self,
        handles: &mut [H],
        check: impl Fn(&H) -> Result<(), SendError>,
        mut send: impl FnMut(&mut H) -> Result<(), SendError>,
    ) -> Result<(), ShardError<SendError>> {
        self.admit_all(|shard| check(&handles[shard]))?;
        for shard in self.live_shards() {
            send(&mut handles[shard]).map_err(|error| ShardError { shard, error })?;
        }
        Ok(())
    }

    /// A refusal `error` on `shard`, in a handle's error type.
    pub(crate) fn refused<E: From<SendError>>(&self, shard: usize, error: SendError) -> ShardError<E> {
        ShardError {
            shard,
            error: E::from(error),
        }
    }

    /// Settles one live shard's flush: a worker found gone marks the shard
    /// down; the first error of a round is kept in `first`.
    pub(crate) fn settle_flush<T>(
        &mut self,
        shard: usize,
        outcome: Result<T, FlushError>,
        first: &mut Option<ShardError<FlushError>>,
    ) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(error) => {
                if matches!(error, FlushError::WorkerGone { .. }) {
                    self.mark_down(shard);
                }
                first.get_or_insert(ShardError { shard, error });
                None
            }
        }
    }

    /// Ends every live shard's command stream with `close(shard)`, all or
    /// none: refused, naming a shard, while `queued(shard)` says a live
    /// shard still has bytes queued.
    pub(crate) fn close_live(
        &self,
        queued: impl Fn(usize) -> usize,
        mut close: impl FnMut(usize) -> Result<(), Unflushed>,
    ) -> Result<(), ShardError<Unflushed>> {
        if let Some(shard) = self.live_shards().find(|&s| queued(s) > 0) {
            return Err(ShardError {
                shard,
                error: Unflushed {
                    queued_bytes: queued(shard),
                },
            });
        }
        for shard in self.live_shards() {
            close(shard).map_err(|error| ShardError { shard, error })?;
        }
        Ok(())
    }
}

/// The error for a shard index out of range.
pub(crate) fn no_such_shard() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such shard")
}

#[cfg(test)]
mod tests {
    use super::*;
    use broadcast_wire::{NewFlags, ReservedFlags};

    fn router(k: usize) -> ShardRouter {
        ShardRouter::new(NonZeroUsize::new(k).unwrap())
    }

    #[test]
    fn dense_conns_spread_evenly_and_every_i32_has_a_shard() {
        let r = router(3);
        let mut counts = [0usize; 3];
        for conn in 10..10_010 {
            counts[r.shard_of(conn)] += 1;
        }
        assert!(counts.iter().all(|&c| c.abs_diff(10_000 / 3) <= 1), "{counts:?}");
        for conn in [i32::MIN, -1, 0, i32::MAX] {
            assert!(r.shard_of(conn) < 3);
        }
    }

    #[test]
    fn close_of_an_unknown_conn_and_commands_on_retired_shards_are_harmless() {
        let mut r = router(2);
        r.record(&SubCommand::Close {
            conn: 8,
            flags: ReservedFlags::EMPTY,
        });
        assert_eq!(r.conns(0).count(), 0);
        r.retire(0);
        r.mark_down(0);
        assert_eq!(r.state(0), Some(ShardState::Retired));
        assert_eq!(r.shard_for_conn(2).unwrap_err().shard, 0);
        r.record(&SubCommand::New {
            conn: 1,
            flags: NewFlags::EMPTY,
        });
        assert_eq!(r.retire(9), Vec::<i32>::new());
        assert_eq!(r.admit_all(|_| Ok(())), Ok(()));
        assert_eq!(r.live_shards().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_bcast_with_no_live_shard_is_refused_not_dropped() {
        let mut r = router(2);
        r.mark_down(0);
        r.retire(1);
        let mut asked = Vec::new();
        let refused = r.admit_all(|s| {
            asked.push(s);
            Ok(())
        });
        assert!(asked.is_empty());
        assert_eq!(
            refused,
            Err(ShardError {
                shard: 0,
                error: SendError::WorkerGone
            })
        );
        // The last live shard found gone by its check: refused as well.
        let mut r = router(2);
        r.mark_down(0);
        let refused = r.admit_all(|_| Err(SendError::WorkerGone));
        assert_eq!(refused.unwrap_err().error, SendError::WorkerGone);
        assert_eq!(r.state(1), Some(ShardState::Down));
    }
}
