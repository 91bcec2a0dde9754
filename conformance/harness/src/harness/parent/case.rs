//! The parent vectors (docs/VECTORS.md, "Parent vectors", schema
//! `broadcast-wire/parent/v1`): the JSON as written, checked and compiled
//! into [`ParentCase`]s before any adapter starts, so that a broken vector
//! is a setup error naming the file, the case and the reason.

use std::collections::{BTreeSet, HashSet};

use broadcast_wire::{FrameDecoder, Message, Op, SubCommand};
use serde_json::{Map, Value};

use crate::harness::outcome::CaseInfo;
use crate::harness::scenario::{Level, VectorError};
use crate::harness::vectors_source::{LoadError, VectorSource, load_sections};

/// The schema string of a parent vector file.
pub const PARENT_SCHEMA: &str = "broadcast-wire/parent/v1";

/// The longest text a `fill` object may expand to (as in the scenarios).
const MAX_FILL: usize = 32 * 1024 * 1024;

/// A text that is either written out or made of a repeated character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// The text itself.
    Plain(String),
    /// `prefix`, then `fill` `count` times, then `suffix`.
    Fill {
        /// Before the fill.
        prefix: String,
        /// The repeated text.
        fill: String,
        /// How many times.
        count: usize,
        /// After the fill.
        suffix: String,
    },
}

impl Text {
    /// The text, with `{i}` replaced by the repetition index (six digits,
    /// zero-padded) when `i` is given.
    pub fn expand(&self, i: Option<usize>) -> String {
        let whole = match self {
            Text::Plain(s) => s.clone(),
            Text::Fill {
                prefix,
                fill,
                count,
                suffix,
            } => {
                let mut s = String::with_capacity(prefix.len() + fill.len() * count + suffix.len());
                s.push_str(prefix);
                for _ in 0..*count {
                    s.push_str(fill);
                }
                s.push_str(suffix);
                s
            }
        };
        substitute(&whole, i)
    }

    /// The expanded length in bytes (without `{i}` substitution).
    fn len(&self) -> usize {
        match self {
            Text::Plain(s) => s.len(),
            Text::Fill {
                prefix,
                fill,
                count,
                suffix,
            } => prefix.len() + fill.len() * count + suffix.len(),
        }
    }
}

/// `{i}` in `text` replaced by `i` as six zero-padded digits.
///
/// ```
/// use broadcast_conformance::harness::parent::case::substitute;
/// assert_eq!(substitute("e-{i}", Some(7)), "e-000007");
/// assert_eq!(substitute("e-{i}", None), "e-{i}");
/// ```
pub fn substitute(text: &str, i: Option<usize>) -> String {
    match i {
        Some(i) if text.contains("{i}") => text.replace("{i}", &format!("{i:06}")),
        _ => text.to_string(),
    }
}

/// What answer an action must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `ok`: the command is accepted and must reach the worker.
    Ok,
    /// `refused`: nothing of it may reach the worker.
    Refused,
    /// Either; what follows depends on which.
    Any,
}

/// One piece of a byte template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The conn of this client, as an i32 little-endian.
    Conn(String),
    /// The action's data (its `req` or `event`), as UTF-8 bytes.
    Data,
}

/// A command frame the parent must write, with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdTemplate {
    /// The op.
    pub op: Op,
    /// The client its conn (Bcast: its sender) names; `None` for a Bcast
    /// from no connection (−1).
    pub client: Option<String>,
    /// The frame, header included.
    pub pieces: Vec<Piece>,
}

impl CmdTemplate {
    /// The frame's bytes, with each client's conn from `conn_of` and the
    /// action's `data`; `None` if a client has no conn yet.
    pub fn render(&self, conn_of: &dyn Fn(&str) -> Option<i32>, data: &[u8]) -> Option<Vec<u8>> {
        render(&self.pieces, conn_of, data)
    }
}

fn render(pieces: &[Piece], conn_of: &dyn Fn(&str) -> Option<i32>, data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Conn(c) => out.extend_from_slice(&conn_of(c)?.to_le_bytes()),
            Piece::Data => out.extend_from_slice(data),
        }
    }
    Some(out)
}

/// A relay action (a line of the adapter contract, without `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    /// `connect`, `disconnect`, `subscribe`, `unsubscribe`, `auth`, `fanout`.
    pub action: String,
    /// The other fields as they are sent; string values may hold `{i}`.
    pub fields: Map<String, Value>,
    /// The client the action is about (`from` for a fanout).
    pub client: Option<String>,
    /// `req` (subscribe) or `event` (fanout), sent as a JSON string.
    pub data: Option<Text>,
    /// The answer it must get.
    pub answer: Answer,
    /// The commands the parent must write for it when it accepts it.
    pub commands: Vec<CmdTemplate>,
    /// How many times it is sent (`{i}` counts 0, 1, ...).
    pub repeat: usize,
    /// A name for `ok_of` deliveries.
    pub label: Option<String>,
}

