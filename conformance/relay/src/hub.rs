//! The one task that owns the broadcast workers: it turns connection
//! events into worker commands, in the order they happen, and writes each
//! frame a worker sends into its connection's bounded outbox.
//!
//! A connection whose outbox is full has fallen behind: it is dropped from
//! the routing table and told to go (`kick`), and its task closes the
//! WebSocket with a NOTICE. Every other connection keeps its frames: one
//! slow client never stalls the relay.
//!
//! The workers are one [`AsyncBroadcaster`] or, with `--shards K` (K > 1),
//! an [`AsyncShardedBroadcaster`]; [`Workers`] gives the hub one interface
//! to both. By default they are supervised (docs/RELIABILITY.md): a worker
//! (or shard) that dies is replaced and its connections, NIP-42
//! authentications and subscriptions are replayed into the new one, so its
//! clients see a pause, never a disconnection; the hub logs each restart.
//! A worker that ends for good (unsupervised, or its supervisor gave up
//! after too many restarts) stops the relay.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broadcast_process::async_broadcaster::{AsyncBroadcaster, AsyncShardedBroadcaster, QueueError};
use broadcast_process::broadcaster::sharded::{ShardError, ShardedIncoming};
use broadcast_process::broadcaster::{Incoming, Options, SendError, Transport};
use broadcast_process::link::{Phase, Restart, Supervision};
use broadcast_wire::{BcastFlags, BroadcastFrame, SubId};
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::nats::Federation;

/// How the hub reaches one connection's task.
#[derive(Debug)]
pub struct ClientHandle {
    /// Frames for the client, as WebSocket text.
    pub outbox: mpsc::Sender<Utf8Bytes>,
    /// Fired when the outbox overflowed: the task closes the connection.
    pub kicked: Arc<Notify>,
}

/// What a connection's task asks of the hub.
#[derive(Debug)]
pub enum HubCommand {
    /// A client connected (New).
    Connect { conn: i32, client: ClientHandle },
    /// The client went away (Close). Sent exactly once per Connect.
    Disconnect { conn: i32 },
    /// REQ (Add), with the raw message.
    Subscribe { conn: i32, sub_id: SubId, req: Bytes },
    /// CLOSE (Remove).
    Unsubscribe { conn: i32, sub_id: SubId },
    /// A successful NIP-42 AUTH (Auth).
    Auth { conn: i32, pubkey: [u8; 32] },
    /// An accepted EVENT (Bcast), with its id and the raw
    /// `["EVENT", {...}]` message.
    Publish {
        conn: i32,
        id: [u8; 32],
        event_msg: Bytes,
    },
    /// A checked event another node published through NATS (Bcast with
    /// sender −1), with its id and the raw `["EVENT", {...}]` message.
    Remote { id: [u8; 32], event_msg: Bytes },
    /// Stop: end the worker's input, let it finish, reap it, return `Ok`.
    Shutdown,
}

/// How long a stopping relay waits for the worker to finish by itself
/// before it is killed.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// The flags of every fan-out, local or from another node: the worker
/// checks the subscriptions' filters and NIP-70 (PROTOCOL.md#bcast-event).
const FANOUT_FLAGS: BcastFlags =
    BcastFlags::from_bits(BcastFlags::NEED_FILTER.bits() | BcastFlags::NIP70_ENFORCE.bits());

/// How the workers run: how many, over what, supervised or not.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The worker's command line: program, then arguments.
    pub command: Vec<std::ffi::OsString>,
    /// How each worker is connected.
    pub transport: Transport,
    /// 1: one [`AsyncBroadcaster`]; more: an [`AsyncShardedBroadcaster`].
    pub shards: NonZeroUsize,
    /// `Some`: each worker (each shard) is supervised with these settings.
    pub supervision: Option<Supervision>,
}

/// The relay's workers: one, or K shards. Each command goes to the same
/// named method of either handle; what they report is read as an
/// [`Event`], so the hub has one code path for both.
#[derive(Debug)]
pub enum Workers {
    /// One worker (boxed: it is three times the size of the sharded handle,
    /// which holds its shards in a `Vec`).
    One(Box<AsyncBroadcaster>),
    /// K > 1 shards, connection `conn` on shard `conn % K`.
    Sharded(AsyncShardedBroadcaster),
}

/// What the hub reads from its workers.
#[derive(Debug)]
pub enum Event {
    /// A frame for a connection.
    Frame(BroadcastFrame),
    /// A frame that does not decode (logged and dropped).
    Invalid { shard: Option<usize>, error: String },
    /// A supervised worker was replaced and its state replayed.
    Restarted { shard: Option<usize>, restart: Restart },
    /// A worker ended for good: unsupervised, its supervisor gave up, or
    /// after `close_write`.
    Exited {
        shard: Option<usize>,
        status: Option<ExitStatus>,
    },
    /// Every shard has been reported exited (sharded only).
    AllExited,
    /// Nothing to do (`recv` waits instead; kept for completeness).
    Nothing,
}

