//! A test-only worker for the harness's own tests: the reference
//! [`Worker`] state machine behind a small I/O loop, with switches that make
//! it break exactly one rule (`--bug NAME`) or behave in a conforming but
//! unusual way (`--mode NAME`).
//!
//! The harness's self-tests run the scenario suite against each bug and
//! assert that it is caught, and against each mode and assert that it is
//! not. The reference `broadcast-worker` binary has no such switches.
//!
//! Usage: `conformance-testee [--fd N] [--bug NAME]... [--mode NAME]...`

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use broadcast_conformance::harness::escape::sub_id_json;
use broadcast_process::worker_io::{self, WorkerTransport};
use broadcast_wire::{
    BcastFlags, BroadcastFrame, Frame, FrameReader, FrameWriter, NewFlags, ReadError, ReadStatus,
    ReservedFlags, SubCommand, SubId,
};
use broadcast_worker::{Event, Outcome, Worker, nests_deeper_than};
use serde_json::Value;

/// Every rule a `--bug` can break. The list is the documentation too
/// (docs/CONFORMANCE.md, "Bugs the self-tests prove are caught").
const BUGS: &[(&str, &str)] = &[
    (
        "since-exclusive",
        "`since` is treated as exclusive (created_at == since is not delivered)",
    ),
    (
        "empty-list-matches-all",
        "an empty list in a filter matches everything instead of nothing",
    ),
    (
        "ignores-t1-only",
        "tag filters look at every element of a tag, not only t[1]",
    ),
    ("no-closed-on-invalid", "a failed Add sends no CLOSED"),
    (
        "old-sub-kept-on-failed-replace",
        "a failed Add keeps the existing subscription with that sub_id",
    ),
    (
        "reset-missing-on-new",
        "New on an existing conn does not reset it",
    ),
    (
        "auth-single-pubkey",
        "a second Auth replaces the first pubkey instead of adding to the set",
    ),
    (
        "need-filter-ignored",
        "the need_filter bit is ignored (privileged kinds go to everybody)",
    ),
    (
        "marmot-open-ignored",
        "the marmot_open bit is ignored (key packages stay restricted)",
    ),
    (
        "nip70-ignored",
        "the nip70_enforce bit is ignored (protected events go to everybody)",
    ),
    (
        "reserved-flags-rejected",
        "a command with a reserved flag bit set is dropped",
    ),
    (
        "sub-id-unescaped",
        "the sub_id is written into EVENT frames without JSON escaping",
    ),
    (
        "event-reserialised",
        "events are re-serialised instead of copied verbatim",
    ),
    (
        "sender-excluded",
        "the sending connection does not receive its own event",
    ),
    (
        "drops-heartbeat-handling",
        "a heartbeat on the input is treated as a fatal stream error",
    ),
    ("exit-1-on-eof", "a clean end of input exits 1 instead of 0"),
    (
        "no-exit-on-oversize",
        "an oversize frame header does not end the worker",
    ),
    (
        "hang-on-bcast",
        "a Bcast from a connection (sender >= 0) makes the worker stop responding",
    ),
    ("crash-on-remove", "a Remove command crashes the worker"),
    (
        "reorders-across-commands",
        "frames of a Bcast are written after the frames of a later command",
    ),
    (
        "buffer-until-eof",
        "output is kept in a buffer until the end of input (PROTOCOL.md#output-promptness)",
    ),
    (
        "no-output-before-fatal-exit",
        "output held while more input is buffered is lost on a fatal stream error (PROTOCOL.md#output-before-fatal-error)",
    ),
    (
        "escapes-not-decoded",
        "JSON strings in REQ and EVENT data are used with their \\u escapes undecoded (PROTOCOL.md#decoded-strings)",
    ),
    (
        "integers-as-f64",
        "REQ integers go through f64: 2^53+1 rounds, and -0, 1.0, 1e3 and 2^64 are accepted (PROTOCOL.md#integers)",
    ),
    (
        "lenient-json-text",
        "a leading byte-order mark is skipped and unpaired surrogate escapes become U+FFFD (PROTOCOL.md#json-text)",
    ),
    (
        "depth-limit-32",
        "REQ and EVENT data nested deeper than 32 levels is refused (PROTOCOL.md#implementation-limits)",
    ),
    (
        "filter-count-limit",
        "a REQ with more than 100 filters is refused (PROTOCOL.md#implementation-limits)",
    ),
    (
        "closed-with-spaces",
        "CLOSED frames are written with a space after each comma (PROTOCOL.md#closed-message)",
    ),
    (
        "oversize-drops-bcast",
        "a Bcast within 381 bytes of the maximum payload is not delivered at all (PROTOCOL.md#oversize-output)",
    ),
    (
        "holds-closed-until-bcast",
        "a CLOSED frame is written only when the next Bcast arrives, not before the worker waits for more input (PROTOCOL.md#output-promptness)",
    ),
    (
        "duplicate-key-first-wins",
        "of a key given twice in a filter or an event, the first occurrence is used (PROTOCOL.md#implementation-limits)",
    ),
    (
        "json-text-extensions",
        "NaN, Infinity, comments, trailing commas, UTF-16 and UTF-32 text, form feeds, vertical tabs and non-ASCII spaces, and raw control characters in strings are accepted (PROTOCOL.md#json-text)",
    ),
    (
        "closed-uppercase-escapes",
        "CLOSED frames write the sub_id's control characters as \\u00XX with uppercase hex digits (PROTOCOL.md#closed-message)",
    ),
    (
        "closed-html-escapes",
        "CLOSED frames write the sub_id's <, >, &, U+2028 and U+2029 as \\u escapes, as Go's encoding/json does (PROTOCOL.md#closed-message)",
    ),
    (
        "conn-minus-one-accepted",
        "New, Close, Add, Remove and Auth with conn -1 are executed instead of dropped, so a connection -1 exists (PROTOCOL.md#operations)",
    ),
    (
        "auth-short-key-padded",
        "Auth with 31 bytes of data is zero-padded to a 32-byte pubkey instead of dropped (PROTOCOL.md#operations)",
    ),
    (
        "extra-members-refused",
        "an event object with a member other than the seven of NIP-01 is invalid (PROTOCOL.md#bcast-event)",
    ),
    (
        "unread-numbers-range-checked",
        "a number beyond the range of a double is refused even where its value is never read (PROTOCOL.md#json-text)",
    ),
    (
        "unsupported-wins",
        "a REQ with a # key that is not one letter is closed with `unsupported` even when it has an `invalid` failure too (PROTOCOL.md#add-failure)",
    ),
];

