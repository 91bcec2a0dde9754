//! NIP-01 events: shape, id and signature. The relay checks every event
//! before it fans it out (the worker trusts the parent to have done so,
//! PROTOCOL.md#bcast-event).

use secp256k1::hashes::{Hash, sha256};
use secp256k1::{SECP256K1, XOnlyPublicKey, schnorr};
use serde_json::Value;

/// A well-formed, correctly signed event: the fields the relay looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 32-byte id, as lowercase hex.
    pub id: String,
    /// The author's x-only public key.
    pub pubkey: [u8; 32],
    /// Seconds since the epoch.
    pub created_at: u64,
    /// 0 to 65535.
    pub kind: u16,
    /// Tags, each an array of strings.
    pub tags: Vec<Vec<String>>,
    /// The content.
    pub content: String,
}

impl Event {
    /// The first value of the first tag named `name`.
    ///
    /// ```
    /// # use broadcast_example_relay::event::Event;
    /// let e = Event { id: String::new(), pubkey: [0; 32], created_at: 0, kind: 1,
    ///     tags: vec![vec!["relay".into(), "ws://x".into()]], content: String::new() };
    /// assert_eq!(e.tag_value("relay"), Some("ws://x"));
    /// assert_eq!(e.tag_value("challenge"), None);
    /// ```
    pub fn tag_value(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.first().map(String::as_str) == Some(name))
            .and_then(|t| t.get(1))
            .map(String::as_str)
    }

    /// Whether the event carries the NIP-70 `["-"]` tag.
    pub fn is_protected(&self) -> bool {
        self.tags
            .iter()
            .any(|t| t.first().map(String::as_str) == Some("-"))
    }
}

/// Why an event was refused: the text after `invalid: ` in the OK message.
pub type Invalid = String;

