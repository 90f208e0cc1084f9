//! Wire protocol v1: the JSON messages on `/ws` and their validation.
//!
//! This module knows nothing about sockets, tasks or the server: it turns a text frame into a
//! checked [`ClientMessage`] (or a [`ProtocolError`] that says what is wrong with it) and a
//! [`ServerMessage`] into JSON. `docs/protocol.md` is the human-readable form of this file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::pow::Challenge;
pub use crate::seeking::{Lang, Mode, ModeCounts};
pub use parse::{names_entry, normalize_interests};

mod parse;

/// Largest message a client may send, in bytes: what the largest valid message needs, an
/// offer or answer with an SDP of [`MAX_SDP_BYTES`] (its JSON escapes and the envelope add
/// a few KiB), and no more, so a hostile client holds as little as the protocol allows.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024;

/// The most bytes all connections together may hold in unfinished messages (16 MiB, about
/// 400 messages of the largest size arriving at once); past it the connections holding the
/// most are not read until bytes are given back ([`websocket::budget`](crate::websocket::budget)).
pub const READ_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// Largest SDP body relayed, in bytes.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Largest ICE candidate line relayed, in bytes (real ones are ~100–200 bytes).
pub const MAX_CANDIDATE_BYTES: usize = 1024;
/// Longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;
/// Most interest tags a user may give.
pub const MAX_INTERESTS: usize = 8;
/// Longest interest tag, in characters.
pub const MAX_INTEREST_CHARS: usize = 32;

/// A room's id: 128 random bits, written on the wire as 32 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RoomId(pub u128);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for RoomId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(());
        }
        u128::from_str_radix(s, 16).map(RoomId).map_err(|_| ())
    }
}

/// A member's proof that it was in a room, given in `matched` and shown to `resume`: its
/// own 128-bit secret, and the hash of its partner's. The server keeps neither across a
/// restart; two users who ask for the same room are put back together only if each holds
/// the secret whose hash the other holds, so knowing (or guessing) a room id is not enough
/// to take a member's place. Written as 64 lower-case hex digits: the secret, then the hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MemberProof {
    /// Known only to this member.
    pub secret: u128,
    /// The hash of the partner's secret.
    pub partner: u128,
}

impl MemberProof {
    /// The proofs of two members, from their secrets.
    pub fn pair(a: u128, b: u128) -> (MemberProof, MemberProof) {
        let proof = |secret, other| MemberProof {
            secret,
            partner: secret_hash(other),
        };
        (proof(a, b), proof(b, a))
    }

    /// The hash of this member's secret, as its partner holds it.
    pub fn me(&self) -> u128 {
        secret_hash(self.secret)
    }

    /// Whether `other` is this member's partner (each holds the hash of the other's secret).
    pub fn pairs_with(&self, other: &MemberProof) -> bool {
        self.partner == other.me() && other.partner == self.me()
    }
}

/// The first 128 bits of the SHA-1 of a secret's 16 bytes (SHA-1's preimage resistance is
/// what matters here, and it holds).
fn secret_hash(secret: u128) -> u128 {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(secret.to_be_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

impl fmt::Display for MemberProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}{:032x}", self.secret, self.partner)
    }
}

impl Serialize for MemberProof {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for MemberProof {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 64 || !s.is_char_boundary(32) {
            return Err(());
        }
        let (secret, partner) = s.split_at(32);
        Ok(MemberProof {
            secret: RoomId::from_str(secret)?.0,
            partner: RoomId::from_str(partner)?.0,
        })
    }
}

impl Serialize for Challenge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut fields = s.serialize_struct("Challenge", 2)?;
        fields.serialize_field("seed", &self.seed_hex())?;
        fields.serialize_field("bits", &self.bits)?;
        fields.end()
    }
}

impl Serialize for RoomId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which side of the call a member plays. The offerer creates the first offer and is the
/// "impolite" peer of perfect negotiation; the answerer is the "polite" one.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Offerer,
    Answerer,
}

impl Role {
    /// The role of the other member of the room.
    pub fn other(self) -> Role {
        match self {
            Role::Offerer => Role::Answerer,
            Role::Answerer => Role::Offerer,
        }
    }
}

