//! Plain HTTP on the relay's port: the NIP-11 relay information document,
//! the CORS preflight for it, and an answer to any other request that is
//! not a WebSocket upgrade.
//!
//! tungstenite's handshake answers only a valid upgrade (for anything else
//! it fails without writing a byte, and it refuses to send a 2xx of our
//! own), so the relay reads the request head first, bounded in size
//! ([`MAX_REQUEST_HEAD`]; the caller bounds the time), and parses it with
//! `httparse`, the parser tungstenite itself uses. An upgrade is handed to
//! tungstenite with the bytes read so far replayed in front of the socket
//! ([`Replay`]), so its handshake sees the request untouched. Anything else
//! gets one response, written with tungstenite's `write_response`, and the
//! connection is closed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::write_response;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response, StatusCode, header};

use crate::server::Config;

/// The media type of the NIP-11 document, which a client asks for in
/// `Accept`.
pub const NIP11_MEDIA_TYPE: &str = "application/nostr+json";

/// The largest request head the relay reads (request line and headers);
/// a longer one gets 431. WebSocket clients send well under 1 KiB, browsers
/// a few KiB with cookies.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// As many headers as tungstenite's own handshake accepts.
const MAX_HEADERS: usize = 124;

/// What a plain GET of the relay's URL reads.
const PLAIN_TEXT: &str = "This is a Nostr relay (broadcast-example-relay). Connect to it with a Nostr client \
over WebSocket (NIP-01); a GET with `Accept: application/nostr+json` returns its NIP-11 relay information \
document.\n";

/// The NIP-11 relay information document of a relay run with `config`.
///
/// `limitation` holds only what this relay enforces: the message size
/// ([`Config::max_message_bytes`]) and the sub_id length (that of
/// [`broadcast_wire::SubId`]), and says that neither authentication nor
/// payment is needed to read or write. The relay limits neither the
/// subscriptions of a connection nor the filters of a REQ nor a filter's
/// `limit` (it stores nothing; the worker limits no counts,
/// PROTOCOL.md#implementation-limits), so `max_subscriptions`,
/// `max_filters` and `max_limit` are absent.
///
/// ```
/// use broadcast_example_relay::{Config, http::relay_information};
///
/// let mut config = Config::new("127.0.0.1:0".parse().unwrap(), vec![]);
/// config.max_message_bytes = 1000;
/// let doc = relay_information(&config);
/// assert_eq!(doc["supported_nips"], serde_json::json!([1, 11, 42, 70]));
/// assert_eq!(doc["limitation"]["max_message_length"], 1000);
/// ```
pub fn relay_information(config: &Config) -> Value {
    json!({
        "name": "broadcast-example-relay",
        "description": "An example NIP-01 relay: events are checked and fanned out by the reference \
            broadcast worker to the subscriptions open when they arrive; nothing is stored, so every \
            REQ gets EOSE at once. Private kinds (DMs and the like) reach only a connection \
            authenticated (NIP-42) as their author or a p-tagged recipient; a protected event \
            (NIP-70) is accepted only from its authenticated author.",
        "software": env!("CARGO_PKG_REPOSITORY"),
        "version": env!("CARGO_PKG_VERSION"),
        "supported_nips": [1, 11, 42, 70],
        "limitation": {
            "max_message_length": config.max_message_bytes,
            "max_subid_length": broadcast_wire::SubId::MAX_LEN,
            "auth_required": false,
            "payment_required": false,
            "restricted_writes": false,
        },
    })
}

/// Reads the request head from `stream`; returns the stream for
/// tungstenite when it is a WebSocket upgrade, or answers it and returns
/// `None`. The caller bounds the time it takes.
pub(crate) async fn route(
    mut stream: TcpStream,
    info_document: &str,
) -> io::Result<Option<Replay<TcpStream>>> {
    let mut head = vec![0; MAX_REQUEST_HEAD];
    let mut len = 0;
    let response = loop {
        if len == head.len() {
            break refusal(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "The request head is too large.\n",
            );
        }
        let n = stream.read(&mut head[len..]).await?;
        if n == 0 {
            return Ok(None); // gone before the request was complete
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head[..len]) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(_)) if is_websocket_upgrade(request.headers) => {
                head.truncate(len);
                return Ok(Some(Replay::new(head, stream)));
            }
            Ok(httparse::Status::Complete(_)) => {
                break answer(request.method.unwrap_or(""), request.headers, info_document);
            }
            Err(httparse::Error::TooManyHeaders) => {
                break refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers.\n");
            }
            Err(_) => break refusal(StatusCode::BAD_REQUEST, "This is not an HTTP request.\n"),
        }
    };
    stream.write_all(&encode(response)?).await?;
    stream.shutdown().await?;
    // Read what the client may still send (a body), briefly and bounded:
    // closing a socket with unread input resets the connection, which can
    // destroy the response before the client reads it.
    let mut sink = [0; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(None)
}

