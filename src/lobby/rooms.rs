//! Pairing and rooms: putting a user in the queue or in a room, ending rooms, and the one
//! way every event reaches a session.
//!
//! A room opens through [`Core::enter_room`] (each member's status) and
//! [`Core::tell_matched`] (each member's `matched`), and ends through [`Core::end_room`]
//! (ended here) or [`Core::partner_gone`] (ended by a partner elsewhere); the room count
//! follows the statuses ([`Users::rooms`](super::users::Users::rooms)).

use crate::ids::SessionId;
use crate::matchmaker::Pairing;
use crate::protocol::Ahead;
use crate::protocol::{LeftReason, MemberProof, Role, RoomId};
use crate::room::{Event, Matched, Peer};
use crate::shared::bus::BusMessage;
use crate::telemetry;

use rand::RngExt;

use super::ahead::Offers;
use super::backend::Backend;
use super::core::{Core, Output};
use super::users::{Partner, Status};

/// How a member's call starts: a new one, or the same one after a restart.
pub(super) enum Start {
    /// A new call, in which the member plays `role`, with interests in `common` (and the
    /// language too if `same_lang`) and the proof it shows to resume the room.
    New {
        role: Role,
        common: Vec<String>,
        same_lang: bool,
        proof: MemberProof,
        /// What the member is told of an early offer.
        ahead: Ahead,
    },
    /// The call it was in goes on (the browsers keep their roles and proofs).
    Resumed,
}

impl Core {
    /// Queues `event` for `id`, if it is connected.
    pub(super) fn deliver(&mut self, id: SessionId, event: Event) {
        if let Some(user) = self.users.get(id) {
            let to = user.peer.clone();
            self.out.push_back(Output::Deliver { to, event });
        }
    }

    /// Tells `id` it is in `room` now, reaching its partner through `partner`.
    pub(super) fn tell_matched(
        &mut self,
        id: SessionId,
        room: RoomId,
        start: Start,
        partner: Peer,
    ) {
        let (role, common, same_lang, proof, ahead) = match start {
            Start::New {
                role,
                common,
                same_lang,
                proof,
                ahead,
            } => {
                self.users.set_proof(id, Some(proof));
                (Some(role), common, same_lang, Some(proof), ahead)
            }
            Start::Resumed => (None, Vec::new(), false, None, Ahead::None),
        };
        let Some(user) = self.users.get(id) else {
            return;
        };
        let matched = Matched {
            seq: user.seq,
            room,
            role,
            // A pairing is made within the pool of the user's last join, which is kept until
            // its next one; a resumed room is of the mode the user resumed it in.
            mode: user.want.mode,
            common,
            same_lang,
            proof,
            partner,
            ahead,
        };
        self.deliver(id, Event::Matched(Box::new(matched)));
    }

    /// The proofs of membership of a new room's two members.
    pub(super) fn draw_proofs(&mut self) -> (MemberProof, MemberProof) {
        MemberProof::pair(self.secrets.random(), self.secrets.random())
    }

    /// Puts `id` in `room` with `partner`.
    pub(super) fn enter_room(&mut self, id: SessionId, room: RoomId, partner: Partner) {
        self.users.set_status(id, Status::InRoom { room, partner });
    }

    /// Counts a new pairing, and how long `id` waited for it.
    pub(super) fn count_match(&mut self, waited: &[SessionId]) {
        self.matches += 1;
        let metrics = telemetry::metrics();
        metrics.matches.increment(1);
        for id in waited {
            if let Some(user) = self.users.get(*id) {
                metrics.waited(self.now.at.saturating_duration_since(user.asked_at));
            }
        }
    }

    /// The handle that reaches `partner`'s session: its queue here, or the bus.
    pub(super) fn peer_of(&self, partner: Partner) -> Option<Peer> {
        match (partner, &self.backend) {
            (Partner::Here(id), _) => self.users.get(id).map(|u| u.peer.clone()),
            (Partner::There { user, .. }, Backend::Shared { queue, .. }) => {
                Some(Peer::remote(user, queue.bus.clone()))
            }
            (Partner::There { .. }, Backend::Local(_)) => None,
        }
    }