impl Act {
    /// The action line for `seq` and repetition `i`.
    pub fn line(&self, seq: u64, i: Option<usize>) -> String {
        let mut obj = Map::new();
        obj.insert("seq".into(), Value::from(seq));
        obj.insert("action".into(), Value::from(self.action.clone()));
        for (k, v) in &self.fields {
            obj.insert(k.clone(), substitute_value(v, i));
        }
        if let Some(data) = &self.data {
            let key = if self.action == "subscribe" {
                "req"
            } else {
                "event"
            };
            obj.insert(key.into(), Value::String(data.expand(i)));
        }
        Value::Object(obj).to_string()
    }
}

fn substitute_value(v: &Value, i: Option<usize>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, i)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute_value(x, i)).collect()),
        other => other.clone(),
    }
}

/// Which conn an injected frame names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnRef {
    /// The conn of this client (its current one, or its last one once it
    /// has disconnected).
    Client(String),
    /// A conn that no New of the parent has named.
    Unused,
    /// This value.
    Value(i32),
}

/// One part of an injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Raw bytes; `${client}` stands for the client's conn.
    Hex(Vec<Piece>),
    /// One channel-2 frame.
    Frame {
        /// Its conn.
        conn: ConnRef,
        /// Its data.
        data: Vec<u8>,
    },
    /// `count` channel-2 frames, data `data` with `{i}` = 0, 1, ...
    Burst {
        /// Their conn.
        conn: ConnRef,
        /// How many.
        count: usize,
        /// The data, with `{i}`.
        data: String,
    },
}

/// How the injected bytes are cut into writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// One write.
    None,
    /// The whole stream once per split point: in one write, then for every
    /// k from 1 to its length − 1, the first k bytes and the rest in two
    /// writes, with a `sync` round trip between them.
    Every,
    /// One byte per write, a `sync` round trip between writes.
    Bytes,
    /// Cut at these offsets, a `sync` round trip between writes.
    At(Vec<usize>),
}

/// Which workers receive an injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The worker that got this client's New.
    Client(String),
    /// Every worker.
    All,
}

/// Bytes the harness writes as the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    /// Where.
    pub via: Via,
    /// What, in order.
    pub items: Vec<Item>,
    /// How it is cut.
    pub split: Split,
    /// Close the worker's output after the bytes (the stand-in stays).
    pub close_output: bool,
    /// Then exit with this status (after `close_output`, if any).
    pub exit: Option<u8>,
}

/// What the stand-ins (every worker) are told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerOp {
    /// Stop reading the parent's commands.
    Pause,
    /// Read them again.
    Resume,
    /// Hold the frames for this client's conn until its Close is processed.
    Hold(String),
    /// Write the held frames now.
    Release,
    /// Close the output (the parent sees its end).
    CloseOutput,
    /// Close the input (the parent's writes fail).
    CloseInput,
    /// `SIGKILL`.
    Kill,
    /// Exit with this status.
    Exit(u8),
}

/// Expected deliveries to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliv {
    /// One frame with these data bytes.
    Data(Vec<u8>),
    /// `count` frames, data with `{i}` = 0, 1, ...
    Burst {
        /// How many.
        count: usize,
        /// The data, with `{i}`.
        data: String,
    },
    /// One frame per repetition of the action labelled `label` that was
    /// answered `ok`, in order; data with `{i}` = that repetition's index.
    /// With `if_ok`, only if the action labelled so was accepted too.
    OkOf {
        /// The label.
        label: String,
        /// The data, with `{i}`.
        data: Text,
        /// Another label whose action must have been accepted.
        if_ok: Option<String>,
    },
    /// `each`, `count` times over.
    Repeat {
        /// How many times.
        count: usize,
        /// The sequence.
        each: Vec<Deliv>,
    },
}

impl Deliv {
    /// The frames' data bytes, in order. `ok_reps(label)` lists the
    /// repetition indexes of that action that were accepted.
    pub fn expand(&self, ok_reps: &dyn Fn(&str) -> Vec<usize>, out: &mut Vec<Vec<u8>>) {
        match self {
            Deliv::Data(d) => out.push(d.clone()),
            Deliv::Burst { count, data } => {
                out.extend((0..*count).map(|i| substitute(data, Some(i)).into_bytes()));
            }
            Deliv::OkOf { label, data, if_ok } => {
                if if_ok.as_ref().is_none_or(|l| !ok_reps(l).is_empty()) {
                    out.extend(
                        ok_reps(label)
                            .into_iter()
                            .map(|i| data.expand(Some(i)).into_bytes()),
                    );
                }
            }
            Deliv::Repeat { count, each } => {
                for _ in 0..*count {
                    for d in each {
                        d.expand(ok_reps, out);
                    }
                }
            }
        }
    }
}

