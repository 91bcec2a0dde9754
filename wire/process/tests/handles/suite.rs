//! The behaviour every handle owes, written once against
//! [`Handle`](crate::support::handle::Handle) and run for each of the four
//! handles on each transport: `suite::<case>::<handle>::<transport>`.
//!
//! Among them, the behaviour the doc examples used to check by running
//! processes (they are `no_run` now): the exact bytes each named command
//! queues, `close_write` and what follows it, the exit status of a running
//! and of a killed worker.
//!
//! The `regression_*` cases are the defects issue 15 fixed, each on both
//! drivers (blocking and tokio) and both transports:
//!
//! - one rule after a framing error: the output that follows is discarded
//!   while commands wait, so a worker that goes on writing cannot stall
//!   them, and the error is reported (sticky on a single handle; once per
//!   shard, then the shard's end, on a sharded one);
//! - no `Pending` from a sharded handle while frames it read ahead are in
//!   memory (which no fd announces);
//! - a `fanout` that no live shard can take is refused with `WorkerGone`,
//!   never `Ok(())`;
//! - dropping a sharded handle of hung workers costs one grace period, not
//!   one per shard, and reaps them all.
// A shard's index names it in the handle and in several tables at once.
#![allow(clippy::needless_range_loop)]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{SendError, Transport};
use broadcast_wire::{
    BcastFlags, BroadcastFrame, NewFlags, PayloadError, ReadError, ReservedFlags, SubCommand, SubId,
    SubIdProblem,
};
use bytes::Bytes;
use nix::sys::signal::Signal;

use crate::support::handle::{Cmd, Handle, Item, Kind, MODES, Mode, Refused};
use crate::support::*;

/// Shards of a sharded handle, unless a case says otherwise.
const SHARDS: usize = 2;
/// Each tagged event below is a 200-byte frame.
const EVENT_LEN: usize = 181;
/// A case still running after this hangs (each bounds its own waits far
/// below it; this only keeps a hang from stalling the whole run).
const CASE_LIMIT: Duration = Duration::from_secs(120);

type Case = fn(Kind, Transport);

/// One trial per case, handle and transport.
macro_rules! cases {
    ($($kinds:expr => [$($case:ident),* $(,)?]),* $(,)?) => {{
        let mut trials = Vec::new();
        $($(
            for kind in $kinds {
                for transport in TRANSPORTS {
                    trials.push(trial(stringify!($case), kind, transport, $case));
                }
            }
        )*)*
        trials
    }};
}

pub fn tests() -> Vec<libtest_mimic::Trial> {
    cases![
        Kind::all() => [
            named_methods_reach_the_worker_byte_exact_in_order,
            invalid_commands_are_refused_and_not_queued,
            backpressure_never_loses_a_command,
            a_chatty_worker_cannot_deadlock_waiting_commands,
            heartbeats_and_foreign_channels_are_skipped_and_an_invalid_frame_is_reported,
            a_crash_is_a_typed_outcome_and_the_worker_is_reaped,
            drop_reaps_the_workers,
            named_commands_queue_the_frame_bytes_the_spec_lays_out,
            close_write_waits_for_empty_queues_then_refuses_every_command,
            a_running_worker_has_no_status_and_a_killed_one_reports_signal_9,
            regression_a_worker_that_floods_after_breaking_the_framing_cannot_stall_waiting_commands,
        ],
        Kind::sharded() => [
            regression_no_pending_while_frames_read_ahead_are_in_memory,
            regression_fanout_with_every_shard_retired_is_worker_gone,
            regression_fanout_with_every_shard_found_dead_by_a_flush_is_worker_gone,
            regression_dropping_hung_shards_takes_one_grace_period,
        ],
    ]
}

fn trial(case: &'static str, kind: Kind, transport: Transport, run: Case) -> libtest_mimic::Trial {
    let name = format!("suite::{case}::{}::{}", kind.name(), transport_name(transport));
    libtest_mimic::Trial::test(name.clone(), move || {
        within(CASE_LIMIT, &name, move || run(kind, transport));
        Ok(())
    })
}

fn none(_: usize) -> Vec<String> {
    Vec::new()
}

fn event(tag: &str) -> Cmd {
    Cmd::event(tagged_event(tag, EVENT_LEN))
}

fn sub(id: &str) -> SubId {
    SubId::try_from(id).unwrap()
}

/// What came back, by shard.
struct Collected {
    frames: Vec<Vec<BroadcastFrame>>,
    /// Invalid frames, by shard, with how many frames of the shard came
    /// before each.
    invalid: Vec<Vec<(usize, PayloadError)>>,
    exits: Vec<Option<(Option<ExitStatus>, Vec<i32>)>>,
}

impl Collected {
    fn new(h: &dyn Handle) -> Collected {
        let k = h.shard_count();
        Collected {
            frames: vec![Vec::new(); k],
            invalid: vec![Vec::new(); k],
            exits: vec![None; k],
        }
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Frame { shard, frame } => {
                assert!(
                    self.exits[shard].is_none(),
                    "a frame of shard {shard} after its end"
                );
                self.frames[shard].push(frame);
            }
            Item::Invalid { shard, error } => self.invalid[shard].push((self.frames[shard].len(), error)),
            Item::Exited { shard, status, conns } => {
                assert!(self.exits[shard].is_none(), "shard {shard} reported twice");
                self.exits[shard] = Some((status, conns));
            }
            Item::Pending => unreachable!("next_item never returns Pending"),
        }
    }

    /// Reads until `done`.
    fn read_until(&mut self, h: &mut dyn Handle, done: impl Fn(&Collected) -> bool) {
        while !done(self) {
            let item = h.next_item();
            self.take(item);
        }
    }

    /// Reads until every shard's end is reported.
    fn drain(&mut self, h: &mut dyn Handle) {
        self.read_until(h, |c| c.exits.iter().all(Option::is_some));
    }

    fn echoes(&self, shard: usize) -> Vec<SubCommand> {
        self.frames[shard].iter().map(echoed).collect()
    }

    fn tags(&self, shard: usize) -> Vec<String> {
        self.echoes(shard).iter().map(tag_of).collect()
    }

    /// Every shard's exit status, reaped.
    fn statuses(&self, h: &mut dyn Handle) -> Vec<ExitStatus> {
        (0..self.exits.len())
            .map(|s| {
                let reported = self.exits[s].as_ref().expect("the shard's end was read").0;
                h.status(s, reported)
            })
            .collect()
    }
}

