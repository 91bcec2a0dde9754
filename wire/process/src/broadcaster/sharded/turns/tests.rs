//! The fair read ([`ShardRouter::next_turn`]) over a fake [`ShardReads`]:
//! per-shard queues of scripted items, a `has_buffered` the test sets, and
//! a record of every read and kill.

use std::collections::VecDeque;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::process::ExitStatusExt;

use broadcast_wire::{BroadcastFrame, NewFlags, PayloadError, ReservedFlags, SubCommand};

use super::*;
use crate::broadcaster::sharded::ShardExit;

/// What a fake shard's next read gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A frame for this conn.
    Frame(i32),
    /// A payload that does not decode.
    Invalid,
    /// `Ready(Ok(Incoming::Pending))`, as a handle may say "nothing" too.
    Pending,
    /// The worker's output ended: every later read says so again.
    End,
    /// A read error.
    Fail,
    /// A supervised shard's worker was replaced.
    Restarted,
}

/// K fake shards. An empty queue is `Poll::Pending`.
#[derive(Debug)]
struct Fake {
    queues: Vec<VecDeque<Item>>,
    /// What `has_buffered` says, shard by shard.
    buffered: Vec<bool>,
    reads: Vec<usize>,
    killed: Vec<bool>,
    status: Vec<Option<ExitStatus>>,
}

impl Fake {
    fn new(queues: Vec<Vec<Item>>) -> Fake {
        let k = queues.len();
        Fake {
            queues: queues.into_iter().map(VecDeque::from).collect(),
            buffered: vec![false; k],
            reads: vec![0; k],
            killed: vec![false; k],
            status: vec![None; k],
        }
    }
}

impl ShardReads for Fake {
    fn read(&mut self, shard: usize) -> Poll<Result<Incoming, ReadError>> {
        self.reads[shard] += 1;
        let queue = &mut self.queues[shard];
        let Some(item) = queue.pop_front() else {
            return Poll::Pending;
        };
        Poll::Ready(match item {
            Item::Frame(conn) => Ok(Incoming::Frame(BroadcastFrame {
                conn,
                data: "x".into(),
            })),
            Item::Invalid => Ok(Incoming::InvalidFrame(PayloadError::TrailingBytes { extra: 1 })),
            Item::Pending => Ok(Incoming::Pending),
            Item::End => {
                queue.push_front(Item::End);
                Ok(Incoming::WorkerExited(None))
            }
            Item::Fail => Err(ReadError::Io(io::Error::other("read failed"))),
            Item::Restarted => Ok(Incoming::WorkerRestarted(crate::link::Restart {
                number: 1,
                cause: crate::link::RestartCause::Signaled(9),
                lost_bcasts: 0,
                carried_commands: 0,
                replayed: crate::link::Replayed::default(),
            })),
        })
    }

    fn has_buffered(&self, shard: usize) -> bool {
        self.buffered[shard]
    }

    fn exit_status(&mut self, shard: usize) -> Option<ExitStatus> {
        self.status[shard]
    }

    fn kill(&mut self, shard: usize) {
        self.killed[shard] = true;
        self.status[shard] = Some(ExitStatus::from_raw(9)); // SIGKILL
    }
}

/// A [`Turn`], comparable.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Frame { shard: usize, conn: i32 },
    Invalid { shard: usize },
    Exit(ShardExit),
    Error { shard: usize },
    Restarted { shard: usize },
    Nothing,
    AllRetired,
}

fn turn(router: &mut ShardRouter, fake: &mut Fake, skip_idle: bool) -> Got {
    match router.next_turn(fake, skip_idle) {
        Turn::Item(Ok(ShardedIncoming::Frame { shard, frame })) => Got::Frame {
            shard,
            conn: frame.conn,
        },
        Turn::Item(Ok(ShardedIncoming::InvalidFrame { shard, .. })) => Got::Invalid { shard },
        Turn::Item(Ok(ShardedIncoming::ShardExited(exit))) => Got::Exit(exit),
        Turn::Item(Ok(ShardedIncoming::Pending)) => panic!("a turn never yields Pending as an item"),
        Turn::Item(Ok(ShardedIncoming::ShardRestarted { shard, .. })) => Got::Restarted { shard },
        Turn::Item(Err(e)) => Got::Error { shard: e.shard },
        Turn::Nothing => Got::Nothing,
        Turn::AllRetired => Got::AllRetired,
    }
}

