//! The adapter side of the contract of docs/CONFORMANCE.md ("The adapter
//! contract"), shared by every handle: the JSON lines in and out, the
//! client ↔ conn map, and which line answers what. Nothing here touches the
//! worker; each handle's loop does, and reports back through [`Session`].

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitStatus;

use broadcast_process::broadcaster::Transport;
use broadcast_wire::{BcastFlags, BroadcastFrame, DEFAULT_MAX_PAYLOAD, PUBKEY_LEN};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The room a worker's EVENT frame may need beyond its Bcast: the JSON
/// string of the longest sub_id (PROTOCOL.md#oversize-output).
pub const BCAST_HEADROOM: usize = 381;

/// The fixed fields of a SubCommand (PROTOCOL.md#subcommand-layout).
const BCAST_FIXED: usize = 14;

/// The largest Bcast payload the adapter sends: PROTOCOL.md#parent-bcast
/// says a parent SHOULD stay [`BCAST_HEADROOM`] bytes under the maximum, so
/// that no EVENT frame it causes is over the maximum.
pub const BCAST_PAYLOAD_LIMIT: usize = DEFAULT_MAX_PAYLOAD as usize - BCAST_HEADROOM;

/// The first line: which worker to start, over which transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The worker's argv (program first).
    pub worker: Vec<String>,
    /// stdio pipes, or one socketpair passed as `--fd N`.
    pub transport: Transport,
}

/// Parses the `start` line.
///
/// ```
/// use broadcast_conformance::parent_adapter::contract::parse_start;
/// use broadcast_process::broadcaster::Transport;
///
/// let start = parse_start(r#"{"action":"start","worker":["w","-v"],"transport":"socketpair"}"#).unwrap();
/// assert_eq!((start.worker.len(), start.transport), (2, Transport::SocketPair));
/// assert!(parse_start(r#"{"action":"connect"}"#).is_err());
/// ```
pub fn parse_start(line: &str) -> Result<Start, String> {
    #[derive(Deserialize)]
    struct Line {
        action: String,
        worker: Vec<String>,
        transport: String,
    }
    let line: Line = serde_json::from_str(line).map_err(|e| format!("bad start line: {e}"))?;
    if line.action != "start" {
        return Err(format!(
            "the first line must be a start action, not {:?}",
            line.action
        ));
    }
    if line.worker.is_empty() {
        return Err("start: the worker argv is empty".into());
    }
    let transport = match line.transport.as_str() {
        "stdio" => Transport::Stdio,
        "socketpair" => Transport::SocketPair,
        other => return Err(format!("start: unknown transport {other:?}")),
    };
    Ok(Start {
        worker: line.worker,
        transport,
    })
}

/// One action line after `start` (its `seq` is read separately).
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    Connect {
        client: String,
        #[serde(default)]
        whitelisted: bool,
    },
    Disconnect {
        client: String,
    },
    Subscribe {
        client: String,
        sub_id: String,
        req: String,
    },
    Unsubscribe {
        client: String,
        sub_id: String,
    },
    Auth {
        client: String,
        pubkey: String,
    },
    Fanout {
        from: Option<String>,
        #[serde(default)]
        flags: Vec<String>,
        event: String,
    },
    Sync,
    Shutdown,
}

/// A relay command, named as the handles name their methods (`on_connect`
/// ... `fanout`), with the conn already chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `on_connect(conn, whitelisted)`.
    Connect {
        /// The new connection's conn.
        conn: i32,
        /// New's flag bit 0.
        whitelisted: bool,
    },
    /// `on_disconnect(conn)`.
    Disconnect {
        /// The departing connection.
        conn: i32,
    },
    /// `on_subscribe(conn, sub_id, req)`.
    Subscribe {
        /// The subscribing connection.
        conn: i32,
        /// The subscription id.
        sub_id: String,
        /// The raw REQ message, unchanged.
        req: Bytes,
    },
    /// `on_unsubscribe(conn, sub_id)`.
    Unsubscribe {
        /// The connection.
        conn: i32,
        /// The subscription id.
        sub_id: String,
    },
    /// `on_auth(conn, pubkey)`.
    Auth {
        /// The connection.
        conn: i32,
        /// The binary pubkey.
        pubkey: [u8; PUBKEY_LEN],
    },
    /// `fanout(event, sender, flags)`.
    Fanout {
        /// The raw EVENT message, unchanged.
        event: Bytes,
        /// The publishing connection, or −1.
        sender: i32,
        /// The relay's access decisions.
        flags: BcastFlags,
    },
}

