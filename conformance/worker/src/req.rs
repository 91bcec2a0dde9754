//! The REQ message of an Add command (PROTOCOL.md#req-parsing) and the reasons a
//! worker refuses one, each with its `CLOSED` prefix.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::filter::{Filter, FilterSeed};
use super::json::{MAX_DEPTH, Scalar, nests_deeper_than};

/// Why a REQ was refused: the `CLOSED` message's prefix and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqError {
    /// Prefix `invalid`: not JSON, wrong shape, a wrong type or value.
    Invalid(String),
    /// Prefix `unsupported`: a `#` key whose name is not one ASCII letter.
    Unsupported(String),
}

impl ReqError {
    /// The machine-readable prefix NIP-01 puts before the colon.
    pub fn prefix(&self) -> &'static str {
        match self {
            ReqError::Invalid(_) => "invalid",
            ReqError::Unsupported(_) => "unsupported",
        }
    }

    /// The human-readable reason after the prefix.
    pub fn reason(&self) -> &str {
        match self {
            ReqError::Invalid(r) | ReqError::Unsupported(r) => r,
        }
    }
}

impl fmt::Display for ReqError {
    /// `"<prefix>: <reason>"`, the text of the `CLOSED` message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.prefix(), self.reason())
    }
}

impl std::error::Error for ReqError {}

/// Parses `data` as `["REQ", <sub_id>, <filter>, ...]` for the subscription
/// `sub_id`, returning its filters in order.
///
/// When a REQ has several problems, any `invalid` one (malformed JSON
/// included, wherever it is) wins over an `unsupported` key; among problems
/// of one kind the first in the text is reported. Nesting deeper than
/// [`MAX_DEPTH`](super::json::MAX_DEPTH) levels is refused as `invalid`
/// (PROTOCOL.md#implementation-limits).
///
/// ```
/// use broadcast_worker::{parse_req, ReqError};
///
/// let filters = parse_req(br##"["REQ","s",{"kinds":[1]},{"#t":["x"]}]"##, "s").unwrap();
/// assert_eq!(filters.len(), 2);
/// let err = parse_req(br##"["REQ","s",{"#foo":["x"]}]"##, "s").unwrap_err();
/// assert_eq!(err.prefix(), "unsupported");
/// assert_eq!(parse_req(br#"["REQ","other",{}]"#, "s").unwrap_err().prefix(), "invalid");
/// ```
pub fn parse_req(data: &[u8], sub_id: &str) -> Result<Vec<Filter>, ReqError> {
    if nests_deeper_than(data, MAX_DEPTH) {
        return Err(ReqError::Invalid(format!(
            "the REQ nests arrays and objects more than {MAX_DEPTH} levels deep"
        )));
    }
    let mut unsupported = None;
    let mut de = serde_json::Deserializer::from_slice(data);
    let parsed = (&mut de)
        .deserialize_seq(ReqVisitor {
            sub_id,
            unsupported: &mut unsupported,
        })
        .and_then(|filters| de.end().map(|()| filters));
    match (parsed, unsupported) {
        (Err(e), _) => Err(ReqError::Invalid(match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => format!("malformed JSON: {e}"),
        })),
        (Ok(_), Some(reason)) => Err(ReqError::Unsupported(reason)),
        (Ok(filters), None) => Ok(filters),
    }
}

struct ReqVisitor<'a> {
    sub_id: &'a str,
    unsupported: &'a mut Option<String>,
}

impl<'de> Visitor<'de> for ReqVisitor<'_> {
    type Value = Vec<Filter>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an array ["REQ", <sub_id>, <filter>, ...]"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Filter>, A::Error> {
        match seq.next_element::<Scalar>()? {
            Some(Scalar::Str(s)) if s == "REQ" => {}
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "the first element must be \"REQ\", got {}",
                    other.describe()
                )));
            }
            None => return Err(de::Error::custom("the REQ array is empty")),
        }
        match seq.next_element::<Scalar>()? {
            Some(Scalar::Str(s)) if s == self.sub_id => {}
            Some(Scalar::Str(s)) => {
                return Err(de::Error::custom(format_args!(
                    "the REQ names subscription {s:?}, the command names {:?}",
                    self.sub_id
                )));
            }
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "the subscription id must be a string, got {}",
                    other.type_name()
                )));
            }
            None => return Err(de::Error::custom("the REQ has no subscription id")),
        }
        let mut filters = Vec::new();
        while let Some(filter) = seq.next_element_seed(FilterSeed {
            unsupported: &mut *self.unsupported,
        })? {
            filters.push(filter);
        }
        if filters.is_empty() {
            return Err(de::Error::custom("the REQ has no filter"));
        }
        Ok(filters)
    }
}
