//! What a client may send (NIP-01 EVENT, REQ, CLOSE; NIP-42 AUTH), parsed
//! just enough to route it. A REQ is checked whole, filters included, with
//! the worker's own parser ([`broadcast_worker::parse_req`], the one its Add
//! uses, PROTOCOL.md#req-parsing), so that the relay answers a REQ the
//! worker would refuse with the worker's `CLOSED` and never with `EOSE`.

use broadcast_wire::{SubId, SubIdProblem};
use broadcast_worker::{ReqError, closed_frame, parse_req};
use bytes::Bytes;
use serde_json::Value;

/// One client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `["EVENT", <event>]`: the event object, not yet verified.
    Event(Value),
    /// `["REQ", <sub_id>, <filter>...]`, accepted by the worker's parser:
    /// the raw message goes to the worker.
    Req(SubId),
    /// `["CLOSE", <sub_id>]`.
    Close(SubId),
    /// `["AUTH", <event>]`: the kind-22242 event, not yet verified.
    Auth(Value),
}

/// A message that cannot be routed, and how to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Answer with `["NOTICE", reason]`.
    Notice(String),
    /// A REQ whose sub_id is readable but that is refused: answer with
    /// [`closed_message`]`(sub_id, error)` (and no `EOSE`).
    Closed { sub_id: String, error: ReqError },
}

/// The `CLOSED` message refusing the REQ `sub_id`, byte for byte what the
/// worker sends for a failed Add (PROTOCOL.md#closed-message): it is built by
/// the worker's own [`closed_frame`].
///
/// ```
/// use broadcast_example_relay::client_message::closed_message;
/// use broadcast_worker::ReqError;
///
/// let m = closed_message("a\"b", &ReqError::Invalid("no filter".into()));
/// assert_eq!(&m[..], br#"["CLOSED","a\"b","invalid: no filter"]"#);
/// ```
pub fn closed_message(sub_id: &str, error: &ReqError) -> Bytes {
    // The conn of the frame is not used: only its data is the message.
    closed_frame(0, sub_id, error).data
}

/// Parses one text message.
///
/// ```
/// use broadcast_example_relay::client_message::{parse, ClientMessage, Refusal};
///
/// assert!(matches!(parse(r#"["REQ","s",{"kinds":[1]}]"#), Ok(ClientMessage::Req(_))));
/// assert!(matches!(parse("nope"), Err(Refusal::Notice(_))));
/// assert!(matches!(parse(r#"["REQ","",{}]"#), Err(Refusal::Closed { .. })));
/// // The worker's parser refuses this filter: so does the relay.
/// assert!(matches!(parse(r#"["REQ","s",{"ids":["x"]}]"#), Err(Refusal::Closed { .. })));
/// ```
pub fn parse(text: &str) -> Result<ClientMessage, Refusal> {
    let notice = |s: &str| Refusal::Notice(format!("invalid: {s}"));
    let value: Value = serde_json::from_str(text).map_err(|_| notice("the message is not JSON"))?;
    let Value::Array(items) = value else {
        return Err(notice("the message is not a JSON array"));
    };
    let Some(verb) = items.first().and_then(Value::as_str).map(str::to_owned) else {
        return Err(notice("the message does not start with a string"));
    };
    match verb.as_str() {
        "EVENT" | "AUTH" => {
            let [_, event] = <[Value; 2]>::try_from(items)
                .map_err(|_| notice(&format!("{verb} takes exactly one event")))?;
            if !event.is_object() {
                return Err(notice(&format!("the {verb} event is not an object")));
            }
            Ok(if verb == "EVENT" {
                ClientMessage::Event(event)
            } else {
                ClientMessage::Auth(event)
            })
        }
        "REQ" => {
            let sub_id = sub_id(&items)?;
            let closed = |error| Refusal::Closed {
                sub_id: sub_id.to_owned(),
                error,
            };
            let sub = SubId::try_from(sub_id).map_err(|e| {
                closed(ReqError::Invalid(format!(
                    "subscription id: {}",
                    sub_id_problem(e)
                )))
            })?;
            // The very check the worker makes of this Add (same function,
            // same bytes), so the two never disagree about a REQ.
            parse_req(text.as_bytes(), sub.as_str()).map_err(closed)?;
            Ok(ClientMessage::Req(sub))
        }
        "CLOSE" => {
            if items.len() != 2 {
                return Err(notice("CLOSE takes exactly one subscription id"));
            }
            let sub_id = sub_id(&items)?;
            let sub = SubId::try_from(sub_id)
                .map_err(|e| notice(&format!("subscription id: {}", sub_id_problem(e))))?;
            Ok(ClientMessage::Close(sub))
        }
        other => Err(notice(&format!("unknown message type {other:?}"))),
    }
}

