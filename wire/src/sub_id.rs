//! The subscription id: 1 to 64 bytes of valid UTF-8, held as a zero-copy
//! slice of the buffer it was decoded from.

use std::fmt;

use bytes::Bytes;

use crate::error::SubIdProblem;

/// A subscription id: 1–64 bytes of valid UTF-8 (PROTOCOL.md#operations, ops
/// Add and Remove). Decoding keeps it as a slice of the input buffer, not a copy.
///
/// ```
/// use broadcast_wire::SubId;
///
/// let id = SubId::try_from("feed").unwrap();
/// assert_eq!(id.as_str(), "feed");
/// assert!(SubId::try_from("x".repeat(65).as_str()).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId(Bytes);

impl SubId {
    /// The longest sub_id in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks `bytes` and wraps them without copying.
    ///
    /// ```
    /// use broadcast_wire::{SubId, SubIdProblem};
    /// use bytes::Bytes;
    ///
    /// assert!(SubId::new(Bytes::from_static(b"a")).is_ok());
    /// assert_eq!(SubId::new(Bytes::from_static(b"\xff")).unwrap_err(), SubIdProblem::NotUtf8);
    /// ```
    pub fn new(bytes: Bytes) -> Result<SubId, SubIdProblem> {
        // Spec order inside the class does not matter (one class), but check
        // the cheap length rules before scanning the bytes.
        if bytes.is_empty() {
            return Err(SubIdProblem::Missing);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(SubIdProblem::TooLong { len: bytes.len() });
        }
        if std::str::from_utf8(&bytes).is_err() {
            return Err(SubIdProblem::NotUtf8);
        }
        Ok(SubId(bytes))
    }

    /// The id as text.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::SubId::try_from("é").unwrap().as_str(), "é");
    /// ```
    pub fn as_str(&self) -> &str {
        // Checked in `new`; the fallback is unreachable but keeps this
        // function free of panics and of `unsafe`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id's bytes, sharing the buffer it was decoded from.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::SubId::try_from("ab").unwrap().as_bytes().len(), 2);
    /// ```
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length in bytes (1 to 64).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::SubId::try_from("ab").unwrap().len(), 2);
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty by construction
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl TryFrom<&str> for SubId {
    type Error = SubIdProblem;
    fn try_from(s: &str) -> Result<SubId, SubIdProblem> {
        SubId::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for SubId {
    type Error = SubIdProblem;
    fn try_from(s: String) -> Result<SubId, SubIdProblem> {
        SubId::new(Bytes::from(s))
    }
}

impl AsRef<str> for SubId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
