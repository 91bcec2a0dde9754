//! Helpers of the blocking sharded tests: K echo workers behind one
//! `ShardedBroadcaster`, and reading their answers by shard.

use std::num::NonZeroUsize;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::sharded::{ShardExit, ShardState, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{Options, Transport};
use broadcast_wire::SubCommand;

use super::{PATIENCE, echo_worker, echoed};

pub fn k(shards: usize) -> NonZeroUsize {
    NonZeroUsize::new(shards).expect("at least one shard")
}

/// `shards` echo workers, shard `i` with `args(i)`.
pub fn spawn_sharded_echo(
    shards: usize,
    transport: Transport,
    args: impl Fn(usize) -> Vec<String>,
    opts: &Options,
) -> ShardedBroadcaster {
    ShardedBroadcaster::spawn(k(shards), |i| echo_worker(&args(i)), transport, opts)
        .unwrap_or_else(|e| panic!("spawning {shards} echo workers over {transport:?}: {e}"))
}

/// The stderr lines of every shard, for failure messages.
pub fn stderr_all(b: &ShardedBroadcaster) -> Vec<Vec<String>> {
    (0..b.shard_count())
        .map(|s| {
            b.shard(s)
                .and_then(|h| h.stderr_tail())
                .map(|t| t.lines())
                .unwrap_or_default()
        })
        .collect()
}

/// The next item that is not `Pending`, failing the test after [`PATIENCE`].
pub fn next_item(b: &mut ShardedBroadcaster) -> ShardedIncoming {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "nothing came; stderr: {:?}", stderr_all(b));
        match b.read_frame_timeout(left) {
            Ok(ShardedIncoming::Pending) => {}
            Ok(item) => return item,
            Err(e) => panic!("read failed: {e}; stderr: {:?}", stderr_all(b)),
        }
    }
}

/// Echoes (decoded) by shard, read until every shard has exited; and the
/// exits, by shard.
pub struct Drained {
    pub echoes: Vec<Vec<SubCommand>>,
    pub exits: Vec<Option<ShardExit>>,
}

/// Reads everything until every shard not yet retired has reported its
/// exit (the exits of shards retired before stay `None`).
pub fn drain_to_exit(b: &mut ShardedBroadcaster) -> Drained {
    let k = b.shard_count();
    let mut out = Drained {
        echoes: vec![Vec::new(); k],
        exits: vec![None; k],
    };
    let waiting = |b: &ShardedBroadcaster, exits: &[Option<ShardExit>]| {
        (0..k).any(|s| exits[s].is_none() && b.router().state(s) != Some(ShardState::Retired))
    };
    while waiting(b, &out.exits) {
        match next_item(b) {
            ShardedIncoming::Frame { shard, frame } => {
                assert!(
                    out.exits[shard].is_none(),
                    "a frame of shard {shard} after its exit"
                );
                out.echoes[shard].push(echoed(&frame));
            }
            ShardedIncoming::ShardExited(exit) => {
                let shard = exit.shard;
                assert!(out.exits[shard].is_none(), "shard {shard} reported twice");
                out.exits[shard] = Some(exit);
            }
            other => panic!("unexpected {other:?}; stderr: {:?}", stderr_all(b)),
        }
    }
    out
}

/// The exit status of `shard`, waiting for it to be reaped.
pub fn status_of(b: &mut ShardedBroadcaster, shard: usize, reported: Option<ExitStatus>) -> ExitStatus {
    if let Some(status) = reported {
        return status;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = b.exit_status(shard) {
            return status;
        }
        assert!(Instant::now() < deadline, "shard {shard} was not reaped");
        std::thread::sleep(Duration::from_millis(5));
    }
}
