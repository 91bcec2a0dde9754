//! The I/O-free policy of a supervised handle: what the worker must hold
//! (a [`Mirror`]), which commands reached it, the probe that proves what it
//! processed (PROTOCOL.md#probe), the backoff clock and the restart
//! decision, and the order in which a fresh worker is rebuilt. It takes
//! the time as a parameter and touches no fd and no process: the handles'
//! `Endpoint` owns the process and calls it.
//!
//! # How a handle drives it
//!
//! - Every command the relay sends goes either to the link (when the worker
//!   is up and nothing waits before it: [`Supervisor::direct`]) and is then
//!   recorded with [`Supervisor::queued`], or to the supervisor's own
//!   **backlog** ([`Supervisor::push_backlog`]), which
//!   [`Supervisor::next_backlog`] feeds to the link in order.
//! - After each flush, [`Supervisor::written`] learns how many commands the
//!   link has completely written: only then does a state command change the
//!   mirror (so the mirror is the state of the commands the worker got, and
//!   whatever was still queued is carried over, in order, after the
//!   replay), and a Bcast count as written.
//! - Every frame read goes through [`Supervisor::on_frame`], which consumes
//!   the probe's frames and applies each `CLOSED` to the mirror. A `CLOSED`
//!   answering a replayed Add is passed on: a subscription whose refusal
//!   the relay has read is not in the mirror, so it is never replayed, and
//!   such a `CLOSED` is always the client's first for that Add
//!   (PROTOCOL.md#parent-replay: one answer per Add).
//! - [`Supervisor::want_probe`] says when to send a probe Bcast (at most one
//!   outstanding): after writes, and when idle for the liveness period.
//!   [`Supervisor::unresponsive`] says when the outstanding one is late.
//! - On a death, [`Supervisor::died`] decides: restart after a backoff, or
//!   give up (crash loop). [`Supervisor::respawned`] then queues the probe
//!   set-up, the replay and the carried-over commands, and returns the
//!   [`Restart`] to report.
//!
//! ```
//! use broadcast_process::link::{RestartCause, Supervision, Supervisor};
//! use broadcast_wire::{NewFlags, SubCommand};
//! use std::time::{Duration, Instant};
//!
//! let t0 = Instant::now();
//! let mut sup = Supervisor::new(Supervision::new(), t0);
//! // The probe set-up goes first: hand it to the link (here: taken whole).
//! while sup.next_backlog(|_| true) {}
//! sup.written(2, t0);
//! let new = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
//! assert!(sup.direct());
//! sup.queued(&new);
//! sup.written(3, t0); // the link wrote it: the mirror has conn 1
//! sup.died(RestartCause::Unresponsive, t0);
//! let at = sup.next_deadline(t0).unwrap();
//! assert_eq!(at, t0 + Duration::from_millis(50)); // the first backoff
//! let restart = sup.respawned(None, at);
//! assert_eq!((restart.number, restart.replayed.conns), (1, 1));
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use broadcast_wire::{
    BcastFlags, BroadcastFrame, FramingError, HEADER_LEN, NewFlags, OversizeFrame, ReservedFlags, SubCommand,
    SubId,
};
use bytes::Bytes;

use super::error::{Backpressure, SendError};
use super::mirror::{Mirror, closed_sub_id};

/// The conn a supervised handle keeps for its probe by default: i32::MAX,
/// as in PROTOCOL.md#probe-setup. The relay must not use it.
///
/// ```
/// assert_eq!(broadcast_process::link::DEFAULT_PROBE_CONN, i32::MAX);
/// ```
pub const DEFAULT_PROBE_CONN: i32 = i32::MAX;

/// The sub_id of the probe subscription.
const PROBE_SUB_ID: &str = "broadcast-process-probe";
/// The probe REQ: kind 1059 (PRIVILEGED, PROTOCOL.md#access-rules) with the
/// probe tag. The probe Bcast sets `need_filter`, so of the relay's
/// connections only whitelisted ones can match it; the handle drops those
/// copies anyway (by their fixed suffix, [`PROBE_SUFFIX`]).
const PROBE_REQ: &str =
    r##"["REQ","broadcast-process-probe",{"kinds":[1059],"#t":["broadcast-process-probe"]}]"##;
/// Everything of a probe event after its id: a fixed pubkey and a fixed
/// signature no real (verified) event can carry, so a frame that ends with
/// it (plus the `]` of the EVENT message) is a probe's, whatever its conn.
const PROBE_SUFFIX: &str = concat!(
    r#"","pubkey":"bcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbc","created_at":0,"#,
    r#""kind":1059,"tags":[["t","broadcast-process-probe"]],"content":"","sig":""#,
    "bcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbc",
    "bcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbc",
    r#""}]"#
);

