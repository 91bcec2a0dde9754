//! Small serde building blocks for validating JSON in one streaming pass:
//! strings that borrow from the input when they hold no escape, a "what
//! type is this value" probe that accepts any JSON value, and a skip that
//! keeps serde_json's nesting limit.
//!
//! serde_json applies its recursion limit (128 levels) only where it
//! recurses into a visitor: `IgnoredAny` and `RawValue` skip values with an
//! iterative scanner that has no limit. [`Skip`] recurses through the
//! visitor instead, so every value the worker reads or skips is held to the
//! same limit and deeper nesting anywhere in a REQ or an event is refused.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// Any JSON value, checked and dropped, within serde_json's nesting limit
/// (unlike `serde::de::IgnoredAny`; see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_none<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
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
    fn skip_keeps_the_nesting_limit_that_ignored_any_does_not() {
        let deep = nested(100_000);
        // The fact this module works around: serde's IgnoredAny has no limit.
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&deep).is_ok());
        let err = serde_json::from_str::<Skip>(&deep).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let err = serde_json::from_str::<Scalar>(&deep).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }

    #[test]
    fn the_limit_is_127_levels_of_arrays_or_objects() {
        assert!(serde_json::from_str::<Skip>(&nested(127)).is_ok());
        assert!(serde_json::from_str::<Skip>(&nested(128)).is_err());
        let objects = format!("{}1{}", "{\"a\":".repeat(127), "}".repeat(127));
        assert!(serde_json::from_str::<Skip>(&objects).is_ok());
        let objects = format!("{}1{}", "{\"a\":".repeat(128), "}".repeat(128));
        assert!(serde_json::from_str::<Skip>(&objects).is_err());
    }
}
