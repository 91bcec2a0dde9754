//! Lowercase hex, the only spelling the worker accepts (PROTOCOL.md#req-parsing,
//! PROTOCOL.md#bcast-event) for ids, pubkeys,
//! signatures and `#e`/`#p` values.

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

/// The 64 lowercase hex digits of `bytes`.
pub fn encode_hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
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
        let s = encode_hex32(&bytes);
        assert_eq!(s.len(), 64);
        assert_eq!(decode_hex32(&s), Some(bytes));
        assert_eq!(encode_hex32(&[0xab; 32]), "ab".repeat(32));
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
