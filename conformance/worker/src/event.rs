//! The EVENT message of a Bcast command (PROTOCOL.md#bcast-event): validated field by
//! field, kept as the exact bytes of the event object, never re-serialised.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::hex::{decode_hex32, is_lower_hex};
use super::json::{JsonStr, MAX_DEPTH, Scalar, Skip, nests_deeper_than};

/// A tag whose name (`t[0]`) is one ASCII letter and that has a value
/// (`t[1]`): the only tags a NIP-01 `#x` filter can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterTag<'a> {
    /// The letter `t[0]`, as an ASCII byte.
    pub letter: u8,
    /// The value `t[1]`, decoded from its JSON string.
    pub value: Cow<'a, str>,
}

/// A validated event borrowing from the Bcast data it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    raw: &'a [u8],
    id: [u8; 32],
    pubkey: [u8; 32],
    created_at: u64,
    kind: u16,
    letter_tags: Vec<LetterTag<'a>>,
    protected: bool,
}

/// Why a Bcast's data is not a valid `["EVENT", <event>]` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError(String);

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid EVENT message: {}", self.0)
    }
}

impl std::error::Error for EventError {}

impl<'a> Event<'a> {
    /// Parses `data` as `["EVENT", <event>]` with the field rules of PROTOCOL.md#bcast-event:
    /// `id` and `pubkey` 64 lowercase hex, `created_at` a non-negative
    /// integer, `kind` an integer 0–65535, `tags` an array of arrays of
    /// strings, `content` a string, `sig` 128 lowercase hex. Other fields
    /// are ignored; a field given twice is refused (serde's rule for
    /// structs). Neither the id nor the signature is verified.
    ///
    /// ```
    /// use broadcast_worker::Event;
    ///
    /// let data = format!(
    ///     r#"["EVENT", {{"id":"{}","pubkey":"{}","created_at":1,"kind":1,"tags":[["t","x"]],"content":"","sig":"{}"}} ]"#,
    ///     "a".repeat(64), "b".repeat(64), "c".repeat(128)
    /// );
    /// let event = Event::parse(data.as_bytes()).unwrap();
    /// assert_eq!(event.kind(), 1);
    /// assert!(event.raw().starts_with(b"{\"id\"") && event.raw().ends_with(b"}"));
    /// ```
    pub fn parse(data: &'a [u8]) -> Result<Event<'a>, EventError> {
        // PROTOCOL.md#implementation-limits: depth 64 accepted, deeper refused.
        if nests_deeper_than(data, MAX_DEPTH) {
            return Err(EventError(format!(
                "the message nests arrays and objects more than {MAX_DEPTH} levels deep"
            )));
        }
        let raw = serde_json::from_slice::<EnvelopeSeq<'a>>(data)
            .map_err(|e| EventError(e.to_string()))?
            .0;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let fields = (&mut de)
            .deserialize_map(FieldsVisitor)
            .map_err(|e| EventError(format!("event object: {e}")))?;
        Ok(Event {
            raw: raw.get().as_bytes(),
            id: fields.id,
            pubkey: fields.pubkey,
            created_at: fields.created_at,
            kind: fields.kind,
            letter_tags: fields.tags.letter_tags,
            protected: fields.tags.protected,
        })
    }

    /// The event object's bytes exactly as they were received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The event id (32 bytes).
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }

    /// The author's pubkey (32 bytes).
    pub fn pubkey(&self) -> &[u8; 32] {
        &self.pubkey
    }

    /// `created_at`, in seconds.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// The kind, 0–65535.
    pub fn kind(&self) -> u16 {
        self.kind
    }

    /// Every tag with a one-letter name and a value, in event order.
    pub fn letter_tags(&self) -> &[LetterTag<'a>] {
        &self.letter_tags
    }