/// Settings of a supervised handle: backoff, crash-loop limit, liveness
/// deadline and the reserved probe conn.
///
/// ```
/// use broadcast_process::link::Supervision;
/// use std::time::Duration;
///
/// let s = Supervision::new()
///     .backoff(Duration::from_millis(10), Duration::from_secs(1))
///     .max_restarts_in(3, Duration::from_secs(10))
///     .liveness(None);
/// assert_eq!(s.liveness_deadline(), None);
/// assert_eq!(s.probe(), i32::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Supervision {
    backoff_initial: Duration,
    backoff_max: Duration,
    max_restarts: u32,
    window: Duration,
    liveness: Option<Duration>,
    probe_conn: i32,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            max_restarts: 5,
            window: Duration::from_secs(30),
            liveness: Some(Duration::from_secs(10)),
            probe_conn: DEFAULT_PROBE_CONN,
        }
    }
}

impl Supervision {
    /// The defaults: backoff from 50 ms doubling to 5 s, at most 5
    /// restarts within 30 s, a 10 s liveness deadline, probe conn i32::MAX.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = broadcast_process::link::Supervision::new();
    /// assert_eq!(s.liveness_deadline(), Some(Duration::from_secs(10)));
    /// ```
    pub fn new() -> Supervision {
        Supervision::default()
    }

    /// The first restart's delay, and the most any delay grows to: each
    /// restart within the window waits twice as long as the one before.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = broadcast_process::link::Supervision::new().backoff(Duration::ZERO, Duration::ZERO);
    /// assert_eq!(s.backoff_bounds(), (Duration::ZERO, Duration::ZERO));
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Supervision {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// The crash-loop limit: a death that would be restart number
    /// `restarts + 1` within `window` is a permanent failure.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = broadcast_process::link::Supervision::new().max_restarts_in(2, Duration::from_secs(1));
    /// assert_eq!(s.restart_limit(), (2, Duration::from_secs(1)));
    /// ```
    pub fn max_restarts_in(mut self, restarts: u32, window: Duration) -> Supervision {
        self.max_restarts = restarts;
        self.window = window;
        self
    }

    /// How long a probe may stay unanswered (and how long the handle stays
    /// idle before it sends one) before the worker is killed and replaced
    /// as unresponsive; `None`: never.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = broadcast_process::link::Supervision::new().liveness(Some(Duration::from_secs(2)));
    /// assert_eq!(s.liveness_deadline(), Some(Duration::from_secs(2)));
    /// ```
    pub fn liveness(mut self, deadline: Option<Duration>) -> Supervision {
        self.liveness = deadline;
        self
    }

    /// The conn reserved for the probe (i32::MAX by default): the relay
    /// must not use it, and a command naming it is refused with
    /// [`SendError::ReservedConn`].
    ///
    /// ```
    /// let s = broadcast_process::link::Supervision::new().probe_conn(1 << 30);
    /// assert_eq!(s.probe(), 1 << 30);
    /// ```
    pub fn probe_conn(mut self, conn: i32) -> Supervision {
        self.probe_conn = conn;
        self
    }

    /// The backoff's first and largest delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (first, max) = broadcast_process::link::Supervision::new().backoff_bounds();
    /// assert_eq!((first, max), (Duration::from_millis(50), Duration::from_secs(5)));
    /// ```
    pub fn backoff_bounds(&self) -> (Duration, Duration) {
        (self.backoff_initial, self.backoff_max)
    }

    /// The crash-loop limit: restarts, and the window they are counted in.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(broadcast_process::link::Supervision::new().restart_limit(), (5, Duration::from_secs(30)));
    /// ```
    pub fn restart_limit(&self) -> (u32, Duration) {
        (self.max_restarts, self.window)
    }

    /// The liveness deadline.
    ///
    /// ```
    /// assert!(broadcast_process::link::Supervision::new().liveness_deadline().is_some());
    /// ```
    pub fn liveness_deadline(&self) -> Option<Duration> {
        self.liveness
    }

    /// The reserved probe conn.
    ///
    /// ```
    /// assert_eq!(broadcast_process::link::Supervision::new().probe(), i32::MAX);
    /// ```
    pub fn probe(&self) -> i32 {
        self.probe_conn
    }
}

/// Why a supervised worker was replaced.
///
/// ```
/// use broadcast_process::link::RestartCause;
/// assert!(RestartCause::Unresponsive.to_string().contains("probe"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartCause {
    /// Its output ended: it exited (the status, once reaped; `None` if it
    /// could not be reaped).
    Exited(Option<ExitStatus>),
    /// It was killed by this signal (not by the handle).
    Signaled(i32),
    /// Its output broke the framing rules (PROTOCOL.md#fatal-and-non-fatal):
    /// the handle killed it.
    FramingBroken(FramingError),
    /// A probe went unanswered past the liveness deadline: the handle
    /// killed it (`SIGKILL`).
    Unresponsive,
    /// A write found its input closed: the handle killed it.
    WriteGone,
    /// Spawning its replacement failed; the next attempt follows the backoff.
    SpawnFailed(String),
    /// Reading its output failed with an I/O error (not a framing error,
    /// not its end): the handle killed it.
    ReadFailed(String),
}

