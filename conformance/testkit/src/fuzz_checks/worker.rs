//! The properties checked by the worker fuzz targets (`worker_commands`,
//! `req_filter_parse`).
//!
//! Like `wire.rs`, this file is the single source of the checks: the
//! cargo-fuzz targets call them, and so does the stable regression test
//! `tests/fuzz_corpus_worker.rs`.
//!
//! Every command is applied to two reference workers, one with the indexed
//! matcher and one with the linear oracle, and to a small model of the worker
//! semantics (PROTOCOL.md#worker-semantics) written here from the spec (connections, subscriptions kept as the
//! REQ's JSON filter objects, NIP-01 matching and the access rules over
//! `serde_json` values). The two workers must agree exactly, and both must
//! agree with the model on every frame. The model takes the access rules'
//! kind lists from [`crate::spec_oracle::access`] and the bytes of a
//! delivery from the harness's PROTOCOL.md#sub-id-json-string oracle, never from the worker.

use std::collections::HashMap;

use broadcast_conformance::harness::escape::event_frame_data;
use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};
use broadcast_worker::{IndexMatcher, LinearMatcher, Outcome, Worker, parse_req};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// The spec model.

// The kind lists come from the spec oracle, not from the worker under test.
use crate::spec_oracle::access::{MARMOT_OPEN_KINDS, PRIVILEGED_KINDS};

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// JSON text read as PROTOCOL.md#json-text reads it, with `serde_json`: a
/// number of any magnitude is JSON. serde_json refuses a number beyond the
/// range of a double as out of range; when it does, every number with a
/// fraction, an exponent or more than 20 digits is read as `1.5` instead,
/// which keeps what the model needs of it (a number that is not an
/// integer of the spec's ranges, PROTOCOL.md#integers).
fn spec_json(text: &[u8]) -> serde_json::Result<Value> {
    match serde_json::from_slice::<Value>(text) {
        Err(e) if e.to_string().contains("number out of range") => {
            serde_json::from_slice(&big_numbers_as_1_5(text))
        }
        other => other,
    }
}

fn big_numbers_as_1_5(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'-' || b.is_ascii_digit() {
            let len = text[i..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(text.len() - i);
            let token = &text[i..i + len];
            let digits = token.iter().filter(|c| c.is_ascii_digit()).count();
            if token.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) || digits > 20 {
                out.extend_from_slice(b"1.5");
            } else {
                out.extend_from_slice(token);
            }
            i += len;
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A Bcast's event as the spec describes it, read with `serde_json` alone.
#[derive(Debug)]
struct SpecEvent {
    raw: String,
    id: String,
    pubkey: String,
    created_at: u64,
    kind: u64,
    tags: Vec<Vec<String>>,
}

/// `["EVENT", <event>]` with the field rules of PROTOCOL.md#bcast-event, or why not.
fn spec_event(data: &[u8]) -> Result<SpecEvent, String> {
    let parts: Vec<&RawValue> = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let [head, event] = parts[..] else {
        return Err(format!("{} elements", parts.len()));
    };
    if serde_json::from_str::<String>(head.get()).ok().as_deref() != Some("EVENT") {
        return Err("not EVENT".into());
    }
    let obj: Map<String, Value> = match spec_json(event.get().as_bytes()).map_err(|e| e.to_string())? {
        Value::Object(obj) => obj,
        _ => return Err("the event is not an object".into()),
    };
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .ok_or(format!("{k} is not a string"))
    };
    let int = |k: &str| {
        obj.get(k)
            .and_then(Value::as_u64)
            .ok_or(format!("{k} is not a u64"))
    };
    let (id, pubkey, sig) = (text("id")?, text("pubkey")?, text("sig")?);
    if !is_lower_hex(id, 64) || !is_lower_hex(pubkey, 64) || !is_lower_hex(sig, 128) {
        return Err("id, pubkey or sig is not lowercase hex of the right length".into());
    }
    text("content")?;
    let kind = int("kind")?;
    if kind > 65535 {
        return Err("kind above 65535".into());
    }
    let tags = obj
        .get("tags")
        .and_then(Value::as_array)
        .ok_or("tags is not an array")?
        .iter()
        .map(|t| {
            t.as_array()
                .ok_or("a tag is not an array")?
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_owned)
                        .ok_or("a tag element is not a string")
                })
                .collect::<Result<Vec<String>, _>>()
        })
        .collect::<Result<_, _>>()?;
    Ok(SpecEvent {
        raw: event.get().to_owned(),
        id: id.to_owned(),
        pubkey: pubkey.to_owned(),
        created_at: int("created_at")?,
        kind,
        tags,
    })
}

