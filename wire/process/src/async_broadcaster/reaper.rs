//! Dropping a [`Broadcaster`] waits for the worker (its grace period, then
//! a kill, then the reap). In async code that wait must not block a runtime
//! thread, so a running worker is handed to a short-lived thread that does
//! exactly what the sync drop does: one implementation of the lifecycle,
//! and a reap that happens even if the runtime shuts down first.

use std::ops::{Deref, DerefMut};

use crate::broadcaster::Broadcaster;

/// A [`Broadcaster`] whose drop never blocks the calling thread.
#[derive(Debug)]
pub(super) struct ReapInBackground(Option<Broadcaster>);

impl ReapInBackground {
    pub(super) fn new(b: Broadcaster) -> ReapInBackground {
        ReapInBackground(Some(b))
    }
}

impl Deref for ReapInBackground {
    type Target = Broadcaster;

    fn deref(&self) -> &Broadcaster {
        self.0.as_ref().expect("the broadcaster is only taken by drop")
    }
}

impl DerefMut for ReapInBackground {
    fn deref_mut(&mut self) -> &mut Broadcaster {
        self.0.as_mut().expect("the broadcaster is only taken by drop")
    }
}

impl Drop for ReapInBackground {
    fn drop(&mut self) {
        let Some(mut b) = self.0.take() else { return };
        if !b.has_child() || b.exit_status().is_some() {
            return; // nothing to wait for: drop here
        }
        let spawned = std::thread::Builder::new()
            .name("broadcast-wire-reaper".into())
            .spawn(move || drop(b));
        // No thread to be had: block here rather than leave a zombie (the
        // Broadcaster was moved into the failed closure and is dropped with
        // it, which is that same blocking drop).
        drop(spawned);
    }
}
