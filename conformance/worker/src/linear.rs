//! The plain matcher: every filter of every subscription is tried against
//! each event. Obviously right and slow; kept as the oracle the indexed
//! matcher is tested against.

use super::event::Event;
use super::matcher::Matcher;
use super::subscription::{SubSlot, Subscription, Subscriptions};

/// Tries every subscription for every event. Holds no state.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinearMatcher;

impl Matcher for LinearMatcher {
    fn insert(&mut self, _: SubSlot, _: &Subscription) {}

    fn remove(&mut self, _: SubSlot, _: &Subscription) {}

    fn find(&mut self, subs: &Subscriptions, event: &Event, found: &mut Vec<SubSlot>) {
        found.extend(
            subs.iter()
                .filter(|(_, sub)| sub.filters.iter().any(|f| f.matches(event)))
                .map(|(slot, _)| slot),
        );
    }
}