/// The status a `worker_gone` must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusExp {
    /// This exit code, or `null` (not known yet, as the contract allows).
    Code(i64),
    /// `null` (killed by a signal, say).
    Null,
    /// Anything.
    Any,
}

/// The `worker_gone` a check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    /// The `fatal` flag.
    pub fatal: bool,
    /// The status.
    pub status: StatusExp,
}

/// A barrier with expectations (see docs/VECTORS.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Check {
    /// Per client, every frame delivered since the previous check, in
    /// order; clients not named must get nothing.
    pub deliveries: Vec<(String, Vec<Deliv>)>,
    /// The worker_gone that must have come (none may, without it).
    pub gone: Option<Gone>,
    /// Every stand-in must have been reaped by the parent.
    pub reaped: bool,
    /// These clients must have had different conns (the SHOULD of never
    /// reusing a conn).
    pub distinct_conns: Vec<String>,
}

/// One step of a parent case.
#[derive(Debug, Clone, PartialEq)]
pub enum PStep {
    /// Send an action (or `repeat` of them), without waiting.
    Act(Act),
    /// Write bytes as the worker.
    Inject(Inject),
    /// Tell the stand-ins something.
    Worker(WorkerOp),
    /// Wait for these deliveries (no barrier, no negative check).
    Await(Vec<(String, Vec<Deliv>)>),
    /// Wait until every action sent is answered, or until no answer has
    /// come for this many milliseconds (a parent that waits for room in a
    /// full pipe answers late): never a failure by itself.
    Settle(u64),
    /// A barrier and its checks.
    Check(Check),
    /// End the case: `shutdown`, its `worker_gone` and the adapter's exit.
    Shutdown,
}

/// A runnable parent case.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentCase {
    /// Stable id.
    pub id: String,
    /// Its file's section.
    pub section: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// The anchor it checks, as `PROTOCOL.md#parent-lifecycle`.
    pub spec: String,
    /// The quoted sentence.
    pub requirement: String,
    /// What it does.
    pub comment: String,
    /// Its steps, against one adapter.
    pub steps: Vec<PStep>,
}

impl CaseInfo for ParentCase {
    fn id(&self) -> &str {
        &self.id
    }
    fn section(&self) -> &str {
        &self.section
    }
    fn level(&self) -> Level {
        self.level
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn requirement(&self) -> &str {
        &self.requirement
    }
}

/// A checked parent vector file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentFile {
    /// Where it was read from.
    pub file: String,
    /// Its section.
    pub section: String,
    /// Its title.
    pub title: String,
    /// Its cases.
    pub cases: Vec<ParentCase>,
}

/// Every parent file of a source, checked (ids unique, one file per
/// section).
#[derive(Debug, Clone)]
pub struct ParentSuite {
    /// The files, sorted by name.
    pub files: Vec<ParentFile>,
}

impl ParentSuite {
    /// Loads and checks `parent/*.json`.
    pub fn load(source: &VectorSource) -> Result<ParentSuite, LoadError> {
        let files = load_sections(source, "parent", compile_file, |f: &ParentFile| {
            (
                f.section.as_str(),
                f.cases.iter().map(|c| c.id.as_str()).collect(),
            )
        })?;
        Ok(ParentSuite { files })
    }

    /// Every case, in file order.
    pub fn cases(&self) -> impl Iterator<Item = &ParentCase> {
        self.files.iter().flat_map(|f| f.cases.iter())
    }
}

type R<T> = Result<T, String>;

/// Checks and compiles one parent file.
pub fn compile_file(file: &str, text: &str) -> Result<ParentFile, VectorError> {
    let err = |case: Option<&str>, reason: String| VectorError {
        file: file.to_string(),
        case: case.map(str::to_string),
        reason,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| err(None, format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| err(None, "not a JSON object".into()))?;
    let schema = obj.get("schema").and_then(Value::as_str).unwrap_or("");
    if schema != PARENT_SCHEMA {
        return Err(err(None, format!("schema {schema:?} is not {PARENT_SCHEMA:?}")));
    }
    let section = str_field(obj, "section").map_err(|e| err(None, e))?;
    let title = obj.get("title").and_then(Value::as_str).unwrap_or("").to_string();
    let cases = obj
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| err(None, "no `cases` array".into()))?;
    let mut out = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let id = c.get("id").and_then(Value::as_str).unwrap_or("");
        let shown = if id.is_empty() {
            format!("#{}", n + 1)
        } else {
            id.to_string()
        };
        let case = compile_case(&section, c).map_err(|e| err(Some(&shown), e))?;
        out.push(case);
    }
    Ok(ParentFile {
        file: file.to_string(),
        section,
        title,
        cases: out,
    })
}

