//! The scenario model (docs/VECTORS.md, "Scenario vectors"): the JSON as it
//! is written ([`raw`]), and the checked, ready-to-run form ([`Case`],
//! [`Step`], [`Expected`]) that [`compile_file`] builds from it.
//!
//! Everything that can be wrong with a scenario file is found here, before
//! any worker starts, and reported as a [`VectorError`] naming the file, the
//! case and the reason, so that a broken vector is a setup error (exit 2) and
//! never a confusing failure charged to the worker.

use std::collections::BTreeMap;
use std::fmt;

use broadcast_wire::{
    BcastFlags, FrameDecoder, Message, NewFlags, Op, PUBKEY_LEN, ReservedFlags, SubCommand, SubId,
};
use bytes::Bytes;

use super::escape::event_frame_data;
use super::probe::PROBE_CONN;

/// The scenario schema this harness writes about and the generator emits.
/// v2 added the `MAY` level and the `fill` form of named events
/// (docs/VECTORS.md, "Schema versioning").
pub const SCENARIO_SCHEMA: &str = "broadcast-wire/scenarios/v2";

/// Every scenario schema this harness reads: v1 files are v2 files that use
/// neither addition.
pub const SCENARIO_SCHEMAS_READ: [&str; 2] = ["broadcast-wire/scenarios/v1", SCENARIO_SCHEMA];

/// A scenario file or case that cannot be run, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorError {
    /// The file (path or embedded name).
    pub file: String,
    /// The case id, when the problem is inside a case.
    pub case: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.case {
            Some(case) => write!(f, "{}: case {case}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for VectorError {}

/// Requirement level of a case (RFC 2119 keyword of the sentence it checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum Level {
    /// Always counts.
    #[serde(rename = "MUST")]
    Must,
    /// Counts only under `--strict`.
    #[serde(rename = "SHOULD")]
    Should,
    /// A permitted behaviour (PROTOCOL.md#implementation-limits): a failure
    /// is reported, never counted, even under `--strict`.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// `"MUST"` or `"SHOULD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a step, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendItem {
    /// A command, framed on channel 1 by the library's encoder.
    Command(SubCommand),
    /// Raw bytes written as they are (`frame_hex`).
    Raw(Bytes),
}

impl SendItem {
    /// The bytes this item puts on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            SendItem::Command(cmd) => {
                let mut buf = Vec::with_capacity(cmd.framed_len());
                cmd.encode_framed(&mut buf);
                buf
            }
            SendItem::Raw(bytes) => bytes.to_vec(),
        }
    }
}

/// One expected output frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A BroadcastFrame to `conn` whose data is exactly `data` (EVENT frames
    /// and the `data`/`data_hex` forms).
    Exact {
        /// Receiving connection.
        conn: i32,
        /// The exact data bytes.
        data: Bytes,
    },
    /// A CLOSED message to `conn` for `sub_id` whose reason starts with
    /// `prefix` followed by `": "`.
    Closed {
        /// Receiving connection.
        conn: i32,
        /// The command's sub_id (decoded text).
        sub_id: String,
        /// `invalid` or `unsupported`.
        prefix: String,
    },
}

impl Expected {
    /// The receiving connection.
    pub fn conn(&self) -> i32 {
        match self {
            Expected::Exact { conn, .. } | Expected::Closed { conn, .. } => *conn,
        }
    }
}

/// How a final step ends: no probe, an exit status instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Close the harness's side of the command stream after the bytes.
    pub close_input: bool,
    /// The exit status the worker must end with.
    pub exit: i32,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The items, in order.
    pub send: Vec<SendItem>,
    /// The frames the step must produce, probe frames left out.
    pub expect: Vec<Expected>,
    /// Compare in order instead of as a multiset.
    pub ordered: bool,
    /// Write the step's bytes in writes of this many bytes.
    pub chunk: Option<usize>,
    /// Sleep between chunks, in milliseconds.
    pub pause_ms: u64,
    /// Present only on a last step that ends the worker.
    pub end: Option<End>,
}

