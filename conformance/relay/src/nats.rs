//! `--nats`: relay nodes on several machines share their events through
//! core NATS (docs/SCALING.md, "Across machines: NATS").
//!
//! Every event a node accepts from its own clients is published to one
//! subject ([`DEFAULT_SUBJECT`]); the payload is the client's
//! `["EVENT",{...}]` message byte for byte, and the [`NODE_HEADER`] header
//! names the publishing node. Every node subscribes to the same subject and
//! gives what other nodes published to its hub, which fans it out with
//! sender −1 and the flags of a local event. The hub drops an event whose id
//! it has seen within the [`DedupWindow`], so a node delivers an event at
//! most once whichever way (its own clients, NATS, both) it comes.
//!
//! Publishing never makes local fan-out wait: the hub hands each event to a
//! bounded queue ([`DEFAULT_PUBLISH_QUEUE`]) and, when that is full (NATS
//! down or slower than the clients), drops it and counts it; a reporter
//! task logs the count once a second while it grows.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::auth;
use crate::client_message::{self, ClientMessage};
use crate::event;
use crate::hub::HubCommand;

/// The subject every node publishes to and subscribes to, unless
/// [`NatsConfig::subject`] says otherwise.
pub const DEFAULT_SUBJECT: &str = "nostr.relay.events";

/// The header that names the node that published a message (its
/// [`NatsConfig::node_id`]). Each node connects with `no_echo`, so the
/// server does not send its own events back; a message bearing its own id
/// (another connection configured with the same id) is skipped before
/// parsing, and the [`DedupWindow`] would drop it anyway.
pub const NODE_HEADER: &str = "Relay-Node";

/// Events waiting to be published before the hub starts dropping (and
/// counting) them: 8192 events of about 400 bytes, some 3 MiB, which covers
/// a burst or a short stall of the server; async-nats buffers more behind it
/// (its client capacity). Past that, a NATS outage costs the other nodes
/// those events rather than the local clients their latency.
pub const DEFAULT_PUBLISH_QUEUE: usize = 8192;

/// How many event ids the de-duplication window remembers.
pub const DEDUP_CAPACITY: usize = 65_536;

/// How long the de-duplication window remembers an id at most: an event
/// seen again later is delivered again (NATS delivers a message at most
/// once, so only a republishing client makes that happen).
pub const DEDUP_TTL: Duration = Duration::from_secs(600);

/// How the relay reaches NATS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`; servers of one cluster
    /// comma-separated.
    pub url: String,
    /// The subject ([`DEFAULT_SUBJECT`]).
    pub subject: String,
    /// This node's id, sent in [`NODE_HEADER`]; unique among the nodes.
    pub node_id: String,
    /// Size of the publish queue ([`DEFAULT_PUBLISH_QUEUE`]).
    pub publish_queue: usize,
}

impl NatsConfig {
    /// The defaults, with a random node id.
    pub fn new(url: impl Into<String>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            subject: DEFAULT_SUBJECT.into(),
            node_id: random_node_id(),
            publish_queue: DEFAULT_PUBLISH_QUEUE,
        }
    }
}

/// 16 random hex digits.
pub fn random_node_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

/// The last [`DEDUP_CAPACITY`] event ids the hub fanned out, each for at
/// most [`DEDUP_TTL`]: oldest first in a ring, and in a set for lookups.
#[derive(Debug)]
pub struct DedupWindow {
    capacity: usize,
    ttl: Duration,
    order: VecDeque<([u8; 32], Instant)>,
    seen: HashSet<[u8; 32]>,
}

