//! The shards' lives and deaths (blocking `ShardedBroadcaster`): a shard
//! that dies is reported once, after every frame it wrote, naming it and
//! the connections it owned; the other shards carry on; a shard whose
//! output breaks the framing is killed and reported; dropping the handle
//! reaps every worker. A running shard has no status; a shard index out of
//! range is refused.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use broadcast_process::broadcaster::sharded::{ShardState, ShardedBroadcaster, ShardedIncoming};
use broadcast_process::broadcaster::{SendError, Transport};
use broadcast_wire::{BcastFlags, ReadError, SubCommand};

use crate::support::sharded::*;
use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        a_shard_that_dies_is_reported_with_its_conns_after_its_frames_and_the_others_carry_on,
        a_dead_shard_found_by_a_flush_is_left_out_of_later_bcasts,
        a_shard_whose_output_breaks_the_framing_is_killed_and_reported,
        drop_reaps_every_shard_even_those_that_ignore_eof_or_have_commands_queued,
        a_running_shard_has_no_status_and_a_bad_index_is_refused,
    ]
}

fn a_shard_that_dies_is_reported_with_its_conns_after_its_frames_and_the_others_carry_on() {
    for transport in TRANSPORTS {
        // Shard 1 aborts after answering its 6th command.
        let mut b = spawn_sharded_echo(
            2,
            transport,
            |i| {
                if i == 1 {
                    vec!["--crash-after".into(), "6".into()]
                } else {
                    Vec::new()
                }
            },
            &test_options(),
        );
        for conn in 0..10 {
            b.on_connect(conn, false).unwrap();
        }
        b.on_disconnect(2).unwrap();
        b.on_disconnect(3).unwrap(); // shard 1's 6th command
        b.flush_blocking().unwrap();

        let mut shard1_echoes = Vec::new();
        let exit = loop {
            match next_item(&mut b) {
                ShardedIncoming::Frame { shard: 1, frame } => shard1_echoes.push(echoed(&frame)),
                ShardedIncoming::Frame { shard: 0, .. } => {}
                ShardedIncoming::ShardExited(exit) => break exit,
                other => panic!("{transport:?}: unexpected {other:?}"),
            }
        };
        // Everything it wrote came first; then its end, with its conns.
        assert_eq!(shard1_echoes.len(), 6, "{transport:?}");
        assert_eq!(
            (exit.shard, exit.conns.clone()),
            (1, vec![1, 5, 7, 9]),
            "{transport:?}"
        );
        let status = status_of(&mut b, 1, exit.status);
        assert_eq!(status.signal(), Some(6), "{transport:?}: {status:?}");
        assert_eq!(b.router().state(1), Some(ShardState::Retired));
        assert!(b.conns_of(1).is_empty());

        // Commands for its conns are refused, naming it; shard 0 and the
        // Bcasts carry on.
        let refused = b.on_subscribe(5, "s", r#"["REQ","s",{}]"#).unwrap_err();
        assert_eq!((refused.shard, refused.error), (1, SendError::WorkerGone));
        b.on_connect(12, false).unwrap();
        b.fanout(tagged_event("after", 60), -1, BcastFlags::EMPTY)
            .unwrap();
        assert_eq!(b.shard(1).unwrap().queued_commands(), 0);
        b.flush_blocking().unwrap();
        b.close_write().unwrap();
        let drained = drain_to_exit(&mut b);
        let tail: Vec<SubCommand> = drained.echoes[0].iter().rev().take(2).rev().cloned().collect();
        assert!(
            matches!(tail[0], SubCommand::New { conn: 12, .. }),
            "{transport:?}: {tail:?}"
        );
        assert_eq!(tag_of(&tail[1]), "after");
        assert_eq!(drained.exits[0].clone().unwrap().conns, vec![0, 4, 6, 8, 12]);
        assert!(drained.exits[1].is_none(), "reported once only");
    }
}

/// A dead shard is left out of later Bcasts, however its death is first
/// known: by a flush that meets the closed pipe (its worker exited but not
/// reaped yet), or by the handle reaping it (an exit status read), after
/// which nothing is written to it at all.
fn a_dead_shard_found_by_a_flush_is_left_out_of_later_bcasts() {
    for reaped_first in [false, true] {
        let mut b = spawn_sharded_echo(2, Transport::Stdio, |_| Vec::new(), &test_options());
        let pid = b.shard(0).unwrap().pid().expect("a child");
        b.kill_shard(0).unwrap();
        if reaped_first {
            assert_eq!(status_of(&mut b, 0, None).signal(), Some(9));
            b.fanout(tagged_event("first", 100), -1, BcastFlags::EMPTY)
                .unwrap();
            assert_eq!(b.router().state(0), Some(ShardState::Down));
            assert_eq!(
                b.shard(0).unwrap().queued_commands(),
                0,
                "nothing for a reaped shard"
            );
        } else {
            wait_dead(pid);
            // Writing to it fails once: the shard is down, the other goes on.
            let mut found = None;
            for i in 0..2000 {
                b.fanout(tagged_event(&format!("e{i}"), 100), -1, BcastFlags::EMPTY)
                    .unwrap();
                if let Err(e) = b.flush() {
                    found = Some(e);
                    break;
                }
            }
            let e = found.expect("the dead shard's pipe never reported it");
            assert_eq!(e.shard, 0);
            assert_eq!(b.router().state(0), Some(ShardState::Down));
            assert_eq!(status_of(&mut b, 0, None).signal(), Some(9));
        }
        let queued = b.shard(0).unwrap().queued_commands();
        b.fanout(tagged_event("late", 100), -1, BcastFlags::EMPTY)
            .unwrap();
        assert_eq!(b.shard(0).unwrap().queued_commands(), queued, "left out");
        b.flush_blocking().unwrap();
        b.close_write().unwrap();
        let drained = drain_to_exit(&mut b);
        assert_eq!(tag_of(drained.echoes[1].last().unwrap()), "late");
    }
}

fn a_shard_whose_output_breaks_the_framing_is_killed_and_reported() {
    // Shard 1 announces a frame of 2 GiB (over the payload maximum), then
    // would echo its input forever.
    let mut b = ShardedBroadcaster::spawn(
        k(2),
        |i| {
            if i == 0 {
                echo_worker::<&str>(&[])
            } else {
                let mut sh = Command::new("sh");
                sh.args(["-c", r"printf '\002\377\377\377\177'; exec cat >/dev/null"]);
                sh
            }
        },
        Transport::Stdio,
        &test_options(),
    )
    .unwrap();
    b.on_connect(3, false).unwrap();
    b.flush_blocking().unwrap();
    let err = loop {
        match b.read_frame_timeout(PATIENCE) {
            Err(e) => break e,
            Ok(ShardedIncoming::Pending) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(err.shard, 1);
    assert!(matches!(err.error, ReadError::Framing(_)), "{err}");
    let ShardedIncoming::ShardExited(exit) = b.read_frame().unwrap() else {
        panic!("expected the broken shard's exit");
    };
    assert_eq!((exit.shard, exit.conns), (1, vec![3]));
    assert_eq!(status_of(&mut b, 1, exit.status).signal(), Some(9));
    // Shard 0 is untouched.
    b.on_connect(4, false).unwrap();
    b.flush_blocking().unwrap();
    match next_item(&mut b) {
        ShardedIncoming::Frame { shard: 0, frame } => assert_eq!(frame.conn, 4),
        other => panic!("unexpected {other:?}"),
    }
}

fn drop_reaps_every_shard_even_those_that_ignore_eof_or_have_commands_queued() {
    for transport in TRANSPORTS {
        let opts = test_options().grace_period(Duration::from_millis(100));
        // Shard 1 ignores end-of-file; shard 2 never reads, so its queue
        // keeps what the pipe does not take.
        let mut b = spawn_sharded_echo(
            3,
            transport,
            |i| match i {
                1 => vec!["--ignore-eof".into()],
                2 => vec!["--stall-ms".into(), "60000".into()],
                _ => Vec::new(),
            },
            &opts,
        );
        for i in 0..3000 {
            b.fanout(tagged_event(&format!("e{i}"), 200), -1, BcastFlags::EMPTY)
                .unwrap();
        }
        let _ = b.flush();
        assert!(b.shard(2).unwrap().queued_bytes() > 0, "{transport:?}");
        let pids: Vec<u32> = b.pids().into_iter().map(Option::unwrap).collect();
        for &pid in &pids {
            assert!(!is_reaped(pid), "{transport:?}: {pid} is not our running child");
        }
        drop(b);
        // Reaped at once, by the drop: no zombie is left behind.
        for pid in pids {
            assert!(is_reaped(pid), "{transport:?}: worker {pid} was left behind");
        }
    }
}

fn a_running_shard_has_no_status_and_a_bad_index_is_refused() {
    let mut b = spawn_sharded_echo(2, Transport::Stdio, |_| Vec::new(), &test_options());
    assert_eq!(b.exit_status(0), None);
    assert_eq!(b.exit_status(1), None);
    assert_eq!(b.exit_status(2), None);
    let err = b.kill_shard(2).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Nothing was killed.
    for pid in b.pids() {
        assert!(!is_reaped(pid.unwrap()));
    }
    assert_eq!(b.router().state(0), Some(ShardState::Live));
    assert_eq!(b.router().state(1), Some(ShardState::Live));
}