impl Step {
    /// All bytes of the step, concatenated in item order.
    pub fn bytes(&self) -> Vec<u8> {
        self.send.iter().flat_map(SendItem::bytes).collect()
    }
}

/// A runnable case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Stable id, `section/topic/detail`.
    pub id: String,
    /// The file's section (first segment of the id).
    pub section: String,
    /// MUST, SHOULD or MAY.
    pub level: Level,
    /// Section of docs/PROTOCOL.md.
    pub spec: String,
    /// The quoted spec sentence.
    pub requirement: String,
    /// What the case does.
    pub comment: String,
    /// The steps, run in order against one fresh worker.
    pub steps: Vec<Step>,
}

/// A checked scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioFile {
    /// Where it was read from.
    pub file: String,
    /// Section name.
    pub section: String,
    /// Human title.
    pub title: String,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

/// The JSON shapes exactly as docs/VECTORS.md writes them. Unknown fields are
/// refused, so that a misspelt `ordered` or `expect` is a loud vector error
/// instead of a silently weaker check.
pub mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::Level;

    /// A scenario file.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        /// One of [`super::SCENARIO_SCHEMAS_READ`].
        pub schema: String,
        /// Section name; prefix of every case id.
        pub section: String,
        /// Human title.
        #[serde(default)]
        pub title: String,
        /// Named raw events shared by the cases.
        #[serde(default)]
        pub events: BTreeMap<String, EventText>,
        /// The cases.
        pub cases: Vec<Case>,
    }

    /// The raw text of a named event: a JSON string holding the text, or,
    /// for events too large to spell out (the payload-maximum cases), an
    /// object `{"prefix", "fill", "count", "suffix"}` standing for `prefix`,
    /// then `fill` repeated `count` times, then `suffix`
    /// (docs/VECTORS.md, "File").
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EventText(pub String);

    /// The longest event text a scenario may build: twice the default
    /// maximum payload, so a bad `count` is a vector error, not an
    /// allocation failure.
    pub const MAX_EVENT_TEXT: usize = 2 * broadcast_wire::DEFAULT_MAX_PAYLOAD as usize;

    impl<'de> Deserialize<'de> for EventText {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Repeat {
                prefix: String,
                fill: String,
                count: usize,
                suffix: String,
            }
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Form {
                Text(String),
                Repeat(Repeat),
            }
            match Form::deserialize(d)? {
                Form::Text(text) => Ok(EventText(text)),
                Form::Repeat(r) => {
                    let len = r
                        .fill
                        .len()
                        .checked_mul(r.count)
                        .and_then(|n| n.checked_add(r.prefix.len() + r.suffix.len()))
                        .filter(|n| *n <= MAX_EVENT_TEXT)
                        .ok_or_else(|| {
                            serde::de::Error::custom(format_args!(
                                "a repeated event text must be at most {MAX_EVENT_TEXT} bytes"
                            ))
                        })?;
                    let mut text = String::with_capacity(len);
                    text.push_str(&r.prefix);
                    text.push_str(&r.fill.repeat(r.count));
                    text.push_str(&r.suffix);
                    Ok(EventText(text))
                }
            }
        }
    }

    /// A case.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Case {
        /// Stable id.
        pub id: String,
        /// MUST, SHOULD or MAY.
        pub level: Level,
        /// Section of docs/PROTOCOL.md.
        #[serde(default)]
        pub spec: String,
        /// Quoted spec sentence.
        pub requirement: String,
        /// One-line description.
        #[serde(default)]
        pub comment: String,
        /// Case-local named events (override the file's).
        #[serde(default)]
        pub events: BTreeMap<String, EventText>,
        /// The steps.
        pub steps: Vec<Step>,
    }

    /// A step.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Step {
        /// Items to send.
        pub send: Vec<Item>,
        /// Expected frames.
        pub expect: Vec<Expect>,
        /// Ordered comparison.
        #[serde(default)]
        pub ordered: bool,
        /// Write size.
        pub chunk: Option<u64>,
        /// Pause between writes.
        pub pause_ms: Option<u64>,
        /// Expected exit.
        pub end: Option<End>,
    }

    /// The `end` object.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct End {
        /// Close the command stream after the bytes.
        #[serde(default)]
        pub close_input: bool,
        /// Expected exit status.
        pub exit: i64,
    }

    /// A send item: one flat object; which fields are allowed depends on
    /// `op` (checked in [`super::compile_file`], with clear messages).
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Item {
        /// Raw bytes.
        pub frame_hex: Option<String>,
        /// Command op name.
        pub op: Option<String>,
        /// Connection (New, Close, Add, Remove, Auth).
        pub conn: Option<i64>,
        /// Publishing connection (Bcast).
        pub sender: Option<i64>,
        /// Raw flags byte.
        pub flags: Option<i64>,
        /// Subscription id (Add, Remove).
        pub sub_id: Option<String>,
        /// REQ as JSON, sent compact.
        pub req: Option<Box<RawValue>>,
        /// REQ text, sent exactly.
        pub req_raw: Option<String>,
        /// Auth pubkey, 64 hex.
        pub pubkey: Option<String>,
        /// Named event (Bcast).
        pub event: Option<String>,
        /// Inline raw event object (Bcast).
        pub event_raw: Option<String>,
        /// Exact Bcast data text.
        pub data_raw: Option<String>,
        /// Exact data bytes, overriding the rest.
        pub data_hex: Option<String>,
    }

    /// An expected frame.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Expect {
        /// Receiving connection.
        pub conn: i64,
        /// An EVENT delivery.
        pub event: Option<ExpectEvent>,
        /// Exact data as text.
        pub data: Option<String>,
        /// Exact data as hex.
        pub data_hex: Option<String>,
        /// A CLOSED message.
        pub closed: Option<ExpectClosed>,
    }

    /// `expect[].event`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ExpectEvent {
        /// The subscription.
        pub sub_id: String,
        /// Named event.
        pub event: Option<String>,
        /// Inline raw event.
        pub event_raw: Option<String>,
    }

    /// `expect[].closed`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ExpectClosed {
        /// The command's sub_id.
        pub sub_id: String,
        /// `invalid` or `unsupported`.
        pub prefix: String,
    }
}

