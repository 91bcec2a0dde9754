//! `AsyncShardedBroadcaster` (feature `tokio`) against K echo workers, as
//! the `sharded_*` tests check the blocking handle, on both transports:
//! routing (each conn's commands reach exactly its shard, in order; every
//! Bcast reaches every shard), backpressure with nothing lost and Bcasts
//! admitted to every shard or none (refused at once by `try_fanout`, waited
//! for by `fanout`, queued nowhere if that wait is dropped), a shard that
//! dies (reported once, after its frames, with its conns; the others carry
//! on; one whose output breaks the framing is an error once, then killed
//! and reported exited), `recv` taking turns between shards that all have
//! frames, and drop reaping every worker. A shard that fails to start is
//! named, a shard index out of range is refused, the queues are reported
//! by shard.

use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::os::unix::process::ExitStatusExt;
use std::pin::pin;
use std::process::ExitStatus;
use std::task::Poll;
use std::time::Duration;

use broadcast_process::async_broadcaster::{AsyncShardedBroadcaster, QueueError};
use broadcast_process::broadcaster::sharded::{ShardExit, ShardState, ShardedIncoming};
use broadcast_process::broadcaster::{Options, SendError, Transport};
use broadcast_wire::{BcastFlags, NewFlags, ReadError, ReservedFlags, SubCommand, SubId};
use nix::sys::signal::Signal;
use tokio::time::timeout;

use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        each_conns_commands_reach_exactly_its_shard_in_order_and_every_bcast_reaches_all,
        bcasts_reach_every_shard_or_none_waiting_or_not_and_nothing_is_lost,
        a_shard_that_dies_is_reported_once_with_its_conns_after_its_frames_and_the_others_carry_on,
        drop_reaps_every_shard_even_those_that_ignore_eof_or_have_commands_queued,
        recv_takes_turns_between_shards_that_all_have_frames,
        a_shard_whose_output_breaks_the_framing_is_reported_once_then_killed_and_reported_exited,
        a_shard_that_fails_to_start_is_named_and_bad_indexes_are_refused,
    ]
}

/// 1 MiB: more than a pipe or a socket pair holds.
const LIMIT: usize = 1 << 20;
/// Each Bcast below is a 200-byte frame.
const EVENT_LEN: usize = 181;

fn spawn(
    shards: usize,
    transport: Transport,
    args: impl Fn(usize) -> Vec<&'static str>,
    opts: &Options,
) -> AsyncShardedBroadcaster {
    AsyncShardedBroadcaster::spawn(
        NonZeroUsize::new(shards).unwrap(),
        |i| echo_worker(&args(i)),
        transport,
        opts,
    )
    .unwrap_or_else(|e| panic!("spawning {shards} echo workers over {transport:?}: {e}"))
}

fn stderr_all(b: &AsyncShardedBroadcaster) -> Vec<Vec<String>> {
    (0..b.shard_count())
        .map(|s| {
            b.shard(s)
                .and_then(|h| h.stderr_tail())
                .map(|t| t.lines())
                .unwrap_or_default()
        })
        .collect()
}

async fn next_item(b: &mut AsyncShardedBroadcaster) -> ShardedIncoming {
    match timeout(PATIENCE, b.recv()).await {
        Ok(Ok(item)) => item,
        other => panic!("expected an item, got {other:?}; stderr: {:?}", stderr_all(b)),
    }
}

/// The exit status of a reported shard, reaped.
async fn status_of(b: &mut AsyncShardedBroadcaster, exit: &ShardExit) -> ExitStatus {
    match exit.status {
        Some(status) => status,
        None => b
            .wait_exit(exit.shard, PATIENCE)
            .await
            .expect("the shard's worker exits"),
    }
}

/// What came back: every echoed command by shard, and each shard's exit.
struct Collected {
    echoes: Vec<Vec<SubCommand>>,
    exits: Vec<Option<ShardExit>>,
}

impl Collected {
    fn new(k: usize) -> Collected {
        Collected {
            echoes: vec![Vec::new(); k],
            exits: vec![None; k],
        }
    }

