//! Small serde building blocks for validating JSON in one streaming pass:
//! strings that borrow from the input when they hold no escape, a "what
//! type is this value" probe that accepts any JSON value, and a skip for
//! the values the worker does not read.
//!
//! A value the worker does not read (an ignored filter key, an extra member
//! of an event) is skipped with serde_json's own scanner, through a
//! borrowed `RawValue`: the scanner checks the grammar, the escapes and raw
//! control characters, the borrow checks UTF-8, and [`Skip`] adds the one
//! rule the scanner leaves out, unpaired surrogate escapes
//! (PROTOCOL.md#json-text). The scanner never converts a number, so `1e400`
//! or an integer of 5000 digits there is no failure, as PROTOCOL.md#json-text
//! requires; serde_json's `deserialize_any` would refuse them as out of
//! range. The scanner is iterative, and the nesting of the whole text is
//! limited before parsing ([`nests_deeper_than`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string, decoded: borrowed from the input unless it contains an
/// escape sequence (serde's own `Cow<str>` always allocates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

/// Any JSON value, reduced to what the validators look at: strings and
/// numbers keep their value, arrays and objects are skipped whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'de> {
    /// A string.
    Str(Cow<'de, str>),
    /// A non-negative integer that fits in a `u64`.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// Any other number (fraction, exponent, or out of the 64-bit range).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An array (its elements were skipped).
    Array,
    /// An object (its members were skipped).
    Object,
}

impl Scalar<'_> {
    /// The JSON type's name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Uint(_) | Scalar::Int(_) => "an integer",
            Scalar::Float(_) => "a non-integer number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "null",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }

    /// A string's value (quoted), else the type's name, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Scalar::Str(v) => format!("the string {v:?}"),
            other => other.type_name().to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 {
            Scalar::Uint(v as u64)
        } else {
            Scalar::Int(v)
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Uint(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_key::<JsonStr>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Scalar::Object)
    }
}

/// Any JSON value, checked and dropped without being read: its text must
/// be JSON (PROTOCOL.md#json-text), but its numbers are never converted, so
/// a number of any magnitude is accepted (see the module documentation).
/// Only for serde_json deserializers that borrow from their input
/// (`from_slice`, `from_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        if has_unpaired_surrogate_escape(raw.get()) {
            return Err(de::Error::custom(
                "a \\u escape names a surrogate that is not part of a pair",
            ));
        }
        Ok(Skip)
    }
}

