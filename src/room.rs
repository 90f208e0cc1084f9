//! Rooms and the relay: what a session is told, and the rule that a message reaches only the
//! sender's current partner.
//!
//! A room exists as two halves, one held by each member's session: the room id and a [`Peer`]
//! handle to the other member's outbound queue. Relaying is a `try_send` from one session
//! straight into its partner's queue, so signaling traffic never passes through the lobby.
//! Both ends check the room id: the sender only forwards messages naming its current room,
//! and the receiver only writes messages for the room it is in now. A message for a room that
//! ended (the partner pressed Next a moment ago) is therefore dropped, never shown to anyone.
//! The one wait: a session still waiting keeps a few messages for a room it has not been told
//! of yet, since a fast new partner can overtake our `matched`
//! ([`Presence::early`](crate::presence)).

use crate::ids::{InstanceId, SessionId, UserRef};
use crate::mailbox;
use crate::protocol::{Ahead, LeftReason, MemberProof, Mode, Relay, Role, RoomId};
use crate::shared::Bus;
use crate::shared::bus::BusMessage;

/// What the lobby or the partner tells a session. Small on purpose: every session's queue
/// allocates a block of 32 slots up front, so the size of this enum is paid 32 times per
/// connected user; the larger payloads are boxed to keep it at 32 bytes (a room id is a
/// 16-byte-aligned `u128`, so that is the floor).
#[derive(Debug)]
pub(crate) enum Event {
    /// You are in a room now (boxed: rare, and large beside the others).
    Matched(Box<Matched>),
    /// Your partner ended room `room`.
    Left { room: RoomId, reason: LeftReason },
    /// Your partner's message for `room`, already serialized for the wire (a `Box<String>`
    /// on purpose: a thin pointer keeps the event at 32 bytes, where a `String` or a
    /// `Box<str>` would make it 48).
    #[expect(clippy::box_collection, reason = "keeps `Event` at 32 bytes")]
    Relay { room: RoomId, text: Box<String> },
    /// Your partner in `room` came back after a restart of its server, and is reached
    /// through `partner` now (the call itself never stopped).
    Rerouted { room: RoomId, partner: Box<Peer> },
    /// Nobody came back for `room` after your request `seq` to resume it: the stranger is
    /// gone.
    Unresumed { seq: u64, room: RoomId },
    /// Your request `seq` to be matched was refused: you are banned until `until_ms` (Unix
    /// time, milliseconds).
    Refused { seq: u64, until_ms: u64 },
}

impl Event {
    /// What the event holds in bytes, as a session's queue counts it: a relayed message's
    /// text, or the size of the event itself.
    pub(crate) fn wire_bytes(&self) -> usize {
        match self {
            Event::Relay { text, .. } => text.len(),
            _ => std::mem::size_of::<Event>(),
        }
    }
}

/// The lobby's pairing decision as one member sees it.
#[derive(Debug)]
pub(crate) struct Matched {
    /// The session's command counter when the lobby made this decision; a session that has
    /// sent a newer command since (Stop, say) ignores it, and the lobby handles that command
    /// by ending the room.
    pub seq: u64,
    pub room: RoomId,
    /// The side this member plays; `None` when an existing call resumed (the browsers keep
    /// the roles they had).
    pub role: Option<Role>,
    /// The pool both members were in: which messages the room relays.
    pub mode: Mode,
    /// Interests both members gave.
    pub common: Vec<String>,
    /// Whether both members gave the same language.
    pub same_lang: bool,
    /// This member's proof of membership for a later `resume`; `None` when a call resumed
    /// (the browser keeps the one it has).
    pub proof: Option<MemberProof>,
    /// Where this member's relayed messages go.
    pub partner: Peer,
    /// What became of an early offer at this pairing, for this member.
    pub ahead: Ahead,
}