/// Ends every command stream and checks that every worker exits 0 after
/// the frames in `c`; no other frame may come.
fn close_and_expect_clean_exits(h: &mut dyn Handle, mut c: Collected) {
    let frames: Vec<usize> = c.frames.iter().map(Vec::len).collect();
    h.close_write()
        .unwrap_or_else(|s| panic!("shard {s} still has commands queued"));
    c.drain(h);
    assert_eq!(
        c.frames.iter().map(Vec::len).collect::<Vec<_>>(),
        frames,
        "frames after the last"
    );
    for (shard, status) in c.statuses(h).into_iter().enumerate() {
        assert!(
            status.success(),
            "shard {shard}: {status:?}; stderr: {:?}",
            h.stderr_all()
        );
    }
}

/// Reads until every shard's end: the read errors of each shard before it
/// (their class), and its end. No frame may come.
fn read_errors_to_the_end(h: &mut dyn Handle) -> (Vec<Vec<&'static str>>, Vec<ExitStatus>) {
    let k = h.shard_count();
    let mut errors = vec![Vec::new(); k];
    let mut exits = vec![None; k];
    while exits.iter().any(Option::is_none) {
        match h.next(PATIENCE) {
            Err(e) => {
                assert!(
                    exits[e.shard].is_none(),
                    "an error of shard {} after its end",
                    e.shard
                );
                match e.error {
                    ReadError::Framing(f) => errors[e.shard].push(f.class()),
                    other => panic!("shard {}: unexpected {other}", e.shard),
                }
            }
            Ok(Item::Exited { shard, status, .. }) => {
                assert!(exits[shard].is_none(), "shard {shard} reported twice");
                exits[shard] = Some(status);
            }
            Ok(other) => panic!("{}: unexpected {other:?}; stderr: {:?}", h.name(), h.stderr_all()),
        }
    }
    let statuses = (0..k).map(|s| h.status(s, exits[s].flatten())).collect();
    (errors, statuses)
}

fn assert_worker_gone(result: Result<(), Refused>, shard: Option<usize>, what: &str) {
    assert_eq!(
        result,
        Err(Refused {
            shard,
            error: SendError::WorkerGone
        }),
        "{what}"
    );
}

// ---- the cases ---------------------------------------------------------------

/// Every named method (and `send`, which passes reserved flag bits
/// through), waiting and not, queues exactly its command on the conn's
/// shard (a Bcast on every shard); reading writes the queues out while it
/// waits; each worker gets its commands byte for byte, in order.
fn named_methods_reach_the_worker_byte_exact_in_order(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options());
    let req = Bytes::from_static(br#"["REQ","s1",{"kinds":[1]}]"#);
    let ev = Bytes::from_static(br#"["EVENT",{"kind":1}]"#);
    let raw = SubCommand::Close {
        conn: 6,
        flags: ReservedFlags::from_bits(0x80),
    };
    let add = |conn, id: &str| SubCommand::Add {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub(id),
        req: req.clone(),
    };
    let remove = |conn, id: &str| SubCommand::Remove {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub(id),
    };
    let close = |conn| SubCommand::Close {
        conn,
        flags: ReservedFlags::EMPTY,
    };
    let auth = |conn, pubkey| SubCommand::Auth {
        conn,
        flags: ReservedFlags::EMPTY,
        pubkey,
    };
    let calls: Vec<(Cmd, SubCommand)> = vec![
        (
            Cmd::Connect(5, true),
            SubCommand::New {
                conn: 5,
                flags: NewFlags::WHITELISTED,
            },
        ),
        (
            Cmd::Connect(6, false),
            SubCommand::New {
                conn: 6,
                flags: NewFlags::EMPTY,
            },
        ),
        (Cmd::Subscribe(5, "s1".into(), req.clone()), add(5, "s1")),
        (Cmd::Unsubscribe(5, "s1".into()), remove(5, "s1")),
        (Cmd::Auth(6, [0xa5; 32]), auth(6, [0xa5; 32])),
        (
            Cmd::Fanout(
                ev.clone(),
                -1,
                BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE,
            ),
            SubCommand::Bcast {
                sender: -1,
                flags: BcastFlags::from_bits(0b011),
                event: ev.clone(),
            },
        ),
        (
            Cmd::Fanout(ev.clone(), 6, BcastFlags::MARMOT_OPEN),
            SubCommand::Bcast {
                sender: 6,
                flags: BcastFlags::from_bits(0b100),
                event: ev.clone(),
            },
        ),
        (Cmd::Disconnect(5), close(5)),
        (Cmd::Subscribe(6, "s2".into(), req.clone()), add(6, "s2")),
        (Cmd::Unsubscribe(6, "s2".into()), remove(6, "s2")),
        (Cmd::Auth(5, [1; 32]), auth(5, [1; 32])),
        (Cmd::Disconnect(6), close(6)),
        (Cmd::Send(raw.clone()), raw.clone()),
        (Cmd::Send(raw.clone()), raw),
    ];
    // Half waiting, half not: both queue the same commands.
    for (i, (cmd, _)) in calls.iter().enumerate() {
        let mode = if i % 2 == 0 { Mode::Wait } else { Mode::Now };
        h.command(cmd, mode)
            .unwrap_or_else(|e| panic!("{cmd:?} {mode:?}: {e:?}"));
    }
    let k = h.shard_count();
    let expected: Vec<Vec<SubCommand>> = (0..k)
        .map(|s| {
            calls
                .iter()
                .map(|(_, want)| want.clone())
                .filter(|want| matches!(want, SubCommand::Bcast { .. }) || h.shard_of(want.conn()) == s)
                .collect()
        })
        .collect();
    if h.is_sharded() {
        assert!(
            expected.iter().all(|e| e.len() < calls.len()),
            "both shards own a conn"
        );
    }
    for s in 0..k {
        assert_eq!(h.link(s).queued_commands(), expected[s].len(), "shard {s}");
        assert!(h.link(s).wants_write(), "shard {s}");
    }

    // Nothing is flushed explicitly: reading writes the queues as it waits.
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| {
        (0..k).all(|s| c.frames[s].len() >= expected[s].len())
    });
    for s in 0..k {
        assert_eq!(c.frames[s].len(), expected[s].len(), "shard {s}");
        for (frame, want) in c.frames[s].iter().zip(&expected[s]) {
            assert_eq!(frame.conn, want.conn().max(0), "shard {s}");
            assert_eq!(
                &frame.data[..],
                &payload_of(want)[..],
                "shard {s}: not byte-exact"
            );
            assert_eq!(&echoed(frame), want, "shard {s}");
        }
        assert!(c.invalid[s].is_empty());
        assert_eq!(h.link(s).sent_commands(), expected[s].len() as u64, "shard {s}");
        assert_eq!(h.link(s).queued_commands(), 0, "shard {s}");
        assert!(!h.link(s).wants_write(), "shard {s}");
    }
    close_and_expect_clean_exits(&mut *h, c);
}