impl fmt::Display for RestartCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartCause::Exited(Some(s)) => write!(f, "the worker exited ({s})"),
            RestartCause::Exited(None) => write!(f, "the worker's output ended"),
            RestartCause::Signaled(sig) => write!(f, "the worker was killed by signal {sig}"),
            RestartCause::FramingBroken(e) => write!(f, "the worker broke the framing: {e}"),
            RestartCause::Unresponsive => write!(f, "the worker did not answer a probe in time"),
            RestartCause::WriteGone => write!(f, "the worker closed its input"),
            RestartCause::SpawnFailed(e) => write!(f, "spawning a worker failed: {e}"),
            RestartCause::ReadFailed(e) => write!(f, "reading the worker's output failed: {e}"),
        }
    }
}

/// What a restart rebuilt in the new worker.
///
/// ```
/// let r = broadcast_process::link::Replayed::default();
/// assert_eq!((r.conns, r.auths, r.subs), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Replayed {
    /// Connections (New).
    pub conns: usize,
    /// Authenticated pubkeys (Auth).
    pub auths: usize,
    /// Subscriptions (Add).
    pub subs: usize,
}

/// A supervised worker was replaced: reported once per restart, as
/// `Incoming::WorkerRestarted`.
///
/// ```
/// use broadcast_process::link::{Replayed, Restart, RestartCause};
///
/// let r = Restart { number: 1, cause: RestartCause::Unresponsive, lost_bcasts: 2, carried_commands: 0, replayed: Replayed::default() };
/// assert!(r.to_string().contains("2 Bcast"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// 1 for the first restart of this handle, and so on.
    pub number: u64,
    /// Why the worker was replaced (the last cause, when several attempts
    /// were needed).
    pub cause: RestartCause,
    /// Bcasts written to the dead worker after the last answered probe: an
    /// upper bound of those it may not have processed. The frames it did
    /// write for them were read to the end and delivered before this
    /// report; they are never sent again, so no client gets an event twice.
    pub lost_bcasts: u64,
    /// Commands the relay had sent that the dead worker never got whole:
    /// queued again, in order, after the replay (not lost).
    pub carried_commands: u64,
    /// The state rebuilt in the new worker.
    pub replayed: Replayed,
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker restart #{}: {}; {} Bcast(s) possibly lost, {} command(s) carried over, replayed {} conn(s), {} auth(s), {} subscription(s)",
            self.number,
            self.cause,
            self.lost_bcasts,
            self.carried_commands,
            self.replayed.conns,
            self.replayed.auths,
            self.replayed.subs
        )
    }
}

/// Where a supervised worker stands.
///
/// ```
/// use broadcast_process::link::{Phase, Supervision, Supervisor};
/// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
/// assert_eq!(sup.phase(), Phase::Running);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// A worker runs.
    Running,
    /// The worker died; a new one is spawned at this instant.
    Backoff(Instant),
    /// Too many restarts within the window: no worker any more.
    GaveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The relay's command.
    Relay,
    /// Probe set-up, probe Bcast, replay: the handle's own.
    Internal,
}

#[derive(Debug)]
struct Queued {
    cmd: SubCommand,
    origin: Origin,
}

/// Adds of one (conn, sub_id) written whose outcome is not known yet.
#[derive(Debug, Default)]
struct PendingAdds {
    /// Written and not yet settled by an answered probe.
    written: u32,
    /// `CLOSED` frames read for them (they settle the oldest first).
    closed: u32,
}

/// The outstanding probe.
#[derive(Debug)]
struct Probe {
    /// Its event object's bytes, as the frame carries them.
    event: Bytes,
    queued_at: Instant,
    /// Once written: its write sequence number, and the relay Bcasts
    /// written before it.
    written: Option<(u64, u64)>,
}

