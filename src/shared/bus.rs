//! What instances tell each other about users they share a room with, and its text form.
//!
//! Every instance subscribes to one channel of its own (`<prefix>:bus:<instance>`); a message
//! for a user goes to the channel of the instance that holds the user's socket. One line per
//! message, fields separated by single spaces, the relayed JSON last so it needs no escaping:
//!
//! | message | form |
//! | --- | --- |
//! | relay | `R <to> <room> <json>` |
//! | matched | `M <to> <ticket> <room> <role> <from> <client or -> <proof> <same language: 1 or 0> <ahead> <common tags, \x1f-separated, or ->[ <sdp>]` |
//! | left | `L <to> <room> <reason>` |
//! | requeue | `Q <to> <ticket>` |
//! | restarting | `X <to> <room>` |
//! | rejoined | `J <to> <room> <from> <client or ->` |
//!
//! `<ahead>` says what became of an early offer for the receiving user: `-` none, `+` its own
//! went to the stranger, or the byte length of the stranger's offer, which then ends the line
//! (after one space: the SDP is taken by its length, so it may hold spaces and line breaks).
//!
//! Only instances publish on these channels, so a malformed line is a bug (or another
//! version), logged and dropped, never a panic.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::ids::ClientKey;
use crate::ids::{SessionId, UserRef};
use crate::protocol::Ahead;
use crate::protocol::{LeftReason, MemberProof, Role, RoomId};

/// A message from one instance to another, about one of the receiver's users.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BusMessage {
    /// The user's partner (on the sending instance) sent this, for `room`.
    Relay {
        to: SessionId,
        room: RoomId,
        text: String,
    },
    /// The shared queue paired the user (waiting with `ticket`) with `from`, in `room`.
    Matched {
        to: SessionId,
        ticket: u64,
        room: RoomId,
        /// The role the receiving user plays.
        role: Role,
        from: UserRef,
        /// Who `from` is for reports and bans.
        client: Option<ClientKey>,
        common: Vec<String>,
        /// Whether the two gave the same language.
        same_lang: bool,
        /// The receiving user's proof of membership (the sender drew both members').
        proof: MemberProof,
        /// What the receiving user is told of an early offer.
        ahead: Ahead,
    },
    /// The user's partner ended `room`.
    Left {
        to: SessionId,
        room: RoomId,
        reason: LeftReason,
    },
    /// The user (waiting with `ticket`) was taken from the queue for a partner who had left
    /// by then: it goes back in.
    Requeue { to: SessionId, ticket: u64 },
    /// The user's partner in `room` is on an instance that is restarting: it will likely
    /// come back (to any instance) and ask for the room; keep the call for a while.
    Restarting { to: SessionId, room: RoomId },
    /// The user's partner in `room` came back after a restart: it is `from` now.
    Rejoined {
        to: SessionId,
        room: RoomId,
        from: UserRef,
        client: Option<ClientKey>,
    },
}

impl BusMessage {
    /// The user on the receiving instance this is for.
    pub(crate) fn to(&self) -> SessionId {
        match self {
            BusMessage::Relay { to, .. }
            | BusMessage::Matched { to, .. }
            | BusMessage::Left { to, .. }
            | BusMessage::Requeue { to, .. }
            | BusMessage::Restarting { to, .. }
            | BusMessage::Rejoined { to, .. } => *to,
        }
    }