/// Whether the JSON text `json`, which serde_json has already scanned (so
/// every backslash is inside a string and every `\u` has four hex digits),
/// has a `\u` escape of a surrogate that is not a high surrogate directly
/// followed by a `\u` escape of a low one (PROTOCOL.md#json-text).
pub fn has_unpaired_surrogate_escape(json: &str) -> bool {
    if !json.contains("\\u") {
        return false;
    }
    let b = json.as_bytes();
    let unit_at = |i: usize| -> Option<u16> {
        let hex = b.get(i..i + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        match unit_at(i + 2) {
            Some(0xd800..=0xdbff) => {
                let low =
                    b.get(i + 6..i + 8) == Some(b"\\u") && matches!(unit_at(i + 8), Some(0xdc00..=0xdfff));
                if !low {
                    return true;
                }
                i += 12;
            }
            Some(0xdc00..=0xdfff) => return true,
            _ => i += 6,
        }
    }
    false
}

/// The nesting depth every worker must accept and above which the
/// reference worker refuses a REQ or an EVENT message
/// (PROTOCOL.md#implementation-limits).
pub const MAX_DEPTH: usize = 64;

/// Whether `data` nests arrays and objects more than `max` deep, counted as
/// PROTOCOL.md#implementation-limits does (`[]` is depth 1). One pass over
/// the bytes, no allocation; brackets inside strings do not count. It stops
/// at the first byte past the limit and does not otherwise check that
/// `data` is JSON: the parser does that.
pub fn nests_deeper_than(data: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in data {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(!nests_deeper_than(b"", 0));
        assert!(!nests_deeper_than(b"[]", 1));
        assert!(nests_deeper_than(b"[]", 0));
        assert!(!nests_deeper_than(br##"["REQ","s",{"#t":["x"]}]"##, 3));
        assert!(nests_deeper_than(br##"["REQ","s",{"#t":["x"]}]"##, 2));
        // Brackets and escaped quotes inside strings are text.
        assert!(!nests_deeper_than(br#"["[[[[{{{{","\"[[[["]"#, 1));
        // An escaped backslash ends before the quote: the string closes.
        assert!(!nests_deeper_than(br#"["\\",[]]"#, 2));
        assert!(nests_deeper_than(br#"["\\",[[]]]"#, 2));
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(deep(MAX_DEPTH).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(deep(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH));
        // A long flat list and a huge unclosed prefix cost nothing more.
        assert!(nests_deeper_than("[".repeat(1 << 20).as_bytes(), MAX_DEPTH));
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let plain: JsonStr = serde_json::from_slice(br#""abc""#).unwrap();
        assert!(matches!(plain.0, Cow::Borrowed("abc")));
        let escaped: JsonStr = serde_json::from_slice(br#""a\"c""#).unwrap();
        assert_eq!(escaped.0, "a\"c");
        assert!(matches!(escaped.0, Cow::Owned(_)));
        assert!(serde_json::from_slice::<JsonStr>(b"1").is_err());
    }

    #[test]
    fn scalar_names_every_json_type() {
        let cases: [(&[u8], Scalar); 9] = [
            (b"\"x\"", Scalar::Str("x".into())),
            (b"7", Scalar::Uint(7)),
            (b"-7", Scalar::Int(-7)),
            (b"1.5", Scalar::Float(1.5)),
            (b"1e3", Scalar::Float(1000.0)),
            (b"true", Scalar::Bool(true)),
            (b"null", Scalar::Null),
            (b"[1,[2],{}]", Scalar::Array),
            (b"{\"a\":[1]}", Scalar::Object),
        ];
        for (json, want) in cases {
            assert_eq!(serde_json::from_slice::<Scalar>(json).unwrap(), want, "{json:?}");
        }
        // Beyond u64: serde_json reads it as a float, so it is no integer here.
        assert!(matches!(
            serde_json::from_slice::<Scalar>(b"18446744073709551616").unwrap(),
            Scalar::Float(_)
        ));
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn skip_reads_no_number() {
        // PROTOCOL.md#json-text: a number that is not read never fails,
        // whatever its magnitude, while Scalar (values that are read) still
        // refuses what serde_json cannot convert.
        let digits = "9".repeat(5000);
        for json in ["1e400", "-1e-400", "[1E+999,{\"a\":-0.5e-999}]", digits.as_str()] {
            assert!(serde_json::from_str::<Skip>(json).is_ok(), "{json}");
            assert!(serde_json::from_slice::<Skip>(json.as_bytes()).is_ok(), "{json}");
        }
        assert!(serde_json::from_str::<Scalar>("1e400").is_err());
        // Skipping still checks the JSON text.
        for bad in [
            "NaN",
            "Infinity",
            "[1,]",
            "01",
            "1.",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "{\"a\" 1}",
        ] {
            assert!(serde_json::from_str::<Skip>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_slice::<Skip>(b"\"a\xffb\"").is_err());
        // Nesting inside a skipped value is not limited here (the depth of
        // the whole text is checked before parsing).
        assert!(serde_json::from_str::<Skip>(&nested(1000)).is_ok());
    }

    #[test]
    fn skip_refuses_unpaired_surrogate_escapes() {
        for (json, unpaired) in [
            (r#""\ud83e\udd80""#, false),
            (r#"["\ud800"]"#, true),
            (r#"{"a":"\udc00x"}"#, true),
            (r#""\ud83e\u0041""#, true),
            (r#""\ud83e""#, true),
            (r#""\\ud800""#, false),
            (r#""\\\ud800""#, true),
            (r#""\u00e9\u0041""#, false),
        ] {
            assert_eq!(has_unpaired_surrogate_escape(json), unpaired, "{json}");
            assert_eq!(serde_json::from_str::<Skip>(json).is_err(), unpaired, "{json}");
        }
    }
}
