//! Rooms that survive a server restart: a user back after one asks for its room, and the
//! call goes on once its stranger is back too (in this process, or wherever the stranger
//! reconnected, through the shared resume table).
//!
//! Knowing the room id is the proof of membership: it is 128 random bits that only the two
//! members were ever sent.

use std::time::Instant;

use crate::ids::{SessionId, UserRef};
use crate::moderation::ClientKey;
use crate::protocol::{LeftReason, RoomId};
use crate::room::Event;
use crate::shared::bus::BusMessage;

use super::backend::Backend;
use super::core::{Core, RESUME_WAIT};
use super::users::{Partner, Status};

impl Core {
    /// `id` (idle) is back after a restart and asks for `room`: if the other member is
    /// already back, the room opens again; otherwise `id` waits for it, for [`RESUME_WAIT`].
    pub(super) fn resume(&mut self, id: SessionId, room: RoomId) {
        let until = self.now.at + RESUME_WAIT;
        // With a shared queue the table of returning users is in Redis: the other member
        // may come back to another instance.
        if let Some(queue) = self.backend.shared() {
            queue.resume(id, room, RESUME_WAIT);
            self.wait_to_resume(id, room, until);
            return;
        }
        let other = self.resuming.get(&room).copied().filter(|other| {
            *other != id
                && matches!(self.users.status(*other), Some(Status::Resuming { room: r, .. }) if r == room)
        });
        match other {
            Some(other) => {
                self.resuming.remove(&room);
                self.relink_local(id, other, room);
            }
            None => {
                self.resuming.insert(room, id);
                self.wait_to_resume(id, room, until);
            }
        }
    }

    fn wait_to_resume(&mut self, id: SessionId, room: RoomId, until: Instant) {
        self.resume_deadlines.push_back((until, id));
        self.users.set_status(id, Status::Resuming { room, until });
    }

    /// `id` no longer waits to resume (it left, pressed Next, or is gone).
    pub(super) fn stop_resuming(&mut self, id: SessionId) {
        if let Some(Status::Resuming { room, .. }) = self.users.status(id) {
            self.users.set_status(id, Status::Idle);
            if self.resuming.get(&room) == Some(&id) {
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
        self.tell_matched(a, room, None, Vec::new(), peer_b);
        if b_was_in_room {
            let partner = Box::new(peer_a);
            self.deliver(b, Event::Rerouted { room, partner });
        } else {
            self.tell_matched(b, room, None, Vec::new(), peer_a);
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
            // Both are here: whoever is still waiting for the other takes the local path.
            if was_resuming
                && let Some(Status::InRoom { .. } | Status::Resuming { .. }) =
                    self.users.status(other.session)
            {
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
            self.tell_matched(user, room, None, Vec::new(), peer);
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
