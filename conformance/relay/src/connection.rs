//! One WebSocket client: its messages become hub commands, its outbox
//! becomes WebSocket text, and its own answers (OK, EOSE, NOTICE, CLOSED,
//! AUTH) are written directly.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use broadcast_wire::SubId;
use broadcast_worker::ReqError;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::auth;
use crate::client_message::{self, ClientMessage, Refusal};
use crate::event;
use crate::http::Replay;
use crate::hub::{ClientHandle, HubCommand};
use crate::server::Shared;

type Ws = WebSocketStream<Replay<TcpStream>>;

/// Why a session stopped.
enum Stop {
    /// The client closed the connection.
    Closed,
    /// The relay is stopping (the hub is gone).
    HubGone,
    /// The client fell behind: its outbox overflowed.
    Kicked,
    /// The WebSocket failed.
    Ws(tungstenite::Error),
}

impl From<tungstenite::Error> for Stop {
    fn from(e: tungstenite::Error) -> Self {
        Stop::Ws(e)
    }
}

/// How long a goodbye (NOTICE and close frame) may take: a client that does
/// not read is dropped without it.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one accepted WebSocket as connection `conn` until it closes, and
/// always tells the hub when it is gone.
pub(crate) async fn serve(ws: Ws, conn: i32, shared: Arc<Shared>) {
    let (outbox_tx, outbox) = mpsc::channel(shared.config.client_queue);
    let kicked = Arc::new(Notify::new());
    let client = ClientHandle {
        outbox: outbox_tx,
        kicked: Arc::clone(&kicked),
    };
    if shared
        .hub
        .send(HubCommand::Connect { conn, client })
        .await
        .is_err()
    {
        return; // the relay is stopping
    }
    let mut session = Session {
        conn,
        shared: Arc::clone(&shared),
        challenge: auth::new_challenge(),
        authed: HashSet::new(),
        kicked,
        ws,
    };
    let stop = session.run(outbox).await;
    let goodbye = match &stop {
        Stop::Kicked => {
            let limit = shared.config.client_queue;
            let notice = format!(
                "error: disconnected: more than {limit} messages were waiting for this connection (it reads too slowly)"
            );
            Some((Some(notice), CloseCode::Policy, "too slow"))
        }
        Stop::HubGone => Some((None, CloseCode::Away, "relay stopping")),
        Stop::Ws(tungstenite::Error::Capacity(_)) => Some((None, CloseCode::Size, "message too big")),
        Stop::Closed | Stop::Ws(_) => None,
    };
    if let Stop::Ws(e) = &stop {
        eprintln!("relay: conn {conn}: {e}");
    }
    if let Some((notice, code, reason)) = goodbye {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, session.goodbye(notice, code, reason)).await;
    }
    let _ = shared.hub.send(HubCommand::Disconnect { conn }).await;
}

struct Session {
    conn: i32,
    shared: Arc<Shared>,
    challenge: String,
    /// Pubkeys this connection proved with NIP-42.
    authed: HashSet<[u8; 32]>,
    kicked: Arc<Notify>,
    ws: Ws,
}

