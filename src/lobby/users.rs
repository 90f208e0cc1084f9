//! The lobby's registry of connected users: where each one's events go, what it last asked
//! for, and where it is (idle, waiting, in a room, resuming), with the room count and the
//! early offers and the count in each mode kept in step by the one method that changes where
//! a user is.

use std::collections::HashMap;
use std::time::Instant;

use crate::ids::ClientKey;
use crate::ids::{SessionId, UserRef};
use crate::matchmaker::Want;
use crate::protocol::{MemberProof, Mode, ModeCounts, RoomId};
use crate::room::Peer;

/// Who a user's partner in a room is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Partner {
    /// A session of this instance.
    Here(SessionId),
    /// A user connected to another instance, and who it is for reports and bans.
    There {
        user: UserRef,
        client: Option<ClientKey>,
    },
}

/// Where a user is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Idle,
    Waiting,
    InRoom {
        room: RoomId,
        partner: Partner,
    },
    /// Back after a restart, waiting (until the deadline) for the other member of `room`.
    Resuming {
        room: RoomId,
        until: Instant,
    },
}

/// One connected user as the lobby knows it.
#[derive(Debug)]
pub(crate) struct User {
    /// Where this user's events go (handed out in `matched`, never sent on by the core).
    pub(crate) peer: Peer,
    /// The counter of the user's latest command, echoed in `Matched` so the session can tell
    /// a decision it has since overridden.
    pub(crate) seq: u64,
    /// What the last join asked for (pool, language, interests), kept for `next`.
    pub(crate) want: Want,
    /// When the user last asked for a partner, for the time-to-match histogram.
    pub(crate) asked_at: Instant,
    /// Who this is for reports and bans (a salted hash of the IP), if known.
    pub(crate) client: Option<ClientKey>,
    /// Private: the proof of membership of the user's current (or last) room, which the
    /// lobby shows the resume table on the user's behalf when its partner's instance
    /// restarts; changed through [`Users::set_proof`], which keeps the index by secret.
    /// Boxed: only members of a room have one, and inline it would add 48 bytes to every
    /// idle user's entry (times the map's spare capacity).
    proof: Option<Box<MemberProof>>,
    /// Private: changed only through [`Users::set_status`], which keeps the room count.
    status: Status,
    /// Private: the mode this user is counted in (waiting, in a room or resuming one), as of
    /// its last status change: what the count takes off again when the status changes,
    /// even if `want` has changed since (it fits in the padding after `status`).
    counted: Option<Mode>,
}

impl User {
    /// A user who has just connected: idle.
    pub(crate) fn new(peer: Peer, client: Option<ClientKey>, now: Instant) -> User {
        User {
            peer,
            seq: 0,
            want: Want::default(),
            asked_at: now,
            client,
            proof: None,
            status: Status::Idle,
            counted: None,
        }
    }

    pub(crate) fn status(&self) -> Status {
        self.status
    }

    pub(crate) fn proof(&self) -> Option<MemberProof> {
        self.proof.as_deref().copied()
    }
}

/// Every connected user, keyed by session.
#[derive(Debug, Default)]
pub(crate) struct Users {
    /// The users themselves.
    map: HashMap<SessionId, User>,
    /// Users in a room with a partner here (two per room).
    with_here: usize,
    /// Users in a room with a partner on another instance (one per room, here).
    with_there: usize,
    /// Who holds each proof's secret, so a member back on a new connection finds its old
    /// one in O(1).
    by_secret: HashMap<u128, SessionId>,
    /// The early offers of waiting users who sent one (in-process queue only; the shared
    /// queue keeps them in Redis), dropped the moment their user stops waiting: an idle or
    /// talking user has none, and pays nothing for the feature.
    offers: HashMap<SessionId, String>,
    /// Users waiting for, in, or resuming a chat of each mode: what the online count says
    /// beside its total, kept here because counting the map on every publish would cost
    /// in proportion to everyone connected.
    by_mode: ModeCounts,
}

