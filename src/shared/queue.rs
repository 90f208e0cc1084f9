//! The lobby's half of the shared queue: which local users wait in it (under which ticket),
//! their fallback deadlines, and the operations Redis must run, handed out in order.
//!
//! No I/O: the [lobby core](crate::lobby) calls it with the current time and collects
//! [`Op`]s from [`take_ops`](SharedQueue::take_ops); the lobby's shell passes them to the
//! engine's task ([`engine`](super::engine)), which runs them on Redis and answers with
//! [`SharedEvent`](super::SharedEvent)s.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::ClientKey;
use crate::ids::{InstanceId, SessionId, UserRef};
use crate::matchmaker::{Policy, Want};
use crate::protocol::{MemberProof, RoomId};

use super::Bus;

/// A queue operation for the engine, in the order the lobby decided it.
#[derive(Debug)]
pub(crate) enum Op {
    Join {
        user: SessionId,
        ticket: u64,
        /// Pool, language and interests (normalised).
        want: Want,
        /// Whether it meets anyone of its pool at once.
        open: bool,
        client: Option<ClientKey>,
    },
    Fallback {
        user: SessionId,
        ticket: u64,
    },
    Withdraw {
        user: SessionId,
        ticket: u64,
    },
    /// Keep `sdp` as the early offer of `user`'s wait `ticket`, if it still waits with it.
    Offer {
        user: SessionId,
        ticket: u64,
        sdp: String,
    },
    Parted {
        a: UserRef,
        b: UserRef,
    },
    Resume {
        user: SessionId,
        room: RoomId,
        client: Option<ClientKey>,
        /// The hash of the user's own secret (how its partner knows it) and of its
        /// partner's: the table pairs two entries whose hashes cross. Redis never sees a
        /// secret.
        me: u128,
        partner: u128,
        /// How long the table keeps the user's entry for the other member to find.
        wait: Duration,
    },
}

/// One local waiting user as the shared queue's local half knows it.
#[derive(Debug)]
struct Wait {
    /// Names this wait in the shared queue; a stale pairing (for an earlier wait) carries
    /// another ticket and is refused.
    ticket: u64,
    /// What it waits for (pool, language, interests), kept to enter it again under a new
    /// ticket.
    want: Want,
}

/// The local half of the shared queue.
#[derive(Debug)]
pub(crate) struct SharedQueue {
    /// This instance: the first half of every local user's global name.
    pub me: InstanceId,
    /// The route to users on other instances, handed to sessions in their rooms (the core
    /// itself never sends on it).
    pub bus: Bus,
    /// Fallback wait and cool-down, the same as the in-process queue's.
    policy: Policy,
    /// Local users in the shared queue.
    waiting: HashMap<SessionId, Wait>,
    /// Who each connected local user is for reports and bans, stored with its wait so a
    /// partner on another instance can report it.
    clients: HashMap<SessionId, ClientKey>,
    /// When each local waiter falls back to meeting anyone, earliest first.
    deadlines: VecDeque<(Instant, SessionId, u64)>,
    /// The last ticket handed out; each wait gets the next.
    next_ticket: u64,
    /// Operations decided but not yet taken by the shell.
    ops: Vec<Op>,
}

impl SharedQueue {
    /// The local half of instance `me`'s queue, reaching other instances through `bus`.
    pub(crate) fn new(me: InstanceId, bus: Bus, policy: Policy) -> SharedQueue {
        SharedQueue {
            me,
            bus,
            policy,
            waiting: HashMap::new(),
            clients: HashMap::new(),
            deadlines: VecDeque::new(),
            next_ticket: 0,
            ops: Vec::new(),
        }
    }