/// Parses and checks one scenario file's text.
pub fn compile_file(file: &str, text: &str) -> Result<ScenarioFile, VectorError> {
    let file_err = |reason: String| VectorError {
        file: file.to_string(),
        case: None,
        reason,
    };
    let raw: raw::File =
        serde_json::from_str(text).map_err(|e| file_err(format!("not a valid scenario file: {e}")))?;
    if !SCENARIO_SCHEMAS_READ.contains(&raw.schema.as_str()) {
        return Err(file_err(format!(
            "unknown schema {:?} (this harness understands {SCENARIO_SCHEMAS_READ:?})",
            raw.schema
        )));
    }
    if raw.section.is_empty() || raw.section.contains('/') {
        return Err(file_err(format!(
            "section {:?} must be one non-empty path segment",
            raw.section
        )));
    }
    let mut cases = Vec::with_capacity(raw.cases.len());
    for case in raw.cases {
        let id = case.id.clone();
        let compiled = compile_case(&raw.section, &raw.events, case).map_err(|reason| VectorError {
            file: file.to_string(),
            case: Some(id),
            reason,
        })?;
        cases.push(compiled);
    }
    Ok(ScenarioFile {
        file: file.to_string(),
        section: raw.section,
        title: raw.title,
        cases,
    })
}