/// How many bytes at each end of an oversized message
/// [`oversized_event_id`] looks at.
pub const ID_SCAN_WINDOW: usize = 4096;

/// The id of the event in `text`, an `["EVENT", {...}]` message too large to
/// be parsed, so that it can be refused with `OK false` rather than a bare
/// `NOTICE` (NIP-01 wants an OK for every EVENT).
///
/// It never parses the message: it looks only at its first and last
/// [`ID_SCAN_WINDOW`] bytes, so its cost does not grow with the message.
/// The message must start with `["EVENT",` (JSON whitespace allowed), and
/// the id is the first `"id"` key, preceded by `{` or `,` and followed by
/// `:` and a string of 64 hex digits, found in the first window, else in the
/// last. An event is a few hundred bytes of fixed fields around `content`
/// and `tags`, which are what make it large, and clients write the id either
/// before them (rust-nostr, go-nostr: `id` first) or after them
/// (nostr-tools: `pubkey`, `id`, `sig` last), so it lies in one window.
///
/// Inside a JSON string every `"` is escaped, so `"id"` after `{` or `,`
/// is always a key. What the scan cannot tell is the depth: an extra
/// member holding an object with its own `"id"` key, before the real one,
/// would be taken instead; the OK then names an id the client did not send
/// and the client misses its answer, as it did with the `NOTICE`. `None`:
/// not an EVENT, or no id where it looks (the caller answers with a
/// `NOTICE`).
///
/// ```
/// use broadcast_example_relay::client_message::oversized_event_id;
///
/// let id = "ab".repeat(32);
/// let big = "x".repeat(100_000);
/// let first = format!(r#"["EVENT",{{"id":"{id}","content":"{big}"}}]"#);
/// let last = format!(r#"[ "EVENT" , {{"content":"{big}", "id" : "{id}"}}]"#);
/// assert_eq!(oversized_event_id(&first), Some(id.as_str()));
/// assert_eq!(oversized_event_id(&last), Some(id.as_str()));
/// assert_eq!(oversized_event_id(&format!(r#"["REQ","{id}",{{"content":"{big}"}}]"#)), None);
/// ```
pub fn oversized_event_id(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let head = &bytes[..bytes.len().min(ID_SCAN_WINDOW)];
    let mut at = 0;
    for token in [&b"["[..], b"\"EVENT\"", b","] {
        at = skip_ws(head, at);
        if !head[at..].starts_with(token) {
            return None;
        }
        at += token.len();
    }
    let tail_start = bytes.len().saturating_sub(ID_SCAN_WINDOW).max(at);
    let found = id_in(bytes, at, head.len()).or_else(|| id_in(bytes, tail_start, bytes.len()))?;
    // Both ends are next to an ASCII `"`, so on char boundaries.
    text.get(found..found + 64)
}

const JSON_WS: &[u8] = b" \t\n\r";

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| JSON_WS.contains(b)) {
        at += 1;
    }
    at
}

/// The start of the first 64-hex-digit value of an `"id"` key lying wholly
/// in `bytes[start..end]`.
fn id_in(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let window = &bytes[start..end];
    (0..window.len()).find_map(|key| {
        if !window[key..].starts_with(b"\"id\"") {
            return None;
        }
        let before = window[..key].iter().rev().find(|b| !JSON_WS.contains(b))?;
        if !matches!(before, b'{' | b',') {
            return None;
        }
        let colon = skip_ws(window, key + 4);
        if window.get(colon) != Some(&b':') {
            return None;
        }
        let open = skip_ws(window, colon + 1);
        let value = window.get(open + 1..open + 66)?;
        let (digits, close) = value.split_at(64);
        (window[open] == b'"' && close == b"\"" && digits.iter().all(u8::is_ascii_hexdigit))
            .then_some(start + open + 1)
    })
}