/// Commands that break a rule of the protocol are refused with a typed
/// error, waiting or not, and nothing is queued anywhere; a command exactly
/// at the payload maximum goes, and is the only one the worker gets.
fn invalid_commands_are_refused_and_not_queued(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options().max_payload(1024));
    for mode in MODES {
        let mut class = |cmd: Cmd| match h.command(&cmd, mode) {
            Err(Refused {
                error: SendError::Invalid(e),
                ..
            }) => e.class(),
            other => panic!("{cmd:?} {mode:?}: expected SendError::Invalid, got {other:?}"),
        };
        assert_eq!(class(Cmd::Connect(-1, false)), "invalid_conn");
        assert_eq!(class(Cmd::Disconnect(-7)), "invalid_conn");
        assert_eq!(class(Cmd::Subscribe(1, "s".into(), Bytes::new())), "invalid_data");
        assert_eq!(class(Cmd::Unsubscribe(-1, "s".into())), "invalid_conn");
        assert_eq!(class(Cmd::Auth(i32::MIN, [0; 32])), "invalid_conn");
        assert_eq!(class(Cmd::event("")), "invalid_data");
        assert_eq!(
            class(Cmd::Fanout("x".into(), -2, BcastFlags::EMPTY)),
            "invalid_conn"
        );
        assert_eq!(
            class(Cmd::Send(SubCommand::New {
                conn: -1,
                flags: NewFlags::EMPTY
            })),
            "invalid_conn"
        );
        let refused = h
            .command(&Cmd::Subscribe(4, String::new(), "x".into()), mode)
            .unwrap_err();
        assert_eq!(
            refused.error,
            SendError::Invalid(PayloadError::InvalidSubId {
                problem: SubIdProblem::Missing
            })
        );
        // Named after the conn's shard.
        if h.is_sharded() {
            assert_eq!(refused.shard, Some(h.shard_of(4)));
        }
        assert_eq!(
            h.command(&Cmd::Unsubscribe(1, "x".repeat(65)), mode),
            Err(Refused {
                shard: h.is_sharded().then(|| h.shard_of(1)),
                error: SendError::Invalid(PayloadError::InvalidSubId {
                    problem: SubIdProblem::TooLong { len: 65 }
                })
            })
        );
        // 14 fixed bytes + 1011 = 1025 > 1024: the worker would kill the stream.
        match h.command(&Cmd::event(vec![b'e'; 1011]), mode) {
            Err(Refused {
                error: SendError::TooLarge(e),
                ..
            }) => assert_eq!((e.len, e.max), (1025, 1024)),
            other => panic!("{mode:?}: expected TooLarge, got {other:?}"),
        }
        for s in 0..h.shard_count() {
            assert_eq!(
                (h.link(s).queued_bytes(), h.link(s).queued_commands()),
                (0, 0),
                "{mode:?}"
            );
            assert!(!h.link(s).wants_write());
        }
    }

    // Exactly at the maximum is fine, and it is the only thing the workers get.
    h.command(&Cmd::event(vec![b'e'; 1010]), Mode::Wait).unwrap();
    assert!(h.close_write().is_err(), "closed with a command queued");
    h.flush().unwrap();
    h.close_write().unwrap();
    // Its echo (8 + 1024 bytes) is over the parent's own maximum, so reading
    // it is a fatal frame_too_large: proof that exactly one command went.
    if h.is_sharded() {
        let (errors, _) = read_errors_to_the_end(&mut *h);
        for (shard, errors) in errors.iter().enumerate() {
            assert_eq!(errors, &["frame_too_large"], "shard {shard}");
        }
    } else {
        for _ in 0..2 {
            match h.next(PATIENCE) {
                Err(e) => match e.error {
                    ReadError::Framing(f) => assert_eq!(f.class(), "frame_too_large"),
                    other => panic!("expected frame_too_large, got {other}"),
                },
                Ok(other) => panic!("expected frame_too_large, got {other:?}"),
            }
        }
    }
}