fn compile_case(
    section: &str,
    file_events: &BTreeMap<String, raw::EventText>,
    case: raw::Case,
) -> Result<Case, String> {
    let prefix = format!("{section}/");
    if !case.id.starts_with(&prefix) || case.id.len() == prefix.len() {
        return Err(format!("the id must start with the file's section, {prefix:?}"));
    }
    if case.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the id must not contain whitespace or control characters".into());
    }
    if case.steps.is_empty() {
        return Err("a case needs at least one step".into());
    }
    let events = Events {
        case: &case.events,
        file: file_events,
    };
    let last = case.steps.len() - 1;
    let mut steps = Vec::with_capacity(case.steps.len());
    for (index, step) in case.steps.into_iter().enumerate() {
        let compiled =
            compile_step(&events, step, index == last).map_err(|e| format!("step {}: {e}", index + 1))?;
        steps.push(compiled);
    }
    Ok(Case {
        id: case.id,
        section: section.to_string(),
        level: case.level,
        spec: case.spec,
        requirement: case.requirement,
        comment: case.comment,
        steps,
    })
}

/// Named events visible to a case: its own first, then the file's.
struct Events<'a> {
    case: &'a BTreeMap<String, raw::EventText>,
    file: &'a BTreeMap<String, raw::EventText>,
}

impl Events<'_> {
    fn get(&self, name: &str) -> Result<&str, String> {
        self.case
            .get(name)
            .or_else(|| self.file.get(name))
            .map(|e| e.0.as_str())
            .ok_or_else(|| format!("no event named {name:?} in the case's or the file's `events`"))
    }
}

fn compile_step(events: &Events<'_>, step: raw::Step, is_last: bool) -> Result<Step, String> {
    let send = step
        .send
        .into_iter()
        .enumerate()
        .map(|(i, item)| compile_item(events, item).map_err(|e| format!("send[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let expect = step
        .expect
        .into_iter()
        .enumerate()
        .map(|(i, e)| compile_expect(events, e).map_err(|e| format!("expect[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let chunk = match step.chunk {
        None => None,
        Some(0) => return Err("`chunk` must be at least 1".into()),
        Some(n) => Some(usize::try_from(n).map_err(|_| "`chunk` is too large".to_string())?),
    };
    let end = match step.end {
        None => None,
        Some(_) if !is_last => return Err("`end` is allowed only on the last step".into()),
        Some(end) => {
            let exit = i32::try_from(end.exit)
                .ok()
                .filter(|e| (0..=255).contains(e))
                .ok_or_else(|| format!("`end.exit` {} is not an exit status (0-255)", end.exit))?;
            Some(End {
                close_input: end.close_input,
                exit,
            })
        }
    };
    let step = Step {
        send,
        expect,
        ordered: step.ordered,
        chunk,
        pause_ms: step.pause_ms.unwrap_or(0),
        end,
    };
    if step.end.is_none() {
        // The probe Bcast follows the step's bytes; if they ended inside a
        // frame, the probe would be swallowed into it and the step would
        // hang for a reason that is the vector's fault, not the worker's.
        check_frame_boundary(&step.bytes())?;
    }
    Ok(step)
}

fn check_frame_boundary(bytes: &[u8]) -> Result<(), String> {
    let mut decoder = FrameDecoder::new();
    decoder.feed(bytes);
    loop {
        match decoder.decode() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "the step's bytes hold a fatal framing error ({}) but the step has no `end`",
                    e.class()
                ));
            }
        }
    }
    if decoder.at_boundary() {
        Ok(())
    } else {
        Err("the step's bytes do not end on a frame boundary, so the probe that follows would be merged into them; \
             only a last step with `end` may leave a frame unfinished"
            .into())
    }
}

/// Which fields each op accepts besides `op`, `flags` and `data_hex`.
fn allowed_fields(op: Op) -> &'static [&'static str] {
    match op {
        Op::New | Op::Close => &["conn"],
        Op::Add => &["conn", "sub_id", "req", "req_raw"],
        Op::Remove => &["conn", "sub_id"],
        Op::Auth => &["conn", "pubkey"],
        Op::Bcast => &["sender", "event", "event_raw", "data_raw"],
    }
}

