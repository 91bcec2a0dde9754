//! Who may receive an event (PROTOCOL.md#access-rules): decided per
//! connection and per event from the Bcast flags, the event, and the
//! connection's `whitelisted` flag and authenticated pubkeys.

use broadcast_wire::BcastFlags;

use super::event::Event;
use super::hex::decode_hex32;

/// Kinds only their author, their `p`-tagged recipients and whitelisted
/// connections may receive when `need_filter` is set.
pub const PRIVILEGED_KINDS: [u16; 8] = [4, 13, 14, 15, 443, 1059, 1060, 10051];

/// Privileged kinds that `marmot_open` opens to everyone (Marmot key
/// packages and key-package relay lists).
pub const MARMOT_OPEN_KINDS: [u16; 2] = [443, 10051];

/// The conditions one event puts on the connections that receive it.
///
/// ```
/// use broadcast_worker::{Access, Event};
/// use broadcast_wire::BcastFlags;
///
/// let data = format!(
///     r#"["EVENT",{{"id":"{}","pubkey":"{}","created_at":1,"kind":4,"tags":[],"content":"","sig":"{}"}}]"#,
///     "a".repeat(64), "b".repeat(64), "c".repeat(128)
/// );
/// let event = Event::parse(data.as_bytes()).unwrap();
/// let access = Access::for_event(BcastFlags::NEED_FILTER, &event);
/// assert!(!access.allows(false, &[]));
/// assert!(access.allows(false, &[[0xbb; 32]]));
/// assert!(access.allows(true, &[]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `Some(keys)`: the privileged-kind rule applies, and a connection
    /// needs one of `keys` (the author and the `p`-tagged pubkeys).
    pubkey_in: Option<Vec<[u8; 32]>>,
    /// The NIP-70 rule applies: a connection needs some authenticated pubkey.
    any_auth: bool,
}

impl Access {
    /// The rules that apply to `event` sent with `flags` (reserved bits
    /// ignored).
    pub fn for_event(flags: BcastFlags, event: &Event) -> Access {
        let kind = event.kind();
        let privileged = flags.need_filter()
            && PRIVILEGED_KINDS.contains(&kind)
            && !(flags.marmot_open() && MARMOT_OPEN_KINDS.contains(&kind));
        let pubkey_in = privileged.then(|| {
            // A `p` value that is not 64 lowercase hex cannot equal the
            // lowercase hex of any authenticated pubkey.
            std::iter::once(*event.pubkey())
                .chain(event.p_values().filter_map(decode_hex32))
                .collect()
        });
        Access {
            pubkey_in,
            any_auth: flags.nip70_enforce() && event.is_protected(),
        }
    }

    /// Whether every connection may receive the event.
    pub fn is_open(&self) -> bool {
        self.pubkey_in.is_none() && !self.any_auth
    }

