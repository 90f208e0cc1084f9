//! The waiting queue and the pairing policy: who meets whom, in which room, in which role.
//!
//! Pure data structure, no I/O and no tasks: the [`lobby`](crate::lobby) actor owns one and
//! calls it with the current time. All randomness comes from the injected RNG, so a seeded RNG
//! makes every decision reproducible in tests.
//!
//! Policy, as Omegle's "common likes" and its language matching worked:
//! - Users wait in one pool per [`Mode`]: video users meet only video users, text users only
//!   text users. Everything below holds within a pool.
//! - A user who gave interests is paired with a waiting user of the same language sharing at
//!   least one of them, chosen uniformly at random among those sharing the most.
//! - A user who gave a language and no interests is paired with a random waiting user of the
//!   same language who will meet anyone of that language.
//! - A user who gave neither is "open" at once; and a user who has waited
//!   [`Policy::fallback_after`] is open too, and then meets, uniformly at random, an open
//!   user of its language if one waits, else any open user. So: most shared interests in
//!   the same language, then the same language, then (after the fallback time) anyone.
//!   A user without a language is treated as speaking a language of its own, "none"; with
//!   no interests either, it has no preference and is open at once, as before languages.
//! - Two users who just parted are not paired again for [`Policy::cooldown`], unless they are
//!   the only two waiting in their pool and both have waited past the fallback.
//!
//! Cost per join does not depend on how many wait: every waiting user is indexed under each
//! subset of its (at most 8) interests, keyed with its mode and language, so finding those
//! who share the most with a joiner is at most 255 map look-ups; the sets of a language and
//! of a pool's open users are one look-up each; and each set picks a random member in O(1).

mod sets;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use crate::ids::SessionId;
use crate::protocol::{Lang, Mode, Role, RoomId};
use sets::{Bucket, RandomSet};

/// The tunable parts of the policy.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How long a user with interests or a language holds out for a partner who shares them.
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

/// What a user looks for: its pool, and what it would like to share with the stranger.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Want {
    /// The pool: a user meets only users of the same mode.
    pub mode: Mode,
    /// The language it prefers its stranger to speak, if it gave one.
    pub lang: Option<Lang>,
    /// Its interests (sorted and de-duplicated when queued).
    pub tags: Vec<String>,
}

impl Want {
    /// A video user with these interests and no language: what a client of before modes
    /// and languages asks for.
    pub fn interests(tags: &[String]) -> Want {
        Want {
            tags: tags.to_vec(),
            ..Want::default()
        }
    }

    /// Sorted, de-duplicated, at most [`MAX_INTERESTS`](crate::protocol::MAX_INTERESTS)
    /// interests.
    pub fn normalized(&self) -> Want {
        let mut tags = self.tags.clone();
        tags.sort();
        tags.dedup();
        tags.truncate(crate::protocol::MAX_INTERESTS);
        Want {
            mode: self.mode,
            lang: self.lang,
            tags,
        }
    }

    /// Whether, before its fallback, this user already meets anyone of its pool: it gave
    /// nothing to prefer.
    pub fn open_at_once(&self) -> bool {
        self.lang.is_none() && self.tags.is_empty()
    }