fn sub_id_problem(problem: SubIdProblem) -> String {
    match problem {
        SubIdProblem::Missing => "it is empty".into(),
        SubIdProblem::TooLong { len } => format!("{len} bytes, over the limit of {}", SubId::MAX_LEN),
        other => format!("{other:?}"),
    }
}

fn sub_id(items: &[Value]) -> Result<&str, Refusal> {
    items
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Notice("invalid: the subscription id is not a string".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_bad_input_gets_a_notice_or_closed() {
        for (text, says) in [
            ("{", "not JSON"),
            ("{}", "not a JSON array"),
            ("[]", "does not start"),
            (r#"["HELLO"]"#, "unknown message type"),
            (r#"["EVENT"]"#, "exactly one event"),
            (r#"["EVENT",1]"#, "not an object"),
            (r#"["REQ",5,{}]"#, "not a string"),
            (r#"["CLOSE","a","b"]"#, "exactly one"),
        ] {
            match parse(text) {
                Err(Refusal::Notice(n)) => {
                    assert!(n.starts_with("invalid: ") && n.contains(says), "{text}: {n}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let long = "x".repeat(65);
        match parse(&format!(r#"["REQ","{long}",{{}}]"#)) {
            Err(Refusal::Closed { sub_id, error }) => {
                assert_eq!(sub_id, long);
                assert_eq!(error.prefix(), "invalid");
                assert!(error.reason().contains("65 bytes"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// What the worker itself sends for this REQ as an Add (nothing when it
    /// accepts it).
    fn worker_answer(req: &str, sub_id: &str) -> Option<Bytes> {
        use broadcast_wire::{NewFlags, ReservedFlags, SubCommand};
        let mut worker = broadcast_worker::Worker::new();
        let mut out = Vec::new();
        worker.handle(
            &SubCommand::New {
                conn: 1,
                flags: NewFlags::EMPTY,
            },
            &mut out,
        );
        worker.handle(
            &SubCommand::Add {
                conn: 1,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from(sub_id).unwrap(),
                req: Bytes::copy_from_slice(req.as_bytes()),
            },
            &mut out,
        );
        assert!(out.len() <= 1);
        out.pop().map(|f| f.data)
    }

    #[test]
    fn a_req_is_refused_exactly_when_and_as_the_worker_refuses_it() {
        for (req, sub_id) in [
            (r#"["REQ","a"]"#, "a"),
            (r#"["REQ","a",1]"#, "a"),
            (r#"["REQ","a",{"ids":["not-hex"]}]"#, "a"),
            (r#"["REQ","a",{"kinds":[70000]}]"#, "a"),
            (r#"["REQ","a",{"since":-1}]"#, "a"),
            (r##"["REQ","a",{"#foo":["x"]}]"##, "a"),
            (r##"["REQ","a",{"#foo":["x"]},{"limit":"x"}]"##, "a"),
            (r#"["REQ","a\"b\u0001é",{"kinds":"x"}]"#, "a\"b\u{1}é"),
            (
                r##"["REQ","a",{"kinds":[1]},{"authors":[]},{"#t":["x"],"search":"y"}]"##,
                "a",
            ),
            (r#"["REQ","a",{}]"#, "a"),
        ] {
            let worker = worker_answer(req, sub_id);
            match (parse(req), &worker) {
                (Ok(ClientMessage::Req(sub)), None) => assert_eq!(sub.as_str(), sub_id),
                (Err(Refusal::Closed { sub_id: s, error }), Some(theirs)) => {
                    assert_eq!(s, sub_id);
                    assert_eq!(closed_message(&s, &error), theirs, "{req}");
                }
                (ours, theirs) => panic!("{req}: relay {ours:?}, worker {theirs:?}"),
            }
        }
        let deep = format!(r#"["REQ","a",{}{}]"#, "[".repeat(70), "]".repeat(70));
        assert!(matches!(parse(&deep), Err(Refusal::Closed { .. })));
        assert!(worker_answer(&deep, "a").is_some());
    }

    #[test]
    fn an_oversized_event_id_is_found_at_either_end_and_only_as_a_key() {
        let id = "0123456789abcdef".repeat(4);
        let other = "f".repeat(64);
        let big = "x".repeat(3 * ID_SCAN_WINDOW);
        let tags = format!(r#"[["t","{}"]]"#, "y".repeat(3 * ID_SCAN_WINDOW));
        let found = |text: &str| oversized_event_id(text).map(str::to_owned);
        // nostr-tools' order: pubkey, id, sig after content and tags.
        let nostr_tools = format!(
            r#"["EVENT",{{"kind":1,"content":"{big}","tags":{tags},"created_at":1,"pubkey":"{other}","id":"{id}","sig":"{}"}}]"#,
            "e".repeat(128)
        );
        assert_eq!(found(&nostr_tools), Some(id.clone()));
        // rust-nostr's: id first; pretty-printed.
        let pretty =
            format!("[\n  \"EVENT\",\n  {{\n    \"id\": \"{id}\",\n    \"content\": \"{big}\"\n  }}\n]");
        assert_eq!(found(&pretty), Some(id.clone()));
        // Upper-case hex is read as written: the OK names what was sent.
        let upper = id.to_uppercase();
        assert_eq!(
            found(&format!(r#"["EVENT",{{"id":"{upper}","content":"{big}"}}]"#)),
            Some(upper)
        );
        for (text, why) in [
            (format!(r#"["EVENT",{{"content":"{big}"}}]"#), "no id"),
            (
                format!(r#"["EVENT",{{"content":"{big}","id":"{id}","tags":{tags}}}]"#),
                "between two large fields",
            ),
            (
                format!(r#"["EVENT",{{"id":"{}","content":"{big}"}}]"#, &id[..63]),
                "63 digits",
            ),
            (
                format!(r#"["EVENT",{{"id":"{id}0","content":"{big}"}}]"#),
                "65 digits",
            ),
            (
                format!(r#"["EVENT",{{"id":"{}g","content":"{big}"}}]"#, &id[..63]),
                "not hex",
            ),
            (
                format!(r#"["EVENT",{{"id":1,"content":"{big}"}}]"#),
                "not a string",
            ),
            (
                format!(r#"["EVENT",{{"content":"\"id\":\"{id}\"{big}"}}]"#),
                "inside a string",
            ),
            (
                format!(r#"["EVENT",{{"xid":"{id}","content":"{big}"}}]"#),
                "another key",
            ),
            (
                format!(r#"["EVENT",{{"content":"{big}","a\"id":"{id}"}}]"#),
                "the end of a key",
            ),
            (
                format!(r#"["AUTH",{{"id":"{id}","content":"{big}"}}]"#),
                "not an EVENT",
            ),
            (format!(r#"{{"id":"{id}","content":"{big}"}}"#), "not an array"),
            (
                format!(r#"["EVENT",{{"id":"{id}"}}"#),
                "small, but the id ends the text: found",
            ),
        ] {
            if why.ends_with("found") {
                assert_eq!(found(&text), Some(id.clone()), "{why}");
            } else {
                assert_eq!(found(&text), None, "{why}");
            }
        }
        // Not UTF-8-boundary sensitive: multi-byte characters at the window edges.
        let wide = "é".repeat(3 * ID_SCAN_WINDOW);
        assert_eq!(
            found(&format!(r#"["EVENT",{{"content":"{wide}","id":"{id}"}}]"#)),
            Some(id.clone())
        );
        assert_eq!(found(&format!(r#"["EVENT",{{"content":"{wide}"}}]"#)), None);
    }

    #[test]
    fn good_messages_are_routed() {
        assert_eq!(
            parse(r#"["CLOSE","a"]"#),
            Ok(ClientMessage::Close(SubId::try_from("a").unwrap()))
        );
        assert!(matches!(
            parse(r#"["AUTH",{"kind":22242}]"#),
            Ok(ClientMessage::Auth(_))
        ));
        assert!(matches!(
            parse(r#"["EVENT",{"kind":1}]"#),
            Ok(ClientMessage::Event(_))
        ));
    }
}