/// Stopped workers fill the fds, then the queues: a non-waiting command is
/// refused with `Backpressure` (naming its limit) and queues nothing; a
/// waiting one waits until the workers read again, then goes. Every
/// accepted command arrives once, in order, on every shard; no refused one.
fn backpressure_never_loses_a_command(kind: Kind, transport: Transport) {
    const LIMIT: usize = 64 * 1024;
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options().max_queued_bytes(LIMIT));
    let pids = h.pids();
    for &pid in &pids {
        stop(pid);
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut n = 0;
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the queues never filled up");
        let tag = format!("cmd-{n}");
        n += 1;
        let before = h.queues();
        match h.command(&event(&tag), Mode::Now) {
            Ok(()) => accepted.push(tag),
            Err(Refused {
                error: SendError::Backpressure(bp),
                shard,
            }) => {
                assert_eq!(h.queues(), before, "refused, but something was queued");
                assert_eq!((bp.needed, bp.limit), (200, LIMIT));
                assert!(bp.queued + bp.needed > LIMIT);
                if h.is_sharded() {
                    let shard = shard.expect("a sharded refusal names its shard");
                    assert_eq!(h.link(shard).queued_bytes(), bp.queued);
                }
                refused.push(tag);
                // The fds may take more: write what they take, until nothing
                // moves.
                let queued = h.queues();
                h.flush_now().unwrap();
                if h.queues() == queued {
                    break;
                }
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(accepted.len() >= LIMIT / 200, "{}", accepted.len());

    // Waiting: the first command waits until the workers read again.
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        for pid in pids {
            signal(pid, Signal::SIGCONT);
        }
    });
    let started = Instant::now();
    let mut first_wait = None;
    for _ in 0..2000 {
        let tag = format!("cmd-{n}");
        n += 1;
        h.command(&event(&tag), Mode::Wait).unwrap();
        accepted.push(tag);
        first_wait.get_or_insert_with(|| started.elapsed());
    }
    resume.join().unwrap();
    let first_wait = first_wait.unwrap();
    assert!(
        first_wait >= Duration::from_millis(250),
        "a waiting command went into a full queue after {first_wait:?}"
    );
    h.flush().unwrap();

    let k = h.shard_count();
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| (0..k).all(|s| c.frames[s].len() >= accepted.len()));
    for s in 0..k {
        // In order, none lost, none duplicated, nothing refused.
        assert_eq!(c.tags(s), accepted, "shard {s}");
    }
    close_and_expect_clean_exits(&mut *h, c);
}

/// The echo worker answers every command: with thousands queued, a worker
/// blocks writing its answers and stops reading. A waiting command (or
/// flush) must keep reading them, or it would wait forever.
fn a_chatty_worker_cannot_deadlock_waiting_commands(kind: Kind, transport: Transport) {
    const TOTAL: usize = 12_000;
    let h = kind.spawn(
        transport,
        SHARDS,
        &none,
        &test_options().max_queued_bytes(64 * 1024),
    );
    let mut h = within(PATIENCE, "waiting commands to a chatty worker", move || {
        let mut h = h;
        for i in 0..TOTAL {
            h.command(&event(&i.to_string()), Mode::Wait).unwrap();
        }
        h.flush().unwrap();
        h
    });
    let k = h.shard_count();
    for s in 0..k {
        assert_eq!(h.link(s).sent_commands(), TOTAL as u64, "shard {s}");
    }
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| (0..k).all(|s| c.frames[s].len() >= TOTAL));
    let want: Vec<String> = (0..TOTAL).map(|i| i.to_string()).collect();
    for s in 0..k {
        assert_eq!(c.tags(s), want, "shard {s}");
    }
}

/// Heartbeats and frames on other channels never come out; a channel-2
/// frame that does not decode is reported (once, before the frames after
/// it) and the stream goes on.
fn heartbeats_and_foreign_channels_are_skipped_and_an_invalid_frame_is_reported(
    kind: Kind,
    transport: Transport,
) {
    let mut h = kind.spawn(
        transport,
        SHARDS,
        &|_| args(&["--noise", "--invalid-first"]),
        &test_options(),
    );
    let k = h.shard_count();
    let conns: Vec<i32> = (3..3 + 3 * k as i32).collect();
    for &conn in &conns {
        h.command(&Cmd::Connect(conn, false), Mode::Wait).unwrap();
    }
    let expected: Vec<Vec<SubCommand>> = (0..k)
        .map(|s| {
            conns
                .iter()
                .filter(|&&c| h.shard_of(c) == s)
                .map(|&conn| SubCommand::New {
                    conn,
                    flags: NewFlags::EMPTY,
                })
                .collect()
        })
        .collect();
    let mut c = Collected::new(&*h);
    // Each echo is preceded by a heartbeat on channel 2, frames on
    // channels 1, 0 and 255, and a heartbeat on channel 9: only the
    // echoes come out, after the one invalid frame.
    c.read_until(&mut *h, |c| {
        (0..k).all(|s| c.frames[s].len() >= expected[s].len())
    });
    for s in 0..k {
        assert_eq!(c.echoes(s), expected[s], "shard {s}");
        assert_eq!(c.invalid[s].len(), 1, "shard {s}: {:?}", c.invalid[s]);
        let (frames_before, error) = &c.invalid[s][0];
        assert_eq!(*frames_before, 0, "shard {s}: the invalid frame came first");
        assert_eq!(error.class(), "truncated");
    }
    close_and_expect_clean_exits(&mut *h, c);
}