fn router(k: usize) -> ShardRouter {
    ShardRouter::new(NonZeroUsize::new(k).unwrap())
}

fn frame(shard: usize, conn: i32) -> Got {
    Got::Frame { shard, conn }
}

fn new(conn: i32) -> SubCommand {
    SubCommand::New {
        conn,
        flags: NewFlags::EMPTY,
    }
}

#[test]
fn shards_with_items_take_strict_turns() {
    for skip_idle in [false, true] {
        let mut r = router(3);
        let mut fake = Fake::new(
            (0..3)
                .map(|s| (0..3).map(|i| Item::Frame(s + 3 * i)).collect())
                .collect(),
        );
        let got: Vec<Got> = (0..9).map(|_| turn(&mut r, &mut fake, skip_idle)).collect();
        let expected: Vec<Got> = (0..3)
            .flat_map(|i| (0..3).map(move |s| frame(s as usize, s + 3 * i)))
            .collect();
        assert_eq!(got, expected, "skip_idle {skip_idle}");
        assert_eq!(turn(&mut r, &mut fake, skip_idle), Got::Nothing);
    }
}

#[test]
fn a_busy_shard_alternates_with_the_others_then_has_the_rest() {
    let mut r = router(2);
    let mut fake = Fake::new(vec![
        (0..5).map(|i| Item::Frame(2 * i)).collect(),
        vec![Item::Frame(1), Item::Invalid],
    ]);
    let got: Vec<Got> = (0..7).map(|_| turn(&mut r, &mut fake, true)).collect();
    assert_eq!(
        got,
        [
            frame(0, 0),
            frame(1, 1),
            frame(0, 2),
            Got::Invalid { shard: 1 },
            frame(0, 4),
            frame(0, 6),
            frame(0, 8),
        ]
    );
}

#[test]
fn a_shard_end_is_reported_once_with_its_conns_and_retires_it() {
    let mut r = router(2);
    for cmd in [
        new(4),
        new(6),
        new(8),
        SubCommand::Close {
            conn: 6,
            flags: ReservedFlags::EMPTY,
        },
        new(5),
    ] {
        r.record(&cmd);
    }
    let mut fake = Fake::new(vec![
        vec![Item::Frame(4), Item::End],
        vec![Item::Frame(5), Item::Frame(5)],
    ]);
    let status = ExitStatus::from_raw(0);
    fake.status[0] = Some(status);
    assert_eq!(turn(&mut r, &mut fake, true), frame(0, 4));
    assert_eq!(turn(&mut r, &mut fake, true), frame(1, 5));
    assert_eq!(
        turn(&mut r, &mut fake, true),
        Got::Exit(ShardExit {
            shard: 0,
            status: Some(status),
            conns: vec![4, 8],
        })
    );
    assert_eq!(r.state(0), Some(ShardState::Retired));
    assert_eq!(r.conns(0).count(), 0);
    let reads = fake.reads[0];
    assert_eq!(turn(&mut r, &mut fake, true), frame(1, 5));
    assert_eq!(turn(&mut r, &mut fake, true), Got::Nothing);
    assert_eq!(turn(&mut r, &mut fake, false), Got::Nothing);
    assert_eq!(fake.reads[0], reads, "a retired shard is not read again");
    assert!(!fake.killed[0]);
    assert_eq!(r.conns(1).collect::<Vec<_>>(), [5]);
}