fn str_field(obj: &Map<String, Value>, key: &str) -> R<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn usize_field(obj: &Map<String, Value>, key: &str) -> R<Option<usize>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    }
}

fn only_keys(obj: &Map<String, Value>, what: &str, allowed: &[&str]) -> R<()> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{what}: unknown field `{k}`"));
        }
    }
    Ok(())
}

/// What compiling a case keeps track of.
#[derive(Default)]
struct Scope {
    /// Clients connected so far (by an earlier `connect`).
    clients: HashSet<String>,
    /// Clients whose conn the harness knows: a `check` came after their
    /// `connect`.
    bound: HashSet<String>,
    labels: BTreeSet<String>,
}

fn compile_case(section: &str, c: &Value) -> R<ParentCase> {
    let obj = c.as_object().ok_or("a case must be an object")?;
    only_keys(
        obj,
        "case",
        &["id", "level", "spec", "requirement", "comment", "steps"],
    )?;
    let id = str_field(obj, "id")?;
    if !id.starts_with(&format!("{section}/")) {
        return Err(format!("id {id:?} does not start with the section {section:?}"));
    }
    let level = match obj.get("level").and_then(Value::as_str) {
        Some("MUST") => Level::Must,
        Some("SHOULD") => Level::Should,
        other => return Err(format!("level {other:?} is not MUST or SHOULD")),
    };
    let spec = str_field(obj, "spec")?;
    let requirement = str_field(obj, "requirement")?;
    let comment = obj
        .get("comment")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let steps_v = obj
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("`steps` must be an array")?;
    let mut scope = Scope::default();
    let mut steps = Vec::new();
    for (n, s) in steps_v.iter().enumerate() {
        let step = compile_step(s, &mut scope).map_err(|e| format!("step {}: {e}", n + 1))?;
        if matches!(steps.last(), Some(PStep::Shutdown)) {
            return Err(format!("step {}: nothing may follow `shutdown`", n + 1));
        }
        steps.push(step);
    }
    Ok(ParentCase {
        id,
        section: section.to_string(),
        level,
        spec,
        requirement,
        comment,
        steps,
    })
}

fn compile_step(s: &Value, scope: &mut Scope) -> R<PStep> {
    let obj = s.as_object().ok_or("a step must be an object")?;
    if let Some(act) = obj.get("act") {
        only_keys(obj, "act step", &["act", "answer", "commands", "repeat", "label"])?;
        return compile_act(act, obj, scope).map(PStep::Act);
    }
    let kind = obj.keys().next().map(String::as_str).unwrap_or("");
    if obj.len() != 1 {
        return Err(format!(
            "a step has exactly one of act, inject, worker, await, settle, check, shutdown (got {:?})",
            obj.keys().collect::<Vec<_>>()
        ));
    }
    let body = &obj[kind];
    match kind {
        "inject" => compile_inject(body, scope).map(PStep::Inject),
        "worker" => compile_worker(body, scope).map(PStep::Worker),
        "await" => compile_deliveries(body, scope).map(PStep::Await),
        "settle" => body
            .as_u64()
            .map(PStep::Settle)
            .ok_or_else(|| "`settle` is a number of milliseconds".to_string()),
        "check" => {
            let check = compile_check(body, scope)?;
            scope.bound.extend(scope.clients.iter().cloned());
            Ok(PStep::Check(check))
        }
        "shutdown" => Ok(PStep::Shutdown),
        other => Err(format!("unknown step kind `{other}`")),
    }
}

fn known_client(scope: &Scope, client: &str) -> R<()> {
    if scope.clients.contains(client) {
        Ok(())
    } else {
        Err(format!("client {client:?} has not connected yet"))
    }
}

fn bound_client(scope: &Scope, client: &str) -> R<()> {
    known_client(scope, client)?;
    if scope.bound.contains(client) {
        Ok(())
    } else {
        Err(format!(
            "client {client:?} needs a `check` after its `connect` before its conn can be used"
        ))
    }
}

fn text_value(v: &Value, what: &str) -> R<Text> {
    match v {
        Value::String(s) => Ok(Text::Plain(s.clone())),
        Value::Object(o) => {
            only_keys(o, what, &["prefix", "fill", "count", "suffix"])?;
            let t = Text::Fill {
                prefix: o.get("prefix").and_then(Value::as_str).unwrap_or("").to_string(),
                fill: str_field(o, "fill")?,
                count: usize_field(o, "count")?.ok_or(format!("{what}: `count` is required"))?,
                suffix: o.get("suffix").and_then(Value::as_str).unwrap_or("").to_string(),
            };
            if t.len() > MAX_FILL {
                return Err(format!(
                    "{what}: expands to {} bytes, more than {MAX_FILL}",
                    t.len()
                ));
            }
            Ok(t)
        }
        _ => Err(format!("{what} must be a string or a fill object")),
    }
}

