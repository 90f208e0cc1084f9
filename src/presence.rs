//! A session's own view of where its user is (idle, waiting, in a room) and the rules that
//! keep that view in step with the lobby's.
//!
//! The session answers its client at once from this view, and the lobby answers later; the
//! two can disagree for a moment (the lobby pairs a user who has just pressed Stop). A counter
//! settles it: every request the session sends carries the next number, every `matched` the
//! lobby sends carries the number of the latest request it had seen, and a `matched` from
//! before the latest request is ignored; the lobby handles that request by ending the room.
//! The lobby's property test drives this same type, so the rule is tested as it runs.

use crate::protocol::RoomId;
use crate::room::{Matched, Room};

/// Most relayed messages kept for a room the session has not been told of yet.
const EARLY_LIMIT: usize = 32;

/// Where the user is.
#[derive(Debug)]
pub(crate) enum Status {
    Idle,
    Waiting,
    InRoom(Room),
    /// Back after a server restart, waiting for the stranger of `RoomId` to come back too.
    Resuming(RoomId),
}

/// What the session must ask of the lobby after a client's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Find a partner (the user was idle).
    Join { seq: u64 },
    /// End the room and find a new partner.
    Next { seq: u64 },
    /// Leave the room or the queue.
    Leave { seq: u64 },
    /// Report the partner and leave the room.
    Report { seq: u64 },
    /// Rejoin a room after a server restart.
    Resume { seq: u64 },
}

/// The session's view.
#[derive(Debug)]
pub(crate) struct Presence {
    status: Status,
    /// Requests sent to the lobby so far.
    seq: u64,
    /// Relayed messages that arrived while waiting, for a room not yet announced. The lobby
    /// queues `matched` to both members one after the other; a fast partner can answer its
    /// own `matched` before ours is queued, and its first messages must not be lost. Only
    /// the partner of a room holds our queue with that room's id, so whatever is kept for
    /// the room we are then matched into came from that partner.
    early: Vec<(RoomId, String)>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            status: Status::Idle,
            seq: 0,
            early: Vec::new(),
        }
    }
}

impl Presence {
    pub(crate) fn status(&self) -> &Status {
        &self.status
    }

    /// While waiting: the number of the request the wait began with (an early offer is
    /// bound to it).
    pub(crate) fn wait(&self) -> Option<u64> {
        matches!(self.status, Status::Waiting).then_some(self.seq)
    }

    /// The room the user is in, if any.
    pub(crate) fn room(&self) -> Option<&Room> {
        match &self.status {
            Status::InRoom(room) => Some(room),
            _ => None,
        }
    }

    fn request(&mut self, make: fn(u64) -> Request, then: Status) -> Option<Request> {
        self.seq += 1;
        self.status = then;
        self.early.clear();
        Some(make(self.seq))
    }

