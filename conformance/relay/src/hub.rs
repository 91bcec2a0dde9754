//! The one task that owns the [`AsyncBroadcaster`]: it turns connection
//! events into worker commands, in the order they happen, and writes each
//! frame the worker sends into its connection's bounded outbox.
//!
//! A connection whose outbox is full has fallen behind: it is dropped from
//! the routing table and told to go (`kick`), and its task closes the
//! WebSocket with a NOTICE. Every other connection keeps its frames: one
//! slow client never stalls the relay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broadcast_process::async_broadcaster::{AsyncBroadcaster, QueueError};
use broadcast_process::broadcaster::{Incoming, SendError};
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

/// Runs until every connection sender is gone (`Ok`) or the worker is
/// (`Err`, with why). With `federation` (`--nats`), accepted events are
/// also published to NATS, and every event, local or remote, is fanned out
/// only the first time its id is seen.
pub async fn run(
    mut worker: AsyncBroadcaster,
    mut commands: mpsc::Receiver<HubCommand>,
    mut federation: Option<Federation>,
) -> Result<(), String> {
    let mut clients: HashMap<i32, ClientHandle> = HashMap::new();
    loop {
        tokio::select! {
            // Both are cancellation safe: a branch that loses takes nothing.
            incoming = worker.recv() => match incoming {
                Ok(Incoming::Frame(frame)) => deliver(&mut clients, frame),
                Ok(Incoming::InvalidFrame(e)) => {
                    eprintln!("relay: dropped a worker frame that does not decode: {e}");
                }
                Ok(Incoming::WorkerExited(status)) => {
                    return Err(format!("the broadcast worker exited ({status:?})"));
                }
                Ok(Incoming::Pending) => {} // recv waits instead
                // Only a supervised handle reports this (this one is not).
                Ok(Incoming::WorkerRestarted(r)) => eprintln!("relay: {r}"),
                Err(e) => return Err(format!("the broadcast worker's output broke: {e}")),
            },
            command = commands.recv() => match command {
                Some(HubCommand::Shutdown) | None => return stop(worker).await,
                Some(command) => apply(&mut worker, &mut clients, federation.as_mut(), command).await?,
            },
        }
    }
}

/// Ends the worker's input after what is queued, reads its output to the
/// end (frames for connections are dropped: the relay is stopping), and
/// reaps it; a worker that does not finish in time is killed.
async fn stop(mut worker: AsyncBroadcaster) -> Result<(), String> {
    let finished = tokio::time::timeout(WORKER_GRACE, async {
        worker.flush().await.map_err(|e| e.to_string())?;
        worker.close_write().map_err(|e| e.to_string())?;
        loop {
            match worker.recv().await {
                Ok(Incoming::WorkerExited(_)) | Err(_) => return Ok::<(), String>(()),
                Ok(_) => {}
            }
        }
    })
    .await;
    if !matches!(finished, Ok(Ok(()))) {
        let _ = worker.kill();
    }
    match worker.wait_exit(WORKER_GRACE).await {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!("the broadcast worker ended with {status}")),
        None => Err("the broadcast worker did not exit".into()),
    }
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

async fn apply(
    worker: &mut AsyncBroadcaster,
    clients: &mut HashMap<i32, ClientHandle>,
    federation: Option<&mut Federation>,
    command: HubCommand,
) -> Result<(), String> {
    let result = match command {
        HubCommand::Connect { conn, client } => {
            clients.insert(conn, client);
            worker.on_connect(conn, false).await
        }
        HubCommand::Disconnect { conn } => {
            clients.remove(&conn);
            worker.on_disconnect(conn).await
        }
        HubCommand::Subscribe { conn, sub_id, req } => worker.on_subscribe(conn, sub_id.as_str(), req).await,
        HubCommand::Unsubscribe { conn, sub_id } => worker.on_unsubscribe(conn, sub_id.as_str()).await,
        HubCommand::Auth { conn, pubkey } => worker.on_auth(conn, pubkey).await,
        HubCommand::Shutdown => unreachable!("handled by run"),
        HubCommand::Publish { conn, id, event_msg } => match federation {
            None => worker.fanout(event_msg, conn, FANOUT_FLAGS).await,
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
                worker.fanout(event_msg, conn, FANOUT_FLAGS).await
            }
        },
        HubCommand::Remote { id, event_msg } => match federation {
            // −1: no local connection sent it, so none is skipped.
            Some(fed) => {
                if !fed.dedup.insert(id, Instant::now()) {
                    return Ok(()); // delivered here already
                }
                worker.fanout(event_msg, -1, FANOUT_FLAGS).await
            }
            None => Ok(()), // only the NATS task sends these
        },
    };
    match result {
        Ok(()) => Ok(()),
        Err(QueueError::Refused(SendError::WorkerGone)) => Err("the broadcast worker has gone".into()),
        Err(QueueError::Io(e)) => Err(format!("writing to the broadcast worker failed: {e}")),
        // Connections validate what they send, so this is a relay bug;
        // it concerns one command, not the relay.
        Err(e) => {
            eprintln!("relay: a command was refused: {e}");
            Ok(())
        }
    }
}
