//! What a client may send (NIP-01 EVENT, REQ, CLOSE; NIP-42 AUTH), parsed
//! just enough to route it. Filters are not checked here: the worker
//! validates them and answers a bad one with CLOSED (PROTOCOL.md#add-failure).

use broadcast_wire::{SubId, SubIdProblem};
use serde_json::Value;

/// One client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `["EVENT", <event>]`: the event object, not yet verified.
    Event(Value),
    /// `["REQ", <sub_id>, <filter>...]`: the raw message goes to the worker.
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
    /// Answer with `["CLOSED", sub_id, reason]` (a REQ whose sub_id is
    /// readable but not acceptable).
    Closed { sub_id: String, reason: String },
}

/// Parses one text message.
///
/// ```
/// use broadcast_example_relay::client_message::{parse, ClientMessage, Refusal};
///
/// assert!(matches!(parse(r#"["REQ","s",{"kinds":[1]}]"#), Ok(ClientMessage::Req(_))));
/// assert!(matches!(parse("nope"), Err(Refusal::Notice(_))));
/// assert!(matches!(parse(r#"["REQ","",{}]"#), Err(Refusal::Closed { .. })));
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
            let sub = SubId::try_from(sub_id).map_err(|e| Refusal::Closed {
                sub_id: sub_id.to_owned(),
                reason: format!("invalid: subscription id: {}", sub_id_problem(e)),
            })?;
            if items.len() < 3 {
                return Err(Refusal::Closed {
                    sub_id: sub_id.to_owned(),
                    reason: "invalid: a REQ needs at least one filter".into(),
                });
            }
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
            Err(Refusal::Closed { sub_id, reason }) => {
                assert_eq!(sub_id, long);
                assert!(reason.starts_with("invalid:"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(r#"["REQ","a"]"#), Err(Refusal::Closed { .. })));
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
