//! Routing of a `ShardedBroadcaster` over echo workers (each answers every
//! command with its payload, so what each shard received is observable):
//! a connection's commands reach exactly its shard, in order; a Bcast
//! reaches every shard, in order with the rest; the connections each shard
//! owns are tracked; frames are read fairly across shards. A shard that
//! fails to start is named; the fds and queues are reported by shard.

use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use std::time::Instant;

use broadcast_process::broadcaster::sharded::{ShardState, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{FlushStatus, SendError, SpawnError, Transport};
use broadcast_wire::{BcastFlags, NewFlags, ReservedFlags, SubCommand, SubId};

use crate::support::sharded::*;
use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        each_conns_commands_reach_only_its_shard_in_order_and_every_bcast_reaches_every_shard,
        a_refused_command_is_queued_nowhere_and_names_its_shard,
        frames_are_read_round_robin_across_shards,
        an_undecodable_frame_is_reported_with_its_shard,
        a_shard_that_fails_to_start_is_named,
        the_fds_and_queues_of_the_shards_are_reported_by_shard,
    ]
}

const SHARDS: usize = 3;

fn sub_id(s: &str) -> SubId {
    SubId::try_from(s).unwrap()
}

/// Every kind of command, interleaved: conns 10..40 open, subscribe, auth,
/// unsubscribe, and the even ones close; a Bcast after every fifth command.
fn script() -> Vec<SubCommand> {
    let mut cmds = Vec::new();
    let mut n = 0;
    let mut push = |cmds: &mut Vec<SubCommand>, cmd: SubCommand| {
        cmds.push(cmd);
        n += 1;
        if n % 5 == 0 {
            cmds.push(SubCommand::Bcast {
                sender: if n % 2 == 0 { -1 } else { 12 },
                flags: BcastFlags::NEED_FILTER,
                event: tagged_event(&format!("ev{n}"), 80).into(),
            });
        }
    };
    for conn in 10..40 {
        push(
            &mut cmds,
            SubCommand::New {
                conn,
                flags: NewFlags::EMPTY,
            },
        );
    }
    for conn in 10..40 {
        let id = format!("s{conn}");
        push(
            &mut cmds,
            SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(&id),
                req: format!(r#"["REQ","{id}",{{}}]"#).into(),
            },
        );
        push(
            &mut cmds,
            SubCommand::Auth {
                conn,
                flags: ReservedFlags::EMPTY,
                pubkey: [conn as u8; 32],
            },
        );
    }
    for conn in 10..40 {
        push(
            &mut cmds,
            SubCommand::Remove {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(&format!("s{conn}")),
            },
        );
        if conn % 2 == 0 {
            push(
                &mut cmds,
                SubCommand::Close {
                    conn,
                    flags: ReservedFlags::EMPTY,
                },
            );
        }
    }
    cmds
}

fn each_conns_commands_reach_only_its_shard_in_order_and_every_bcast_reaches_every_shard() {
    for transport in TRANSPORTS {
        let mut b = spawn_sharded_echo(SHARDS, transport, |_| Vec::new(), &test_options());
        let cmds = script();
        for cmd in &cmds {
            b.send(cmd).unwrap();
        }
        b.flush_blocking().unwrap();
        b.close_write().unwrap();
        // The odd conns stay open: each shard owns its share of them.
        for shard in 0..SHARDS {
            let expected: Vec<i32> = (10..40)
                .filter(|c| c % 2 == 1 && *c as usize % SHARDS == shard)
                .collect();
            assert_eq!(b.conns_of(shard), expected, "{transport:?}");
        }
        let drained = drain_to_exit(&mut b);
        for shard in 0..SHARDS {
            // Exactly the commands on its conns, and every Bcast, in the
            // order they were sent.
            let expected: Vec<SubCommand> = cmds
                .iter()
                .filter(|c| matches!(c, SubCommand::Bcast { .. }) || c.conn() as usize % SHARDS == shard)
                .cloned()
                .collect();
            assert_eq!(drained.echoes[shard], expected, "{transport:?} shard {shard}");
            let exit = drained.exits[shard].clone().unwrap();
            let expected_conns: Vec<i32> = (10..40)
                .filter(|c| c % 2 == 1 && *c as usize % SHARDS == shard)
                .collect();
            assert_eq!(exit.conns, expected_conns, "{transport:?} shard {shard}");
            assert!(
                status_of(&mut b, shard, exit.status).success(),
                "{:?}",
                stderr_all(&b)
            );
        }
        // Once reported, a shard is not read again.
        assert_eq!(b.read_frame().unwrap(), ShardedIncoming::Pending);
        assert_eq!(b.read_fds().count(), 0);
    }
}

fn a_refused_command_is_queued_nowhere_and_names_its_shard() {
    let mut b = spawn_sharded_echo(2, Transport::Stdio, |_| Vec::new(), &test_options());
    // Invalid on its shard (a negative conn) and invalid everywhere (an
    // empty event): refused, nothing queued.
    let bad = b.on_connect(-3, false).unwrap_err();
    assert!(matches!(bad.error, SendError::Invalid(_)), "{bad}");
    let bad = b.fanout("", -1, BcastFlags::EMPTY).unwrap_err();
    assert!(matches!(bad.error, SendError::Invalid(_)), "{bad}");
    let bad = b.on_subscribe(4, "", "[]").unwrap_err();
    assert_eq!(bad.shard, 0);
    assert_eq!(b.queued_bytes(), 0);
    assert!(b.conns_of(0).is_empty() && b.conns_of(1).is_empty());
}