/// Conforming behaviours a harness must accept.
const MODES: &[(&str, &str)] = &[
    (
        "reverse-bcast-order",
        "the frames of one Bcast are written in reverse order",
    ),
    ("byte-at-a-time", "output is written one byte per write call"),
    (
        "noise",
        "heartbeats and frames on foreign channels are mixed into the output",
    ),
];

/// How long a deliberately hung testee waits before giving up by itself, so
/// no test leaves a process behind even if the harness dies.
const HANG: Duration = Duration::from_secs(60);

fn usage() -> String {
    let mut s = String::from("usage: conformance-testee [--fd N] [--bug NAME]... [--mode NAME]...\nbugs:\n");
    for (name, what) in BUGS {
        s.push_str(&format!("  {name:32} {what}\n"));
    }
    s.push_str("modes:\n");
    for (name, what) in MODES {
        s.push_str(&format!("  {name:32} {what}\n"));
    }
    s
}

struct Config {
    transport: WorkerTransport,
    bugs: BTreeSet<String>,
    modes: BTreeSet<String>,
}

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        transport: WorkerTransport::Stdio,
        bugs: BTreeSet::new(),
        modes: BTreeSet::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--fd" => {
                let v = value("--fd")?;
                cfg.transport = WorkerTransport::from_fd_arg(&v).map_err(|e| e.to_string())?;
            }
            "--bug" => {
                let v = value("--bug")?;
                if !BUGS.iter().any(|(n, _)| *n == v) {
                    return Err(format!("unknown bug {v:?}"));
                }
                cfg.bugs.insert(v);
            }
            "--mode" => {
                let v = value("--mode")?;
                if !MODES.iter().any(|(n, _)| *n == v) {
                    return Err(format!("unknown mode {v:?}"));
                }
                cfg.modes.insert(v);
            }
            "--help" | "-h" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(cfg)
}

/// One byte per `write` call, for the `byte-at-a-time` mode.
struct ByteAtATime<W>(W);

impl<W: Write> Write for ByteAtATime<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.0.write(&buf[..1])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// What the harness-facing state needs besides the reference worker to
/// simulate the stateful bugs: the last successful REQ of every
/// subscription, each connection's New flags and its number of Auths.
#[derive(Default)]
struct Shadow {
    conns: HashMap<i32, (NewFlags, usize)>,
    reqs: HashMap<(i32, String), bytes::Bytes>,
}

struct Testee {
    worker: Worker,
    shadow: Shadow,
    bugs: BTreeSet<String>,
    modes: BTreeSet<String>,
    /// Frames held back by `reorders-across-commands`.
    held: Vec<BroadcastFrame>,
    /// CLOSED frames held back by `holds-closed-until-bcast`.
    held_closed: Vec<BroadcastFrame>,
}