fn present_fields(item: &raw::Item) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut note = |present: bool, name: &'static str| {
        if present {
            fields.push(name);
        }
    };
    note(item.conn.is_some(), "conn");
    note(item.sender.is_some(), "sender");
    note(item.sub_id.is_some(), "sub_id");
    note(item.req.is_some(), "req");
    note(item.req_raw.is_some(), "req_raw");
    note(item.pubkey.is_some(), "pubkey");
    note(item.event.is_some(), "event");
    note(item.event_raw.is_some(), "event_raw");
    note(item.data_raw.is_some(), "data_raw");
    fields
}

fn compile_item(events: &Events<'_>, item: raw::Item) -> Result<SendItem, String> {
    if let Some(hex_text) = &item.frame_hex {
        if item.op.is_some()
            || !present_fields(&item).is_empty()
            || item.flags.is_some()
            || item.data_hex.is_some()
        {
            return Err("`frame_hex` stands alone: no other field is allowed with it".into());
        }
        return Ok(SendItem::Raw(parse_hex(hex_text, "frame_hex")?.into()));
    }
    let op_name = item.op.as_deref().ok_or("an item needs `op` or `frame_hex`")?;
    let op = Op::from_name(op_name).ok_or_else(|| format!("unknown op {op_name:?}"))?;
    let allowed = allowed_fields(op);
    if let Some(bad) = present_fields(&item).into_iter().find(|f| !allowed.contains(f)) {
        return Err(format!("field `{bad}` is not allowed for op {op_name:?}"));
    }
    let flags = match item.flags {
        None => 0u8,
        Some(f) => u8::try_from(f).map_err(|_| format!("`flags` {f} is not a byte (0-255)"))?,
    };
    let data_hex = item
        .data_hex
        .as_deref()
        .map(|h| parse_hex(h, "data_hex"))
        .transpose()?;
    let conn = |value: Option<i64>, name: &str| -> Result<i32, String> {
        let v = value.ok_or_else(|| format!("op {op_name:?} needs `{name}`"))?;
        let v = i32::try_from(v).map_err(|_| format!("`{name}` {v} is outside the i32 range"))?;
        if v == PROBE_CONN {
            return Err(format!(
                "`{name}` {PROBE_CONN} is the probe connection, which scenarios must not use"
            ));
        }
        Ok(v)
    };
    let sub_id = || -> Result<SubId, String> {
        let s = item
            .sub_id
            .as_deref()
            .ok_or_else(|| format!("op {op_name:?} needs `sub_id`"))?;
        SubId::try_from(s).map_err(|p| {
            format!("`sub_id` {s:?} cannot be encoded as a valid command ({p:?}); use `frame_hex` for invalid payloads")
        })
    };
    let cannot_carry = |what: &str| {
        format!(
            "op {op_name:?} cannot carry {what}; a payload that breaks the codec rules must be sent with `frame_hex`"
        )
    };
    let cmd = match op {
        Op::New => {
            if data_hex.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(cannot_carry("data"));
            }
            SubCommand::New {
                conn: conn(item.conn, "conn")?,
                flags: NewFlags::from_bits(flags),
            }
        }
        Op::Close => {
            if data_hex.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(cannot_carry("data"));
            }
            SubCommand::Close {
                conn: conn(item.conn, "conn")?,
                flags: ReservedFlags::from_bits(flags),
            }
        }
        Op::Remove => {
            if data_hex.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(cannot_carry("data"));
            }
            SubCommand::Remove {
                conn: conn(item.conn, "conn")?,
                flags: ReservedFlags::from_bits(flags),
                sub_id: sub_id()?,
            }
        }
        Op::Add => {
            let req: Vec<u8> = match (data_hex, &item.req, &item.req_raw) {
                (Some(d), _, _) => d,
                (None, Some(json), None) => compact_json(json.get()).into_bytes(),
                (None, None, Some(text)) => text.as_bytes().to_vec(),
                (None, None, None) => {
                    return Err("op \"add\" needs one of `req`, `req_raw`, `data_hex`".into());
                }
                (None, Some(_), Some(_)) => return Err("give either `req` or `req_raw`, not both".into()),
            };
            if req.is_empty() {
                return Err(cannot_carry("empty data"));
            }
            SubCommand::Add {
                conn: conn(item.conn, "conn")?,
                flags: ReservedFlags::from_bits(flags),
                sub_id: sub_id()?,
                req: req.into(),
            }
        }
        Op::Auth => {
            let key = match (data_hex, &item.pubkey) {
                (Some(d), _) => d,
                (None, Some(h)) => parse_hex(h, "pubkey")?,
                (None, None) => return Err("op \"auth\" needs `pubkey` (64 hex digits)".into()),
            };
            let pubkey: [u8; PUBKEY_LEN] = key
                .as_slice()
                .try_into()
                .map_err(|_| cannot_carry(&format!("a pubkey of {} bytes (it must be 32)", key.len())))?;
            SubCommand::Auth {
                conn: conn(item.conn, "conn")?,
                flags: ReservedFlags::from_bits(flags),
                pubkey,
            }
        }
        Op::Bcast => {
            let given = [
                item.event.is_some(),
                item.event_raw.is_some(),
                item.data_raw.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if given > 1 {
                return Err("give only one of `event`, `event_raw`, `data_raw`".into());
            }
            let data: Vec<u8> = if let Some(d) = data_hex {
                d
            } else if let Some(name) = &item.event {
                event_message(events.get(name)?.as_bytes())
            } else if let Some(raw) = &item.event_raw {
                event_message(raw.as_bytes())
            } else if let Some(text) = &item.data_raw {
                text.as_bytes().to_vec()
            } else {
                return Err("op \"bcast\" needs one of `event`, `event_raw`, `data_raw`, `data_hex`".into());
            };
            if data.is_empty() {
                return Err(cannot_carry("empty data"));
            }
            SubCommand::Bcast {
                sender: conn(item.sender, "sender")?,
                flags: BcastFlags::from_bits(flags),
                event: data.into(),
            }
        }
    };
    // The remaining codec rules (conn ranges): a scenario command is meant to
    // decode; an invalid payload belongs in `frame_hex`, where it is explicit.
    cmd.validate().map_err(|e| {
        format!(
            "the command would not decode ({}: {e}); send invalid payloads with `frame_hex`",
            e.class()
        )
    })?;
    Ok(SendItem::Command(cmd))
}

