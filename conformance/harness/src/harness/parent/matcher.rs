//! Matching the commands a parent wrote ([`Entry`]s of the engine's log)
//! with the commands its accepted actions must cause ([`ExpectedCmd`]s),
//! at every check of a case. It runs over the whole log each time (cases
//! are short), so it is a pure function of the log, the expectations and
//! the client ↔ conn bindings found so far.
//!
//! **Binding.** The parent picks each client's conn; the harness learns it
//! from the New commands (docs/CONFORMANCE.md, "The adapter contract"). A
//! parent may also send commands of its own, such as the New, Add and Bcast
//! of a probe barrier (PROTOCOL.md#parent-lifecycle), on conns no client
//! has. So a client is bound to the New that is followed by the client's
//! own next command (its Add, Close...), and otherwise to the first New
//! that no later command names; any other New is the parent's own.
//!
//! **Matching.** On each worker, in arrival order, a command is matched
//! with the first expected command of the same op and client, in the
//! order the actions were sent: bytes must be equal, order kept
//! (PROTOCOL.md#parent-flow-control), and nothing may be missing or extra.
//! A Bcast may reach several workers (a sharded parent), each in order; a
//! connection's commands go to the worker that got its New.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use broadcast_wire::{FrameDecoder, Message, Op, SubCommand};

use super::case::{CmdTemplate, Piece};
use super::engine::Entry;
use crate::harness::runner::describe_command;

/// One command an accepted action must cause.
#[derive(Debug, Clone)]
pub struct ExpectedCmd {
    /// The action's `seq`.
    pub seq: u64,
    /// The action, for messages (`subscribe a`).
    pub what: String,
    /// Its template.
    pub template: CmdTemplate,
    /// The action's data (`req` or `event` bytes).
    pub data: Arc<Vec<u8>>,
    /// It may be missing: its action came after the harness ended the
    /// worker (the parent may accept it before it notices, and then
    /// cannot write it).
    pub optional: bool,
}

/// Where a client's conn lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The conn.
    pub conn: i32,
    /// The worker that got its New.
    pub worker: usize,
    /// The log index of that New.
    pub entry: usize,
}

/// What a match found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Expected commands that did not come (indexes into the expected list).
    pub missing: Vec<usize>,
    /// Broken rules, one line each.
    pub problems: Vec<String>,
    /// The parent's own commands, for the trace.
    pub private: Vec<usize>,
}

/// Whether `frame` is `pieces` with the client conns of `conn_of` and the
/// data `data`, compared in place.
fn template_matches(
    pieces: &[Piece],
    conn_of: &dyn Fn(&str) -> Option<i32>,
    data: &[u8],
    frame: &[u8],
) -> bool {
    let mut rest = frame;
    for p in pieces {
        let ok = match p {
            Piece::Bytes(b) => rest.strip_prefix(b.as_slice()).map(|r| rest = r),
            Piece::Conn(c) => match conn_of(c) {
                Some(conn) => rest.strip_prefix(&conn.to_le_bytes()[..]).map(|r| rest = r),
                None => None,
            },
            Piece::Data => rest.strip_prefix(data).map(|r| rest = r),
        };
        if ok.is_none() {
            return false;
        }
    }
    rest.is_empty()
}

/// A command's conn as the rules see it: the sender for a Bcast.
fn named_conn(cmd: &SubCommand) -> i32 {
    cmd.conn()
}

/// Where a command's conn is looked up: the worker it came on, except a
/// Bcast's sender, which may be another worker's connection.
fn scope_of(cmd: &SubCommand, worker: usize) -> Option<usize> {
    (!matches!(cmd, SubCommand::Bcast { .. })).then_some(worker)
}

/// The expected command, for humans: decoded with the bound conns (`?`
/// conn 0 when unbound).
pub fn describe_expected(e: &ExpectedCmd, bindings: &HashMap<String, Binding>) -> String {
    let conn_of = |c: &str| Some(bindings.get(c).map_or(0, |b| b.conn));
    let unbound: Vec<&str> = e
        .template
        .pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Conn(c) if !bindings.contains_key(c) => Some(c.as_str()),
            _ => None,
        })
        .collect();
    let text = match e.template.render(&conn_of, &e.data) {
        Some(bytes) => describe_frame(&bytes),
        None => "?".to_string(),
    };
    let note = if unbound.is_empty() {
        String::new()
    } else {
        format!(" (conn of {} not known: shown as 0)", unbound.join(", "))
    };
    format!("seq {} {}: {text}{note}", e.seq, e.what)
}