impl Testee {
    fn bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }

    /// Runs one command through the (possibly buggy) wrapper and returns the
    /// frames to write, in order.
    fn handle(&mut self, cmd: SubCommand) -> Vec<BroadcastFrame> {
        let mut out = Vec::new();
        if self.bug("reserved-flags-rejected") && reserved_bits(&cmd) != 0 {
            eprintln!("testee: dropping a command with reserved flag bits (bug reserved-flags-rejected)");
            return out;
        }
        match &cmd {
            SubCommand::New { conn, flags } => {
                if self.bug("reset-missing-on-new") && self.shadow.conns.contains_key(conn) {
                    return out;
                }
                self.shadow.conns.insert(*conn, (*flags, 0));
                self.shadow.reqs.retain(|(c, _), _| c != conn);
                self.worker.handle(&cmd, &mut out);
            }
            SubCommand::Close { conn, .. } => {
                self.shadow.conns.remove(conn);
                self.shadow.reqs.retain(|(c, _), _| c != conn);
                self.worker.handle(&cmd, &mut out);
            }
            SubCommand::Add {
                conn,
                flags,
                sub_id,
                req,
            } => {
                let key = (*conn, sub_id.as_str().to_string());
                let old = self.shadow.reqs.get(&key).cloned();
                let sent = self.rewrite_req(req);
                let add = SubCommand::Add {
                    conn: *conn,
                    flags: *flags,
                    sub_id: sub_id.clone(),
                    req: sent,
                };
                let outcome = self.worker.handle(&add, &mut out);
                if self.bug("closed-with-spaces") {
                    for f in &mut out {
                        if let Some(d) = spaced_closed(&f.data) {
                            f.data = d;
                        }
                    }
                }
                for (bug, escape) in [
                    ("closed-uppercase-escapes", upper_hex_json as fn(&str) -> String),
                    ("closed-html-escapes", html_safe_json),
                ] {
                    if self.bug(bug) {
                        for f in &mut out {
                            f.data = respell_closed_sub_id(&f.data, sub_id.as_str(), escape);
                        }
                    }
                }
                if self.bug("unsupported-wins")
                    && matches!(&outcome, Outcome::Refused(e) if e.prefix() == "invalid")
                    && has_unsupported_key(req)
                {
                    for f in &mut out {
                        f.data = replace_first(&f.data, b",\"invalid: ", b",\"unsupported: ").into();
                    }
                }
                match outcome {
                    Outcome::Applied => {
                        self.shadow.reqs.insert(key, req.clone());
                    }
                    Outcome::Refused(_) => {
                        self.shadow.reqs.remove(&key);
                        if self.bug("no-closed-on-invalid") {
                            out.clear();
                        }
                        if let (true, Some(old)) = (self.bug("old-sub-kept-on-failed-replace"), old) {
                            self.readd(*conn, sub_id, old);
                        }
                    }
                    _ => {}
                }
            }
            SubCommand::Remove { conn, sub_id, .. } => {
                if self.bug("crash-on-remove") {
                    eprintln!("testee: crashing on Remove (bug crash-on-remove)");
                    std::process::abort();
                }
                self.shadow.reqs.remove(&(*conn, sub_id.as_str().to_string()));
                self.worker.handle(&cmd, &mut out);
            }
            SubCommand::Auth { conn, .. } => {
                let auths = self.shadow.conns.get(conn).map(|(_, n)| *n);
                if let (true, Some(n)) = (self.bug("auth-single-pubkey"), auths)
                    && n > 0
                {
                    self.reset_keeping_subs(*conn);
                }
                if let Some((_, n)) = self.shadow.conns.get_mut(conn) {
                    *n += 1;
                }
                self.worker.handle(&cmd, &mut out);
            }
            SubCommand::Bcast { sender, flags, event } => {
                if self.bug("hang-on-bcast") && *sender >= 0 {
                    eprintln!("testee: hanging on a Bcast from conn {sender} (bug hang-on-bcast)");
                    std::thread::sleep(HANG);
                    std::process::exit(0);
                }
                out = self.bcast(*sender, *flags, event);
                if self.bug("holds-closed-until-bcast") {
                    let mut held = std::mem::take(&mut self.held_closed);
                    held.append(&mut out);
                    out = held;
                }
            }
        }
        if self.bug("holds-closed-until-bcast") && matches!(cmd, SubCommand::Add { .. }) {
            self.held_closed.append(&mut out);
        }
        self.order(&cmd, out)
    }

    fn bcast(&mut self, sender: i32, flags: BcastFlags, data: &bytes::Bytes) -> Vec<BroadcastFrame> {
        let mut bits = flags.bits();
        if self.bug("need-filter-ignored") {
            bits &= !BcastFlags::NEED_FILTER.bits();
        }
        if self.bug("nip70-ignored") {
            bits &= !BcastFlags::NIP70_ENFORCE.bits();
        }
        if self.bug("marmot-open-ignored") {
            bits &= !BcastFlags::MARMOT_OPEN.bits();
        }
        // For `ignores-t1-only`, the worker matches a copy of the event with
        // every later tag element promoted to a tag of its own; the frames
        // then get the original event's bytes back.
        // Only valid events are widened: rebuilding an invalid message
        // would turn it into a valid one, a second, unintended bug.
        if self.bug("oversize-drops-bcast")
            && data.len() + 14 + 381 > broadcast_wire::DEFAULT_MAX_PAYLOAD as usize
        {
            eprintln!("testee: dropping a Bcast near the maximum (bug oversize-drops-bcast)");
            return Vec::new();
        }
        if self.bug("extra-members-refused") && has_extra_member(data) {
            eprintln!("testee: refusing an event with an extra member (bug extra-members-refused)");
            return Vec::new();
        }
        // The byte-level bugs rewrite the message the worker sees; the frames
        // then get the original event's bytes back.
        let original = data;
        let rewritten = self.rewrite_json_text(data);
        let data = &rewritten;
        let widened = if self.bug("ignores-t1-only") && Event::parse(data).is_ok() {
            widen_tags(data)
        } else {
            None
        };
        let event = widened
            .as_ref()
            .map(|(msg, _)| msg.clone())
            .unwrap_or_else(|| data.clone());
        let mut out = Vec::new();
        self.worker.handle(
            &SubCommand::Bcast {
                sender,
                flags: BcastFlags::from_bits(bits),
                event,
            },
            &mut out,
        );
        if let Some((_, widened_event)) = &widened
            && let Some(original) = event_span(data)
        {
            for f in &mut out {
                f.data = replace_event(&f.data, widened_event.as_bytes(), original);
            }
        }
        if data != original
            && let (Some(seen), Some(sent)) = (event_span(data), event_span(original))
        {
            for f in &mut out {
                f.data = replace_event(&f.data, seen, sent);
            }
        }
        if self.bug("sender-excluded") {
            out.retain(|f| f.conn != sender);
        }
        if self.bug("event-reserialised") {
            for f in &mut out {
                if let Some(d) = reserialise(&f.data) {
                    f.data = d;
                }
            }
        }
        if self.bug("sub-id-unescaped") {
            for f in &mut out {
                if let Some(d) = unescape_sub_id(&f.data) {
                    f.data = d;
                }
            }
        }
        if self.modes.contains("reverse-bcast-order") {
            out.reverse();
        }
        out
    }

    /// `reorders-across-commands`: frames of a command (other than those for
    /// the probe connection, so the harness still synchronises) are held
    /// back and written after the frames of the next command that has any.
    fn order(&mut self, cmd: &SubCommand, out: Vec<BroadcastFrame>) -> Vec<BroadcastFrame> {
        if !self.bug("reorders-across-commands") || out.is_empty() {
            return out;
        }
        let probe = out.iter().any(|f| f.conn == i32::MAX);
        if !probe && self.held.is_empty() && matches!(cmd, SubCommand::Bcast { .. }) {
            self.held = out;
            return Vec::new();
        }
        let mut out = out;
        out.append(&mut self.held);
        out
    }

    /// The byte-level bugs shared by REQ and EVENT data.
    fn rewrite_json_text(&self, data: &bytes::Bytes) -> bytes::Bytes {
        let mut data = data.clone();
        if self.bug("json-text-extensions")
            && let Some(plain) = lenient_json(&data)
        {
            data = plain.into();
        }
        if self.bug("unread-numbers-range-checked")
            && let Err(e) = serde_json::from_slice::<Value>(&data)
            && e.to_string().contains("number out of range")
        {
            // Not JSON: the worker refuses it as a parser that converts
            // every number would.
            return bytes::Bytes::from_static(b"[");
        }
        if self.bug("duplicate-key-first-wins")
            && let Some(first) = first_occurrences(&data)
        {
            data = first.into();
        }
        if self.bug("depth-limit-32") && nests_deeper_than(&data, 32) {
            // Not JSON: the worker refuses it as the bug's limit would.
            return bytes::Bytes::from_static(b"[");
        }
        if self.bug("lenient-json-text") {
            if let Some(rest) = data.strip_prefix(b"\xef\xbb\xbf") {
                data = bytes::Bytes::copy_from_slice(rest);
            }
            data = replace_lone_surrogates(&data).into();
        }
        if self.bug("escapes-not-decoded") {
            data = replace_all(&data, b"\\u", b"\\\\u").into();
        }
        data
    }

    fn rewrite_req(&self, req: &bytes::Bytes) -> bytes::Bytes {
        let req = &self.rewrite_json_text(req);
        if ![
            "since-exclusive",
            "empty-list-matches-all",
            "integers-as-f64",
            "filter-count-limit",
        ]
        .iter()
        .any(|b| self.bug(b))
        {
            return req.clone();
        }
        let Ok(Value::Array(mut items)) = serde_json::from_slice::<Value>(req) else {
            return req.clone();
        };
        if self.bug("filter-count-limit") && items.len() > 2 + 100 {
            return bytes::Bytes::from_static(b"[");
        }
        for filter in items.iter_mut().skip(2) {
            let Value::Object(map) = filter else { continue };
            if self.bug("integers-as-f64") {
                for key in ["since", "until", "limit"] {
                    if let Some(v) = map.get_mut(key) {
                        as_f64_integer(v);
                    }
                }
                if let Some(Value::Array(kinds)) = map.get_mut("kinds") {
                    kinds.iter_mut().for_each(as_f64_integer);
                }
            }
            if self.bug("since-exclusive")
                && let Some(since) = map.get("since").and_then(Value::as_u64)
            {
                map.insert("since".into(), Value::from(since.saturating_add(1)));
            }
            if self.bug("empty-list-matches-all") {
                map.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()));
            }
        }
        serde_json::to_vec(&Value::Array(items))
            .map(Into::into)
            .unwrap_or_else(|_| req.clone())
    }

    fn readd(&mut self, conn: i32, sub_id: &SubId, req: bytes::Bytes) {
        let mut ignored = Vec::new();
        self.worker.handle(
            &SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id.clone(),
                req: self.rewrite_req(&req),
            },
            &mut ignored,
        );
        self.shadow.reqs.insert((conn, sub_id.as_str().to_string()), req);
    }

    /// Drops a connection's pubkeys but keeps its subscriptions and flags.
    fn reset_keeping_subs(&mut self, conn: i32) {
        let Some((flags, _)) = self.shadow.conns.get(&conn).copied() else {
            return;
        };
        let subs: Vec<(String, bytes::Bytes)> = self
            .shadow
            .reqs
            .iter()
            .filter(|((c, _), _)| *c == conn)
            .map(|((_, s), r)| (s.clone(), r.clone()))
            .collect();
        let mut ignored = Vec::new();
        self.worker.handle(&SubCommand::New { conn, flags }, &mut ignored);
        self.shadow.conns.insert(conn, (flags, 0));
        for (sub, req) in subs {
            if let Ok(sub_id) = SubId::try_from(sub) {
                self.readd(conn, &sub_id, req);
            }
        }
    }
}