fn compile_act(act: &Value, step: &Map<String, Value>, scope: &mut Scope) -> R<Act> {
    let a = act.as_object().ok_or("`act` must be an object")?;
    let action = str_field(a, "action")?;
    let allowed: &[&str] = match action.as_str() {
        "connect" => &["action", "client", "whitelisted"],
        "disconnect" => &["action", "client"],
        "subscribe" => &["action", "client", "sub_id", "req"],
        "unsubscribe" => &["action", "client", "sub_id"],
        "auth" => &["action", "client", "pubkey"],
        "fanout" => &["action", "from", "flags", "event"],
        "sync" | "shutdown" | "start" => {
            return Err(format!("`{action}` is sent by the harness itself, not by a step"));
        }
        other => return Err(format!("unknown action {other:?}")),
    };
    only_keys(a, "act", allowed)?;
    let client = match action.as_str() {
        "fanout" => match a.get("from") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            _ => return Err("`from` must be a client name or null".into()),
        },
        _ => Some(str_field(a, "client")?),
    };
    if action == "connect" {
        let c = client.clone().unwrap_or_default();
        scope.clients.insert(c);
    } else if let Some(c) = &client {
        known_client(scope, c)?;
    }
    let data_key = match action.as_str() {
        "subscribe" => Some("req"),
        "fanout" => Some("event"),
        _ => None,
    };
    let data = match data_key {
        Some(k) => Some(text_value(a.get(k).ok_or(format!("`{k}` is required"))?, k)?),
        None => None,
    };
    let mut fields = a.clone();
    fields.remove("action");
    if let Some(k) = data_key {
        fields.remove(k);
    }
    let answer = match step.get("answer").and_then(Value::as_str) {
        None | Some("ok") => Answer::Ok,
        Some("refused") => Answer::Refused,
        Some("any") => Answer::Any,
        Some(other) => return Err(format!("answer {other:?} is not ok, refused or any")),
    };
    let repeat = usize_field(step, "repeat")?.unwrap_or(1);
    if repeat == 0 {
        return Err("`repeat` must be at least 1".into());
    }
    let label = match step.get("label") {
        None => None,
        Some(Value::String(l)) => {
            if !scope.labels.insert(l.clone()) {
                return Err(format!("label {l:?} is used twice"));
            }
            Some(l.clone())
        }
        Some(_) => return Err("`label` must be a string".into()),
    };
    let mut commands = Vec::new();
    if let Some(list) = step.get("commands") {
        let list = list.as_array().ok_or("`commands` must be an array")?;
        for (n, c) in list.iter().enumerate() {
            let t =
                compile_cmd(c, scope, data_key.is_some()).map_err(|e| format!("command {}: {e}", n + 1))?;
            commands.push(t);
        }
    }
    if answer == Answer::Refused && !commands.is_empty() {
        return Err("an action answered `refused` writes no command: `commands` must be empty".into());
    }
    if answer != Answer::Refused && commands.is_empty() {
        return Err("an action that may be accepted lists the commands it causes".into());
    }
    // The templates must say what they claim: decoded with a stand-in conn
    // and the action's data, each is one frame of its op.
    let small = data.as_ref().is_none_or(|d| d.len() <= 1 << 20);
    if small {
        let sample = data.as_ref().map(|d| d.expand(Some(0))).unwrap_or_default();
        for t in &commands {
            check_template(t, sample.as_bytes())?;
        }
    }
    Ok(Act {
        action,
        fields,
        client,
        data,
        answer,
        commands,
        repeat,
        label,
    })
}

/// Decodes a template rendered with conn 7 for every client: one channel-1
/// frame of the declared op naming conn 7 (or −1 for a Bcast without a
/// sender).
fn check_template(t: &CmdTemplate, data: &[u8]) -> R<()> {
    let bytes = t.render(&|_| Some(7), data).ok_or("unrenderable template")?;
    let mut dec = FrameDecoder::new();
    dec.feed(&bytes);
    let frame = dec
        .decode()
        .map_err(|e| format!("the expected command is not a frame: {e}"))?
        .ok_or("the expected command is not a whole frame")?;
    if !dec.at_boundary() {
        return Err("the expected command has bytes after its frame".into());
    }
    if frame.chan != SubCommand::CHANNEL {
        return Err(format!("the expected command is on channel {}", frame.chan));
    }
    let cmd = SubCommand::decode(frame.payload)
        .map_err(|e| format!("the expected command does not decode: {e}"))?;
    if cmd.op() != t.op {
        return Err(format!(
            "the expected command is a {}, declared {}",
            cmd.op().name(),
            t.op.name()
        ));
    }
    let want = if t.client.is_some() { 7 } else { -1 };
    if cmd.conn() != want {
        return Err(format!(
            "the expected command names conn {}, not its client's",
            cmd.conn()
        ));
    }
    Ok(())
}