/// NIP-01 as PROTOCOL.md#filter-matching states it, over a filter object whose field types the
/// worker has already accepted.
fn spec_filter_matches(filter: &Map<String, Value>, ev: &SpecEvent) -> bool {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    filter.iter().all(|(key, value)| match key.as_str() {
        "ids" => list(value).iter().any(|x| x.as_str() == Some(&ev.id)),
        "authors" => list(value).iter().any(|x| x.as_str() == Some(&ev.pubkey)),
        "kinds" => list(value).iter().any(|x| x.as_u64() == Some(ev.kind)),
        "since" => value.as_u64().is_some_and(|s| s <= ev.created_at),
        "until" => value.as_u64().is_some_and(|u| ev.created_at <= u),
        k if k.len() == 2 && k.starts_with('#') => {
            let letter = &k[1..];
            let wanted = list(value);
            ev.tags.iter().any(|t| {
                t.len() >= 2 && t[0] == letter && wanted.iter().any(|w| w.as_str() == Some(t[1].as_str()))
            })
        }
        // limit, search and unknown keys do not restrict live delivery.
        _ => true,
    })
}

/// The access rules (PROTOCOL.md#access-rules) for one connection.
fn spec_allows(flags: BcastFlags, ev: &SpecEvent, conn: &ModelConn) -> bool {
    if conn.whitelisted {
        return true;
    }
    let authed: Vec<String> = conn.authenticated.iter().map(hex::encode).collect();
    let privileged = flags.need_filter()
        && PRIVILEGED_KINDS.contains(&ev.kind)
        && !(flags.marmot_open() && MARMOT_OPEN_KINDS.contains(&ev.kind));
    if privileged {
        let p_values = ev
            .tags
            .iter()
            .filter(|t| t.len() >= 2 && t[0] == "p")
            .map(|t| &t[1]);
        let mut keys = std::iter::once(&ev.pubkey).chain(p_values);
        if !keys.any(|k| authed.contains(k)) {
            return false;
        }
    }
    let protected = flags.nip70_enforce() && ev.tags.iter().any(|t| t.first().is_some_and(|x| x == "-"));
    !(protected && authed.is_empty())
}

/// The filters of a REQ the worker accepted: it must be a JSON array
/// `["REQ", sub_id, {...}, ...]`.
fn accepted_filters(req: &[u8], sub_id: &str) -> Vec<Map<String, Value>> {
    let value: Value = spec_json(req).expect("an accepted REQ is JSON");
    let arr = value.as_array().expect("an accepted REQ is an array");
    assert!(arr.len() >= 3, "an accepted REQ has a filter");
    assert_eq!(arr[0], "REQ");
    assert_eq!(arr[1].as_str(), Some(sub_id), "an accepted REQ names its sub_id");
    arr[2..]
        .iter()
        .map(|f| f.as_object().expect("an accepted filter is an object").clone())
        .collect()
}

#[derive(Debug, Default)]
struct ModelConn {
    whitelisted: bool,
    authenticated: Vec<[u8; 32]>,
    subs: HashMap<String, Vec<Map<String, Value>>>,
}

// ---------------------------------------------------------------------------
// Both workers and the model, command by command.

struct Workers {
    indexed: Worker<IndexMatcher>,
    linear: Worker<LinearMatcher>,
    model: HashMap<i32, ModelConn>,
}

impl Workers {
    fn new() -> Workers {
        Workers {
            indexed: Worker::new(),
            linear: Worker::with_matcher(),
            model: HashMap::new(),
        }
    }

