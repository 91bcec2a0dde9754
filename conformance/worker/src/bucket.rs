//! The set of filters filed under one index key: iterated for every event
//! that has the key, inserted into and removed from as subscriptions come
//! and go.

use std::collections::HashMap;

/// One filter of one subscription: the subscription's slot and the
/// filter's position in its REQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterRef {
    /// The subscription's slot number.
    pub slot: u32,
    /// The filter's index in the subscription's filters.
    pub filter: u32,
}

/// Above this many entries a bucket keeps a position map, so removing one
/// entry stays O(1) even under a hot key (a `kinds:[1]` feed shared by
/// thousands of subscriptions); below it a scan is cheaper than a map.
const POSITIONS_FROM: usize = 32;

/// An unordered set of [`FilterRef`]s stored in a dense vector (fast to
/// iterate), with a position map once it grows large.
#[derive(Debug, Default)]
pub struct Bucket {
    items: Vec<FilterRef>,
    positions: Option<HashMap<FilterRef, u32>>,
}

impl Bucket {
    /// Adds `f` (the caller adds each entry at most once).
    pub fn insert(&mut self, f: FilterRef) {
        let at = self.items.len() as u32;
        self.items.push(f);
        if let Some(positions) = &mut self.positions {
            positions.insert(f, at);
        } else if self.items.len() > POSITIONS_FROM {
            self.positions = Some(
                self.items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (*f, i as u32))
                    .collect(),
            );
        }
    }

    /// Removes `f`; returns whether it was there.
    pub fn remove(&mut self, f: FilterRef) -> bool {
        let found = match &mut self.positions {
            Some(positions) => positions.remove(&f).map(|i| i as usize),
            None => self.items.iter().position(|x| *x == f),
        };
        let Some(at) = found else { return false };
        self.items.swap_remove(at);
        if let (Some(positions), Some(moved)) = (&mut self.positions, self.items.get(at)) {
            positions.insert(*moved, at as u32);
        }
        if self.items.len() <= POSITIONS_FROM / 2 {
            self.positions = None;
        }
        true
    }

    /// The entries, in no set order.
    pub fn items(&self) -> &[FilterRef] {
        &self.items
    }

    /// Whether the bucket is empty (and can be dropped).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn f(slot: u32) -> FilterRef {
        FilterRef {
            slot,
            filter: slot % 3,
        }
    }

    proptest! {
        /// Whatever the sequence of inserts and removes, across the switch
        /// to and from the position map, the bucket holds exactly the set a
        /// BTreeSet holds.
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 0u32..80), 0..600)) {
            let mut bucket = Bucket::default();
            let mut model = BTreeSet::new();
            for (insert, slot) in ops {
                if insert {
                    if model.insert(f(slot)) {
                        bucket.insert(f(slot));
                    }
                } else {
                    prop_assert_eq!(bucket.remove(f(slot)), model.remove(&f(slot)));
                }
                let got: BTreeSet<_> = bucket.items().iter().copied().collect();
                prop_assert_eq!(got.len(), bucket.items().len());
                prop_assert_eq!(&got, &model);
            }
        }
    }
}
