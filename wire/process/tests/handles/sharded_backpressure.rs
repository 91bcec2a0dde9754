//! Backpressure across shards (blocking `ShardedBroadcaster`): each shard
//! has its own bounded queue, and a Bcast is admitted to every shard or to
//! none. One stopped worker fills its shard's queue while the other shard
//! drains; the next Bcast is refused naming the full shard and is queued
//! on neither, although the other shard had room; once the worker resumes,
//! every shard gets every accepted event once, in order, and no refused
//! one.

use std::time::{Duration, Instant};

use broadcast_process::broadcaster::sharded::{ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{SendError, Transport};
use broadcast_wire::{BcastFlags, SubCommand};
use nix::sys::signal::Signal;

use crate::support::sharded::*;
use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        a_bcast_is_admitted_to_every_shard_or_to_none_and_nothing_is_lost_stdio,
        a_bcast_is_admitted_to_every_shard_or_to_none_and_nothing_is_lost_socketpair,
    ]
}

/// 1 MiB: more than a pipe or a socket pair holds.
const LIMIT: usize = 1 << 20;
/// Each Bcast is a 200-byte frame.
const EVENT_LEN: usize = 181;

fn signal_shard(b: &ShardedBroadcaster, shard: usize, sig: Signal) {
    signal(b.pids()[shard].unwrap(), sig);
}

struct Stream {
    accepted: Vec<String>,
    refused: Vec<String>,
    /// Echoed tags read so far, by shard.
    got: Vec<Vec<String>>,
}

impl Stream {
    fn next_tag(&self) -> String {
        format!("ev-{}", self.accepted.len() + self.refused.len())
    }

    fn event(tag: &str) -> SubCommand {
        SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: tagged_event(tag, EVENT_LEN).into(),
        }
    }

    /// Sends one fresh Bcast; on refusal checks that no shard's queue
    /// changed, and returns the refusing shard.
    fn offer(&mut self, b: &mut ShardedBroadcaster) -> Option<usize> {
        let tag = self.next_tag();
        let before: Vec<(usize, usize)> = (0..b.shard_count())
            .map(|s| {
                (
                    b.shard(s).unwrap().queued_bytes(),
                    b.shard(s).unwrap().queued_commands(),
                )
            })
            .collect();
        match b.send(&Self::event(&tag)) {
            Ok(()) => {
                self.accepted.push(tag);
                None
            }
            Err(e) => {
                let SendError::Backpressure(bp) = e.error else {
                    panic!("unexpected {e}")
                };
                assert_eq!((bp.needed, bp.limit), (200, LIMIT));
                let after: Vec<(usize, usize)> = (0..b.shard_count())
                    .map(|s| {
                        (
                            b.shard(s).unwrap().queued_bytes(),
                            b.shard(s).unwrap().queued_commands(),
                        )
                    })
                    .collect();
                assert_eq!(after, before, "a refused Bcast was queued somewhere");
                self.refused.push(tag);
                Some(e.shard)
            }
        }
    }

    fn read_available(&mut self, b: &mut ShardedBroadcaster) {
        loop {
            match b.read_frame().unwrap() {
                ShardedIncoming::Frame { shard, frame } => self.got[shard].push(tag_of(&echoed(&frame))),
                ShardedIncoming::Pending => return,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn bcast_admission_is_all_or_none(transport: Transport) {
    let opts = test_options().max_queued_bytes(LIMIT);
    let mut b = spawn_sharded_echo(2, transport, |_| Vec::new(), &opts);
    let mut s = Stream {
        accepted: Vec::new(),
        refused: Vec::new(),
        got: vec![Vec::new(); 2],
    };
    // Shard 1's worker stops reading, deterministically.
    stop(b.pids()[1].unwrap());

    // Both queues fill alike until one refuses.
    while s.offer(&mut b).is_none() {}
    // Shard 0 drains (its worker reads; we read its echoes), shard 1 stays
    // full. Wait until shard 0's queue is empty.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let _ = b.flush().unwrap();
        s.read_available(&mut b);
        if b.shard(0).unwrap().queued_bytes() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{transport:?}: shard 0 never drained");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Take whatever room shard 1's write made, until it refuses again.
    while s.offer(&mut b).is_none() {}
    let _ = b.flush().unwrap();
    s.read_available(&mut b);
    while b.shard(0).unwrap().queued_bytes() > 0 {
        assert!(Instant::now() < deadline, "{transport:?}: shard 0 never drained");
        let _ = b.flush().unwrap();
        s.read_available(&mut b);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(b.shard(1).unwrap().queued_bytes() > LIMIT - 200, "{transport:?}");

    // Shard 0 has room, shard 1 has none: refused, naming shard 1, queued on
    // neither.
    let tag = s.next_tag();
    assert_eq!(b.shard(0).unwrap().check_send(&Stream::event(&tag)), Ok(()));
    assert_eq!(s.offer(&mut b), Some(1), "{transport:?}");
    assert_eq!(b.shard(0).unwrap().queued_commands(), 0, "{transport:?}");
    // A conn on shard 0 is not held up by shard 1.
    b.on_connect(2, false).unwrap();
    b.on_disconnect(2).unwrap();

    // Resume; send more, flushing whenever a Bcast is refused.
    signal_shard(&b, 1, Signal::SIGCONT);
    let target = s.accepted.len() + 3000;
    while s.accepted.len() < target {
        if s.offer(&mut b).is_some() {
            b.flush_blocking().unwrap();
        }
    }
    b.flush_blocking().unwrap();
    b.close_write().unwrap();
    let drained = drain_to_exit(&mut b);
    for shard in 0..2 {
        let mut tags = s.got[shard].clone();
        tags.extend(
            drained.echoes[shard]
                .iter()
                .filter(|c| matches!(c, SubCommand::Bcast { .. }))
                .map(tag_of),
        );
        // Every accepted event, once, in order, on every shard.
        assert_eq!(tags, s.accepted, "{transport:?} shard {shard}");
        let exit = drained.exits[shard].clone().unwrap();
        assert!(exit.conns.is_empty());
        assert!(
            status_of(&mut b, shard, exit.status).success(),
            "{:?}",
            stderr_all(&b)
        );
    }
    assert!(s.refused.len() >= 3, "{transport:?}");
}

fn a_bcast_is_admitted_to_every_shard_or_to_none_and_nothing_is_lost_stdio() {
    bcast_admission_is_all_or_none(Transport::Stdio);
}

fn a_bcast_is_admitted_to_every_shard_or_to_none_and_nothing_is_lost_socketpair() {
    bcast_admission_is_all_or_none(Transport::SocketPair);
}