/// A command frame, for humans.
pub fn describe_frame(frame: &[u8]) -> String {
    let mut dec = FrameDecoder::new();
    dec.feed(frame);
    match dec.decode() {
        Ok(Some(f)) if f.chan == SubCommand::CHANNEL => match SubCommand::decode(f.payload) {
            Ok(cmd) => describe_command(&cmd),
            Err(e) => format!("undecodable ({}): hex:{}", e.class(), short_hex(frame)),
        },
        _ => format!("hex:{}", short_hex(frame)),
    }
}

fn short_hex(b: &[u8]) -> String {
    if b.len() > 96 {
        format!("{}… ({} bytes)", hex::encode(&b[..96]), b.len())
    } else {
        hex::encode(b)
    }
}

/// The client bound to conn `conn` on `worker` at log index `at`: the one
/// whose New for it came last before `at`. `worker` `None`: on any worker
/// (a Bcast's sender, whose New may have gone to another worker of a
/// sharded parent).
fn owner_at(
    bindings: &HashMap<String, Binding>,
    worker: Option<usize>,
    conn: i32,
    at: usize,
) -> Option<&str> {
    bindings
        .iter()
        .filter(|(_, b)| worker.is_none_or(|w| b.worker == w) && b.conn == conn && b.entry < at)
        .max_by_key(|(_, b)| b.entry)
        .map(|(c, _)| c.as_str())
}

/// Binds the clients of `connects` (accepted connects, in order) that have
/// no binding yet, from the log: in order, to the News that are not the
/// parent's own. A New is the parent's own when the next command naming
/// its conn on its worker is none that an action asked for (the Add of a
/// probe, say). The News of several workers reach the harness in order
/// because the runner waits for each client's New before the next
/// `connect` when there are several.
pub fn bind(
    entries: &[Entry],
    expected: &[ExpectedCmd],
    connects: &[String],
    bindings: &mut HashMap<String, Binding>,
) {
    let unbound: Vec<&String> = connects.iter().filter(|c| !bindings.contains_key(*c)).collect();
    if unbound.is_empty() {
        return;
    }
    let taken: HashSet<usize> = bindings.values().map(|b| b.entry).collect();
    let mut candidates = Vec::new();
    for (ni, n) in entries.iter().enumerate() {
        let Ok(SubCommand::New { conn, .. }) = &n.cmd else {
            continue;
        };
        if taken.contains(&ni) {
            continue;
        }
        let next = entries[ni + 1..]
            .iter()
            .filter(|l| l.worker == n.worker)
            .find(|l| matches!(&l.cmd, Ok(c) if named_conn(c) == *conn));
        let own = match next.map(|l| (l, &l.cmd)) {
            None | Some((_, Ok(SubCommand::New { .. }))) => false,
            Some((l, _)) => !expected.iter().any(|e| {
                let conn_of = |c: &str| {
                    if e.template.client.as_deref() == Some(c) && !bindings.contains_key(c) {
                        Some(*conn)
                    } else {
                        bindings.get(c).map(|b| b.conn)
                    }
                };
                template_matches(&e.template.pieces, &conn_of, &e.data, &l.frame)
            }),
        };
        if !own {
            candidates.push((ni, *conn, n.worker));
        }
    }
    for (client, (ni, conn, worker)) in unbound.into_iter().zip(candidates) {
        bindings.insert(
            client.clone(),
            Binding {
                conn,
                worker,
                entry: ni,
            },
        );
    }
}