    /// Applies `cmd` (a valid command) everywhere, checks every property,
    /// and returns the worker's outcome and frames.
    fn apply(&mut self, cmd: &SubCommand) -> (Outcome, Vec<BroadcastFrame>) {
        assert_eq!(cmd.validate(), Ok(()), "the driver only sends valid commands");
        let mut out = Vec::new();
        let mut out_linear = Vec::new();
        let outcome = self.indexed.handle(cmd, &mut out);
        let outcome_linear = self.linear.handle(cmd, &mut out_linear);
        assert_eq!(
            outcome, outcome_linear,
            "indexed and linear workers disagree on {cmd:?}"
        );
        if matches!(cmd, SubCommand::Bcast { .. }) {
            // Inside one Bcast the order of frames is not specified.
            assert_eq!(
                sorted(&out),
                sorted(&out_linear),
                "indexed and linear matchers deliver differently"
            );
        } else {
            assert_eq!(out, out_linear, "indexed and linear workers disagree on {cmd:?}");
        }
        for frame in &out {
            assert_eq!(frame.validate(), Ok(()), "invalid output frame {frame:?}");
            let mut bytes = Vec::new();
            frame.encode(&mut bytes);
            assert_eq!(BroadcastFrame::decode(Bytes::from(bytes)).as_ref(), Ok(frame));
            spec_json(&frame.data).expect("every output frame's data is JSON");
        }
        self.check_against_model(cmd, &outcome, &out);
        let subs: usize = self.model.values().map(|c| c.subs.len()).sum();
        for (name, count, conns) in [
            (
                "indexed",
                self.indexed.subscription_count(),
                self.indexed.connection_count(),
            ),
            (
                "linear",
                self.linear.subscription_count(),
                self.linear.connection_count(),
            ),
        ] {
            assert_eq!(
                (count, conns),
                (subs, self.model.len()),
                "{name} worker's registry"
            );
        }
        (outcome, out)
    }

    fn check_against_model(&mut self, cmd: &SubCommand, outcome: &Outcome, out: &[BroadcastFrame]) {
        let known = self.model.contains_key(&cmd.conn());
        let unknown_or = |applied: Outcome| if known { applied } else { Outcome::UnknownConn };
        match cmd {
            SubCommand::New { conn, flags } => {
                assert_eq!(*outcome, Outcome::Applied);
                let fresh = ModelConn {
                    whitelisted: flags.whitelisted(),
                    ..ModelConn::default()
                };
                self.model.insert(*conn, fresh);
            }
            SubCommand::Close { conn, .. } => {
                assert_eq!(*outcome, unknown_or(Outcome::Applied));
                self.model.remove(conn);
            }
            SubCommand::Auth { conn, pubkey, .. } => {
                assert_eq!(*outcome, unknown_or(Outcome::Applied));
                if let Some(c) = self.model.get_mut(conn)
                    && !c.authenticated.contains(pubkey)
                {
                    c.authenticated.push(*pubkey);
                }
            }
            SubCommand::Remove { conn, sub_id, .. } => {
                let removed = self
                    .model
                    .get_mut(conn)
                    .and_then(|c| c.subs.remove(sub_id.as_str()));
                let expected = match (known, removed) {
                    (false, _) => Outcome::UnknownConn,
                    (true, None) => Outcome::UnknownSub,
                    (true, Some(_)) => Outcome::Applied,
                };
                assert_eq!(*outcome, expected);
            }
            SubCommand::Add {
                conn, sub_id, req, ..
            } => {
                let Some(c) = self.model.get_mut(conn) else {
                    assert_eq!(*outcome, Outcome::UnknownConn);
                    assert!(out.is_empty(), "an Add on an unknown conn sends nothing");
                    return;
                };
                match outcome {
                    Outcome::Applied => {
                        assert!(out.is_empty(), "an accepted REQ sends nothing");
                        c.subs
                            .insert(sub_id.to_string(), accepted_filters(req, sub_id.as_str()));
                    }
                    Outcome::Refused(e) => {
                        assert!(matches!(e.prefix(), "invalid" | "unsupported"));
                        let [frame] = out else {
                            panic!("a refused REQ sends one CLOSED frame, got {out:?}")
                        };
                        assert_eq!(frame.conn, *conn);
                        let closed: Value = serde_json::from_slice(&frame.data).unwrap();
                        assert_eq!(
                            closed,
                            serde_json::json!(["CLOSED", sub_id.as_str(), e.to_string()]),
                            "the CLOSED frame"
                        );
                        c.subs.remove(sub_id.as_str());
                    }
                    other => panic!("Add on a known conn gave {other:?}"),
                }
                return;
            }
            SubCommand::Bcast { flags, event, .. } => {
                let expected = match outcome {
                    Outcome::InvalidEvent(_) => Vec::new(),
                    Outcome::Delivered(n) => {
                        assert_eq!(*n, out.len(), "Delivered(n) counts the frames");
                        let ev = spec_event(event)
                            .unwrap_or_else(|why| panic!("the worker accepted an invalid event: {why}"));
                        self.spec_deliveries(*flags, &ev)
                    }
                    other => panic!("Bcast gave {other:?}"),
                };
                assert_eq!(sorted(out), expected, "deliveries differ from the spec model");
                return;
            }
        }
        assert!(out.is_empty(), "{cmd:?} must send nothing, sent {out:?}");
    }