    /// Whether the user meets anyone of its language: at once with no interests, or once
    /// `open` (after its fallback).
    pub fn meets_its_language(&self, open: bool) -> bool {
        self.lang.is_some() && (self.tags.is_empty() || open)
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
    /// The pool both were in.
    pub mode: Mode,
    /// Interests both gave, sorted.
    pub common: Vec<String>,
    /// Whether both gave the same language.
    pub same_lang: bool,
}

/// What the matchmaker knows of one waiting user.
#[derive(Debug)]
struct Waiter {
    /// Its pool, language and sorted, de-duplicated interests.
    want: Want,
    /// When the user started waiting.
    since: Instant,
    /// Whether the user will meet anyone of its pool (it gave no preference, or waited past
    /// the fallback).
    open: bool,
}

/// The queue of waiting users.
#[derive(Debug)]
pub struct Matchmaker<R> {
    policy: Policy,
    /// Every waiting user.
    waiting: HashMap<SessionId, Waiter>,
    /// How many wait in each pool, by [`Mode::index`] (for the last-two exception).
    pool_len: [usize; 2],
    /// Waiting users who will meet anyone of their pool, by pool.
    open: HashMap<Mode, RandomSet>,
    /// Waiting users who will meet anyone of their pool and language, by both.
    by_lang: HashMap<(Mode, Lang), RandomSet>,
    /// Waiting users by each non-empty subset of their interests, keyed by a hash of their
    /// mode, language and the subset's sorted tags under `keys` (64 bits with a
    /// per-process random key: a collision, which would only make two users seem to share
    /// a tag, is not something a client can aim for).
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

/// The index keys of every subset of `want`'s tags (sorted), by mask: `keys[mask]`. Each
/// key also holds the mode and the language, so users of another pool or language never
/// share a bucket.
fn subset_keys(state: &RandomState, want: &Want) -> Vec<u64> {
    let tag_hashes: Vec<u64> = want.tags.iter().map(|t| state.hash_one(t)).collect();
    let lang = state.hash_one(want.lang);
    (0..1u32 << want.tags.len())
        .map(|mask| {
            let mut h = state.build_hasher();
            h.write_u8(want.mode as u8);
            h.write_u64(lang);
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
            pool_len: [0; 2],
            open: Mode::ALL.map(|m| (m, RandomSet::default())).into(),
            by_lang: HashMap::new(),
            by_subset: HashMap::new(),
            keys: RandomState::new(),
            deadlines: VecDeque::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            rng,
        }
    }

    /// `id` wants a partner as `want` says: pair it, or queue it.
    ///
    /// Returns the pairing when one was made; the partner has left the queue. A user already
    /// waiting stays waiting (and is never paired with itself).
    pub fn join(&mut self, id: SessionId, want: &Want, now: Instant) -> Option<Pairing> {
        if self.waiting.contains_key(&id) {
            return None;
        }
        self.forget_cooldowns(now);
        let want = want.normalized();
        let open = want.open_at_once() || self.policy.fallback_after.is_zero();
        let excluded = self.excluded(id);
        if let Some(waiter) = self.find(&want, open, &excluded) {
            return Some(self.pair(id, want, waiter));
        }
        self.enqueue(id, want, now, open);
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
            let Some(waiter) = self.waiting.get(&id) else {
                continue; // left the queue since
            };
            if waiter.since + self.policy.fallback_after != deadline {
                continue; // left and came back; its new deadline is further on
            }
            self.open_up(id);
            let want = self.waiting[&id].want.clone();
            let mut excluded = self.excluded(id);
            excluded.push(id);
            // Whoever shares interests in its language would have been paired already.
            let partner = self
                .find_open(&want, &excluded)
                .or_else(|| self.last_two_exception(id, now));
            if let Some(partner) = partner {
                let want = self.take(id).map(|w| w.want).unwrap_or_default();
                pairings.push(self.pair(id, want, partner));
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

    /// How many users wait in `mode`'s pool.
    pub fn len_in(&self, mode: Mode) -> usize {
        self.pool_len[mode.index()]
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// A partner for a joiner who wants `want` (and is `open`, or not yet), not in
    /// `excluded`: with interests, one of its language sharing the most of them (its
    /// fallback, even a zero one, comes with [`expire`](Self::expire)); without, anyone of its
    /// language who meets anyone of it, and if it is open, then anyone open in its pool.
    fn find(&mut self, want: &Want, open: bool, excluded: &[SessionId]) -> Option<SessionId> {
        if !want.tags.is_empty() {
            return self.pick_by_interest(want, excluded);
        }
        if open {
            return self.find_open(want, excluded);
        }
        match want.lang {
            Some(lang) if want.meets_its_language(false) => {
                self.pick_in_language(want.mode, lang, excluded)
            }
            _ => None,
        }
    }

    /// A partner for an open user: someone of its language who meets anyone of it, else
    /// anyone open in its pool.
    fn find_open(&mut self, want: &Want, excluded: &[SessionId]) -> Option<SessionId> {
        want.lang
            .and_then(|lang| self.pick_in_language(want.mode, lang, excluded))
            .or_else(|| pick(self.open.get_mut(&want.mode)?, excluded, &mut self.rng))
    }

    /// `id` (waiting) has waited its fallback time: it meets anyone now.
    fn open_up(&mut self, id: SessionId) {
        let Some(waiter) = self.waiting.get_mut(&id) else {
            return;
        };
        if waiter.open {
            return;
        }
        waiter.open = true;
        let mode = waiter.want.mode;
        if let Some(lang) = waiter.want.lang {
            self.by_lang.entry((mode, lang)).or_default().insert(id);
        }
        self.pool_open(mode).insert(id);
    }

    /// The open users of `mode`'s pool.
    fn pool_open(&mut self, mode: Mode) -> &mut RandomSet {
        self.open.entry(mode).or_default()
    }

    fn enqueue(&mut self, id: SessionId, want: Want, now: Instant, open: bool) {
        for key in subset_keys(&self.keys, &want).into_iter().skip(1) {
            match self.by_subset.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut bucket) => {
                    bucket.get_mut().insert(id)
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Bucket::One(id));
                }
            }
        }
        if let Some(lang) = want.lang
            && want.meets_its_language(open)
        {
            self.by_lang
                .entry((want.mode, lang))
                .or_default()
                .insert(id);
        }
        if open {
            self.pool_open(want.mode).insert(id);
        }
        self.pool_len[want.mode.index()] += 1;
        self.deadlines
            .push_back((now + self.policy.fallback_after, id));
        self.waiting.insert(
            id,
            Waiter {
                want,
                since: now,
                open,
            },
        );
    }

    fn take(&mut self, id: SessionId) -> Option<Waiter> {
        let waiter = self.waiting.remove(&id)?;
        for key in subset_keys(&self.keys, &waiter.want).into_iter().skip(1) {
            if let Some(bucket) = self.by_subset.get_mut(&key)
                && bucket.remove(id)
            {
                self.by_subset.remove(&key);
            }
        }
        let mode = waiter.want.mode;
        if let Some(lang) = waiter.want.lang
            && let Some(set) = self.by_lang.get_mut(&(mode, lang))
        {
            set.remove(id);
            if set.len() == 0 {
                self.by_lang.remove(&(mode, lang));
            }
        }
        self.pool_open(mode).remove(id);
        self.pool_len[mode.index()] -= 1;
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

    /// A random waiting user of `mode` and `lang` who meets anyone of that language.
    fn pick_in_language(
        &mut self,
        mode: Mode,
        lang: Lang,
        excluded: &[SessionId],
    ) -> Option<SessionId> {
        let set = self.by_lang.get_mut(&(mode, lang))?;
        pick(set, excluded, &mut self.rng)
    }

    /// A random waiting user of `want`'s pool and language among those sharing the most of
    /// its tags, not in `excluded`.
    fn pick_by_interest(&mut self, want: &Want, excluded: &[SessionId]) -> Option<SessionId> {
        let tags = &want.tags;
        let all = (1u32 << tags.len()) - 1;
        let keys = subset_keys(&self.keys, want);
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
    /// waiting in their pool and both have waited past the fallback (so both are open).
    fn last_two_exception(&self, id: SessionId, now: Instant) -> Option<SessionId> {
        let mode = self.waiting.get(&id)?.want.mode;
        let open = self.open.get(&mode)?;
        if self.pool_len[mode.index()] != 2 || open.len() != 2 {
            return None;
        }
        let other = *open.items.iter().find(|w| **w != id)?;
        let waited =
            |w: SessionId| now.duration_since(self.waiting[&w].since) >= self.policy.fallback_after;
        (waited(id) && waited(other)).then_some(other)
    }

    fn pair(&mut self, joiner: SessionId, want: Want, waiter: SessionId) -> Pairing {
        let theirs = self.take(waiter).map(|w| w.want).unwrap_or_default();
        debug_assert_eq!(want.mode, theirs.mode, "pools never mix");
        let same_lang = want.lang.is_some() && want.lang == theirs.lang;
        let common = want
            .tags
            .into_iter()
            .filter(|t| theirs.tags.contains(t))
            .collect();
        Pairing {
            room: RoomId(self.rng.random()),
            joiner,
            joiner_role: if self.rng.random() {
                Role::Offerer
            } else {
                Role::Answerer
            },
            waiter,
            mode: want.mode,
            common,
            same_lang,
        }
    }
}

/// A random member of `set` not in `excluded`.
fn pick(set: &mut RandomSet, excluded: &[SessionId], rng: &mut impl Rng) -> Option<SessionId> {
    let n = set.eligible(excluded);
    (n > 0).then(|| set.items[rng.random_range(0..n)])
}