    /// The values of the event's `p` tags (`t[1]` of tags with `t[0] == "p"`).
    pub fn p_values(&self) -> impl Iterator<Item = &str> {
        self.letter_tags
            .iter()
            .filter(|t| t.letter == b'p')
            .map(|t| &*t.value)
    }

    /// Whether a tag has `"-"` as its first element (NIP-70 protected).
    pub fn is_protected(&self) -> bool {
        self.protected
    }
}

/// `["EVENT", <event>]`, keeping `<event>` as raw bytes.
struct EnvelopeSeq<'a>(&'a RawValue);

impl<'de: 'a, 'a> de::Deserialize<'de> for EnvelopeSeq<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = EnvelopeSeq<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an array ["EVENT", <event object>]"#)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                match seq.next_element::<Scalar>()? {
                    Some(Scalar::Str(s)) if s == "EVENT" => {}
                    Some(other) => {
                        return Err(de::Error::custom(format_args!(
                            "the first element must be \"EVENT\", got {}",
                            other.describe()
                        )));
                    }
                    None => return Err(de::Error::custom("the array is empty")),
                }
                let Some(event) = seq.next_element::<&'de RawValue>()? else {
                    return Err(de::Error::custom("no event after \"EVENT\""));
                };
                if seq.next_element::<Skip>()?.is_some() {
                    return Err(de::Error::custom("more than two elements"));
                }
                Ok(EnvelopeSeq(event))
            }
        }
        d.deserialize_seq(EnvelopeVisitor)
    }
}

struct Fields<'a> {
    id: [u8; 32],
    pubkey: [u8; 32],
    created_at: u64,
    kind: u16,
    tags: Tags<'a>,
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        let mut pubkey = None;
        let mut created_at = None;
        let mut kind = None;
        let mut tags = None;
        let mut content = None;
        let mut sig = None;
        while let Some(key) = map.next_key::<JsonStr>()? {
            match &*key.0 {
                "id" => set(&mut id, "id", hex32(map.next_value()?, "id")?)?,
                "pubkey" => set(&mut pubkey, "pubkey", hex32(map.next_value()?, "pubkey")?)?,
                "created_at" => set(
                    &mut created_at,
                    "created_at",
                    uint(map.next_value()?, "created_at")?,
                )?,
                "kind" => {
                    let k = uint(map.next_value()?, "kind")?;
                    let k = u16::try_from(k)
                        .map_err(|_| de::Error::custom(format_args!("kind {k} is above 65535")))?;
                    set(&mut kind, "kind", k)?
                }
                "tags" => set(&mut tags, "tags", map.next_value_seed(TagsSeed)?)?,
                "content" => set(&mut content, "content", map.next_value_seed(SkipStr("content"))?)?,
                "sig" => {
                    let s: Scalar = map.next_value()?;
                    match s {
                        Scalar::Str(v) if is_lower_hex(&v, 128) => set(&mut sig, "sig", ())?,
                        _ => return Err(de::Error::custom("sig must be 128 lowercase hex digits")),
                    }
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let (Some(id), Some(pubkey), Some(created_at), Some(kind), Some(tags), Some(()), Some(())) =
            (id, pubkey, created_at, kind, tags, content, sig)
        else {
            return Err(de::Error::custom(
                "missing field: an event needs id, pubkey, created_at, kind, tags, content and sig",
            ));
        };
        Ok(Fields {
            id,
            pubkey,
            created_at,
            kind,
            tags,
        })
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::custom(format_args!("duplicate field `{name}`")));
    }
    Ok(())
}

fn hex32<E: de::Error>(s: Scalar, name: &str) -> Result<[u8; 32], E> {
    match s {
        Scalar::Str(v) => decode_hex32(&v),
        _ => None,
    }
    .ok_or_else(|| E::custom(format_args!("{name} must be 64 lowercase hex digits")))
}

fn uint<E: de::Error>(s: Scalar, name: &str) -> Result<u64, E> {
    match s {
        Scalar::Uint(v) => Ok(v),
        other => Err(E::custom(format_args!(
            "{name} must be a non-negative integer, got {}",
            other.type_name()
        ))),
    }
}

