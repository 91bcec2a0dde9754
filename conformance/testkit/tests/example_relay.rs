//! The example relay (`conformance/relay`) under a client that stops
//! reading: it is disconnected, and the others keep getting every event;
//! and its graceful stop, which reaps the worker.
//! (Its protocol behaviour is tested end to end with nostr-tools in
//! `conformance/relay/e2e`.)
#![cfg(target_os = "linux")]

use std::time::Duration;

use broadcast_example_relay::{Config, Relay};
use broadcast_testkit::worker_process::assert_reaped;
use futures_util::{SinkExt, StreamExt};
use secp256k1::hashes::{Hash, sha256};
use secp256k1::{Keypair, SECP256K1};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(60);

fn signed_event(i: usize, content_len: usize) -> String {
    let keypair = Keypair::from_seckey_slice(SECP256K1, &[5; 32]).unwrap();
    let pubkey = hex::encode(keypair.x_only_public_key().0.serialize());
    let content = format!("{i} {}", "x".repeat(content_len));
    let canonical = serde_json::json!([0, pubkey, 1_700_000_000, 1, [], content]).to_string();
    let id = sha256::Hash::hash(canonical.as_bytes()).to_byte_array();
    let sig = SECP256K1.sign_schnorr_no_aux_rand(&id, &keypair);
    let event = serde_json::json!({
        "id": hex::encode(id), "pubkey": pubkey, "created_at": 1_700_000_000, "kind": 1,
        "tags": [], "content": content, "sig": hex::encode(sig.to_byte_array()),
    });
    serde_json::json!(["EVENT", event]).to_string()
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(url: &str) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(r#"["REQ","all",{"kinds":[1]}]"#.into()))
        .await
        .unwrap();
    loop {
        match timeout(PATIENCE, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.starts_with(r#"["EOSE""#) => return ws,
            Some(Ok(_)) => {}
            other => panic!("no EOSE: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_the_others_get_every_event() {
    let worker = broadcast_testkit::bin_str("reference-worker");
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), vec![worker.into()]);
    // Room for bursts (the hub may route many frames before a connection
    // task runs), far less than what is published.
    config.client_queue = 1024;
    let relay = Relay::start(config).await.unwrap();
    let url = relay.url().to_owned();
    let server = tokio::spawn(relay.serve());

    let mut stalled = subscribe(&url).await; // reads nothing after its EOSE
    let mut reader = subscribe(&url).await;
    let (mut publisher, _) = tokio_tungstenite::connect_async(&url).await.unwrap();

    // ~24 MB to each subscriber: more than loopback TCP buffers hold, so the
    // stalled client's outbox must overflow.
    const EVENTS: usize = 6000;
    let events: Vec<String> = (0..EVENTS).map(|i| signed_event(i, 4000)).collect();
    let publishing = tokio::spawn(async move {
        for e in events {
            publisher.feed(Message::Text(e.into())).await.unwrap();
        }
        publisher.flush().await.unwrap();
        // Keep reading the OKs so the relay never waits on this client.
        let mut oks = 0;
        while oks < EVENTS {
            match publisher.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"["OK""#) => {
                    assert!(t.contains("true"), "refused: {t}");
                    oks += 1;
                }
                Some(Ok(_)) => {}
                other => panic!("publisher: {other:?}"),
            }
        }
    });

    // The reading client gets every event, in order, while the other stalls.
    for i in 0..EVENTS {
        let text = loop {
            match timeout(PATIENCE, reader.next())
                .await
                .expect("the reader was stalled")
            {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"["EVENT""#) => break t,
                Some(Ok(_)) => {}
                other => panic!("reader stream ended at event {i}: {other:?}"),
            }
        };
        assert!(
            text.contains(&format!(r#""content":"{i} "#)),
            "event {i} out of order"
        );
    }
    timeout(PATIENCE, publishing).await.unwrap().unwrap();

    // The stalled client was cut off: what it can still read ends early
    // (after what the TCP buffers held), with the relay's NOTICE or not.
    let mut got = 0;
    let ended = timeout(PATIENCE, async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"["EVENT""#) => got += 1,
                Some(Ok(Message::Text(t))) if t.starts_with(r#"["NOTICE""#) => {
                    assert!(t.contains("disconnected"), "{t}");
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled client was never disconnected");
    assert!(
        got < EVENTS,
        "the stalled client got all {got} events: it was never cut off"
    );
    assert!(!server.is_finished(), "the relay stopped");
}

#[tokio::test]
async fn serve_until_stops_the_worker_and_reaps_it_and_clients_are_told() {
    let worker = broadcast_testkit::bin_str("reference-worker");
    let relay = Relay::start(Config::new("127.0.0.1:0".parse().unwrap(), vec![worker.into()]))
        .await
        .unwrap();
    let url = relay.url().to_owned();
    let pid = relay.worker_pid().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relay.serve_until(async {
        let _ = stop_rx.await;
    }));
    let mut client = subscribe(&url).await;
    stop_tx.send(()).unwrap();
    let served = timeout(PATIENCE, server).await.unwrap().unwrap();
    assert_eq!(served, Ok(()));
    assert_reaped(pid);
    // The client hears the relay go away (a close frame, or the end).
    let end = timeout(PATIENCE, async {
        loop {
            match client.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the client was left connected");
}
