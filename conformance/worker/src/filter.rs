//! One NIP-01 filter: parsed and checked with the rules of PROTOCOL.md#req-parsing,
//! and matched against an event in full.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::event::Event;
use super::hex::decode_hex32;
use super::json::{JsonStr, Scalar, Skip};

/// A parsed filter. Lists are sorted and deduplicated so a value is found by
/// binary search, which keeps matching fast for filters with tens of
/// thousands of values. `limit` is checked but not kept: it does not apply
/// to live delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    ids: Option<Box<[[u8; 32]]>>,
    authors: Option<Box<[[u8; 32]]>>,
    kinds: Option<Box<[u16]>>,
    since: Option<u64>,
    until: Option<u64>,
    tags: Box<[TagFilter]>,
}

/// A `#x` condition: some tag named `x` has its `t[1]` in `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    letter: u8,
    values: Box<[Box<str>]>,
}

impl TagFilter {
    /// The tag letter, as an ASCII byte.
    pub fn letter(&self) -> u8 {
        self.letter
    }

    /// The accepted values, sorted and without duplicates.
    pub fn values(&self) -> &[Box<str>] {
        &self.values
    }

    fn matches(&self, event: &Event) -> bool {
        event
            .letter_tags()
            .iter()
            .any(|t| t.letter == self.letter && self.values.binary_search_by(|v| (**v).cmp(&t.value)).is_ok())
    }
}

impl Filter {
    /// Whether every present field of the filter holds for `event` (NIP-01:
    /// AND across fields, OR inside a list; an empty list matches nothing;
    /// `since` and `until` are inclusive; only `t[1]` of a tag counts).
    pub fn matches(&self, event: &Event) -> bool {
        if let Some(ids) = &self.ids
            && ids.binary_search(event.id()).is_err()
        {
            return false;
        }
        if let Some(authors) = &self.authors
            && authors.binary_search(event.pubkey()).is_err()
        {
            return false;
        }
        if let Some(kinds) = &self.kinds
            && kinds.binary_search(&event.kind()).is_err()
        {
            return false;
        }
        if self.since.is_some_and(|since| event.created_at() < since)
            || self.until.is_some_and(|until| event.created_at() > until)
        {
            return false;
        }
        self.tags.iter().all(|t| t.matches(event))
    }

    /// False when no event can match: a present list is empty, or `since`
    /// is after `until`. Such a filter is kept but never indexed.
    pub fn can_match(&self) -> bool {
        let empty = self.ids.as_ref().is_some_and(|l| l.is_empty())
            || self.authors.as_ref().is_some_and(|l| l.is_empty())
            || self.kinds.as_ref().is_some_and(|l| l.is_empty())
            || self.tags.iter().any(|t| t.values.is_empty());
        let inverted = matches!((self.since, self.until), (Some(s), Some(u)) if s > u);
        !empty && !inverted
    }

    /// `ids`, sorted, if present.
    pub fn ids(&self) -> Option<&[[u8; 32]]> {
        self.ids.as_deref()
    }

    /// `authors`, sorted, if present.
    pub fn authors(&self) -> Option<&[[u8; 32]]> {
        self.authors.as_deref()
    }

    /// `kinds`, sorted, if present.
    pub fn kinds(&self) -> Option<&[u16]> {
        self.kinds.as_deref()
    }

    /// `since`, if present.
    pub fn since(&self) -> Option<u64> {
        self.since
    }

    /// `until`, if present.
    pub fn until(&self) -> Option<u64> {
        self.until
    }

    /// The `#x` conditions, in the order their keys appeared.
    pub fn tags(&self) -> &[TagFilter] {
        &self.tags
    }
}