fn op_named(name: &str) -> R<Op> {
    Ok(match name {
        "new" => Op::New,
        "close" => Op::Close,
        "add" => Op::Add,
        "remove" => Op::Remove,
        "auth" => Op::Auth,
        "bcast" => Op::Bcast,
        other => return Err(format!("unknown op {other:?}")),
    })
}

fn compile_cmd(c: &Value, scope: &Scope, has_data: bool) -> R<CmdTemplate> {
    let o = c.as_object().ok_or("a command must be an object")?;
    only_keys(o, "command", &["op", "conn", "hex"])?;
    let op = op_named(&str_field(o, "op")?)?;
    let client = match o.get("conn") {
        Some(Value::String(s)) => {
            known_client(scope, s)?;
            Some(s.clone())
        }
        None | Some(Value::Null) if op == Op::Bcast => None,
        _ => return Err("`conn` must be the client's name (or null for a Bcast without a sender)".into()),
    };
    let pieces = parse_template(&str_field(o, "hex")?, scope, has_data)?;
    Ok(CmdTemplate { op, client, pieces })
}

/// Parses a hex template: hex digits (spaces ignored), `${client}` and
/// `{data}`.
fn parse_template(text: &str, scope: &Scope, allow_data: bool) -> R<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut hexbuf = String::new();
    let mut rest = text;
    let flush = |hexbuf: &mut String, pieces: &mut Vec<Piece>| -> R<()> {
        if !hexbuf.is_empty() {
            let bytes = hex::decode(&*hexbuf).map_err(|e| format!("bad hex {hexbuf:?}: {e}"))?;
            pieces.push(Piece::Bytes(bytes));
            hexbuf.clear();
        }
        Ok(())
    };
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').ok_or("unclosed `${`")?;
            let name = &after[..end];
            known_client(scope, name)?;
            flush(&mut hexbuf, &mut pieces)?;
            pieces.push(Piece::Conn(name.to_string()));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("{data}") {
            if !allow_data {
                return Err("`{data}` only stands for the data of a subscribe or fanout".into());
            }
            flush(&mut hexbuf, &mut pieces)?;
            pieces.push(Piece::Data);
            rest = after;
        } else {
            if c.is_ascii_hexdigit() {
                if c.is_ascii_uppercase() {
                    return Err("hex must be lowercase".into());
                }
                hexbuf.push(c);
            } else if c != ' ' {
                return Err(format!("unexpected {c:?} in a hex template"));
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    flush(&mut hexbuf, &mut pieces)?;
    Ok(pieces)
}

fn conn_ref(v: &Value, scope: &Scope) -> R<ConnRef> {
    match v {
        Value::String(s) if s == "unused" => Ok(ConnRef::Unused),
        Value::String(s) => {
            bound_client(scope, s)?;
            Ok(ConnRef::Client(s.clone()))
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(ConnRef::Value)
            .ok_or("a conn number must be an i32".into()),
        _ => Err("`conn` must be a client, \"unused\" or a number".into()),
    }
}

/// `data` (a text or a fill object) or `data_hex`, as bytes.
fn bytes_of(o: &Map<String, Value>, what: &str) -> R<Vec<u8>> {
    match (o.get("data"), o.get("data_hex")) {
        (Some(Value::String(s)), None) => Ok(s.clone().into_bytes()),
        (Some(fill @ Value::Object(_)), None) => Ok(text_value(fill, what)?.expand(None).into_bytes()),
        (None, Some(Value::String(h))) => hex::decode(h).map_err(|e| format!("{what}: bad data_hex: {e}")),
        _ => Err(format!(
            "{what} needs `data` (a text or a fill object) or `data_hex`"
        )),
    }
}

fn compile_inject(v: &Value, scope: &Scope) -> R<Inject> {
    let o = v.as_object().ok_or("`inject` must be an object")?;
    only_keys(o, "inject", &["via", "items", "split", "close_output", "exit"])?;
    let via = match o.get("via").and_then(Value::as_str) {
        Some("*") => Via::All,
        Some(c) => {
            bound_client(scope, c)?;
            Via::Client(c.to_string())
        }
        None => return Err("`via` must be a client or \"*\"".into()),
    };
    let mut items = Vec::new();
    for item in o
        .get("items")
        .and_then(Value::as_array)
        .ok_or("`items` must be an array")?
    {
        let io = item.as_object().ok_or("an item must be an object")?;
        let (kind, body) = io.iter().next().ok_or("an empty item")?;
        if io.len() != 1 {
            return Err("an item has exactly one of hex, frame, burst".into());
        }
        items.push(match kind.as_str() {
            "hex" => {
                let text = body.as_str().ok_or("`hex` must be a string")?;
                let pieces = parse_template(text, scope, false)?;
                for p in &pieces {
                    if let Piece::Conn(c) = p {
                        bound_client(scope, c)?;
                    }
                }
                Item::Hex(pieces)
            }
            "frame" => {
                let f = body.as_object().ok_or("`frame` must be an object")?;
                only_keys(f, "frame", &["conn", "data", "data_hex"])?;
                Item::Frame {
                    conn: conn_ref(f.get("conn").ok_or("`frame` needs `conn`")?, scope)?,
                    data: bytes_of(f, "frame")?,
                }
            }
            "burst" => {
                let b = body.as_object().ok_or("`burst` must be an object")?;
                only_keys(b, "burst", &["conn", "count", "data"])?;
                Item::Burst {
                    conn: conn_ref(b.get("conn").ok_or("`burst` needs `conn`")?, scope)?,
                    count: usize_field(b, "count")?.ok_or("`burst` needs `count`")?,
                    data: str_field(b, "data")?,
                }
            }
            other => return Err(format!("unknown item kind `{other}`")),
        });
    }
    let split = match o.get("split") {
        None => Split::None,
        Some(Value::String(s)) if s == "every" => Split::Every,
        Some(Value::String(s)) if s == "bytes" => Split::Bytes,
        Some(Value::Array(a)) => Split::At(
            a.iter()
                .map(|x| x.as_u64().and_then(|n| usize::try_from(n).ok()))
                .collect::<Option<Vec<_>>>()
                .ok_or("split offsets must be non-negative integers")?,
        ),
        Some(_) => return Err("`split` must be \"every\", \"bytes\" or a list of offsets".into()),
    };
    let close_output = o.get("close_output").and_then(Value::as_bool).unwrap_or(false);
    let exit = match o.get("exit") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or("`exit` must be 0 to 255")?,
        ),
    };
    Ok(Inject {
        via,
        items,
        split,
        close_output,
        exit,
    })
}