    /// The operations decided since the last call, in order.
    pub(crate) fn take_ops(&mut self) -> impl Iterator<Item = Op> + '_ {
        self.ops.drain(..)
    }

    /// `id` wants a partner as `want` says: it waits under a new ticket, and the engine
    /// answers with a pairing later, if any.
    pub(crate) fn join(&mut self, id: SessionId, want: &Want, now: Instant) {
        let want = want.normalized();
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let open = want.open_at_once() || self.policy.fallback_after.is_zero();
        if !open {
            self.deadlines
                .push_back((now + self.policy.fallback_after, id, ticket));
        }
        let client = self.clients.get(&id).copied();
        self.ops.push(Op::Join {
            user: id,
            ticket,
            want: want.clone(),
            open,
            client,
        });
        self.waiting.insert(id, Wait { ticket, want });
    }

    /// Stores `sdp` as the early offer of `id`'s current wait, if it waits: with the wait in
    /// Redis, where the script that pairs it hands it over (and which drops it with the
    /// wait).
    pub(crate) fn offer(&mut self, id: SessionId, sdp: String) {
        if let Some(wait) = self.waiting.get(&id) {
            let ticket = wait.ticket;
            self.ops.push(Op::Offer {
                user: id,
                ticket,
                sdp,
            });
        }
    }

    /// Asks the engine to let waiters whose fallback time has come meet anyone.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(at, user, ticket)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            if self.waits_with(user, ticket) {
                self.ops.push(Op::Fallback { user, ticket });
            }
        }
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(at, _, _)| *at)
    }

    /// `a` (local) and `b` just parted: keep them apart for the cool-down.
    pub(crate) fn parted(&mut self, a: SessionId, b: UserRef) {
        if !self.policy.cooldown.is_zero() {
            let a = self.user(a);
            self.ops.push(Op::Parted { a, b });
        }
    }

    /// Forgets everything about `id` (it disconnected).
    pub(crate) fn forget(&mut self, id: SessionId) {
        self.remove(id);
        self.clients.remove(&id);
    }

    /// Takes `id` out of the queue; whether it was waiting.
    pub(crate) fn remove(&mut self, id: SessionId) -> bool {
        match self.waiting.remove(&id) {
            Some(wait) => {
                self.ops.push(Op::Withdraw {
                    user: id,
                    ticket: wait.ticket,
                });
                true
            }
            None => false,
        }
    }

    /// Whether `id` waits.
    #[cfg(test)]
    pub(crate) fn is_waiting(&self, id: SessionId) -> bool {
        self.waiting.contains_key(&id)
    }

    /// How many local users wait.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Takes `user` out of the local waiting set if it waits under `ticket`.
    pub(crate) fn claim(&mut self, user: SessionId, ticket: u64) -> bool {
        let claimed = self.waits_with(user, ticket);
        if claimed {
            self.waiting.remove(&user);
        }
        claimed
    }

    /// Whether `user` waits under `ticket`.
    pub(crate) fn waits_with(&self, user: SessionId, ticket: u64) -> bool {
        self.waiting.get(&user).is_some_and(|w| w.ticket == ticket)
    }

    /// Enters `user` (waiting here) into the shared queue again, under a new ticket: after a
    /// partner fell through, or after Redis lost the queue.
    pub(crate) fn rejoin(&mut self, user: SessionId, now: Instant) {
        if let Some(wait) = self.waiting.remove(&user) {
            self.join(user, &wait.want, now);
        }
    }

    /// Enters every local waiter again (Redis may have lost them).
    pub(crate) fn rejoin_all(&mut self, now: Instant) {
        let waiters: Vec<SessionId> = self.waiting.keys().copied().collect();
        for id in waiters {
            self.rejoin(id, now);
        }
    }

    /// Asks the shared resume table for `room` on behalf of `user` (back after a restart,
    /// or whose partner's instance is restarting), with its proof of membership; the entry
    /// lasts `wait`.
    pub(crate) fn resume(
        &mut self,
        user: SessionId,
        room: RoomId,
        proof: MemberProof,
        wait: Duration,
    ) {
        let client = self.clients.get(&user).copied();
        self.ops.push(Op::Resume {
            user,
            room,
            client,
            me: proof.me(),
            partner: proof.partner,
            wait,
        });
    }

    /// Remembers who `user` is for reports and bans.
    pub(crate) fn register(&mut self, user: SessionId, client: Option<ClientKey>) {
        if let Some(client) = client {
            self.clients.insert(user, client);
        }
    }

    /// The global name of a local user.
    pub(crate) fn user(&self, session: SessionId) -> UserRef {
        UserRef {
            instance: self.me,
            session,
        }
    }
}
