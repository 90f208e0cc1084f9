//! The waiting queue and the pairing policy: who meets whom, in which room, in which role.
//!
//! Pure data structure, no I/O and no tasks: the [`lobby`](crate::lobby) actor owns one and
//! calls it with the current time. All randomness comes from the injected RNG, so a seeded RNG
//! makes every decision reproducible in tests.
//!
//! Policy, as Omegle's "common likes" worked:
//! - A user who gave interests is paired with a waiting user sharing at least one of them,
//!   chosen uniformly at random among those sharing the most.
//! - A user with no interests, or one who has waited [`Policy::fallback_after`] without such a
//!   partner, is "open": paired uniformly at random with any other open user.
//! - Two users who just parted are not paired again for [`Policy::cooldown`], unless they are
//!   the only two waiting and both have waited past the fallback.
//!
//! Cost per join does not depend on how many wait: every waiting user is indexed under each
//! subset of its (at most 8) interests, so finding those who share the most with a joiner is
//! at most 255 map look-ups, and each set picks a random member in O(1).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use crate::ids::SessionId;
use crate::protocol::{Role, RoomId};

/// The tunable parts of the policy.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How long a user with interests holds out for a partner who shares one.
    pub fallback_after: Duration,
    /// How long two users who parted are kept apart.
    pub cooldown: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fallback_after: Duration::from_secs(5),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// A pairing decision: two users, their new room, and who makes the offer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Pairing {
    pub room: RoomId,
    /// The user whose arrival (or fallback) made the pair.
    pub joiner: SessionId,
    pub joiner_role: Role,
    /// The user who was waiting.
    pub waiter: SessionId,
    /// Interests both gave, sorted.
    pub common: Vec<String>,
}

/// A set with O(1) insert, remove and uniform random pick.
#[derive(Debug, Default)]
struct RandomSet {
    items: Vec<SessionId>,
    /// Where each member sits in `items`.
    slot: HashMap<SessionId, usize>,
}

impl RandomSet {
    fn insert(&mut self, id: SessionId) {
        if !self.slot.contains_key(&id) {
            self.slot.insert(id, self.items.len());
            self.items.push(id);
        }
    }

    fn remove(&mut self, id: SessionId) {
        if let Some(at) = self.slot.remove(&id) {
            self.items.swap_remove(at);
            if let Some(moved) = self.items.get(at) {
                self.slot.insert(*moved, at);
            }
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.items.swap(a, b);
        self.slot.insert(self.items[a], a);
        self.slot.insert(self.items[b], b);
    }

    /// Moves the members of `excluded` to the end; returns how many members are left before
    /// them (the eligible ones, at indices `0..n`). O(|excluded|).
    fn eligible(&mut self, excluded: &[SessionId]) -> usize {
        let mut n = self.items.len();
        for id in excluded {
            if let Some(&at) = self.slot.get(id)
                && at < n
            {
                n -= 1;
                self.swap(at, n);
            }
        }
        n
    }
}

/// The waiting users indexed under one subset of interests. Most subsets name one user
/// (whoever gave exactly those tags), so that case takes no allocation of its own: a user
/// with 8 interests sits in 255 buckets.
#[derive(Debug)]
enum Bucket {
    One(SessionId),
    Many(Box<RandomSet>),
}

impl Bucket {
    fn insert(&mut self, id: SessionId) {
        match self {
            Bucket::One(only) if *only == id => {}
            Bucket::One(only) => {
                let mut set = RandomSet::default();
                set.insert(*only);
                set.insert(id);
                *self = Bucket::Many(Box::new(set));
            }
            Bucket::Many(set) => set.insert(id),
        }
    }

    /// Takes `id` out; returns whether the bucket is empty now.
    fn remove(&mut self, id: SessionId) -> bool {
        match self {
            Bucket::One(only) => *only == id,
            Bucket::Many(set) => {
                set.remove(id);
                if let [last] = set.items[..] {
                    *self = Bucket::One(last);
                }
                false
            }
        }
    }

    /// Like [`RandomSet::eligible`]: the eligible members are at `0..n`.
    fn eligible(&mut self, excluded: &[SessionId]) -> usize {
        match self {
            Bucket::One(only) => usize::from(!excluded.contains(only)),
            Bucket::Many(set) => set.eligible(excluded),
        }
    }

