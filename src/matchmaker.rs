//! The waiting queue and the pairing policy: who meets whom, in which room, in which role.
//!
//! Pure data structure, no I/O and no tasks: the [`lobby`](crate::lobby) actor owns one and
//! calls it. All randomness comes from the injected RNG, so a seeded RNG makes every decision
//! reproducible in tests.
//!
//! Policy: a user who joins while others wait is paired with one of them chosen uniformly at
//! random; otherwise the user waits. Every operation is O(1): the queue is a vector plus an
//! index map, and removal swaps the last entry into the hole.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{Rng, RngExt};

use crate::protocol::{Role, RoomId};

/// Identifies one WebSocket connection for as long as the process runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// A process-wide unique id for a new connection.
    pub fn next() -> SessionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A pairing decision: two users, their new room, and who makes the offer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pairing {
    pub room: RoomId,
    /// The user who just joined.
    pub joiner: SessionId,
    pub joiner_role: Role,
    /// The user who was waiting.
    pub waiter: SessionId,
}

/// The queue of waiting users.
#[derive(Debug)]
pub struct Matchmaker<R> {
    /// Waiting users in no particular order; a random index picks a partner in O(1).
    waiting: Vec<SessionId>,
    /// Where each waiting user sits in `waiting`, so leaving the queue is O(1) too.
    slot: HashMap<SessionId, usize>,
    /// Source of every random choice (partner, room id, roles). Production seeds it from the
    /// OS; tests seed it with a constant.
    rng: R,
}

impl<R: Rng> Matchmaker<R> {
    /// An empty queue drawing its random choices from `rng`.
    pub fn new(rng: R) -> Self {
        Matchmaker {
            waiting: Vec::new(),
            slot: HashMap::new(),
            rng,
        }
    }

    /// `id` wants a partner: pair it with a random waiting user, or queue it.
    ///
    /// Returns the pairing when one was made; the partner has left the queue. A user already
    /// waiting stays waiting (and is never paired with itself).
    pub fn join(&mut self, id: SessionId) -> Option<Pairing> {
        if self.slot.contains_key(&id) || self.waiting.is_empty() {
            self.enqueue(id);
            return None;
        }
        let pick = self.rng.random_range(0..self.waiting.len());
        let waiter = self.waiting[pick];
        self.remove(waiter);
        Some(Pairing {
            room: RoomId(self.rng.random()),
            joiner: id,
            joiner_role: if self.rng.random() {
                Role::Offerer
            } else {
                Role::Answerer
            },
            waiter,
        })
    }

    fn enqueue(&mut self, id: SessionId) {
        if !self.slot.contains_key(&id) {
            self.slot.insert(id, self.waiting.len());
            self.waiting.push(id);
        }
    }

    /// Takes `id` out of the queue; returns whether it was waiting.
    pub fn remove(&mut self, id: SessionId) -> bool {
        let Some(at) = self.slot.remove(&id) else {
            return false;
        };
        self.waiting.swap_remove(at);
        if let Some(moved) = self.waiting.get(at) {
            self.slot.insert(*moved, at);
        }
        true
    }

    /// Whether `id` is in the queue.
    pub fn is_waiting(&self, id: SessionId) -> bool {
        self.slot.contains_key(&id)
    }

    /// How many users wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn seeded(seed: u64) -> Matchmaker<StdRng> {
        Matchmaker::new(StdRng::seed_from_u64(seed))
    }

    #[test]
    fn first_user_waits_second_is_paired_with_them() {
        let mut mm = seeded(1);
        assert_eq!(mm.join(SessionId(1)), None);
        assert!(mm.is_waiting(SessionId(1)));
        let p = mm.join(SessionId(2)).expect("a waiting user is there");
        assert_eq!((p.joiner, p.waiter), (SessionId(2), SessionId(1)));
        assert!(mm.is_empty(), "both members left the queue");
    }

    #[test]
    fn joining_twice_keeps_one_place_and_never_pairs_with_self() {
        let mut mm = seeded(2);
        assert_eq!(mm.join(SessionId(7)), None);
        assert_eq!(mm.join(SessionId(7)), None);
        assert_eq!(mm.len(), 1);
    }

    #[test]
    fn removal_keeps_the_index_consistent() {
        let mut mm = seeded(3);
        for id in 1..=5 {
            // Queue them without pairing by joining into an empty queue one by one is not
            // possible (the second would pair), so use the internal enqueue.
            mm.enqueue(SessionId(id));
        }
        assert!(mm.remove(SessionId(2)));
        assert!(!mm.remove(SessionId(2)), "removing twice is a no-op");
        assert!(mm.remove(SessionId(5)));
        for (i, id) in mm.waiting.iter().enumerate() {
            assert_eq!(mm.slot[id], i, "slot map agrees with the vector");
        }
        assert_eq!(mm.len(), 3);
    }

    #[test]
    fn same_seed_same_decisions() {
        let run = |seed| {
            let mut mm = seeded(seed);
            (0..100)
                .filter_map(|i| mm.join(SessionId(i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    /// With k users waiting, the joiner's partner is uniform over them: a chi-squared test
    /// over many independent trials (critical value for 9 degrees of freedom at p = 0.001 is
    /// 27.88, so a fair choice fails this about once in a thousand seeds; the seed is fixed).
    #[test]
    fn partner_choice_is_uniform() {
        const K: u64 = 10;
        const TRIALS: u64 = 20_000;
        let mut mm = seeded(2024);
        let mut counts = [0u64; K as usize];
        for _ in 0..TRIALS {
            for id in 0..K {
                mm.enqueue(SessionId(id));
            }
            let p = mm.join(SessionId(1000)).unwrap();
            counts[p.waiter.0 as usize] += 1;
            for id in 0..K {
                mm.remove(SessionId(id));
            }
        }
        let expected = TRIALS as f64 / K as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 27.88, "chi² = {chi2:.1}, counts {counts:?}");
    }

    #[test]
    fn roles_are_balanced_and_rooms_unique() {
        let mut mm = seeded(9);
        let mut offerers = 0;
        let mut rooms = std::collections::HashSet::new();
        for i in 0..2000 {
            mm.enqueue(SessionId(i * 2));
            let p = mm.join(SessionId(i * 2 + 1)).unwrap();
            offerers += (p.joiner_role == Role::Offerer) as u32;
            assert!(rooms.insert(p.room), "room ids never repeat");
        }
        assert!((850..1150).contains(&offerers), "{offerers} of 2000");
    }
}