/// `["EVENT",` + the event's raw bytes + `]` (docs/VECTORS.md, Bcast item).
fn event_message(event: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(event.len() + 10);
    data.extend_from_slice(b"[\"EVENT\",");
    data.extend_from_slice(event);
    data.push(b']');
    data
}

fn compile_expect(events: &Events<'_>, e: raw::Expect) -> Result<Expected, String> {
    let conn = i32::try_from(e.conn).map_err(|_| format!("`conn` {} is outside the i32 range", e.conn))?;
    if conn < 0 {
        return Err(format!("`conn` {conn}: an output frame's conn is never negative"));
    }
    if conn == PROBE_CONN {
        return Err(format!(
            "`conn` {PROBE_CONN} is the probe connection; probe frames are never expected"
        ));
    }
    let forms = [
        e.event.is_some(),
        e.data.is_some(),
        e.data_hex.is_some(),
        e.closed.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if forms != 1 {
        return Err("an expected frame has exactly one of `event`, `data`, `data_hex`, `closed`".into());
    }
    let exact = |data: Vec<u8>| -> Result<Expected, String> {
        if data.is_empty() {
            return Err("expected data is empty, which no valid BroadcastFrame carries".into());
        }
        Ok(Expected::Exact {
            conn,
            data: data.into(),
        })
    };
    if let Some(ev) = e.event {
        let raw = match (&ev.event, &ev.event_raw) {
            (Some(name), None) => events.get(name)?,
            (None, Some(raw)) => raw.as_str(),
            _ => return Err("`event` needs exactly one of `event`, `event_raw`".into()),
        };
        if ev.sub_id.is_empty() {
            return Err("`event.sub_id` is empty".into());
        }
        return exact(event_frame_data(&ev.sub_id, raw.as_bytes()));
    }
    if let Some(text) = e.data {
        return exact(text.into_bytes());
    }
    if let Some(h) = e.data_hex {
        return exact(parse_hex(&h, "data_hex")?);
    }
    let closed = e.closed.ok_or("unreachable: one form is present")?;
    if closed.prefix.is_empty() {
        return Err("`closed.prefix` is empty".into());
    }
    Ok(Expected::Closed {
        conn,
        sub_id: closed.sub_id,
        prefix: closed.prefix,
    })
}

fn parse_hex(text: &str, field: &str) -> Result<Vec<u8>, String> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("`{field}` must be lowercase hex"));
    }
    hex::decode(text).map_err(|e| format!("`{field}` is not hex: {e}"))
}