/// The supervision policy of one worker, I/O-free: what the worker holds,
/// what reached it, the probe, the backoff and the restart decision; the
/// `Endpoint` of a supervised [`Broadcaster`](crate::broadcaster::Broadcaster) drives it.
#[derive(Debug)]
pub struct Supervisor {
    cfg: Supervision,
    mirror: Mirror,
    in_link: VecDeque<Queued>,
    backlog: VecDeque<Queued>,
    backlog_relay_bytes: usize,
    /// Commands written to the current worker (its link's count).
    link_sent: u64,
    /// Write sequence number, over all workers.
    seq: u64,
    written_bcasts: u64,
    confirmed_bcasts: u64,
    written_since_probe: bool,
    probe: Option<Probe>,
    probes: u64,
    last_answer: Instant,
    adds: VecDeque<(u64, i32, SubId)>,
    pending: HashMap<(i32, SubId), PendingAdds>,
    phase: Phase,
    deaths: VecDeque<Instant>,
    restarts: u64,
    cause: Option<RestartCause>,
    lost: u64,
    /// The relay ended the command stream: the worker finishes on purpose
    /// and is not probed, judged or replaced any more.
    write_closed: bool,
}

impl Supervisor {
    /// The policy for a worker that has just been spawned at `now`; the
    /// probe set-up is the first thing in its backlog.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// assert!(!sup.direct()); // the probe set-up goes first
    /// ```
    pub fn new(cfg: Supervision, now: Instant) -> Supervisor {
        let mut sup = Supervisor {
            cfg,
            mirror: Mirror::new(),
            in_link: VecDeque::new(),
            backlog: VecDeque::new(),
            backlog_relay_bytes: 0,
            link_sent: 0,
            seq: 0,
            written_bcasts: 0,
            confirmed_bcasts: 0,
            written_since_probe: false,
            probe: None,
            probes: 0,
            last_answer: now,
            adds: VecDeque::new(),
            pending: HashMap::new(),
            phase: Phase::Running,
            deaths: VecDeque::new(),
            restarts: 0,
            cause: None,
            lost: 0,
            write_closed: false,
        };
        sup.backlog
            .extend(sup.probe_setup().into_iter().map(|cmd| Queued {
                cmd,
                origin: Origin::Internal,
            }));
        sup
    }

    fn probe_setup(&self) -> [SubCommand; 2] {
        let conn = self.cfg.probe_conn;
        [
            SubCommand::New {
                conn,
                flags: NewFlags::WHITELISTED,
            },
            SubCommand::Add {
                conn,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from(PROBE_SUB_ID).expect("a valid sub_id"),
                req: Bytes::from_static(PROBE_REQ.as_bytes()),
            },
        ]
    }

    /// The settings.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// assert_eq!(sup.config().probe(), i32::MAX);
    /// ```
    pub fn config(&self) -> &Supervision {
        &self.cfg
    }

    /// The state the worker holds (as of the commands written to it).
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// assert_eq!(sup.mirror().conns(), 0); // the probe conn is not the relay's
    /// ```
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// Where the worker stands.
    ///
    /// ```
    /// use broadcast_process::link::{Phase, Supervision, Supervisor};
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// assert_eq!(sup.phase(), Phase::Running);
    /// ```
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Restarts so far.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// assert_eq!(Supervisor::new(Supervision::new(), std::time::Instant::now()).restarts(), 0);
    /// ```
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Whether a relay command may go straight to the link: a worker runs
    /// and nothing waits in the backlog before it.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// assert!(!Supervisor::new(Supervision::new(), std::time::Instant::now()).direct());
    /// ```
    pub fn direct(&self) -> bool {
        self.phase == Phase::Running && self.backlog.is_empty()
    }

    /// Whether the backlog holds commands for the link.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// assert!(Supervisor::new(Supervision::new(), std::time::Instant::now()).has_backlog());
    /// ```
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Refuses what the relay may not send while supervised: a command
    /// naming the probe conn, and anything once supervision gave up.
    ///
    /// ```
    /// use broadcast_process::link::{SendError, Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    ///
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// let cmd = SubCommand::New { conn: i32::MAX, flags: NewFlags::EMPTY };
    /// assert_eq!(sup.admit(&cmd), Err(SendError::ReservedConn { conn: i32::MAX }));
    /// ```
    pub fn admit(&self, cmd: &SubCommand) -> Result<(), SendError> {
        if self.write_closed {
            return Err(SendError::WriteClosed);
        }
        if self.phase == Phase::GaveUp {
            return Err(SendError::SupervisionGaveUp);
        }
        if cmd.conn() == self.cfg.probe_conn {
            return Err(SendError::ReservedConn { conn: cmd.conn() });
        }
        Ok(())
    }