/// `Upgrade` names `websocket` (RFC 6455): tungstenite checks the rest of
/// the handshake and fails as before when it is wrong.
fn is_websocket_upgrade(headers: &[httparse::Header]) -> bool {
    header_values(headers, "upgrade").any(|value| {
        value
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// The values of the headers named `name` that are UTF-8.
fn header_values<'a>(headers: &'a [httparse::Header], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
}

/// A response, its body, and whether the body is sent (not for HEAD).
pub(crate) struct Answer {
    response: Response<String>,
    send_body: bool,
}

/// The response to a complete request that is not a WebSocket upgrade:
///
/// - `OPTIONS`: the CORS preflight, 204 with the `Access-Control-*`
///   headers NIP-11 asks for.
/// - `GET` or `HEAD` accepting `application/nostr+json`: the NIP-11
///   document, with CORS headers.
/// - any other `GET` or `HEAD`: 200, a line of text saying what this is. Not
///   426 Upgrade Required: a browser pointed at the relay's URL shows the
///   text either way, but uptime monitors and load balancers check a
///   relay's URL with a plain GET and count anything but 2xx as down.
/// - any other method: 405 with `Allow`.
fn answer(method: &str, headers: &[httparse::Header], info_document: &str) -> Answer {
    let head = method == "HEAD";
    let builder = Response::builder()
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS")
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers(headers))
        .header(header::CONNECTION, "close");
    let built = match method {
        "OPTIONS" => builder
            .status(StatusCode::NO_CONTENT)
            .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
            .body(String::new()),
        "GET" | "HEAD" => {
            let nip11 = header_values(headers, "accept").any(|accept| {
                accept.split(',').any(|range| {
                    let media = range.split(';').next().unwrap_or("").trim();
                    media.eq_ignore_ascii_case(NIP11_MEDIA_TYPE)
                })
            });
            let (media, body) = if nip11 {
                (NIP11_MEDIA_TYPE, info_document.to_owned())
            } else {
                ("text/plain; charset=utf-8", PLAIN_TEXT.to_owned())
            };
            builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, media)
                .header(header::VARY, "Accept")
                .body(body)
        }
        _ => builder
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD, OPTIONS")
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body("Method not allowed: this is a Nostr relay.\n".to_owned()),
    };
    Answer {
        // Every header above is a valid constant or a checked value.
        response: built.expect("a well-formed response"),
        send_body: !head,
    }
}

/// The preflight's `Access-Control-Request-Headers`, echoed when it is a
/// valid header value; `*` otherwise (any header, for requests without
/// credentials).
fn allowed_headers(headers: &[httparse::Header]) -> HeaderValue {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("access-control-request-headers"))
        .and_then(|h| HeaderValue::from_bytes(h.value).ok())
        .unwrap_or(HeaderValue::from_static("*"))
}

/// An error response, with its text.
fn refusal(status: StatusCode, text: &str) -> Answer {
    Answer {
        response: Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(header::CONNECTION, "close")
            .body(text.to_owned())
            .expect("a well-formed response"),
        send_body: true,
    }
}