/// What the client map does once a command is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// `client` is now connection `conn`.
    Open(String, i32),
    /// `client` is gone: frames for its conn are discarded from now on.
    Close(String),
}

/// What a handle's loop does with one line.
#[derive(Debug)]
pub enum Step {
    /// Send `cmd`, then report the outcome with [`Session::answer`].
    Command {
        /// The action's seq.
        seq: u64,
        /// The command to send.
        cmd: Command,
        /// What the client map does if it is accepted.
        effect: Effect,
    },
    /// The barrier: answer with [`Session::synced`] once every accepted
    /// command is written (or the worker reported gone) and every frame
    /// read so far is handled.
    Sync(u64),
    /// End the command stream, wait for the worker's exit (delivering its
    /// last frames), reap it, then [`Session::answer`] `Ok`.
    Shutdown(u64),
    /// Already answered (refused): nothing to do.
    Answered,
}

/// Why the parent did not accept a command: its message, and whether it
/// means the worker is gone (a write found its end closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the relay would see.
    pub message: String,
    /// The worker can no longer take commands.
    pub worker_gone: bool,
}

impl Refusal {
    /// A refusal that says nothing about the worker.
    pub fn new(message: impl Display) -> Refusal {
        Refusal {
            message: message.to_string(),
            worker_gone: false,
        }
    }
}

/// One line the adapter writes.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event<'a> {
    Started,
    Ok {
        seq: u64,
    },
    Refused {
        seq: u64,
        message: &'a str,
    },
    Synced {
        seq: u64,
    },
    Deliver {
        client: &'a str,
        data_hex: String,
    },
    DroppedFrame {
        message: &'a str,
    },
    WorkerGone {
        fatal: bool,
        message: &'a str,
        status: Option<i32>,
    },
}

/// The adapter's stdout: one JSON object per line, flushed at once.
pub struct Out {
    sink: Box<dyn Write>,
    broken: bool,
}

impl Out {
    /// Lines to stdout.
    pub fn stdout() -> Out {
        Out::to(Box::new(io::stdout()))
    }

    /// Lines to `sink` (tests).
    pub fn to(sink: Box<dyn Write>) -> Out {
        Out { sink, broken: false }
    }

    fn line(&mut self, event: &Event<'_>) {
        let mut text = serde_json::to_string(event).expect("an adapter event serialises");
        text.push('\n');
        let written = self
            .sink
            .write_all(text.as_bytes())
            .and_then(|()| self.sink.flush());
        if let Err(e) = written
            && !self.broken
        {
            // The harness has gone; the loops end when stdin does.
            self.broken = true;
            eprintln!("parent-adapter: cannot write to stdout: {e}");
        }
    }

    /// `{"event":"started"}`.
    pub fn started(&mut self) {
        self.line(&Event::Started);
    }

    /// `{"event":"refused","seq":N,"message":...}`.
    pub fn refused(&mut self, seq: u64, message: &str) {
        self.line(&Event::Refused { seq, message });
    }
}

/// The clients the relay has, by the harness's names, and the conn each
/// was given. Conns come from a counter and are never reused
/// (PROTOCOL.md#parent-lifecycle, the SHOULD), so a late frame for a
/// departed client can never reach a new one.
#[derive(Debug, Default)]
pub struct Clients {
    conn_of: HashMap<String, i32>,
    client_of: HashMap<i32, String>,
    next: i32,
}

impl Clients {
    /// The conn of a connected client.
    pub fn conn(&self, client: &str) -> Option<i32> {
        self.conn_of.get(client).copied()
    }

    /// The client a conn names, if it is open.
    pub fn client(&self, conn: i32) -> Option<&str> {
        self.client_of.get(&conn).map(String::as_str)
    }