fn reserved_bits(cmd: &SubCommand) -> u8 {
    match cmd {
        SubCommand::New { flags, .. } => flags.reserved_bits(),
        SubCommand::Bcast { flags, .. } => flags.reserved_bits(),
        other => other.flags_bits(),
    }
}

/// For `integers-as-f64`: a number whose f64 value is a non-negative whole
/// number becomes that integer, as a parser that reads every number as f64
/// would see it (2^53+1 becomes 2^53, -0 and 1e3 become integers, 2^64
/// saturates).
fn as_f64_integer(v: &mut Value) {
    if let Value::Number(n) = v
        && let Some(f) = n.as_f64()
        && f.is_finite()
        && f >= 0.0
        && f.fract() == 0.0
    {
        *v = Value::from(f as u64);
    }
}

/// `data` with every occurrence of `from` replaced by `to`.
fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// For `lenient-json-text`: every `\uXXXX` escape of a surrogate that is not
/// part of a high-low pair becomes `\ufffd`.
fn replace_lone_surrogates(data: &[u8]) -> Vec<u8> {
    let escape_at = |i: usize| -> Option<u16> {
        let hex = data.get(i..i + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match escape_at(i) {
            Some(0xd800..=0xdbff) if matches!(escape_at(i + 6), Some(0xdc00..=0xdfff)) => {
                out.extend_from_slice(&data[i..i + 12]);
                i += 12;
            }
            Some(0xd800..=0xdfff) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            _ => {
                out.push(data[i]);
                i += 1;
            }
        }
    }
    out
}

/// For `closed-with-spaces`: a CLOSED frame written `["CLOSED", "s", "…"]`.
fn spaced_closed(frame: &[u8]) -> Option<bytes::Bytes> {
    let Value::Array(items) = serde_json::from_slice::<Value>(frame).ok()? else {
        return None;
    };
    if items.len() != 3 || items[0] != "CLOSED" {
        return None;
    }
    let text = format!(
        "[\"CLOSED\", {}, {}]",
        serde_json::to_string(&items[1]).ok()?,
        serde_json::to_string(&items[2]).ok()?
    );
    Some(text.into_bytes().into())
}

/// The event object's bytes inside an EVENT message: from the first `{` to
/// the last `}`.
fn event_span(data: &[u8]) -> Option<&[u8]> {
    let start = data.iter().position(|b| *b == b'{')?;
    let end = data.iter().rposition(|b| *b == b'}')?;
    (start < end).then(|| &data[start..=end])
}

fn replace_event(frame: &[u8], from: &[u8], to: &[u8]) -> bytes::Bytes {
    let mut suffix = from.to_vec();
    suffix.push(b']');
    match frame.strip_suffix(suffix.as_slice()) {
        Some(prefix) => {
            let mut v = prefix.to_vec();
            v.extend_from_slice(to);
            v.push(b']');
            v.into()
        }
        None => bytes::Bytes::copy_from_slice(frame),
    }
}

/// An EVENT message whose tags also contain `[t[0], t[i]]` for every i ≥ 2,
/// and that event's text.
fn widen_tags(data: &[u8]) -> Option<(bytes::Bytes, String)> {
    let Value::Array(msg) = serde_json::from_slice::<Value>(data).ok()? else {
        return None;
    };
    let mut event = msg.get(1)?.clone();
    let tags = event.get_mut("tags")?.as_array_mut()?;
    let mut extra = Vec::new();
    for tag in tags.iter() {
        let Some(t) = tag.as_array() else { continue };
        for value in t.iter().skip(2) {
            extra.push(Value::Array(vec![t[0].clone(), value.clone()]));
        }
    }
    tags.extend(extra);
    let text = serde_json::to_string(&event).ok()?;
    Some((format!("[\"EVENT\",{text}]").into_bytes().into(), text))
}

/// The frame with its event re-serialised by serde_json (keys sorted).
fn reserialise(frame: &[u8]) -> Option<bytes::Bytes> {
    let Value::Array(items) = serde_json::from_slice::<Value>(frame).ok()? else {
        return None;
    };
    if items.len() != 3 || items[0] != "EVENT" {
        return None;
    }
    let text = format!(
        "[\"EVENT\",{},{}]",
        serde_json::to_string(&items[1]).ok()?,
        serde_json::to_string(&items[2]).ok()?
    );
    Some(text.into_bytes().into())
}

/// The frame with the sub_id written raw between quotes.
fn unescape_sub_id(frame: &[u8]) -> Option<bytes::Bytes> {
    let Value::Array(items) = serde_json::from_slice::<Value>(frame).ok()? else {
        return None;
    };
    let sub_id = items.get(1)?.as_str()?;
    if items.first()? != "EVENT" {
        return None;
    }
    let prefix = format!("[\"EVENT\",{},", sub_id_json(sub_id));
    let rest = frame.strip_prefix(prefix.as_bytes())?;
    let mut v = format!("[\"EVENT\",\"{sub_id}\",").into_bytes();
    v.extend_from_slice(rest);
    Some(v.into())
}

/// For `closed-uppercase-escapes`: the JSON string of PROTOCOL.md#sub-id-json-string, but
/// with uppercase hex digits in `\u00XX` escapes.
fn upper_hex_json(sub_id: &str) -> String {
    let mut out = String::from("\"");
    for c in sub_id.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// For `closed-html-escapes`: the JSON string of PROTOCOL.md#sub-id-json-string, plus the
/// escapes Go's `encoding/json` adds for HTML and JavaScript.
fn html_safe_json(sub_id: &str) -> String {
    let mut out = String::new();
    for c in sub_id_json(sub_id).chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A CLOSED frame for `sub_id` with the sub_id written by `escape` instead
/// of PROTOCOL.md#sub-id-json-string; any other frame unchanged.
fn respell_closed_sub_id(frame: &[u8], sub_id: &str, escape: fn(&str) -> String) -> bytes::Bytes {
    let head = format!("[\"CLOSED\",{}", sub_id_json(sub_id));
    match frame.strip_prefix(head.as_bytes()) {
        Some(rest) => {
            let mut v = format!("[\"CLOSED\",{}", escape(sub_id)).into_bytes();
            v.extend_from_slice(rest);
            v.into()
        }
        None => bytes::Bytes::copy_from_slice(frame),
    }
}

/// `data` with the first occurrence of `from` replaced by `to`.
fn replace_first(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match data.windows(from.len()).position(|w| w == from) {
        Some(i) => [&data[..i], to, &data[i + from.len()..]].concat(),
        None => data.to_vec(),
    }
}

/// For `unsupported-wins`: whether the REQ text has an object key that
/// starts with `#` and is not `#` plus one ASCII letter (a plain text scan:
/// it also finds such keys in a REQ that is not JSON further on).
fn has_unsupported_key(req: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = req[i..].windows(2).position(|w| w == b"\"#") {
        let start = i + at + 1;
        let Some(len) = req[start..].iter().position(|b| *b == b'"') else {
            return false;
        };
        let name = &req[start..start + len];
        let after = req[start + len + 1..].iter().find(|b| !b.is_ascii_whitespace());
        if after == Some(&b':') && !matches!(name, [b'#', l] if l.is_ascii_alphabetic()) {
            return true;
        }
        i = start + len + 1;
    }
    false
}

/// For `extra-members-refused`: whether the EVENT message's event object has
/// a member that is not one of the seven of NIP-01.
fn has_extra_member(data: &[u8]) -> bool {
    const FIELDS: [&str; 7] = ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"];
    let Ok(Value::Array(msg)) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    msg.get(1)
        .and_then(Value::as_object)
        .is_some_and(|event| event.keys().any(|k| !FIELDS.contains(&k.as_str())))
}

/// For `json-text-extensions`: the text a lenient parser would read, as
/// strict JSON, or `None` if it is unchanged. UTF-16 and UTF-32 (found by
/// their byte-order mark or their zero bytes, as RFC 4627 did) become UTF-8;
/// outside strings `NaN`, `Infinity` and `-Infinity` become `0`, comments
/// and trailing commas go, and a form feed, a vertical tab, U+00A0 or
/// U+2028 becomes a space; inside strings a raw control character becomes a
/// `\u00xx` escape.
fn lenient_json(data: &[u8]) -> Option<Vec<u8>> {
    let text = decode_utf16_or_32(data).map(String::into_bytes);
    let input: &[u8] = text.as_deref().unwrap_or(data);
    let mut out = Vec::with_capacity(input.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let rest = &input[i..];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            } else if b < 0x20 {
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                i += 1;
                continue;
            }
            out.push(b);
            i += 1;
            continue;
        }
        let skip = if let Some(word) = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .iter()
            .find(|w| rest.starts_with(w))
        {
            out.push(b'0');
            word.len()
        } else if rest.starts_with(b"/*") {
            rest.windows(2)
                .position(|w| w == b"*/")
                .map_or(rest.len(), |e| e + 2)
        } else if rest.starts_with(b"//") {
            rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len())
        } else if let Some(space) = [&b"\x0c"[..], b"\x0b", "\u{a0}".as_bytes(), "\u{2028}".as_bytes()]
            .iter()
            .find(|w| rest.starts_with(w))
        {
            out.push(b' ');
            space.len()
        } else {
            match b {
                b'"' => in_string = true,
                b']' | b'}' => {
                    while out.last().is_some_and(|c| c.is_ascii_whitespace()) {
                        out.pop();
                    }
                    if out.last() == Some(&b',') {
                        out.pop();
                    }
                }
                _ => {}
            }
            out.push(b);
            1
        };
        i += skip;
    }
    (out != data).then_some(out)
}

