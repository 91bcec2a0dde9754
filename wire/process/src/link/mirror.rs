//! The state a worker holds, mirrored by the parent so that a supervised
//! handle can rebuild it in a fresh worker (PROTOCOL.md#worker-state): the
//! live connections with their New flags, the pubkeys each authenticated
//! (in Auth order, without duplicates), and the live subscriptions of each
//! with the exact REQ bytes of their Add.
//!
//! A [`Mirror`] is I/O-free. It applies the commands that change the state
//! (New, Close, Add, Remove, Auth, with the worker's rules of
//! PROTOCOL.md#worker-semantics: an Add or Auth for an unknown conn is
//! ignored, a New for a live conn resets it, an Add replaces a sub of the
//! same sub_id) and, through [`Mirror::on_closed`], the `CLOSED` frames by
//! which a worker refuses an Add (PROTOCOL.md#add-failure). Its
//! [`Mirror::replay`] gives the commands that rebuild the same state in a
//! worker that has none.
//!
//! ```
//! use broadcast_process::link::Mirror;
//! use broadcast_wire::{NewFlags, SubCommand};
//!
//! let mut m = Mirror::new();
//! m.apply(&SubCommand::New { conn: 3, flags: NewFlags::WHITELISTED });
//! m.apply(&SubCommand::Close { conn: 9, flags: Default::default() }); // unknown: nothing
//! assert_eq!((m.conns(), m.subscriptions()), (1, 0));
//! assert_eq!(m.replay(), vec![SubCommand::New { conn: 3, flags: NewFlags::WHITELISTED }]);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;

use broadcast_wire::{NewFlags, PUBKEY_LEN, ReservedFlags, SubCommand, SubId};
use bytes::Bytes;

/// One live connection of the mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Conn {
    flags: NewFlags,
    auths: Vec<[u8; PUBKEY_LEN]>,
    /// Each sub's REQ, and the mirror's sequence number of its last Add
    /// (the replay's order).
    subs: HashMap<SubId, Sub>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sub {
    seq: u64,
    req: Bytes,
}

/// The parent's copy of one worker's state: what a supervised handle replays
/// into a fresh worker (PROTOCOL.md#worker-state).
///
/// ```
/// use broadcast_process::link::Mirror;
/// use broadcast_wire::{NewFlags, ReservedFlags, SubCommand, SubId};
///
/// let mut m = Mirror::new();
/// m.apply(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
/// let add = |req: &'static str| SubCommand::Add {
///     conn: 1,
///     flags: ReservedFlags::EMPTY,
///     sub_id: SubId::try_from("s").unwrap(),
///     req: req.into(),
/// };
/// m.apply(&add(r#"["REQ","s",{"kinds":[1]}]"#));
/// m.apply(&add(r#"["REQ","s",{"kinds":[2]}]"#)); // replaces it
/// assert_eq!(m.subscriptions(), 1);
/// assert_eq!(m.replay()[1], add(r#"["REQ","s",{"kinds":[2]}]"#));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirror {
    conns: BTreeMap<i32, Conn>,
    subs: usize,
    auths: usize,
    /// Adds applied so far: the next Add's sequence number.
    adds: u64,
}

impl Mirror {
    /// An empty mirror: a worker that has received nothing.
    ///
    /// ```
    /// let m = broadcast_process::link::Mirror::new();
    /// assert!(m.replay().is_empty());
    /// ```
    pub fn new() -> Mirror {
        Mirror::default()
    }

