//! The matchmaker's index sets: a set with O(1) insert, remove and uniform random pick, and
//! the bucket of one interest subset, which costs no allocation while it names one user.

use std::collections::HashMap;

use crate::ids::SessionId;

/// A set with O(1) insert, remove and uniform random pick.
#[derive(Debug, Default)]
pub(super) struct RandomSet {
    /// The members, in no particular order (a pick is an index into it).
    pub(super) items: Vec<SessionId>,
    /// Where each member sits in `items`.
    slot: HashMap<SessionId, usize>,
}

impl RandomSet {
    /// How many members it has.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether `id` is a member.
    #[cfg(test)]
    pub(super) fn contains(&self, id: SessionId) -> bool {
        self.slot.contains_key(&id)
    }

    pub(super) fn insert(&mut self, id: SessionId) {
        if !self.slot.contains_key(&id) {
            self.slot.insert(id, self.items.len());
            self.items.push(id);
        }
    }

    pub(super) fn remove(&mut self, id: SessionId) {
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
    pub(super) fn eligible(&mut self, excluded: &[SessionId]) -> usize {
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
pub(super) enum Bucket {
    One(SessionId),
    Many(Box<RandomSet>),
}

impl Bucket {
    /// Whether `id` is in the bucket.
    #[cfg(test)]
    pub(super) fn contains(&self, id: SessionId) -> bool {
        match self {
            Bucket::One(only) => *only == id,
            Bucket::Many(set) => set.contains(id),
        }
    }

    pub(super) fn insert(&mut self, id: SessionId) {
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
    pub(super) fn remove(&mut self, id: SessionId) -> bool {
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
    pub(super) fn eligible(&mut self, excluded: &[SessionId]) -> usize {
        match self {
            Bucket::One(only) => usize::from(!excluded.contains(only)),
            Bucket::Many(set) => set.eligible(excluded),
        }
    }

    pub(super) fn get(&self, i: usize) -> SessionId {
        match self {
            Bucket::One(only) => *only,
            Bucket::Many(set) => set.items[i],
        }
    }
}