    /// The next conn value: 0, 1, 2, ... None once i32 is exhausted.
    fn allocate(&mut self) -> Option<i32> {
        let conn = self.next;
        self.next = self.next.checked_add(1)?;
        Some(conn)
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::None => {}
            Effect::Open(client, conn) => {
                self.client_of.insert(conn, client.clone());
                self.conn_of.insert(client, conn);
            }
            Effect::Close(client) => {
                if let Some(conn) = self.conn_of.remove(&client) {
                    self.client_of.remove(&conn);
                }
            }
        }
    }
}

impl Default for Out {
    /// Lines to nowhere.
    fn default() -> Out {
        Out::to(Box::new(io::sink()))
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The adapter's state for one run: the clients, stdout, and whether the
/// worker has been reported gone.
#[derive(Debug, Default)]
pub struct Session {
    clients: Clients,
    out: Out,
    gone: bool,
    /// Shutting down: a worker's clean end waits for the last one's.
    ending: bool,
    held: Option<(bool, String, Option<ExitStatus>)>,
}

impl Session {
    /// A session with no client, after `started`.
    pub fn new(out: Out) -> Session {
        Session {
            out,
            ..Session::default()
        }
    }

    /// The adapter is ending its workers (`shutdown`, or the end of stdin):
    /// from now on the clean end of one worker of several is not reported
    /// until the last one ends, so that `worker_gone` follows every frame.
    pub fn ending(&mut self) {
        self.ending = true;
    }

    /// Writes the `worker_gone` held back by [`Session::ending`], if any.
    pub fn release_gone(&mut self) {
        if let Some((fatal, message, status)) = self.held.take() {
            self.report_gone(fatal, &message, status);
        }
    }

    /// The client map.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Whether `worker_gone` was written: every action is refused from
    /// then on (PROTOCOL.md#parent-worker-death).
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Reads one action line and says what to do. Lines that cannot be
    /// acted on (bad JSON, an unknown client, a bad pubkey) and every
    /// command after the worker is gone are refused here.
    pub fn step(&mut self, line: &str) -> Step {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("parent-adapter: ignoring a line that is not JSON ({e}): {line}");
                return Step::Answered;
            }
        };
        let seq = value.get("seq").and_then(serde_json::Value::as_u64).unwrap_or(0);
        match self.plan(value) {
            Ok(step) => step,
            Err(message) => {
                self.out.refused(seq, &message);
                Step::Answered
            }
        }
    }

    fn plan(&mut self, value: serde_json::Value) -> Result<Step, String> {
        let seq = value
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .ok_or("an action needs a seq")?;
        let action: Action = serde_json::from_value(value).map_err(|e| format!("bad action: {e}"))?;
        let command = |cmd, effect| Step::Command { seq, cmd, effect };
        if self.gone && !matches!(action, Action::Sync | Action::Shutdown) {
            // PROTOCOL.md#parent-worker-death: no command claims success.
            return Err("the worker is gone".into());
        }
        Ok(match action {
            Action::Sync => Step::Sync(seq),
            Action::Shutdown => Step::Shutdown(seq),
            Action::Connect { client, whitelisted } => {
                if self.clients.conn(&client).is_some() {
                    return Err(format!("client {client:?} is already connected"));
                }
                let conn = self.clients.allocate().ok_or("no conn value left")?;
                command(Command::Connect { conn, whitelisted }, Effect::Open(client, conn))
            }
            Action::Disconnect { client } => {
                let conn = self.conn(&client)?;
                command(Command::Disconnect { conn }, Effect::Close(client))
            }
            Action::Subscribe { client, sub_id, req } => command(
                Command::Subscribe {
                    conn: self.conn(&client)?,
                    sub_id,
                    req: Bytes::from(req),
                },
                Effect::None,
            ),
            Action::Unsubscribe { client, sub_id } => command(
                Command::Unsubscribe {
                    conn: self.conn(&client)?,
                    sub_id,
                },
                Effect::None,
            ),
            Action::Auth { client, pubkey } => command(
                Command::Auth {
                    conn: self.conn(&client)?,
                    pubkey: parse_pubkey(&pubkey)?,
                },
                Effect::None,
            ),
            Action::Fanout { from, flags, event } => {
                let sender = match from {
                    Some(client) => self.conn(&client)?,
                    None => -1,
                };
                let payload = BCAST_FIXED + event.len();
                if payload > BCAST_PAYLOAD_LIMIT {
                    return Err(format!(
                        "the Bcast payload would be {payload} bytes: over {BCAST_PAYLOAD_LIMIT}, \
                         the maximum less the room an EVENT frame's sub_id may take"
                    ));
                }
                command(
                    Command::Fanout {
                        event: Bytes::from(event),
                        sender,
                        flags: parse_flags(&flags)?,
                    },
                    Effect::None,
                )
            }
        })
    }