/// A worker that aborts after two answers: those two come, then its end,
/// with the signal, and it is reaped while the handle lives. Commands for
/// it are then refused as `WorkerGone` (PROTOCOL.md#parent-worker-death:
/// no command claims success once the death is known).
fn a_crash_is_a_typed_outcome_and_the_worker_is_reaped(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(
        transport,
        SHARDS,
        &|_| args(&["--crash-after", "2"]),
        &test_options(),
    );
    let pids = h.pids();
    for i in 0..5 {
        h.command(&event(&i.to_string()), Mode::Wait).unwrap();
    }
    let mut c = Collected::new(&*h);
    c.drain(&mut *h);
    for (s, status) in c.statuses(&mut *h).into_iter().enumerate() {
        assert_eq!(c.tags(s), ["0", "1"], "shard {s}");
        assert_eq!(
            status.signal(),
            Some(Signal::SIGABRT as i32),
            "shard {s}: {status:?}"
        );
    }
    for pid in pids {
        assert_reaped(pid);
    }

    if h.is_sharded() {
        // Nothing more can come; nothing can go.
        assert_eq!(h.next(Duration::from_millis(50)).unwrap(), Item::Pending);
        for mode in MODES {
            assert_worker_gone(h.command(&event("late"), mode), Some(0), "fanout");
            for conn in 0..2 {
                let shard = Some(h.shard_of(conn));
                assert_worker_gone(h.command(&Cmd::Connect(conn, false), mode), shard, "on_connect");
            }
        }
    } else {
        // The end again, with its status, on every later read.
        match h.next(PATIENCE).unwrap() {
            Item::Exited { status: Some(_), .. } => {}
            other => panic!("expected the end again, with its status: {other:?}"),
        }
        // The death is known: every command is refused, never written
        // (and never SIGPIPE). A write could still succeed: a child that
        // another test thread forked while this worker's pipes were open
        // holds a copy of their read end until it execs (seen in CI).
        for mode in MODES {
            assert_worker_gone(h.command(&event("late"), mode), None, "fanout");
            assert_worker_gone(h.command(&Cmd::Connect(1, false), mode), None, "on_connect");
        }
        assert!(h.flush().is_ok(), "nothing was queued");
    }
}

/// Dropping the handle reaps every worker: a well-behaved one exits at the
/// end of its input, one that ignores it is killed after the grace period.
fn drop_reaps_the_workers(kind: Kind, transport: Transport) {
    for worker_args in [args(&[]), args(&["--ignore-eof"])] {
        let opts = test_options().grace_period(Duration::from_millis(200));
        let mut h = kind.spawn(transport, SHARDS, &|_| worker_args.clone(), &opts);
        let k = h.shard_count();
        for conn in 0..k as i32 {
            h.command(&Cmd::Connect(conn, false), Mode::Now).unwrap();
        }
        // Every worker is up and running.
        let mut c = Collected::new(&*h);
        c.read_until(&mut *h, |c| c.frames.iter().all(|f| !f.is_empty()));
        let pids = h.pids();
        assert_eq!(pids.len(), k);
        for &pid in &pids {
            assert!(!is_reaped(pid), "{worker_args:?}: {pid} is not our running child");
        }
        drop(h);
        for pid in pids {
            assert_reaped(pid);
        }
    }
}

/// PROTOCOL.md#frame-layout: every frame is a 5-byte header, then its payload.
const HEADER: usize = 5;
/// PROTOCOL.md#subcommand-layout: op, flags, conn, sub_id_len and data_len,
/// the 14 bytes of every SubCommand besides its sub_id and its data.
const FIXED: usize = 14;

/// Each named method (and `send`) queues exactly one frame of
/// `5 + 14 + S + D` bytes (S the sub_id's length, D the data's), on its
/// conn's shard only, or for a Bcast on every shard. The expected counts
/// come from the spec's layouts, not from the encoder. The commands then
/// all go out.
fn named_commands_queue_the_frame_bytes_the_spec_lays_out(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options());
    let k = h.shard_count();
    let req = r#"["REQ","s1",{"kinds":[1]}]"#;
    let ev = r#"["EVENT",{"kind":1}]"#;
    assert_eq!((req.len(), ev.len()), (26, 20));
    let id64 = "x".repeat(64);
    // The call, its conn (None: a Bcast, for every shard), S and D.
    let calls: Vec<(Cmd, Option<i32>, usize, usize)> = vec![
        (Cmd::Connect(3, true), Some(3), 0, 0),
        (Cmd::Connect(4, false), Some(4), 0, 0),
        (Cmd::Subscribe(3, "s1".into(), req.into()), Some(3), 2, 26),
        (Cmd::Unsubscribe(3, "s1".into()), Some(3), 2, 0),
        (Cmd::Subscribe(4, id64.clone(), req.into()), Some(4), 64, 26),
        (Cmd::Unsubscribe(4, id64), Some(4), 64, 0),
        (Cmd::Auth(4, [0xab; 32]), Some(4), 0, 32),
        (Cmd::Fanout(ev.into(), -1, BcastFlags::NEED_FILTER), None, 0, 20),
        (Cmd::Fanout("[1]".into(), 3, BcastFlags::EMPTY), None, 0, 3),
        (Cmd::Disconnect(3), Some(3), 0, 0),
        (
            Cmd::Send(SubCommand::Close {
                conn: 4,
                flags: ReservedFlags::EMPTY,
            }),
            Some(4),
            0,
            0,
        ),
    ];
    // (bytes, commands) queued, by shard.
    let mut want = vec![(0, 0); k];
    for (cmd, conn, sub_id_len, data_len) in &calls {
        h.command(cmd, Mode::Now)
            .unwrap_or_else(|e| panic!("{cmd:?}: {e:?}"));
        let frame = HEADER + FIXED + sub_id_len + data_len;
        for (s, queued) in want.iter_mut().enumerate() {
            if conn.is_none_or(|conn| h.shard_of(conn) == s) {
                queued.0 += frame;
                queued.1 += 1;
            }
        }
        assert_eq!(h.queues(), want, "after {cmd:?}");
    }
    if h.is_sharded() {
        assert!(
            want.iter().all(|&(_, n)| n < calls.len()),
            "both shards own a conn"
        );
    }
    h.flush().unwrap();
    for s in 0..k {
        assert_eq!(h.link(s).sent_commands(), want[s].1 as u64, "shard {s}");
        assert_eq!(h.queues()[s], (0, 0), "shard {s}");
    }
}