/// "shard N: " with a shard, "" without.
fn shard_prefix(shard: Option<usize>) -> String {
    shard.map(|s| format!("shard {s}: ")).unwrap_or_default()
}

/// A command the workers did not take.
enum Refusal {
    /// The workers cannot go on (gone, given up, an I/O error): the relay stops.
    Fatal(String),
    /// This one command was refused; the relay goes on.
    Command(String),
}

fn classify(shard: Option<usize>, e: QueueError) -> Refusal {
    let at = shard_prefix(shard);
    match e {
        QueueError::Refused(SendError::WorkerGone) => {
            Refusal::Fatal(format!("{at}the broadcast worker has gone"))
        }
        QueueError::Refused(SendError::SupervisionGaveUp) => Refusal::Fatal(format!(
            "{at}supervision gave up on the broadcast worker: it died too often"
        )),
        QueueError::Io(e) => Refusal::Fatal(format!("{at}writing to the broadcast worker failed: {e}")),
        e => Refusal::Command(format!("{at}{e}")),
    }
}

/// Calls the same command on either handle; the result is a [`Refusal`].
macro_rules! each {
    ($workers:expr, $method:ident ( $($arg:expr),* )) => {
        match $workers {
            Workers::One(b) => b.$method($($arg),*).await.map_err(|e| classify(None, e)),
            Workers::Sharded(b) => b
                .$method($($arg),*)
                .await
                .map_err(|ShardError { shard, error }| classify(Some(shard), error)),
        }
    };
}