    /// The frames PROTOCOL.md#bcast-delivery says a valid event causes, sorted.
    fn spec_deliveries(&self, flags: BcastFlags, ev: &SpecEvent) -> Vec<(i32, Vec<u8>)> {
        let mut frames = Vec::new();
        for (conn, c) in &self.model {
            if !spec_allows(flags, ev, c) {
                continue;
            }
            for (sub_id, filters) in &c.subs {
                if filters.iter().any(|f| spec_filter_matches(f, ev)) {
                    frames.push((*conn, event_frame_data(sub_id, ev.raw.as_bytes())));
                }
            }
        }
        frames.sort();
        frames
    }
}

fn sorted(frames: &[BroadcastFrame]) -> Vec<(i32, Vec<u8>)> {
    let mut v: Vec<(i32, Vec<u8>)> = frames.iter().map(|f| (f.conn, f.data.to_vec())).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Target 6: worker_commands.

/// At most this many commands per input, to keep every run short.
const MAX_COMMANDS: usize = 256;

/// A connection from one input byte: 16 values, so that commands collide on
/// the same connections; the digits `0`-`9` stand for themselves.
fn conn_of(byte: u8) -> i32 {
    i32::from(byte % 16)
}

/// Parses a worker_commands input into valid commands.
///
/// Records are separated by a 0x00 byte; each starts with a letter. `c` is a
/// connection byte (`conn_of`), `f` a flags byte stored as `'0' + flags`
/// (so `'0'` is 0 and `'1'` whitelisted; the mapping wraps, so every byte is
/// some flags value).
///
/// | record                  | command |
/// |-------------------------|---------|
/// | `N` c \[f\]             | New (flags default 0) |
/// | `C` c                   | Close |
/// | `A` c sub_id 0x01 req   | Add |
/// | `R` c sub_id            | Remove |
/// | `U` c pubkey            | Auth: 64 hex digits, or raw bytes zero-padded to 32 |
/// | `B` c f event           | Bcast from sender c (`-` is −1) |
/// | `X` hex                 | any SubCommand payload, hex-encoded, through the codec |
///
/// Records that do not make a valid command (an empty REQ, a sub_id that
/// is not 1 to 64 bytes of UTF-8, a payload that does not decode, an
/// unknown letter) are skipped, as the worker drops undecodable commands.
pub fn parse_commands(input: &[u8]) -> Vec<SubCommand> {
    input
        .split(|b| *b == 0)
        .filter_map(parse_record)
        .filter(|cmd| cmd.validate().is_ok())
        .take(MAX_COMMANDS)
        .collect()
}

fn parse_record(record: &[u8]) -> Option<SubCommand> {
    let (&letter, rest) = record.split_first()?;
    if letter == b'X' {
        return SubCommand::decode(Bytes::from(hex::decode(rest).ok()?)).ok();
    }
    let (&c, rest) = rest.split_first()?;
    let conn = conn_of(c);
    let sub_id = |bytes: &[u8]| SubId::new(Bytes::copy_from_slice(bytes)).ok();
    Some(match letter {
        b'N' => SubCommand::New {
            conn,
            flags: NewFlags::from_bits(rest.first().map_or(0, |f| flags_of(*f))),
        },
        b'C' => SubCommand::Close {
            conn,
            flags: ReservedFlags::EMPTY,
        },
        b'A' => {
            let split = rest.iter().position(|b| *b == 1).unwrap_or(rest.len());
            SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id(&rest[..split])?,
                req: Bytes::copy_from_slice(rest.get(split + 1..).unwrap_or(&[])),
            }
        }
        b'R' => SubCommand::Remove {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id: sub_id(rest)?,
        },
        b'U' => SubCommand::Auth {
            conn,
            flags: ReservedFlags::EMPTY,
            pubkey: pubkey_of(rest),
        },
        b'B' => {
            let (&flags, event) = rest.split_first()?;
            SubCommand::Bcast {
                sender: if c == b'-' { -1 } else { conn },
                flags: BcastFlags::from_bits(flags_of(flags)),
                event: Bytes::copy_from_slice(event),
            }
        }
        _ => return None,
    })
}

