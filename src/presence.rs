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

/// Where the user is.
#[derive(Debug)]
pub enum Status {
    Idle,
    Waiting,
    InRoom(Room),
    /// Back after a server restart, waiting for the stranger of `RoomId` to come back too.
    Resuming(RoomId),
}

/// What the session must ask of the lobby after a client's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
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
pub struct Presence {
    status: Status,
    /// Requests sent to the lobby so far.
    seq: u64,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            status: Status::Idle,
            seq: 0,
        }
    }
}

impl Presence {
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The room the user is in, if any.
    pub fn room(&self) -> Option<&Room> {
        match &self.status {
            Status::InRoom(room) => Some(room),
            _ => None,
        }
    }

    fn request(&mut self, make: fn(u64) -> Request, then: Status) -> Option<Request> {
        self.seq += 1;
        self.status = then;
        Some(make(self.seq))
    }

    /// The client sent `join`: idle users start waiting; others stay as they are.
    pub fn join(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Join { seq }, Status::Waiting),
            // Rather a new stranger than waiting for the old one to come back.
            Status::Resuming(_) => self.request(|seq| Request::Next { seq }, Status::Waiting),
            Status::Waiting | Status::InRoom(_) => None,
        }
    }

    /// The client came back after a server restart and asks for its room: only from idle.
    pub fn resume(&mut self, room: RoomId) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Resume { seq }, Status::Resuming(room)),
            _ => None,
        }
    }

    /// The client sent `next`: leave the room if any and wait for someone new.
    pub fn skip(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => self.request(|seq| Request::Join { seq }, Status::Waiting),
            Status::Waiting => None,
            Status::InRoom(_) | Status::Resuming(_) => {
                self.request(|seq| Request::Next { seq }, Status::Waiting)
            }
        }
    }

    /// The client sent `leave`: back to idle.
    pub fn leave(&mut self) -> Option<Request> {
        match self.status {
            Status::Idle => None,
            Status::Waiting | Status::InRoom(_) | Status::Resuming(_) => {
                self.request(|seq| Request::Leave { seq }, Status::Idle)
            }
        }
    }

    /// The client reported the stranger in `room`: the room ends and the user is idle. A
    /// report for any other room (a stale one) is ignored.
    pub fn report(&mut self, room: RoomId) -> Option<Request> {
        if !self.in_room(room) {
            return None;
        }
        self.request(|seq| Request::Report { seq }, Status::Idle)
    }

    /// The stranger did not come back for the room the request numbered `seq` asked to
    /// resume. Returns whether that is still the latest request (the user is idle now and
    /// must be told the stranger is gone). Tagged by request, not by room: a `left` for the
    /// same room from before the restart must not end the wait.
    pub fn unresumed(&mut self, seq: u64) -> bool {
        if seq == self.seq && matches!(self.status, Status::Resuming(_)) {
            self.status = Status::Idle;
            true
        } else {
            false
        }
    }

    /// The lobby refused the request numbered `seq` (the user is banned). Returns whether
    /// that is still the latest request, so the user is idle again and must be told.
    pub fn refused(&mut self, seq: u64) -> bool {
        if seq == self.seq && matches!(self.status, Status::Waiting) {
            self.status = Status::Idle;
            true
        } else {
            false
        }
    }

    /// The lobby paired the user. Returns the decision if it still stands (the user is
    /// waiting and has sent nothing since); the session then tells its client.
    pub fn matched(&mut self, m: Box<Matched>) -> Option<Box<Matched>> {
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
        });
        Some(m)
    }

    /// The partner ended `room`. Returns whether that is the user's room (and it is over).
    pub fn left(&mut self, room: RoomId) -> bool {
        if self.in_room(room) {
            self.status = Status::Idle;
            true
        } else {
            false
        }
    }

    /// Whether the user is in `room` now: relayed messages for any other room are dropped.
    pub fn in_room(&self, room: RoomId) -> bool {
        self.room().is_some_and(|r| r.id == room)
    }
}