/// The event's id as the client wrote it, if it is a string (so an `OK
/// false` can name it even when the rest is broken).
pub fn claimed_id(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

/// Checks the shape of `value` (NIP-01's seven fields with their types),
/// then that `id` is the hash of the serialised event and `sig` a valid
/// Schnorr signature of it by `pubkey`.
///
/// ```
/// # use broadcast_example_relay::event::verify;
/// let bad = serde_json::json!({"id": "00", "kind": 1});
/// assert!(verify(&bad).unwrap_err().contains("id"));
/// ```
pub fn verify(value: &Value) -> Result<Event, Invalid> {
    let obj = value.as_object().ok_or("the event is not a JSON object")?;
    let field = |name: &str| obj.get(name).ok_or(format!("the event has no {name}"));
    let id_hex = field("id")?.as_str().ok_or("id is not a string")?;
    let id = hex32(id_hex).ok_or("id is not 64 lowercase hex characters")?;
    let pubkey_hex = field("pubkey")?.as_str().ok_or("pubkey is not a string")?;
    let pubkey = hex32(pubkey_hex).ok_or("pubkey is not 64 lowercase hex characters")?;
    let created_at = field("created_at")?
        .as_u64()
        .ok_or("created_at is not a non-negative integer")?;
    let kind = field("kind")?
        .as_u64()
        .and_then(|k| u16::try_from(k).ok())
        .ok_or("kind is not an integer in 0-65535")?;
    let tags_value = field("tags")?;
    let tags = tags_value
        .as_array()
        .ok_or("tags is not an array")?
        .iter()
        .map(|tag| {
            tag.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("tags is not an array of arrays of strings")?;
    let content_value = field("content")?;
    let content = content_value.as_str().ok_or("content is not a string")?;
    let sig_hex = field("sig")?.as_str().ok_or("sig is not a string")?;
    if sig_hex.len() != 128 || !is_lower_hex(sig_hex) {
        return Err("sig is not 128 lowercase hex characters".into());
    }

    // NIP-01: the id is the sha256 of [0,pubkey,created_at,kind,tags,content]
    // serialised without whitespace, with JSON's minimal escapes (what
    // serde_json and JSON.stringify both write).
    let canonical = serde_json::to_string(&serde_json::json!([
        0,
        pubkey_hex,
        created_at,
        kind,
        tags_value,
        content_value
    ]))
    .map_err(|e| format!("cannot serialise the event: {e}"))?;
    let hash = sha256::Hash::hash(canonical.as_bytes()).to_byte_array();
    if hash != id {
        return Err("bad event id: it is not the hash of the event".into());
    }
    let key = XOnlyPublicKey::from_byte_array(&pubkey).map_err(|_| "pubkey is not a valid public key")?;
    let sig_bytes = hex::decode(sig_hex).map_err(|_| "sig is not hex")?;
    let sig = schnorr::Signature::from_slice(&sig_bytes).map_err(|_| "sig is not a signature")?;
    SECP256K1
        .verify_schnorr(&sig, &id, &key)
        .map_err(|_| "bad signature")?;
    Ok(Event {
        id: id_hex.to_owned(),
        pubkey,
        created_at,
        kind,
        tags,
        content: content.to_owned(),
    })
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use secp256k1::Keypair;

    /// Signs an event the way a client does, with the secret key `[n; 32]`.
    pub(crate) fn signed(n: u8, kind: u16, tags: Value, content: &str, created_at: u64) -> Value {
        let keypair = Keypair::from_seckey_slice(SECP256K1, &[n; 32]).unwrap();
        let pubkey = hex::encode(keypair.x_only_public_key().0.serialize());
        let canonical =
            serde_json::to_string(&serde_json::json!([0, pubkey, created_at, kind, tags, content])).unwrap();
        let id = sha256::Hash::hash(canonical.as_bytes()).to_byte_array();
        let sig = SECP256K1.sign_schnorr_no_aux_rand(&id, &keypair);
        serde_json::json!({
            "id": hex::encode(id), "pubkey": pubkey, "created_at": created_at, "kind": kind,
            "tags": tags, "content": content, "sig": hex::encode(sig.to_byte_array()),
        })
    }

    #[test]
    fn a_signed_event_verifies_and_escapes_are_hashed_as_clients_write_them() {
        let v = signed(
            3,
            1,
            serde_json::json!([["t", "x\"y"], ["-"]]),
            "line\nbreak \u{1} é /",
            1_700_000_000,
        );
        let e = verify(&v).unwrap();
        assert_eq!(e.kind, 1);
        assert!(e.is_protected());
        assert_eq!(e.tag_value("t"), Some("x\"y"));
    }

    #[test]
    fn tampering_with_any_signed_field_is_caught() {
        let v = signed(3, 1, serde_json::json!([]), "hello", 1_700_000_000);
        let mut content = v.clone();
        content["content"] = "hellO".into();
        assert_eq!(
            verify(&content).unwrap_err(),
            "bad event id: it is not the hash of the event"
        );
        let mut sig = v.clone();
        let s = sig["sig"].as_str().unwrap().to_owned();
        sig["sig"] = format!("{}{}", &s[..127], if s.ends_with('0') { '1' } else { '0' }).into();
        assert_eq!(verify(&sig).unwrap_err(), "bad signature");
        let other = signed(4, 1, serde_json::json!([]), "hello", 1_700_000_000);
        let mut stolen = v.clone();
        stolen["sig"] = other["sig"].clone();
        assert_eq!(verify(&stolen).unwrap_err(), "bad signature");
    }

    #[test]
    fn malformed_events_name_the_field() {
        let v = signed(3, 1, serde_json::json!([]), "x", 1);
        for (key, bad, says) in [
            ("kind", serde_json::json!(70000), "kind"),
            ("tags", serde_json::json!([[1]]), "tags"),
            ("pubkey", serde_json::json!("AB"), "pubkey"),
            ("created_at", serde_json::json!(-1), "created_at"),
        ] {
            let mut e = v.clone();
            e[key] = bad;
            assert!(verify(&e).unwrap_err().contains(says), "{key}");
        }
        assert!(verify(&serde_json::json!([1])).is_err());
    }
}