fn compile_worker(v: &Value, scope: &Scope) -> R<WorkerOp> {
    match v {
        Value::String(s) => Ok(match s.as_str() {
            "pause" => WorkerOp::Pause,
            "resume" => WorkerOp::Resume,
            "release" => WorkerOp::Release,
            "close_output" => WorkerOp::CloseOutput,
            "close_input" => WorkerOp::CloseInput,
            "kill" => WorkerOp::Kill,
            other => return Err(format!("unknown worker operation {other:?}")),
        }),
        Value::Object(o) if o.len() == 1 => {
            if let Some(status) = o.get("exit") {
                let s = status
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or("`exit` must be 0 to 255")?;
                Ok(WorkerOp::Exit(s))
            } else if let Some(c) = o.get("hold").and_then(Value::as_str) {
                bound_client(scope, c)?;
                Ok(WorkerOp::Hold(c.to_string()))
            } else {
                Err("a worker object is {\"exit\": N} or {\"hold\": client}".into())
            }
        }
        _ => Err("`worker` must be an operation name or {\"exit\": N} / {\"hold\": client}".into()),
    }
}

fn compile_deliveries(v: &Value, scope: &Scope) -> R<Vec<(String, Vec<Deliv>)>> {
    let o = v
        .as_object()
        .ok_or("deliveries must be an object: client -> list")?;
    let mut out = Vec::new();
    for (client, list) in o {
        known_client(scope, client)?;
        let list = list.as_array().ok_or("a client's deliveries must be a list")?;
        let mut ds = Vec::new();
        for d in list {
            ds.push(compile_deliv(d, scope)?);
        }
        out.push((client.clone(), ds));
    }
    Ok(out)
}

fn compile_deliv(d: &Value, scope: &Scope) -> R<Deliv> {
    let o = d.as_object().ok_or("a delivery must be an object")?;
    if let Some(label) = o.get("ok_of") {
        only_keys(o, "delivery", &["ok_of", "data", "if_ok"])?;
        let label = label.as_str().ok_or("`ok_of` must be a label")?;
        let known = |l: &str| {
            if scope.labels.contains(l) {
                Ok(())
            } else {
                Err(format!("no earlier action has the label {l:?}"))
            }
        };
        known(label)?;
        let if_ok = match o.get("if_ok") {
            None => None,
            Some(v) => {
                let l = v.as_str().ok_or("`if_ok` must be a label")?;
                known(l)?;
                Some(l.to_string())
            }
        };
        return Ok(Deliv::OkOf {
            label: label.to_string(),
            data: text_value(o.get("data").ok_or("`ok_of` needs `data`")?, "data")?,
            if_ok,
        });
    }
    if let Some(b) = o.get("burst") {
        only_keys(o, "delivery", &["burst"])?;
        let b = b.as_object().ok_or("`burst` must be an object")?;
        only_keys(b, "burst", &["count", "data"])?;
        return Ok(Deliv::Burst {
            count: usize_field(b, "count")?.ok_or("`burst` needs `count`")?,
            data: str_field(b, "data")?,
        });
    }
    if let Some(count) = o.get("repeat") {
        only_keys(o, "delivery", &["repeat", "each"])?;
        let count = count
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("`repeat` must be a count")?;
        let each = o
            .get("each")
            .and_then(Value::as_array)
            .ok_or("`repeat` needs `each`")?
            .iter()
            .map(|x| compile_deliv(x, scope))
            .collect::<R<Vec<_>>>()?;
        return Ok(Deliv::Repeat { count, each });
    }
    only_keys(o, "delivery", &["data", "data_hex"])?;
    Ok(Deliv::Data(bytes_of(o, "delivery")?))
}