/// Parses one filter object. A problem that makes the REQ `invalid` is a
/// serde error (parsing stops there); a `#` key that is not one ASCII letter
/// makes it `unsupported` and is recorded in `unsupported` (the first one
/// only) while parsing goes on, so that an `invalid` problem anywhere in the
/// REQ, malformed JSON included, wins whatever the key order.
pub(crate) struct FilterSeed<'a> {
    pub unsupported: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for FilterSeed<'_> {
    type Value = Filter;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Filter, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FilterSeed<'_> {
    type Value = Filter;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("each filter to be an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Filter, A::Error> {
        let mut filter = Filter::default();
        let mut tags: Vec<TagFilter> = Vec::new();
        let mut limit: Option<u64> = None;
        while let Some(JsonStr(key)) = map.next_key::<JsonStr>()? {
            match &*key {
                "ids" => once(&mut filter.ids, &key, || {
                    map.next_value_seed(HEX_LIST.named("ids"))
                })?,
                "authors" => once(&mut filter.authors, &key, || {
                    map.next_value_seed(HEX_LIST.named("authors"))
                })?,
                "kinds" => once(&mut filter.kinds, &key, || map.next_value_seed(KIND_LIST))?,
                "since" => once(&mut filter.since, &key, || uint(map.next_value()?, "since"))?,
                "until" => once(&mut filter.until, &key, || uint(map.next_value()?, "until"))?,
                "limit" => once(&mut limit, &key, || uint(map.next_value()?, "limit"))?,
                tag if tag.starts_with('#') => match tag.as_bytes() {
                    &[b'#', letter] if letter.is_ascii_alphabetic() => {
                        if tags.iter().any(|t| t.letter == letter) {
                            return Err(duplicate(&key));
                        }
                        let seed = match letter {
                            b'e' | b'p' => HEX_TAG_VALUES,
                            _ => TAG_VALUES,
                        };
                        let values = map.next_value_seed(seed.named(&key))?;
                        tags.push(TagFilter { letter, values });
                    }
                    _ => {
                        self.unsupported.get_or_insert_with(|| {
                            format!("filter key {tag:?}: only single-letter tag filters (#a-z, #A-Z) are supported")
                        });
                        map.next_value::<Skip>()?;
                    }
                },
                // `search` and any other key: ignored (PROTOCOL.md#req-parsing).
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        filter.tags = tags.into_boxed_slice();
        Ok(filter)
    }
}

fn once<T, E: de::Error>(
    slot: &mut Option<T>,
    key: &str,
    parse: impl FnOnce() -> Result<T, E>,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    *slot = Some(parse()?);
    Ok(())
}

fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!("duplicate filter key {key:?}"))
}

fn uint<E: de::Error>(value: Scalar, name: &str) -> Result<u64, E> {
    match value {
        Scalar::Uint(v) => Ok(v),
        other => Err(E::custom(format_args!(
            "{name:?} must be a non-negative integer, got {}",
            other.type_name()
        ))),
    }
}

/// A list field: an array whose every element `convert` accepts. The result
/// is sorted and deduplicated.
struct ListSeed<'n, T> {
    name: &'n str,
    expect: &'static str,
    convert: for<'x> fn(Scalar<'x>) -> Option<T>,
}

impl<T> Clone for ListSeed<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ListSeed<'_, T> {}

impl<T> ListSeed<'static, T> {
    fn named(self, name: &str) -> ListSeed<'_, T> {
        ListSeed {
            name,
            expect: self.expect,
            convert: self.convert,
        }
    }
}

const HEX_LIST: ListSeed<'static, [u8; 32]> = ListSeed {
    name: "",
    expect: "64-character lowercase hex strings",
    convert: |s| match s {
        Scalar::Str(v) => decode_hex32(&v),
        _ => None,
    },
};

const KIND_LIST: ListSeed<'static, u16> = ListSeed {
    name: "kinds",
    expect: "integers from 0 to 65535",
    convert: |s| match s {
        Scalar::Uint(v) => u16::try_from(v).ok(),
        _ => None,
    },
};

const TAG_VALUES: ListSeed<'static, Box<str>> = ListSeed {
    name: "",
    expect: "strings",
    convert: |s| match s {
        Scalar::Str(v) => Some(Box::from(&*v)),
        _ => None,
    },
};

/// `#e` and `#p` name events and pubkeys: 64 lowercase hex, kept as text
/// because event tags are compared as text.
const HEX_TAG_VALUES: ListSeed<'static, Box<str>> = ListSeed {
    name: "",
    expect: "64-character lowercase hex strings",
    convert: |s| match s {
        Scalar::Str(v) if decode_hex32(&v).is_some() => Some(Box::from(&*v)),
        _ => None,
    },
};

impl<'de, T: Ord> DeserializeSeed<'de> for ListSeed<'_, T> {
    type Value = Box<[T]>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Box<[T]>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Ord> Visitor<'de> for ListSeed<'_, T> {
    type Value = Box<[T]>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?} to be an array of {}", self.name, self.expect)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Box<[T]>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Scalar>()? {
            let kind = item.type_name();
            let Some(value) = (self.convert)(item) else {
                return Err(de::Error::custom(format_args!(
                    "{:?}[{}] is {kind}: expected {}",
                    self.name,
                    out.len(),
                    self.expect
                )));
            };
            out.push(value);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out.into_boxed_slice())
    }
}