/// Removes the whitespace outside strings from JSON text, keeping everything
/// else (key order, escapes, number spelling) exactly as the author wrote it.
/// This is "`req` written as compact JSON" without a parse/serialise round
/// trip, which would reorder keys or rewrite escapes.
pub fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(cases: &str) -> String {
        format!(
            r#"{{"schema":"broadcast-wire/scenarios/v1","section":"t","title":"T",
               "events":{{"e1":"{{\"id\":\"x\"}}"}},"cases":[{cases}]}}"#
        )
    }

    fn one_case(steps: &str) -> String {
        file(&format!(
            r#"{{"id":"t/a/1","level":"MUST","spec":"PROTOCOL.md#worker-semantics","requirement":"r","comment":"c","steps":[{steps}]}}"#
        ))
    }

    #[test]
    fn schemas_v1_and_v2_are_read_and_others_refused() {
        let case = r#"{"id":"t/a/1","level":"MUST","requirement":"r","steps":[{"send":[],"expect":[]}]}"#;
        for (schema, ok) in [
            ("broadcast-wire/scenarios/v1", true),
            ("broadcast-wire/scenarios/v2", true),
            ("broadcast-wire/scenarios/v3", false),
        ] {
            let text = format!(r#"{{"schema":"{schema}","section":"t","cases":[{case}]}}"#);
            assert_eq!(compile_file("t.json", &text).is_ok(), ok, "{schema}");
        }
    }

    #[test]
    fn repeated_event_texts_expand_within_a_bound() {
        let text: raw::EventText =
            serde_json::from_str(r#"{"prefix":"{","fill":"ab","count":3,"suffix":"}"}"#).unwrap();
        assert_eq!(text.0, "{ababab}");
        let plain: raw::EventText = serde_json::from_str(r#""{}""#).unwrap();
        assert_eq!(plain.0, "{}");
        let huge = format!(
            r#"{{"prefix":"","fill":"ab","count":{},"suffix":""}}"#,
            raw::MAX_EVENT_TEXT
        );
        assert!(serde_json::from_str::<raw::EventText>(&huge).is_err());
        let overflow = format!(
            r#"{{"prefix":"","fill":"ab","count":{},"suffix":""}}"#,
            usize::MAX
        );
        assert!(serde_json::from_str::<raw::EventText>(&overflow).is_err());
        assert!(serde_json::from_str::<raw::EventText>(r#"{"fill":"a","count":1}"#).is_err());
    }

    #[test]
    fn compact_keeps_strings_and_order() {
        assert_eq!(
            compact_json("[ \"REQ\", \"a b\" , {\"z\": 1, \"a\" : [\"\\\" x\"]} ]"),
            r#"["REQ","a b",{"z":1,"a":["\" x"]}]"#
        );
    }

    #[test]
    fn builds_commands_and_expected_frames() {
        let f = compile_file(
            "x.json",
            &one_case(
                r#"{"send":[{"op":"new","conn":1},
                           {"op":"add","conn":1,"sub_id":"s","req":["REQ", "s", {"kinds": [1]}]},
                           {"op":"bcast","sender":-1,"flags":5,"event":"e1"}],
                   "expect":[{"conn":1,"event":{"sub_id":"s\"","event":"e1"}},
                             {"conn":1,"closed":{"sub_id":"s","prefix":"invalid"}}]}"#,
            ),
        )
        .unwrap();
        let step = &f.cases[0].steps[0];
        assert_eq!(
            step.send[1],
            SendItem::Command(SubCommand::Add {
                conn: 1,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from("s").unwrap(),
                req: Bytes::from_static(br#"["REQ","s",{"kinds":[1]}]"#),
            })
        );
        assert_eq!(
            step.send[2],
            SendItem::Command(SubCommand::Bcast {
                sender: -1,
                flags: BcastFlags::from_bits(5),
                event: Bytes::from_static(br#"["EVENT",{"id":"x"}]"#),
            })
        );
        assert_eq!(
            step.expect[0],
            Expected::Exact {
                conn: 1,
                data: Bytes::from_static(br#"["EVENT","s\"",{"id":"x"}]"#)
            }
        );
    }

    fn err(text: &str) -> String {
        compile_file("bad.json", text).unwrap_err().to_string()
    }

    #[test]
    fn refuses_bad_vectors_with_reasons() {
        assert!(err("{").contains("bad.json: not a valid scenario file"));
        assert!(
            err(&one_case(r#"{"send":[],"expect":[],"orderd":true}"#)).contains("unknown field `orderd`")
        );
        assert!(err(&one_case(r#"{"send":[{"op":"nope","conn":1}],"expect":[]}"#)).contains("unknown op"));
        assert!(
            err(&one_case(
                r#"{"send":[{"op":"new","conn":2147483647}],"expect":[]}"#
            ))
            .contains("probe")
        );
        assert!(err(&one_case(r#"{"send":[{"frame_hex":"0101"}],"expect":[]}"#)).contains("frame boundary"));
        assert!(
            err(&one_case(
                r#"{"send":[{"op":"bcast","sender":1,"event":"zz"}],"expect":[]}"#
            ))
            .contains("no event named")
        );
        assert!(err(&one_case(r#"{"send":[{"op":"new","conn":-3}],"expect":[]}"#)).contains("invalid_conn"));
        assert!(
            err(&one_case(
                r#"{"send":[],"expect":[],"end":{"exit":0}},{"send":[],"expect":[]}"#
            ))
            .contains("step 1: `end` is allowed only on the last step")
        );
        assert!(
            err(&file(
                r#"{"id":"other/x","level":"MUST","requirement":"r","steps":[]}"#
            ))
            .contains("section")
        );
        assert!(
            err(&one_case(
                r#"{"send":[{"op":"auth","conn":1,"pubkey":"00"}],"expect":[]}"#
            ))
            .contains("32")
        );
    }

    #[test]
    fn end_step_may_leave_a_frame_unfinished() {
        let f = compile_file(
            "x.json",
            &one_case(r#"{"send":[{"frame_hex":"01ff"}],"expect":[],"end":{"close_input":true,"exit":2}}"#),
        )
        .unwrap();
        assert_eq!(
            f.cases[0].steps[0].end,
            Some(End {
                close_input: true,
                exit: 2
            })
        );
    }
}