/// `data` decoded from UTF-16 or UTF-32 (little- or big-endian, with or
/// without a byte-order mark), if it looks like either.
fn decode_utf16_or_32(data: &[u8]) -> Option<String> {
    let units32 = |bytes: &[u8], le: bool| -> Option<String> {
        bytes
            .chunks(4)
            .map(|c| {
                let a: [u8; 4] = c.try_into().ok()?;
                char::from_u32(if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                })
            })
            .collect()
    };
    let units16 = |bytes: &[u8], le: bool| -> Option<String> {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| {
                c.try_into().ok().map(|a: [u8; 2]| {
                    if le {
                        u16::from_le_bytes(a)
                    } else {
                        u16::from_be_bytes(a)
                    }
                })
            })
            .collect::<Option<_>>()?;
        String::from_utf16(&units).ok()
    };
    match data {
        [0xff, 0xfe, 0, 0, rest @ ..] => units32(rest, true),
        [0, 0, 0xfe, 0xff, rest @ ..] => units32(rest, false),
        [0xff, 0xfe, rest @ ..] => units16(rest, true),
        [0xfe, 0xff, rest @ ..] => units16(rest, false),
        [0, 0, 0, x, ..] if *x != 0 => units32(data, false),
        [x, 0, 0, 0, ..] if *x != 0 => units32(data, true),
        [0, x, ..] if *x != 0 => units16(data, false),
        [x, 0, ..] if *x != 0 => units16(data, true),
        _ => None,
    }
}