    /// Takes one item; the item must be a frame or a first exit.
    fn take(&mut self, item: ShardedIncoming) {
        match item {
            ShardedIncoming::Frame { shard, frame } => self.echoes[shard].push(echoed(&frame)),
            ShardedIncoming::ShardExited(exit) => {
                let shard = exit.shard;
                assert!(self.exits[shard].is_none(), "shard {shard} reported twice");
                self.exits[shard] = Some(exit);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Receives until every shard has been reported, then checks that
    /// `recv` says nothing more can come.
    async fn drain(&mut self, b: &mut AsyncShardedBroadcaster) {
        while self.exits.iter().any(Option::is_none) {
            let item = next_item(b).await;
            self.take(item);
        }
        assert_eq!(next_item(b).await, ShardedIncoming::Pending);
    }

    fn bcast_tags(&self, shard: usize) -> Vec<String> {
        self.echoes[shard]
            .iter()
            .filter(|c| matches!(c, SubCommand::Bcast { .. }))
            .map(tag_of)
            .collect()
    }
}

/// Sends `cmd` through the named method of its kind, waiting (`wait`) or
/// `try_`.
async fn issue(b: &mut AsyncShardedBroadcaster, cmd: &SubCommand, wait: bool) {
    let result = if wait {
        match cmd.clone() {
            SubCommand::New { conn, flags } => b.on_connect(conn, flags == NewFlags::WHITELISTED).await,
            SubCommand::Close { conn, .. } => b.on_disconnect(conn).await,
            SubCommand::Add {
                conn, sub_id, req, ..
            } => b.on_subscribe(conn, sub_id.as_str(), req).await,
            SubCommand::Remove { conn, sub_id, .. } => b.on_unsubscribe(conn, sub_id.as_str()).await,
            SubCommand::Auth { conn, pubkey, .. } => b.on_auth(conn, pubkey).await,
            SubCommand::Bcast { sender, flags, event } => b.fanout(event, sender, flags).await,
        }
        .map_err(|e| e.to_string())
    } else {
        match cmd.clone() {
            SubCommand::New { conn, flags } => b.try_on_connect(conn, flags == NewFlags::WHITELISTED),
            SubCommand::Close { conn, .. } => b.try_on_disconnect(conn),
            SubCommand::Add {
                conn, sub_id, req, ..
            } => b.try_on_subscribe(conn, sub_id.as_str(), req),
            SubCommand::Remove { conn, sub_id, .. } => b.try_on_unsubscribe(conn, sub_id.as_str()),
            SubCommand::Auth { conn, pubkey, .. } => b.try_on_auth(conn, pubkey),
            SubCommand::Bcast { sender, flags, event } => b.try_fanout(event, sender, flags),
        }
        .map_err(|e| e.to_string())
    };
    result.unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
}

fn bcast(tag: &str) -> SubCommand {
    SubCommand::Bcast {
        sender: -1,
        flags: BcastFlags::EMPTY,
        event: tagged_event(tag, EVENT_LEN).into(),
    }
}

fn each_conns_commands_reach_exactly_its_shard_in_order_and_every_bcast_reaches_all() {
    block_on(async {
        const K: usize = 3;
        for transport in TRANSPORTS {
            let mut b = spawn(K, transport, |_| Vec::new(), &test_options());
            let sub = |s: &str| SubId::new(s.to_owned().into()).unwrap();
            let mut sent = Vec::new();
            for conn in 0..12 {
                sent.push(SubCommand::New {
                    conn,
                    flags: if conn % 4 == 0 {
                        NewFlags::WHITELISTED
                    } else {
                        NewFlags::EMPTY
                    },
                });
            }
            for round in 0..4 {
                for conn in 0..12 {
                    let id = format!("s{round}");
                    sent.push(match (conn + round) % 4 {
                        0 => SubCommand::Add {
                            conn,
                            flags: ReservedFlags::EMPTY,
                            sub_id: sub(&id),
                            req: format!(r#"["REQ","{id}",{{"kinds":[{conn}]}}]"#).into(),
                        },
                        1 => SubCommand::Auth {
                            conn,
                            flags: ReservedFlags::EMPTY,
                            pubkey: [conn as u8; 32],
                        },
                        2 => SubCommand::Remove {
                            conn,
                            flags: ReservedFlags::EMPTY,
                            sub_id: sub(&id),
                        },
                        _ => bcast(&format!("r{round}c{conn}")),
                    });
                }
            }
            for conn in [1, 6, 11] {
                sent.push(SubCommand::Close {
                    conn,
                    flags: ReservedFlags::EMPTY,
                });
            }
            // Half waiting, half `try_`, and some through `send`/`try_send`.
            for (i, cmd) in sent.iter().enumerate() {
                match i % 4 {
                    0 | 1 => issue(&mut b, cmd, i % 4 == 0).await,
                    2 => b.send(cmd).await.unwrap(),
                    _ => b.try_send(cmd).unwrap(),
                }
            }
            assert_eq!(b.conns_of(1), vec![4, 7, 10], "{transport:?}");
            b.flush().await.unwrap();
            b.close_write().unwrap();
            let mut got = Collected::new(K);
            got.drain(&mut b).await;

            for shard in 0..K {
                let expected: Vec<SubCommand> = sent
                    .iter()
                    .filter(|c| matches!(c, SubCommand::Bcast { .. }) || b.shard_of(c.conn()) == shard)
                    .cloned()
                    .collect();
                assert_eq!(got.echoes[shard], expected, "{transport:?} shard {shard}");
                let exit = got.exits[shard].clone().unwrap();
                let open: Vec<i32> = (0..12)
                    .filter(|c| c % 3 == shard as i32 && ![1, 6, 11].contains(c))
                    .collect();
                assert_eq!(exit.conns, open, "{transport:?} shard {shard}");
                assert!(status_of(&mut b, &exit).await.success(), "{:?}", stderr_all(&b));
                assert_eq!(b.router().state(shard), Some(ShardState::Retired));
            }
        }
    });
}

/// The state of the Bcast stream of the backpressure test.
struct Stream {
    accepted: Vec<String>,
    refused: usize,
    got: Collected,
}

impl Stream {
    fn next_tag(&self) -> String {
        format!("ev-{}", self.accepted.len() + self.refused)
    }

    fn queues(b: &AsyncShardedBroadcaster) -> Vec<(usize, usize)> {
        (0..b.shard_count())
            .map(|s| {
                let q = b.shard(s).unwrap().link();
                (q.queued_bytes(), q.queued_commands())
            })
            .collect()
    }

    /// `try_fanout` of a fresh event; on refusal checks that no shard's
    /// queue changed, and returns the refusing shard.
    fn offer(&mut self, b: &mut AsyncShardedBroadcaster) -> Option<usize> {
        let tag = self.next_tag();
        let before = Self::queues(b);
        match b.try_fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY) {
            Ok(()) => {
                self.accepted.push(tag);
                None
            }
            Err(e) => {
                let SendError::Backpressure(bp) = e.error else {
                    panic!("unexpected {e}")
                };
                assert_eq!((bp.needed, bp.limit), (200, LIMIT));
                assert_eq!(Self::queues(b), before, "a refused Bcast was queued somewhere");
                self.refused += 1;
                Some(e.shard)
            }
        }
    }

    /// Receives until shard 0 has echoed every accepted event (so its
    /// queue is empty: each echo answers a command it read).
    async fn drain_shard0(&mut self, b: &mut AsyncShardedBroadcaster) {
        let bcasts = |got: &Collected| {
            got.echoes[0]
                .iter()
                .filter(|c| matches!(c, SubCommand::Bcast { .. }))
                .count()
        };
        // (Counted, not parsed: this runs once per frame.)
        while bcasts(&self.got) < self.accepted.len() {
            let item = next_item(b).await;
            self.got.take(item);
        }
        assert_eq!(b.shard(0).unwrap().link().queued_bytes(), 0);
    }
}

fn bcasts_reach_every_shard_or_none_waiting_or_not_and_nothing_is_lost() {
    block_on(async {
        for transport in TRANSPORTS {
            let opts = test_options().max_queued_bytes(LIMIT);
            let mut b = spawn(2, transport, |_| Vec::new(), &opts);
            let pid1 = b.pids()[1].unwrap();
            let mut s = Stream {
                accepted: Vec::new(),
                refused: 0,
                got: Collected::new(2),
            };
            // Shard 1's worker stops reading, deterministically.
            stop(pid1);

            // Both queues fill alike until one refuses; shard 0 then drains
            // (recv writes every queue while it waits), shard 1 cannot.
            while s.offer(&mut b).is_none() {}
            s.drain_shard0(&mut b).await;
            // Take whatever room shard 1's write made, until it refuses again.
            while s.offer(&mut b).is_none() {}
            s.drain_shard0(&mut b).await;
            assert!(
                b.shard(1).unwrap().link().queued_bytes() > LIMIT - 200,
                "{transport:?}"
            );

            // Shard 0 has room, shard 1 has none: try_fanout is refused at
            // once naming shard 1, queued on neither.
            assert_eq!(s.offer(&mut b), Some(1), "{transport:?}");
            assert_eq!(b.shard(0).unwrap().link().queued_commands(), 0);
            // A conn of shard 0 is not held up by shard 1.
            b.on_connect(2, false).await.unwrap();
            b.try_on_disconnect(2).unwrap();

            // A waiting fanout waits; dropped while it waits, it queued nothing.
            let before = Stream::queues(&b);
            {
                let mut waiting = pin!(b.fanout(tagged_event("dropped", EVENT_LEN), -1, BcastFlags::EMPTY));
                let first = poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx).is_pending())).await;
                assert!(first, "{transport:?}: fanout did not wait for the stopped shard");
            }
            assert_eq!(
                Stream::queues(&b),
                before,
                "{transport:?}: a dropped fanout queued something"
            );

            // A waiting fanout completes once the worker resumes, on both.
            let tag = s.next_tag();
            {
                let mut waiting = pin!(b.fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY));
                let first = poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx).is_pending())).await;
                assert!(first, "{transport:?}: fanout did not wait for the stopped shard");
                signal(pid1, Signal::SIGCONT);
                timeout(PATIENCE, waiting)
                    .await
                    .expect("the fanout completes")
                    .unwrap();
            }
            s.accepted.push(tag);

            // More, `try_` first and waiting when refused: every one accepted.
            let target = s.accepted.len() + 3000;
            while s.accepted.len() < target {
                if s.offer(&mut b).is_some() {
                    let tag = s.next_tag();
                    b.fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY)
                        .await
                        .unwrap();
                    s.accepted.push(tag);
                }
            }
            b.flush().await.unwrap();
            b.close_write().unwrap();
            s.got.drain(&mut b).await;
            for shard in 0..2 {
                // Every accepted event, once, in order, on every shard; no
                // refused or dropped one.
                assert_eq!(s.got.bcast_tags(shard), s.accepted, "{transport:?} shard {shard}");
                let exit = s.got.exits[shard].clone().unwrap();
                assert!(exit.conns.is_empty());
                assert!(status_of(&mut b, &exit).await.success(), "{:?}", stderr_all(&b));
            }
            assert!(s.refused >= 3, "{transport:?}");
        }
    });
}