/// A flags byte stored as a character: `'0'` is 0.
fn flags_of(byte: u8) -> u8 {
    byte.wrapping_sub(b'0')
}

fn pubkey_of(bytes: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    match hex::decode(bytes).ok() {
        Some(decoded) if decoded.len() == 32 => key.copy_from_slice(&decoded),
        _ => {
            let n = bytes.len().min(32);
            key[..n].copy_from_slice(&bytes[..n]);
        }
    }
    key
}

/// Arbitrary command sequences through both reference workers: nothing
/// panics, every output frame is a valid BroadcastFrame whose data is JSON,
/// the indexed matcher delivers exactly what the linear one does, and both
/// agree with the spec model (outcomes, CLOSED frames, deliveries with the
/// exact `["EVENT",<sub_id>,<event>]` bytes, access rules, registry sizes).
pub fn check_worker_commands(input: &[u8]) {
    let mut workers = Workers::new();
    for cmd in parse_commands(input) {
        workers.apply(&cmd);
    }
}

// ---------------------------------------------------------------------------
// Target 7: req_filter_parse.

/// The sub_id of the REQ under test: inputs are `["REQ","s",...]`.
pub const REQ_SUB_ID: &str = "s";

const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HEX_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const HEX_1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const HEX_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// The fixed events every accepted REQ is matched against: `(id, pubkey,
/// created_at, kind, tags)`; every one has the same signature.
const FIXED_EVENTS: [(&str, &str, u64, u32, &str); 6] = [
    (
        HEX_1,
        HEX_A,
        1_700_000_000,
        1,
        r#"[["t","nostr"],["p","bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],["e","2222222222222222222222222222222222222222222222222222222222222222"]]"#,
    ),
    (HEX_2, HEX_B, 0, 0, "[]"),
    (
        "3333333333333333333333333333333333333333333333333333333333333333",
        HEX_A,
        1,
        30023,
        r#"[["d","article"],["t","nostr","extra"],["T","Upper"],["t"]]"#,
    ),
    (
        "4444444444444444444444444444444444444444444444444444444444444444",
        HEX_B,
        4_294_967_296,
        65535,
        r#"[["-"],["x","caf\u00e9"],["t","a\"b"]]"#,
    ),
    (
        "5555555555555555555555555555555555555555555555555555555555555555",
        HEX_B,
        1_700_000_001,
        4,
        r#"[["p","aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]]"#,
    ),
    (
        "6666666666666666666666666666666666666666666666666666666666666666",
        HEX_A,
        1_700_000_000,
        10051,
        r#"[["t","nostr"],["-"]]"#,
    ),
];

fn fixed_event_message(i: usize) -> Bytes {
    let (id, pubkey, created_at, kind, tags) = FIXED_EVENTS[i];
    let sig = "7".repeat(128);
    format!(
        r#"["EVENT",{{"id":"{id}","pubkey":"{pubkey}","created_at":{created_at},"kind":{kind},"tags":{tags},"content":"fixed {i}","sig":"{sig}"}}]"#
    )
    .into()
}

/// Whether a REQ's structure is right by PROTOCOL.md#req-parsing, looked at with serde_json
/// alone: an array of `"REQ"`, the sub_id and one or more objects.
fn spec_req_shape_ok(value: &Value, sub_id: &str) -> bool {
    let Some(arr) = value.as_array() else { return false };
    arr.len() >= 3
        && arr[0] == "REQ"
        && arr[1].as_str() == Some(sub_id)
        && arr[2..].iter().all(Value::is_object)
}