fn compile_check(v: &Value, scope: &Scope) -> R<Check> {
    let o = v.as_object().ok_or("`check` must be an object")?;
    only_keys(o, "check", &["deliveries", "gone", "reaped", "distinct_conns"])?;
    let deliveries = match o.get("deliveries") {
        None => Vec::new(),
        Some(d) => compile_deliveries(d, scope)?,
    };
    let gone = match o.get("gone") {
        None => None,
        Some(g) => {
            let g = g.as_object().ok_or("`gone` must be an object")?;
            only_keys(g, "gone", &["fatal", "status"])?;
            let fatal = g
                .get("fatal")
                .and_then(Value::as_bool)
                .ok_or("`gone` needs `fatal`")?;
            let status = match g.get("status") {
                Some(Value::Null) => StatusExp::Null,
                Some(Value::String(s)) if s == "any" => StatusExp::Any,
                Some(v) => StatusExp::Code(v.as_i64().ok_or("`status` must be a number, null or \"any\"")?),
                None => StatusExp::Any,
            };
            Some(Gone { fatal, status })
        }
    };
    let reaped = o.get("reaped").and_then(Value::as_bool).unwrap_or(false);
    let mut distinct_conns = Vec::new();
    if let Some(list) = o.get("distinct_conns") {
        for c in list.as_array().ok_or("`distinct_conns` must be a list")? {
            let c = c.as_str().ok_or("`distinct_conns` lists clients")?;
            known_client(scope, c)?;
            distinct_conns.push(c.to_string());
        }
    }
    Ok(Check {
        deliveries,
        gone,
        reaped,
        distinct_conns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(cases: &str) -> String {
        format!(r#"{{"schema":"{PARENT_SCHEMA}","section":"t","title":"t","cases":[{cases}]}}"#)
    }

    const NEW_A: &str = r#"{"act":{"action":"connect","client":"a","whitelisted":false},"commands":[{"op":"new","conn":"a","hex":"010e000000 01 00 ${a} 00000000 00000000"}]}"#;

    #[test]
    fn a_minimal_case_compiles() {
        let text = file(&format!(
            r#"{{"id":"t/x","level":"MUST","spec":"PROTOCOL.md#parent-lifecycle","requirement":"r","steps":[{NEW_A},{{"check":{{"deliveries":{{"a":[]}}}}}}]}}"#
        ));
        let f = compile_file("f", &text).unwrap();
        assert_eq!(f.cases[0].steps.len(), 2);
        let PStep::Act(act) = &f.cases[0].steps[0] else {
            panic!()
        };
        let bytes = act.commands[0].render(&|_| Some(5), b"").unwrap();
        assert_eq!(hex::encode(bytes), "010e0000000100050000000000000000000000");
    }

    #[test]
    fn mistakes_are_named() {
        let bad_op = NEW_A.replace(r#""op":"new""#, r#""op":"close""#);
        let text = file(&format!(
            r#"{{"id":"t/x","level":"MUST","spec":"s","requirement":"r","steps":[{bad_op}]}}"#
        ));
        let e = compile_file("f", &text).unwrap_err();
        assert!(e.reason.contains("declared close"), "{e}");
        let text = file(
            r#"{"id":"t/x","level":"MUST","spec":"s","requirement":"r","steps":[{"inject":{"via":"a","items":[]}}]}"#,
        );
        let e = compile_file("f", &text).unwrap_err();
        assert!(e.reason.contains("has not connected"), "{e}");
        let text = file(&format!(
            r#"{{"id":"t/x","level":"MUST","spec":"s","requirement":"r","steps":[{NEW_A},{{"inject":{{"via":"a","items":[]}}}}]}}"#
        ));
        let e = compile_file("f", &text).unwrap_err();
        assert!(e.reason.contains("needs a `check`"), "{e}");
    }
}