    fn conn(&self, client: &str) -> Result<i32, String> {
        self.clients
            .conn(client)
            .ok_or_else(|| format!("client {client:?} is not connected"))
    }

    /// Answers a command: `ok` (and the client map follows `effect`), or
    /// `refused` with the handle's error, leaving no trace.
    pub fn answer(&mut self, seq: u64, effect: Effect, result: Result<(), Refusal>) {
        match result {
            Ok(()) => {
                self.clients.apply(effect);
                self.out.line(&Event::Ok { seq });
            }
            Err(refusal) => self.out.refused(seq, &refusal.message),
        }
    }

    /// Answers `shutdown`.
    pub fn shut_down(&mut self, seq: u64) {
        self.out.line(&Event::Ok { seq });
    }

    /// Answers `sync`.
    pub fn synced(&mut self, seq: u64) {
        self.out.line(&Event::Synced { seq });
    }

    /// A frame from the worker: written to its client verbatim, or
    /// discarded if its conn names no open connection
    /// (PROTOCOL.md#parent-lifecycle, "Unknown conns").
    pub fn frame(&mut self, frame: &BroadcastFrame) {
        match self.clients.client(frame.conn) {
            Some(client) => {
                let event = Event::Deliver {
                    client,
                    data_hex: hex::encode(&frame.data),
                };
                self.out.line(&event);
            }
            None => eprintln!(
                "parent-adapter: discarded a frame for conn {}, which is not open",
                frame.conn
            ),
        }
    }

    /// A channel-2 frame whose payload does not decode: dropped and
    /// reported (PROTOCOL.md#parent-receiving).
    pub fn dropped_frame(&mut self, error: &dyn Display) {
        let message = error.to_string();
        eprintln!("parent-adapter: dropped a frame that does not decode: {message}");
        self.out.line(&Event::DroppedFrame { message: &message });
    }

    /// A worker is gone (PROTOCOL.md#parent-worker-death); `last`: no
    /// other worker is left. `worker_gone` is written once; later reports
    /// (another shard, say) only go to stderr. While [`Session::ending`],
    /// the clean end of a worker that is not the last is held back.
    pub fn worker_gone(&mut self, fatal: bool, message: &str, status: Option<ExitStatus>, last: bool) {
        if self.ending && !fatal && !last && !self.gone {
            if self.held.is_none() {
                self.held = Some((fatal, message.to_string(), status));
            }
            return;
        }
        match self.held.take() {
            Some((fatal, held, status)) => {
                self.report_gone(fatal, &held, status);
                eprintln!("parent-adapter: {message}");
            }
            None => self.report_gone(fatal, message, status),
        }
    }

    fn report_gone(&mut self, fatal: bool, message: &str, status: Option<ExitStatus>) {
        if self.gone {
            eprintln!("parent-adapter: {message}");
            return;
        }
        self.gone = true;
        let status = status.and_then(|s| s.code());
        self.out.line(&Event::WorkerGone {
            fatal,
            message,
            status,
        });
    }
}

/// 64 lowercase hex digits to the 32 bytes of a pubkey.
fn parse_pubkey(text: &str) -> Result<[u8; PUBKEY_LEN], String> {
    let mut key = [0u8; PUBKEY_LEN];
    if text.len() != 2 * PUBKEY_LEN || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("pubkey {text:?} is not 64 lowercase hex digits"));
    }
    hex::decode_to_slice(text, &mut key).map_err(|e| format!("pubkey {text:?}: {e}"))?;
    Ok(key)
}