/// The bytes of `answer`: status line and headers by tungstenite's
/// `write_response`, `Content-Length`, then the body unless it is for HEAD.
fn encode(answer: Answer) -> io::Result<Vec<u8>> {
    let Answer {
        mut response,
        send_body,
    } = answer;
    let length = response.body().len();
    if response.status() != StatusCode::NO_CONTENT {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let mut out = Vec::with_capacity(256 + length);
    write_response(&mut out, &response).map_err(io::Error::other)?;
    if send_body {
        out.extend_from_slice(response.body().as_bytes());
    }
    Ok(out)
}

/// A stream whose first bytes are `head`, already read from `inner`, then
/// the rest of `inner`; writes go to `inner`. The relay reads a request
/// head itself and tungstenite reads it again from here.
pub struct Replay<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    fn new(head: Vec<u8>, inner: S) -> Replay<S> {
        Replay { head, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.at);
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                // Replayed: the buffer is not kept for the connection's life.
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn config() -> Config {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), vec![]);
        config.max_message_bytes = 4321;
        config
    }

    #[test]
    fn the_document_states_the_configured_limits_and_nothing_unenforced() {
        let doc = relay_information(&config());
        for key in ["name", "description", "software", "version"] {
            assert!(doc[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
        }
        assert_eq!(doc["supported_nips"], json!([1, 11, 42, 70]));
        assert_eq!(
            doc["limitation"],
            json!({
                "max_message_length": 4321,
                "max_subid_length": 64,
                "auth_required": false,
                "payment_required": false,
                "restricted_writes": false,
            })
        );
    }

    /// Sends `request` to [`route`] over loopback, in two writes (a head
    /// may arrive in pieces), and returns the response text (empty when it
    /// went to the WebSocket handshake) and the bytes the handshake would
    /// read first.
    async fn exchange(request: &[u8]) -> (String, Option<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut replay = route(stream, r#"{"name":"x"}"#).await.unwrap()?;
            let mut replayed = vec![0; MAX_REQUEST_HEAD];
            let n = replay.read(&mut replayed).await.unwrap();
            replayed.truncate(n);
            Some(replayed)
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (a, b) = request.split_at(request.len() / 2);
        client.write_all(a).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        drop(client);
        let replayed = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        (String::from_utf8(response).unwrap(), replayed)
    }

    #[tokio::test]
    async fn nip11_plain_get_preflight_and_other_methods_each_get_their_answer() {
        let (nip11, _) =
            exchange(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html, Application/Nostr+JSON;q=0.9\r\n\r\n")
                .await;
        assert!(nip11.starts_with("HTTP/1.1 200 OK\r\n"), "{nip11}");
        assert!(
            nip11.contains("\r\ncontent-type: application/nostr+json\r\n"),
            "{nip11}"
        );
        assert!(
            nip11.contains("\r\naccess-control-allow-origin: *\r\n"),
            "{nip11}"
        );
        assert!(nip11.contains("\r\ncontent-length: 12\r\n"), "{nip11}");
        assert!(nip11.ends_with("\r\n\r\n{\"name\":\"x\"}"), "{nip11}");

        let (plain, _) = exchange(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(plain.starts_with("HTTP/1.1 200 OK\r\n"), "{plain}");
        assert!(plain.contains("content-type: text/plain"), "{plain}");
        assert!(plain.ends_with(PLAIN_TEXT), "{plain}");

        let (head, _) = exchange(b"HEAD / HTTP/1.1\r\nAccept: application/nostr+json\r\n\r\n").await;
        assert!(head.contains("\r\ncontent-length: 12\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");

        let (preflight, _) = exchange(
            b"OPTIONS / HTTP/1.1\r\nOrigin: https://client.example\r\nAccess-Control-Request-Method: GET\r\n\
              Access-Control-Request-Headers: accept\r\n\r\n",
        )
        .await;
        assert!(
            preflight.starts_with("HTTP/1.1 204 No Content\r\n"),
            "{preflight}"
        );
        assert!(
            preflight.contains("\r\naccess-control-allow-origin: *\r\n"),
            "{preflight}"
        );
        assert!(preflight.contains("\r\naccess-control-allow-methods: GET, HEAD, OPTIONS\r\n"));
        assert!(
            preflight.contains("\r\naccess-control-allow-headers: accept\r\n"),
            "{preflight}"
        );

        let (post, _) = exchange(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").await;
        assert!(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{post}");
        assert!(post.contains("\r\nallow: GET, HEAD, OPTIONS\r\n"), "{post}");

        let (junk, _) = exchange(b"\x16\x03\x01 not http\r\n\r\n").await;
        assert!(junk.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }

    #[tokio::test]
    async fn an_upgrade_goes_to_the_handshake_with_every_byte_replayed() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let (response, replayed) = exchange(request).await;
        assert_eq!(response, "");
        assert_eq!(replayed.unwrap(), request.to_vec());
    }

    #[tokio::test]
    async fn a_head_over_the_limit_gets_431() {
        let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        request.extend_from_slice(b"\r\n\r\n");
        let (response, _) = exchange(&request).await;
        assert!(response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }
}