/// For `duplicate-key-first-wins`: the JSON text with only the first
/// occurrence of every key of every object (keys compared decoded), or
/// `None` if no key repeats or `data` is not JSON.
fn first_occurrences(data: &[u8]) -> Option<Vec<u8>> {
    use serde::de::DeserializeSeed;
    let mut repeated = false;
    let mut de = serde_json::Deserializer::from_slice(data);
    let value = FirstWins(&mut repeated).deserialize(&mut de).ok()?;
    de.end().ok()?;
    if !repeated {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

/// A JSON value read with the first occurrence of each key kept; sets the
/// flag when a key repeats.
struct FirstWins<'a>(&'a mut bool);

impl<'de> serde::de::DeserializeSeed<'de> for FirstWins<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FirstWins<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(FirstWins(&mut *self.0))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(FirstWins(&mut *self.0))?;
            if members.contains_key(&key) {
                *self.0 = true;
            } else {
                members.insert(key, v);
            }
        }
        Ok(Value::Object(members))
    }
}

/// A payload that fails to decode, read as the command a buggy decoder
/// would execute: `conn-minus-one-accepted` takes conn −1 for New, Close,
/// Add, Remove and Auth; `auth-short-key-padded` zero-pads a 31-byte Auth
/// key. `None` for every other payload.
fn lenient_command(payload: &[u8], testee: &Testee) -> Option<SubCommand> {
    let op = *payload.first()?;
    let conn = i32::from_le_bytes(payload.get(2..6)?.try_into().ok()?);
    let mut fixed = payload.to_vec();
    let minus_one = testee.bug("conn-minus-one-accepted") && conn == -1 && (1..=5).contains(&op);
    if minus_one {
        fixed[2..6].copy_from_slice(&0i32.to_le_bytes());
    }
    let padded = testee.bug("auth-short-key-padded")
        && op == 5
        && payload.len() == 14 + 31
        && payload.get(10..14) == Some(&31u32.to_le_bytes()[..]);
    if padded {
        fixed[10..14].copy_from_slice(&32u32.to_le_bytes());
        fixed.push(0);
    }
    if !minus_one && !padded {
        return None;
    }
    let cmd = SubCommand::decode(fixed.into()).ok()?;
    if !minus_one {
        return Some(cmd);
    }
    Some(match cmd {
        SubCommand::New { flags, .. } => SubCommand::New { conn, flags },
        SubCommand::Close { flags, .. } => SubCommand::Close { conn, flags },
        SubCommand::Add {
            flags, sub_id, req, ..
        } => SubCommand::Add {
            conn,
            flags,
            sub_id,
            req,
        },
        SubCommand::Remove { flags, sub_id, .. } => SubCommand::Remove { conn, flags, sub_id },
        SubCommand::Auth { flags, pubkey, .. } => SubCommand::Auth { conn, flags, pubkey },
        other => other,
    })
}

