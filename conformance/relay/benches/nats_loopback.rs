//! Messages per second through core NATS on loopback, as the relay's
//! `--nats` uses it (docs/SCALING.md, "Across machines: NATS"): one
//! async-nats client publishes E relay-sized messages (a signed kind-1
//! `["EVENT", {...}]` of about 400 bytes, with the `Relay-Node` header) to
//! one subject, another client subscribed to it receives them, and the
//! clock runs from the first publish to the last message received. It
//! also times what each node does to every message from NATS before its
//! hub sees it (parse, id and signature check) on one core.
//!
//! ```text
//! cargo bench -p broadcast-example-relay --bench nats_loopback
//! cargo bench -p broadcast-example-relay --bench nats_loopback -- --rounds 5 --events 200000
//! ```
//!
//! It starts its own `nats-server -a 127.0.0.1 -p -1` (Debian's package;
//! `NATS_URL=nats://HOST:PORT` uses a running one instead) and stops it at
//! the end. The figure is the median over the rounds. Without `--bench` (as
//! under `cargo test --benches`) it runs one small round as a smoke test;
//! with no nats-server it says so and does nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use broadcast_example_relay::client_message::{self, ClientMessage};
use broadcast_example_relay::event;
use broadcast_example_relay::nats::NODE_HEADER;
use bytes::Bytes;
use futures_util::StreamExt;

const PATIENCE: Duration = Duration::from_secs(120);

/// A nats-server on a free loopback port, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Option<(Server, String)> {
    let mut child = match Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "nats_loopback: cannot start nats-server ({e}): apt-get install nats-server, or set NATS_URL"
            );
            return None;
        }
    };
    let stderr = child.stderr.take().expect("piped");
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    let needle = "Listening for client connections on ";
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.split_once(needle).map(|(_, a)| a.trim().to_owned()))?;
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Some((server, format!("nats://{addr}")))
}

/// What a node does to each message from NATS before its hub sees it
/// (parse, then id and signature check), on one core: events/s.
fn check_rate(messages: &[Bytes]) -> f64 {
    let started = Instant::now();
    for m in messages {
        let text = std::str::from_utf8(m).expect("UTF-8");
        let Ok(ClientMessage::Event(value)) = client_message::parse(text) else {
            panic!("an EVENT message")
        };
        event::verify(&value).expect("a valid event");
    }
    messages.len() as f64 / started.elapsed().as_secs_f64()
}

async fn round(url: &str, messages: &[Bytes]) -> Duration {
    let events = messages.len();
    let publisher = async_nats::connect(url).await.expect("connect the publisher");
    let subscriber_client = async_nats::ConnectOptions::new()
        .subscription_capacity(events.max(1024))
        .connect(url)
        .await
        .expect("connect the subscriber");
    let mut subscriber = subscriber_client
        .subscribe("bench.events")
        .await
        .expect("subscribe");
    // The server has the subscription once a round trip after it is done.
    subscriber_client.flush().await.expect("flush");
    let started = Instant::now();
    let received = tokio::spawn(async move {
        for _ in 0..events {
            subscriber.next().await.expect("a message");
        }
        Instant::now()
    });
    for payload in messages {
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, "bench-node");
        publisher
            .publish_with_headers("bench.events", headers, payload.clone())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");
    let done = tokio::time::timeout(PATIENCE, received)
        .await
        .expect("every message arrives in time")
        .expect("the receiver");
    done - started
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (rounds, events) = if bench {
        (value("--rounds", 5), value("--events", 200_000))
    } else {
        (1, 1_000)
    };
    let (_server, url) = match std::env::var("NATS_URL") {
        Ok(url) => (None, url),
        Err(_) => match start_server() {
            Some((server, url)) => (Some(server), url),
            None => return,
        },
    };
    // Distinct events, as the relay would see them; sizes differ by a byte or two.
    let messages: Vec<Bytes> = support::signed_event_messages(events)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let size = messages.iter().map(Bytes::len).sum::<usize>() / messages.len().max(1);
    let check = check_rate(&messages[..messages.len().min(20_000)]);
    println!("parse + id + signature check: {check:.0} events/s on one core");
    let mut rates = Vec::new();
    for i in 0..rounds {
        let time = round(&url, &messages).await;
        let rate = events as f64 / time.as_secs_f64();
        println!(
            "round {i}: {events} messages of {size} bytes in {:.1} ms: {:.0} messages/s, {:.1} MiB/s",
            time.as_secs_f64() * 1e3,
            rate,
            rate * size as f64 / (1 << 20) as f64,
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "nats_loopback: median of {rounds} rounds: {median:.0} messages/s ({:.1} MiB/s of payload) publish -> subscribe through nats-server on loopback",
        median * size as f64 / (1 << 20) as f64
    );
}