/// `close_write` is refused while a command is queued, naming the shard
/// that has it, and closes nothing; once the queues are written it takes
/// every write fd away, and every command after it, waiting or not, is
/// refused with `WriteClosed` and queues nothing. The workers read their
/// commands, then the end of their input, and exit 0.
fn close_write_waits_for_empty_queues_then_refuses_every_command(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options());
    let k = h.shard_count();
    let conn = k as i32 - 1; // on the last shard
    h.command(&Cmd::Connect(conn, false), Mode::Now).unwrap();
    assert_eq!(h.close_write(), Err(h.shard_of(conn)));
    for s in 0..k {
        assert!(
            h.link(s).writer().fd().is_some(),
            "shard {s}: closed by a refused close"
        );
    }
    h.flush().unwrap();
    h.close_write().unwrap();
    for s in 0..k {
        assert!(h.link(s).writer().fd().is_none(), "shard {s}: still open");
    }

    let calls = [
        Cmd::Connect(0, false),
        Cmd::Disconnect(1),
        Cmd::Subscribe(0, "s".into(), "[1]".into()),
        Cmd::Unsubscribe(1, "s".into()),
        Cmd::Auth(0, [1; 32]),
        event("late"),
        Cmd::Send(SubCommand::New {
            conn: 1,
            flags: NewFlags::EMPTY,
        }),
    ];
    for mode in MODES {
        for cmd in &calls {
            let refused = h.command(cmd, mode).expect_err("a command after close_write");
            assert_eq!(refused.error, SendError::WriteClosed, "{cmd:?} {mode:?}");
            let conn = match cmd {
                Cmd::Connect(conn, _)
                | Cmd::Disconnect(conn)
                | Cmd::Subscribe(conn, ..)
                | Cmd::Unsubscribe(conn, _)
                | Cmd::Auth(conn, _) => Some(*conn),
                Cmd::Send(cmd) => Some(cmd.conn()),
                Cmd::Fanout(..) => None,
            };
            if h.is_sharded() {
                // A conn's command names the conn's shard; a Bcast, a shard.
                let shard = refused.shard.expect("a sharded refusal names its shard");
                if let Some(conn) = conn {
                    assert_eq!(shard, h.shard_of(conn), "{cmd:?} {mode:?}");
                }
            } else {
                assert_eq!(refused.shard, None);
            }
        }
    }
    assert!(h.queues().iter().all(|&q| q == (0, 0)), "{:?}", h.queues());

    let mut c = Collected::new(&*h);
    c.drain(&mut *h);
    let answers: Vec<usize> = c.frames.iter().map(Vec::len).collect();
    let mut want = vec![0; k];
    want[h.shard_of(conn)] = 1;
    assert_eq!(answers, want);
    for (s, status) in c.statuses(&mut *h).into_iter().enumerate() {
        assert!(
            status.success(),
            "shard {s}: {status:?}; stderr: {:?}",
            h.stderr_all()
        );
    }
}

/// A running worker has no exit status. Killed (`SIGKILL`), its end is
/// reported after the frames it wrote, with signal 9 (and, by a sharded
/// handle, the conns its shard owned), the same status is then returned
/// without waiting, and the worker is reaped.
fn a_running_worker_has_no_status_and_a_killed_one_reports_signal_9(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, SHARDS, &none, &test_options());
    let k = h.shard_count();
    for conn in 0..k as i32 {
        h.command(&Cmd::Connect(conn, false), Mode::Now).unwrap();
    }
    // Every worker is up and running: it has answered.
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| c.frames.iter().all(|f| !f.is_empty()));
    let pids = h.pids();
    for s in 0..k {
        assert_eq!(h.exit_status(s), None, "shard {s} is running");
    }
    for s in 0..k {
        h.kill(s);
    }
    c.drain(&mut *h);
    for (s, status) in c.statuses(&mut *h).into_iter().enumerate() {
        assert_eq!(status.signal(), Some(9), "shard {s}: {status:?}");
        assert_eq!(h.exit_status(s), Some(status), "shard {s}");
        if h.is_sharded() {
            // Conn s is shard s's (`conn % K`).
            let (_, conns) = c.exits[s].as_ref().unwrap();
            assert_eq!(conns, &[s as i32], "shard {s}");
        }
    }
    for pid in pids {
        assert_reaped(pid);
    }
}

// ---- the regressions ------------------------------------------------------------

/// Junk the flooding worker writes after breaking the framing: more than
/// any pipe or socket buffer.
const FLOOD: u64 = 4 << 20;

