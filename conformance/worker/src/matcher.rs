//! The interface between the worker and a matcher: the worker owns the
//! subscriptions, a matcher finds which of them an event matches.

use super::event::Event;
use super::subscription::{SubSlot, Subscription, Subscriptions};

/// Finds the subscriptions with a filter matching an event. The worker
/// calls `insert` after storing a subscription and `remove` before freeing
/// its slot, with the same subscription.
pub trait Matcher: Default {
    /// Starts matching `sub`, stored at `slot`.
    fn insert(&mut self, slot: SubSlot, sub: &Subscription);

    /// Stops matching `sub`, stored at `slot`.
    fn remove(&mut self, slot: SubSlot, sub: &Subscription);

    /// Appends to `found` every subscription of `subs` that has at least
    /// one filter matching `event`, each exactly once, in no set order.
    fn find(&mut self, subs: &Subscriptions, event: &Event, found: &mut Vec<SubSlot>);
}
