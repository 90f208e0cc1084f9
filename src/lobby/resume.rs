//! Rooms that survive a server restart: a user back after one asks for its room, and the
//! call goes on once its stranger is back too (in this process, or wherever the stranger
//! reconnected, through the shared resume table).
//!
//! Knowing the room id is not enough: each member shows the [`MemberProof`] its `matched`
//! gave, and two users are put back together only if their proofs pair (each holds the hash
//! of the other's secret). A third party who knows or guesses the room id never becomes the
//! stranger, and cannot keep the members apart either.

use std::time::Instant;

use crate::ids::{SessionId, UserRef};
use crate::moderation::ClientKey;
use crate::protocol::{LeftReason, MemberProof, RoomId};
use crate::room::Event;
use crate::shared::bus::BusMessage;

use super::backend::Backend;
use super::core::{Core, RESUME_WAIT};
use super::rooms::Start;
use super::users::{Partner, Status};

/// The most users who may wait for one room at once: its two members, and a few who only
/// know its id (they never get in, and cannot crowd the members out).
const PER_ROOM: usize = 4;

impl Core {
    /// `id` (idle) is back after a restart and asks for `room`, showing `proof`: if its
    /// stranger is already back, the room opens again; otherwise `id` waits for it, for
    /// [`RESUME_WAIT`]. A banned user is refused, as a join would be.
    pub(super) fn resume(&mut self, id: SessionId, room: RoomId, proof: MemberProof) {
        if let Some(until_ms) = self.banned_until(id) {
            let seq = self.users.get(id).map_or(0, |u| u.seq);
            self.deliver(id, Event::Refused { seq, until_ms });
            return;
        }
        let old = self.same_member(id, room, proof);
        self.users.set_proof(id, Some(proof));
        if let Some(old) = old {
            self.take_place(old, id, room);
            return;
        }
        let until = self.now.at + RESUME_WAIT;
        // With a shared queue the table of returning users is in Redis: the other member
        // may come back to another instance.
        if let Some(queue) = self.backend.shared() {
            queue.resume(id, room, proof, RESUME_WAIT);
            self.wait_to_resume(id, room, until);
            return;
        }
        let waiting = self.resuming.entry(room).or_default();
        if let Some(at) = waiting.iter().position(|(_, p)| p.pairs_with(&proof)) {
            let (other, _) = waiting.remove(at);
            if waiting.is_empty() {
                self.resuming.remove(&room);
            }
            self.relink_local(id, other, room);
        } else if waiting.len() < PER_ROOM {
            waiting.push((id, proof));
            self.wait_to_resume(id, room, until);
        } else {
            let seq = self.users.get(id).map_or(0, |u| u.seq);
            self.deliver(id, Event::Unresumed { seq, room });
        }
    }

    /// The session here that is in `room` as the member `proof` belongs to, if `id` is that
    /// member on a new connection (its old one was lost to the network, and the server has
    /// not noticed yet).
    fn same_member(&self, id: SessionId, room: RoomId, proof: MemberProof) -> Option<SessionId> {
        let member = self.users.holder(proof).filter(|member| *member != id)?;
        let in_room =
            matches!(self.users.status(member), Some(Status::InRoom { room: r, .. }) if r == room);
        in_room.then_some(member)
    }

    /// `id` takes `old`'s place in `room`: `old` is quietly out of the room (it is told
    /// `left`, the stranger nothing), and the stranger is reached through `id` from now on;
    /// both are told the room works (the stranger as a reroute: its call never stopped).
    fn take_place(&mut self, old: SessionId, id: SessionId, room: RoomId) {
        let Some(Status::InRoom { partner, .. }) = self.users.status(old) else {
            return;
        };
        self.users.set_status(old, Status::Idle);
        self.users.set_proof(old, None);
        let reason = LeftReason::Left;
        self.deliver(old, Event::Left { room, reason });
        match partner {
            Partner::Here(other) => self.relink_local(id, other, room),
            Partner::There { user, client } => {
                self.enter_room(id, room, Partner::There { user, client });
                let (Some(peer), Backend::Shared { queue, .. }) =
                    (self.peer_of(partner), &self.backend)
                else {
                    return;
                };
                let from = queue.user(id);
                self.tell_matched(id, room, Start::Resumed, peer);
                let client = self.users.get(id).and_then(|u| u.client);
                let msg = BusMessage::Rejoined {
                    to: user.session,
                    room,
                    from,
                    client,
                };
                self.publish(user.instance, msg);
            }
        }
    }