    /// The line published for this message.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            BusMessage::Relay { to, room, text } => {
                let _ = write!(out, "R {} {room} {}", to.0, text);
            }
            BusMessage::Matched {
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
            } => {
                let role = match role {
                    Role::Offerer => "offerer",
                    Role::Answerer => "answerer",
                };
                let client = client.map_or_else(|| "-".to_string(), |c| c.to_string());
                let common = if common.is_empty() {
                    "-".to_string()
                } else {
                    common.join("\u{1f}")
                };
                let lang = u8::from(*same_lang);
                let marker = match ahead {
                    Ahead::None => "-".to_string(),
                    Ahead::Sent => "+".to_string(),
                    Ahead::Offer(sdp) => sdp.len().to_string(),
                };
                let _ = write!(
                    out,
                    "M {} {ticket} {room} {role} {from} {client} {proof} {lang} {marker} {common}",
                    to.0
                );
                if let Ahead::Offer(sdp) = ahead {
                    out.push(' ');
                    out.push_str(sdp);
                }
            }
            BusMessage::Left { to, room, reason } => {
                let _ = write!(out, "L {} {room} {}", to.0, reason_str(*reason));
            }
            BusMessage::Requeue { to, ticket } => {
                let _ = write!(out, "Q {} {ticket}", to.0);
            }
            BusMessage::Restarting { to, room } => {
                let _ = write!(out, "X {} {room}", to.0);
            }
            BusMessage::Rejoined {
                to,
                room,
                from,
                client,
            } => {
                let client = client.map_or_else(|| "-".to_string(), |c| c.to_string());
                let _ = write!(out, "J {} {room} {from} {client}", to.0);
            }
        }
        out
    }

    /// Reads a published line; `None` if it is not one of ours.
    pub(crate) fn decode(line: &str) -> Option<BusMessage> {
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "R" => {
                let mut parts = rest.splitn(3, ' ');
                let to = session(parts.next()?)?;
                let room = RoomId::from_str(parts.next()?).ok()?;
                let text = parts.next()?.to_string();
                Some(BusMessage::Relay { to, room, text })
            }
            "M" => decode_matched(rest),
            "L" => {
                let parts: Vec<&str> = rest.split(' ').collect();
                let [to, room, reason] = parts[..] else {
                    return None;
                };
                Some(BusMessage::Left {
                    to: session(to)?,
                    room: RoomId::from_str(room).ok()?,
                    reason: match reason {
                        "skipped" => LeftReason::Skipped,
                        "left" => LeftReason::Left,
                        "disconnected" => LeftReason::Disconnected,
                        _ => return None,
                    },
                })
            }
            "Q" => {
                let (to, ticket) = rest.split_once(' ')?;
                Some(BusMessage::Requeue {
                    to: session(to)?,
                    ticket: ticket.parse().ok()?,
                })
            }
            "X" => {
                let (to, room) = rest.split_once(' ')?;
                Some(BusMessage::Restarting {
                    to: session(to)?,
                    room: RoomId::from_str(room).ok()?,
                })
            }
            "J" => {
                let parts: Vec<&str> = rest.split(' ').collect();
                let [to, room, from, client] = parts[..] else {
                    return None;
                };
                Some(BusMessage::Rejoined {
                    to: session(to)?,
                    room: RoomId::from_str(room).ok()?,
                    from: UserRef::from_str(from).ok()?,
                    client: match client {
                        "-" => None,
                        hex => Some(ClientKey::from_str(hex).ok()?),
                    },
                })
            }
            _ => None,
        }
    }
}

/// Reads the fields of a `matched` line (after its `M`).
fn decode_matched(rest: &str) -> Option<BusMessage> {
    // Tags may hold spaces: the last field takes the rest of the line (but for an offer,
    // which is taken from the end by its length).
    let parts: Vec<&str> = rest.splitn(10, ' ').collect();
    let [
        to,
        ticket,
        room,
        role,
        from,
        client,
        proof,
        lang,
        marker,
        tail,
    ] = parts[..]
    else {
        return None;
    };
    let (ahead, common) = match marker {
        "-" => (Ahead::None, tail),
        "+" => (Ahead::Sent, tail),
        len => {
            let len: usize = len.parse().ok()?;
            let split = tail.len().checked_sub(len + 1)?;
            let (common, sdp) = (tail.get(..split)?, tail.get(split..)?);
            (Ahead::Offer(sdp.strip_prefix(' ')?.to_string()), common)
        }
    };
    Some(BusMessage::Matched {
        to: session(to)?,
        ticket: ticket.parse().ok()?,
        room: RoomId::from_str(room).ok()?,
        role: match role {
            "offerer" => Role::Offerer,
            "answerer" => Role::Answerer,
            _ => return None,
        },
        from: UserRef::from_str(from).ok()?,
        client: match client {
            "-" => None,
            hex => Some(ClientKey::from_str(hex).ok()?),
        },
        common: match common {
            "-" => Vec::new(),
            tags => tags.split('\u{1f}').map(str::to_string).collect(),
        },
        same_lang: match lang {
            "1" => true,
            "0" => false,
            _ => return None,
        },
        proof: MemberProof::from_str(proof).ok()?,
        ahead,
    })
}