impl Workers {
    /// Starts the workers `spec` describes.
    pub fn spawn(spec: &WorkerSpec) -> Result<Workers, String> {
        let Some((program, args)) = spec.command.split_first() else {
            return Err("no worker command".into());
        };
        let (program, args) = (program.clone(), args.to_vec());
        let command = move || {
            let mut c = Command::new(&program);
            c.args(&args);
            c
        };
        let opts = Options::new();
        let k = spec.shards;
        let workers = match (k.get(), spec.supervision) {
            (1, None) => Workers::One(Box::new(
                AsyncBroadcaster::spawn_with(command(), spec.transport, &opts).map_err(|e| e.to_string())?,
            )),
            (1, Some(sup)) => Workers::One(Box::new(
                AsyncBroadcaster::spawn_supervised(command, spec.transport, &opts, sup)
                    .map_err(|e| e.to_string())?,
            )),
            (_, None) => Workers::Sharded(
                AsyncShardedBroadcaster::spawn(k, |_| command(), spec.transport, &opts)
                    .map_err(|e| e.to_string())?,
            ),
            (_, Some(sup)) => Workers::Sharded(
                AsyncShardedBroadcaster::spawn_supervised(k, move |_| command(), spec.transport, &opts, sup)
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(workers)
    }

    /// Each worker's process id, by shard (one entry without shards).
    pub fn pids(&self) -> Vec<Option<u32>> {
        match self {
            Workers::One(b) => vec![b.pid()],
            Workers::Sharded(b) => b.pids(),
        }
    }

    /// The running worker of `shard` (`None`: the only one).
    fn handle(&self, shard: Option<usize>) -> Option<&AsyncBroadcaster> {
        match (self, shard) {
            (Workers::One(b), _) => Some(b.as_ref()),
            (Workers::Sharded(b), Some(s)) => b.shard(s),
            (Workers::Sharded(_), None) => None,
        }
    }

    /// Whether the supervisor of `shard`'s worker gave up on it.
    fn gave_up(&self, shard: Option<usize>) -> bool {
        self.handle(shard)
            .and_then(AsyncBroadcaster::supervisor)
            .is_some_and(|s| s.phase() == Phase::GaveUp)
    }

    /// The next thing any worker reports. Cancellation safe (both handles'
    /// `recv` are).
    pub async fn recv(&mut self) -> Result<Event, String> {
        Ok(match self {
            Workers::One(b) => match b.recv().await.map_err(|e| e.to_string())? {
                Incoming::Frame(frame) => Event::Frame(frame),
                Incoming::InvalidFrame(e) => Event::Invalid {
                    shard: None,
                    error: e.to_string(),
                },
                Incoming::WorkerRestarted(restart) => Event::Restarted { shard: None, restart },
                Incoming::WorkerExited(status) => Event::Exited { shard: None, status },
                Incoming::Pending => Event::Nothing,
            },
            Workers::Sharded(b) => match b.recv().await.map_err(|e| e.to_string())? {
                ShardedIncoming::Frame { frame, .. } => Event::Frame(frame),
                ShardedIncoming::InvalidFrame { shard, error } => Event::Invalid {
                    shard: Some(shard),
                    error: error.to_string(),
                },
                ShardedIncoming::ShardRestarted { shard, restart } => Event::Restarted {
                    shard: Some(shard),
                    restart,
                },
                ShardedIncoming::ShardExited(exit) => Event::Exited {
                    shard: Some(exit.shard),
                    status: exit.status,
                },
                ShardedIncoming::Pending => Event::AllExited,
            },
        })
    }

    /// Writes every queued command out.
    async fn flush(&mut self) -> Result<(), String> {
        match self {
            Workers::One(b) => b.flush().await.map_err(|e| e.to_string()),
            Workers::Sharded(b) => b.flush().await.map_err(|e| e.to_string()),
        }
    }

    /// Ends the command streams: the workers exit once they read it all.
    fn close_write(&mut self) -> Result<(), String> {
        match self {
            Workers::One(b) => b.close_write().map_err(|e| e.to_string()),
            Workers::Sharded(b) => b.close_write().map_err(|e| e.to_string()),
        }
    }

    /// `SIGKILL` to every worker still running.
    fn kill(&mut self) {
        match self {
            Workers::One(b) => {
                let _ = b.kill();
            }
            Workers::Sharded(b) => {
                for shard in 0..b.shard_count() {
                    let _ = b.kill_shard(shard);
                }
            }
        }
    }

    /// Waits up to `timeout` for each worker to exit and reaps it: each
    /// one's status (`None`: still running, or no child).
    async fn wait_exit(&mut self, timeout: Duration) -> Vec<Option<ExitStatus>> {
        match self {
            Workers::One(b) => vec![b.wait_exit(timeout).await],
            Workers::Sharded(b) => {
                let mut statuses = Vec::new();
                for shard in 0..b.shard_count() {
                    statuses.push(b.wait_exit(shard, timeout).await);
                }
                statuses
            }
        }
    }
}

/// Runs until every connection sender is gone (`Ok`) or a worker ends for
/// good (`Err`, with why, after the other workers were stopped). With
/// `federation` (`--nats`), accepted events are also published to NATS,
/// and every event, local or remote, is fanned out only the first time its
/// id is seen.
pub async fn run(
    mut workers: Workers,
    mut commands: mpsc::Receiver<HubCommand>,
    mut federation: Option<Federation>,
) -> Result<(), String> {
    let mut clients: HashMap<i32, ClientHandle> = HashMap::new();
    let failed = loop {
        tokio::select! {
            // Both are cancellation safe: a branch that loses takes nothing.
            event = workers.recv() => match event {
                Ok(Event::Frame(frame)) => deliver(&mut clients, frame),
                Ok(Event::Invalid { shard, error }) => {
                    eprintln!("relay: {}dropped a worker frame that does not decode: {error}", shard_prefix(shard));
                }
                Ok(Event::Restarted { shard, restart }) => log_restart(&workers, shard, &restart),
                Ok(Event::Exited { shard, status }) => break exited(&workers, shard, status),
                Ok(Event::AllExited) => break "every broadcast worker has exited".to_owned(),
                Ok(Event::Nothing) => {} // recv waits instead
                Err(e) => break format!("a broadcast worker's output broke: {e}"),
            },
            command = commands.recv() => match command {
                Some(HubCommand::Shutdown) | None => return stop(workers).await,
                Some(command) => {
                    if let Err(e) = apply(&mut workers, &mut clients, federation.as_mut(), command).await {
                        break e;
                    }
                }
            },
        }
    };
    // Loudly: the relay is about to stop, and its clients with it.
    eprintln!("relay: FATAL: {failed}; stopping the relay");
    // The other workers (shards) are ended as on a graceful stop; their
    // outcome does not matter any more.
    let _ = stop(workers).await;
    Err(failed)
}

/// One line per restart, with the new worker's pid: what a test or an
/// operator reads (`kill -9` of that pid is the next crash).
fn log_restart(workers: &Workers, shard: Option<usize>, restart: &Restart) {
    let pid = workers
        .handle(shard)
        .and_then(AsyncBroadcaster::pid)
        .map_or_else(|| "none".to_owned(), |p| p.to_string());
    eprintln!("relay: {}{restart}; new worker pid {pid}", shard_prefix(shard));
}

/// Why a worker's end stops the relay.
fn exited(workers: &Workers, shard: Option<usize>, status: Option<ExitStatus>) -> String {
    let status = status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string());
    let why = if workers.gave_up(shard) {
        "supervision gave up on the broadcast worker after too many restarts"
    } else {
        "the broadcast worker exited"
    };
    format!("{}{why} ({status})", shard_prefix(shard))
}

/// Ends the workers' input after what is queued, reads their output to
/// the end (frames for connections are dropped: the relay is stopping),
/// and reaps them; workers that do not finish in time are killed.
async fn stop(mut workers: Workers) -> Result<(), String> {
    let finished = tokio::time::timeout(WORKER_GRACE, async {
        workers.flush().await?;
        workers.close_write()?;
        let mut exited = 0;
        let count = workers.pids().len();
        loop {
            match workers.recv().await {
                Ok(Event::Exited { .. }) => {
                    exited += 1;
                    if exited == count {
                        return Ok::<(), String>(());
                    }
                }
                Ok(Event::AllExited) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    })
    .await;
    if !matches!(finished, Ok(Ok(()))) {
        workers.kill();
    }
    for (shard, status) in workers.wait_exit(WORKER_GRACE).await.into_iter().enumerate() {
        let at = if workers.pids().len() > 1 {
            format!("shard {shard}: ")
        } else {
            String::new()
        };
        match status {
            Some(status) if status.success() => {}
            Some(status) => return Err(format!("{at}the broadcast worker ended with {status}")),
            None => return Err(format!("{at}the broadcast worker did not exit")),
        }
    }
    Ok(())
}

/// Writes one frame into its connection's outbox, or drops a connection
/// that cannot take it.
fn deliver(clients: &mut HashMap<i32, ClientHandle>, frame: BroadcastFrame) {
    let Some(client) = clients.get(&frame.conn) else {
        return; // gone (or kicked) before the worker processed its Close
    };
    let text = match Utf8Bytes::try_from(frame.data) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "relay: dropped a worker frame for conn {} that is not UTF-8: {e}",
                frame.conn
            );
            return;
        }
    };
    match client.outbox.try_send(text) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            // It fell behind: no more frames for it; its task says goodbye
            // and sends the Disconnect that tells the worker.
            if let Some(client) = clients.remove(&frame.conn) {
                client.kicked.notify_one();
            }
        }
        // Its task is ending; its Disconnect is on the way.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Hands one connection command to the workers. `Err`: the workers cannot