/// Matches the whole log against `expected` with `bindings` (see the
/// module documentation). `fanout_events` holds the event bytes of every
/// fanout sent, accepted or not, to tell a leaked or repeated Bcast from a
/// probe of the parent's own.
pub fn match_log(
    entries: &[Entry],
    expected: &[ExpectedCmd],
    bindings: &HashMap<String, Binding>,
    fanout_events: &HashSet<Arc<Vec<u8>>>,
    workers: usize,
) -> Outcome {
    let mut out = Outcome::default();
    let mut matched = vec![false; expected.len()];
    let mut bcast_on: Vec<HashSet<usize>> = vec![HashSet::new(); expected.len()];
    let binding_new: HashMap<usize, &str> = bindings.iter().map(|(c, b)| (b.entry, c.as_str())).collect();
    let conn_of = |c: &str| bindings.get(c).map(|b| b.conn);
    for w in 0..workers {
        let mut last: Option<usize> = None;
        for (li, l) in entries.iter().enumerate().filter(|(_, l)| l.worker == w) {
            let cmd = match &l.cmd {
                Ok(c) => c,
                Err(e) => {
                    out.problems.push(format!(
                        "the parent wrote a command that does not decode ({}: {e}), bytes {} (PROTOCOL.md#parent-sending: an invalid command is refused to the caller, never written)",
                        e.class(),
                        short_hex(&l.frame)
                    ));
                    continue;
                }
            };
            if let Some(rule) = &l.lifecycle {
                let owner = owner_at(bindings, scope_of(cmd, w), named_conn(cmd), li);
                // A Bcast names a sender that may live on another worker of
                // a sharded parent; that worker's stream has the New.
                let elsewhere = matches!(cmd, SubCommand::Bcast { .. })
                    && owner.is_some_and(|c| bindings.get(c).is_some_and(|b| b.worker != w));
                if !elsewhere {
                    let whose = owner.map(|c| format!(" (client {c}'s conn)")).unwrap_or_default();
                    out.problems
                        .push(format!("{}{whose}: {rule}", describe_command(cmd)));
                }
            }
            let is_new = matches!(cmd, SubCommand::New { .. });
            // Which expected commands this one may be.
            let candidates: Vec<usize> = if is_new {
                match binding_new.get(&li) {
                    Some(client) => expected
                        .iter()
                        .enumerate()
                        .filter(|(k, e)| {
                            !matched[*k]
                                && e.template.op == Op::New
                                && e.template.client.as_deref() == Some(*client)
                        })
                        .map(|(k, _)| k)
                        .collect(),
                    None => {
                        if let Some(owner) = owner_at(bindings, Some(w), cmd.conn(), li)
                            && let Some(r) = l.reuse
                            && r.was_open
                        {
                            out.problems.push(format!(
                                "{} names conn {}, which is client {owner}'s and still open (PROTOCOL.md#parent-lifecycle)",
                                describe_command(cmd),
                                cmd.conn()
                            ));
                        }
                        out.private.push(li);
                        continue;
                    }
                }
            } else {
                let conn = named_conn(cmd);
                let owner = if conn < 0 {
                    None
                } else {
                    match owner_at(bindings, scope_of(cmd, w), conn, li) {
                        Some(o) => Some(o),
                        None => {
                            // A conn no client has: the parent's own.
                            out.private.push(li);
                            continue;
                        }
                    }
                };
                expected
                    .iter()
                    .enumerate()
                    .filter(|(k, e)| {
                        e.template.op == cmd.op()
                            && e.template.client.as_deref() == owner
                            && if cmd.op() == Op::Bcast {
                                !bcast_on[*k].contains(&w)
                            } else {
                                !matched[*k]
                            }
                    })
                    .map(|(k, _)| k)
                    .collect()
            };
            let exact = |k: &usize| {
                template_matches(
                    &expected[*k].template.pieces,
                    &conn_of,
                    &expected[*k].data,
                    &l.frame,
                )
            };
            let after = |k: &&usize| last.is_none_or(|x| **k > x);
            // An exact match in order; else an exact one out of order (an
            // order problem); else the next of that op and client (its
            // bytes differ). A Bcast from no connection matches only
            // exactly: any other is the parent's own (a probe), and an
            // altered one leaves the expected one missing.
            let anonymous = matches!(cmd, SubCommand::Bcast { sender: -1, .. });
            let pick = candidates
                .iter()
                .filter(after)
                .find(|k| exact(k))
                .or_else(|| candidates.iter().find(|k| exact(k)))
                .or_else(|| (!anonymous).then(|| candidates.iter().find(after)).flatten())
                .or_else(|| (!anonymous).then(|| candidates.first()).flatten())
                .copied();
            let Some(k) = pick else {
                match cmd {
                    SubCommand::Bcast {
                        sender: -1, event, ..
                    } => {
                        if fanout_events.iter().any(|e| e.as_slice() == &event[..]) {
                            out.problems.push(format!(
                                "{}: a Bcast of a fanout that was refused, or written twice (PROTOCOL.md#parent-sending)",
                                describe_command(cmd)
                            ));
                        } else {
                            out.private.push(li);
                        }
                    }
                    _ => {
                        let whose = owner_at(bindings, scope_of(cmd, w), named_conn(cmd), li)
                            .map(|c| format!("client {c}'s conn"))
                            .unwrap_or_else(|| "a conn".into());
                        out.problems.push(format!(
                            "{}: names {whose}, but no accepted action asked for it",
                            describe_command(cmd)
                        ));
                    }
                }
                continue;
            };
            let e = &expected[k];
            if !exact(&k) {
                out.problems.push(format!(
                    "the command for seq {} ({}) differs: expected {}, got {} (frame hex {})",
                    e.seq,
                    e.what,
                    describe_expected(e, bindings),
                    describe_command(cmd),
                    short_hex(&l.frame)
                ));
            }
            if let Some(x) = last
                && k < x
            {
                out.problems.push(format!(
                    "the command for seq {} ({}) came after that of seq {} ({}): commands are written in the order the relay issued them (PROTOCOL.md#parent-flow-control)",
                    e.seq, e.what, expected[x].seq, expected[x].what
                ));
            }
            last = Some(last.map_or(k, |x| x.max(k)));
            if e.template.op == Op::Bcast {
                bcast_on[k].insert(w);
            }
            matched[k] = true;
        }
    }
    out.missing = (0..expected.len())
        .filter(|k| !matched[*k] && !expected[*k].optional)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use broadcast_wire::{NewFlags, ReservedFlags, SubId};
    use bytes::Bytes;

    fn entry(worker: usize, cmd: SubCommand) -> Entry {
        let mut frame = Vec::new();
        cmd.encode_framed(&mut frame);
        Entry {
            worker,
            frame: Bytes::from(frame),
            cmd: Ok(cmd),
            lifecycle: None,
            reuse: None,
        }
    }

    fn new(conn: i32) -> SubCommand {
        SubCommand::New {
            conn,
            flags: NewFlags::EMPTY,
        }
    }

    fn add(conn: i32, sub: &str) -> SubCommand {
        SubCommand::Add {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id: SubId::try_from(sub).unwrap(),
            req: Bytes::from_static(b"[\"REQ\",\"s\",{}]"),
        }
    }

    fn expect(seq: u64, client: &str, cmd: &SubCommand) -> ExpectedCmd {
        let mut frame = Vec::new();
        cmd.encode_framed(&mut frame);
        // The conn bytes (offset 7..11 of the frame) become the client.
        let pieces = vec![
            Piece::Bytes(frame[..7].to_vec()),
            Piece::Conn(client.into()),
            Piece::Bytes(frame[11..].to_vec()),
        ];
        ExpectedCmd {
            seq,
            what: format!("seq {seq}"),
            template: CmdTemplate {
                op: cmd.op(),
                client: Some(client.into()),
                pieces,
            },
            data: Arc::new(Vec::new()),
            optional: false,
        }
    }

    #[test]
    fn a_probe_barrier_is_not_taken_for_the_client() {
        // connect a; subscribe a: the parent runs a probe (New 9, Add 9)
        // before a's New 4.
        let log = vec![
            entry(0, new(9)),
            entry(0, add(9, "probe")),
            entry(0, new(4)),
            entry(0, add(4, "s")),
        ];
        let expected = vec![expect(1, "a", &new(0)), expect(2, "a", &add(0, "s"))];
        let mut b = HashMap::new();
        bind(&log, &expected, &["a".to_string()], &mut b);
        assert_eq!(b["a"].conn, 4);
        let out = match_log(&log, &expected, &b, &HashSet::new(), 1);
        assert!(out.missing.is_empty() && out.problems.is_empty(), "{out:?}");
        assert_eq!(out.private, vec![0, 1]);
    }

    #[test]
    fn a_client_without_commands_gets_the_new_nothing_names() {
        let log = vec![entry(0, new(9)), entry(0, add(9, "probe")), entry(0, new(4))];
        let expected = vec![expect(1, "a", &new(0))];
        let mut b = HashMap::new();
        bind(&log, &expected, &["a".to_string()], &mut b);
        assert_eq!(b["a"].conn, 4);
    }

    #[test]
    fn missing_extra_and_reordered_commands_are_found() {
        let log = vec![entry(0, new(4)), entry(0, add(4, "t")), entry(0, add(4, "s"))];
        let expected = vec![
            expect(1, "a", &new(0)),
            expect(2, "a", &add(0, "s")),
            expect(3, "a", &add(0, "t")),
            expect(4, "a", &add(0, "u")),
        ];
        let mut b = HashMap::new();
        bind(&log, &expected, &["a".to_string()], &mut b);
        let out = match_log(&log, &expected, &b, &HashSet::new(), 1);
        assert_eq!(out.missing, vec![3]);
        assert!(
            out.problems.iter().any(|p| p.contains("came after")),
            "{:?}",
            out.problems
        );
    }
}