impl Users {
    pub(crate) fn insert(&mut self, id: SessionId, mut user: User) {
        self.count(user.status, 1);
        user.counted = self.count_mode(user.status, user.want.mode, None);
        if let Some(old) = self.map.insert(id, user) {
            self.count(old.status, -1);
            self.count_mode(Status::Idle, Mode::Video, old.counted);
        }
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<&User> {
        self.map.get(&id)
    }

    /// The user's fields but its status (see [`set_status`](Self::set_status)).
    pub(crate) fn get_mut(&mut self, id: SessionId) -> Option<&mut User> {
        self.map.get_mut(&id)
    }

    pub(crate) fn status(&self, id: SessionId) -> Option<Status> {
        self.map.get(&id).map(|u| u.status)
    }

    /// Moves `id` to `status`; the room count follows.
    pub(crate) fn set_status(&mut self, id: SessionId, status: Status) {
        let Some(user) = self.map.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut user.status, status);
        let (mode, counted) = (user.want.mode, user.counted);
        self.count(old, -1);
        self.count(status, 1);
        let counted = self.count_mode(status, mode, counted);
        if let Some(user) = self.map.get_mut(&id) {
            user.counted = counted;
        }
        if status != Status::Waiting {
            // An early offer belongs to one wait and never outlives it.
            self.offers.remove(&id);
        }
    }

    /// Keeps `sdp` as `id`'s early offer (the latest one wins), if `id` is waiting.
    pub(crate) fn set_offer(&mut self, id: SessionId, sdp: String) {
        if self.status(id) == Some(Status::Waiting) {
            self.offers.insert(id, sdp);
        }
    }

    /// Takes `id`'s early offer out, if it has one.
    pub(crate) fn take_offer(&mut self, id: SessionId) -> Option<String> {
        self.offers.remove(&id)
    }

    /// How many early offers are held, and whether each belongs to a waiting user (for the
    /// tests' invariants).
    #[cfg(test)]
    pub(crate) fn offers_held_by_waiters(&self) -> (usize, bool) {
        let all_wait = self
            .offers
            .keys()
            .all(|id| self.status(*id) == Some(Status::Waiting));
        (self.offers.len(), all_wait)
    }

    pub(crate) fn remove(&mut self, id: SessionId) -> Option<User> {
        self.set_proof(id, None);
        self.offers.remove(&id);
        let user = self.map.remove(&id)?;
        self.count(user.status, -1);
        self.count_mode(Status::Idle, Mode::Video, user.counted);
        Some(user)
    }

    /// Gives `id` the proof of its room (or none).
    pub(crate) fn set_proof(&mut self, id: SessionId, proof: Option<MemberProof>) {
        let Some(user) = self.map.get_mut(&id) else {
            return;
        };
        if let Some(old) = std::mem::replace(&mut user.proof, proof.map(Box::new))
            && self.by_secret.get(&old.secret) == Some(&id)
        {
            self.by_secret.remove(&old.secret);
        }
        if let Some(new) = proof {
            self.by_secret.insert(new.secret, id);
        }
    }

    /// The user that holds `proof` (its secret, and the same partner hash), if any.
    pub(crate) fn holder(&self, proof: MemberProof) -> Option<SessionId> {
        let id = *self.by_secret.get(&proof.secret)?;
        (self.map.get(&id)?.proof() == Some(proof)).then_some(id)
    }

    pub(crate) fn contains(&self, id: SessionId) -> bool {
        self.map.contains_key(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SessionId, &User)> {
        self.map.iter().map(|(id, user)| (*id, user))
    }

    /// Rooms that have a member here.
    pub(crate) fn rooms(&self) -> usize {
        self.with_here / 2 + self.with_there
    }

    /// Users waiting for, in, or resuming a chat of each mode.
    pub(crate) fn in_modes(&self) -> ModeCounts {
        self.by_mode
    }

    /// Takes a user counted in `counted` off that mode's count, and counts it in `mode` if
    /// `status` is not idle; the mode it is now counted in.
    fn count_mode(&mut self, status: Status, mode: Mode, counted: Option<Mode>) -> Option<Mode> {
        if let Some(old) = counted {
            let n = &mut self.by_mode.0[old.index()];
            *n = n.checked_sub(1).expect("mode counts follow statuses");
        }
        if status == Status::Idle {
            return None;
        }
        self.by_mode.0[mode.index()] += 1;
        Some(mode)
    }

    fn count(&mut self, status: Status, by: isize) {
        let counter = match status {
            Status::InRoom {
                partner: Partner::Here(_),
                ..
            } => &mut self.with_here,
            Status::InRoom {
                partner: Partner::There { .. },
                ..
            } => &mut self.with_there,
            _ => return,
        };
        *counter = counter
            .checked_add_signed(by)
            .expect("counts follow statuses");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connected user has an entry, so its size is part of the idle cost: the mode it
    /// is counted in must not make it larger (it fits in the padding after the status).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn counting_the_mode_costs_an_idle_user_nothing() {
        assert_eq!(std::mem::size_of::<User>(), 176);
    }
}
