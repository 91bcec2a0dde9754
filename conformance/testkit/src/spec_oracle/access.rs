//! The kind lists of the access rules (PROTOCOL.md#access-rules), copied from the spec
//! text for the fuzz model.
//!
//! The reference worker has its own constants
//! (`broadcast_worker::PRIVILEGED_KINDS`, `MARMOT_OPEN_KINDS`); the model
//! must not take them from the code it checks. Both copies exist so that
//! the test below can compare them: a worker whose list drifts from the
//! spec fails there, with the difference spelled out.

/// Kinds only their author and the pubkeys they `p`-tag may receive when
/// the Bcast asks for the access filter.
pub const PRIVILEGED_KINDS: [u64; 8] = [4, 13, 14, 15, 443, 1059, 1060, 10051];

/// The privileged kinds that the Marmot flag opens to everyone.
pub const MARMOT_OPEN_KINDS: [u64; 2] = [443, 10051];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_uses_the_spec_kind_lists() {
        let widen = |kinds: &[u16]| kinds.iter().copied().map(u64::from).collect::<Vec<_>>();
        assert_eq!(widen(&broadcast_worker::PRIVILEGED_KINDS), PRIVILEGED_KINDS);
        assert_eq!(widen(&broadcast_worker::MARMOT_OPEN_KINDS), MARMOT_OPEN_KINDS);
    }
}