impl DedupWindow {
    /// An empty window of `capacity` ids (at least 1), each kept `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> DedupWindow {
        DedupWindow {
            capacity: capacity.max(1),
            ttl,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Records `id` at `now`: `true` if it is new, `false` if the window
    /// already holds it (a duplicate, not to be delivered again).
    ///
    /// ```
    /// # use broadcast_example_relay::nats::DedupWindow;
    /// # use std::time::{Duration, Instant};
    /// let mut w = DedupWindow::new(2, Duration::from_secs(60));
    /// let t = Instant::now();
    /// assert!(w.insert([1; 32], t));
    /// assert!(!w.insert([1; 32], t));
    /// assert!(w.insert([2; 32], t));
    /// assert!(w.insert([3; 32], t)); // [1; 32] leaves: the window holds 2
    /// assert!(w.insert([1; 32], t));
    /// // And one older than the ttl leaves too.
    /// assert!(w.insert([3; 32], t + Duration::from_secs(61)));
    /// ```
    pub fn insert(&mut self, id: [u8; 32], now: Instant) -> bool {
        // Expired ids first, so that an old one counts as new again.
        while let Some(&(old, at)) = self.order.front() {
            if now.saturating_duration_since(at) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        // The lookup before any eviction for room: a duplicate of the
        // oldest id in a full window is still a duplicate.
        if self.seen.contains(&id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some((old, _)) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(id);
        self.order.push_back((id, now));
        true
    }

    /// Ids held now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The hub's end of NATS: the window and the publish queue.
#[derive(Debug)]
pub struct Federation {
    /// Ids already fanned out.
    pub dedup: DedupWindow,
    outbound: mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
}

impl Federation {
    /// Queues a local event for NATS without waiting: when the queue is
    /// full the event is dropped and counted (the reporter logs it).
    pub fn publish(&self, event_msg: Bytes) {
        if self.outbound.try_send(event_msg).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Connects to NATS (retrying in the background while it is down, as on
/// every later disconnection) and starts the publisher, the subscriber and
/// the drop reporter. Events from other nodes go to `hub`.
pub async fn start(config: &NatsConfig, hub: mpsc::Sender<HubCommand>) -> Result<Federation, String> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("broadcast-example-relay {}", config.node_id))
        // Start serving local clients even when NATS is down; async-nats
        // keeps retrying (and reconnects after any later loss) forever.
        .retry_on_initial_connect()
        .max_reconnects(None)
        // The server keeps a node's own events from coming back to it:
        // delivered locally already, they would only cost bandwidth.
        .no_echo()
        .event_callback(|event| async move { eprintln!("relay: nats: {event}") })
        // Several servers of one NATS cluster: comma-separated.
        .connect(config.url.split(',').map(str::trim).collect::<Vec<_>>())
        .await
        .map_err(|e| format!("cannot use NATS at {}: {e}", config.url))?;
    // A subscription made while disconnected is sent on (re)connection.
    let subscriber = client
        .subscribe(config.subject.clone())
        .await
        .map_err(|e| format!("cannot subscribe to {}: {e}", config.subject))?;

    let (outbound, queue) = mpsc::channel(config.publish_queue.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    tokio::spawn(publish_loop(
        client,
        config.subject.clone(),
        config.node_id.clone(),
        queue,
    ));
    tokio::spawn(receive_loop(subscriber, config.node_id.clone(), hub));
    tokio::spawn(report_drops(Arc::clone(&dropped), outbound.downgrade()));
    Ok(Federation {
        dedup: DedupWindow::new(DEDUP_CAPACITY, DEDUP_TTL),
        outbound,
        dropped,
    })
}

/// Publishes queued events in order. `publish_with_headers` waits while
/// async-nats's own buffer is full (it is while NATS is unreachable); that
/// wait fills the queue in front of it, never the hub.
async fn publish_loop(
    client: async_nats::Client,
    subject: String,
    node_id: String,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let subject = async_nats::Subject::from(subject);
    while let Some(event_msg) = queue.recv().await {
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, node_id.as_str());
        if let Err(e) = client
            .publish_with_headers(subject.clone(), headers, event_msg)
            .await
        {
            // Too large for the server's max_payload, or the client closed.
            eprintln!("relay: nats: an event was not published: {e}");
        }
    }
}

/// Gives other nodes' events to the hub. The payload is checked as a
/// client's would be (NATS is a network input, and the worker trusts the
/// relay to check: PROTOCOL.md#bcast-event); a bad one is logged and
/// skipped.
async fn receive_loop(
    mut subscriber: async_nats::Subscriber,
    node_id: String,
    hub: mpsc::Sender<HubCommand>,
) {
    while let Some(message) = subscriber.next().await {
        let from = message
            .headers
            .as_ref()
            .and_then(|h| h.get(NODE_HEADER))
            .map(|v| v.as_str().to_owned());
        if from.as_deref() == Some(node_id.as_str()) {
            continue; // our own event, delivered locally already
        }
        let from = from.unwrap_or_else(|| "?".into());
        let Ok(text) = std::str::from_utf8(&message.payload) else {
            eprintln!("relay: nats: skipped a message from node {from}: not UTF-8");
            continue;
        };
        let checked = match client_message::parse(text) {
            // No node publishes an AUTH event (clients' are refused), so one
            // here did not come from a relay node.
            Ok(ClientMessage::Event(value)) => event::verify(&value).and_then(|e| match e.kind {
                auth::AUTH_KIND => Err(format!("kind {} is never published", auth::AUTH_KIND)),
                _ => Ok(e),
            }),
            _ => Err("not an [\"EVENT\", {...}] message".into()),
        };
        let id = match checked.map(|e| hex_id(&e.id)) {
            Ok(Some(id)) => id,
            Ok(None) => continue, // verify accepts only 64 hex digits
            Err(reason) => {
                eprintln!("relay: nats: skipped a message from node {from}: {reason}");
                continue;
            }
        };
        let command = HubCommand::Remote {
            id,
            event_msg: message.payload,
        };
        if hub.send(command).await.is_err() {
            return; // the relay is stopping
        }
    }
}

/// Logs, at most once a second, how many events the full publish queue
/// has dropped; ends with the hub's end of the queue.
async fn report_drops(dropped: Arc<AtomicU64>, alive: mpsc::WeakSender<Bytes>) {
    let mut reported = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let total = dropped.load(Ordering::Relaxed);
        if total > reported {
            eprintln!(
                "relay: nats: the publish queue was full: {} events not published ({total} since start)",
                total - reported
            );
            reported = total;
        }
        if alive.strong_count() == 0 {
            return;
        }
    }
}

/// A verified event's id as bytes.
pub fn hex_id(id: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(id, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_the_oldest_past_its_capacity() {
        let mut w = DedupWindow::new(3, Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..3 {
            assert!(w.insert([i; 32], t));
        }
        assert!(!w.insert([0; 32], t), "still held");
        assert!(w.insert([3; 32], t), "a fourth id");
        assert_eq!(w.len(), 3);
        assert!(w.insert([0; 32], t), "the oldest left when the fourth came");
        assert!(!w.insert([3; 32], t));
    }

    #[test]
    fn window_forgets_ids_older_than_its_ttl() {
        let mut w = DedupWindow::new(100, Duration::from_secs(10));
        let t = Instant::now();
        assert!(w.insert([7; 32], t));
        assert!(!w.insert([7; 32], t + Duration::from_secs(9)));
        assert!(w.insert([7; 32], t + Duration::from_secs(10)));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (outbound, _queue) = mpsc::channel(1);
        let fed = Federation {
            dedup: DedupWindow::new(1, DEDUP_TTL),
            outbound,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        fed.publish(Bytes::from_static(b"1"));
        fed.publish(Bytes::from_static(b"2"));
        fed.publish(Bytes::from_static(b"3"));
        assert_eq!(fed.dropped.load(Ordering::Relaxed), 2);
    }
}