    /// Applies `cmd` as a worker would (PROTOCOL.md#worker-semantics); a
    /// Bcast changes nothing.
    ///
    /// ```
    /// use broadcast_process::link::Mirror;
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut m = Mirror::new();
    /// m.apply(&SubCommand::Auth { conn: 1, flags: Default::default(), pubkey: [7; 32] });
    /// assert_eq!(m.auths(), 0); // conn 1 does not exist: ignored
    /// m.apply(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
    /// m.apply(&SubCommand::Auth { conn: 1, flags: Default::default(), pubkey: [7; 32] });
    /// m.apply(&SubCommand::Auth { conn: 1, flags: Default::default(), pubkey: [7; 32] });
    /// assert_eq!(m.auths(), 1); // deduplicated
    /// ```
    pub fn apply(&mut self, cmd: &SubCommand) {
        match cmd {
            SubCommand::New { conn, flags } => {
                self.drop_conn(*conn);
                self.conns.insert(
                    *conn,
                    Conn {
                        flags: *flags,
                        ..Conn::default()
                    },
                );
            }
            SubCommand::Close { conn, .. } => self.drop_conn(*conn),
            SubCommand::Add {
                conn, sub_id, req, ..
            } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    self.adds += 1;
                    let sub = Sub {
                        seq: self.adds,
                        req: req.clone(),
                    };
                    if c.subs.insert(sub_id.clone(), sub).is_none() {
                        self.subs += 1;
                    }
                }
            }
            SubCommand::Remove { conn, sub_id, .. } => {
                self.remove_sub(*conn, sub_id);
            }
            SubCommand::Auth { conn, pubkey, .. } => {
                if let Some(c) = self.conns.get_mut(conn)
                    && !c.auths.contains(pubkey)
                {
                    c.auths.push(*pubkey);
                    self.auths += 1;
                }
            }
            SubCommand::Bcast { .. } => {}
        }
    }

    fn drop_conn(&mut self, conn: i32) {
        if let Some(old) = self.conns.remove(&conn) {
            self.subs -= old.subs.len();
            self.auths -= old.auths.len();
        }
    }

    /// Removes the subscription `sub_id` of `conn`, if there is one, and
    /// says whether there was.
    fn remove_sub(&mut self, conn: i32, sub_id: &SubId) -> bool {
        let removed = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.subs.remove(sub_id))
            .is_some();
        if removed {
            self.subs -= 1;
        }
        removed
    }

    /// A `CLOSED` frame for (`conn`, `sub_id`) was read, answering the
    /// latest Add of that subscription: the worker refused it and holds no
    /// subscription of that sub_id (PROTOCOL.md#add-failure). Returns
    /// whether the mirror had it.
    ///
    /// ```
    /// use broadcast_process::link::Mirror;
    /// use broadcast_wire::{NewFlags, SubCommand, SubId};
    ///
    /// let mut m = Mirror::new();
    /// m.apply(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
    /// let sub_id = SubId::try_from("s").unwrap();
    /// m.apply(&SubCommand::Add { conn: 1, flags: Default::default(), sub_id, req: "[]".into() });
    /// assert!(m.on_closed(1, "s"));
    /// assert_eq!(m.subscriptions(), 0);
    /// ```
    pub fn on_closed(&mut self, conn: i32, sub_id: &str) -> bool {
        SubId::try_from(sub_id).is_ok_and(|id| self.remove_sub(conn, &id))
    }

    /// Whether `conn` has the subscription `sub_id`.
    ///
    /// ```
    /// assert!(!broadcast_process::link::Mirror::new().has_sub(1, "s"));
    /// ```
    pub fn has_sub(&self, conn: i32, sub_id: &str) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| SubId::try_from(sub_id).is_ok_and(|id| c.subs.contains_key(&id)))
    }

    /// Whether `conn` is a live connection.
    ///
    /// ```
    /// assert!(!broadcast_process::link::Mirror::new().has_conn(1));
    /// ```
    pub fn has_conn(&self, conn: i32) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Live connections.
    ///
    /// ```
    /// assert_eq!(broadcast_process::link::Mirror::new().conns(), 0);
    /// ```
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    /// Live subscriptions, over all connections.
    ///
    /// ```
    /// assert_eq!(broadcast_process::link::Mirror::new().subscriptions(), 0);
    /// ```
    pub fn subscriptions(&self) -> usize {
        self.subs
    }

    /// Authenticated pubkeys, over all connections.
    ///
    /// ```
    /// assert_eq!(broadcast_process::link::Mirror::new().auths(), 0);
    /// ```
    pub fn auths(&self) -> usize {
        self.auths
    }

    /// The commands that rebuild this state in a worker that has none, in
    /// an order the spec allows: per connection (in conn order), its New,
    /// then its Auths in the order they were first given, then its Adds in
    /// the order they were last added (PROTOCOL.md#parent-lifecycle: New
    /// first). The REQs are the bytes of the Adds, shared, not copied.
    ///
    /// ```
    /// use broadcast_process::link::Mirror;
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut m = Mirror::new();
    /// m.apply(&SubCommand::New { conn: 2, flags: NewFlags::EMPTY });
    /// m.apply(&SubCommand::Auth { conn: 2, flags: Default::default(), pubkey: [1; 32] });
    /// let replay = m.replay();
    /// assert!(matches!(replay[0], SubCommand::New { conn: 2, .. }));
    /// assert!(matches!(replay[1], SubCommand::Auth { conn: 2, .. }));
    /// ```
    pub fn replay(&self) -> Vec<SubCommand> {
        let mut out = Vec::with_capacity(self.conns.len() + self.auths + self.subs);
        for (&conn, c) in &self.conns {
            out.push(SubCommand::New { conn, flags: c.flags });
            out.extend(c.auths.iter().map(|&pubkey| SubCommand::Auth {
                conn,
                flags: ReservedFlags::EMPTY,
                pubkey,
            }));
            let mut subs: Vec<(&SubId, &Sub)> = c.subs.iter().collect();
            subs.sort_unstable_by_key(|(_, sub)| sub.seq);
            out.extend(subs.into_iter().map(|(sub_id, sub)| SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: sub_id.clone(),
                req: sub.req.clone(),
            }));
        }
        out
    }

    /// An estimate of the heap memory the mirror holds: its maps (at their
    /// capacity) and the bytes of every sub_id and REQ, counted as owned
    /// even where they are shared with the caller's buffers. A measure for
    /// sizing, not an exact allocator count.
    ///
    /// ```
    /// use broadcast_process::link::Mirror;
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let mut m = Mirror::new();
    /// let empty = m.approx_heap_bytes();
    /// m.apply(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
    /// assert!(m.approx_heap_bytes() > empty);
    /// ```
    pub fn approx_heap_bytes(&self) -> usize {
        // A B-tree node holds up to 11 entries; count a node's share and
        // its pointers as about one entry and a word per entry.
        let per_conn = size_of::<i32>() + size_of::<Conn>() + size_of::<usize>();
        let per_sub_slot = size_of::<(SubId, Sub)>() + 1; // hashbrown: one control byte
        self.conns
            .values()
            .map(|c| {
                per_conn
                    + c.auths.capacity() * PUBKEY_LEN
                    + c.subs.capacity() * per_sub_slot
                    + c.subs
                        .iter()
                        .map(|(id, sub)| id.len() + sub.req.len())
                        .sum::<usize>()
            })
            .sum()
    }
}

