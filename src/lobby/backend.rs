//! Where the lobby's users wait: this process's own [`Matchmaker`], or the queue every
//! instance shares through Redis ([`SharedQueue`]), which answers later, as events.
//!
//! What both do the same way is a method here; what only one does is reached by matching
//! on the variant, so a reader sees at each call which queue it is about.

use std::time::Instant;

use rand::rngs::StdRng;

use super::users::Partner;
use crate::ids::SessionId;
use crate::matchmaker::{Matchmaker, Pairing, Want};
use crate::shared::SharedQueue;

pub(crate) enum Backend {
    /// Pairs at once, in this process.
    Local(Matchmaker<StdRng>),
    /// Pairs on Redis: a join is answered later by
    /// [`SharedEvent::Paired`](crate::shared::SharedEvent::Paired). `rng` draws the room ids
    /// and roles of the pairings this instance announces.
    Shared { queue: SharedQueue, rng: StdRng },
}

impl Backend {
    /// `id` wants a partner: the pairing made at once (in process), if any; otherwise it
    /// waits (with a shared queue, always, until the engine answers).
    pub(crate) fn join(&mut self, id: SessionId, want: &Want, now: Instant) -> Option<Pairing> {
        match self {
            Backend::Local(queue) => queue.join(id, want, now),
            Backend::Shared { queue, .. } => {
                queue.join(id, want, now);
                None
            }
        }
    }

    /// Lets waiters whose fallback time has come meet anyone: the pairings made at once (a
    /// shared queue asks Redis and answers later).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Pairing> {
        match self {
            Backend::Local(queue) => queue.expire(now),
            Backend::Shared { queue, .. } => {
                queue.expire(now);
                Vec::new()
            }
        }
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self {
            Backend::Local(queue) => queue.next_deadline(),
            Backend::Shared { queue, .. } => queue.next_deadline(),
        }
    }

    /// `a` and its partner just parted: keep them apart for the cool-down.
    pub(crate) fn parted(&mut self, a: SessionId, partner: Partner, now: Instant) {
        match (self, partner) {
            (Backend::Local(queue), Partner::Here(b)) => queue.parted(a, b, now),
            // One process has no partners elsewhere.
            (Backend::Local(_), Partner::There { .. }) => {}
            (Backend::Shared { queue, .. }, Partner::Here(b)) => {
                let b = queue.user(b);
                queue.parted(a, b);
            }
            (Backend::Shared { queue, .. }, Partner::There { user, .. }) => queue.parted(a, user),
        }
    }

    /// Takes `id` out of the queue; whether it was waiting.
    pub(crate) fn remove(&mut self, id: SessionId) -> bool {
        match self {
            Backend::Local(queue) => queue.remove(id),
            Backend::Shared { queue, .. } => queue.remove(id),
        }
    }

    /// Forgets everything about `id` (it disconnected).
    pub(crate) fn forget(&mut self, id: SessionId) {
        match self {
            Backend::Local(queue) => queue.forget(id),
            Backend::Shared { queue, .. } => queue.forget(id),
        }
    }

    /// Whether `id` waits (the lobby's own view is each user's status; tests hold the two
    /// against each other).
    #[cfg(test)]
    pub(crate) fn is_waiting(&self, id: SessionId) -> bool {
        match self {
            Backend::Local(queue) => queue.is_waiting(id),
            Backend::Shared { queue, .. } => queue.is_waiting(id),
        }
    }

    /// How many of this instance's users wait.
    pub(crate) fn len(&self) -> usize {
        match self {
            Backend::Local(queue) => queue.len(),
            Backend::Shared { queue, .. } => queue.len(),
        }
    }

    /// The shared queue, if that is where users wait.
    pub(crate) fn shared(&mut self) -> Option<&mut SharedQueue> {
        match self {
            Backend::Local(_) => None,
            Backend::Shared { queue, .. } => Some(queue),
        }
    }
}
