//! The live subscriptions of every connection, in a slab: a subscription is
//! named by a small, stable slot number that the matchers file and return.

use super::filter::Filter;

/// The slot of a live subscription in [`Subscriptions`]. A slot is reused
/// only after its subscription was removed from every matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubSlot(u32);

impl SubSlot {
    /// The slot number, usable as a dense array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The slot with number `index` (as stored in an index entry).
    pub(crate) fn from_index(index: u32) -> SubSlot {
        SubSlot(index)
    }
}

/// One live subscription: where to send, what to send before the event,
/// and the filters (any one matching is enough).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The connection that owns it.
    pub conn: i32,
    /// `["EVENT",<sub_id>,`, computed once (see [`super::event_prefix`]).
    pub event_prefix: Box<[u8]>,
    /// The REQ's filters, in order.
    pub filters: Box<[Filter]>,
}

/// A slab of subscriptions with free-slot reuse.
#[derive(Debug, Default)]
pub struct Subscriptions {
    slots: Vec<Option<Subscription>>,
    free: Vec<SubSlot>,
    live: usize,
}

impl Subscriptions {
    /// Stores `sub` and returns its slot.
    pub fn insert(&mut self, sub: Subscription) -> SubSlot {
        self.live += 1;
        if let Some(slot) = self.free.pop() {
            self.slots[slot.index()] = Some(sub);
            return slot;
        }
        // More than 4 billion live subscriptions cannot fit in memory first.
        let slot = SubSlot(u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
        self.slots.push(Some(sub));
        slot
    }

    /// Takes the subscription out of `slot`, freeing the slot.
    pub fn remove(&mut self, slot: SubSlot) -> Option<Subscription> {
        let sub = self.slots.get_mut(slot.index())?.take()?;
        self.live -= 1;
        self.free.push(slot);
        Some(sub)
    }

    /// The subscription in `slot`, if live.
    pub fn get(&self, slot: SubSlot) -> Option<&Subscription> {
        self.slots.get(slot.index())?.as_ref()
    }

    /// Number of live subscriptions.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// One more than the highest slot ever used: a bound for arrays indexed
    /// by slot.
    pub fn slot_bound(&self) -> usize {
        self.slots.len()
    }

    /// Every live subscription with its slot, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (SubSlot, &Subscription)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((SubSlot(i as u32), s.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(conn: i32) -> Subscription {
        Subscription {
            conn,
            event_prefix: Box::new([]),
            filters: Box::new([]),
        }
    }

    #[test]
    fn slots_are_reused_after_removal() {
        let mut subs = Subscriptions::default();
        let a = subs.insert(sub(1));
        let b = subs.insert(sub(2));
        assert_ne!(a, b);
        assert_eq!(subs.remove(a).unwrap().conn, 1);
        assert_eq!(subs.remove(a), None);
        assert_eq!(subs.len(), 1);
        let c = subs.insert(sub(3));
        assert_eq!(c, a);
        assert_eq!(subs.get(c).unwrap().conn, 3);
        assert_eq!(subs.iter().map(|(_, s)| s.conn).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(subs.slot_bound(), 2);
    }
}