    /// Records a relay command the link accepted.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// let mut sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// sup.queued(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
    /// ```
    pub fn queued(&mut self, cmd: &SubCommand) {
        self.in_link.push_back(Queued {
            cmd: cmd.clone(),
            origin: Origin::Relay,
        });
    }

    /// Whether [`Supervisor::push_backlog`] would take `cmd` now: `Ok`, or
    /// the error it would return. Nothing changes (for an all-or-none
    /// admission across several handles).
    ///
    /// ```
    /// use broadcast_process::link::{SendError, Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// let mut sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// let new = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
    /// sup.push_backlog(&new, 20, 1024).unwrap();
    /// assert!(matches!(sup.check_backlog(&new, 20, 1024), Err(SendError::Backpressure(_))));
    /// ```
    pub fn check_backlog(&self, cmd: &SubCommand, limit: usize, max_payload: u32) -> Result<(), SendError> {
        cmd.validate().map_err(SendError::Invalid)?;
        let len = cmd.encoded_len();
        if len > max_payload as usize {
            return Err(SendError::TooLarge(OversizeFrame {
                len,
                max: max_payload,
            }));
        }
        let needed = HEADER_LEN + len;
        let queued = self.backlog_relay_bytes;
        if queued > 0 && queued + needed > limit {
            return Err(SendError::Backpressure(Backpressure {
                queued,
                needed,
                limit,
            }));
        }
        Ok(())
    }

    /// Queues a relay command in the backlog (the worker is down, or the
    /// backlog is not empty yet), after validating it as the link would.
    /// The relay's commands in the backlog are bounded by `limit` bytes
    /// (the queue limit): over it, [`SendError::Backpressure`].
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// let mut sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// sup.push_backlog(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY }, 1024, 1024).unwrap();
    /// ```
    pub fn push_backlog(
        &mut self,
        cmd: &SubCommand,
        limit: usize,
        max_payload: u32,
    ) -> Result<(), SendError> {
        self.check_backlog(cmd, limit, max_payload)?;
        let needed = HEADER_LEN + cmd.encoded_len();
        self.backlog_relay_bytes += needed;
        self.backlog.push_back(Queued {
            cmd: cmd.clone(),
            origin: Origin::Relay,
        });
        Ok(())
    }

    /// The next backlog command for the link, while a worker runs.
    /// `offer` tries to queue it in the link: when it does, the command is
    /// recorded; when it does not (the link is full), it stays first.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let mut sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// let mut taken = 0;
    /// while sup.next_backlog(|_| { taken += 1; true }) {}
    /// assert_eq!(taken, 2); // the probe's New and Add
    /// ```
    pub fn next_backlog(&mut self, offer: impl FnOnce(&SubCommand) -> bool) -> bool {
        if self.phase != Phase::Running {
            return false;
        }
        let Some(front) = self.backlog.front() else {
            return false;
        };
        if !offer(&front.cmd) {
            return false;
        }
        let q = self.backlog.pop_front().expect("the front");
        if q.origin == Origin::Relay {
            self.backlog_relay_bytes -= HEADER_LEN + q.cmd.encoded_len();
        }
        self.in_link.push_back(q);
        true
    }

    /// The link has now written `link_sent` commands in all (its
    /// `sent_commands`): the newly written ones take effect.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// let now = std::time::Instant::now();
    /// let mut sup = Supervisor::new(Supervision::new(), now);
    /// sup.queued(&SubCommand::New { conn: 1, flags: NewFlags::EMPTY });
    /// sup.written(1, now);
    /// assert!(sup.mirror().has_conn(1));
    /// ```
    pub fn written(&mut self, link_sent: u64, now: Instant) {
        while self.link_sent < link_sent {
            self.link_sent += 1;
            let Some(q) = self.in_link.pop_front() else {
                break;
            };
            self.seq += 1;
            let seq = self.seq;
            match (&q.cmd, q.origin) {
                (SubCommand::Bcast { .. }, Origin::Relay) => {
                    self.written_bcasts += 1;
                    self.written_since_probe = true;
                }
                (SubCommand::Bcast { .. }, Origin::Internal) => {
                    if let Some(p) = self.probe.as_mut() {
                        p.written = Some((seq, self.written_bcasts));
                    }
                }
                (cmd, origin) => {
                    if let SubCommand::Add { conn, sub_id, .. } = cmd
                        && *conn != self.cfg.probe_conn
                    {
                        let p = self.pending.entry((*conn, sub_id.clone())).or_default();
                        p.written += 1;
                        self.adds.push_back((seq, *conn, sub_id.clone()));
                    }
                    if origin == Origin::Relay {
                        self.mirror.apply(cmd);
                        self.written_since_probe = true;
                    }
                }
            }
        }
        let _ = now;
    }

