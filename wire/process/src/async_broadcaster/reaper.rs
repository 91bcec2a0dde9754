//! Dropping a worker's end waits for the worker (its grace period, then a
//! kill, then the reap). In async code that wait must not block a runtime
//! thread, so a running worker is handed to a short-lived thread that does
//! exactly what the blocking handle's drop does: one implementation of the
//! lifecycle, and a reap that happens even if the runtime shuts down first.

use std::ops::{Deref, DerefMut};

use crate::broadcaster::Endpoint;

/// An [`Endpoint`] whose drop never blocks the calling thread.
#[derive(Debug)]
pub(super) struct ReapInBackground(Option<Endpoint>);

impl ReapInBackground {
    pub(super) fn new(end: Endpoint) -> ReapInBackground {
        ReapInBackground(Some(end))
    }
}

impl Deref for ReapInBackground {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        self.0.as_ref().expect("the endpoint is only taken by drop")
    }
}

impl DerefMut for ReapInBackground {
    fn deref_mut(&mut self) -> &mut Endpoint {
        self.0.as_mut().expect("the endpoint is only taken by drop")
    }
}

impl Drop for ReapInBackground {
    fn drop(&mut self) {
        let Some(mut end) = self.0.take() else { return };
        if !end.worker.has_child() || end.worker.try_status().is_some() {
            return; // nothing to wait for: drop here
        }
        let spawned = std::thread::Builder::new()
            .name("broadcast-process-reaper".into())
            .spawn(move || drop(end));
        // No thread to be had: block here rather than leave a zombie (the
        // endpoint was moved into the failed closure and is dropped with
        // it, which is that same blocking drop).
        drop(spawned);
    }
}
