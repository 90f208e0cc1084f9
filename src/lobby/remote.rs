//! The shared queue's news in the lobby: pairings Redis made, other instances' messages
//! about our users (relays, `matched`, `left`, restarts, rejoins), and heartbeats.

use std::time::Instant;

use rand::RngExt;

use crate::ids::ClientKey;
use crate::ids::{SessionId, UserRef};
use crate::matchmaker::Pairing;
use crate::protocol::{LeftReason, Role, RoomId};
use crate::room::Event;
use crate::shared::SharedEvent;
use crate::shared::bus::BusMessage;

use super::ahead::Offers;
use super::backend::Backend;
use super::core::{Core, Online, RESUME_WAIT};
use super::rooms::Start;
use super::users::{Partner, Status};

/// What the two sides of a pairing the shared queue made have in common, and the early
/// offers they waited with.
#[derive(Debug)]
struct Shared {
    /// The interests both gave.
    common: Vec<String>,
    /// Whether both gave the same language.
    same_lang: bool,
    /// The early offers the two waited with.
    offers: Offers,
}

/// One side of a pairing the shared queue made: a user and the ticket it waited with.
#[derive(Clone, Copy, Debug)]
struct Side {
    user: UserRef,
    ticket: u64,
}

impl Core {
    pub(super) fn on_shared(&mut self, event: SharedEvent) {
        match event {
            SharedEvent::Paired {
                joiner,
                ticket,
                partner,
                partner_ticket,
                partner_client,
                common,
                same_lang,
                partner_offer,
                offer,
            } => {
                let offers = Offers {
                    joiner: offer,
                    waiter: partner_offer,
                };
                let partner = Side {
                    user: partner,
                    ticket: partner_ticket,
                };
                let shared = Shared {
                    common,
                    same_lang,
                    offers,
                };
                self.paired(joiner, ticket, partner, partner_client, shared);
            }
            SharedEvent::Bus(msg) => self.on_bus(msg),
            SharedEvent::Pool {
                online,
                modes,
                dead,
                forgotten,
            } => {
                let all = Online {
                    total: online,
                    modes,
                };
                self.pool_online = Some((all, self.local_online()));
                if forgotten || !dead.is_empty() {
                    let orphaned: Vec<SessionId> = self
                        .users
                        .iter()
                        .filter(|(_, u)| match u.status() {
                            Status::InRoom {
                                partner: Partner::There { user, .. },
                                ..
                            } => forgotten || dead.contains(&user.instance),
                            _ => false,
                        })
                        .map(|(id, _)| id)
                        .collect();
                    for id in orphaned {
                        self.partner_gone(id, false, LeftReason::Disconnected);
                    }
                }
            }
            SharedEvent::Resumed {
                user,
                room,
                other,
                other_client,
            } => self.resumed(user, room, other, other_client, true),
            SharedEvent::Report(report) => self.record(
                &report,
                "client banned after reports (made on another instance)",
            ),
            SharedEvent::Resync => {
                let now = self.now.at;
                if let Some(queue) = self.backend.shared() {
                    queue.rejoin_all(now);
                }
            }
        }
    }

    /// The shared queue paired our waiting `joiner` with `partner`, who is here or on
    /// another instance, each with the early offer it waited with, if any. A side that no
    /// longer waits under its ticket is not paired; the other goes back in the queue.
    fn paired(
        &mut self,
        joiner: SessionId,
        ticket: u64,
        partner: Side,
        partner_client: Option<ClientKey>,
        shared: Shared,
    ) {
        let Shared {
            common,
            same_lang,
            offers,
        } = shared;
        let now = self.now.at;
        let mode = self
            .users
            .get(joiner)
            .map(|u| u.want.mode)
            .unwrap_or_default();
        let Backend::Shared { queue, rng } = &mut self.backend else {
            return;
        };
        let room = RoomId(rng.random());
        let role = if rng.random() {
            Role::Offerer
        } else {
            Role::Answerer
        };
        let joiner_waits = queue.waits_with(joiner, ticket);
        if partner.user.instance == queue.me {
            let other = partner.user.session;
            match (joiner_waits, queue.waits_with(other, partner.ticket)) {
                (true, true) => {
                    queue.claim(joiner, ticket);
                    queue.claim(other, partner.ticket);
                    let pairing = Pairing {
                        room,
                        joiner,
                        joiner_role: role,
                        waiter: other,
                        mode,
                        common,
                        same_lang,
                    };
                    self.open_room(pairing, Some(offers));
                }
                // Whoever still waits goes back in the queue.
                (true, false) => queue.rejoin(joiner, now),
                (false, true) => queue.rejoin(other, now),
                (false, false) => {}
            }
            return;
        }
        if !joiner_waits {
            let msg = BusMessage::Requeue {
                to: partner.user.session,
                ticket: partner.ticket,
            };
            self.publish(partner.user.instance, msg);
            return;
        }
        queue.claim(joiner, ticket);
        let shared = Shared {
            common,
            same_lang,
            offers,
        };
        self.paired_across(joiner, partner, partner_client, (room, role), shared);
    }