/// Accepts a JSON string and keeps nothing of it (no allocation).
struct SkipStr(&'static str);

impl<'de> DeserializeSeed<'de> for SkipStr {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for SkipStr {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} to be a string", self.0)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

struct Tags<'a> {
    letter_tags: Vec<LetterTag<'a>>,
    protected: bool,
}

/// `tags`: an array of arrays of strings; keeps one-letter tags with a value
/// and notes a `"-"` tag.
struct TagsSeed;

impl<'de> DeserializeSeed<'de> for TagsSeed {
    type Value = Tags<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed {
    type Value = Tags<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tags to be an array of arrays of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tags = Tags {
            letter_tags: Vec::new(),
            protected: false,
        };
        while let Some(tag) = seq.next_element_seed(TagSeed)? {
            let Some(name) = tag.name else { continue };
            if name == "-" {
                tags.protected = true;
            }
            if let (&[letter], Some(value)) = (name.as_bytes(), tag.value)
                && letter.is_ascii_alphabetic()
            {
                tags.letter_tags.push(LetterTag { letter, value });
            }
        }
        Ok(tags)
    }
}

struct Tag<'a> {
    name: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
}

/// One tag: an array of strings; keeps `t[0]` and `t[1]`, checks the rest.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Tag<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TagSeed {
    type Value = Tag<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("each tag to be an array of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name = seq.next_element::<JsonStr>()?.map(|s| s.0);
        let value = match name {
            Some(_) => seq.next_element::<JsonStr>()?.map(|s| s.0),
            None => None,
        };
        if value.is_some() {
            while seq.next_element_seed(SkipStr("each tag element"))?.is_some() {}
        }
        Ok(Tag { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    fn event_json(tags: &str) -> String {
        format!(
            r#"{{"id":"{}","pubkey":"{}","created_at":1700000000,"kind":1,"tags":{tags},"content":"hi","sig":"{}"}}"#,
            hex('1', 64),
            hex('2', 64),
            hex('3', 128)
        )
    }

    fn parse(s: &str) -> Result<Event<'_>, EventError> {
        Event::parse(s.as_bytes())
    }

    #[test]
    fn keeps_the_event_bytes_verbatim_without_surrounding_whitespace() {
        let ev = event_json("[]").replace(",\"kind\"", " ,\n \"kind\"");
        let msg = format!("  [ \"EVENT\" ,\t{ev}\n ]  ");
        let parsed = parse(&msg).unwrap();
        assert_eq!(parsed.raw(), ev.as_bytes());
        assert_eq!(parsed.id(), &[0x11; 32]);
        assert_eq!(parsed.pubkey(), &[0x22; 32]);
        assert_eq!(parsed.created_at(), 1_700_000_000);
        assert_eq!(parsed.kind(), 1);
    }

    #[test]
    fn keeps_letter_tags_with_a_value_and_decodes_escapes() {
        let msg = format!(
            r#"["EVENT",{}]"#,
            event_json(
                r#"[["t","a\"b"],["t"],["e","x","relay","extra"],["-"],["tt","no"],["1","digit"],[],["P","up"]]"#
            )
        );
        let ev = parse(&msg).unwrap();
        let tags: Vec<(char, &str)> = ev
            .letter_tags()
            .iter()
            .map(|t| (t.letter as char, &*t.value))
            .collect();
        assert_eq!(tags, vec![('t', "a\"b"), ('e', "x"), ('P', "up")]);
        assert!(ev.is_protected());
    }

    #[test]
    fn protected_is_any_tag_named_dash() {
        let with_value = format!(r#"["EVENT",{}]"#, event_json(r#"[["-","x"]]"#));
        assert!(parse(&with_value).unwrap().is_protected());
        let without = format!(r#"["EVENT",{}]"#, event_json(r#"[["x","-"]]"#));
        assert!(!parse(&without).unwrap().is_protected());
    }

    #[test]
    fn p_values_are_second_elements_of_p_tags() {
        let msg = format!(
            r#"["EVENT",{}]"#,
            event_json(r#"[["p","aa"],["P","bb"],["p"],["p","cc","x"]]"#)
        );
        let ev = parse(&msg).unwrap();
        assert_eq!(ev.p_values().collect::<Vec<_>>(), vec!["aa", "cc"]);
    }

    #[test]
    fn extra_fields_are_ignored() {
        let ev = event_json("[]").replacen('{', r#"{"extra":{"deep":[1,2]},"#, 1);
        assert!(parse(&format!(r#"["EVENT",{ev}]"#)).is_ok());
    }

    #[test]
    fn refuses_each_bad_field() {
        let good = event_json("[]");
        let id = hex('1', 64);
        let bad = [
            good.replace(&id, &hex('A', 64)),
            good.replace(&id, &hex('1', 63)),
            good.replace(&hex('2', 64), &hex('2', 66)),
            good.replace(&hex('3', 128), &hex('3', 64)),
            good.replace(&hex('3', 128), &hex('F', 128)),
            good.replace("1700000000", "-1"),
            good.replace("1700000000", "1.5"),
            good.replace("1700000000", "\"1\""),
            good.replace("\"kind\":1", "\"kind\":65536"),
            good.replace("\"kind\":1", "\"kind\":-1"),
            good.replace("\"content\":\"hi\"", "\"content\":1"),
            good.replace("\"content\":\"hi\"", "\"content\":null"),
            event_json("{}"),
            event_json("[\"t\"]"),
            event_json("[[\"t\",1]]"),
            event_json("[[\"t\",\"x\",null]]"),
            event_json("[[1]]"),
            good.replace(",\"sig\"", ",\"x\":0,\"nope\""),
            good.replacen('{', &format!(r#"{{"id":"{id}","#), 1),
        ];
        for ev in bad {
            let msg = format!(r#"["EVENT",{ev}]"#);
            assert!(parse(&msg).is_err(), "accepted {msg}");
        }
    }

    #[test]
    fn refuses_a_bad_envelope() {
        let ev = event_json("[]");
        for msg in [
            String::new(),
            "[]".to_owned(),
            r#"["EVENT"]"#.to_owned(),
            format!(r#"["REQ",{ev}]"#),
            format!(r#"["event",{ev}]"#),
            format!(r#"[1,{ev}]"#),
            format!(r#"["EVENT",{ev},1]"#),
            format!(r#"["EVENT",{ev}"#),
            format!(r#"["EVENT",{ev}] x"#),
            format!(r#"{{"EVENT":{ev}}}"#),
            r#"["EVENT",[]]"#.to_owned(),
            r#"["EVENT","{}"]"#.to_owned(),
        ] {
            assert!(parse(&msg).is_err(), "accepted {msg}");
        }
    }

    #[test]
    fn escaped_event_keyword_is_the_same_string() {
        let msg = format!(r#"["\u0045VENT",{}]"#, event_json("[]"));
        assert!(parse(&msg).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let ev = event_json("[]").replacen('{', &format!(r#"{{"x":{deep},"#), 1);
        let err = parse(&format!(r#"["EVENT",{ev}]"#)).unwrap_err();
        assert!(err.to_string().contains("more than 64 levels"), "{err}");
    }

    #[test]
    fn depth_64_is_accepted_and_65_refused() {
        // The EVENT array and the event object are two levels.
        let at = |arrays: usize| {
            let x = format!("{}{}", "[".repeat(arrays), "]".repeat(arrays));
            let ev = event_json("[]").replacen('{', &format!(r#"{{"x":{x},"#), 1);
            parse(&format!(r#"["EVENT",{ev}]"#)).map(|_| ())
        };
        assert_eq!(at(62), Ok(()));
        assert!(at(63).is_err());
    }
}