/// Arbitrary bytes as the REQ of an Add for sub_id `s`: nothing panics; text
/// that is not JSON, or JSON of the wrong shape, is refused as `invalid`;
/// the outcome of the worker's Add is `parse_req`'s; an accepted REQ has no
/// multi-letter `#` key, and gives the same deliveries in the indexed and
/// linear matchers, and the spec model, on the fixed events (with and
/// without access rules, to a plain, an authenticated and a whitelisted
/// connection).
pub fn check_req_filter_parse(input: &[u8]) {
    let parsed = parse_req(input, REQ_SUB_ID);
    match spec_json(input) {
        Err(_) => assert_eq!(
            parsed.as_ref().map_err(|e| e.prefix()).err(),
            Some("invalid"),
            "text that is not JSON must be refused as invalid"
        ),
        Ok(value) if !spec_req_shape_ok(&value, REQ_SUB_ID) => assert_eq!(
            parsed.as_ref().map_err(|e| e.prefix()).err(),
            Some("invalid"),
            "a REQ of the wrong shape must be refused as invalid"
        ),
        Ok(value) => {
            if let Ok(filters) = &parsed {
                let objects = &value.as_array().unwrap()[2..];
                assert_eq!(filters.len(), objects.len(), "one Filter per filter object");
                for key in objects.iter().flat_map(|o| o.as_object().unwrap().keys()) {
                    let one_letter = key.len() == 2 && key.as_bytes()[1].is_ascii_alphabetic();
                    assert!(
                        !key.starts_with('#') || one_letter,
                        "accepted the tag key {key:?}"
                    );
                }
            }
        }
    }

    let sub_id = SubId::try_from(REQ_SUB_ID).unwrap();
    let mut workers = Workers::new();
    let new = |conn, flags| SubCommand::New { conn, flags };
    workers.apply(&new(1, NewFlags::EMPTY));
    workers.apply(&new(2, NewFlags::EMPTY));
    workers.apply(&new(3, NewFlags::WHITELISTED));
    workers.apply(&SubCommand::Auth {
        conn: 2,
        flags: ReservedFlags::EMPTY,
        pubkey: [0xaa; 32],
    });
    for conn in 1..=3 {
        let add = SubCommand::Add {
            conn,
            flags: ReservedFlags::EMPTY,
            sub_id: sub_id.clone(),
            req: Bytes::copy_from_slice(input),
        };
        if add.validate().is_err() {
            // An empty REQ is not a valid Add command: the codec drops it.
            return;
        }
        let (outcome, _) = workers.apply(&add);
        match (&outcome, &parsed) {
            (Outcome::Applied, Ok(_)) => {}
            (Outcome::Refused(e), Err(p)) => assert_eq!(e, p, "Add and parse_req disagree"),
            _ => panic!("Add gave {outcome:?} but parse_req gave {parsed:?}"),
        }
    }
    if parsed.is_err() {
        return;
    }
    let all_rules = BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE;
    for i in 0..FIXED_EVENTS.len() {
        for flags in [BcastFlags::EMPTY, all_rules] {
            workers.apply(&SubCommand::Bcast {
                sender: -1,
                flags,
                event: fixed_event_message(i),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_a_double_are_json_where_unread() {
        // PROTOCOL.md#json-text: accepted by the worker and by the model.
        let digits = "9".repeat(5000);
        for req in [
            r#"["REQ","s",{"kinds":[1],"x":1e400}]"#.to_string(),
            format!(r#"["REQ","s",{{"search":{digits},"y":"1e400"}}]"#),
        ] {
            check_req_filter_parse(req.as_bytes());
        }
        assert_eq!(
            big_numbers_as_1_5(br#"[1,-2,1e400,"1e400",0.5,123456789012345678901]"#),
            br#"[1,-2,1.5,"1e400",1.5,1.5]"#.to_vec()
        );
        // Read where the spec reads a number, it is still no integer.
        let refused = parse_req(br#"["REQ","s",{"kinds":[1e400]}]"#, REQ_SUB_ID);
        assert_eq!(refused.map_err(|e| e.prefix()).err(), Some("invalid"));
        check_req_filter_parse(br#"["REQ","s",{"kinds":[1e400]}]"#);
    }
}
