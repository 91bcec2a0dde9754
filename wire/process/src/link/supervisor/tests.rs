//! The supervision policy without processes: the commands a handle would
//! hand to its link, written or not, and the frames a worker would answer.

use std::time::{Duration, Instant};

use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};

use super::*;

fn new(conn: i32) -> SubCommand {
    SubCommand::New {
        conn,
        flags: NewFlags::EMPTY,
    }
}

fn add(conn: i32, s: &str) -> SubCommand {
    SubCommand::Add {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: SubId::try_from(s).unwrap(),
        req: format!(r#"["REQ","{s}",{{}}]"#).into(),
    }
}

fn bcast(n: u8) -> SubCommand {
    SubCommand::Bcast {
        sender: -1,
        flags: BcastFlags::EMPTY,
        event: vec![b'{', n, b'}'].into(),
    }
}

fn closed(conn: i32, s: &str) -> BroadcastFrame {
    BroadcastFrame {
        conn,
        data: format!(r#"["CLOSED","{s}","invalid: x"]"#).into(),
    }
}

/// A supervisor whose probe set-up has been written, and the count of
/// commands its link has written.
fn running(cfg: Supervision, t: Instant) -> (Supervisor, u64) {
    let mut sup = Supervisor::new(cfg, t);
    let mut n = 0;
    while sup.next_backlog(|_| true) {
        n += 1;
    }
    sup.written(n, t);
    (sup, n)
}

/// Queues `cmds` in the link and writes them all.
fn write(sup: &mut Supervisor, sent: &mut u64, cmds: &[SubCommand], t: Instant) {
    for c in cmds {
        assert!(sup.direct());
        sup.queued(c);
    }
    *sent += cmds.len() as u64;
    sup.written(*sent, t);
}

/// Sends a probe, writes it, and answers it on the probe conn.
fn probe_round(sup: &mut Supervisor, sent: &mut u64, t: Instant) {
    let p = sup.want_probe(t).expect("a probe is due");
    sup.probe_queued(&p, t);
    *sent += 1;
    sup.written(*sent, t);
    let SubCommand::Bcast { event, .. } = &p else {
        unreachable!()
    };
    let object = &event[b"[\"EVENT\",".len()..event.len() - 1];
    let mut data = br#"["EVENT","broadcast-process-probe","#.to_vec();
    data.extend_from_slice(object);
    data.push(b']');
    assert!(!sup.on_frame(
        &BroadcastFrame {
            conn: i32::MAX,
            data: data.into()
        },
        t
    ));
    assert!(sup.want_probe(t).is_none());
}

#[test]
fn lost_bcasts_are_the_ones_written_after_the_last_answered_probe() {
    let t = Instant::now();
    let (mut sup, mut sent) = running(Supervision::new(), t);
    write(&mut sup, &mut sent, &[new(1), bcast(1), bcast(2)], t);
    probe_round(&mut sup, &mut sent, t);
    write(&mut sup, &mut sent, &[bcast(3), bcast(4), bcast(5)], t);
    // Queued, never written: carried over, not lost.
    sup.queued(&bcast(6));
    sup.queued(&add(1, "late"));
    sup.died(RestartCause::WriteGone, t);
    let r = sup.respawned(None, t + Duration::from_secs(1));
    assert_eq!(r.lost_bcasts, 3);
    assert_eq!(r.carried_commands, 2);
    assert_eq!(
        r.replayed,
        Replayed {
            conns: 1,
            auths: 0,
            subs: 0
        }
    );
    assert_eq!(r.cause, RestartCause::WriteGone);
    let mut order = Vec::new();
    while sup.next_backlog(|c| {
        order.push(c.clone());
        true
    }) {}
    // Probe set-up, replay, then the carried commands in their order.
    assert_eq!(order.len(), 2 + 1 + 2);
    assert_eq!(order[0].conn(), i32::MAX);
    assert_eq!(order[2], new(1));
    assert_eq!(order[3..], [bcast(6), add(1, "late")]);
    // The carried Add reaches the mirror once written.
    sup.written(5, t);
    assert!(sup.mirror().has_sub(1, "late"));
}

#[test]
fn a_closed_for_a_replayed_add_reaches_the_relay_once_and_leaves_the_mirror() {
    let t = Instant::now();
    let (mut sup, mut sent) = running(Supervision::new(), t);
    write(&mut sup, &mut sent, &[new(1), add(1, "a"), add(1, "b")], t);
    // The relay's Add of "b" refused: passed on, and dropped from the mirror.
    assert!(sup.on_frame(&closed(1, "b"), t));
    assert!(!sup.mirror().has_sub(1, "b"));
    sup.died(RestartCause::Unresponsive, t);
    let r = sup.respawned(None, t);
    assert_eq!(r.replayed.subs, 1);
    let mut n = 0;
    while sup.next_backlog(|_| true) {
        n += 1;
    }
    sup.written(n, t);
    // The new worker refuses the replayed "a": the client never had an
    // answer to that Add (a refusal read before would have taken "a" out
    // of the mirror, as for "b"), so this CLOSED is its first: passed on,
    // and "a" leaves the mirror, so a later restart does not replay it.
    assert!(sup.on_frame(&closed(1, "a"), t));
    assert!(!sup.mirror().has_sub(1, "a"));
    sup.died(RestartCause::Unresponsive, t);
    assert_eq!(sup.respawned(None, t).replayed.subs, 0);
    // A CLOSED for an Add of ours that is not pending: passed on.
    assert!(sup.on_frame(&closed(1, "zzz"), t));
}

#[test]
fn a_closed_for_an_older_add_keeps_the_newer_subscription() {
    let t = Instant::now();
    let (mut sup, mut sent) = running(Supervision::new(), t);
    // Add "a" (refused by the worker), Remove, Add "a" again (accepted):
    // the CLOSED of the first arrives after the second was written.
    let remove = SubCommand::Remove {
        conn: 1,
        flags: ReservedFlags::EMPTY,
        sub_id: SubId::try_from("a").unwrap(),
    };
    write(
        &mut sup,
        &mut sent,
        &[new(1), add(1, "a"), remove, add(1, "a")],
        t,
    );
    assert!(sup.on_frame(&closed(1, "a"), t));
    assert!(sup.mirror().has_sub(1, "a"));
    // Once a probe settles the second Add, a stray CLOSED changes nothing.
    probe_round(&mut sup, &mut sent, t);
    assert!(sup.on_frame(&closed(1, "a"), t));
    assert!(sup.mirror().has_sub(1, "a"));
}

#[test]
fn probe_frames_to_relay_conns_are_consumed() {
    let t = Instant::now();
    let (mut sup, mut sent) = running(Supervision::new(), t);
    write(&mut sup, &mut sent, &[new(1)], t);
    let p = sup.want_probe(t).unwrap();
    let SubCommand::Bcast { event, flags, .. } = &p else {
        unreachable!()
    };
    assert!(flags.need_filter());
    let object = &event[b"[\"EVENT\",".len()..event.len() - 1];
    let mut data = br#"["EVENT","firehose","#.to_vec();
    data.extend_from_slice(object);
    data.push(b']');
    assert!(!sup.on_frame(
        &BroadcastFrame {
            conn: 1,
            data: data.into()
        },
        t
    ));
}

// The reference worker is a dev-dependency inside the repository only
// (build.rs sets `reference_worker` there).
#[cfg(reference_worker)]
#[test]
fn the_probe_is_a_valid_event_for_the_reference_worker() {
    let t = Instant::now();
    let (mut sup, mut sent) = running(Supervision::new(), t);
    let mut worker = broadcast_worker::Worker::new();
    let mut out = Vec::new();
    for c in sup.probe_setup() {
        worker.handle(&c, &mut out);
    }
    worker.handle(&new(1), &mut out);
    worker.handle(&add(1, "all"), &mut out); // {}: matches every event
    write(&mut sup, &mut sent, &[new(1), add(1, "all")], t);
    let p = sup.want_probe(t).unwrap();
    sup.probe_queued(&p, t);
    sent += 1;
    sup.written(sent, t);
    worker.handle(&p, &mut out);
    // Delivered to the probe conn only (conn 1 is not whitelisted), and
    // consumed there.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].conn, i32::MAX);
    assert!(!sup.on_frame(&out[0], t));
    assert!(sup.want_probe(t).is_none());
    assert!(!sup.unresponsive(t + Duration::from_secs(60)));
}

#[test]
fn backoff_doubles_then_supervision_gives_up() {
    let t = Instant::now();
    let cfg = Supervision::new()
        .backoff(Duration::from_millis(10), Duration::from_millis(35))
        .max_restarts_in(3, Duration::from_secs(1));
    let mut sup = Supervisor::new(cfg, t);
    let mut delays = Vec::new();
    let mut now = t;
    for _ in 0..3 {
        sup.died(RestartCause::Exited(None), now);
        let Phase::Backoff(at) = sup.phase() else { panic!() };
        delays.push(at - now);
        assert!(!sup.respawn_due(now));
        now = at;
        assert!(sup.respawn_due(now));
        sup.respawned(None, now);
    }
    assert_eq!(delays, [10, 20, 35].map(Duration::from_millis));
    sup.died(RestartCause::Exited(None), now);
    assert_eq!(sup.phase(), Phase::GaveUp);
    assert_eq!(sup.admit(&new(1)), Err(SendError::SupervisionGaveUp));
    assert_eq!(sup.next_deadline(now), None);
}

#[test]
fn restarts_outside_the_window_do_not_count() {
    let t = Instant::now();
    let cfg = Supervision::new().max_restarts_in(1, Duration::from_secs(1));
    let mut sup = Supervisor::new(cfg, t);
    for i in 0..5 {
        let now = t + Duration::from_secs(2 * i);
        sup.died(RestartCause::Exited(None), now);
        assert!(matches!(sup.phase(), Phase::Backoff(_)));
        sup.respawned(None, now);
    }
}

#[test]
fn an_unanswered_probe_is_unresponsive_after_the_deadline() {
    let t = Instant::now();
    let cfg = Supervision::new().liveness(Some(Duration::from_secs(2)));
    let (mut sup, _) = running(cfg, t);
    assert!(sup.want_probe(t).is_none());
    let idle = t + Duration::from_secs(2);
    assert_eq!(sup.next_deadline(t), Some(idle));
    let p = sup.want_probe(idle).expect("an idle probe");
    sup.probe_queued(&p, idle);
    assert!(!sup.unresponsive(idle + Duration::from_secs(1)));
    assert!(sup.unresponsive(idle + Duration::from_secs(2)));
    let (sup, _) = running(Supervision::new().liveness(None), t);
    assert!(sup.want_probe(t + Duration::from_secs(3600)).is_none());
    assert_eq!(sup.next_deadline(t), None);
}

#[test]
fn the_probe_conn_is_reserved_and_outages_queue_in_the_backlog() {
    let t = Instant::now();
    let (mut sup, _) = running(Supervision::new().probe_conn(77), t);
    assert_eq!(sup.admit(&new(77)), Err(SendError::ReservedConn { conn: 77 }));
    sup.died(RestartCause::Exited(None), t);
    assert!(!sup.direct());
    sup.push_backlog(&new(1), 40, 1024).unwrap();
    sup.push_backlog(&new(2), 40, 1024).unwrap();
    assert!(matches!(
        sup.push_backlog(&new(3), 40, 1024),
        Err(SendError::Backpressure(_))
    ));
    // Nothing reaches a link while no worker runs.
    assert!(!sup.next_backlog(|_| panic!("no worker")));
    let r = sup.respawned(None, t);
    assert_eq!(r.carried_commands, 2);
}

#[test]
fn after_close_write_no_probe_no_deadline_and_no_restart() {
    let t = Instant::now();
    let cfg = Supervision::new().liveness(Some(Duration::from_secs(1)));
    let (mut sup, _) = running(cfg, t);
    let late = t + Duration::from_secs(5);
    let p = sup.want_probe(late).expect("an idle probe");
    sup.probe_queued(&p, late);
    sup.close_write();
    assert!(sup.is_write_closed());
    // The outstanding probe is forgotten: a worker finishing its input is
    // not unresponsive.
    assert!(!sup.unresponsive(late + Duration::from_secs(60)));
    assert!(sup.want_probe(late + Duration::from_secs(60)).is_none());
    assert_eq!(sup.next_deadline(late), None);
    assert_eq!(sup.admit(&new(1)), Err(SendError::WriteClosed));
    // Its end is expected: no backoff, no restart.
    sup.died(RestartCause::Exited(None), late);
    assert_eq!(sup.phase(), Phase::Running);
    assert!(!sup.respawn_due(late + Duration::from_secs(60)));
    assert_eq!(sup.restarts(), 0);

    // Closed while a backoff runs: the replacement is never spawned.
    let (mut sup, _) = running(Supervision::new(), t);
    sup.died(RestartCause::Exited(None), t);
    let Phase::Backoff(at) = sup.phase() else {
        panic!("a backoff")
    };
    sup.close_write();
    assert!(!sup.respawn_due(at + Duration::from_secs(1)));
    assert_eq!(sup.next_deadline(at), None);
}