    /// The client sent `join`: idle users start waiting; others stay as they are.
    pub(crate) fn join(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Join { seq }, Status::Waiting),
            // Rather a new stranger than waiting for the old one to come back.
            Status::Resuming(_) => self.request(|seq| Request::Next { seq }, Status::Waiting),
            Status::Waiting | Status::InRoom(_) => None,
        }
    }

    /// The client came back after a server restart and asks for its room: only from idle.
    pub(crate) fn resume(&mut self, room: RoomId) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Resume { seq }, Status::Resuming(room)),
            _ => None,
        }
    }

    /// The client sent `next`: leave the room if any and wait for someone new.
    pub(crate) fn skip(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Join { seq }, Status::Waiting),
            Status::Waiting => None,
            Status::InRoom(_) | Status::Resuming(_) => {
                self.request(|seq| Request::Next { seq }, Status::Waiting)
            }
        }
    }

    /// The client sent `leave`: back to idle.
    pub(crate) fn leave(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => None,
            Status::Waiting | Status::InRoom(_) | Status::Resuming(_) => {
                self.request(|seq| Request::Leave { seq }, Status::Idle)
            }
        }
    }

    /// The client reported the stranger in `room`: the room ends and the user is idle. A
    /// report for any other room (a stale one) is ignored.
    pub(crate) fn report(&mut self, room: RoomId) -> Option<Request> {
        if !self.in_room(room) {
            return None;
        }
        self.request(|seq| Request::Report { seq }, Status::Idle)
    }

    /// The stranger did not come back for the room the request numbered `seq` asked to
    /// resume. Returns whether that is still the latest request (the user is idle now and
    /// must be told the stranger is gone). Tagged by request, not by room: a `left` for the
    /// same room from before the restart must not end the wait.
    pub(crate) fn unresumed(&mut self, seq: u64) -> bool {
        if seq == self.seq && matches!(self.status, Status::Resuming(_)) {
            self.status = Status::Idle;
            true
        } else {
            false
        }
    }

    /// The lobby refused the request numbered `seq` (the user is banned). Returns whether
    /// that is still the latest request, so the user is idle again and must be told.
    pub(crate) fn refused(&mut self, seq: u64) -> bool {
        if seq == self.seq && matches!(self.status, Status::Waiting | Status::Resuming(_)) {
            self.status = Status::Idle;
            true
        } else {
            false
        }
    }

    /// The lobby paired the user. Returns the decision if it still stands (the user is
    /// waiting and has sent nothing since); the session then tells its client.
    pub(crate) fn matched(&mut self, m: Box<Matched>) -> Option<Box<Matched>> {
        let expected = match self.status {
            Status::Waiting => m.role.is_some(),
            Status::Resuming(room) => m.role.is_none() && room == m.room,
            Status::Idle | Status::InRoom(_) => false,
        };
        if m.seq != self.seq || !expected {
            return None;
        }
        self.status = Status::InRoom(Room {
            id: m.room,
            partner: m.partner.clone(),
            mode: m.mode,
        });
        Some(m)
    }

    /// The partner in `room` is reached through `partner` from now on (it came back after
    /// its server restarted).
    pub(crate) fn rerouted(&mut self, room: RoomId, partner: crate::room::Peer) {
        if let Status::InRoom(current) = &mut self.status
            && current.id == room
        {
            current.partner = partner;
        }
    }

    /// The partner ended `room`. Returns whether that is the user's room (and it is over).
    pub(crate) fn left(&mut self, room: RoomId) -> bool {
        if self.in_room(room) {
            self.status = Status::Idle;
            self.early.clear();
            true
        } else {
            false
        }
    }

    /// A relayed message for `room` that is not the user's room now. While waiting for a
    /// partner it may be the new partner's first words, ahead of our `matched`: kept (a few)
    /// until `matched` says which room is ours. Otherwise it is stale and dropped.
    pub(crate) fn early(&mut self, room: RoomId, text: String) {
        let waiting = matches!(self.status, Status::Waiting | Status::Resuming(_));
        if waiting && self.early.len() < EARLY_LIMIT {
            self.early.push((room, text));
        }
    }

    /// The messages kept for `room` (now the user's room), in order of arrival; the rest
    /// are dropped.
    pub(crate) fn take_early(&mut self, room: RoomId) -> Vec<String> {
        std::mem::take(&mut self.early)
            .into_iter()
            .filter(|(r, _)| *r == room)
            .map(|(_, text)| text)
            .collect()
    }

    /// Whether the user is in `room` now: relayed messages for any other room are dropped.
    pub(crate) fn in_room(&self, room: RoomId) -> bool {
        self.room().is_some_and(|r| r.id == room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::room::Peer;

    fn matched(seq: u64, room: RoomId) -> Box<Matched> {
        let (tx, _rx) = crate::mailbox::channel(1);
        Box::new(Matched {
            seq,
            room,
            role: Some(crate::protocol::Role::Answerer),
            mode: crate::protocol::Mode::Video,
            common: Vec::new(),
            same_lang: false,
            proof: None,
            partner: Peer::new(SessionId(2), tx),
            ahead: crate::protocol::Ahead::None,
        })
    }

    /// The partner's first messages can overtake our `matched`: they are kept and handed
    /// over once `matched` names their room; messages for any other room are not.
    #[test]
    fn early_messages_for_the_new_room_are_kept() {
        let mut p = Presence::default();
        assert!(matches!(p.join(), Some(Request::Join { seq: 1 })));
        p.early(RoomId(7), "offer".into());
        p.early(RoomId(9), "stale".into());
        assert!(p.matched(matched(1, RoomId(7))).is_some());
        let kept: Vec<_> = p
            .take_early(RoomId(7))
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(kept, ["offer"]);
        assert!(p.take_early(RoomId(9)).is_empty(), "the rest was dropped");
    }

    #[test]
    fn nothing_is_kept_while_idle_or_in_a_room_and_only_a_few_while_waiting() {
        let mut p = Presence::default();
        p.early(RoomId(7), "x".into());
        assert!(p.early.is_empty(), "idle: stale, dropped");
        p.join();
        for _ in 0..100 {
            p.early(RoomId(7), "x".into());
        }
        assert_eq!(p.early.len(), EARLY_LIMIT);
        p.leave();
        assert!(p.early.is_empty(), "a new request forgets them");
    }

    /// A `matched` from before the latest request is stale; so is one for a resume of
    /// another room.
    #[test]
    fn stale_decisions_are_ignored() {
        let mut p = Presence::default();
        p.join();
        p.leave();
        assert!(p.matched(matched(1, RoomId(1))).is_none());
        assert!(matches!(p.status(), Status::Idle));
        p.resume(RoomId(5));
        let mut resumed = matched(3, RoomId(6));
        resumed.role = None;
        assert!(p.matched(resumed).is_none());
    }
}
