//! Events per second delivered to N WebSocket clients (tokio-tungstenite)
//! through the example relay (AsyncBroadcaster + the reference worker),
//! against the same clients fed by a WebSocket server that does no
//! matching (it forwards every EVENT to every client), in the same run.
//!
//! ```text
//! cargo bench -p broadcast-example-relay --bench relay_fanout
//! cargo bench -p broadcast-example-relay --bench relay_fanout -- --rounds 21 --clients 50 --events 500
//! ```
//!
//! Each round, for each arm: N clients connect and subscribe (`{"kinds":[1]}`,
//! which every event matches), a publisher connects; then, timed, the
//! publisher sends E signed kind-1 events as fast as the server reads them,
//! and the round ends when every client has received all E. Figure:
//! `N × E / time`. The arms alternate (which goes first alternates too), and
//! the ratio reported is the median over the rounds of `baseline time /
//! relay time`: the relay's delivery rate as a share of a server that only
//! forwards. Clients and both servers share the process and its two-thread
//! runtime, so the clients' cost is in both arms alike. Without `--bench`
//! (as under `cargo test --benches`) it runs one small round as a smoke test.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broadcast_example_relay::{Config, Relay};
use broadcast_worker::locate;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const PATIENCE: Duration = Duration::from_secs(120);

/// The baseline: accepts WebSockets; every `["EVENT", e]` a client sends is
/// answered with OK and forwarded as `["EVENT","s",e]` to every client. No
/// verification, no subscriptions, no matching, no worker.
async fn forwarding_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let clients: Arc<Mutex<Vec<mpsc::Sender<Utf8Bytes>>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let clients = Arc::clone(&clients);
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(4096);
                clients.lock().unwrap().push(tx.clone());
                let writer = tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.send(Message::Text(m)).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) else {
                        continue;
                    };
                    match items.first().and_then(|v| v.as_str()) {
                        Some("EVENT") => {
                            let event = &items[1];
                            let _ = tx
                                .send(
                                    serde_json::json!(["OK", event["id"], true, ""])
                                        .to_string()
                                        .into(),
                                )
                                .await;
                            let out: Utf8Bytes = format!(r#"["EVENT","s",{event}]"#).into();
                            let targets: Vec<_> = clients.lock().unwrap().clone();
                            for t in targets {
                                let _ = t.send(out.clone()).await;
                            }
                        }
                        Some("REQ") => {
                            let sub = items[1].as_str().unwrap_or("s").to_owned();
                            let _ = tx.send(serde_json::json!(["EOSE", sub]).to_string().into()).await;
                        }
                        _ => {}
                    }
                }
                clients.lock().unwrap().retain(|c| !c.same_channel(&tx));
                writer.abort();
            });
        }
    });
    addr
}

/// One timed round against `url`: returns the time from the first EVENT
/// sent to the last one received by the last client.
async fn round(url: &str, clients: usize, events: &[String]) -> Duration {
    let want = events.len();
    let (done_tx, mut done_rx) = mpsc::channel::<()>(clients);
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("client connects");
        ws.send(Message::Text(r#"["REQ","s",{"kinds":[1]}]"#.into()))
            .await
            .expect("REQ");
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                panic!("no EOSE")
            };
            if t.starts_with(r#"["EOSE""#) {
                break;
            }
        }
        let done = done_tx.clone();
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < want {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.starts_with(r#"["EVENT""#) => got += 1,
                    Some(Ok(_)) => {}
                    other => panic!("client stream ended after {got} events: {other:?}"),
                }
            }
            let _ = done.send(()).await;
            let _ = ws.close(None).await;
        }));
    }
    let (publisher, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("publisher connects");
    let (mut sink, mut stream) = publisher.split();
    // Drain the publisher's OKs so the server never blocks on it.
    let oks = tokio::spawn(async move {
        let mut n = 0;
        while n < want {
            match stream.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"["OK""#) => {
                    assert!(t.contains("true"), "refused: {t}");
                    n += 1;
                }
                Some(Ok(_)) => {}
                other => panic!("publisher stream ended: {other:?}"),
            }
        }
    });
    let started = Instant::now();
    for e in events {
        sink.feed(Message::Text(e.as_str().into())).await.expect("send");
    }
    sink.flush().await.expect("flush");
    for _ in 0..clients {
        tokio::time::timeout(PATIENCE, done_rx.recv())
            .await
            .expect("every client gets every event");
    }
    let took = started.elapsed();
    tokio::time::timeout(PATIENCE, oks)
        .await
        .expect("OKs")
        .expect("publisher");
    for r in readers {
        r.await.expect("reader");
    }
    let _ = sink.close().await;
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut clients, mut n_events, mut bench) = (11, 50, 500, false);
    while let Some(arg) = args.next() {
        let mut num = |what: &str| {
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{what} N"))
        };
        match arg.as_str() {
            "--bench" => bench = true,
            "--rounds" => rounds = num("--rounds"),
            "--clients" => clients = num("--clients"),
            "--events" => n_events = num("--events"),
            _ => {} // other harness flags
        }
    }
    if !bench {
        (rounds, clients, n_events) = (1, 3, 20);
    }
    let exe = std::env::current_exe().expect("current exe");
    let worker = locate::locate(&exe).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let relay = Relay::start(Config::new("127.0.0.1:0".parse().unwrap(), vec![worker.into_os_string()]))
            .await
            .expect("relay starts");
        let relay_url = relay.url().to_owned();
        tokio::spawn(async move { relay.serve().await });
        let baseline_url = format!("ws://{}", forwarding_server().await);
        let events = support::signed_event_messages(n_events);

        let (mut shares, mut base_rates, mut relay_rates) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..rounds {
            let (b, r) = if i % 2 == 0 {
                let b = round(&baseline_url, clients, &events).await;
                (b, round(&relay_url, clients, &events).await)
            } else {
                let r = round(&relay_url, clients, &events).await;
                (round(&baseline_url, clients, &events).await, r)
            };
            let delivered = (clients * n_events) as f64;
            shares.push(b.as_secs_f64() / r.as_secs_f64());
            base_rates.push(delivered / b.as_secs_f64());
            relay_rates.push(delivered / r.as_secs_f64());
        }
        if !bench {
            println!("relay_fanout ran (smoke test: pass --bench for figures)");
            return;
        }
        println!(
            "{clients} clients x {n_events} events, median of {rounds} rounds: relay {:.0} events/s delivered, \
             forwarding-only server {:.0} events/s: relay/baseline {:.1}% (rounds {:.1}%..{:.1}%)",
            median(relay_rates),
            median(base_rates),
            100.0 * median(shares.clone()),
            100.0 * shares.iter().cloned().fold(f64::MAX, f64::min),
            100.0 * shares.iter().cloned().fold(f64::MIN, f64::max),
        );
    });
}