/// go on (the relay stops).
async fn apply(
    workers: &mut Workers,
    clients: &mut HashMap<i32, ClientHandle>,
    federation: Option<&mut Federation>,
    command: HubCommand,
) -> Result<(), String> {
    let result = match command {
        HubCommand::Connect { conn, client } => {
            clients.insert(conn, client);
            each!(workers, on_connect(conn, false))
        }
        HubCommand::Disconnect { conn } => {
            clients.remove(&conn);
            each!(workers, on_disconnect(conn))
        }
        HubCommand::Subscribe { conn, sub_id, req } => {
            each!(workers, on_subscribe(conn, sub_id.as_str(), req))
        }
        HubCommand::Unsubscribe { conn, sub_id } => each!(workers, on_unsubscribe(conn, sub_id.as_str())),
        HubCommand::Auth { conn, pubkey } => each!(workers, on_auth(conn, pubkey)),
        HubCommand::Shutdown => unreachable!("handled by run"),
        HubCommand::Publish { conn, id, event_msg } => match federation {
            None => each!(workers, fanout(event_msg, conn, FANOUT_FLAGS)),
            Some(fed) => {
                if !fed.dedup.insert(id, Instant::now()) {
                    // Already delivered here (it came from another node
                    // first, or a client sent it twice): neither fanned out
                    // nor published again.
                    return Ok(());
                }
                // Queued for NATS first: it never waits, and the other
                // nodes get it as soon as possible.
                fed.publish(event_msg.clone());
                each!(workers, fanout(event_msg, conn, FANOUT_FLAGS))
            }
        },
        HubCommand::Remote { id, event_msg } => match federation {
            // −1: no local connection sent it, so none is skipped.
            Some(fed) => {
                if !fed.dedup.insert(id, Instant::now()) {
                    return Ok(()); // delivered here already
                }
                each!(workers, fanout(event_msg, -1, FANOUT_FLAGS))
            }
            None => Ok(()), // only the NATS task sends these
        },
    };
    match result {
        Ok(()) => Ok(()),
        Err(Refusal::Fatal(e)) => Err(e),
        // Connections validate what they send, so this is a relay bug;
        // it concerns one command, not the relay.
        Err(Refusal::Command(e)) => {
            eprintln!("relay: a command was refused: {e}");
            Ok(())
        }
    }
}