fn a_shard_that_dies_is_reported_once_with_its_conns_after_its_frames_and_the_others_carry_on() {
    block_on(async {
        for transport in TRANSPORTS {
            // Shard 1 aborts after answering its 6th command.
            let mut b = spawn(
                2,
                transport,
                |i| {
                    if i == 1 {
                        vec!["--crash-after", "6"]
                    } else {
                        Vec::new()
                    }
                },
                &test_options(),
            );
            for conn in 0..10 {
                b.on_connect(conn, false).await.unwrap();
            }
            b.on_disconnect(2).await.unwrap();
            b.on_disconnect(3).await.unwrap(); // shard 1's 6th command
            b.flush().await.unwrap();

            let mut got = Collected::new(2);
            while got.exits[1].is_none() {
                let item = next_item(&mut b).await;
                got.take(item);
            }
            // Everything it wrote came first; then its end, with its conns.
            assert_eq!(got.echoes[1].len(), 6, "{transport:?}");
            let exit = got.exits[1].clone().unwrap();
            assert_eq!(exit.conns, vec![1, 5, 7, 9], "{transport:?}");
            let status = status_of(&mut b, &exit).await;
            assert_eq!(status.signal(), Some(6), "{transport:?}: {status:?}");
            assert_eq!(b.router().state(1), Some(ShardState::Retired));
            assert!(b.conns_of(1).is_empty());

            // Its conns' commands are refused naming it, waiting or not;
            // shard 0 and the Bcasts carry on.
            let refused = b.on_subscribe(5, "s", r#"["REQ","s",{}]"#).await.unwrap_err();
            assert_eq!(refused.shard, 1);
            assert!(matches!(
                refused.error,
                QueueError::Refused(SendError::WorkerGone)
            ));
            let refused = b.try_on_auth(7, [1; 32]).unwrap_err();
            assert_eq!((refused.shard, refused.error), (1, SendError::WorkerGone));
            b.on_connect(12, false).await.unwrap();
            b.fanout(tagged_event("after", 60), -1, BcastFlags::EMPTY)
                .await
                .unwrap();
            assert_eq!(b.shard(1).unwrap().link().queued_commands(), 0);
            b.flush().await.unwrap();
            b.close_write().unwrap();
            got.drain(&mut b).await; // fails if shard 1 is reported again

            let tail: Vec<&SubCommand> = got.echoes[0].iter().rev().take(2).rev().collect();
            assert!(
                matches!(tail[0], SubCommand::New { conn: 12, .. }),
                "{transport:?}: {tail:?}"
            );
            assert_eq!(tag_of(tail[1]), "after");
            assert_eq!(got.exits[0].clone().unwrap().conns, vec![0, 4, 6, 8, 12]);
        }
    });
}

fn drop_reaps_every_shard_even_those_that_ignore_eof_or_have_commands_queued() {
    block_on(async {
        for transport in TRANSPORTS {
            let opts = test_options().grace_period(Duration::from_millis(100));
            // Shard 1 ignores end-of-file; shard 2 never reads, so its queue
            // keeps what the pipe does not take.
            let mut b = spawn(
                3,
                transport,
                |i| match i {
                    1 => vec!["--ignore-eof"],
                    2 => vec!["--stall-ms", "60000"],
                    _ => Vec::new(),
                },
                &opts,
            );
            b.on_connect(0, false).await.unwrap();
            b.on_connect(1, false).await.unwrap();
            // Both running: each has answered.
            let mut answered = [false; 2];
            while answered != [true, true] {
                match next_item(&mut b).await {
                    ShardedIncoming::Frame { shard, .. } if shard < 2 => answered[shard] = true,
                    other => panic!("{transport:?}: unexpected {other:?}"),
                }
            }
            for i in 0..3000 {
                b.try_fanout(tagged_event(&format!("e{i}"), 200), -1, BcastFlags::EMPTY)
                    .unwrap();
            }
            assert!(b.shard(2).unwrap().link().queued_bytes() > 0, "{transport:?}");
            let pids: Vec<u32> = b.pids().into_iter().map(Option::unwrap).collect();
            for &pid in &pids {
                assert!(!is_reaped(pid), "{transport:?}: {pid} is not our running child");
            }
            drop(b);
            // Reaped in the background: each within PATIENCE.
            for pid in pids {
                assert_reaped(pid);
            }
        }
    });
}

fn recv_takes_turns_between_shards_that_all_have_frames() {
    block_on(async {
        const PER_SHARD: i32 = 50;
        for transport in TRANSPORTS {
            let mut b = spawn(2, transport, |_| Vec::new(), &test_options());
            for conn in 0..2 * PER_SHARD {
                b.try_on_connect(conn, false).unwrap();
            }
            b.flush().await.unwrap();
            b.close_write().unwrap();
            // Both workers have written every echo (they exit after the last
            // one), so both shards have frames waiting from the first recv on.
            for shard in 0..2 {
                let status = b.wait_exit(shard, PATIENCE).await.expect("the worker exits");
                assert!(status.success(), "{transport:?}: {:?}", stderr_all(&b));
            }
            let mut shards = Vec::new();
            let mut got = Collected::new(2);
            while shards.len() < 2 * PER_SHARD as usize {
                let item = next_item(&mut b).await;
                if let ShardedIncoming::Frame { shard, .. } = &item {
                    shards.push(*shard);
                }
                got.take(item);
            }
            // Strict turns: neither shard starves the other.
            assert!(
                shards.windows(2).all(|w| w[0] != w[1]),
                "{transport:?}: {shards:?}"
            );
            got.drain(&mut b).await;
            for shard in 0..2 {
                assert_eq!(got.echoes[shard].len(), PER_SHARD as usize, "{transport:?}");
            }
        }
    });
}

fn a_shard_whose_output_breaks_the_framing_is_reported_once_then_killed_and_reported_exited() {
    block_on(async {
        // Shard 1 announces a frame of 2 GiB (over the payload maximum), then
        // would read its input forever.
        let mut b = AsyncShardedBroadcaster::spawn(
            NonZeroUsize::new(2).unwrap(),
            |i| {
                if i == 0 {
                    echo_worker::<&str>(&[])
                } else {
                    let mut sh = std::process::Command::new("sh");
                    sh.args(["-c", r"printf '\002\377\377\377\177'; exec cat >/dev/null"]);
                    sh
                }
            },
            Transport::Stdio,
            &test_options(),
        )
        .unwrap();
        b.on_connect(3, false).await.unwrap();
        b.flush().await.unwrap();
        let err = match timeout(PATIENCE, b.recv()).await {
            Ok(Err(e)) => e,
            other => panic!("expected a read error, got {other:?}"),
        };
        assert_eq!(err.shard, 1);
        assert!(matches!(err.error, ReadError::Framing(_)), "{err}");
        let ShardedIncoming::ShardExited(exit) = next_item(&mut b).await else {
            panic!("expected the broken shard's exit");
        };
        assert_eq!((exit.shard, exit.conns.clone()), (1, vec![3]));
        assert_eq!(status_of(&mut b, &exit).await.signal(), Some(9));
        // Shard 0 is untouched.
        b.on_connect(4, false).await.unwrap();
        match next_item(&mut b).await {
            ShardedIncoming::Frame { shard: 0, frame } => assert_eq!(frame.conn, 4),
            other => panic!("unexpected {other:?}"),
        }
    });
}

fn a_shard_that_fails_to_start_is_named_and_bad_indexes_are_refused() {
    // A Bcast of 3 bytes is a 5 + 14 + 3-byte frame (PROTOCOL.md#frame-layout,
    // PROTOCOL.md#subcommand-layout), queued on each shard.
    const BCAST_3: usize = 5 + 14 + 3;
    block_on(async {
        for transport in TRANSPORTS {
            let err = AsyncShardedBroadcaster::spawn(
                NonZeroUsize::new(3).unwrap(),
                |i| {
                    if i == 1 {
                        std::process::Command::new("/nonexistent/broadcast-worker")
                    } else {
                        echo_worker::<&str>(&[])
                    }
                },
                transport,
                &test_options(),
            )
            .unwrap_err();
            assert_eq!(err.shard, 1, "{transport:?}");
            assert!(
                matches!(
                    err.error,
                    broadcast_process::broadcaster::SpawnError::Spawn { .. }
                ),
                "{transport:?}: {err}"
            );
        }

        let mut b = spawn(2, Transport::Stdio, |_| Vec::new(), &test_options());
        assert_eq!(b.shard_count(), 2);
        assert!(b.pids().iter().all(Option::is_some));
        assert_eq!(b.router().state(1), Some(ShardState::Live));
        assert_eq!(b.router().state(2), None);
        assert!(b.shard(2).is_none());
        assert_eq!(b.shard_of(17), 1);
        assert_eq!(b.wait_exit(0, Duration::ZERO).await, None, "running");
        assert_eq!(b.wait_exit(2, Duration::ZERO).await, None);
        let err = b.kill_shard(2).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

        b.try_on_connect(3, false).unwrap();
        assert_eq!(b.shard(1).unwrap().link().queued_commands(), 1);
        b.try_fanout("[1]", -1, BcastFlags::EMPTY).unwrap();
        assert_eq!(b.queued_bytes(), 5 + 14 + 2 * BCAST_3);
        assert_eq!(b.conns_of(1), vec![3]);
        b.flush().await.unwrap();
        assert_eq!(b.queued_bytes(), 0);
    });
}