fn frames_are_read_round_robin_across_shards() {
    const EACH: usize = 100;
    let mut b = spawn_sharded_echo(2, Transport::Stdio, |_| Vec::new(), &test_options());
    for i in 0..EACH {
        b.fanout(tagged_event(&format!("ev{i}"), 100), -1, BcastFlags::EMPTY)
            .unwrap();
    }
    b.flush_blocking().unwrap();
    // Wait until both workers have written all their echoes, so both
    // shards have frames ready for every read below.
    let echo_len = 5 + 4 + 4 + SubCommand::FIXED_LEN + 100;
    let deadline = Instant::now() + PATIENCE;
    for shard in 0..2 {
        let fd = b.shard(shard).unwrap().read_fd();
        while unread_bytes(fd) < (EACH * echo_len) as u64 {
            assert!(Instant::now() < deadline, "shard {shard} did not answer");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    let mut order = Vec::new();
    for _ in 0..2 * EACH {
        match b.read_frame().unwrap() {
            ShardedIncoming::Frame { shard, frame } => order.push((shard, tag_of(&echoed(&frame)))),
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<(usize, String)> = (0..EACH)
        .flat_map(|i| [(0, format!("ev{i}")), (1, format!("ev{i}"))])
        .collect();
    assert_eq!(order, expected);
    assert_eq!(b.read_frame().unwrap(), ShardedIncoming::Pending);
}

fn an_undecodable_frame_is_reported_with_its_shard() {
    let mut b = spawn_sharded_echo(
        2,
        Transport::SocketPair,
        |i| {
            if i == 1 {
                vec!["--invalid-first".into()]
            } else {
                Vec::new()
            }
        },
        &test_options(),
    );
    match next_item(&mut b) {
        ShardedIncoming::InvalidFrame { shard, .. } => assert_eq!(shard, 1),
        other => panic!("unexpected {other:?}"),
    }
    // Both shards still work.
    b.on_connect(1, false).unwrap();
    b.on_connect(2, false).unwrap();
    b.flush_blocking().unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        match next_item(&mut b) {
            ShardedIncoming::Frame { shard, frame } => got.push((shard, frame.conn)),
            other => panic!("unexpected {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, [(0, 2), (1, 1)]);
}

fn a_shard_that_fails_to_start_is_named() {
    for transport in TRANSPORTS {
        let err = ShardedBroadcaster::spawn(
            k(3),
            |i| {
                if i == 1 {
                    Command::new("/nonexistent/broadcast-worker")
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
            matches!(err.error, SpawnError::Spawn { .. }),
            "{transport:?}: {err}"
        );
    }
}

fn the_fds_and_queues_of_the_shards_are_reported_by_shard() {
    // PROTOCOL.md#frame-layout, PROTOCOL.md#subcommand-layout: a New is a
    // 5 + 14-byte frame; a Bcast of 3 bytes, 5 + 14 + 3.
    const NEW: usize = 5 + 14;
    const BCAST_3: usize = 5 + 14 + 3;
    let mut b = spawn_sharded_echo(2, Transport::Stdio, |_| Vec::new(), &test_options());
    assert_eq!(b.shard_count(), 2);
    assert_eq!(b.pids().len(), 2);
    assert_eq!(b.router().state(0), Some(ShardState::Live));
    assert_eq!(b.router().state(1), Some(ShardState::Live));
    assert_eq!(b.router().state(2), None);
    assert!(b.shard(2).is_none());
    assert_eq!(b.shard_of(17), 1);

    let read_fd = |b: &ShardedBroadcaster, s: usize| b.shard(s).unwrap().read_fd().as_raw_fd();
    let write_fd = |b: &ShardedBroadcaster, s: usize| b.shard(s).unwrap().write_fd().unwrap().as_raw_fd();
    let reads: Vec<(usize, RawFd)> = b.read_fds().map(|(s, fd)| (s, fd.as_raw_fd())).collect();
    assert_eq!(reads, [(0, read_fd(&b, 0)), (1, read_fd(&b, 1))]);
    assert!(!b.wants_write());
    assert_eq!(b.write_fds().count(), 0);

    // Conn 2 is shard 0's: only its write fd is wanted.
    b.on_connect(2, false).unwrap();
    assert!(b.wants_write());
    let writes: Vec<(usize, RawFd)> = b.write_fds().map(|(s, fd)| (s, fd.as_raw_fd())).collect();
    assert_eq!(writes, [(0, write_fd(&b, 0))]);
    assert_eq!(b.queued_bytes(), NEW);
    // A Bcast is queued on both.
    b.fanout("[1]", -1, BcastFlags::EMPTY).unwrap();
    assert_eq!(b.queued_bytes(), NEW + 2 * BCAST_3);
    assert_eq!(b.shard(1).unwrap().queued_bytes(), BCAST_3);
    assert_eq!(b.write_fds().count(), 2);

    // A few bytes always fit empty pipes: one non-blocking flush.
    assert_eq!(b.flush().unwrap(), FlushStatus::Flushed);
    assert!(!b.wants_write());
    assert_eq!(b.queued_bytes(), 0);
    assert_eq!(b.conns_of(0), vec![2]);
}