/// A handle to where one user's events go: its session's outbound queue when the user is
/// connected here, or the bus to the instance that holds its socket.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Whose queue this is (a session of the instance the route leads to).
    pub id: SessionId,
    route: Route,
}

#[derive(Clone, Debug)]
enum Route {
    /// Bounded: a session that does not drain it is not allowed to grow our memory.
    Local(mailbox::Sender<Event>),
    /// The user is connected to another instance.
    Remote { instance: InstanceId, bus: Bus },
}

/// Why an event could not be queued for a session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Undeliverable {
    /// Its queue is full: it is not keeping up and must be dropped.
    Full,
    /// The session has ended.
    Closed,
}

impl Peer {
    /// A handle that queues into `tx`.
    pub(crate) fn new(id: SessionId, tx: mailbox::Sender<Event>) -> Peer {
        Peer {
            id,
            route: Route::Local(tx),
        }
    }

    /// A handle to `user`, connected to another instance, reached through `bus`.
    pub(crate) fn remote(user: UserRef, bus: Bus) -> Peer {
        Peer {
            id: user.session,
            route: Route::Remote {
                instance: user.instance,
                bus,
            },
        }
    }

    /// Queues `event` without waiting.
    ///
    /// A remote user is sent relayed messages only; should the bus be full (the shared
    /// engine is stuck), the message is dropped and counted, and the user is not blamed.
    pub(crate) fn send(&self, event: Event) -> Result<(), Undeliverable> {
        match &self.route {
            Route::Local(tx) => tx.try_send(event).map_err(|e| match e {
                mailbox::TrySendError::Full(_) => Undeliverable::Full,
                mailbox::TrySendError::Closed(_) => Undeliverable::Closed,
            }),
            Route::Remote { instance, bus } => {
                if let Event::Relay { room, text } = event {
                    bus.publish(
                        *instance,
                        BusMessage::Relay {
                            to: self.id,
                            room,
                            text: *text,
                        },
                    );
                }
                Ok(())
            }
        }
    }

    /// Whether the session behind this handle has ended (a remote one is told of by its
    /// own instance).
    pub(crate) fn is_closed(&self) -> bool {
        match &self.route {
            Route::Local(tx) => tx.is_closed(),
            Route::Remote { .. } => false,
        }
    }
}

/// One member's half of a room.
#[derive(Debug)]
pub(crate) struct Room {
    pub id: RoomId,
    pub partner: Peer,
    /// What kind of chat it is: a text room relays chat and typing only.
    pub mode: Mode,
}

/// What became of a message a client asked to relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Relayed {
    /// Queued for the partner.
    Sent,
    /// The message named another room (stale or made up): dropped.
    WrongRoom,
    /// The room's mode does not carry this message (a call's signaling in a text room):
    /// refused, and not delivered.
    NotInThisMode,
    /// The partner could not take it.
    Undeliverable(Undeliverable),
}

/// Whether a room of `mode` relays `msg`: a video room passes everything, a text room chat
/// and typing only (nothing that would set up a call).
fn relays(mode: Mode, msg: &Relay) -> bool {
    match mode {
        Mode::Video => true,
        Mode::Text => matches!(msg, Relay::Chat { .. } | Relay::Typing { .. }),
    }
}