/// What became of an early offer ("offer ahead") when a room opened, as one member sees it:
/// what its `matched` says in `offer` and `offered`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Ahead {
    /// Neither member's early offer was used: the ordinary flow.
    #[default]
    None,
    /// This member's early offer went to the stranger (this member is the offerer).
    Sent,
    /// The stranger's early offer, for this member (the answerer) to apply.
    Offer(String),
}

/// Why a room ended, as told to the member who did not end it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// The partner pressed Next.
    Skipped,
    /// The partner pressed Stop.
    Left,
    /// The partner's connection went away (tab closed, network lost, stopped answering).
    Disconnected,
}

/// The machine-readable part of an `error` message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Unparsable, unknown or invalid message; the connection stays open.
    BadMessage,
    /// Over the size limit; the connection is closed with 1009.
    TooLarge,
    /// Too many messages; the message was dropped.
    RateLimited,
    /// Reported by several users: no matching for a while.
    Banned,
    /// A `join` or `next` without the 18+ confirmation (`"adult": true`).
    AdultRequired,
    /// A `join` or `next` without a solution of the connection's current challenge.
    PowRequired,
    /// A `join` or `next` whose solution does not solve the current challenge: wrong, made
    /// up, or a replay of one already spent.
    PowInvalid,
}

impl ErrorCode {
    /// The code as it appears on the wire (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Banned => "banned",
            ErrorCode::AdultRequired => "adult_required",
            ErrorCode::PowRequired => "pow_required",
            ErrorCode::PowInvalid => "pow_invalid",
        }
    }
}

/// A refused client message: the code and an English sentence for the `error` reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    fn bad(message: impl Into<String>) -> Self {
        ProtocolError {
            code: ErrorCode::BadMessage,
            message: message.into(),
        }
    }

    /// The refusal of a frame over [`MAX_MESSAGE_BYTES`].
    pub fn too_large() -> Self {
        ProtocolError {
            code: ErrorCode::TooLarge,
            message: format!("message larger than {MAX_MESSAGE_BYTES} bytes"),
        }
    }

    /// The refusal of a message over the client's rate limit.
    pub fn rate_limited() -> Self {
        ProtocolError {
            code: ErrorCode::RateLimited,
            message: "too many messages; slow down (this one was dropped)".into(),
        }
    }

    /// The refusal of a call's signaling (`kind`) in a text room: nothing is delivered.
    pub fn not_in_text_room(kind: &str) -> Self {
        Self::bad(format!(
            "`{kind}` is not relayed in a text chat: a text room carries only `chat` and `typing`"
        ))
    }

    /// The refusal of an early offer from a user whose pool is the text chat's: a text room
    /// has no call to offer.
    pub fn no_early_offer_in_text() -> Self {
        Self::bad("`early_offer` is for video chats: a text chat has no call to offer")
    }

    /// The refusal of a binary frame.
    pub fn binary() -> Self {
        Self::bad("binary frames are not accepted; send JSON text")
    }
}

/// A trickled ICE candidate, in the shape of `RTCIceCandidate.toJSON()`.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A message that is forwarded, unchanged in meaning, to the sender's partner.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Relay {
    Offer {
        room: RoomId,
        sdp: String,
    },
    Answer {
        room: RoomId,
        sdp: String,
    },
    Candidate {
        room: RoomId,
        candidate: Option<Candidate>,
    },
    Chat {
        room: RoomId,
        text: String,
    },
    Typing {
        room: RoomId,
        active: bool,
    },
    /// The sender's camera (`video`) and microphone (`audio`) are on or off.
    Media {
        room: RoomId,
        video: bool,
        audio: bool,
    },
}

impl Relay {
    /// The room this message is addressed to.
    pub fn room(&self) -> RoomId {
        match self {
            Relay::Offer { room, .. }
            | Relay::Answer { room, .. }
            | Relay::Candidate { room, .. }
            | Relay::Chat { room, .. }
            | Relay::Typing { room, .. }
            | Relay::Media { room, .. } => *room,
        }
    }

    /// The `type` on the wire (also the metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Relay::Offer { .. } => "offer",
            Relay::Answer { .. } => "answer",
            Relay::Candidate { .. } => "candidate",
            Relay::Chat { .. } => "chat",
            Relay::Typing { .. } => "typing",
            Relay::Media { .. } => "media",
        }
    }

    /// The JSON text sent to the partner.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("relay messages always serialize")
    }
}

