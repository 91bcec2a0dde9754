//! Flag bytes as small newtypes: each names the bits the spec defines for its
//! op and keeps every other bit as it was received, because PROTOCOL.md#flags
//! says "A decoder MUST preserve the whole `flags` byte, reserved bits
//! included", so that decode → encode is byte-identical.

use std::ops::BitOr;

/// Flags of a `New` command. Bit 0 is `whitelisted`; bits 1–7 are reserved.
///
/// ```
/// use broadcast_wire::NewFlags;
///
/// let f = NewFlags::WHITELISTED;
/// assert!(f.whitelisted());
/// assert_eq!(NewFlags::from_bits(0x81).reserved_bits(), 0x80);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NewFlags(u8);

impl NewFlags {
    /// No bit set.
    pub const EMPTY: NewFlags = NewFlags(0);
    /// Bit 0: the connection is whitelisted (sees privileged and protected events).
    pub const WHITELISTED: NewFlags = NewFlags(0x01);
    const DEFINED: u8 = 0x01;

    /// Wraps a raw flags byte, reserved bits included.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::NewFlags::from_bits(3).bits(), 3);
    /// ```
    pub const fn from_bits(bits: u8) -> Self {
        NewFlags(bits)
    }

    /// The raw byte, reserved bits included.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::NewFlags::WHITELISTED.bits(), 1);
    /// ```
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether bit 0 (`whitelisted`) is set.
    ///
    /// ```
    /// assert!(!broadcast_wire::NewFlags::EMPTY.whitelisted());
    /// ```
    pub const fn whitelisted(self) -> bool {
        self.0 & Self::WHITELISTED.0 != 0
    }

    /// The bits the spec reserves (senders must send 0, receivers ignore them).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::NewFlags::from_bits(0xff).reserved_bits(), 0xfe);
    /// ```
    pub const fn reserved_bits(self) -> u8 {
        self.0 & !Self::DEFINED
    }
}

impl BitOr for NewFlags {
    type Output = NewFlags;
    fn bitor(self, rhs: NewFlags) -> NewFlags {
        NewFlags(self.0 | rhs.0)
    }
}

/// Flags of a `Bcast` command: bit 0 `need_filter`, bit 1 `nip70_enforce`,
/// bit 2 `marmot_open`; bits 3–7 are reserved.
///
/// ```
/// use broadcast_wire::BcastFlags;
///
/// let f = BcastFlags::NEED_FILTER | BcastFlags::MARMOT_OPEN;
/// assert!(f.need_filter() && f.marmot_open() && !f.nip70_enforce());
/// assert_eq!(f.bits(), 0b101);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BcastFlags(u8);

impl BcastFlags {
    /// No bit set.
    pub const EMPTY: BcastFlags = BcastFlags(0);
    /// Bit 0: apply the privileged-kinds rule.
    pub const NEED_FILTER: BcastFlags = BcastFlags(0x01);
    /// Bit 1: apply the NIP-70 protected-event rule.
    pub const NIP70_ENFORCE: BcastFlags = BcastFlags(0x02);
    /// Bit 2: Marmot kinds (443, 10051) are open to everyone.
    pub const MARMOT_OPEN: BcastFlags = BcastFlags(0x04);
    const DEFINED: u8 = 0x07;

    /// Wraps a raw flags byte, reserved bits included.
    ///
    /// ```
    /// assert!(broadcast_wire::BcastFlags::from_bits(2).nip70_enforce());
    /// ```
    pub const fn from_bits(bits: u8) -> Self {
        BcastFlags(bits)
    }

    /// The raw byte, reserved bits included.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::BcastFlags::MARMOT_OPEN.bits(), 4);
    /// ```
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether bit 0 (`need_filter`) is set.
    ///
    /// ```
    /// assert!(broadcast_wire::BcastFlags::NEED_FILTER.need_filter());
    /// ```
    pub const fn need_filter(self) -> bool {
        self.0 & Self::NEED_FILTER.0 != 0
    }

    /// Whether bit 1 (`nip70_enforce`) is set.
    ///
    /// ```
    /// assert!(broadcast_wire::BcastFlags::NIP70_ENFORCE.nip70_enforce());
    /// ```
    pub const fn nip70_enforce(self) -> bool {
        self.0 & Self::NIP70_ENFORCE.0 != 0
    }

    /// Whether bit 2 (`marmot_open`) is set.
    ///
    /// ```
    /// assert!(broadcast_wire::BcastFlags::MARMOT_OPEN.marmot_open());
    /// ```
    pub const fn marmot_open(self) -> bool {
        self.0 & Self::MARMOT_OPEN.0 != 0
    }

    /// The bits the spec reserves (senders must send 0, receivers ignore them).
    ///
    /// ```
    /// assert_eq!(broadcast_wire::BcastFlags::from_bits(0x0f).reserved_bits(), 0x08);
    /// ```
    pub const fn reserved_bits(self) -> u8 {
        self.0 & !Self::DEFINED
    }
}

impl BitOr for BcastFlags {
    type Output = BcastFlags;
    fn bitor(self, rhs: BcastFlags) -> BcastFlags {
        BcastFlags(self.0 | rhs.0)
    }
}

/// Flags of an op that defines no bit (Close, Add, Remove, Auth): all eight
/// bits are reserved, kept only so decode → encode is byte-identical.
///
/// ```
/// use broadcast_wire::ReservedFlags;
///
/// assert_eq!(ReservedFlags::default().bits(), 0);
/// assert_eq!(ReservedFlags::from_bits(0x80).bits(), 0x80);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReservedFlags(u8);

impl ReservedFlags {
    /// No bit set: what a sender must send.
    pub const EMPTY: ReservedFlags = ReservedFlags(0);

    /// Wraps a raw flags byte.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::ReservedFlags::from_bits(5).bits(), 5);
    /// ```
    pub const fn from_bits(bits: u8) -> Self {
        ReservedFlags(bits)
    }

    /// The raw byte.
    ///
    /// ```
    /// assert_eq!(broadcast_wire::ReservedFlags::EMPTY.bits(), 0);
    /// ```
    pub const fn bits(self) -> u8 {
        self.0
    }
}