    fn get(&self, i: usize) -> SessionId {
        match self {
            Bucket::One(only) => *only,
            Bucket::Many(set) => set.items[i],
        }
    }
}

/// What the matchmaker knows of one waiting user.
#[derive(Debug)]
struct Waiter {
    /// Sorted, de-duplicated interests.
    tags: Vec<String>,
    /// When the user started waiting.
    since: Instant,
    /// Whether the user will meet anyone (no interests, or waited past the fallback).
    open: bool,
}

/// The queue of waiting users.
#[derive(Debug)]
pub struct Matchmaker<R> {
    policy: Policy,
    /// Every waiting user.
    waiting: HashMap<SessionId, Waiter>,
    /// Waiting users who will meet anyone.
    open: RandomSet,
    /// Waiting users by each non-empty subset of their interests, keyed by a hash of the
    /// subset's sorted tags under `keys` (64 bits with a per-process random key: a collision,
    /// which would only make two users seem to share a tag, is not something a client can
    /// aim for).
    by_subset: HashMap<u64, Bucket>,
    /// The random hash key of `by_subset`.
    keys: RandomState,
    /// When waiting users fall back to meeting anyone, earliest first (the wait is the same
    /// for everyone, so arrival order is deadline order). Entries of users who left are
    /// skipped when they come up.
    deadlines: VecDeque<(Instant, SessionId)>,
    /// Recent partners of each user, with when the cooldown ends.
    recent: HashMap<SessionId, Vec<(SessionId, Instant)>>,
    /// Cooldowns in the order they end, to forget them in O(1) amortized.
    recent_order: VecDeque<(Instant, SessionId, SessionId)>,
    /// Source of every random choice. Production seeds it from the OS; tests with a constant.
    rng: R,
}

/// The index keys of every subset of `tags` (sorted), by mask: `keys[mask]`.
fn subset_keys(state: &RandomState, tags: &[String]) -> Vec<u64> {
    let tag_hashes: Vec<u64> = tags.iter().map(|t| state.hash_one(t)).collect();
    (0..1u32 << tags.len())
        .map(|mask| {
            let mut h = state.build_hasher();
            for (i, tag) in tag_hashes.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    h.write_u64(*tag);
                }
            }
            h.finish()
        })
        .collect()
}

impl<R: Rng> Matchmaker<R> {
    /// An empty queue with `policy`, drawing its random choices from `rng`.
    pub fn new(rng: R, policy: Policy) -> Self {
        Matchmaker {
            policy,
            waiting: HashMap::new(),
            open: RandomSet::default(),
            by_subset: HashMap::new(),
            keys: RandomState::new(),
            deadlines: VecDeque::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            rng,
        }
    }

    /// `id` wants a partner, with these interests: pair it, or queue it.
    ///
    /// Returns the pairing when one was made; the partner has left the queue. A user already
    /// waiting stays waiting (and is never paired with itself).
    pub fn join(&mut self, id: SessionId, tags: &[String], now: Instant) -> Option<Pairing> {
        if self.waiting.contains_key(&id) {
            return None;
        }
        self.forget_cooldowns(now);
        let mut tags = tags.to_vec();
        tags.sort();
        tags.dedup();
        tags.truncate(crate::protocol::MAX_INTERESTS);
        let excluded = self.excluded(id);
        let partner = if tags.is_empty() {
            self.pick_open(&excluded)
        } else {
            self.pick_by_interest(&tags, &excluded)
        };
        if let Some(waiter) = partner {
            return Some(self.pair(id, tags, waiter));
        }
        let open = tags.is_empty() || self.policy.fallback_after.is_zero();
        self.enqueue(id, tags, now, open);
        None
    }

