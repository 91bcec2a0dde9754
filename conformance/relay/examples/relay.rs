//! A minimal NIP-01 relay (see `docs/ASYNC.md`): WebSocket clients publish
//! and subscribe; the reference broadcast worker matches every accepted
//! event against the live subscriptions; the relay writes what the worker
//! says to the connections it names.
//!
//! ```sh
//! cargo run --release --example relay -- --listen 127.0.0.1:7447
//! ```
//!
//! It prints `listening on ws://127.0.0.1:7447` once it accepts
//! connections. The worker is `broadcast-worker` next to this binary
//! (built by cargo when missing); `--worker "CMD ARGS"` runs another one.
//! `--shards K` runs K workers side by side (docs/SCALING.md). Each worker
//! is supervised unless `--no-supervise`: one that dies is replaced, its
//! clients' subscriptions and authentications replayed, and the restart
//! logged on stderr (docs/RELIABILITY.md). The worker pids are logged on
//! stderr at start (`relay: worker pid N`, `relay: shard S: worker pid N`)
//! and with each restart (`...; new worker pid N`).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Duration;

use broadcast_example_relay::nats::{self, NatsConfig};
use broadcast_example_relay::server::{DEFAULT_CLIENT_QUEUE, DEFAULT_MAX_MESSAGE_BYTES};
use broadcast_example_relay::{Config, Relay};
use broadcast_process::broadcaster::Transport;
use broadcast_worker::locate;
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "An example Nostr relay driving the reference broadcast worker through AsyncBroadcaster")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7447")]
    listen: SocketAddr,
    /// The worker command, split on whitespace (default: broadcast-worker
    /// next to this binary).
    #[arg(long, value_name = "CMD")]
    worker: Option<String>,
    /// How the worker is connected.
    #[arg(long, value_enum, default_value = "stdio")]
    transport: TransportArg,
    /// Run K workers (shards), connection conn on shard conn % K; each event
    /// goes to every shard (docs/SCALING.md).
    #[arg(long, value_name = "K", default_value = "1")]
    shards: NonZeroUsize,
    /// Do not supervise the workers: a worker that dies stops the relay
    /// (by default it is replaced and its clients' state replayed).
    #[arg(long)]
    no_supervise: bool,
    /// This relay's URL as NIP-42 clients name it (default: ws://LISTEN).
    #[arg(long)]
    relay_url: Option<String>,
    /// Messages a client may have waiting before it is disconnected as too slow.
    #[arg(long, default_value_t = DEFAULT_CLIENT_QUEUE)]
    client_queue: usize,
    /// Largest client message acted on; a longer EVENT gets OK false, anything
    /// else a NOTICE (NIP-11's max_message_length).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Largest clock difference accepted in a NIP-42 AUTH event, in seconds.
    #[arg(long, default_value_t = 600)]
    auth_window_secs: u64,
    /// Share events with other relay nodes through this NATS server
    /// (e.g. nats://127.0.0.1:4222; a cluster's servers comma-separated);
    /// see docs/SCALING.md.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// The NATS subject all nodes publish and subscribe to.
    #[arg(long, default_value = nats::DEFAULT_SUBJECT, requires = "nats")]
    nats_subject: String,
    /// This node's id in the Relay-Node header (default: 16 random hex digits).
    #[arg(long, requires = "nats")]
    node_id: Option<String>,
    /// Events waiting for NATS before new ones are dropped (and counted).
    #[arg(long, default_value_t = nats::DEFAULT_PUBLISH_QUEUE, requires = "nats")]
    nats_queue: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    Stdio,
    Socketpair,
}

fn worker_command(arg: Option<String>) -> Result<Vec<OsString>, String> {
    match arg {
        Some(cmd) => {
            let words: Vec<OsString> = cmd.split_whitespace().map(OsString::from).collect();
            if words.is_empty() {
                return Err("--worker is empty".into());
            }
            Ok(words)
        }
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
            Ok(vec![locate::locate(&exe)?.into_os_string()])
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let worker = match worker_command(args.worker) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("relay: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = Config::new(args.listen, worker);
    config.transport = match args.transport {
        TransportArg::Stdio => Transport::Stdio,
        TransportArg::Socketpair => Transport::SocketPair,
    };
    config.shards = args.shards;
    if args.no_supervise {
        config.supervision = None;
    }
    config.relay_url = args.relay_url;
    config.client_queue = args.client_queue;
    config.max_message_bytes = args.max_message_bytes;
    config.auth_window = Duration::from_secs(args.auth_window_secs);
    config.nats = args.nats.map(|url| {
        let mut nats = NatsConfig::new(url);
        nats.subject = args.nats_subject;
        nats.node_id = args.node_id.unwrap_or(nats.node_id);
        nats.publish_queue = args.nats_queue;
        nats
    });
    let nats_line = config
        .nats
        .as_ref()
        .map(|n| format!("node {} on NATS {} subject {}", n.node_id, n.url, n.subject));

    let relay = match Relay::start(config).await {
        Ok(relay) => relay,
        Err(e) => {
            eprintln!("relay: {e}");
            return ExitCode::from(2);
        }
    };
    let pids = relay.worker_pids();
    for (shard, pid) in pids.iter().enumerate() {
        let at = if pids.len() > 1 {
            format!("shard {shard}: ")
        } else {
            String::new()
        };
        let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        eprintln!("relay: {at}worker pid {pid}");
    }
    if let Some(line) = nats_line {
        println!("broadcast-example-relay: {line}");
    }
    println!("broadcast-example-relay: listening on {}", relay.url());
    let _ = std::io::stdout().flush();
    // Ctrl-C (SIGINT): stop accepting, end the worker's input, reap it.
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match relay.serve_until(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: {e}");
            ExitCode::FAILURE
        }
    }
}
