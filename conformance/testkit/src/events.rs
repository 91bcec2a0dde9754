//! Helpers shared by the worker tests: events and commands built from
//! readable parts, and a worker wrapper that returns frames as text.
#![allow(dead_code)] // each test binary uses a different subset

use broadcast_conformance::harness::escape::event_frame_data;
use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, ReservedFlags, SubCommand, SubId};
use broadcast_worker::{Matcher, Outcome, Worker};

/// 64 hex digits made of `byte` repeated, e.g. `hex64(0xab)` = "abab...".
pub fn hex64(byte: u8) -> String {
    hex::encode([byte; 32])
}

/// A readable event; `json()` gives the exact object text that is sent.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: String,
    pub pubkey: String,
    pub created_at: u64,
    pub kind: u32,
    pub tags: Vec<Vec<String>>,
    pub content: String,
}

impl Ev {
    pub fn new(id: u8) -> Ev {
        Ev {
            id: hex64(id),
            pubkey: hex64(0xa0),
            created_at: 1_700_000_000,
            kind: 1,
            tags: Vec::new(),
            content: "hello".into(),
        }
    }
    pub fn kind(mut self, kind: u32) -> Ev {
        self.kind = kind;
        self
    }
    pub fn by(mut self, pubkey: &str) -> Ev {
        self.pubkey = pubkey.into();
        self
    }
    pub fn at(mut self, created_at: u64) -> Ev {
        self.created_at = created_at;
        self
    }
    pub fn tag(mut self, tag: &[&str]) -> Ev {
        self.tags.push(tag.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn json(&self) -> String {
        format!(
            r#"{{"id":"{}","pubkey":"{}","created_at":{},"kind":{},"tags":{},"content":{},"sig":"{}"}}"#,
            self.id,
            self.pubkey,
            self.created_at,
            self.kind,
            serde_json::to_string(&self.tags).unwrap(),
            serde_json::to_string(&self.content).unwrap(),
            "5".repeat(128)
        )
    }
    pub fn msg(&self) -> String {
        format!(r#"["EVENT",{}]"#, self.json())
    }
}

pub fn new(conn: i32) -> SubCommand {
    SubCommand::New {
        conn,
        flags: NewFlags::EMPTY,
    }
}

pub fn new_whitelisted(conn: i32) -> SubCommand {
    SubCommand::New {
        conn,
        flags: NewFlags::WHITELISTED,
    }
}

pub fn close(conn: i32) -> SubCommand {
    SubCommand::Close {
        conn,
        flags: ReservedFlags::EMPTY,
    }
}

pub fn sub_id(s: &str) -> SubId {
    SubId::try_from(s).unwrap()
}

/// Add with the REQ written from `sub` and `filters` (a JSON text of
/// comma-separated filter objects).
pub fn req(conn: i32, sub: &str, filters: &str) -> SubCommand {
    let req = format!(r#"["REQ",{},{filters}]"#, serde_json::to_string(sub).unwrap());
    add_raw(conn, sub, req.as_bytes())
}

/// Add with `data` as it is.
pub fn add_raw(conn: i32, sub: &str, data: &[u8]) -> SubCommand {
    SubCommand::Add {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub_id(sub),
        req: bytes::Bytes::copy_from_slice(data),
    }
}

pub fn remove(conn: i32, sub: &str) -> SubCommand {
    SubCommand::Remove {
        conn,
        flags: ReservedFlags::EMPTY,
        sub_id: sub_id(sub),
    }
}

/// An Auth for `conn` with the pubkey spelled as 64 hex digits.
pub fn auth(conn: i32, pubkey_hex: &str) -> SubCommand {
    let mut pubkey = [0u8; 32];
    hex::decode_to_slice(pubkey_hex, &mut pubkey).expect("a pubkey of 64 hex digits");
    SubCommand::Auth {
        conn,
        flags: ReservedFlags::EMPTY,
        pubkey,
    }
}

pub fn bcast(ev: &Ev) -> SubCommand {
    bcast_with(-1, BcastFlags::EMPTY, ev.msg().as_bytes())
}

pub fn bcast_with(sender: i32, flags: BcastFlags, data: &[u8]) -> SubCommand {
    SubCommand::Bcast {
        sender,
        flags,
        event: bytes::Bytes::copy_from_slice(data),
    }
}

/// The `["EVENT",...]` text a subscription named `sub` receives for `ev`,
/// built by the PROTOCOL.md#output-frame/PROTOCOL.md#sub-id-json-string spec oracle (`harness::escape`), never by the
/// worker's own escaping.
pub fn delivery(sub: &str, ev: &Ev) -> String {
    String::from_utf8(event_frame_data(sub, ev.json().as_bytes())).expect("a sub_id and an event are UTF-8")
}

/// A worker that returns each command's frames as (conn, text), sorted
/// (the order inside one Bcast is unspecified).
pub struct W<M: Matcher = broadcast_worker::IndexMatcher> {
    pub worker: Worker<M>,
    pub last: Option<Outcome>,
}

impl Default for W {
    fn default() -> W {
        W::new()
    }
}

impl W {
    pub fn new() -> W {
        W {
            worker: Worker::new(),
            last: None,
        }
    }
}

impl<M: Matcher> W<M> {
    pub fn with_matcher() -> W<M> {
        W {
            worker: Worker::with_matcher(),
            last: None,
        }
    }

    pub fn frames(&mut self, cmd: SubCommand) -> Vec<BroadcastFrame> {
        let mut out = Vec::new();
        self.last = Some(self.worker.handle(&cmd, &mut out));
        out
    }

    pub fn send(&mut self, cmd: SubCommand) -> Vec<(i32, String)> {
        let mut got: Vec<(i32, String)> = self
            .frames(cmd)
            .into_iter()
            .map(|f| (f.conn, String::from_utf8(f.data.to_vec()).unwrap()))
            .collect();
        got.sort();
        got
    }

    /// Sends every command, asserting none of them produces a frame.
    pub fn quiet(&mut self, cmds: impl IntoIterator<Item = SubCommand>) {
        for cmd in cmds {
            let desc = format!("{cmd:?}");
            assert_eq!(self.send(cmd), vec![], "{desc} produced frames");
        }
    }

    /// Sends `ev` (flags 0, sender -1) and returns the sorted deliveries.
    pub fn event(&mut self, ev: &Ev) -> Vec<(i32, String)> {
        self.send(bcast(ev))
    }

    /// The conns that receive `ev` under `flags`, sorted.
    pub fn receivers(&mut self, flags: BcastFlags, ev: &Ev) -> Vec<i32> {
        let mut conns: Vec<i32> = self
            .send(bcast_with(-1, flags, ev.msg().as_bytes()))
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        conns.dedup();
        conns
    }
}

/// Whether a filter (JSON object text) matches `ev`, through a whole worker.
pub fn filter_matches(filter: &str, ev: &Ev) -> bool {
    let mut w = W::new();
    w.quiet([new(1), req(1, "f", filter)]);
    assert_eq!(w.last, Some(Outcome::Applied), "filter {filter} refused");
    match w.event(ev).as_slice() {
        [] => false,
        [(1, text)] => {
            assert_eq!(text, &delivery("f", ev));
            true
        }
        other => panic!("unexpected frames {other:?}"),
    }
}

/// The CLOSED text a refused REQ gives, asserting it went to `conn` 1.
pub fn refusal(data: &[u8]) -> String {
    let mut w = W::new();
    w.quiet([new(1)]);
    let got = w.send(add_raw(1, "s", data));
    assert_eq!(
        got.len(),
        1,
        "expected one CLOSED for {:?}, got {got:?}",
        String::from_utf8_lossy(data)
    );
    assert_eq!(got[0].0, 1);
    got[0].1.clone()
}

/// The prefix of the CLOSED reason for `data` ("invalid", "unsupported").
pub fn refusal_prefix(data: &[u8]) -> String {
    let text = refusal(data);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0], "CLOSED");
    assert_eq!(v[1], "s");
    v[2].as_str().unwrap().split(':').next().unwrap().to_owned()
}