impl Session {
    async fn run(&mut self, mut outbox: mpsc::Receiver<Utf8Bytes>) -> Stop {
        match self.serve(&mut outbox).await {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }

    async fn serve(
        &mut self,
        outbox: &mut mpsc::Receiver<Utf8Bytes>,
    ) -> Result<std::convert::Infallible, Stop> {
        let challenge = json!(["AUTH", self.challenge]);
        self.send_json(&challenge).await?;
        loop {
            tokio::select! {
                biased;
                () = self.kicked.notified() => return Err(Stop::Kicked),
                frame = outbox.recv() => match frame {
                    Some(text) => self.write(Message::Text(text)).await?,
                    None => return Err(Stop::HubGone),
                },
                message = self.ws.next() => match message {
                    None | Some(Ok(Message::Close(_))) => return Err(Stop::Closed),
                    Some(Ok(Message::Text(text))) => self.on_text(&text).await?,
                    Some(Ok(Message::Binary(_))) => {
                        self.send_json(&json!(["NOTICE", "invalid: binary messages are not supported"])).await?;
                    }
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => return Err(Stop::Ws(e)),
                },
            }
        }
    }

    /// Handles one text message.
    async fn on_text(&mut self, text: &Utf8Bytes) -> Result<(), Stop> {
        let max = self.shared.config.max_message_bytes;
        if text.len() > max {
            let reason = format!(
                "invalid: message too large ({} bytes; the limit is {max})",
                text.len()
            );
            // NIP-01 wants an OK for every EVENT: one whose id can be read
            // cheaply gets it; anything else, a NOTICE.
            return match client_message::oversized_event_id(text) {
                Some(id) => self.send_json(&json!(["OK", id, false, reason])).await,
                None => self.send_json(&json!(["NOTICE", reason])).await,
            };
        }
        match client_message::parse(text) {
            Ok(ClientMessage::Event(value)) => self.on_event(text, &value).await,
            Ok(ClientMessage::Req(sub_id)) => {
                let reply = json!(["EOSE", sub_id.as_str()]);
                let req = Bytes::copy_from_slice(text.as_bytes());
                self.to_hub(HubCommand::Subscribe {
                    conn: self.conn,
                    sub_id,
                    req,
                })
                .await?;
                // No storage: nothing stored to send, so EOSE at once. The
                // Add went to the hub first, so every event published after
                // the client saw this EOSE reaches the worker after the Add.
                // The REQ passed the worker's own parser, so the reference
                // worker accepts it; a worker with limits of its own may
                // still refuse it, and its CLOSED then follows this EOSE.
                self.send_json(&reply).await
            }
            Ok(ClientMessage::Close(sub_id)) => {
                self.to_hub(HubCommand::Unsubscribe {
                    conn: self.conn,
                    sub_id,
                })
                .await
            }
            Ok(ClientMessage::Auth(value)) => self.on_auth(&value).await,
            Err(Refusal::Notice(notice)) => self.send_json(&json!(["NOTICE", notice])).await,
            Err(Refusal::Closed { sub_id, error }) => self.refuse_req(&sub_id, &error).await,
        }
    }

    /// Answers a refused REQ with the worker's CLOSED, and neither an Add
    /// nor an EOSE.
    ///
    /// A REQ replaces the subscription of the same sub_id, and a worker
    /// whose Add fails removes it (PROTOCOL.md#add-failure): a client told
    /// `CLOSED` for a sub_id must get no more events for it. So a Remove
    /// for that sub_id goes to the worker first (it does nothing when there
    /// is no such subscription). Races, none of which needs more:
    ///
    /// - A `CLOSE` or a `REQ` the client sends after this one is read after
    ///   this one, and this task hands commands to the hub, and the hub to
    ///   the worker, in order: an Add in flight is never overtaken by a
    ///   later Remove, nor this Remove by a later Add.
    /// - Events the worker matched against the old subscription before the
    ///   Remove may still be in this connection's outbox, and this CLOSED is
    ///   written directly, so they can arrive after it, exactly as after a
    ///   `CLOSE`; NIP-01 clients drop events for a subscription they no
    ///   longer hold. Every event published after the client saw the CLOSED
    ///   reaches the worker after the Remove and is never delivered.
    /// - A valid REQ the worker refuses anyway (see above) gets its CLOSED
    ///   from the worker, after the EOSE, possibly after the client's own
    ///   CLOSE: the client ignores it, as NIP-01 lets a relay close a
    ///   subscription at any time.
    async fn refuse_req(&mut self, sub_id: &str, error: &ReqError) -> Result<(), Stop> {
        // A sub_id that is not a SubId never reached the worker: nothing to
        // remove.
        if let Ok(sub) = SubId::try_from(sub_id) {
            self.to_hub(HubCommand::Unsubscribe {
                conn: self.conn,
                sub_id: sub,
            })
            .await?;
        }
        match Utf8Bytes::try_from(client_message::closed_message(sub_id, error)) {
            Ok(text) => self.write(Message::Text(text)).await,
            // Never: it is made of a &str and a String.
            Err(e) => {
                eprintln!("relay: conn {}: a CLOSED message is not UTF-8: {e}", self.conn);
                Ok(())
            }
        }
    }

    async fn on_event(&mut self, text: &str, value: &Value) -> Result<(), Stop> {
        let Some(id) = event::claimed_id(value).map(str::to_owned) else {
            return self
                .send_json(&json!(["NOTICE", "invalid: the event has no id"]))
                .await;
        };
        let verdict = match event::verify(value) {
            Err(reason) => Err(format!("invalid: {reason}")),
            Ok(e) if e.kind == auth::AUTH_KIND => Err(format!(
                "invalid: kind {} is for AUTH messages and is never published",
                auth::AUTH_KIND
            )),
            // NIP-70: only its author may publish a protected event.
            Ok(e) if e.is_protected() && !self.authed.contains(&e.pubkey) => {
                Err("auth-required: this event is protected and may be published only by its authenticated author".into())
            }
            Ok(e) => crate::nats::hex_id(&e.id).ok_or_else(|| "invalid: id is not hex".to_owned()),
        };
        match verdict {
            Ok(event_id) => {
                self.to_hub(HubCommand::Publish {
                    conn: self.conn,
                    id: event_id,
                    event_msg: Bytes::copy_from_slice(text.as_bytes()),
                })
                .await?;
                self.send_json(&json!(["OK", id, true, ""])).await
            }
            Err(reason) => self.send_json(&json!(["OK", id, false, reason])).await,
        }
    }

    async fn on_auth(&mut self, value: &Value) -> Result<(), Stop> {
        let Some(id) = event::claimed_id(value).map(str::to_owned) else {
            return self
                .send_json(&json!(["NOTICE", "invalid: the AUTH event has no id"]))
                .await;
        };
        let config = &self.shared.config;
        let checked = event::verify(value).and_then(|e| {
            auth::check(&e, &self.challenge, &config.relay_url, config.auth_window).map(|()| e.pubkey)
        });
        match checked {
            Ok(pubkey) => {
                self.authed.insert(pubkey);
                self.to_hub(HubCommand::Auth {
                    conn: self.conn,
                    pubkey,
                })
                .await?;
                self.send_json(&json!(["OK", id, true, ""])).await
            }
            Err(reason) => {
                self.send_json(&json!(["OK", id, false, format!("invalid: {reason}")]))
                    .await
            }
        }
    }

    /// Waits for room in the hub's queue: a client that sends faster than
    /// the worker takes commands is slowed down, never dropped.
    async fn to_hub(&self, command: HubCommand) -> Result<(), Stop> {
        self.shared.hub.send(command).await.map_err(|_| Stop::HubGone)
    }

    async fn send_json(&mut self, value: &Value) -> Result<(), Stop> {
        self.write(Message::Text(value.to_string().into())).await
    }

    /// Writes one message, unless the client is kicked meanwhile: a client
    /// that stopped reading must not keep its task waiting forever.
    async fn write(&mut self, message: Message) -> Result<(), Stop> {
        tokio::select! {
            biased;
            () = self.kicked.notified() => Err(Stop::Kicked),
            written = self.ws.send(message) => Ok(written?),
        }
    }

    /// The last words, bounded by the caller's timeout.
    async fn goodbye(&mut self, notice: Option<String>, code: CloseCode, reason: &'static str) {
        if let Some(notice) = notice {
            let _ = self
                .ws
                .send(Message::Text(json!(["NOTICE", notice]).to_string().into()))
                .await;
        }
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }))
            .await;
    }
}
