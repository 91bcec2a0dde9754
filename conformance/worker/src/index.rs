//! The indexed matcher, modelled on strfry's ActiveMonitors: each filter is
//! filed under exactly one key, chosen by priority ids > authors >
//! (tag letter, value) > kinds > catch-all. An event looks up the buckets of
//! its id, its pubkey, each of its (letter, `t[1]`) tag pairs and its kind,
//! plus the catch-all bucket, and runs the full match only on the filters it
//! finds there. A filter that can match an event is always filed under a
//! key the event has, so nothing is missed.

use std::collections::HashMap;

use super::bucket::{Bucket, FilterRef};
use super::event::Event;
use super::filter::Filter;
use super::matcher::Matcher;
use super::subscription::{SubSlot, Subscription, Subscriptions};

/// The key a filter is filed under, with every value it is filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKey<'f> {
    /// Filed under each of its ids.
    Ids(&'f [[u8; 32]]),
    /// Filed under each of its authors.
    Authors(&'f [[u8; 32]]),
    /// Filed under (letter, value) for each value of one `#x` condition.
    Tag(u8, &'f [Box<str>]),
    /// Filed under each of its kinds.
    Kinds(&'f [u16]),
    /// No indexable field: tried for every event.
    CatchAll,
}

impl<'f> IndexKey<'f> {
    /// The key `filter` is filed under, or `None` if it can never match
    /// (see [`Filter::can_match`]) and is not filed at all. Among several
    /// `#x` conditions the one with the fewest values is used (the first on
    /// a tie): any of them is correct, the smallest is the most selective.
    pub fn of(filter: &'f Filter) -> Option<IndexKey<'f>> {
        if !filter.can_match() {
            return None;
        }
        Some(if let Some(ids) = filter.ids() {
            IndexKey::Ids(ids)
        } else if let Some(authors) = filter.authors() {
            IndexKey::Authors(authors)
        } else if let Some(tag) = filter.tags().iter().min_by_key(|t| t.values().len()) {
            IndexKey::Tag(tag.letter(), tag.values())
        } else if let Some(kinds) = filter.kinds() {
            IndexKey::Kinds(kinds)
        } else {
            IndexKey::CatchAll
        })
    }
}

/// The indexed matcher (see the module documentation).
#[derive(Debug, Default)]
pub struct IndexMatcher {
    ids: HashMap<[u8; 32], Bucket>,
    authors: HashMap<[u8; 32], Bucket>,
    tags: HashMap<u8, HashMap<Box<str>, Bucket>>,
    kinds: HashMap<u16, Bucket>,
    catch_all: Bucket,
    /// `stamps[slot] == epoch` once the subscription in `slot` matched the
    /// current event: delivery at most once per subscription without a set.
    stamps: Vec<u64>,
    epoch: u64,
}

impl IndexMatcher {
    fn file(&mut self, f: FilterRef, key: IndexKey) {
        match key {
            IndexKey::Ids(ids) => ids
                .iter()
                .for_each(|id| self.ids.entry(*id).or_default().insert(f)),
            IndexKey::Authors(pks) => pks
                .iter()
                .for_each(|pk| self.authors.entry(*pk).or_default().insert(f)),
            IndexKey::Tag(letter, values) => {
                let by_value = self.tags.entry(letter).or_default();
                for v in values {
                    by_value.entry(v.clone()).or_default().insert(f);
                }
            }
            IndexKey::Kinds(kinds) => kinds
                .iter()
                .for_each(|k| self.kinds.entry(*k).or_default().insert(f)),
            IndexKey::CatchAll => self.catch_all.insert(f),
        }
    }

    fn unfile(&mut self, f: FilterRef, key: IndexKey) {
        match key {
            IndexKey::Ids(ids) => ids.iter().for_each(|id| remove_from(&mut self.ids, id, f)),
            IndexKey::Authors(pks) => pks.iter().for_each(|pk| remove_from(&mut self.authors, pk, f)),
            IndexKey::Tag(letter, values) => {
                if let Some(by_value) = self.tags.get_mut(&letter) {
                    values.iter().for_each(|v| remove_from(by_value, &**v, f));
                    if by_value.is_empty() {
                        self.tags.remove(&letter);
                    }
                }
            }
            IndexKey::Kinds(kinds) => kinds.iter().for_each(|k| remove_from(&mut self.kinds, k, f)),
            IndexKey::CatchAll => {
                self.catch_all.remove(f);
            }
        }
    }

    /// Number of distinct keys with a non-empty bucket (for tests and
    /// memory accounting); the catch-all bucket counts as one key.
    pub fn key_count(&self) -> usize {
        self.ids.len()
            + self.authors.len()
            + self.tags.values().map(HashMap::len).sum::<usize>()
            + self.kinds.len()
            + usize::from(!self.catch_all.is_empty())
    }
}

/// Removes `f` from the bucket under `key`, dropping the bucket once empty
/// so that memory follows the live subscriptions.
fn remove_from<K, Q>(map: &mut HashMap<K, Bucket>, key: &Q, f: FilterRef)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(bucket) = map.get_mut(key) {
        bucket.remove(f);
        if bucket.is_empty() {
            map.remove(key);
        }
    }
}

fn refs(slot: SubSlot, sub: &Subscription) -> impl Iterator<Item = (FilterRef, IndexKey<'_>)> {
    sub.filters.iter().enumerate().filter_map(move |(i, filter)| {
        let f = FilterRef {
            slot: slot.index() as u32,
            filter: i as u32,
        };
        Some((f, IndexKey::of(filter)?))
    })
}

impl Matcher for IndexMatcher {
    fn insert(&mut self, slot: SubSlot, sub: &Subscription) {
        if self.stamps.len() <= slot.index() {
            self.stamps.resize(slot.index() + 1, 0);
        }
        for (f, key) in refs(slot, sub) {
            self.file(f, key);
        }
    }

    fn remove(&mut self, slot: SubSlot, sub: &Subscription) {
        for (f, key) in refs(slot, sub) {
            self.unfile(f, key);
        }
    }

    fn find(&mut self, subs: &Subscriptions, event: &Event, found: &mut Vec<SubSlot>) {
        self.epoch += 1;
        let epoch = self.epoch;
        let stamps = &mut self.stamps;
        let mut try_bucket = |bucket: &Bucket| {
            for f in bucket.items() {
                let stamp = &mut stamps[f.slot as usize];
                if *stamp == epoch {
                    continue;
                }
                let slot = SubSlot::from_index(f.slot);
                let Some(sub) = subs.get(slot) else { continue };
                if sub
                    .filters
                    .get(f.filter as usize)
                    .is_some_and(|filter| filter.matches(event))
                {
                    *stamp = epoch;
                    found.push(slot);
                }
            }
        };
        if let Some(b) = self.ids.get(event.id()) {
            try_bucket(b);
        }
        if let Some(b) = self.authors.get(event.pubkey()) {
            try_bucket(b);
        }
        if !self.tags.is_empty() {
            for tag in event.letter_tags() {
                if let Some(b) = self.tags.get(&tag.letter).and_then(|m| m.get(&*tag.value)) {
                    try_bucket(b);
                }
            }
        }
        if let Some(b) = self.kinds.get(&event.kind()) {
            try_bucket(b);
        }
        try_bucket(&self.catch_all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_req;

    fn filter(json: &str) -> Filter {
        parse_req(format!(r#"["REQ","s",{json}]"#).as_bytes(), "s")
            .unwrap()
            .remove(0)
    }

    fn key(json: &str) -> Option<String> {
        let f = filter(json);
        IndexKey::of(&f).map(|k| match k {
            IndexKey::Ids(v) => format!("ids:{}", v.len()),
            IndexKey::Authors(v) => format!("authors:{}", v.len()),
            IndexKey::Tag(l, v) => format!("#{}:{}", l as char, v.len()),
            IndexKey::Kinds(v) => format!("kinds:{}", v.len()),
            IndexKey::CatchAll => "all".into(),
        })
    }

    #[test]
    fn priority_is_ids_authors_tag_kinds_catch_all() {
        let id = format!("\"{}\"", "1".repeat(64));
        let pk = format!("\"{}\"", "2".repeat(64));
        let full = format!(r##"{{"ids":[{id}],"authors":[{pk},{pk}],"#t":["a"],"kinds":[1,2],"since":1}}"##);
        assert_eq!(key(&full).as_deref(), Some("ids:1"));
        assert_eq!(
            key(&format!(r##"{{"authors":[{pk}],"#t":["a"],"kinds":[1]}}"##)).as_deref(),
            Some("authors:1")
        );
        assert_eq!(key(r##"{"#t":["a","b"],"kinds":[1]}"##).as_deref(), Some("#t:2"));
        assert_eq!(key(r#"{"kinds":[1,2,3],"until":5}"#).as_deref(), Some("kinds:3"));
        assert_eq!(
            key(r#"{"since":5,"limit":3,"search":"x"}"#).as_deref(),
            Some("all")
        );
    }

    #[test]
    fn the_smallest_tag_condition_is_used() {
        assert_eq!(
            key(r##"{"#t":["a","b","c"],"#d":["x"],"#r":["y","z"]}"##).as_deref(),
            Some("#d:1")
        );
        assert_eq!(key(r##"{"#t":["a"],"#d":["x"]}"##).as_deref(), Some("#t:1"));
    }

    #[test]
    fn filters_that_cannot_match_are_not_filed() {
        for f in [
            r#"{"kinds":[]}"#,
            r##"{"kinds":[1],"#t":[]}"##,
            r#"{"since":5,"until":4}"#,
        ] {
            assert_eq!(key(f), None, "{f}");
        }
    }

    #[test]
    fn filing_and_unfiling_leaves_no_key_behind() {
        let mut subs = Subscriptions::default();
        let mut index = IndexMatcher::default();
        let filters = format!(
            r##"{{"ids":["{0}","{1}"]}},{{"#t":["a","b"]}},{{"kinds":[1,2]}},{{}},{{"kinds":[]}}"##,
            "1".repeat(64),
            "2".repeat(64)
        );
        let parsed = parse_req(format!(r#"["REQ","s",{filters}]"#).as_bytes(), "s").unwrap();
        let sub = Subscription {
            conn: 1,
            event_prefix: Box::new([]),
            filters: parsed.into_boxed_slice(),
        };
        let slot = subs.insert(sub.clone());
        index.insert(slot, &sub);
        // 2 ids + 2 tag values + 2 kinds + catch-all.
        assert_eq!(index.key_count(), 7);
        index.remove(slot, &sub);
        assert_eq!(index.key_count(), 0);
        assert!(index.tags.is_empty());
    }
}
