//! The relay: a TCP listener, one task per WebSocket connection, and the
//! hub task that owns the broadcast worker.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use broadcast_process::broadcaster::Transport;
use broadcast_process::link::{DEFAULT_PROBE_CONN, Supervision};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::connection;
use crate::http;
use crate::hub::{self, HubCommand, WorkerSpec, Workers};
use crate::nats::{self, NatsConfig};

/// Messages a client may have waiting in its outbox before it counts as
/// fallen behind and is disconnected.
pub const DEFAULT_CLIENT_QUEUE: usize = 4096;

/// Largest client message the relay reads and acts on (one over it gets
/// `OK false` or a NOTICE); see [`Config::max_message_bytes`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (loopback in tests).
    pub listen: SocketAddr,
    /// The worker's command line: program, then arguments.
    pub worker: Vec<OsString>,
    /// How the worker is connected.
    pub transport: Transport,
    /// How many workers: 1, or K shards (`--shards K`), connection `conn`
    /// on shard `conn % K` (docs/SCALING.md).
    pub shards: NonZeroUsize,
    /// `Some` (the default, [`Supervision::new`]): each worker (each shard)
    /// is supervised, so a crash costs its clients a pause, never their
    /// connection, subscriptions or authentication (docs/RELIABILITY.md).
    /// `None` (`--no-supervise`): a worker's death stops the relay.
    pub supervision: Option<Supervision>,
    /// This relay's URL, as NIP-42 `relay` tags must name it. `None`:
    /// `ws://<listen address>`.
    pub relay_url: Option<String>,
    /// Outbox size per client, in messages ([`DEFAULT_CLIENT_QUEUE`]).
    pub client_queue: usize,
    /// A text message longer than this is not processed: an EVENT whose id
    /// can be read gets `OK false`, anything else a NOTICE
    /// ([`DEFAULT_MAX_MESSAGE_BYTES`]); the WebSocket layer closes the
    /// connection (code 1009) on a message over 4 times this. The NIP-11
    /// document states it as `max_message_length`.
    pub max_message_bytes: usize,
    /// How far an AUTH event's `created_at` may be from the relay's clock.
    pub auth_window: Duration,
    /// `--nats`: share events with the other nodes through NATS
    /// ([`crate::nats`]). `None`: a single node.
    pub nats: Option<NatsConfig>,
}

impl Config {
    /// A configuration with the defaults, listening on `listen` and running
    /// `worker`.
    pub fn new(listen: SocketAddr, worker: Vec<OsString>) -> Config {
        Config {
            listen,
            worker,
            transport: Transport::Stdio,
            shards: NonZeroUsize::MIN,
            supervision: Some(Supervision::new()),
            relay_url: None,
            client_queue: DEFAULT_CLIENT_QUEUE,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            auth_window: Duration::from_secs(600),
            nats: None,
        }
    }
}

/// What the connection tasks share.
pub(crate) struct SharedConfig {
    pub(crate) relay_url: String,
    pub(crate) client_queue: usize,
    pub(crate) max_message_bytes: usize,
    pub(crate) auth_window: Duration,
    /// The NIP-11 document ([`http::relay_information`]), serialised.
    pub(crate) info_document: String,
}

pub(crate) struct Shared {
    pub(crate) config: SharedConfig,
    pub(crate) hub: mpsc::Sender<HubCommand>,
}

/// A started relay: listening, with its worker running.
pub struct Relay {
    listener: TcpListener,
    url: String,
    worker_pids: Vec<Option<u32>>,
    shared: Arc<Shared>,
    hub: JoinHandle<Result<(), String>>,
    max_ws_message: usize,
}

/// Connection numbers: unique for the life of the relay (never reused, so a
/// late frame for a closed connection can never reach a new one), starting
/// at 1; the worker accepts 0 to 2^31 - 1.
static NEXT_CONN: AtomicI32 = AtomicI32::new(1);

fn next_conn() -> Option<i32> {
    take_conn(&NEXT_CONN)
}

/// The next number of `counter`, below [`DEFAULT_PROBE_CONN`]
/// (`i32::MAX`): a supervised handle reserves that conn for its probe and
/// refuses commands naming it, so the relay never hands it out (unsupervised
/// too, so both modes number alike). `None` once they are all used.
fn take_conn(counter: &AtomicI32) -> Option<i32> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < DEFAULT_PROBE_CONN).then(|| n + 1)
        })
        .ok()
}

