//! Lowercase hex, the only spelling the worker accepts (PROTOCOL.md#req-parsing,
//! PROTOCOL.md#bcast-event) for ids, pubkeys,
//! signatures and `#e`/`#p` values.
//!
//! The worker decodes hex on its hot path (every event's id, pubkey and `p`
//! tags), so it keeps this allocation-free, strictly lowercase decoder of its
//! own instead of depending on the `hex` crate. It never encodes hex; tests
//! and the harness use the `hex` crate for that.

/// Decodes exactly 64 lowercase hex digits into 32 bytes; `None` for any
/// other length or any other character (uppercase included).
pub fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Whether `s` is exactly `len` lowercase hex digits.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| nibble(b).is_some())
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_byte_values() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        // Expected digits from the `hex` crate, not from this module.
        assert_eq!(decode_hex32(&hex::encode(bytes)), Some(bytes));
        assert_eq!(decode_hex32(&"ab".repeat(32)), Some([0xab; 32]));
    }

    #[test]
    fn refuses_uppercase_wrong_length_and_non_hex() {
        assert_eq!(decode_hex32(&"AB".repeat(32)), None);
        assert_eq!(decode_hex32(&"ab".repeat(31)), None);
        assert_eq!(decode_hex32(&format!("{}a", "ab".repeat(32))), None);
        assert_eq!(decode_hex32(&format!("{}g", "a".repeat(63))), None);
        assert_eq!(decode_hex32(""), None);
        assert!(is_lower_hex(&"0f".repeat(64), 128));
        assert!(!is_lower_hex(&"0F".repeat(64), 128));
        assert!(!is_lower_hex(&"0f".repeat(63), 128));
    }
}