    fn wait_to_resume(&mut self, id: SessionId, room: RoomId, until: Instant) {
        self.resume_deadlines.push_back((until, id));
        self.users.set_status(id, Status::Resuming { room, until });
    }

    /// `id` no longer waits to resume (it left, pressed Next, or is gone).
    pub(super) fn stop_resuming(&mut self, id: SessionId) {
        let Some(Status::Resuming { room, .. }) = self.users.status(id) else {
            return;
        };
        self.users.set_status(id, Status::Idle);
        if let Some(waiting) = self.resuming.get_mut(&room) {
            waiting.retain(|(other, _)| *other != id);
            if waiting.is_empty() {
                self.resuming.remove(&room);
            }
        }
    }

    /// Users whose stranger did not come back in time are told the stranger is gone.
    pub(super) fn expire_resumes(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.resume_deadlines.front() {
            if at > now {
                break;
            }
            self.resume_deadlines.pop_front();
            let Some(Status::Resuming { room, until }) = self.users.status(id) else {
                continue;
            };
            if until != at {
                continue; // a later attempt has its own deadline
            }
            self.stop_resuming(id);
            let seq = self.users.get(id).map_or(0, |u| u.seq);
            self.deliver(id, Event::Unresumed { seq, room });
        }
    }

    /// Both members of `room` are here again: `a` has just asked for it, `b` is resuming or
    /// waiting for its partner to come back. Each is told (`b` even if `a` cannot be, so it
    /// is not left resuming; dropping `a` then tells `b` the room is over).
    pub(super) fn relink_local(&mut self, a: SessionId, b: SessionId, room: RoomId) {
        let b_was_in_room = matches!(self.users.status(b), Some(Status::InRoom { .. }));
        self.enter_room(a, room, Partner::Here(b));
        self.enter_room(b, room, Partner::Here(a));
        let (Some(peer_a), Some(peer_b)) = (
            self.peer_of(Partner::Here(a)),
            self.peer_of(Partner::Here(b)),
        ) else {
            return;
        };
        self.tell_matched(a, room, Start::Resumed, peer_b);
        if b_was_in_room {
            let partner = Box::new(peer_a);
            self.deliver(b, Event::Rerouted { room, partner });
        } else {
            self.tell_matched(b, room, Start::Resumed, peer_a);
        }
    }

    /// `user` and `other` are the two members of `room`, back together after a restart.
    /// `user` is back from a restart (resuming), or still here waiting for its partner to
    /// come back. `announce`: we learnt it from the shared table, so `other`'s instance
    /// must be told (it is not, when its own `rejoined` is what told us).
    pub(super) fn resumed(
        &mut self,
        user: SessionId,
        room: RoomId,
        other: UserRef,
        other_client: Option<ClientKey>,
        announce: bool,
    ) {
        let Backend::Shared { queue, .. } = &self.backend else {
            return;
        };
        let me = queue.user(user);
        let status = self.users.status(user);
        let still_there = match status {
            Some(Status::Resuming { room: r, .. }) => r == room,
            Some(Status::InRoom {
                room: r,
                partner: Partner::There { .. },
            }) => r == room,
            _ => false,
        };
        if !still_there {
            if other.instance != me.instance {
                let msg = BusMessage::Left {
                    to: other.session,
                    room,
                    reason: LeftReason::Disconnected,
                };
                self.publish(other.instance, msg);
            }
            return;
        }
        let was_resuming = matches!(status, Some(Status::Resuming { .. }));
        if other.instance == me.instance {
            // Both are here: whoever is still waiting for the other (for this room, not
            // since gone on to another) takes the local path.
            let other_waits = matches!(
                self.users.status(other.session),
                Some(Status::InRoom { room: r, .. } | Status::Resuming { room: r, .. }) if r == room
            );
            if was_resuming && other_waits {
                self.relink_local(user, other.session, room);
            }
            return;
        }
        let partner = Partner::There {
            user: other,
            client: other_client,
        };
        self.enter_room(user, room, partner);
        let Some(peer) = self.peer_of(partner) else {
            return;
        };
        if was_resuming {
            self.tell_matched(user, room, Start::Resumed, peer);
        } else {
            // This member never left: its partner is now `other`, wherever that is.
            let partner = Box::new(peer);
            self.deliver(user, Event::Rerouted { room, partner });
        }
        if announce {
            // Tell the other side who we are now (it asked the table first, or is the
            // member who stayed).
            let client = self.users.get(user).and_then(|u| u.client);
            let msg = BusMessage::Rejoined {
                to: other.session,
                room,
                from: me,
                client,
            };
            self.publish(other.instance, msg);
        }
    }
}