#[test]
fn a_read_error_is_returned_once_the_worker_killed_and_its_end_reported_next() {
    let mut r = router(2);
    r.record(&new(2));
    let mut fake = Fake::new(vec![
        vec![Item::Fail, Item::Frame(2), Item::Frame(2)],
        vec![Item::Frame(1), Item::Frame(3)],
    ]);
    assert_eq!(turn(&mut r, &mut fake, true), Got::Error { shard: 0 });
    assert!(fake.killed[0]);
    assert_eq!(r.state(0), Some(ShardState::Down));
    // Its next turn (the very next one) reports its end, with the status
    // after the kill, and retires it.
    assert_eq!(
        turn(&mut r, &mut fake, true),
        Got::Exit(ShardExit {
            shard: 0,
            status: Some(ExitStatus::from_raw(9)),
            conns: vec![2],
        })
    );
    assert_eq!(r.state(0), Some(ShardState::Retired));
    assert_eq!(turn(&mut r, &mut fake, true), frame(1, 1));
    assert_eq!(turn(&mut r, &mut fake, true), frame(1, 3));
    assert_eq!(turn(&mut r, &mut fake, true), Got::Nothing);
    assert_eq!(fake.reads[0], 1, "what a failed shard had left is never read");
    assert!(!fake.killed[1]);
}

#[test]
fn a_failed_shard_reports_its_end_at_its_turn_not_before_the_others() {
    // Shard 1 fails; shard 2's frame, already next in the round, is not
    // overtaken by anything but shard 1's own end.
    let mut r = router(3);
    let mut fake = Fake::new(vec![
        vec![Item::Frame(0), Item::Frame(3)],
        vec![Item::Fail],
        vec![Item::Frame(2)],
    ]);
    assert_eq!(turn(&mut r, &mut fake, true), frame(0, 0));
    assert_eq!(turn(&mut r, &mut fake, true), Got::Error { shard: 1 });
    assert!(matches!(
        turn(&mut r, &mut fake, true),
        Got::Exit(ShardExit { shard: 1, .. })
    ));
    assert_eq!(turn(&mut r, &mut fake, true), frame(2, 2));
    assert_eq!(turn(&mut r, &mut fake, true), frame(0, 3));
}

#[test]
fn every_shard_retired_is_all_retired() {
    let mut r = router(2);
    let mut fake = Fake::new(vec![vec![Item::End], vec![Item::Fail]]);
    assert!(matches!(
        turn(&mut r, &mut fake, true),
        Got::Exit(ShardExit { shard: 0, .. })
    ));
    assert_eq!(turn(&mut r, &mut fake, true), Got::Error { shard: 1 });
    assert!(matches!(
        turn(&mut r, &mut fake, false),
        Got::Exit(ShardExit { shard: 1, .. })
    ));
    for skip_idle in [true, false, true] {
        assert_eq!(turn(&mut r, &mut fake, skip_idle), Got::AllRetired);
    }
    assert_eq!(fake.reads, [1, 1]);
}

#[test]
fn with_skip_idle_a_shard_that_had_nothing_waits_for_reask_after_items() {
    let mut r = router(3);
    let busy = (0..3 * REASK_AFTER as i32).map(Item::Frame).collect();
    let mut fake = Fake::new(vec![vec![], busy, vec![Item::Pending]]);
    let mut next = 0..;
    // Shard 0 is asked in the first round, shard 2 in the second; then
    // neither, until REASK_AFTER items have been returned.
    for i in 0..REASK_AFTER {
        assert_eq!(turn(&mut r, &mut fake, true), frame(1, next.next().unwrap()));
        let expected = (1, usize::from(i > 0));
        assert_eq!((fake.reads[0], fake.reads[2]), expected, "after item {i}");
    }
    assert_eq!(turn(&mut r, &mut fake, true), frame(1, next.next().unwrap()));
    assert_eq!((fake.reads[0], fake.reads[2]), (2, 2), "both asked again");
    // Something arriving meanwhile is found at the next re-ask, REASK_AFTER
    // items later.
    fake.queues[0].push_back(Item::Frame(-7));
    for _ in 1..REASK_AFTER {
        assert_eq!(turn(&mut r, &mut fake, true), frame(1, next.next().unwrap()));
    }
    assert_eq!(fake.reads[0], 2);
    assert_eq!(turn(&mut r, &mut fake, true), frame(0, -7));
    assert_eq!(fake.reads[0], 3);
}