    /// Whether a connection with this `whitelisted` flag and these
    /// authenticated pubkeys passes every rule that applies.
    pub fn allows(&self, whitelisted: bool, authenticated: &[[u8; 32]]) -> bool {
        if whitelisted {
            return true;
        }
        let privileged_ok = self
            .pubkey_in
            .as_ref()
            .is_none_or(|keys| authenticated.iter().any(|a| keys.contains(a)));
        let protected_ok = !self.any_auth || !authenticated.is_empty();
        privileged_ok && protected_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: [u8; 32] = [0xaa; 32];
    const TAGGED: [u8; 32] = [0xbb; 32];
    const STRANGER: [u8; 32] = [0xcc; 32];

    fn data(kind: u16, tags: &str) -> String {
        format!(
            r#"["EVENT",{{"id":"{}","pubkey":"{}","created_at":1,"kind":{kind},"tags":{tags},"content":"","sig":"{}"}}]"#,
            "1".repeat(64),
            hex::encode(AUTHOR),
            "3".repeat(128)
        )
    }

    fn access(flags: BcastFlags, kind: u16, tags: &str) -> Access {
        Access::for_event(flags, &Event::parse(data(kind, tags).as_bytes()).unwrap())
    }

    fn p_tag() -> String {
        format!(r#"[["p","{}"]]"#, hex::encode(TAGGED))
    }

    #[test]
    fn every_privileged_kind_is_restricted_under_need_filter() {
        for kind in PRIVILEGED_KINDS {
            let a = access(BcastFlags::NEED_FILTER, kind, &p_tag());
            assert!(!a.is_open(), "kind {kind}");
            assert!(!a.allows(false, &[]), "kind {kind}: anonymous");
            assert!(!a.allows(false, &[STRANGER]), "kind {kind}: stranger");
            assert!(a.allows(false, &[AUTHOR]), "kind {kind}: author");
            assert!(a.allows(false, &[TAGGED]), "kind {kind}: p-tagged");
            assert!(
                a.allows(false, &[STRANGER, TAGGED]),
                "kind {kind}: one of several"
            );
            assert!(a.allows(true, &[]), "kind {kind}: whitelisted");
        }
    }

    #[test]
    fn other_kinds_and_no_need_filter_are_open() {
        for kind in [
            0, 1, 3, 5, 12, 16, 442, 444, 1058, 1061, 10050, 10052, 29999, 65535,
        ] {
            assert!(
                access(BcastFlags::NEED_FILTER, kind, "[]").is_open(),
                "kind {kind}"
            );
        }
        for kind in PRIVILEGED_KINDS {
            assert!(access(BcastFlags::EMPTY, kind, "[]").is_open(), "kind {kind}");
            assert!(
                access(BcastFlags::MARMOT_OPEN, kind, "[]").is_open(),
                "kind {kind}"
            );
        }
    }

    #[test]
    fn marmot_open_opens_only_the_marmot_kinds() {
        let flags = BcastFlags::NEED_FILTER | BcastFlags::MARMOT_OPEN;
        for kind in PRIVILEGED_KINDS {
            let open = access(flags, kind, "[]").is_open();
            assert_eq!(open, MARMOT_OPEN_KINDS.contains(&kind), "kind {kind}");
        }
    }

    #[test]
    fn p_value_must_be_the_lowercase_hex_of_the_pubkey() {
        let upper = format!(r#"[["p","{}"]]"#, hex::encode(TAGGED).to_uppercase());
        assert!(!access(BcastFlags::NEED_FILTER, 4, &upper).allows(false, &[TAGGED]));
        let other_tag = format!(r#"[["P","{0}"],["e","{0}"],["p"]]"#, hex::encode(TAGGED));
        assert!(!access(BcastFlags::NEED_FILTER, 4, &other_tag).allows(false, &[TAGGED]));
    }

    #[test]
    fn protected_events_need_some_authentication_under_nip70_enforce() {
        let a = access(BcastFlags::NIP70_ENFORCE, 1, r#"[["-"]]"#);
        assert!(!a.is_open());
        assert!(!a.allows(false, &[]));
        assert!(a.allows(false, &[STRANGER]));
        assert!(a.allows(true, &[]));
        assert!(access(BcastFlags::NIP70_ENFORCE, 1, "[]").is_open());
        assert!(access(BcastFlags::EMPTY, 1, r#"[["-"]]"#).is_open());
    }

    #[test]
    fn both_rules_together_must_both_pass() {
        let tags = format!(r#"[["-"],["p","{}"]]"#, hex::encode(TAGGED));
        let a = access(BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE, 4, &tags);
        assert!(!a.allows(false, &[]));
        assert!(!a.allows(false, &[STRANGER]), "authenticated but not a party");
        assert!(a.allows(false, &[TAGGED]));
        assert!(a.allows(true, &[]));
        // Marmot opens the kind rule only; the NIP-70 rule still holds.
        let all = BcastFlags::NEED_FILTER | BcastFlags::NIP70_ENFORCE | BcastFlags::MARMOT_OPEN;
        let m = access(all, 443, &tags);
        assert!(!m.allows(false, &[]));
        assert!(m.allows(false, &[STRANGER]));
    }

    #[test]
    fn reserved_flag_bits_change_nothing() {
        for bits in 0u8..=0xff {
            let flags = BcastFlags::from_bits(bits);
            let defined = BcastFlags::from_bits(bits & 0x07);
            assert_eq!(
                access(flags, 4, r#"[["-"]]"#),
                access(defined, 4, r#"[["-"]]"#),
                "{bits:#x}"
            );
        }
    }
}