/// A worker breaks the framing (a header over the payload maximum), then
/// goes on writing megabytes, reading the next command only once its junk
/// is written. With a small queue, thousands of waiting commands (the
/// tokio handles' `async` forms, the blocking handles' `flush_blocking`)
/// all go through within the patience (a parent that stopped reading
/// after the error would wait forever), and reading reports the error:
/// sticky on a single handle, which then discards the rest; once per shard
/// on a sharded handle, whose shard is then killed and reported ended.
fn regression_a_worker_that_floods_after_breaking_the_framing_cannot_stall_waiting_commands(
    kind: Kind,
    transport: Transport,
) {
    const TOTAL: usize = 10_000;
    let flood = FLOOD.to_string();
    let h = kind.spawn(
        transport,
        SHARDS,
        &|_| args(&["--garbage-then-flood", flood.as_str()]),
        &test_options().max_queued_bytes(16 * 1024),
    );
    let mut h = within(PATIENCE, "waiting commands to a flooding worker", move || {
        let mut h = h;
        for i in 0..TOTAL {
            h.command(&event(&i.to_string()), Mode::Wait).unwrap();
        }
        h.flush().unwrap();
        h
    });
    let k = h.shard_count();
    for s in 0..k {
        assert_eq!(h.link(s).sent_commands(), TOTAL as u64, "shard {s}");
        assert_eq!(h.link(s).queued_commands(), 0, "shard {s}");
    }

    if h.is_sharded() {
        let (errors, statuses) = read_errors_to_the_end(&mut *h);
        for s in 0..k {
            assert_eq!(errors[s], ["frame_too_large"], "shard {s}");
            // Killed by the handle: its output could not be trusted.
            assert_eq!(statuses[s].signal(), Some(9), "shard {s}: {:?}", statuses[s]);
        }
        return;
    }
    for _ in 0..3 {
        match h.next(PATIENCE) {
            Err(e) => match e.error {
                ReadError::Framing(f) => assert_eq!(f.class(), "frame_too_large"),
                other => panic!("expected frame_too_large, got {other}"),
            },
            Ok(other) => panic!("expected the framing error (sticky), got {other:?}"),
        }
    }
    // The worker read every command: at the end of its input it says so.
    h.close_write().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        // Reading goes on discarding whatever the worker still writes.
        assert!(h.read_now().is_err(), "the framing error is sticky");
        if let Some(status) = h.exit_status(0) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never exited: {:?}",
            h.stderr_all()
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(status.success(), "{status:?}: {:?}", h.stderr_all());
    let tail = h.stderr_tail(0).unwrap();
    assert!(tail.wait_closed(PATIENCE));
    assert_eq!(
        tail.lines().last().cloned(),
        Some(format!(
            "echo_worker: end of input after {TOTAL} commands and {FLOOD} bytes of junk"
        ))
    );
}

/// A shard that had nothing (so the blocking handle's fair read stopped
/// asking it for a while) gets its answers read into memory by a flush
/// that waited; no fd announces them. Reading must return every one of
/// them at once: never `Pending` while a frame is in memory (the blocking
/// handle's caller would sleep in `poll`, 1–3 s seen).
///
/// Shard 1 answers three commands; two of its frames are read (the third
/// stays buffered), and shard 0, asked on the way, has nothing. Then 200
/// commands for a conn of shard 0, which the worker answers, and 50 000
/// `New`s, which it reads without answering (`--quiet-new`): the flush of
/// those waits for the worker, reading its 200 answers ahead meanwhile;
/// afterwards no worker writes anything more.
/// Silent `New`s after the answered commands: far more bytes than a pipe or
/// a socket pair holds, so the flush must wait for the worker (after it has
/// written its answers) and reads them ahead.
const SILENT_NEWS: i32 = 50_000;