/// A checked message from a client.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ClientMessage {
    /// Enter the queue with these (normalised) interests, in `mode`, preferring strangers
    /// who speak `lang`, if `admit` passes the [gate](crate::gate). `ahead`: the client
    /// takes a stranger's early offer inside `matched`; without it, one is sent to it as an
    /// ordinary `offer` after `matched`.
    Join {
        interests: Vec<String>,
        mode: Mode,
        lang: Option<Lang>,
        ahead: bool,
        admit: Admit,
    },
    /// End the room if any and queue again, in `mode` if given (else the mode of the last
    /// join), if `admit` passes the gate; `ahead` as for `Join`.
    Next {
        mode: Option<Mode>,
        ahead: bool,
        admit: Admit,
    },
    /// Leave the room or the queue, stay connected.
    Leave,
    /// Forward to the partner.
    Relay(Relay),
    /// Report the partner in `room` and end the room.
    Report { room: RoomId, reason: ReportReason },
    /// Back after the server restarted mid-call, or on a new connection after its own was
    /// lost: rejoin `room` with the same stranger, proving membership with what `matched`
    /// gave.
    /// `mode` is the room's (a video call, unless the client says text).
    Resume {
        room: RoomId,
        proof: MemberProof,
        mode: Mode,
    },
    /// A heartbeat the page can see: answered with `pong`, so a dead socket is noticed in
    /// seconds rather than when TCP gives up.
    Ping,
    /// While waiting: the offer of the call to come ("offer ahead"), handed to whichever
    /// stranger this wait is paired with, in its `matched`.
    EarlyOffer { sdp: String },
}

/// What a `join` or `next` carries to be let into the queue (see [`gate`](crate::gate)).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Admit {
    /// The user confirmed being 18 or older and agreeing to the rules (`"adult": true`).
    pub adult: bool,
    /// The nonce that solves the connection's current challenge (`"pow"`), if any.
    pub pow: Option<u32>,
}

/// Why a user reported the stranger.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Nudity,
    Harassment,
    /// Spam or a bot.
    Spam,
    /// Looks under 18.
    #[serde(rename = "under_18")]
    Under18,
    Other,
}

/// A message from the server to one client.
#[derive(Clone, PartialEq, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Welcome {
        online: usize,
        /// Of those online, how many wait for or are in a chat of each mode.
        modes: ModeCounts,
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
        /// What to solve for the first `join` (absent when the proof of work is off).
        #[serde(skip_serializing_if = "Option::is_none")]
        challenge: Option<Challenge>,
    },
    /// What to solve for the next `join` or `next`: sent after each one the server reads.
    Challenge {
        #[serde(flatten)]
        challenge: Challenge,
    },
    Waiting,
    Matched {
        room: RoomId,
        role: Role,
        /// The pool both members were in: what the room relays.
        mode: Mode,
        common: &'a [String],
        /// Whether the two gave the same language (never which one the stranger gave).
        same_lang: bool,
        /// What this member shows to `resume` the room after a restart.
        proof: MemberProof,
        /// Fresh STUN/TURN servers for this call's peer connection (TURN credentials are
        /// short-lived; the ones in `welcome` may have run out by now).
        #[serde(rename = "iceServers")]
        ice_servers: &'a [IceServer],
        /// For the answerer: the offerer's early offer, to apply as if it had come in an
        /// `offer` message for this room.
        #[serde(skip_serializing_if = "Option::is_none")]
        offer: Option<&'a str>,
        /// For the offerer: its early offer went to the stranger in the stranger's
        /// `matched`; it must not be sent again.
        #[serde(skip_serializing_if = "is_false")]
        offered: bool,
    },
    /// Both members came back after a restart: the room works again.
    Resumed {
        room: RoomId,
    },
    Left {
        room: RoomId,
        reason: LeftReason,
    },
    Online {
        count: usize,
        /// Of those, how many wait for or are in a chat of each mode.
        modes: ModeCounts,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        /// Seconds until the refusal ends (for `banned`).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Bye {
        reason: &'a str,
    },
    /// The answer to a client's `ping`.
    Pong,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerMessage<'_> {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests;