    /// A probe Bcast to send now, if one is due: none is outstanding, the
    /// worker runs with an empty backlog, and commands were written since
    /// the last probe, or nothing was answered for the liveness period.
    /// Hand it to the link, then call [`Supervisor::probe_queued`].
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let now = std::time::Instant::now();
    /// let sup = Supervisor::new(Supervision::new(), now);
    /// assert!(sup.want_probe(now).is_none());
    /// ```
    pub fn want_probe(&self, now: Instant) -> Option<SubCommand> {
        if self.write_closed
            || self.phase != Phase::Running
            || self.probe.is_some()
            || !self.backlog.is_empty()
        {
            return None;
        }
        let idle = self
            .cfg
            .liveness
            .is_some_and(|l| now.saturating_duration_since(self.last_answer) >= l);
        if !self.written_since_probe && !idle {
            return None;
        }
        let event = format!(r#"{{"id":"{:064x}{PROBE_SUFFIX}"#, self.probes + 1);
        let event = &event[..event.len() - 1]; // without the message's `]`
        Some(SubCommand::Bcast {
            sender: -1,
            flags: BcastFlags::NEED_FILTER,
            event: Bytes::from(format!(r#"["EVENT",{event}]"#)),
        })
    }

    /// The probe [`Supervisor::want_probe`] gave was queued in the link.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use std::time::{Duration, Instant};
    /// let t0 = Instant::now();
    /// let mut sup = Supervisor::new(Supervision::new(), t0);
    /// while sup.next_backlog(|_| true) {} // the probe set-up
    /// let later = t0 + Duration::from_secs(10);
    /// let probe = sup.want_probe(later).unwrap(); // idle for the liveness period
    /// sup.probe_queued(&probe, later);
    /// assert!(sup.want_probe(later).is_none()); // one at a time
    /// ```
    pub fn probe_queued(&mut self, probe: &SubCommand, now: Instant) {
        let SubCommand::Bcast { event, .. } = probe else {
            return;
        };
        self.probes += 1;
        self.written_since_probe = false;
        let object = event.slice(b"[\"EVENT\",".len()..event.len() - 1);
        self.probe = Some(Probe {
            event: object,
            queued_at: now,
            written: None,
        });
        self.in_link.push_back(Queued {
            cmd: probe.clone(),
            origin: Origin::Internal,
        });
    }

    /// Whether the outstanding probe is past the liveness deadline.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let now = std::time::Instant::now();
    /// assert!(!Supervisor::new(Supervision::new(), now).unresponsive(now));
    /// ```
    pub fn unresponsive(&self, now: Instant) -> bool {
        match (&self.probe, self.cfg.liveness) {
            _ if self.write_closed => false,
            (Some(p), Some(l)) => {
                self.phase == Phase::Running && now.saturating_duration_since(p.queued_at) >= l
            }
            _ => false,
        }
    }

    /// When the handle must act next without any fd being ready: the end
    /// of a backoff, a probe's liveness deadline, or the next idle probe.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use std::time::{Duration, Instant};
    /// let t0 = Instant::now();
    /// let sup = Supervisor::new(Supervision::new(), t0);
    /// assert_eq!(sup.next_deadline(t0), Some(t0 + Duration::from_secs(10)));
    /// ```
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let _ = now;
        if self.write_closed {
            return None;
        }
        match self.phase {
            Phase::Backoff(at) => Some(at),
            Phase::GaveUp => None,
            Phase::Running => {
                let l = self.cfg.liveness?;
                match &self.probe {
                    Some(p) => Some(p.queued_at + l),
                    None => Some(self.last_answer + l),
                }
            }
        }
    }

    /// Whether the handle should pass `frame` to the relay. The probe's
    /// frames (to the probe conn, or to a whitelisted relay conn whose
    /// subscription matched it) are consumed here; a `CLOSED` also updates
    /// the mirror, and is passed on (one answering a replayed Add too: the
    /// client has had no answer to that Add).
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// use broadcast_wire::BroadcastFrame;
    /// let mut sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// let f = BroadcastFrame { conn: 3, data: r#"["EVENT","s",{}]"#.into() };
    /// assert!(sup.on_frame(&f, std::time::Instant::now()));
    /// ```
    pub fn on_frame(&mut self, frame: &BroadcastFrame, now: Instant) -> bool {
        let data = &frame.data[..];
        if frame.conn == self.cfg.probe_conn {
            let answered = self
                .probe
                .as_ref()
                .is_some_and(|p| data.len() > p.event.len() && data[..data.len() - 1].ends_with(&p.event));
            if answered {
                self.probe_answered(now);
            }
            return false;
        }
        if data.ends_with(PROBE_SUFFIX.as_bytes()) {
            return false;
        }
        if let Some(sub_id) = closed_sub_id(data) {
            self.on_closed(frame.conn, sub_id);
        }
        true
    }

    fn probe_answered(&mut self, now: Instant) {
        let Some(p) = self.probe.take() else { return };
        self.last_answer = now;
        let Some((seq, bcasts)) = p.written else { return };
        self.confirmed_bcasts = bcasts;
        // Every Add written before the probe is settled: those without a
        // CLOSED took effect.
        while let Some((s, _, _)) = self.adds.front() {
            if *s >= seq {
                break;
            }
            let (_, conn, sub_id) = self.adds.pop_front().expect("the front");
            let key = (conn, sub_id);
            if let Some(p) = self.pending.get_mut(&key) {
                p.written -= 1;
                p.closed = p.closed.saturating_sub(1);
                if p.written == 0 {
                    self.pending.remove(&key);
                }
            }
        }
    }

    fn on_closed(&mut self, conn: i32, sub_id: String) {
        let Ok(id) = SubId::try_from(sub_id) else {
            return;
        };
        let key = (conn, id);
        let Some(p) = self.pending.get_mut(&key) else {
            // No Add of ours is unsettled: not an answer we know of.
            return;
        };
        if p.written <= p.closed {
            return;
        }
        let unsettled = p.written - p.closed;
        p.closed += 1;
        if unsettled == 1 {
            // It answers the latest Add: the worker holds no such sub.
            self.mirror.on_closed(key.0, key.1.as_str());
        }
    }

    /// The worker died (or was killed) at `now`, for `cause`: the backlog
    /// keeps the relay's commands it never got, in order, and the policy
    /// decides between a restart after a backoff and giving up.
    ///
    /// ```
    /// use broadcast_process::link::{Phase, RestartCause, Supervision, Supervisor};
    /// use std::time::Duration;
    /// let t0 = std::time::Instant::now();
    /// let mut sup = Supervisor::new(Supervision::new().max_restarts_in(0, Duration::from_secs(1)), t0);
    /// sup.died(RestartCause::WriteGone, t0);
    /// assert_eq!(sup.phase(), Phase::GaveUp);
    /// ```
    pub fn died(&mut self, cause: RestartCause, now: Instant) {
        if self.write_closed {
            // The relay ended the stream: the worker's end is expected, and
            // nothing is replaced.
            self.cause = Some(cause);
            return;
        }
        if self.phase != Phase::Running {
            // Spawning failed: a new attempt, with the old commands.
            self.cause = Some(cause);
        } else {
            self.lost += self.written_bcasts - self.confirmed_bcasts;
            self.confirmed_bcasts = self.written_bcasts;
            let mut carried: VecDeque<Queued> = self
                .in_link
                .drain(..)
                .chain(self.backlog.drain(..))
                .filter(|q| q.origin == Origin::Relay)
                .collect();
            self.backlog_relay_bytes = carried.iter().map(|q| HEADER_LEN + q.cmd.encoded_len()).sum();
            std::mem::swap(&mut self.backlog, &mut carried);
            self.probe = None;
            // `adds` and `pending` stay until the replacement is spawned:
            // the dead worker's output still unread answers its Adds (see
            // `Endpoint`'s drain), and a CLOSED in it must reach the mirror
            // before the replay.
            self.written_since_probe = false;
            self.cause = Some(cause);
        }
        let (max, window) = (self.cfg.max_restarts, self.cfg.window);
        while self
            .deaths
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) > window)
        {
            self.deaths.pop_front();
        }
        self.deaths.push_back(now);
        if self.deaths.len() > max as usize {
            self.phase = Phase::GaveUp;
            return;
        }
        let doublings = (self.deaths.len() - 1).min(30) as u32;
        let delay = self
            .cfg
            .backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.cfg.backoff_max);
        self.phase = Phase::Backoff(now + delay);
    }

    /// Whether the backoff has ended: time to spawn the new worker.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let now = std::time::Instant::now();
    /// assert!(!Supervisor::new(Supervision::new(), now).respawn_due(now));
    /// ```
    pub fn respawn_due(&self, now: Instant) -> bool {
        !self.write_closed && matches!(self.phase, Phase::Backoff(at) if now >= at)
    }

    /// A new worker was spawned at `now`: the backlog becomes the probe
    /// set-up, the replay of the mirror, then the relay's carried-over
    /// commands. `cause` overrides the recorded cause (the dead worker's
    /// exit status, now that it is reaped). Returns the restart to report.
    ///
    /// ```
    /// use broadcast_process::link::{RestartCause, Supervision, Supervisor};
    /// let t0 = std::time::Instant::now();
    /// let mut sup = Supervisor::new(Supervision::new(), t0);
    /// sup.died(RestartCause::Unresponsive, t0);
    /// let r = sup.respawned(Some(RestartCause::Signaled(9)), t0);
    /// assert_eq!(r.cause, RestartCause::Signaled(9));
    /// ```
    pub fn respawned(&mut self, cause: Option<RestartCause>, now: Instant) -> Restart {
        self.phase = Phase::Running;
        self.link_sent = 0;
        self.last_answer = now;
        self.restarts += 1;
        // The dead worker's Adds are answered or never will be.
        self.adds.clear();
        self.pending.clear();
        let carried = std::mem::take(&mut self.backlog);
        let replay = self.mirror.replay();
        self.backlog = self
            .probe_setup()
            .into_iter()
            .chain(replay)
            .map(|cmd| Queued {
                cmd,
                origin: Origin::Internal,
            })
            .collect();
        let carried_commands = carried.len() as u64;
        self.backlog.extend(carried);
        Restart {
            number: self.restarts,
            cause: cause
                .or_else(|| self.cause.take())
                .unwrap_or(RestartCause::Exited(None)),
            lost_bcasts: std::mem::take(&mut self.lost),
            carried_commands,
            replayed: Replayed {
                conns: self.mirror.conns(),
                auths: self.mirror.auths(),
                subs: self.mirror.subscriptions(),
            },
        }
    }

    /// The relay ended the command stream on purpose (the handle's
    /// `close_write`): from now on the worker's end is the expected end of
    /// its input, not a failure. No probe is sent or awaited, no death is
    /// judged ([`Supervisor::died`] records the cause and changes nothing),
    /// no replacement is spawned (not even after a backoff already
    /// running), and every command is refused with
    /// [`SendError::WriteClosed`].
    ///
    /// ```
    /// use broadcast_process::link::{Phase, RestartCause, SendError, Supervision, Supervisor};
    /// use broadcast_wire::{NewFlags, SubCommand};
    /// let t0 = std::time::Instant::now();
    /// let mut sup = Supervisor::new(Supervision::new(), t0);
    /// sup.close_write();
    /// sup.died(RestartCause::Exited(None), t0);
    /// assert_eq!(sup.phase(), Phase::Running); // no backoff, no restart
    /// assert_eq!(sup.next_deadline(t0), None);
    /// let new = SubCommand::New { conn: 1, flags: NewFlags::EMPTY };
    /// assert_eq!(sup.admit(&new), Err(SendError::WriteClosed));
    /// ```
    pub fn close_write(&mut self) {
        self.write_closed = true;
        self.probe = None;
    }

    /// Whether [`Supervisor::close_write`] was called.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// assert!(!Supervisor::new(Supervision::new(), std::time::Instant::now()).is_write_closed());
    /// ```
    pub fn is_write_closed(&self) -> bool {
        self.write_closed
    }

    /// The encoded bytes (headers included) of every command waiting in
    /// the backlog: the relay's and the handle's own.
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// let sup = Supervisor::new(Supervision::new(), std::time::Instant::now());
    /// assert!(sup.backlog_bytes() > 0); // the probe set-up
    /// ```
    pub fn backlog_bytes(&self) -> usize {
        self.backlog
            .iter()
            .map(|q| HEADER_LEN + q.cmd.encoded_len())
            .sum()
    }

    /// The cause recorded at the last death (the handle refines it).
    ///
    /// ```
    /// use broadcast_process::link::{Supervision, Supervisor};
    /// assert!(Supervisor::new(Supervision::new(), std::time::Instant::now()).cause().is_none());
    /// ```
    pub fn cause(&self) -> Option<&RestartCause> {
        self.cause.as_ref()
    }
}

#[cfg(test)]
mod tests;