/// The sub_id of a `CLOSED` frame's data (PROTOCOL.md#closed-message), decoded
/// from its JSON string (PROTOCOL.md#sub-id-json-string), or `None` if the
/// data is not a `CLOSED` message. Only the prefix is read, and at most
/// 6 × 64 escaped bytes of it: a sub_id has at most 64 bytes.
///
/// ```
/// use broadcast_process::link::closed_sub_id;
///
/// assert_eq!(closed_sub_id(br#"["CLOSED","a\"b","invalid: x"]"#).as_deref(), Some("a\"b"));
/// assert_eq!(closed_sub_id(br#"["EVENT","s",{}]"#), None);
/// ```
pub fn closed_sub_id(data: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = br#"["CLOSED",""#;
    let rest = data.strip_prefix(PREFIX)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() && i <= 6 * SubId::MAX_LEN {
        match rest[i] {
            b'"' => {
                return if rest[i + 1..].starts_with(b",") {
                    String::from_utf8(out).ok()
                } else {
                    None
                };
            }
            b'\\' => {
                let esc = *rest.get(i + 1)?;
                i += 2;
                out.push(match esc {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => {
                        let hex = rest.get(i..i + 4)?;
                        let s = std::str::from_utf8(hex).ok()?;
                        let v = u8::try_from(u16::from_str_radix(s, 16).ok()?).ok()?;
                        i += 4;
                        v
                    }
                    _ => return None,
                });
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(s: &str) -> SubId {
        SubId::try_from(s).unwrap()
    }

    #[test]
    fn new_on_a_live_conn_resets_it() {
        let mut m = Mirror::new();
        m.apply(&SubCommand::New {
            conn: 1,
            flags: NewFlags::WHITELISTED,
        });
        m.apply(&SubCommand::Auth {
            conn: 1,
            flags: ReservedFlags::EMPTY,
            pubkey: [1; 32],
        });
        m.apply(&SubCommand::Add {
            conn: 1,
            flags: ReservedFlags::EMPTY,
            sub_id: sub("a"),
            req: "r".into(),
        });
        m.apply(&SubCommand::New {
            conn: 1,
            flags: NewFlags::EMPTY,
        });
        assert_eq!((m.conns(), m.auths(), m.subscriptions()), (1, 0, 0));
        assert_eq!(
            m.replay(),
            vec![SubCommand::New {
                conn: 1,
                flags: NewFlags::EMPTY
            }]
        );
    }

    #[test]
    fn close_drops_subs_and_auths() {
        let mut m = Mirror::new();
        m.apply(&SubCommand::New {
            conn: 1,
            flags: NewFlags::EMPTY,
        });
        m.apply(&SubCommand::Add {
            conn: 1,
            flags: ReservedFlags::EMPTY,
            sub_id: sub("a"),
            req: "r".into(),
        });
        m.apply(&SubCommand::Add {
            conn: 2,
            flags: ReservedFlags::EMPTY,
            sub_id: sub("a"),
            req: "r".into(),
        });
        assert_eq!(m.subscriptions(), 1);
        m.apply(&SubCommand::Close {
            conn: 1,
            flags: ReservedFlags::EMPTY,
        });
        assert_eq!((m.conns(), m.auths(), m.subscriptions()), (0, 0, 0));
        assert!(m.replay().is_empty());
        assert_eq!(m.approx_heap_bytes(), 0);
    }

    #[test]
    fn closed_prefix_decodes_every_escape() {
        assert_eq!(
            closed_sub_id(br#"["CLOSED","\\\b\t\n\f\r\u001b/","x"]"#).as_deref(),
            Some("\\\u{8}\t\n\u{c}\r\u{1b}/")
        );
        assert_eq!(closed_sub_id(br#"["CLOSED","s""#), None);
        assert_eq!(closed_sub_id(br#"["CLOSED","s"#), None);
        assert_eq!(closed_sub_id(br#"["CLOSED","\x","x"]"#), None);
        let long = format!(r#"["CLOSED","{}","x"]"#, "a".repeat(10_000));
        assert_eq!(closed_sub_id(long.as_bytes()), None);
    }

    /// What `approx_heap_bytes` counts per subscription, for the docs: 10k
    /// conns with 10 subs each, a 16-byte sub_id and a 60-byte REQ.
    #[test]
    fn bytes_per_subscription() {
        let mut m = Mirror::new();
        for conn in 0..10_000 {
            m.apply(&SubCommand::New {
                conn,
                flags: NewFlags::EMPTY,
            });
            for s in 0..10 {
                let id = format!("sub-{conn:06}-{s:05}");
                let req = format!(r##"["REQ","{id}",{{"kinds":[1],"#t":["x{s:018}"]}}]"##);
                m.apply(&SubCommand::Add {
                    conn,
                    flags: ReservedFlags::EMPTY,
                    sub_id: sub(&id),
                    req: req.into(),
                });
            }
        }
        let per_sub = m.approx_heap_bytes() / m.subscriptions();
        eprintln!(
            "mirror: {} bytes for {} subs: {per_sub} bytes per subscription",
            m.approx_heap_bytes(),
            m.subscriptions()
        );
        assert!((100..400).contains(&per_sub), "{per_sub}");
    }

    // ---- the mirror against the reference worker ---------------------------
    //
    // The reference worker is a dev-dependency inside the repository only
    // (build.rs sets `reference_worker` there): `cargo package` drops it, so
    // these tests are compiled in the repository and not from the `.crate`.

    #[cfg(reference_worker)]
    mod against_the_reference_worker {
        use super::*;
        use broadcast_wire::BroadcastFrame;
        use broadcast_worker::{Outcome, Worker};
        use proptest::prelude::*;

        #[test]
        fn the_closed_prefix_reads_the_workers_own_closed_frames() {
            for (sub_id, reason) in [("a\"b", "r"), ("\u{1}é", "")] {
                let frame = broadcast_worker::closed_frame(
                    3,
                    sub_id,
                    &broadcast_worker::parse_req(b"[", sub_id).unwrap_err(),
                );
                let _ = reason;
                assert_eq!(closed_sub_id(&frame.data).as_deref(), Some(sub_id));
            }
        }

        #[derive(Debug, Clone)]
        enum Op {
            Cmd(SubCommand),
            /// The worker dies: replay the mirror into a fresh one.
            Restart,
        }

        const REQS: [&str; 3] = [
            r#"["REQ","SUB",{"kinds":[1]}]"#,
            r##"["REQ","SUB",{"#t":["x"]}]"##,
            r#"["REQ","SUB",{"kinds":"bad"}]"#,
        ];

        fn op() -> impl Strategy<Value = Op> {
            let conn = 0..4i32;
            let sub_id = prop::sample::select(vec!["a", "b", "c\"d"]);
            prop_oneof![
                (conn.clone(), any::<bool>()).prop_map(|(conn, w)| Op::Cmd(SubCommand::New {
                    conn,
                    flags: if w { NewFlags::WHITELISTED } else { NewFlags::EMPTY }
                })),
                conn.clone().prop_map(|conn| Op::Cmd(SubCommand::Close {
                    conn,
                    flags: ReservedFlags::EMPTY
                })),
                (conn.clone(), sub_id.clone(), 0..REQS.len()).prop_map(|(conn, s, r)| Op::Cmd(
                    SubCommand::Add {
                        conn,
                        flags: ReservedFlags::EMPTY,
                        sub_id: sub(s),
                        req: REQS[r].replace("SUB", &s.replace('"', "\\\"")).into(),
                    }
                )),
                (conn.clone(), sub_id).prop_map(|(conn, s)| Op::Cmd(SubCommand::Remove {
                    conn,
                    flags: ReservedFlags::EMPTY,
                    sub_id: sub(s)
                })),
                (conn, 0..3u8).prop_map(|(conn, k)| Op::Cmd(SubCommand::Auth {
                    conn,
                    flags: ReservedFlags::EMPTY,
                    pubkey: [k; 32]
                })),
                Just(Op::Restart),
            ]
        }

        /// The state of `w` for conns 0..4: whitelisted, auths in order, sorted sub_ids.
        type State = Vec<(i32, bool, Vec<[u8; 32]>, Vec<String>)>;

        fn state(w: &Worker) -> State {
            (0..4)
                .filter_map(|conn| {
                    let c = w.connection(conn)?;
                    let mut subs: Vec<String> = c.subs.keys().map(|k| k.to_string()).collect();
                    subs.sort();
                    Some((conn, c.whitelisted, c.authenticated.clone(), subs))
                })
                .collect()
        }

        proptest! {
            /// Random commands with worker deaths in between: after each
            /// restart, a fresh worker fed the replay (its CLOSED frames
            /// observed as a handle does) holds the state of a worker fed
            /// every live command, and a Bcast reaches the same subscriptions.
            #[test]
            fn replay_rebuilds_the_workers_state(ops in prop::collection::vec(op(), 0..60)) {
                let mut live = Worker::new();
                let mut current = Worker::new();
                let mut m = Mirror::new();
                // Each conn's sub_ids in the order they were last added.
                let mut order: BTreeMap<i32, Vec<SubId>> = BTreeMap::new();
                let observe = |m: &mut Mirror, order: &mut BTreeMap<i32, Vec<SubId>>, frames: Vec<BroadcastFrame>| {
                    for f in frames {
                        if let Some(s) = closed_sub_id(&f.data)
                            && m.on_closed(f.conn, &s)
                            && let Some(subs) = order.get_mut(&f.conn)
                        {
                            subs.retain(|id| id.as_str() != s);
                        }
                    }
                };
                for op in ops {
                    match op {
                        Op::Cmd(cmd) => {
                            let mut out = Vec::new();
                            live.handle(&cmd, &mut Vec::new());
                            let _: Outcome = current.handle(&cmd, &mut out);
                            match &cmd {
                                SubCommand::New { conn, .. } => {
                                    order.insert(*conn, Vec::new());
                                }
                                SubCommand::Close { conn, .. } => {
                                    order.remove(conn);
                                }
                                SubCommand::Add { conn, sub_id, .. } | SubCommand::Remove { conn, sub_id, .. } => {
                                    if let Some(subs) = order.get_mut(conn) {
                                        subs.retain(|id| id != sub_id);
                                        if matches!(cmd, SubCommand::Add { .. }) {
                                            subs.push(sub_id.clone());
                                        }
                                    }
                                }
                                _ => {}
                            }
                            m.apply(&cmd);
                            observe(&mut m, &mut order, out);
                        }
                        Op::Restart => {
                            current = Worker::new();
                            let mut out = Vec::new();
                            let replay = m.replay();
                            // Each conn's Adds in the order they were last added.
                            let mut replayed: BTreeMap<i32, Vec<SubId>> = BTreeMap::new();
                            for cmd in &replay {
                                match cmd {
                                    SubCommand::New { conn, .. } => {
                                        replayed.insert(*conn, Vec::new());
                                    }
                                    SubCommand::Add { conn, sub_id, .. } => {
                                        replayed.get_mut(conn).expect("New first").push(sub_id.clone());
                                    }
                                    _ => {}
                                }
                            }
                            prop_assert_eq!(&replayed, &order);
                            for cmd in replay {
                                current.handle(&cmd, &mut out);
                            }
                            prop_assert!(out.is_empty(), "the replay of refused Adds: {out:?}");
                            observe(&mut m, &mut order, out);
                        }
                    }
                    prop_assert_eq!(state(&current), state(&live));
                    prop_assert_eq!(m.subscriptions(), live.subscription_count());
                    prop_assert_eq!(m.conns(), live.connection_count());
                }
                let ev = SubCommand::Bcast {
                    sender: -1,
                    flags: broadcast_wire::BcastFlags::EMPTY,
                    event: concat!(r#"["EVENT",{"id":"0000000000000000000000000000000000000000000000000000000000000001","#,
                        r#""pubkey":"0000000000000000000000000000000000000000000000000000000000000002","created_at":1,"kind":1,"#,
                        r#""tags":[["t","x"]],"content":"","sig":""#, "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", r#""}]"#).into(),
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                live.handle(&ev, &mut a);
                current.handle(&ev, &mut b);
                a.sort_by(|x, y| (x.conn, &x.data).cmp(&(y.conn, &y.data)));
                b.sort_by(|x, y| (x.conn, &x.data).cmp(&(y.conn, &y.data)));
                prop_assert_eq!(a, b);
            }
        }
    }
}