    /// `id` (idle) wants a partner: pair it at random with a waiting user, or queue it;
    /// unless it is banned, then it is told so and stays idle.
    pub(super) fn pair_or_queue(&mut self, id: SessionId) {
        let now = self.now;
        let Some(user) = self.users.get_mut(id) else {
            return;
        };
        user.asked_at = now.at;
        if let Some(until_ms) = self.banned_until(id) {
            let seq = self.users.get(id).map_or(0, |u| u.seq);
            self.deliver(id, Event::Refused { seq, until_ms });
            return;
        }
        self.seek(id);
    }

    /// Enters `id` into the queue: paired at once if the queue can, otherwise waiting.
    fn seek(&mut self, id: SessionId) {
        let Some(user) = self.users.get(id) else {
            return;
        };
        match self.backend.join(id, &user.want, self.now.at) {
            Some(pairing) => self.open_room(pairing, None),
            None => self.users.set_status(id, Status::Waiting),
        }
    }

    /// Whether `id`'s session has ended, though its `Gone` has not arrived yet.
    fn has_closed(&self, id: SessionId) -> bool {
        self.users.get(id).is_none_or(|u| u.peer.is_closed())
    }

    /// Opens the room of a pairing made here: both members are told. A member whose session
    /// has just ended is dropped instead, and the other goes back to the queue. `offers`:
    /// the members' early offers as the shared queue gave them; `None` takes them from
    /// where the in-process queue keeps them.
    pub(super) fn open_room(&mut self, p: Pairing, offers: Option<Offers>) {
        let members = [(p.joiner, p.waiter), (p.waiter, p.joiner)];
        if members.iter().any(|(id, _)| self.has_closed(*id)) {
            for (id, _) in members {
                if self.has_closed(id) {
                    self.drop_user(id);
                } else {
                    // Still the same wait: an early offer it has stays with it.
                    self.seek(id);
                }
            }
            return;
        }
        let offers = offers.unwrap_or_else(|| self.take_offers(p.joiner, p.waiter));
        let opening = offers.opening(p.joiner_role);
        self.count_match(&[p.joiner, p.waiter]);
        for (me, other) in members {
            self.enter_room(me, p.room, Partner::Here(other));
        }
        let (joiner_proof, waiter_proof) = self.draw_proofs();
        let mut aheads = [opening.joiner, opening.waiter].into_iter();
        for (me, other) in members {
            let (role, proof) = if me == p.joiner {
                (opening.joiner_role, joiner_proof)
            } else {
                (opening.joiner_role.other(), waiter_proof)
            };
            let start = Start::New {
                role,
                common: p.common.clone(),
                same_lang: p.same_lang,
                proof,
                ahead: aheads.next().unwrap_or_default(),
            };
            if let Some(partner) = self.peer_of(Partner::Here(other)) {
                self.tell_matched(me, p.room, start, partner);
            }
        }
    }

    /// Ends `id`'s room if it has one: both become idle and the partner is told `reason`.
    pub(super) fn end_room(&mut self, id: SessionId, reason: LeftReason) {
        let Some(Status::InRoom { room, partner }) = self.users.status(id) else {
            return;
        };
        self.backend.parted(id, partner, self.now.at);
        self.users.set_status(id, Status::Idle);
        match partner {
            Partner::Here(other) => {
                if self.users.status(other).is_some() {
                    self.users.set_status(other, Status::Idle);
                    self.deliver(other, Event::Left { room, reason });
                }
            }
            Partner::There { user, .. } => {
                let msg = BusMessage::Left {
                    to: user.session,
                    room,
                    reason,
                };
                self.publish(user.instance, msg);
            }
        }
    }

    /// `id`'s partner on another instance ended the room (or its instance died): `id` is
    /// idle and told `reason`. `parted`: whether the two keep the cool-down (not with a
    /// dead instance).
    pub(super) fn partner_gone(&mut self, id: SessionId, parted: bool, reason: LeftReason) {
        let Some(Status::InRoom { room, partner }) = self.users.status(id) else {
            return;
        };
        self.users.set_status(id, Status::Idle);
        self.deliver(id, Event::Left { room, reason });
        if parted {
            self.backend.parted(id, partner, self.now.at);
        }
    }

    /// Sends `msg` to another instance.
    pub(super) fn publish(&mut self, instance: crate::ids::InstanceId, msg: BusMessage) {
        self.out.push_back(Output::Publish { instance, msg });
    }
}