#[test]
fn with_skip_idle_all_shards_having_nothing_asks_them_all_again_next_time() {
    let mut r = router(3);
    let mut fake = Fake::new(vec![vec![], vec![Item::Pending], vec![]]);
    assert_eq!(turn(&mut r, &mut fake, true), Got::Nothing);
    assert_eq!(fake.reads, [1, 1, 1]);
    assert_eq!(turn(&mut r, &mut fake, true), Got::Nothing);
    assert_eq!(fake.reads, [2, 2, 2]);
    fake.queues[2].push_back(Item::Frame(5));
    assert_eq!(turn(&mut r, &mut fake, true), frame(2, 5));
}

/// The regression: frames read into memory (by a flush's read-ahead)
/// while their shard was idle. No fd readiness announces them; skipping
/// the shard would end the round with `Nothing` and leave the caller
/// asleep in `poll` with the frames in memory.
#[test]
fn with_skip_idle_an_idle_shard_holding_buffered_items_is_read() {
    for buffered in [true, false] {
        let mut r = router(3);
        let mut fake = Fake::new(vec![vec![], vec![Item::Frame(1)], vec![]]);
        assert_eq!(turn(&mut r, &mut fake, true), frame(1, 1));
        assert_eq!(fake.reads, [1, 1, 0]);
        // Shard 0 said Pending; then a flush read ahead a frame of it.
        fake.queues[0].push_back(Item::Frame(30));
        fake.buffered[0] = buffered;
        let got = turn(&mut r, &mut fake, true);
        if buffered {
            assert_eq!(got, frame(0, 30));
        } else {
            // Without buffered items the idle shard is skipped: its frame
            // comes through the fd's readiness, at the next round.
            assert_eq!(got, Got::Nothing);
            assert_eq!(fake.reads, [1, 2, 1]);
            assert_eq!(turn(&mut r, &mut fake, true), frame(0, 30));
        }
    }
}

#[test]
fn without_skip_idle_every_shard_is_polled_every_round() {
    let mut r = router(3);
    let busy = (0..10).map(|i| Item::Frame(3 * i + 1)).collect();
    let mut fake = Fake::new(vec![vec![Item::Pending], busy, vec![]]);
    for i in 0..10 {
        assert_eq!(turn(&mut r, &mut fake, false), frame(1, 3 * i + 1));
    }
    // Each round from shard 2 (after shard 1's item) polls 2, 0, then 1.
    assert_eq!(fake.reads, [10, 10, 9]);
    assert_eq!(turn(&mut r, &mut fake, false), Got::Nothing);
    assert_eq!(fake.reads, [11, 11, 10]);
    assert_eq!(turn(&mut r, &mut fake, false), Got::Nothing);
    assert_eq!(fake.reads, [12, 12, 11]);
}

#[test]
fn a_restart_is_an_item_naming_its_shard_and_the_shard_stays_live_with_its_conns() {
    let mut r = router(2);
    r.record(&new(3));
    let mut fake = Fake::new(vec![vec![Item::Frame(2)], vec![Item::Restarted, Item::Frame(3)]]);
    assert_eq!(turn(&mut r, &mut fake, false), frame(0, 2));
    assert_eq!(turn(&mut r, &mut fake, false), Got::Restarted { shard: 1 });
    assert_eq!(r.state(1), Some(ShardState::Live));
    assert_eq!(r.conns(1).collect::<Vec<_>>(), [3]);
    assert_eq!(turn(&mut r, &mut fake, false), frame(1, 3));
    assert!(!fake.killed[1]);
}