/// The names of the Bcast flags (PROTOCOL.md#flags) to their bits.
fn parse_flags(names: &[String]) -> Result<BcastFlags, String> {
    let mut bits = 0;
    for name in names {
        bits |= match name.as_str() {
            "need_filter" => BcastFlags::NEED_FILTER.bits(),
            "nip70_enforce" => BcastFlags::NIP70_ENFORCE.bits(),
            "marmot_open" => BcastFlags::MARMOT_OPEN.bits(),
            other => return Err(format!("unknown flag {other:?}")),
        };
    }
    Ok(BcastFlags::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(s: &mut Session, line: &str) -> Step {
        s.step(line)
    }

    #[test]
    fn conns_come_from_a_counter_and_are_never_reused() {
        let mut s = Session::default();
        let connect = |s: &mut Session, seq, client: &str| match step(
            s,
            &format!(r#"{{"seq":{seq},"action":"connect","client":"{client}","whitelisted":true}}"#),
        ) {
            Step::Command {
                seq,
                cmd:
                    Command::Connect {
                        conn,
                        whitelisted: true,
                    },
                effect,
            } => {
                s.answer(seq, effect, Ok(()));
                conn
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(connect(&mut s, 1, "a"), 0);
        let Step::Command { seq, effect, .. } =
            step(&mut s, r#"{"seq":2,"action":"disconnect","client":"a"}"#)
        else {
            panic!()
        };
        s.answer(seq, effect, Ok(()));
        assert_eq!(s.clients().conn("a"), None);
        assert_eq!(connect(&mut s, 3, "a"), 1);
        assert_eq!(s.clients().client(1), Some("a"));
        assert_eq!(s.clients().client(0), None);
    }

    #[test]
    fn actions_are_translated_and_bad_ones_refused() {
        let mut s = Session::default();
        assert!(matches!(
            step(
                &mut s,
                r#"{"seq":1,"action":"subscribe","client":"x","sub_id":"s","req":"[]"}"#
            ),
            Step::Answered
        ));
        let Step::Command { effect, .. } = step(&mut s, r#"{"seq":2,"action":"connect","client":"x"}"#)
        else {
            panic!()
        };
        s.answer(2, effect, Ok(()));
        let fanout =
            r#"{"seq":3,"action":"fanout","from":"x","flags":["need_filter","marmot_open"],"event":"e"}"#;
        match step(&mut s, fanout) {
            Step::Command {
                cmd: Command::Fanout { sender, flags, event },
                ..
            } => {
                assert_eq!((sender, flags.bits(), &event[..]), (0, 0x05, &b"e"[..]));
            }
            other => panic!("{other:?}"),
        }
        let bad = [
            r#"{"seq":4,"action":"fanout","from":null,"flags":["nope"],"event":"e"}"#,
            r#"{"seq":5,"action":"auth","client":"x","pubkey":"AB"}"#,
            r#"{"seq":6,"action":"launch"}"#,
            r#"{"seq":7,"action":"connect","client":"x"}"#,
        ];
        for line in bad {
            assert!(matches!(step(&mut s, line), Step::Answered), "{line}");
        }
        s.worker_gone(false, "gone", None, true);
        assert!(matches!(
            step(&mut s, r#"{"seq":8,"action":"disconnect","client":"x"}"#),
            Step::Answered
        ));
        assert!(matches!(
            step(&mut s, r#"{"seq":9,"action":"sync"}"#),
            Step::Sync(9)
        ));
    }

    #[test]
    fn pubkeys_and_flags() {
        assert_eq!(parse_pubkey(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_pubkey(&"AB".repeat(32)).is_err());
        assert!(parse_pubkey(&"ab".repeat(31)).is_err());
        assert_eq!(parse_flags(&[]).unwrap(), BcastFlags::EMPTY);
        assert_eq!(parse_flags(&["nip70_enforce".into()]).unwrap().bits(), 0x02);
    }
}