/// The frames the `noise` mode puts before each real one: heartbeats on the
/// parent's channel and on others, and frames on channels the parent skips.
fn noise() -> [Frame; 4] {
    [
        Frame::heartbeat(2),
        Frame::new(0, bytes::Bytes::from_static(b"noise on channel 0")),
        Frame::new(9, bytes::Bytes::from_static(&[0xff, 0x00, 0x02])),
        Frame::heartbeat(1),
    ]
}

fn run(cfg: Config) -> io::Result<ExitCode> {
    let (input, output) = cfg.transport.open().map_err(io::Error::other)?;
    let sink: Box<dyn Write> = if cfg.modes.contains("byte-at-a-time") {
        Box::new(ByteAtATime(output))
    } else {
        Box::new(output)
    };
    let mut writer = FrameWriter::new(sink);
    let mut reader = FrameReader::new(input);
    let mut testee = Testee {
        worker: Worker::new(),
        shadow: Shadow::default(),
        bugs: cfg.bugs,
        modes: cfg.modes,
        held: Vec::new(),
        held_closed: Vec::new(),
    };
    loop {
        let frame = match reader.read_frame() {
            Ok(ReadStatus::Ready(frame)) => frame,
            Ok(ReadStatus::Pending) => continue,
            Ok(ReadStatus::Closed) => {
                // `buffer-until-eof` writes everything only here.
                let mut held = std::mem::take(&mut testee.held_closed);
                held.append(&mut testee.held);
                for f in held {
                    let _ = writer.queue_message(&f);
                }
                writer.flush()?;
                return Ok(ExitCode::from(if testee.bug("exit-1-on-eof") { 1 } else { 0 }));
            }
            Err(ReadError::Framing(e)) => {
                if testee.bug("no-output-before-fatal-exit") {
                    eprintln!("testee: fatal stream error, exiting without writing held output: {e}");
                    return Ok(ExitCode::from(2));
                }
                for f in std::mem::take(&mut testee.held_closed) {
                    let _ = writer.queue_message(&f);
                }
                writer.flush()?;
                eprintln!("testee: fatal stream error: {e}");
                if e.class() == "frame_too_large" && testee.bug("no-exit-on-oversize") {
                    std::thread::sleep(HANG);
                    return Ok(ExitCode::SUCCESS);
                }
                return Ok(ExitCode::from(2));
            }
            Err(ReadError::Io(e)) => return Err(e),
        };
        if frame.is_heartbeat() && testee.bug("drops-heartbeat-handling") {
            eprintln!("testee: a heartbeat ends the stream (bug drops-heartbeat-handling)");
            writer.flush()?;
            return Ok(ExitCode::from(2));
        }
        let cmd = match frame.message::<SubCommand>() {
            None => continue,
            Some(Err(e)) => match lenient_command(&frame.payload, &testee) {
                Some(cmd) => {
                    eprintln!(
                        "testee: executing an undecodable command ({e}) as {}",
                        cmd.op().name()
                    );
                    cmd
                }
                None => {
                    eprintln!("testee: dropping an undecodable command: {e}");
                    continue;
                }
            },
            Some(Ok(cmd)) => cmd,
        };
        for f in testee.handle(cmd) {
            if testee.modes.contains("noise") {
                for n in noise() {
                    let _ = writer.queue_frame(&n);
                }
            }
            if let Err(e) = writer.queue_message(&f) {
                eprintln!("testee: cannot queue a frame: {e}");
            }
        }
        // Write before reading the next command, so the parent sees every
        // frame of a command without waiting for more input.
        if testee.bug("buffer-until-eof")
            || (testee.bug("no-output-before-fatal-exit") && reader.decoder().buffered() > 0)
        {
            continue;
        }
        writer.flush()?;
    }
}