fn session(s: &str) -> Option<SessionId> {
    s.parse().ok().map(SessionId)
}

fn reason_str(reason: LeftReason) -> &'static str {
    match reason {
        LeftReason::Skipped => "skipped",
        LeftReason::Left => "left",
        LeftReason::Disconnected => "disconnected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::InstanceId;

    fn round_trip(msg: BusMessage) {
        let line = msg.encode();
        assert_eq!(BusMessage::decode(&line), Some(msg), "{line}");
    }

    #[test]
    fn every_message_survives_its_text_form() {
        let from = UserRef {
            instance: InstanceId(0xabc),
            session: SessionId(7),
        };
        round_trip(BusMessage::Relay {
            to: SessionId(1),
            room: RoomId(5),
            text: r#"{"type":"chat","room":"x","text":"a b  c"}"#.into(),
        });
        round_trip(BusMessage::Matched {
            to: SessionId(2),
            ticket: 9,
            room: RoomId(u128::MAX),
            role: Role::Answerer,
            from,
            client: Some(ClientKey([3; 16])),
            common: vec!["chess".into(), "jazz music".into()],
            same_lang: true,
            proof: MemberProof::pair(5, 6).0,
            ahead: Ahead::None,
        });
        // The stranger's offer, spaces, line breaks and all, after tags with spaces.
        round_trip(BusMessage::Matched {
            to: SessionId(2),
            ticket: 9,
            room: RoomId(3),
            role: Role::Answerer,
            from,
            client: None,
            common: vec!["jazz music".into()],
            same_lang: true,
            proof: MemberProof::pair(5, 6).0,
            ahead: Ahead::Offer("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\na=x 9 8 \r\n".into()),
        });
        round_trip(BusMessage::Matched {
            to: SessionId(2),
            ticket: 9,
            room: RoomId(3),
            role: Role::Offerer,
            from,
            client: None,
            common: Vec::new(),
            same_lang: false,
            proof: MemberProof::pair(5, 6).0,
            ahead: Ahead::Sent,
        });
        round_trip(BusMessage::Matched {
            to: SessionId(2),
            ticket: 9,
            room: RoomId(1),
            role: Role::Offerer,
            from,
            client: None,
            common: Vec::new(),
            same_lang: false,
            proof: MemberProof::pair(7, 8).1,
            ahead: Ahead::None,
        });
        for reason in [
            LeftReason::Skipped,
            LeftReason::Left,
            LeftReason::Disconnected,
        ] {
            round_trip(BusMessage::Left {
                to: SessionId(3),
                room: RoomId(8),
                reason,
            });
        }
        round_trip(BusMessage::Requeue {
            to: SessionId(4),
            ticket: 12,
        });
        round_trip(BusMessage::Restarting {
            to: SessionId(5),
            room: RoomId(77),
        });
        round_trip(BusMessage::Rejoined {
            to: SessionId(6),
            room: RoomId(78),
            from,
            client: Some(ClientKey([9; 16])),
        });
    }

    #[test]
    fn lines_that_are_not_ours_are_refused() {
        for line in [
            "",
            "R",
            "R 1",
            "R x 00 {}",
            "M 1 2 3",
            // An offer longer than what follows its length, or not after a space.
            "M 2 9 00000000000000000000000000000003 answerer 0000000000000abc.7 - 0000000000000000000000000000000500000000000000000000000000000006 99 - v=0",
            "M 2 9 00000000000000000000000000000003 answerer 0000000000000abc.7 - 0000000000000000000000000000000500000000000000000000000000000006 3 -v=0",
            "L 1 zz left",
            "Z 1 2",
        ] {
            assert_eq!(BusMessage::decode(line), None, "{line:?}");
        }
    }
}