    /// Lets users whose fallback time has come meet anyone; returns the pairings that made.
    pub fn expire(&mut self, now: Instant) -> Vec<Pairing> {
        self.forget_cooldowns(now);
        let mut pairings = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(waiter) = self.waiting.get_mut(&id) else {
                continue; // left the queue since
            };
            if waiter.since + self.policy.fallback_after != deadline {
                continue; // left and came back; its new deadline is further on
            }
            if !waiter.open {
                waiter.open = true;
                self.open.insert(id);
            }
            let mut excluded = self.excluded(id);
            excluded.push(id);
            let partner = self
                .pick_open(&excluded)
                .or_else(|| self.last_two_exception(id, now));
            if let Some(partner) = partner {
                let tags = self.take(id).map(|w| w.tags).unwrap_or_default();
                pairings.push(self.pair(id, tags, partner));
            }
        }
        pairings
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(at, _)| *at)
    }

    /// Remembers that `a` and `b` just parted, so they are not paired again at once.
    pub fn parted(&mut self, a: SessionId, b: SessionId, now: Instant) {
        if self.policy.cooldown.is_zero() {
            return;
        }
        let until = now + self.policy.cooldown;
        self.recent.entry(a).or_default().push((b, until));
        self.recent.entry(b).or_default().push((a, until));
        self.recent_order.push_back((until, a, b));
    }

    /// Forgets everything about `id` (it disconnected).
    pub fn forget(&mut self, id: SessionId) {
        self.remove(id);
        self.recent.remove(&id);
    }

    /// Takes `id` out of the queue; returns whether it was waiting.
    pub fn remove(&mut self, id: SessionId) -> bool {
        self.take(id).is_some()
    }

    /// Whether `id` is in the queue.
    pub fn is_waiting(&self, id: SessionId) -> bool {
        self.waiting.contains_key(&id)
    }

    /// How many users wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn enqueue(&mut self, id: SessionId, tags: Vec<String>, now: Instant, open: bool) {
        for key in subset_keys(&self.keys, &tags).into_iter().skip(1) {
            match self.by_subset.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut bucket) => {
                    bucket.get_mut().insert(id)
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Bucket::One(id));
                }
            }
        }
        if open {
            self.open.insert(id);
        }
        self.deadlines
            .push_back((now + self.policy.fallback_after, id));
        self.waiting.insert(
            id,
            Waiter {
                tags,
                since: now,
                open,
            },
        );
    }

    fn take(&mut self, id: SessionId) -> Option<Waiter> {
        let waiter = self.waiting.remove(&id)?;
        for key in subset_keys(&self.keys, &waiter.tags).into_iter().skip(1) {
            if let Some(bucket) = self.by_subset.get_mut(&key)
                && bucket.remove(id)
            {
                self.by_subset.remove(&key);
            }
        }
        self.open.remove(id);
        Some(waiter)
    }

    /// `id`'s partners still in their cooldown.
    fn excluded(&self, id: SessionId) -> Vec<SessionId> {
        self.recent
            .get(&id)
            .map(|r| r.iter().map(|(p, _)| *p).collect())
            .unwrap_or_default()
    }

    fn forget_cooldowns(&mut self, now: Instant) {
        while let Some(&(until, a, b)) = self.recent_order.front() {
            if until > now {
                break;
            }
            self.recent_order.pop_front();
            for (me, other) in [(a, b), (b, a)] {
                if let Some(list) = self.recent.get_mut(&me) {
                    list.retain(|(p, u)| !(*p == other && *u <= now));
                    if list.is_empty() {
                        self.recent.remove(&me);
                    }
                }
            }
        }
    }

    /// A random open user not in `excluded`.
    fn pick_open(&mut self, excluded: &[SessionId]) -> Option<SessionId> {
        let n = self.open.eligible(excluded);
        (n > 0).then(|| self.open.items[self.rng.random_range(0..n)])
    }

    /// A random waiting user among those sharing the most of `tags`, not in `excluded`.
    fn pick_by_interest(&mut self, tags: &[String], excluded: &[SessionId]) -> Option<SessionId> {
        let all = (1u32 << tags.len()) - 1;
        let keys = subset_keys(&self.keys, tags);
        for shared in (1..=tags.len() as u32).rev() {
            // A user sharing exactly `shared` tags sits in exactly one subset of that size
            // (the intersection), so these sets are disjoint and their union is uniform.
            let mut sets: Vec<(u64, usize)> = Vec::new();
            let mut total = 0;
            for mask in (1..=all).filter(|m| m.count_ones() == shared) {
                let key = keys[mask as usize];
                if let Some(bucket) = self.by_subset.get_mut(&key) {
                    let n = bucket.eligible(excluded);
                    if n > 0 {
                        total += n;
                        sets.push((key, n));
                    }
                }
            }
            if total == 0 {
                continue;
            }
            let mut r = self.rng.random_range(0..total);
            for (key, n) in sets {
                if r < n {
                    return Some(self.by_subset[&key].get(r));
                }
                r -= n;
            }
        }
        None
    }

    /// The one exception to the cooldown: `id` and its recent partner are the only two
    /// waiting and both have waited past the fallback.
    fn last_two_exception(&self, id: SessionId, now: Instant) -> Option<SessionId> {
        if self.waiting.len() != 2 {
            return None;
        }
        let (&other, waiter) = self.waiting.iter().find(|(w, _)| **w != id)?;
        let waited = |w: &Waiter| now.duration_since(w.since) >= self.policy.fallback_after;
        (waited(waiter) && waited(&self.waiting[&id])).then_some(other)
    }

    fn pair(&mut self, joiner: SessionId, tags: Vec<String>, waiter: SessionId) -> Pairing {
        let theirs = self.take(waiter).map(|w| w.tags).unwrap_or_default();
        let common = tags.into_iter().filter(|t| theirs.contains(t)).collect();
        Pairing {
            room: RoomId(self.rng.random()),
            joiner,
            joiner_role: if self.rng.random() {
                Role::Offerer
            } else {
                Role::Answerer
            },
            waiter,
            common,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn seeded(seed: u64) -> Matchmaker<StdRng> {
        Matchmaker::new(StdRng::seed_from_u64(seed), Policy::default())
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn s(n: u64) -> SessionId {
        SessionId(n)
    }

    #[test]
    fn first_user_waits_second_is_paired_with_them() {
        let mut mm = seeded(1);
        let now = Instant::now();
        assert_eq!(mm.join(s(1), &[], now), None);
        assert!(mm.is_waiting(s(1)));
        let p = mm.join(s(2), &[], now).expect("a waiting user is there");
        assert_eq!((p.joiner, p.waiter), (s(2), s(1)));
        assert!(mm.is_empty(), "both members left the queue");
    }

    #[test]
    fn joining_twice_keeps_one_place_and_never_pairs_with_self() {
        let mut mm = seeded(2);
        let now = Instant::now();
        assert_eq!(mm.join(s(7), &[], now), None);
        assert_eq!(mm.join(s(7), &[], now), None);
        assert_eq!(mm.len(), 1);
        assert!(mm.expire(now + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn same_seed_same_decisions() {
        let run = |seed| {
            let mut mm = seeded(seed);
            let now = Instant::now();
            (0..100)
                .filter_map(|i| mm.join(s(i), &[], now))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    /// Chi-squared over `counts` against a uniform expectation; the critical values are for
    /// p = 0.001, so a fair choice fails about once in a thousand seeds (the seeds are fixed).
    fn assert_uniform(counts: &[u64], critical: f64) {
        let trials: u64 = counts.iter().sum();
        let expected = trials as f64 / counts.len() as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < critical, "chi² = {chi2:.1}, counts {counts:?}");
    }

    /// With ten users waiting, the joiner's partner is uniform over them.
    #[test]
    fn partner_choice_is_uniform() {
        let mut mm = seeded(2024);
        let now = Instant::now();
        let mut counts = [0u64; 10];
        for _ in 0..20_000 {
            for id in 0..10 {
                mm.enqueue(s(id), vec![], now, true);
            }
            let p = mm.join(s(1000), &[], now).unwrap();
            counts[p.waiter.0 as usize] += 1;
            for id in 0..10 {
                mm.remove(s(id));
            }
        }
        assert_uniform(&counts, 27.88);
    }

    /// Those sharing the most interests win, uniformly among them; those sharing fewer, and
    /// those sharing none, never do while a better one waits.
    #[test]
    fn interests_pick_uniformly_among_those_sharing_the_most() {
        let mut mm = seeded(77);
        let now = Instant::now();
        let mut counts = [0u64; 3];
        for _ in 0..9_000 {
            // Queued directly: joining one by one would pair them with each other.
            for id in 0..3 {
                mm.enqueue(s(id), tags(&["chess", "go", "jazz"]), now, false);
            }
            mm.enqueue(s(10), tags(&["chess"]), now, false);
            mm.enqueue(s(11), tags(&["jazz", "tea"]), now, false);
            mm.enqueue(s(12), vec![], now, true);
            let p = mm.join(s(100), &tags(&["jazz", "chess"]), now).unwrap();
            assert!(
                p.waiter.0 < 3,
                "someone sharing two tags exists: got {:?}",
                p.waiter
            );
            assert_eq!(p.common, tags(&["chess", "jazz"]));
            counts[p.waiter.0 as usize] += 1;
            for id in [0, 1, 2, 10, 11, 12] {
                mm.remove(s(id));
            }
        }
        assert_uniform(&counts, 13.82);
    }

    /// No one shares an interest: both wait, and after the fallback wait they meet.
    #[test]
    fn without_a_shared_interest_users_fall_back_to_anyone() {
        let mut mm = seeded(5);
        let t0 = Instant::now();
        assert_eq!(mm.join(s(1), &tags(&["chess"]), t0), None);
        assert_eq!(
            mm.join(s(2), &tags(&["jazz"]), t0 + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            mm.join(s(3), &[], t0 + Duration::from_secs(2)),
            None,
            "1 and 2 hold out"
        );
        assert!(mm.expire(t0 + Duration::from_millis(4999)).is_empty());
        let p = mm.expire(t0 + Duration::from_secs(5));
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].joiner,
            s(1),
            "the first to fall back meets an open user"
        );
        assert_eq!(p[0].waiter, s(3));
        assert!(p[0].common.is_empty());
        let p = mm.expire(t0 + Duration::from_secs(60));
        assert!(p.is_empty(), "2 is alone now");
        assert!(mm.is_waiting(s(2)));
        assert_eq!(mm.next_deadline(), None, "every deadline was handled");
    }

    #[test]
    fn a_newcomer_without_interests_meets_only_open_users() {
        let mut mm = seeded(6);
        let t0 = Instant::now();
        mm.join(s(1), &tags(&["chess"]), t0);
        assert_eq!(mm.join(s(2), &[], t0), None, "1 still hopes for chess");
        let p = mm.expire(t0 + Duration::from_secs(5));
        assert_eq!((p[0].joiner, p[0].waiter), (s(1), s(2)));
    }

    /// Two who just parted are not paired again while someone else can be.
    #[test]
    fn parted_users_are_kept_apart_for_the_cooldown() {
        let mut mm = seeded(8);
        let t0 = Instant::now();
        mm.parted(s(1), s(2), t0);
        mm.join(s(1), &[], t0);
        assert_eq!(mm.join(s(2), &[], t0), None, "not again at once");
        let p = mm.join(s(3), &[], t0).unwrap();
        assert!(p.waiter == s(1) || p.waiter == s(2));
        // After the cooldown they may meet.
        let mut mm = seeded(8);
        mm.parted(s(1), s(2), t0);
        let later = t0 + Duration::from_secs(30);
        mm.join(s(1), &[], later);
        assert!(mm.join(s(2), &[], later).is_some());
    }

    /// The exception: if they are the only two waiting, past the fallback, they meet again.
    #[test]
    fn the_only_two_waiting_meet_again_after_the_fallback() {
        let mut mm = seeded(9);
        let t0 = Instant::now();
        mm.parted(s(1), s(2), t0);
        mm.join(s(1), &[], t0);
        mm.join(s(2), &[], t0 + Duration::from_secs(1));
        assert!(
            mm.expire(t0 + Duration::from_secs(5)).is_empty(),
            "2 waited only 4 s"
        );
        let p = mm.expire(t0 + Duration::from_secs(6));
        assert_eq!(p.len(), 1, "both waited past the fallback");
        // With a third user around, the cooldown holds.
        let mut mm = seeded(9);
        mm.parted(s(1), s(2), t0);
        mm.join(s(1), &[], t0);
        mm.join(s(2), &[], t0);
        mm.join(s(3), &tags(&["chess"]), t0);
        let p = mm.expire(t0 + Duration::from_secs(5));
        assert_eq!(p.len(), 1, "3 falls back and meets 1 or 2");
        assert_eq!(p[0].joiner, s(3));
        assert_eq!(mm.len(), 1);
    }

    #[test]
    fn removal_cleans_every_index() {
        let mut mm = seeded(3);
        let now = Instant::now();
        mm.join(s(1), &tags(&["a", "b", "c"]), now);
        assert_eq!(mm.by_subset.len(), 7);
        assert!(mm.remove(s(1)));
        assert!(!mm.remove(s(1)), "removing twice is a no-op");
        assert!(mm.by_subset.is_empty() && mm.open.items.is_empty());
    }

    #[test]
    fn roles_are_balanced_and_rooms_unique() {
        let mut mm = seeded(9);
        let now = Instant::now();
        let mut offerers = 0;
        let mut rooms = std::collections::HashSet::new();
        for i in 0..2000 {
            mm.join(s(i * 2), &[], now);
            let p = mm.join(s(i * 2 + 1), &[], now).unwrap();
            offerers += (p.joiner_role == Role::Offerer) as u32;
            assert!(rooms.insert(p.room), "room ids never repeat");
        }
        assert!((850..1150).contains(&offerers), "{offerers} of 2000");
    }
}