    /// Our `joiner` (its wait claimed) and `partner` on another instance are in `room`, the
    /// joiner in the `role` drawn unless an early offer decides it: the partner's instance
    /// is told, and the joiner.
    fn paired_across(
        &mut self,
        joiner: SessionId,
        partner: Side,
        partner_client: Option<ClientKey>,
        (room, role): (RoomId, Role),
        shared: Shared,
    ) {
        let Shared {
            common,
            same_lang,
            offers,
        } = shared;
        let Some(queue) = self.backend.shared() else {
            return;
        };
        let from = queue.user(joiner);
        let client = self.users.get(joiner).and_then(|u| u.client);
        let (mine, theirs) = self.draw_proofs();
        let opening = offers.opening(role);
        let role = opening.joiner_role;
        let msg = BusMessage::Matched {
            to: partner.user.session,
            ticket: partner.ticket,
            room,
            role: role.other(),
            from,
            client,
            common: common.clone(),
            same_lang,
            proof: theirs,
            ahead: opening.waiter,
        };
        self.publish(partner.user.instance, msg);
        let partner = Partner::There {
            user: partner.user,
            client: partner_client,
        };
        let start = Start::New {
            role,
            common,
            same_lang,
            proof: mine,
            ahead: opening.joiner,
        };
        self.open_remote(joiner, room, start, partner);
    }

    /// Our `id` is in `room` with `partner` on another instance.
    fn open_remote(&mut self, id: SessionId, room: RoomId, start: Start, partner: Partner) {
        if !self.users.contains(id) {
            return;
        }
        self.count_match(&[id]);
        self.enter_room(id, room, partner);
        if let Some(peer) = self.peer_of(partner) {
            self.tell_matched(id, room, start, peer);
        }
    }

    /// Whether our `id` is in `room` with a partner on another instance.
    fn in_remote_room(&self, id: SessionId, room: RoomId) -> bool {
        matches!(
            self.users.status(id),
            Some(Status::InRoom { room: r, partner: Partner::There { .. } }) if r == room
        )
    }

    /// Another instance's message about one of our users.
    fn on_bus(&mut self, msg: BusMessage) {
        let now = self.now.at;
        let to = msg.to();
        match msg {
            BusMessage::Relay { room, text, .. } => {
                if self.in_remote_room(to, room) {
                    let text = Box::new(text);
                    self.deliver(to, Event::Relay { room, text });
                }
            }
            matched @ BusMessage::Matched { .. } => self.matched_from(matched),
            BusMessage::Left { room, reason, .. } => {
                if self.in_remote_room(to, room) {
                    self.partner_gone(to, true, reason);
                }
            }
            BusMessage::Requeue { ticket, .. } => {
                if let Some(queue) = self.backend.shared()
                    && queue.waits_with(to, ticket)
                {
                    queue.rejoin(to, now);
                }
            }
            BusMessage::Restarting { room, .. } => self.partner_restarting(to, room, now),
            BusMessage::Rejoined {
                room, from, client, ..
            } => self.resumed(to, room, from, client, false),
        }
    }

    /// Another instance paired its user `from` with our `to` (waiting with `ticket`).
    fn matched_from(&mut self, msg: BusMessage) {
        let BusMessage::Matched {
            to,
            ticket,
            room,
            role,
            from,
            client,
            common,
            same_lang,
            proof,
            ahead,
        } = msg
        else {
            return;
        };
        let Some(queue) = self.backend.shared() else {
            return;
        };
        if !queue.claim(to, ticket) {
            // Gone, left, or waiting again since: the stranger must look further.
            let msg = BusMessage::Left {
                to: from.session,
                room,
                reason: LeftReason::Disconnected,
            };
            self.publish(from.instance, msg);
            return;
        }
        let partner = Partner::There { user: from, client };
        if self.users.contains(to) {
            // The pairing was counted by the instance that made it.
            self.enter_room(to, room, partner);
            if let Some(user) = self.users.get(to) {
                let waited = self.now.at.saturating_duration_since(user.asked_at);
                crate::telemetry::metrics().waited(waited);
            }
            if let Some(peer) = self.peer_of(partner) {
                let start = Start::New {
                    role,
                    common,
                    same_lang,
                    proof,
                    ahead,
                };
                self.tell_matched(to, room, start, peer);
            }
        }
    }

    /// `to`'s partner's instance is restarting: the call goes on browser to browser; wait
    /// for the stranger to ask for the room again, wherever it reconnects.
    fn partner_restarting(&mut self, to: SessionId, room: RoomId, now: Instant) {
        let Some(Status::InRoom {
            room: r,
            partner: Partner::There { user: partner, .. },
        }) = self.users.status(to)
        else {
            return;
        };
        if r != room {
            return;
        }
        self.awaiting.push_back((now + RESUME_WAIT, to, partner));
        let proof = self.users.get(to).and_then(|u| u.proof());
        if let Some(queue) = self.backend.shared()
            && let Some(proof) = proof
        {
            queue.resume(to, room, proof, RESUME_WAIT);
        }
    }

    /// `id`'s session ended for a restart: a partner on another instance is told to expect
    /// it back, and the room is forgotten here without a `left`.
    pub(super) fn keep_remote_partner(&mut self, id: SessionId) {
        let Some(Status::InRoom {
            room,
            partner: Partner::There { user: partner, .. },
        }) = self.users.status(id)
        else {
            return;
        };
        self.users.set_status(id, Status::Idle);
        let msg = BusMessage::Restarting {
            to: partner.session,
            room,
        };
        self.publish(partner.instance, msg);
    }

    /// Users whose partner's instance restarted and who were not rejoined in time: the
    /// stranger is gone.
    pub(super) fn expire_awaiting(&mut self, now: Instant) {
        while let Some(&(at, id, partner)) = self.awaiting.front() {
            if at > now {
                break;
            }
            self.awaiting.pop_front();
            let still = matches!(
                self.users.status(id),
                Some(Status::InRoom { partner: Partner::There { user, .. }, .. }) if user == partner
            );
            if still {
                self.partner_gone(id, false, LeftReason::Disconnected);
            }
        }
    }
}