fn main() -> ExitCode {
    // SAFETY: the first statement of main, before anything takes a
    // descriptor (the fd-safety policy of broadcast_process::worker_io).
    #[allow(unsafe_code)]
    let _ = unsafe { worker_io::init_inherited_fds() };
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("conformance-testee: {e}\n{}", usage());
            return ExitCode::from(64);
        }
    };
    match run(cfg) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("conformance-testee: I/O error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(event_span(br#"["EVENT", {"a":{}} ]"#), Some(&br#"{"a":{}}"#[..]));
        assert_eq!(
            &replace_event(br#"["EVENT","s",{"b":1}]"#, br#"{"b":1}"#, br#"{ "b" : 1 }"#)[..],
            br#"["EVENT","s",{ "b" : 1 }]"#
        );
        assert_eq!(
            &unescape_sub_id(br#"["EVENT","a\"b",{}]"#).unwrap()[..],
            br#"["EVENT","a"b",{}]"#
        );
        assert_eq!(
            &reserialise(br#"["EVENT","s",{"z":1, "a":2}]"#).unwrap()[..],
            br#"["EVENT","s",{"a":2,"z":1}]"#
        );
        assert_eq!(
            replace_lone_surrogates(br#""\ud800 \ud83e\udd80 \udc00x \ud83e\u0041""#),
            br#""\ufffd \ud83e\udd80 \ufffdx \ufffd\u0041""#.to_vec()
        );
        assert_eq!(
            replace_all(br#"a\u0073"#, br"\u", br"\\u"),
            br#"a\\u0073"#.to_vec()
        );
        assert_eq!(
            &spaced_closed(br#"["CLOSED","s","invalid: x"]"#).unwrap()[..],
            br#"["CLOSED", "s", "invalid: x"]"#
        );
        let mut n: Value = serde_json::from_str("9007199254740993").unwrap();
        as_f64_integer(&mut n);
        assert_eq!(n, Value::from(9007199254740992u64));
        let (_, text) = widen_tags(br#"["EVENT",{"tags":[["t","a","b"]]}]"#).unwrap();
        assert_eq!(text, r#"{"tags":[["t","a","b"],["t","b"]]}"#);
    }

    #[test]
    fn helpers_of_the_issue_16_bugs() {
        assert_eq!(upper_hex_json("\u{1b}<"), "\"\\u001B<\"");
        assert_eq!(
            html_safe_json("\u{1b}<&>\u{2028}"),
            "\"\\u001b\\u003c\\u0026\\u003e\\u2028\""
        );
        assert_eq!(
            &respell_closed_sub_id(b"[\"CLOSED\",\"<\",\"invalid: x\"]", "<", html_safe_json)[..],
            b"[\"CLOSED\",\"\\u003c\",\"invalid: x\"]"
        );
        assert!(has_unsupported_key(
            br##"["REQ","s",{"kinds":"1", "#foo" :["x"]}]"##
        ));
        assert!(has_unsupported_key(br##"["REQ","s",{"#":1}]"##));
        assert!(!has_unsupported_key(br##"["REQ","s",{"#t":["#foo"]}]"##));
        assert!(has_extra_member(br#"["EVENT",{"id":"x","v":1}]"#));
        assert!(!has_extra_member(br#"["EVENT",{"id":"x","kind":1}]"#));
        assert_eq!(
            lenient_json(b"[NaN,-Infinity,\"a\x01\"/* c */,\x0c1,]").unwrap(),
            br#"[0,0,"a\u0001", 1]"#.to_vec()
        );
        assert_eq!(lenient_json(br#"["ok"]"#), None);
        let utf16: Vec<u8> = "[1]".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(lenient_json(&utf16).unwrap(), b"[1]".to_vec());
        assert_eq!(
            first_occurrences(br#"{"kind":1,"kin\u0064":7}"#).unwrap(),
            br#"{"kind":1}"#.to_vec()
        );
        assert_eq!(first_occurrences(br#"{"kind":1}"#), None);
    }
}