fn regression_no_pending_while_frames_read_ahead_are_in_memory(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, 2, &|_| args(&["--quiet-new"]), &test_options());
    assert_eq!((h.shard_of(0), h.shard_of(1)), (0, 1));
    let auths: Vec<SubCommand> = [1, 3, 5]
        .map(|conn| SubCommand::Auth {
            conn,
            flags: ReservedFlags::EMPTY,
            pubkey: [conn as u8; 32],
        })
        .into();
    for cmd in &auths {
        h.command(&Cmd::Send(cmd.clone()), Mode::Now).unwrap();
    }
    h.flush().unwrap();
    // All three answers are written before the first read, so that read
    // takes them together.
    let answers_len: usize = auths.iter().map(|a| 13 + payload_of(a).len()).sum();
    let deadline = Instant::now() + PATIENCE;
    while unread_bytes(h.link(1).reader().fd()) < answers_len as u64 {
        assert!(Instant::now() < deadline, "shard 1 did not answer");
        std::thread::sleep(Duration::from_millis(1));
    }
    for want in &auths[..2] {
        match h.next_item() {
            Item::Frame { shard: 1, frame } => assert_eq!(&echoed(&frame), want),
            other => panic!("expected a frame of shard 1, got {other:?}"),
        }
    }

    let req = |i: usize| Bytes::from(format!(r#"["REQ","s{i}",{{}}]"#));
    let subscribes: Vec<SubCommand> = (0..200)
        .map(|i| SubCommand::Add {
            conn: 0,
            flags: ReservedFlags::EMPTY,
            sub_id: sub(&format!("s{i}")),
            req: req(i),
        })
        .collect();
    for cmd in &subscribes {
        h.command(&Cmd::Send(cmd.clone()), Mode::Now).unwrap();
    }
    for i in 0..SILENT_NEWS {
        h.command(&Cmd::Connect(2 * i + 2, false), Mode::Now).unwrap();
    }
    h.flush().unwrap();
    if kind == Kind::BlockingSharded {
        // What the defect needs: the flush waited, and read shard 0's
        // answers into memory while it did (the tokio handle reads every
        // shard at every poll, so it has no such precondition).
        assert!(h.link(0).has_buffered(), "the flush read shard 0's answers ahead");
    }

    let mut got = vec![Vec::new(); 2];
    let remaining = 1 + subscribes.len();
    for i in 0..remaining {
        match h.read_now().unwrap() {
            Item::Frame { shard, frame } => got[shard].push(echoed(&frame)),
            Item::Pending => panic!(
                "Pending after {i} of the {remaining} frames in memory (shard 0 buffered: {}, shard 1 buffered: {})",
                h.link(0).has_buffered(),
                h.link(1).has_buffered()
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got[1], auths[2..]);
    assert_eq!(got[0], subscribes);
    assert!(!h.link(0).has_buffered() && !h.link(1).has_buffered());
    assert_eq!(h.read_now().unwrap(), Item::Pending);
    let c = Collected::new(&*h);
    close_and_expect_clean_exits(&mut *h, c);
}

/// Every shard killed and its end read (all retired): a Bcast can reach no
/// worker, so `fanout` (waiting or not, or `send` of a Bcast) is refused
/// with `WorkerGone`, never `Ok(())`, and nothing is queued.
fn regression_fanout_with_every_shard_retired_is_worker_gone(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, 2, &none, &test_options());
    let k = h.shard_count();
    for conn in 0..4 {
        h.command(&Cmd::Connect(conn, false), Mode::Wait).unwrap();
    }
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| c.frames.iter().map(Vec::len).sum::<usize>() == 4);
    for s in 0..k {
        h.kill(s);
    }
    c.drain(&mut *h);
    for (s, status) in c.statuses(&mut *h).into_iter().enumerate() {
        assert_eq!(status.signal(), Some(9), "shard {s}");
    }
    for mode in MODES {
        assert_worker_gone(h.command(&event("nobody"), mode), Some(0), "fanout");
        let bcast = SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::EMPTY,
            event: tagged_event("nobody", EVENT_LEN).into(),
        };
        assert_worker_gone(h.command(&Cmd::Send(bcast), mode), Some(0), "send of a Bcast");
    }
    assert!(h.queues().iter().all(|&q| q == (0, 0)), "{:?}", h.queues());
}

/// Every shard killed and found dead by a flush (all down, their ends not
/// read yet): `fanout` is refused with `WorkerGone`, waiting or not, and
/// still once their ends are read.
fn regression_fanout_with_every_shard_found_dead_by_a_flush_is_worker_gone(kind: Kind, transport: Transport) {
    let mut h = kind.spawn(transport, 2, &none, &test_options());
    let k = h.shard_count();
    for conn in 0..4 {
        h.command(&Cmd::Connect(conn, false), Mode::Wait).unwrap();
    }
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| c.frames.iter().map(Vec::len).sum::<usize>() == 4);
    for s in 0..k {
        h.kill(s);
        h.status(s, None);
    }
    // Bcasts are taken while the handle does not know; each flush writes
    // to the dead workers, and the first write to each finds it gone.
    let mut refused = None;
    for _ in 0..1000 {
        match h.command(&event("late"), Mode::Now) {
            Ok(()) => {
                let _ = h.flush_now();
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(Refused {
            shard: Some(0),
            error: SendError::WorkerGone
        }),
        "a Bcast for no live shard was taken"
    );
    for mode in MODES {
        assert_worker_gone(
            h.command(&event("nobody"), mode),
            Some(0),
            "fanout, every shard down",
        );
    }
    c.drain(&mut *h);
    for mode in MODES {
        assert_worker_gone(
            h.command(&event("nobody"), mode),
            Some(0),
            "fanout, every shard retired",
        );
    }
}

/// K = 3 workers that ignore the end of their input: dropping the handle
/// closes every shard's fds first, so the workers share one grace period
/// (not one each, one after the other), then kills and reaps them all.
/// The blocking handle does it in its drop; the tokio handle hands each
/// worker to a background thread, so its drop returns at once.
fn regression_dropping_hung_shards_takes_one_grace_period(kind: Kind, transport: Transport) {
    const K: usize = 3;
    let grace = Duration::from_secs(1);
    let opts = test_options().grace_period(grace);
    let mut h = kind.spawn(transport, K, &|_| args(&["--ignore-eof"]), &opts);
    for conn in 0..K as i32 {
        h.command(&Cmd::Connect(conn, false), Mode::Now).unwrap();
    }
    // Every worker is up and running.
    let mut c = Collected::new(&*h);
    c.read_until(&mut *h, |c| c.frames.iter().all(|f| !f.is_empty()));
    let pids = h.pids();
    assert_eq!(pids.len(), K);

    let started = Instant::now();
    drop(h);
    let took = started.elapsed();
    if matches!(kind, Kind::BlockingSharded) {
        assert!(took >= grace, "drop returned before the grace period: {took:?}");
        assert!(took < 2 * grace, "drop took {took:?}: a grace period per shard?");
        for pid in pids {
            assert!(is_reaped(pid), "worker {pid} left behind");
        }
    } else {
        assert!(took < grace / 2, "drop blocked for {took:?}");
        for pid in pids {
            assert_reaped(pid);
        }
        let all_reaped = started.elapsed();
        assert!(
            all_reaped < 2 * grace,
            "the workers were reaped after {all_reaped:?}: a grace period per shard?"
        );
    }
}