impl Relay {
    /// Binds the listener and starts the worker and the hub. Call inside a
    /// tokio runtime.
    pub async fn start(config: Config) -> Result<Relay, String> {
        let workers = Workers::spawn(&WorkerSpec {
            command: config.worker.clone(),
            transport: config.transport,
            shards: config.shards,
            supervision: config.supervision,
        })
        .map_err(|e| format!("cannot start the worker: {e}"))?;
        let worker_pids = workers.pids();
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let url = format!("ws://{local}");
        // Commands from connections wait here for the hub; a full queue
        // slows the clients' readers down (nothing is dropped).
        let (hub_tx, hub_rx) = mpsc::channel(1024);
        let federation = match &config.nats {
            Some(nats) => Some(nats::start(nats, hub_tx.clone()).await?),
            None => None,
        };
        let hub = tokio::spawn(hub::run(workers, hub_rx, federation));
        let shared = Arc::new(Shared {
            config: SharedConfig {
                relay_url: config.relay_url.clone().unwrap_or_else(|| url.clone()),
                client_queue: config.client_queue.max(1),
                max_message_bytes: config.max_message_bytes,
                auth_window: config.auth_window,
                info_document: http::relay_information(&config).to_string(),
            },
            hub: hub_tx,
        });
        Ok(Relay {
            listener,
            url,
            worker_pids,
            shared,
            hub,
            max_ws_message: config.max_message_bytes.saturating_mul(4),
        })
    }

    /// `ws://<address>`: where clients connect.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first worker's process id, as started (shard 0's with shards;
    /// a supervised worker that is replaced gets a new one, which the relay
    /// logs).
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker_pids.first().copied().flatten()
    }

    /// Every worker's process id as started, by shard (one entry without
    /// shards).
    pub fn worker_pids(&self) -> &[Option<u32>] {
        &self.worker_pids
    }

    /// Accepts connections until the worker fails (the error says how).
    pub async fn serve(self) -> Result<(), String> {
        self.serve_until(std::future::pending()).await
    }

    /// Accepts connections until `shutdown` completes, then ends the
    /// worker's input, lets it finish and reaps it (killing it after a
    /// grace period); or until the worker fails (the error says how).
    pub async fn serve_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), String> {
        let Relay {
            listener,
            shared,
            mut hub,
            max_ws_message,
            ..
        } = self;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(max_ws_message))
            .max_frame_size(Some(max_ws_message));
        loop {
            tokio::select! {
                ended = &mut hub => {
                    return match ended {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e),
                        Err(e) => Err(format!("the hub task failed: {e}")),
                    };
                }
                () = &mut shutdown, if !stopping => {
                    stopping = true;
                    // The hub stops the worker and then ends: the arm above returns.
                    let _ = shared.hub.send(HubCommand::Shutdown).await;
                }
                accepted = listener.accept(), if !stopping => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Out of fds and the like: keep serving the others.
                            eprintln!("relay: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        // The request head, then the WebSocket handshake or
                        // a plain HTTP answer (NIP-11): one bound for both.
                        let handshake = async {
                            match http::route(stream, &shared.config.info_document).await {
                                Ok(Some(stream)) => tokio_tungstenite::accept_async_with_config(stream, Some(ws_config))
                                    .await
                                    .map(Some)
                                    .map_err(|e| e.to_string()),
                                Ok(None) => Ok(None),
                                Err(e) => Err(e.to_string()),
                            }
                        };
                        let ws = match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                            Ok(Ok(Some(ws))) => ws,
                            Ok(Ok(None)) => return, // plain HTTP, answered
                            Ok(Err(e)) => return eprintln!("relay: handshake with {peer} failed: {e}"),
                            Err(_) => return eprintln!("relay: handshake with {peer} timed out"),
                        };
                        let Some(conn) = next_conn() else {
                            return eprintln!("relay: out of connection numbers; restart the relay");
                        };
                        connection::serve(ws, conn, shared).await;
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conns_start_at_one_and_never_reach_the_probe_conn() {
        let counter = AtomicI32::new(1);
        assert_eq!(take_conn(&counter), Some(1));
        assert_eq!(take_conn(&counter), Some(2));
        let counter = AtomicI32::new(DEFAULT_PROBE_CONN - 2);
        assert_eq!(take_conn(&counter), Some(DEFAULT_PROBE_CONN - 2));
        assert_eq!(take_conn(&counter), Some(DEFAULT_PROBE_CONN - 1));
        assert_eq!(DEFAULT_PROBE_CONN, i32::MAX);
        // i32::MAX is the probe's: never handed out, and nothing after it.
        assert_eq!(take_conn(&counter), None);
        assert_eq!(take_conn(&counter), None);
    }
}