impl Room {
    /// Forwards `msg` to the partner if it is addressed to this room.
    pub(crate) fn relay(&self, msg: &Relay) -> Relayed {
        if msg.room() != self.id {
            return Relayed::WrongRoom;
        }
        if !relays(self.mode, msg) {
            return Relayed::NotInThisMode;
        }
        let event = Event::Relay {
            room: self.id,
            text: Box::new(msg.to_json()),
        };
        match self.partner.send(event) {
            Ok(()) => Relayed::Sent,
            Err(e) => Relayed::Undeliverable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_takes_32_bytes() {
        // Copied through every queue it passes; boxed payloads keep it small.
        assert_eq!(std::mem::size_of::<Event>(), 32);
    }

    fn room(id: u128) -> (Room, mailbox::Receiver<Event>) {
        let (tx, rx) = mailbox::channel(2);
        let room = Room {
            id: RoomId(id),
            partner: Peer::new(SessionId(2), tx),
            mode: Mode::Video,
        };
        (room, rx)
    }

    /// In a text room, the signaling of a call is refused and never queued; chat passes.
    #[test]
    fn a_text_room_passes_chat_and_nothing_of_a_call() {
        let (mut room, mut rx) = room(3);
        room.mode = Mode::Text;
        let offer = Relay::Offer {
            room: RoomId(3),
            sdp: "v=0".into(),
        };
        assert_eq!(room.relay(&offer), Relayed::NotInThisMode);
        let stale = Relay::Offer {
            room: RoomId(4),
            sdp: "v=0".into(),
        };
        assert_eq!(
            room.relay(&stale),
            Relayed::WrongRoom,
            "stale is only dropped"
        );
        assert!(rx.try_recv().is_err(), "nothing was queued");
        let chat = Relay::Chat {
            room: RoomId(3),
            text: "hi".into(),
        };
        assert_eq!(room.relay(&chat), Relayed::Sent);
        assert!(matches!(rx.try_recv(), Ok(Event::Relay { .. })));
    }

    #[test]
    fn relays_only_messages_for_this_room() {
        let (room, mut rx) = room(5);
        let here = Relay::Typing {
            room: RoomId(5),
            active: true,
        };
        let elsewhere = Relay::Typing {
            room: RoomId(6),
            active: true,
        };
        assert_eq!(room.relay(&elsewhere), Relayed::WrongRoom);
        assert_eq!(room.relay(&here), Relayed::Sent);
        match rx.try_recv() {
            Ok(Event::Relay { room, text }) => {
                assert_eq!(room, RoomId(5));
                assert!(text.as_str().contains(r#""active":true"#));
            }
            other => panic!("expected the relayed message, got {other:?}"),
        }
        assert!(
            rx.try_recv().is_err(),
            "the other-room message was not queued"
        );
    }

    #[test]
    fn a_full_queue_is_reported_not_grown() {
        let (room, rx) = room(1);
        let msg = Relay::Typing {
            room: RoomId(1),
            active: false,
        };
        assert_eq!(room.relay(&msg), Relayed::Sent);
        assert_eq!(room.relay(&msg), Relayed::Sent);
        assert_eq!(
            room.relay(&msg),
            Relayed::Undeliverable(Undeliverable::Full)
        );
        drop(rx);
        assert_eq!(
            room.relay(&msg),
            Relayed::Undeliverable(Undeliverable::Closed)
        );
    }

    #[test]
    fn events_stay_small() {
        // Paid once per queue slot per connected user.
        assert!(
            std::mem::size_of::<Event>() <= 64,
            "{}",
            std::mem::size_of::<Event>()
        );
    }

    /// A text room passes chat and typing and nothing that sets up a call.
    #[test]
    fn a_text_room_relays_chat_and_typing_only() {
        let room = RoomId(1);
        let chat = Relay::Chat {
            room,
            text: "hi".into(),
        };
        let typing = Relay::Typing { room, active: true };
        let media = Relay::Media {
            room,
            video: true,
            audio: true,
        };
        let offer = Relay::Offer {
            room,
            sdp: "v=0".into(),
        };
        let answer = Relay::Answer {
            room,
            sdp: "v=0".into(),
        };
        let candidate = Relay::Candidate {
            room,
            candidate: None,
        };
        for relay in [&chat, &typing] {
            assert!(relays(Mode::Text, relay) && relays(Mode::Video, relay));
        }
        for relay in [&media, &offer, &answer, &candidate] {
            assert!(!relays(Mode::Text, relay), "{relay:?}");
            assert!(relays(Mode::Video, relay));
        }
    }
}
